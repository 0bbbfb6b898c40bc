"""Where examples come from: the Hugging Face Hub (data/download.py), local files in their original
formats or the XTREME download layout (data/readers.py), or the bundled synthetic samples.
Every source yields canonical rows (docs/FORMATS.md); retrieval tasks yield one corpus."""
from __future__ import annotations

from pathlib import Path

from ..errors import AdapterxlError
from ..tasks import Task, check_split

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"
SOURCES = ("hf", "samples", "local")


def source_kind(data: str, data_dir) -> str:
    if data_dir is not None:
        return "local"
    if data not in ("hf", "samples"):
        raise AdapterxlError(f"unknown data source {data!r}; use hf, samples, or --data-dir DIR")
    return data


def local_dir(task: Task, data: str, data_dir) -> Path | None:
    kind = source_kind(data, data_dir)
    if kind == "samples":
        return SAMPLES / task.name
    if kind == "local":
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise AdapterxlError(f"data directory {str(path)!r} does not exist")
        return path
    return None


def available_languages(task: Task, split: str, data: str = "hf", data_dir=None) -> list[str]:
    """Languages with data for this split (all of the task's languages on the Hub)."""
    from .readers import local_languages

    root = local_dir(task, data, data_dir)
    if root is None:
        return list(task.languages)
    if not root.is_dir():
        return []
    return local_languages(task, root, split)


def load_split(task: Task, split: str, lang: str | None = None, data: str = "hf", data_dir=None,
               max_examples: int | None = None):
    """Rows of one split in one language (default: the task's training language), or the
    corpus of a retrieval task."""
    from .download import load_hub
    from .readers import load_local

    check_split(split)
    lang = lang or task.train_language
    root = local_dir(task, data, data_dir)
    if root is None:
        rows = load_hub(task, split, lang)
        where = f"{task.name} {split} ({lang}) on the Hub"
    else:
        if not root.is_dir():
            raise AdapterxlError(f"no bundled samples for {task.name}; use --data hf or "
                                 f"--data-dir DIR")
        rows = load_local(task, root, split, lang)
        where = f"{task.name} {split} ({lang}) under {root}"
    if isinstance(rows, dict):  # a retrieval corpus
        if not rows["queries"] or not rows["candidates"]:
            raise AdapterxlError(f"{where}: the {split} corpus is empty")
        return rows
    if not rows:
        raise AdapterxlError(f"{where}: the {split} split is empty")
    return rows[:max_examples] if max_examples else rows


class DataSource:
    """Where a run reads its examples, resolved once from (data, data_dir): `kind` is "hf",
    "samples" or "local" (a folder given wins over `data`)."""

    def __init__(self, data: str = "hf", data_dir=None):
        self.kind = source_kind(data, data_dir)
        self.data, self.data_dir = data, data_dir

    def load(self, task: Task, split: str, lang: str | None = None,
             max_examples: int | None = None):
        return load_split(task, split, lang, data=self.data, data_dir=self.data_dir,
                          max_examples=max_examples)

    def languages(self, task: Task, split: str) -> list[str]:
        return available_languages(task, split, self.data, self.data_dir)
