"""Where examples come from. Every source yields the same canonical rows:
{"text": (field, ...), "label": int | None} (None: the split carries no labels)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import AdapterxlError
from ..tasks import Task, check_split

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"
SOURCES = ("hf", "samples", "local")
OFFLINE_HINT = "to run offline use --data samples (or --data-dir DIR with local files)"


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
        path = Path(data_dir)
        if not path.is_dir():
            raise AdapterxlError(f"data directory {str(path)!r} does not exist")
        return path
    return None


def _find_file(root: Path, task: Task, split: str, lang: str) -> Path | None:
    names = [f"{split}.{lang}"]
    if lang == task.train_language or len(task.languages) == 1:
        names.append(split)
    for name in names:
        for ext in (".jsonl", ".tsv"):
            if (root / (name + ext)).exists():
                return root / (name + ext)
    return None


def available_languages(task: Task, split: str, data: str = "hf", data_dir=None) -> list[str]:
    """Languages with data for this split (all of the task's languages on the Hub)."""
    root = local_dir(task, data, data_dir)
    if root is None:
        return list(task.languages)
    return [lang for lang in task.languages if _find_file(root, task, split, lang)]


def _label(task: Task, value, where: str) -> int | None:
    if value is None or value == "" or value == -1 or value == "-1":
        return None
    if isinstance(value, str):
        if value in task.labels:
            return task.labels.index(value)
        if value.lstrip("-").isdigit():
            value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(task.labels):
        return value
    raise AdapterxlError(f"{where}: label {value!r} is not in the label set of {task.name} "
                         f"({', '.join(task.labels)} or 0..{len(task.labels) - 1})")


def _row(task: Task, record: dict, where: str) -> dict:
    missing = [f for f in task.text_fields if f not in record]
    if missing:
        raise AdapterxlError(f"{where}: missing column {missing[0]!r} (expected "
                             f"{', '.join(task.text_fields)}, {task.label_field})")
    text = tuple("" if record[f] is None else str(record[f]) for f in task.text_fields)
    return {"text": text, "label": _label(task, record.get(task.label_field), where)}


def read_file(task: Task, path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix == ".jsonl":
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise AdapterxlError(f"{path}:{n}: not valid JSON ({e.msg})") from e
                if not isinstance(record, dict):
                    raise AdapterxlError(f"{path}:{n}: expected a JSON object per line")
                rows.append(_row(task, record, f"{path}:{n}"))
        else:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            for n, record in enumerate(reader, 2):
                if None in record:
                    raise AdapterxlError(f"{path}:{n}: more fields than the header has")
                rows.append(_row(task, record, f"{path}:{n}"))
    return rows


def _load_hf(task: Task, split: str, lang: str) -> list[dict]:
    import datasets

    spec = task.sources.get(split)
    if spec is None:
        raise AdapterxlError(f"{task.name} has no {split} split on the Hugging Face Hub")
    name = spec.get("name")
    name = name.format(lang=lang) if name else None
    where = f"{spec['path']}" + (f" ({name})" if name else "") + f" {spec['split']}"
    datasets.logging.set_verbosity_error()
    try:
        ds = datasets.load_dataset(spec["path"], name, split=spec["split"])
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as e:
        raise AdapterxlError(f"cannot fetch dataset {where}: not cached and the Hugging Face "
                             f"Hub is unreachable ({type(e).__name__}); {OFFLINE_HINT}") from e
    return [_row(task, record, where) for record in ds]


def load_split(task: Task, split: str, lang: str | None = None, data: str = "hf", data_dir=None,
               max_examples: int | None = None) -> list[dict]:
    """Rows of one split in one language (default: the task's training language)."""
    check_split(split)
    lang = lang or task.train_language
    root = local_dir(task, data, data_dir)
    if root is None:
        rows = _load_hf(task, split, lang)
        where = f"{task.name} {split} ({lang}) on the Hub"
    else:
        path = _find_file(root, task, split, lang)
        if path is None:
            raise AdapterxlError(f"no {split} data for {task.name} in {lang} under {root} "
                                 f"(expected {split}.{lang}.jsonl or .tsv)")
        rows = read_file(task, path)
        where = str(path)
    if not rows:
        raise AdapterxlError(f"{where}: the {split} split is empty")
    return rows[:max_examples] if max_examples else rows
