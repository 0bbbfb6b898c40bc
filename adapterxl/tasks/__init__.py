"""The task catalogue: formats, labels, languages, benchmark suites, metrics, Hub sources,
XTREME's file layout and hyperparameters. Entries live in catalog.yaml (schema:
docs/FORMATS.md). The bottom of the data side: imports nothing of adapterxl but `errors`.

- schema.py   the vocabulary (SPLITS, FORMATS, SUITES, ...) and the `Task` value
- check.py    validation of entries: one clear error naming the task and the key
- query.py    the catalogue in use (built-in, own files, registered) and questions about it
"""
from . import query as _state
from .query import (CATALOG_ENV, catalog, check_split, describe_tasks, get_task,
                    guard_warning, list_tasks, register_task, source_summary, suite_tasks)
from .check import check_task, parse_catalog
from .schema import (CATALOG, CONVERTER_NAMES, EVALUATION_SPLITS, FIELD_KEYS, FORMATS,
                     LABELED_FORMATS, METRICS, READER_KINDS, ROLES, SPLITS, SUITE_TASKS, SUITES,
                     TARGET_KEYS, TASK_KEYS, TEXT_COLUMNS, Task, xtreme_candidates)

# The registered tasks and their generation (part of the catalogue's cache key), shared with
# query.py: tests restore them after registering tasks of their own.
_registered, _generation = _state._registered, _state._generation

__all__ = ["CATALOG", "CATALOG_ENV", "CONVERTER_NAMES", "EVALUATION_SPLITS", "FIELD_KEYS",
           "FORMATS", "LABELED_FORMATS", "METRICS", "READER_KINDS", "ROLES", "SPLITS",
           "SUITE_TASKS", "SUITES", "TARGET_KEYS", "TASK_KEYS", "TEXT_COLUMNS", "Task",
           "catalog", "check_split", "check_task", "describe_tasks", "get_task",
           "guard_warning", "list_tasks", "parse_catalog", "register_task", "source_summary",
           "suite_tasks", "xtreme_candidates"]
