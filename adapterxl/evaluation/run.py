"""Zero-shot evaluation: a module trained on English, scored on every language of its task
(or of a whole benchmark suite), with predictions written in the submission layout that
XTREME's evaluate.py reads: <dir>/<task>/<split>-<lang>.<ext>. How one language is scored is
the task format's (`Format.evaluate`); this module picks the languages, loads the model once
and writes the results."""
from __future__ import annotations

import time
from pathlib import Path

from .. import _io
from ..errors import AdapterxlError


def check_predictable(module, task) -> str | None:
    """A module predicts another task only with the same format and the same labels in the same
    order (an MNLI module scores XNLI directly; a SQuAD module scores XQuAD). Retrieval reads
    representations, so any module serves. Returns the head that predicts it (a multi-task
    module has one per task: the task's own, else the first that fits)."""
    from ..formats import get_format

    if get_format(task.format).head is None:  # scored on representations: any module
        return None
    theirs = module.manifest
    heads = list(module.heads)
    formats = theirs.get("formats") or {name: theirs.get("format") for name in heads}
    fits = [name for name in heads if formats.get(name) == task.format and (
        task.labels is None or module.labels_for(name) == list(task.labels))]
    if fits:
        return task.name if task.name in fits else fits[0]
    labels = f", labels {','.join(theirs['labels'])}" if theirs.get("labels") else ""
    ours = f", labels {','.join(task.labels)}" if task.labels else ""
    raise AdapterxlError(f"module {module.path} was trained on {theirs['task']} "
                         f"({theirs.get('format')}{labels}) and cannot predict {task.name} "
                         f"({task.format}{ours})")


def language_swap(net, module, lang_modules: str | None):
    """With `lang_modules`, a function lang -> which language module is active, that loads
    DIR/lang-<code> into the model's language slot, or the source one where none exists."""
    from ..modules import open_module

    if lang_modules is None:
        return None
    chain = module.chain()
    index = next((i for i, m in enumerate(chain) if m.role == "language"), None)
    if index is None:
        raise AdapterxlError(f"--lang-modules: module {module.path} was not trained with a "
                             f"language module (train it with --lang-module)")
    if not Path(lang_modules).is_dir():
        raise AdapterxlError(f"--lang-modules: {lang_modules!r} is not a directory")
    source, slot = chain[index], net.slots[index]
    source_weights = source.weights()

    def use(lang: str) -> str:
        path = Path(lang_modules) / f"lang-{lang}"
        if not path.is_dir():
            net.load_module_state(slot, source_weights, str(source.path))
            return f"{source.name} (source)"
        mod = open_module(path)
        if mod.role != "language" or mod.method != source.method or \
                mod.method_config != source.method_config:
            raise AdapterxlError(f"{path} does not fit in place of {source.name}: it must be "
                                 f"a {source.method} language module with the same settings")
        net.load_module_state(slot, mod.weights(), str(path))
        return mod.name
    return use


def default_source(mod, task: str) -> tuple[str, str | None]:
    """(data, data_dir) a module is evaluated on when none is given: where its own training
    data came from. Bundled samples exist for every task; a local folder only holds the
    module's own task; anything else is read from the Hub."""
    data = mod.manifest.get("data") or {}
    if isinstance(data, dict) and "source" not in data:  # multi-task: one entry per task
        data = data.get(task) or next(iter(data.values()), {})
    source = data.get("source") if isinstance(data, dict) else None
    if source == "samples":
        return "samples", None
    if source == "local" and task in (mod.manifest.get("tasks") or [mod.manifest["task"]]) \
            and data.get("dir") and Path(data["dir"]).is_dir():
        return "hf", data["dir"]
    return "hf", None


def evaluate(task: str, module: str, languages="all", data: str | None = None, data_dir=None,
             split: str = "test", output: str | None = None, model: str | None = None,
             precision: str | None = None, quantize: str = "none", batch_size: int = 64,
             max_length: int | None = None, max_examples: int | None = None,
             force: bool = False, predictions_dir: str | None = None, layer: int | None = None,
             suite: str | None = None, lang_modules: str | None = None,
             trust_remote_code: bool = False, allow_pickle: bool = False,
             bootstrap: int = 1000) -> dict:
    """Evaluate `module` on `task` in each language (`languages`: "all", a comma list, or the
    languages of `suite`). Returns per-language metric values, their averages and the task's
    score; writes results.json under `output` (default <module>/eval) and the predictions
    under `predictions_dir` (default: the same folder). With `lang_modules`, the module's
    language module is swapped for DIR/lang-<code> in each language that has one.

    The results are self-describing: package versions, the full configuration (these arguments
    and the module's training settings), the data read (Hub ids, configs, splits and the
    commits they resolved to, or the local folder), the date, the runtime and a percentile
    bootstrap 95% interval of the task score per language and for the average (`bootstrap`
    resamples; 0 turns it off)."""
    from ..backbone import load_backbone
    from ..data.sources import DataSource, available_languages
    from ..modules import load_for_inference, open_module
    from ..tasks import check_split, get_task
    from .._version import versions
    from ..hub import resolve_module

    task_ = get_task(task)
    check_split(split)
    config = {"task": task, "module": str(module), "languages": languages, "data": data,
              "data_dir": None if data_dir is None else str(data_dir), "split": split,
              "model": model, "precision": precision, "quantize": quantize,
              "batch_size": batch_size, "max_length": max_length, "max_examples": max_examples,
              "force": force, "layer": layer, "suite": suite, "lang_modules": lang_modules,
              "bootstrap": bootstrap}
    mod = open_module(resolve_module(module))
    if data is None and data_dir is None:
        data, data_dir = default_source(mod, task)
    data = data or "hf"
    head = check_predictable(mod, task_)
    wanted = task_.resolve_languages(languages, suite=suite)
    have = set(available_languages(task_, split, data, data_dir))
    langs = [lang for lang in wanted if lang in have]
    if not langs:
        raise AdapterxlError(f"no {split} data for {task} in {', '.join(wanted)} "
                             f"(source: {data_dir or data})")
    backbone = load_backbone(model or mod.manifest["backbone"]["id"], precision, quantize,
                             trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    net = load_for_inference(backbone, mod, force=force, task=head)
    out_dir = Path(output) if output else mod.path / "eval"
    pred_dir = Path(predictions_dir) if predictions_dir else out_dir
    options = {"max_length": max_length or task_.hyperparameters.get("max_length", 256),
               "batch_size": batch_size, "resamples": bootstrap, "layer": layer}
    started, start = _now(), time.perf_counter()
    scored, used = _score_languages(
        net, task_, langs, split, DataSource(data, data_dir), max_examples, pred_dir,
        mod.labels_for(head) if head else [], language_swap(net, mod, lang_modules), options)
    summary = _summary(task_, scored, bootstrap)
    result = {"task": task, "split": split, "metric": task_.metric, "module": str(mod.path),
              "stack": [m.name for m in mod.chain()], "backbone": backbone.id,
              **{k: summary[k] for k in ("per_language", "average", "score", "examples")},
              "skipped_languages": [lang for lang in wanted if lang not in have],
              **{k: summary[k] for k in ("partially_labeled", "unlabeled_languages")},
              "data": {"source": "local", "dir": str(data_dir)} if data_dir else {"source": data},
              "seconds": round(time.perf_counter() - start, 2),
              "predictions": str(pred_dir / task), "date": started, "ci95": summary["ci95"],
              "datasets": {lang: _sources(task_, split, lang, data, data_dir) for lang in langs},
              "config": config,
              "module_config": {k: mod.manifest.get(k) for k in (
                  "name", "task", "method", "backbone", "hyperparameters", "seed", "data",
                  "created") if k in mod.manifest} | {"stack": [m.name for m in mod.chain()]},
              "versions": versions()}
    if used:
        result["language_modules"] = used
    layers = {s.layer for s in scored.values()} - {None}
    if layers:
        result["layer"] = layers.pop()
        extra = {lang: s.extra for lang, s in scored.items()}
        if any(extra.values()):
            result["retrieval"] = extra
    _io.write_json(out_dir / "results.json" if not suite else out_dir / task / "results.json",
                   result)
    return result


def _score_languages(net, task, langs: list[str], split: str, source, max_examples, pred_dir,
                     labels: list, swap, options: dict) -> tuple[dict, dict]:
    """Each language evaluated by the task's format and its predictions written; returns
    {lang: Scored} and which language module served each language (with `swap`)."""
    from ..formats import get_format

    fmt = get_format(task.format)
    scored, used = {}, {}
    for lang in langs:
        rows = source.load(task, split, lang, max_examples=max_examples)

        def dev(lang=lang):  # the validation rows of this language (BUCC tunes on them)
            if split == "validation" or lang not in source.languages(task, "validation"):
                return None
            return source.load(task, "validation", lang)

        if swap is not None:
            used[lang] = swap(lang)
        scored[lang] = fmt.evaluate(net, rows, net.backbone.tokenizer, task, labels, lang,
                                    desc=f"evaluate {task.name} {lang}", dev=dev, **options)
        fmt.write(scored[lang].predictions, rows, labels,
                  pred_dir / task.name / f"{split}-{lang}.{fmt.extension}")
    return scored, used


def _summary(task, scored: dict, bootstrap: int) -> dict:
    """Per-language values, their average, the task score and the 95% intervals. Languages
    without labels are predicted only; partly labeled ones are scored on their labeled rows."""
    from ..formats import get_format
    from ..scoring import bootstrap as boot
    from ..scoring import metrics

    per_language = {lang: s.values for lang, s in scored.items() if s.values is not None}
    average = {k: sum(v[k] for v in per_language.values()) / len(per_language)
               for k in (next(iter(per_language.values())) if per_language else {})}
    samples = {lang: s.samples for lang, s in scored.items()}
    return {
        "per_language": per_language, "average": average or None,
        "score": metrics.task_score(task.metric, average) if average else None,
        "examples": {lang: s.examples for lang, s in scored.items()},
        "partially_labeled": {lang: {"labeled": s.labeled, "unlabeled": s.examples - s.labeled}
                              for lang, s in scored.items()
                              if s.labeled and s.labeled < s.examples},
        "unlabeled_languages": [lang for lang, s in scored.items() if s.labeled == 0],
        "ci95": None if not bootstrap or not get_format(task.format).per_example else {
            "of": "task score (metrics.task_score: QA (EM+F1)/2)",
            "method": f"percentile bootstrap, {bootstrap} resamples of the examples "
                      f"(sentences for tagging), seed {boot.SEED}",
            "per_language": {lang: boot.interval(samples.get(lang)) for lang in per_language},
            "average": boot.average_interval({lang: samples.get(lang)
                                              for lang in per_language})},
    }


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _sources(task, split: str, lang: str, data: str, data_dir) -> dict:
    """Where one language's examples came from, for results files."""
    from ..data.download import provenance
    from ..data.sources import source_kind

    kind = source_kind(data, data_dir)
    if kind == "hf":
        return {"source": "hf", "hub": provenance(task, split, lang)}
    if kind == "local":
        return {"source": "local", "dir": str(Path(data_dir).resolve())}
    from .._version import __version__

    return {"source": "samples", "adapterxl": __version__}


def evaluate_suite(suite: str, modules: dict[str, str], data: str | None = None, data_dir=None,
                   split: str = "test", output: str = "runs/eval", progress=print,
                   **options) -> dict:
    """Every task of `suite` (xtreme, xtreme-r) in the suite's languages. `modules` maps a task
    name to its module; the key "*" is a folder holding one module per task (<dir>/<task>);
    "retrieval" is the module whose representations BUCC / Tatoeba / LAReQA / Mewsli-X read
    when no module is named for them. Tasks without a module are reported as missing."""
    from ..formats import get_format
    from ..tasks import SUITES, suite_tasks
    from ..scoring.metrics import suite_score

    if suite not in SUITES:
        from ..errors import unknown
        raise unknown("suite", suite, SUITES)
    names = [t.name for t in suite_tasks(suite)]
    for key in modules:
        if key not in ("*", "retrieval") and key not in names:
            from ..errors import unknown
            raise unknown(f"task of {suite}", key, names)
    results, missing = {}, []
    for task in suite_tasks(suite):
        path = modules.get(task.name)
        if path is None and "*" in modules and (Path(modules["*"]) / task.name).is_dir():
            path = str(Path(modules["*"]) / task.name)
        if path is None and get_format(task.format).head is None:  # reads representations
            path = modules.get("retrieval")
        if path is None:
            missing.append(task.name)
            continue
        progress(f"{suite}: {task.name} with {path}")
        results[task.name] = evaluate(task.name, path, languages="all", data=data,
                                      data_dir=data_dir, split=split, output=output,
                                      suite=suite, **options)
    scores = {name: r["score"] for name, r in results.items() if r["score"] is not None}
    summary = {"suite": suite, "split": split, "tasks": results, "missing": missing,
               "task_scores": scores, "score": suite_score(scores) if scores else None,
               "complete": not missing and len(scores) == len(results)}
    _io.write_json(Path(output) / f"{suite}.json", summary)
    return summary


