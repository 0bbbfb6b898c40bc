"""Checks on canonical rows (docs/FORMATS.md) that every reader applies, so that what a
converter could not see (a score out of the task's range, a QA answer that is not where its
offset says, an empty word) is refused with the row's place (`file:line`) instead of being
trained on. Readers that build rows themselves call `row`; `data.convert.convert` calls it for
every record it converts."""
from __future__ import annotations

import math
import numbers

from ..errors import AdapterxlError


def row(task, r: dict, where: str) -> dict:
    """`r` unchanged when it is sound for `task`'s format; else one error naming `where`."""
    fmt = getattr(task, "format", None)
    if fmt == "regression":
        score(task, r.get("label"), where)
    elif fmt == "tagging":
        for i, t in enumerate(r.get("tokens") or ()):
            token(t, where, i + 1)
        if not r.get("tokens"):
            raise AdapterxlError(f"{where}: a sentence without words")
    elif fmt == "qa":
        for a in r.get("answers") or ():
            answer(r["context"], a["text"], a["start"], where)
    return r


def score(task, value, where: str) -> None:
    """A regression label: None (unlabeled), or a finite number within the task's range."""
    if value is None:
        return
    name = getattr(task, "name", "the task")
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise AdapterxlError(f"{where}: score {value!r} is not a finite number ({name})")
    bounds = getattr(task, "score_range", None)
    if bounds and not bounds[0] <= value <= bounds[1]:
        raise AdapterxlError(f"{where}: score {value!r} is outside {name}'s range "
                             f"{bounds[0]:g}-{bounds[1]:g}")


def token(value, where: str, index: int | None = None) -> None:
    """A word of a tagging row: a non-empty string without surrounding-only whitespace."""
    at = f" (word {index})" if index is not None else ""
    if not isinstance(value, str) or not value.strip():
        raise AdapterxlError(f"{where}: empty word{at}: {value!r}")


def answer(context: str, text: str, start: int, where: str) -> None:
    """A QA answer must be found at its character offset in the context."""
    found = context[start:start + len(text)] if 0 <= start <= len(context) else ""
    if not text or found != text:
        raise AdapterxlError(f"{where}: answer {text!r} is not at character {start} of its "
                             f"context (found {found!r})")
