"""The task catalogue: formats, labels, languages, benchmark suites, metrics, Hub sources and
hyperparameters. Entries live in catalog.yaml (schema: docs/FORMATS.md); this module reads them,
validates the whole catalogue on load (one clear error naming the task and the key), and answers
questions about tasks and suites."""
from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import AdapterxlError, unknown

CATALOG = Path(__file__).with_name("catalog.yaml")
SPLITS = ("train", "validation", "test")
SUITES = ("xtreme", "xtreme-r")
FORMATS = ("classification", "pair_classification", "regression", "tagging", "qa",
           "multiple_choice", "retrieval", "mlm")
ROLES = ("intermediate", "target")
METRICS = ("accuracy", "tagging_f1", "squad", "squad_v2", "mlqa", "pearson_spearman", "bucc_f1",
           "map@20")

# Each benchmark's tasks in its canonical order (the order of the papers' result tables).
# The catalogue must agree: a task lists a suite under `suites` exactly when it is named here.
SUITE_TASKS = {
    "xtreme": ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc2018",
               "tatoeba"),
    "xtreme-r": ("xnli", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa", "tatoeba",
                 "mewslix", "lareqa"),
}

# Canonical keys a format's rows are built from; `fields` maps them to a dataset's columns.
# Keys in TARGET_KEYS may be missing from a record (hidden test labels -> None).
FIELD_KEYS = {
    "classification": ("text", "label"),
    "pair_classification": ("text", "label"),
    "regression": ("text", "label"),
    "tagging": ("tokens", "tags"),
    "qa": ("id", "question", "context", "answers"),
    "multiple_choice": ("context", "choices", "label"),
    "retrieval": ("query", "candidate"),
    "mlm": ("text",),
}
TARGET_KEYS = ("label", "tags", "answers")
TEXT_COLUMNS = {"classification": 1, "pair_classification": 2, "regression": 2}
LABELED_FORMATS = ("classification", "pair_classification")   # `labels` required
TASK_KEYS = ("description", "format", "role", "suites", "languages", "labels", "num_choices",
             "score_range",
             "metric", "english_training_data", "train_language", "hub_lang", "sources",
             "fields", "converter", "local_only", "hyperparameters")
REQUIRED_KEYS = ("description", "format", "role", "languages", "metric", "hyperparameters")
SPEC_KEYS = ("path", "name", "split", "languages", "fields", "converter", "filter", "revision",
             "drop_unlabeled")
FILTER_KEYS = ("column", "prefix", "equals")
HYPERPARAMETER_KEYS = ("epochs", "batch_size", "max_length", "doc_stride", "layer", "lr",
                       "warmup_ratio")
PLACEHOLDERS = ("lang", "hub_lang")
_LANG = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    format: str
    role: str
    languages: tuple[str, ...]
    metric: str
    sources: dict
    hyperparameters: dict
    # Class labels / tag set in the Hub dataset's ClassLabel order (integer labels index it);
    # () where the format has none (regression, QA, multiple choice, retrieval); None when the
    # tag set is collected from the training files (CCG supertags).
    labels: tuple[str, ...] | None = ()
    suites: dict[str, tuple[str, ...]] = field(default_factory=dict)
    num_choices: int | None = None
    english_training_data: str | None = None
    train_language: str = "en"
    hub_lang: dict[str, str] = field(default_factory=dict)
    fields: dict = field(default_factory=dict)
    converter: str | None = None
    local_only: str | None = None
    # Regression: the smallest and largest score (STS-B 0-5, SICK-R 1-5); data outside it is
    # refused when read.
    score_range: tuple[float, float] | None = None

    @property
    def text_fields(self) -> tuple[str, ...]:
        """The columns that make up `text` (classification formats); kept for older callers."""
        cols = self.fields.get("text", ())
        return (cols,) if isinstance(cols, str) else tuple(cols)

    @property
    def label_field(self) -> str:
        """The column holding the label (classification formats); kept for older callers."""
        col = self.fields.get("label", "label")
        return col if isinstance(col, str) else "label"

    def suite_languages(self, suite: str) -> tuple[str, ...]:
        if suite not in SUITES:
            raise unknown("suite", suite, SUITES)
        if suite not in self.suites:
            member = ", ".join(self.suites) or "no benchmark suite"
            raise AdapterxlError(f"{self.name} is not a task of {suite} (it belongs to {member})")
        return self.suites[suite]

    def resolve_languages(self, languages, suite: str | None = None) -> list[str]:
        """'all', a comma list or a sequence of codes -> the task's languages, validated.
        With `suite`, 'all' means the benchmark's language list for this task, and every code
        must be one of that list."""
        pool = self.suite_languages(suite) if suite else self.languages
        if languages in (None, "all", ("all",), ["all"]):
            return list(pool)
        if isinstance(languages, str):
            languages = [x.strip() for x in languages.split(",") if x.strip()]
        kind = f"language for {self.name}" + (f" in {suite}" if suite else "")
        out = []
        for lang in languages:
            if lang not in pool:
                raise unknown(kind, lang, pool)
            if lang not in out:
                out.append(lang)
        return out


# --- validation ------------------------------------------------------------------------------

def _fail(name: str, message: str) -> AdapterxlError:
    return AdapterxlError(f"{CATALOG.name}: task {name!r}: {message}")


def _str_list(name: str, key: str, value, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _fail(name, f"{key} must be a list of strings, got {value!r}")
    if not value and not allow_empty:
        raise _fail(name, f"{key} must not be empty")
    if len(set(value)) != len(value):
        dup = sorted({v for v in value if list(value).count(v) > 1})
        raise _fail(name, f"{key} lists {', '.join(dup)} more than once")
    return tuple(value)


def _placeholders(text: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]


def _check_fields(name: str, where: str, fmt: str, fields) -> dict:
    if not isinstance(fields, dict):
        raise _fail(name, f"{where} must be a mapping of canonical keys to columns")
    for key, cols in fields.items():
        if key not in FIELD_KEYS[fmt]:
            raise _fail(name, f"{where}: {key!r} is not a canonical key of the {fmt} format "
                              f"(known: {', '.join(FIELD_KEYS[fmt])})")
        if isinstance(cols, str):
            cols = [cols]
        if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
            raise _fail(name, f"{where}.{key} must be a column name or a list of them")
        if key == "text" and fmt in TEXT_COLUMNS and len(cols) != TEXT_COLUMNS[fmt]:
            raise _fail(name, f"{where}.text needs {TEXT_COLUMNS[fmt]} column(s) for the {fmt} "
                              f"format, got {len(cols)}")
    return dict(fields)


def _check_converter(name: str, where: str, converter) -> None:
    from ..data.convert import CONVERTERS

    if converter not in CONVERTERS:
        raise _fail(name, f"{where}: unknown converter {converter!r} "
                          f"(known: {', '.join(sorted(CONVERTERS))})")


def _check_spec(name: str, split: str, spec, fmt: str, languages, hub_lang) -> dict:
    where = f"sources.{split}"
    if not isinstance(spec, dict):
        raise _fail(name, f"{where}: each source must be a mapping with path and split")
    for key in spec:
        if key not in SPEC_KEYS:
            raise _fail(name, f"{where}: unknown key {key!r} (known: {', '.join(SPEC_KEYS)})")
    for key in ("path", "split"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise _fail(name, f"{where}: every source needs a {key!r}")
    covered = languages
    if "languages" in spec:
        covered = _str_list(name, f"{where}.languages", spec["languages"])
        stray = [x for x in covered if x not in languages]
        if stray:
            raise _fail(name, f"{where}.languages has {', '.join(stray)}, not in languages")
    texts = [spec.get("name")] + list((spec.get("filter") or {}).values())
    for text in texts:
        if not isinstance(text, str):
            continue
        try:
            fields_used = _placeholders(text)
        except ValueError as e:
            raise _fail(name, f"{where}: bad placeholder in {text!r} ({e})") from e
        for f in fields_used:
            if f not in PLACEHOLDERS:
                raise _fail(name, f"{where}: unknown placeholder {{{f}}} in {text!r} "
                                  f"(known: {{lang}}, {{hub_lang}})")
            if f == "hub_lang":
                missing = [x for x in covered if x not in hub_lang]
                if missing:
                    raise _fail(name, f"{where}: {text!r} uses {{hub_lang}} but hub_lang has "
                                      f"no entry for {', '.join(missing)}")
    if "name" in spec and spec["name"] is not None and not isinstance(spec["name"], str):
        raise _fail(name, f"{where}.name must be a string")
    if "filter" in spec:
        flt = spec["filter"]
        if (not isinstance(flt, dict) or "column" not in flt
                or set(flt) - set(FILTER_KEYS) or len(set(flt) & {"prefix", "equals"}) != 1):
            raise _fail(name, f"{where}.filter must be {{column: ..., prefix: ...}} or "
                              f"{{column: ..., equals: ...}}")
    if "fields" in spec:
        _check_fields(name, f"{where}.fields", fmt, spec["fields"])
    if "converter" in spec and spec["converter"] is not None:
        _check_converter(name, where, spec["converter"])
    if "drop_unlabeled" in spec and not isinstance(spec["drop_unlabeled"], bool):
        raise _fail(name, f"{where}.drop_unlabeled must be true or false")
    return dict(spec)


def _check_task(name: str, entry) -> Task:
    if not isinstance(entry, dict):
        raise _fail(name, "the entry must be a mapping")
    for key in entry:
        if key not in TASK_KEYS:
            raise _fail(name, f"unknown key {key!r} (known: {', '.join(TASK_KEYS)})")
    for key in REQUIRED_KEYS:
        if key not in entry:
            raise _fail(name, f"missing key {key!r}")
    fmt, role, metric = entry["format"], entry["role"], entry["metric"]
    if fmt not in FORMATS:
        raise _fail(name, f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if role not in ROLES:
        raise _fail(name, f"unknown role {role!r} (known: {', '.join(ROLES)})")
    if metric not in METRICS:
        raise _fail(name, f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    if not isinstance(entry["description"], str) or not entry["description"].strip():
        raise _fail(name, "description must be a non-empty string")
    languages = _str_list(name, "languages", entry["languages"])
    bad = [x for x in languages if not _LANG.match(x)]
    if bad:
        raise _fail(name, f"languages must be 2-letter codes, got {', '.join(bad)}")
    train_language = entry.get("train_language", "en")
    if fmt != "retrieval" and train_language not in languages:
        raise _fail(name, f"train_language {train_language!r} is not in languages")

    # labels
    if fmt in LABELED_FORMATS:
        if entry.get("labels") is None:
            raise _fail(name, f"the {fmt} format needs labels")
        labels = _str_list(name, "labels", entry["labels"])
    elif fmt == "tagging":
        if "labels" not in entry:
            raise _fail(name, "the tagging format needs labels (the tag set, or null when it "
                              "is collected from the training files)")
        labels = None if entry["labels"] is None else _str_list(name, "labels", entry["labels"])
    else:
        if entry.get("labels"):
            raise _fail(name, f"the {fmt} format takes no labels")
        labels = ()
    num_choices = entry.get("num_choices")
    if fmt == "multiple_choice":
        if not isinstance(num_choices, int) or isinstance(num_choices, bool) or num_choices < 2:
            raise _fail(name, "the multiple_choice format needs num_choices (an integer >= 2)")
    elif num_choices is not None:
        raise _fail(name, "num_choices is only for the multiple_choice format")

    score_range = entry.get("score_range")
    if score_range is not None:
        if fmt != "regression":
            raise _fail(name, "score_range is only for the regression format")
        if not (isinstance(score_range, list) and len(score_range) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                        for x in score_range) and score_range[0] < score_range[1]):
            raise _fail(name, "score_range must be [lowest, highest], two numbers")
        score_range = (float(score_range[0]), float(score_range[1]))

    # suites
    suites = entry.get("suites") or {}
    if not isinstance(suites, dict):
        raise _fail(name, "suites must map a suite name to its language list")
    if suites and role != "target":
        raise _fail(name, "only target tasks belong to a benchmark suite")
    out_suites = {}
    for suite, langs in suites.items():
        if suite not in SUITES:
            raise _fail(name, f"unknown suite {suite!r} (known: {', '.join(SUITES)})")
        langs = _str_list(name, f"suites.{suite}", langs)
        stray = [x for x in langs if x not in languages]
        if stray:
            raise _fail(name, f"suites.{suite} has {', '.join(stray)}, not in languages")
        out_suites[suite] = langs

    # hub_lang
    hub_lang = entry.get("hub_lang") or {}
    if not isinstance(hub_lang, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in hub_lang.items()):
        raise _fail(name, "hub_lang must map language codes to strings")
    stray = [x for x in hub_lang if x not in languages]
    if stray:
        raise _fail(name, f"hub_lang has {', '.join(stray)}, not in languages")

    # fields and converter
    fields = _check_fields(name, "fields", fmt, entry.get("fields") or {})
    converter = entry.get("converter")
    if converter is not None:
        _check_converter(name, "converter", converter)

    # sources
    local_only = entry.get("local_only")
    if local_only is not None and (not isinstance(local_only, str) or not local_only.strip()):
        raise _fail(name, "local_only must say why the task has no Hub source")
    sources = entry.get("sources") or {}
    if not isinstance(sources, dict):
        raise _fail(name, "sources must map a split to a source (or a list of them)")
    out_sources = {}
    for split, value in sources.items():
        if split not in SPLITS:
            raise _fail(name, f"sources: unknown split {split!r} (known: {', '.join(SPLITS)})")
        if isinstance(value, list):
            if not value:
                raise _fail(name, f"sources.{split} is an empty list")
            out_sources[split] = [_check_spec(name, split, s, fmt, languages, hub_lang)
                                  for s in value]
        else:
            out_sources[split] = _check_spec(name, split, value, fmt, languages, hub_lang)
    if local_only is None:
        if not out_sources:
            raise _fail(name, "sources is empty (set local_only to say why)")
        if role == "intermediate" and "train" not in out_sources:
            raise _fail(name, "an intermediate task needs a train source")

    hp = entry["hyperparameters"]
    if not isinstance(hp, dict):
        raise _fail(name, "hyperparameters must be a mapping")
    for key in hp:
        if key not in HYPERPARAMETER_KEYS:
            raise _fail(name, f"hyperparameters: unknown key {key!r} "
                              f"(known: {', '.join(HYPERPARAMETER_KEYS)})")
    etd = entry.get("english_training_data")
    if etd is not None and not isinstance(etd, str):
        raise _fail(name, "english_training_data must be a task name or null")
    return Task(name=name, description=entry["description"].strip(), format=fmt, role=role,
                languages=languages, metric=metric, sources=out_sources,
                hyperparameters=dict(hp), labels=labels, suites=out_suites,
                num_choices=num_choices, english_training_data=etd,
                train_language=train_language, hub_lang=dict(hub_lang), fields=fields,
                converter=converter, local_only=local_only, score_range=score_range)


def parse_catalog(entries) -> dict[str, Task]:
    """Validate catalogue entries (the parsed YAML) and build the tasks. Raises one
    AdapterxlError naming the task and key at the first problem."""
    if not isinstance(entries, dict) or not entries:
        raise AdapterxlError(f"{CATALOG.name}: expected a mapping of task names to entries")
    tasks = {str(name): _check_task(str(name), entry) for name, entry in entries.items()}
    for task in tasks.values():
        etd = task.english_training_data
        if etd is not None and etd not in tasks:
            raise _fail(task.name, f"english_training_data {etd!r} is not a task")
    for suite, names in SUITE_TASKS.items():
        listed = [t.name for t in tasks.values() if suite in t.suites]
        missing = [n for n in names if n not in tasks or suite not in tasks[n].suites]
        extra = [n for n in listed if n not in names]
        if missing or extra:
            detail = "; ".join(filter(None, [
                missing and f"missing or without suites.{suite}: {', '.join(missing)}",
                extra and f"not part of {suite}: {', '.join(extra)}"]))
            raise AdapterxlError(f"{CATALOG.name}: suite {suite!r} must be exactly "
                                 f"{', '.join(names)} ({detail})")
    return tasks


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
            _check_task(str(name), entry)
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
    _check_task(name, entry)
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
