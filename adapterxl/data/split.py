"""Which rows a run trains on and which select the model (its dev set), and how a module's
manifest says so. The catalogue's validation split is the dev set; where the Hub has no
English one (TyDiQA-GoldP), a seeded 5% of train is held out instead (10% of rows passed from
Python without dev rows, adapterxl.train)."""
from __future__ import annotations

import random
from pathlib import Path

from ..tasks import Task
from .sources import DataSource

HELD_OUT = "5% of train held out (the Hub has no English dev set)"


def holds_out(task: Task, source: DataSource) -> bool:
    """Whether the dev set is cut from train (no validation split on the Hub)."""
    return source.kind == "hf" and "validation" not in task.sources


def train_and_dev(task: Task, source: DataSource, seed: int, max_train: int | None = None,
                  max_dev: int | None = None) -> tuple[list[dict], list[dict]]:
    """(train rows, dev rows) of the task's training language."""
    train = source.load(task, "train", max_examples=max_train)
    if not holds_out(task, source):
        return train, source.load(task, "validation", max_examples=max_dev)
    train, dev = hold_out(train, seed, 20)
    return train, dev[:max_dev] if max_dev else dev


def hold_out(rows: list, seed: int, one_in: int) -> tuple[list, list]:
    """(train, dev): a seeded shuffle of `rows` (in place), one row in `one_in` (at least one)
    held out as dev."""
    held = max(1, len(rows) // one_in)
    random.Random(seed).shuffle(rows)
    return rows[held:], rows[:held]


def provenance(task: Task, source: DataSource) -> dict:
    """A manifest's `data` entry: the source, with the commit each Hub split resolved to
    ("unpinned" when that cannot be known), or the local folder."""
    from .download import provenance as hub

    data = {"source": source.kind}
    if source.kind == "hf":
        data["train"] = hub(task, "train", task.train_language)
        data["validation"] = (HELD_OUT if holds_out(task, source)
                              else hub(task, "validation", task.train_language))
    elif source.kind == "local":
        data["dir"] = str(Path(source.data_dir).resolve())
    return data


def given_provenance(train: list, dev: list) -> dict:
    """A manifest's `data` entry for rows passed from Python (adapterxl.train(rows=...))."""
    return {"source": "rows", "train": len(train), "validation": len(dev)}
