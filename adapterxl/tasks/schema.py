"""The catalogue's vocabulary and the `Task` value. The lowest module of the task floor: the
split names, formats, suites, converter names and reader kinds declared here are imported by
every floor above (data/, formats/, experiments/), never re-declared."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AdapterxlError, unknown

CATALOG = Path(__file__).with_name("catalog.yaml")   # the built-in catalogue
SPLITS = ("train", "validation", "test")
# The held-out splits an evaluation may score, test first (a recipe's `evaluate.split`).
EVALUATION_SPLITS = tuple(reversed(SPLITS[1:]))
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
# Record converters a task may name (`converter:`); data/convert.py implements one per name
# (a test checks the two agree). Declared here so that the catalogue is checked without
# importing the data floor above it.
CONVERTER_NAMES = ("hellaswag", "cosmosqa", "commonsenseqa", "siqa", "copa")
# How a local file is read (data/readers.py read_local has one reader per kind).
READER_KINDS = ("jsonl", "tsv", "csv", "tsv_headerless", "squad_json", "conllu", "conll", "txt",
                "retrieval_jsonl", "parallel_tsv", "bucc", "tatoeba_aligned", "tatoeba_hidden")

TASK_KEYS = ("description", "format", "role", "suites", "languages", "labels", "num_choices",
             "score_range",
             "metric", "english_training_data", "train_language", "hub_lang", "sources",
             "fields", "converter", "local_only", "xtreme_files", "hyperparameters")
REQUIRED_KEYS = ("description", "format", "role", "languages", "metric", "hyperparameters")
SPEC_KEYS = ("path", "name", "split", "languages", "fields", "converter", "filter", "revision",
             "drop_unlabeled")
FILTER_KEYS = ("column", "prefix", "equals")
# One candidate of a task's files in XTREME's download layout (`xtreme_files`, in order of
# preference); `files` are all needed, `optional` ones are read when present.
XTREME_FILE_KEYS = ("kind", "files", "optional", "splits", "languages")
HYPERPARAMETER_KEYS = ("epochs", "batch_size", "max_length", "doc_stride", "layer", "lr",
                       "warmup_ratio")
PLACEHOLDERS = ("lang", "hub_lang")
# XTREME's file names also use its own split names: {split} is train, dev or test.
XTREME_PLACEHOLDERS = ("lang", "hub_lang", "split")
XTREME_SPLIT_NAMES = {"train": "train", "validation": "dev", "test": "test"}


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
    # Where XTREME's download script puts this task's files (XTREME_FILE_KEYS entries).
    xtreme_files: tuple[dict, ...] = ()

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


def xtreme_candidates(entries, hub_lang: dict, split: str, lang: str) -> list:
    """A task's `xtreme_files` -> (reader kind, required paths, optional paths) relative to
    XTREME's ``download/`` folder for one split and language, in order of preference."""
    values = {"lang": lang, "hub_lang": hub_lang.get(lang), "split": XTREME_SPLIT_NAMES[split]}
    out = []
    for entry in entries:
        if split not in entry.get("splits", SPLITS):
            continue
        if lang not in entry.get("languages", (lang,)):
            continue
        if "{hub_lang}" in "".join(entry["files"]) and values["hub_lang"] is None:
            continue
        out.append((entry["kind"], [f.format(**values) for f in entry["files"]],
                    [f.format(**values) for f in entry.get("optional", ())]))
    return out
