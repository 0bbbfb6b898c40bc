"""Validation of catalogue entries: one clear error naming the task and the key at the first
problem. `check_task` turns one entry (the parsed YAML mapping) into a `Task`;
`parse_catalog` checks a whole catalogue, including what spans tasks (suites,
english_training_data)."""
from __future__ import annotations

import re
import string

from ..errors import AdapterxlError
from .schema import (CATALOG, CONVERTER_NAMES, FIELD_KEYS, FILTER_KEYS, FORMATS,
                     HYPERPARAMETER_KEYS, LABELED_FORMATS, METRICS, PLACEHOLDERS, READER_KINDS,
                     REQUIRED_KEYS, ROLES, SPEC_KEYS, SPLITS, SUITE_TASKS, SUITES, TASK_KEYS,
                     TEXT_COLUMNS, XTREME_FILE_KEYS, XTREME_PLACEHOLDERS, Task)

_LANG = re.compile(r"^[a-z]{2,3}$")


def _within(name: str, where: str, values, languages) -> None:
    """Refuses language codes in `values` that the task's `languages` do not list."""
    stray = [x for x in values if x not in languages]
    if stray:
        raise _fail(name, f"{where} has {', '.join(stray)}, not in languages")


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
    if converter not in CONVERTER_NAMES:
        raise _fail(name, f"{where}: unknown converter {converter!r} "
                          f"(known: {', '.join(sorted(CONVERTER_NAMES))})")


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
        _within(name, f"{where}.languages", covered, languages)
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


def _check_labels(name: str, fmt: str, entry: dict):
    """labels, num_choices and score_range: which a format needs, takes or refuses."""
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
    return labels, num_choices, score_range


def _check_suites(name: str, entry: dict, role: str, languages) -> dict:
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
        _within(name, f"suites.{suite}", langs, languages)
        out_suites[suite] = langs
    return out_suites


def _check_hub_lang(name: str, entry: dict, languages) -> dict:
    hub_lang = entry.get("hub_lang") or {}
    if not isinstance(hub_lang, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in hub_lang.items()):
        raise _fail(name, "hub_lang must map language codes to strings")
    _within(name, "hub_lang", hub_lang, languages)
    return dict(hub_lang)


def _check_sources(name: str, entry: dict, fmt: str, role: str, languages, hub_lang) -> dict:
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
    return out_sources


def _check_xtreme_files(name: str, entries, languages) -> tuple[dict, ...]:
    """`xtreme_files`: a list of {kind, files, optional, splits, languages} (schema.py)."""
    if not isinstance(entries, list):
        raise _fail(name, "xtreme_files must be a list of {kind, files} entries")
    out = []
    for i, entry in enumerate(entries):
        where = f"xtreme_files[{i}]"
        if not isinstance(entry, dict):
            raise _fail(name, f"{where} must be a mapping with kind and files")
        for key in entry:
            if key not in XTREME_FILE_KEYS:
                raise _fail(name, f"{where}: unknown key {key!r} "
                                  f"(known: {', '.join(XTREME_FILE_KEYS)})")
        if entry.get("kind") not in READER_KINDS:
            raise _fail(name, f"{where}: unknown kind {entry.get('kind')!r} "
                              f"(known: {', '.join(READER_KINDS)})")
        checked = {"kind": entry["kind"]}
        for key in ("files", "optional"):
            if key in entry or key == "files":
                checked[key] = _str_list(name, f"{where}.{key}", entry.get(key))
                for text in checked[key]:
                    try:
                        used = _placeholders(text)
                    except ValueError as e:
                        raise _fail(name, f"{where}: bad placeholder in {text!r} ({e})") from e
                    stray = [f for f in used if f not in XTREME_PLACEHOLDERS]
                    if stray:
                        raise _fail(name, f"{where}: unknown placeholder {{{stray[0]}}} in "
                                          f"{text!r} (known: {{lang}}, {{hub_lang}}, {{split}})")
        if "splits" in entry:
            checked["splits"] = _str_list(name, f"{where}.splits", entry["splits"])
            stray = [x for x in checked["splits"] if x not in SPLITS]
            if stray:
                raise _fail(name, f"{where}.splits: unknown split {stray[0]!r} "
                                  f"(known: {', '.join(SPLITS)})")
        if "languages" in entry:
            checked["languages"] = _str_list(name, f"{where}.languages", entry["languages"])
            _within(name, f"{where}.languages", checked["languages"], languages)
        out.append(checked)
    return tuple(out)


def _check_basics(name: str, entry) -> tuple[str, str, str, tuple[str, ...], str]:
    """Keys, format, role, metric, description and languages -> (fmt, role, metric,
    languages, train_language)."""
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
    return fmt, role, metric, languages, train_language


def check_task(name: str, entry) -> Task:
    """One catalogue entry -> its Task; raises AdapterxlError naming the task and the key."""
    fmt, role, metric, languages, train_language = _check_basics(name, entry)
    labels, num_choices, score_range = _check_labels(name, fmt, entry)
    suites = _check_suites(name, entry, role, languages)
    hub_lang = _check_hub_lang(name, entry, languages)
    fields = _check_fields(name, "fields", fmt, entry.get("fields") or {})
    converter = entry.get("converter")
    if converter is not None:
        _check_converter(name, "converter", converter)
    sources = _check_sources(name, entry, fmt, role, languages, hub_lang)
    xtreme_files = _check_xtreme_files(name, entry.get("xtreme_files") or [], languages)
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
                languages=languages, metric=metric, sources=sources,
                hyperparameters=dict(hp), labels=labels, suites=suites,
                num_choices=num_choices, english_training_data=etd,
                train_language=train_language, hub_lang=hub_lang, fields=fields,
                converter=converter, local_only=entry.get("local_only"),
                score_range=score_range, xtreme_files=xtreme_files)


def parse_catalog(entries) -> dict[str, Task]:
    """Validate catalogue entries (the parsed YAML) and build the tasks. Raises one
    AdapterxlError naming the task and key at the first problem."""
    if not isinstance(entries, dict) or not entries:
        raise AdapterxlError(f"{CATALOG.name}: expected a mapping of task names to entries")
    tasks = {str(name): check_task(str(name), entry) for name, entry in entries.items()}
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
