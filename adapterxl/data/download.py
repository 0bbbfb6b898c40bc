"""Hugging Face Hub datasets -> canonical rows (or, for retrieval tasks, one corpus).

A task's `sources` (tasks/catalog.yaml) map each canonical split to a Hub source or a list of
them (concatenated, e.g. ANLI+). A source's `name` (the dataset config) and `filter` may use
{lang} (our 2-letter code) and {hub_lang} (the task's `hub_lang` entry for it, e.g. German for
udpos, deu for tatoeba, english for tydiqa); a source with `languages` serves only those. Rows
go through data/convert.py, the same path as local files and the bundled samples.
"""
from __future__ import annotations

import functools

from ..errors import AdapterxlError, unknown
from ..tasks import Task, check_split
from .convert import convert, convert_corpus, target_of

OFFLINE_HINT = "to run offline use --data samples (or --data-dir DIR with local files)"
SCRIPT_HINT = ("set `revision: refs/convert/parquet` on this source in catalog.yaml (the Hub's "
               "parquet export)")


def _specs(task: Task, split: str) -> list[dict]:
    entry = task.sources.get(split)
    if entry is None:
        return []
    return list(entry) if isinstance(entry, list) else [entry]


def _resolve(task: Task, split: str, lang: str) -> list[dict]:
    check_split(split)
    if task.local_only:
        raise AdapterxlError(f"{task.name} is not on the Hugging Face Hub: {task.local_only}; "
                             f"pass --data-dir DIR with local files")
    if lang not in task.languages:
        raise unknown(f"language for {task.name}", lang, task.languages)
    specs = _specs(task, split)
    if not specs:
        raise AdapterxlError(f"{task.name} has no {split} split on the Hugging Face Hub")
    chosen = [s for s in specs if lang in s.get("languages", task.languages)]
    if not chosen:
        served = sorted({x for s in specs for x in s.get("languages", task.languages)})
        raise AdapterxlError(f"{task.name} has no {split} data in {lang} on the Hugging Face "
                             f"Hub (only {', '.join(served)}); pass --data-dir DIR with local "
                             f"files")
    hub = task.hub_lang.get(lang, lang)

    def fill(text):
        return text.format(lang=lang, hub_lang=hub) if isinstance(text, str) else text

    out = []
    for spec in chosen:
        spec = {k: v for k, v in spec.items() if k != "languages"}
        if spec.get("name") is not None:
            spec["name"] = fill(spec["name"])
        if "filter" in spec:
            spec["filter"] = {k: fill(v) for k, v in spec["filter"].items()}
        out.append(spec)
    return out


def hub_spec(task: Task, split: str, lang: str) -> dict:
    """The Hub source(s) of one split in one language, resolved (config names filled in), for
    manifests: {"task", "split", "language", "sources": [{path, name, split, ...}, ...]}."""
    return {"task": task.name, "split": split, "language": lang,
            "sources": _resolve(task, split, lang)}


def is_commit(revision) -> bool:
    """A full 40-hex commit id: the only revision that pins a dataset's content."""
    return isinstance(revision, str) and len(revision) == 40 and all(
        c in "0123456789abcdef" for c in revision.lower())


@functools.lru_cache(maxsize=None)
def resolve_commit(path: str, revision: str | None) -> str | None:
    """The commit a dataset revision (a branch, e.g. main or refs/convert/parquet) points to
    now, asked of the Hub; None when that cannot be known (offline, unreachable, no access)."""
    if is_commit(revision):
        return revision
    from ..connectivity import hub_unreachable, offline_mode

    if offline_mode() or hub_unreachable():
        return None
    try:
        import huggingface_hub

        return huggingface_hub.HfApi().dataset_info(path, revision=revision, timeout=10).sha
    except Exception:  # noqa: BLE001 - provenance is best effort; recorded as unpinned
        return None


def provenance(task: Task, split: str, lang: str) -> list[dict]:
    """Each Hub source of one split in one language: {path, name, split, revision (as the
    catalogue gives it; None is the default branch), commit (the 40-hex commit it resolves to,
    or "unpinned" when it cannot be known), pinned (whether the catalogue fixes the commit)}."""
    out = []
    for spec in _resolve(task, split, lang):
        revision = spec.get("revision")
        out.append({"path": spec["path"], "name": spec.get("name"), "split": spec["split"],
                    "revision": revision,
                    "commit": resolve_commit(spec["path"], revision) or "unpinned",
                    "pinned": is_commit(revision)})
    return out


def _where(spec: dict) -> str:
    name = spec.get("name")
    return f"{spec['path']}" + (f" ({name})" if name else "") + f" {spec['split']}"


def _load(datasets, spec: dict, where: str):
    from ..connectivity import hub_unreachable, unreachable_hint

    kwargs = {"revision": spec["revision"]} if spec.get("revision") else {}
    why = hub_unreachable()
    if why:
        raise AdapterxlError(f"cannot fetch dataset {where}: {unreachable_hint(why)}; "
                             f"{OFFLINE_HINT}")
    try:
        return datasets.load_dataset(spec["path"], spec.get("name"), split=spec["split"],
                                     **kwargs)
    except datasets.exceptions.DatasetNotFoundError as e:
        raise AdapterxlError(f"cannot fetch dataset {where}: not found on the Hugging Face Hub "
                             f"or not accessible ({type(e).__name__}); {OFFLINE_HINT}") from e
    except (ConnectionError, OSError) as e:
        raise AdapterxlError(f"cannot fetch dataset {where}: not cached and the Hugging Face "
                             f"Hub is unreachable ({type(e).__name__}); {OFFLINE_HINT}") from e
    except RuntimeError as e:
        if "scripts are no longer supported" in str(e):
            raise AdapterxlError(f"cannot load dataset {where}: the Hub repository only has a "
                                 f"loading script, which this datasets version refuses; "
                                 f"{SCRIPT_HINT}") from e
        raise
    except ValueError as e:  # unknown config or split
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AdapterxlError(f"cannot load dataset {where}: {first}") from e


def _class_names(ds, column) -> list[str] | None:
    """The names of a ClassLabel column (or of a sequence of ClassLabels), else None."""
    from datasets import ClassLabel

    features = getattr(ds, "features", None)
    if not features or not isinstance(column, str) or column not in features:
        return None
    feature = features[column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    inner = getattr(feature, "feature", None)
    if isinstance(inner, ClassLabel):
        return list(inner.names)
    return None


def _check_label_names(task: Task, spec: dict, ds, where: str) -> None:
    """Integer labels index task.labels: refuse a Hub ClassLabel whose names differ."""
    if not task.labels or task.format not in ("classification", "pair_classification",
                                              "tagging"):
        return
    if (spec["converter"] if "converter" in spec else task.converter) is not None:
        return
    fields = spec["fields"] if "fields" in spec else task.fields
    key = "tags" if task.format == "tagging" else "label"
    names = _class_names(ds, fields.get(key, key))
    if names is not None and names != list(task.labels):
        raise AdapterxlError(f"{where}: the dataset's label names ({', '.join(names)}) differ "
                             f"from {task.name}'s labels in catalog.yaml "
                             f"({', '.join(task.labels)}); integer labels would be misread")


def _keep(record: dict, flt: dict | None) -> bool:
    if not flt:
        return True
    value = record.get(flt["column"])
    if "prefix" in flt:
        return isinstance(value, str) and value.startswith(flt["prefix"])
    return value == flt["equals"]


def load_hub(task: Task, split: str, lang: str):
    """Canonical rows of one split in one language from the Hub (a list), or one corpus for a
    retrieval task. Several sources are concatenated in catalogue order."""
    specs = _resolve(task, split, lang)
    import datasets

    datasets.logging.set_verbosity_error()
    rows, records, first_where = [], [], None
    for spec in specs:
        where = _where(spec)
        first_where = first_where or where
        ds = _load(datasets, spec, where)
        _check_label_names(task, spec, ds, where)
        flt = spec.get("filter")
        for n, record in enumerate(ds, 1):
            if not _keep(record, flt):
                continue
            if task.format == "retrieval":
                records.append(record)
                continue
            row = convert(task, record, f"{where}:{n}", spec=spec)
            if spec.get("drop_unlabeled") and target_of(row) is None:
                continue
            rows.append(row)
    if task.format == "retrieval":
        return convert_corpus(task, records, first_where, lang=lang, spec=specs[0])
    return rows
