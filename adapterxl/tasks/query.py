"""The catalogue in use: the built-in catalog.yaml, own catalogue files ($ADAPTERXL_CATALOG)
and tasks registered from Python, merged and validated; and the questions asked of it
(get_task, suite_tasks, list_tasks, describe_tasks, guard_warning)."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import AdapterxlError, unknown
from .check import check_task, parse_catalog
from .schema import CATALOG, ROLES, SPLITS, SUITE_TASKS, SUITES, Task

# Own tasks: catalogue files (same schema) named by $ADAPTERXL_CATALOG (several separated by
# the path separator; `--catalog FILE` sets it), then tasks registered from Python. Both add
# tasks or replace built-in ones of the same name, and are validated like the built-in file.
CATALOG_ENV = "ADAPTERXL_CATALOG"
_registered: dict[str, dict] = {}
_generation = [0]  # bumped by register_task: part of the cache key


def _read_catalog(path: Path, builtin: bool) -> dict:
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise AdapterxlError(f"catalogue {path}: cannot read it ({e.strerror or e})") from e
    except yaml.YAMLError as e:
        raise AdapterxlError(f"{path.name if builtin else path} is not valid YAML "
                             f"({' '.join(str(e).split())})") from e
    if not isinstance(entries, dict) or not entries:
        raise AdapterxlError(f"{path}: expected a mapping of task names to entries")
    return entries


def _checked(entries: dict, where: str) -> dict:
    """Validate each entry alone first, so that an error names the file it came from."""
    for name, entry in entries.items():
        try:
            check_task(str(name), entry)
        except AdapterxlError as e:
            raise AdapterxlError(str(e).replace(f"{CATALOG.name}: ", f"{where}: ", 1)) from None
    return entries


def catalog() -> dict[str, Task]:
    """Every task: the built-in catalogue, then $ADAPTERXL_CATALOG's files, then registered
    tasks (later ones replace earlier ones of the same name)."""
    return _catalog(os.environ.get(CATALOG_ENV, ""), _generation[0])


@lru_cache(maxsize=8)
def _catalog(files: str, generation: int) -> dict[str, Task]:
    entries = dict(_read_catalog(CATALOG, builtin=True))
    for name in filter(None, files.split(os.pathsep)):
        path = Path(name).expanduser()
        if not path.is_file():
            raise AdapterxlError(f"catalogue {path} (${CATALOG_ENV} or --catalog) does not "
                                 f"exist")
        entries.update(_checked(_read_catalog(path, builtin=False), str(path)))
    entries.update(_checked(_registered, "register_task"))
    return parse_catalog(entries)


def register_task(name: str, entry: dict) -> Task:
    """Add (or replace) a task from Python, with a catalogue entry's keys (docs/FORMATS.md);
    validated like the catalogue. Returns the task."""
    check_task(name, entry)
    _registered[name] = dict(entry)
    _generation[0] += 1
    return get_task(name)


def get_task(name: str) -> Task:
    tasks = catalog()
    if name not in tasks:
        raise unknown("task", name, tasks)
    return tasks[name]


def suite_tasks(suite: str) -> list[Task]:
    """The tasks of a benchmark suite in the benchmark's canonical order."""
    if suite not in SUITES:
        raise unknown("suite", suite, SUITES)
    tasks = catalog()
    return [tasks[name] for name in SUITE_TASKS[suite]]


def list_tasks(role: str | None = None, suite: str | None = None) -> list[Task]:
    """Tasks in catalogue order (suite order with `suite`), optionally of one role."""
    if role is not None and role not in ROLES:
        raise unknown("role", role, ROLES)
    rows = suite_tasks(suite) if suite is not None else list(catalog().values())
    return [t for t in rows if role is None or t.role == role]


def source_summary(task: Task) -> str:
    """The task's Hub datasets in one line ("facebook/anli + nyu-mll/glue + ..."), or
    "local files only" for a task that is not on the Hub."""
    if task.local_only:
        return "local files only"
    paths = []
    for split in SPLITS:
        entry = task.sources.get(split)
        for spec in entry if isinstance(entry, list) else [entry] if entry else []:
            if spec["path"] not in paths:
                paths.append(spec["path"])
    return " + ".join(paths)


def describe_tasks(role: str | None = None, suite: str | None = None) -> list[dict]:
    """One JSON-ready summary per task (for `adapterxl tasks`); with `suite` ("xtreme",
    "xtreme-r") the benchmark's tasks with its language list for each; "intermediate" is
    shorthand for role="intermediate"."""
    if suite == "intermediate":
        role, suite = "intermediate", None
    return [{"name": t.name, "description": t.description, "format": t.format, "role": t.role,
             "metric": t.metric,
             "languages": list(t.suites[suite] if suite else t.languages),
             "suites": {s: len(langs) for s, langs in t.suites.items()},
             "english_training_data": t.english_training_data,
             "train_language": t.train_language, "source": source_summary(t),
             "local_only": t.local_only}
            for t in (list_tasks(role) if suite is None else list_tasks(role, suite=suite))]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise AdapterxlError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return split


def _train_datasets(task: Task) -> set[tuple]:
    """(path, config, split) of every Hub source of the task's train split."""
    spec = task.sources.get("train")
    specs = spec if isinstance(spec, list) else [spec] if spec else []
    return {(s["path"], s.get("name"), s["split"]) for s in specs}


def guard_warning(intermediate: str, target: str) -> str | None:
    """A sentence when the intermediate task's data is (or contains) the target's own English
    training data, so that phase 2 and phase 3 see the same examples (MNLI -> XNLI,
    SQuAD -> XQuAD / MLQA, ANLI+ (contains MNLI) -> XNLI, COPA -> XCOPA); else None."""
    inter, tgt = get_task(intermediate), get_task(target)
    etd = tgt.english_training_data
    if etd is None:
        return None
    if inter.name == etd:
        what = f"is the English training data of {tgt.name}"
    else:
        theirs = _train_datasets(get_task(etd)) | _train_datasets(tgt)
        if not _train_datasets(inter) & theirs:
            return None
        what = f"contains {etd}, the English training data of {tgt.name}"
    return (f"intermediate task {inter.name} {what}: phases 2 and 3 train on the same "
            f"examples, so a gain over training on {tgt.name} alone is not intermediate-task "
            f"transfer")
