"""Raw text for language modules (MAD-X): the masked-language-modelling "task" of one
language, and its lines from a file, a Hub dataset or the bundled sample text."""
from __future__ import annotations

import random
from pathlib import Path

from ..errors import AdapterxlError
from ..tasks import Task
from .sources import SAMPLES

LANGUAGE_HP = {"epochs": 1, "batch_size": 32, "max_length": 256}
LANGUAGE_TASK = "mlm"  # the task name that trains a language module (train-language)


def language_task(language: str) -> Task:
    """Masked language modelling on one language's raw text (a MAD-X language module)."""
    if not language or not language.isalpha() or not 2 <= len(language) <= 3:
        raise AdapterxlError(f"--language must be an ISO 639 code like sw or yor, "
                             f"got {language!r}")
    return Task(name=LANGUAGE_TASK, description=f"masked language modelling on {language} text",
                format="mlm", role="language", languages=(language,), metric="accuracy",
                sources={}, hyperparameters=dict(LANGUAGE_HP), train_language=language)


def language_rows(task: Task, text: str | None = None, dataset: str | None = None,
                  samples: bool = False, seed: int = 42, max_train: int | None = None,
                  max_dev: int | None = None) -> tuple[list[dict], list[dict]]:
    """Text lines for a language module: --text FILE, --dataset ID[:CONFIG] (its `text`
    column), or the bundled sample text. 5% of the lines (at most 2000, a fixed seeded pick)
    are held out as dev for masked-token accuracy."""
    from .readers import read_text_lines

    lang = task.train_language
    if text and dataset:
        raise AdapterxlError("give --text or --dataset, not both")
    if text:
        rows = read_text_lines(text)
    elif dataset:
        rows = _dataset_text(dataset, max_train)
    elif samples:
        path = SAMPLES / "text" / f"{lang}.txt"
        if not path.exists():
            have = sorted(p.stem for p in (SAMPLES / "text").glob("*.txt"))
            raise AdapterxlError(f"no bundled sample text for {lang!r} (have: "
                                 f"{', '.join(have)}); give --text FILE")
        rows = read_text_lines(path)
    else:
        raise AdapterxlError("a language module needs text: --text FILE, --dataset ID, or "
                             "--data samples")
    random.Random(seed).shuffle(rows)
    held = min(2000, max(1, len(rows) // 20))
    if len(rows) < 2:
        raise AdapterxlError("a language module needs at least 2 lines of text")
    dev, train = rows[:held], rows[held:]
    if max_train:
        train = train[:max_train]
    if max_dev:
        dev = dev[:max_dev]
    return train, dev


def text_provenance(task: Task, text: str | None, dataset: str | None) -> dict:
    """A language module manifest's `data` entry: the text file, dataset or bundled sample."""
    return {"source": "text", "text": str(Path(text).resolve()) if text else None,
            "dataset": dataset,
            "samples": None if text or dataset else f"text/{task.train_language}.txt",
            "validation": "5% of the lines held out (at most 2000)"}


def _dataset_text(spec: str, limit: int | None) -> list[dict]:
    import datasets

    from ..connectivity import hub_unreachable, unreachable_hint

    path, _, name = spec.partition(":")
    why = None if Path(path).exists() else hub_unreachable()
    if why:
        raise AdapterxlError(f"cannot load text dataset {spec!r}: {unreachable_hint(why)}")
    try:
        data = datasets.load_dataset(path, name or None, split="train", streaming=True)
    except Exception as e:  # offline, unknown id, missing config: the library's first line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AdapterxlError(f"cannot load text dataset {spec!r}: {first}") from e
    rows = []
    for record in data:
        if "text" not in record:
            raise AdapterxlError(f"dataset {spec!r} has no `text` column "
                                 f"(columns: {', '.join(record)})")
        rows += [{"text": t.strip()} for t in str(record["text"]).split("\n") if t.strip()]
        if limit and len(rows) >= limit * 1.06:
            break
    return rows
