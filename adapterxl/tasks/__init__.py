"""The task catalogue: formats, labels, languages, metrics, sources, hyperparameters.
Entries live in catalog.yaml; this module only reads and validates them."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import AdapterxlError, unknown

CATALOG = Path(__file__).with_name("catalog.yaml")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    format: str
    role: str
    labels: tuple[str, ...]
    languages: tuple[str, ...]
    metric: str
    text_fields: tuple[str, ...]
    label_field: str
    sources: dict
    hyperparameters: dict
    english_training_data: str | None = None
    train_language: str = "en"
    extra: dict = field(default_factory=dict)

    def resolve_languages(self, languages) -> list[str]:
        """'all', a comma list or a sequence of codes -> the task's languages, validated."""
        if languages in (None, "all", ("all",), ["all"]):
            return list(self.languages)
        if isinstance(languages, str):
            languages = [x.strip() for x in languages.split(",") if x.strip()]
        for lang in languages:
            if lang not in self.languages:
                raise unknown(f"language for {self.name}", lang, self.languages)
        return list(languages)


@lru_cache(maxsize=1)
def catalog() -> dict[str, Task]:
    entries = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    tasks = {}
    for name, entry in entries.items():
        entry = dict(entry)
        for key in ("labels", "languages", "text_fields"):
            entry[key] = tuple(entry[key])
        tasks[name] = Task(name=name, **entry)
    return tasks


def get_task(name: str) -> Task:
    tasks = catalog()
    if name not in tasks:
        raise unknown("task", name, tasks)
    return tasks[name]


def list_tasks(role: str | None = None) -> list[Task]:
    return [t for t in catalog().values() if role is None or t.role == role]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise AdapterxlError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return split
