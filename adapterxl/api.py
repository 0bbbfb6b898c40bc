"""The notebook API: `adapterxl.train`, `evaluate`, `predict`, `assemble`, `save_module` and
`register_task`, with plain arguments and plain results (the CLI's commands call the same
library functions).

    import adapterxl
    rows = [{"text": ("A man sleeps.", "Nobody sleeps."), "label": "contradiction"}, ...]
    adapterxl.train("mynli", "runs/mynli", rows=rows, format="pair_classification",
                    labels=["entailment", "neutral", "contradiction"], model="builtin:tiny-xlmr")
    adapterxl.train("xnli", "runs/xnli", stack=["runs/mynli"], model="builtin:tiny-xlmr",
                    data="samples")
    adapterxl.predict("runs/xnli", [("Er schläft.", "Niemand schläft.")], language="de")
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from .errors import AdapterxlError

# A new task's metric when none is given, per format.
DEFAULT_METRICS = {"classification": "accuracy", "pair_classification": "accuracy",
                   "regression": "pearson_spearman", "tagging": "tagging_f1", "qa": "squad",
                   "multiple_choice": "accuracy"}
DEFAULT_HYPERPARAMETERS = {"epochs": 3, "batch_size": 32, "max_length": 128}


def register_task(name: str, format: str | None = None, labels=None, *, metric=None,
                  language: str = "en", role: str = "intermediate", description=None,
                  columns: dict | None = None, **entry):
    """Add a task from Python (or replace one): a format, its labels, and optionally the
    metric, training language, column mapping (`fields`: canonical key -> your columns) and
    any other catalogue key (docs/FORMATS.md). Validated like the catalogue; returns the Task."""
    from .tasks import register_task as register

    if format is None:
        raise AdapterxlError(f"task {name!r} is not in the catalogue: give its format "
                             f"({', '.join(DEFAULT_METRICS)}) to define it")
    record = {"description": description or f"{name} (defined from Python)",
              "format": format, "role": role, "languages": [language],
              "metric": metric or DEFAULT_METRICS.get(format, "accuracy"),
              "hyperparameters": dict(DEFAULT_HYPERPARAMETERS),
              "train_language": language,
              "local_only": "defined from Python: pass rows, or --data-dir with local files",
              **entry}
    if labels is not None:
        record["labels"] = list(labels)
    if columns:
        record["fields"] = dict(columns)
    return register(name, record)


def _records(rows, what: str) -> list[dict]:
    """A list of mappings, or anything iterable into them (a datasets.Dataset)."""
    if rows is None:
        return []
    if isinstance(rows, dict):
        raise AdapterxlError(f"{what}: expected a list of rows (one mapping per example), "
                             f"got one mapping")
    return [dict(r) for r in rows]


def canonical_rows(task, rows, what: str = "rows") -> list[dict]:
    """Records in the task's canonical form (label names become indices; your columns are
    read through the task's `fields`)."""
    from .data.convert import convert

    return [convert(task, r, f"{what}[{i}]") for i, r in enumerate(_records(rows, what))]


def train(task: str, output: str, *, rows=None, dev_rows=None, format: str | None = None,
          labels=None, columns: dict | None = None, progress: bool = True, **settings) -> dict:
    """Train a module and save it to `output`; returns the run's results (dev score, steps,
    tokens/s, the module's path under "module").

    `task` is a catalogue task (`adapterxl tasks`), or a new one defined by `format` (and
    `labels` for classification). Its data comes from the catalogue's sources (`data="hf"`,
    `"samples"`, `data_dir=...`) or from `rows` (a list of mappings or a `datasets.Dataset`;
    canonical keys, or your columns mapped by `columns`); without `dev_rows` a seeded 10%
    of `rows` is held out for model selection. Every other keyword is a `TrainConfig` field:
    model, method, stack, init_from, fuse, lang_module, lr, epochs, max_steps, batch_size,
    quantize, report_to, ... (see `help(adapterxl.TrainConfig)`)."""
    from .tasks import catalog, get_task
    from .training import TrainConfig, train_module

    known = {f.name for f in fields(TrainConfig)}
    bad = sorted(set(settings) - known)
    if bad:
        from .errors import unknown
        raise unknown("training setting", bad[0], known)
    if format is not None or (task not in catalog() and rows is not None):
        register_task(task, format, labels, columns=columns,
                      language=settings.get("language") or "en")
    elif columns and rows is None:
        raise AdapterxlError("columns= maps the columns of rows=; give rows too")
    given = None
    if rows is not None:
        from dataclasses import replace

        t = get_task(task)
        if columns and format is None:  # a catalogue task, read from your columns
            t = replace(t, fields=dict(columns))
        train_rows = canonical_rows(t, rows, "rows")
        if not train_rows:
            raise AdapterxlError("rows is empty")
        if dev_rows is not None:
            dev = canonical_rows(t, dev_rows, "dev_rows")
        else:
            from .data.split import hold_out

            train_rows, dev = hold_out(train_rows, settings.get("seed", 42), 10)
        given = {task: (train_rows, dev)}
    for key in ("stack", "fuse"):
        if isinstance(settings.get(key), (str, Path)):
            settings[key] = [settings[key]]
    for key in ("stack", "fuse", "init_from", "lang_module"):
        if settings.get(key):
            value = settings[key]
            settings[key] = ([str(v) for v in value] if isinstance(value, (list, tuple))
                             else str(value))
    cfg = TrainConfig(task=task, output=str(output), **settings)
    return train_module(cfg, progress=progress, rows=given)


def evaluate(task: str, module, languages="all", **options) -> dict:
    """Zero-shot evaluation of `module` on `task` (see adapterxl.evaluation.evaluate): per
    language metric values, the average, the task score, 95% intervals and provenance."""
    from .evaluation import evaluate as run

    return run(task, str(module), languages=languages, **options)


def _inputs(fmt: str, items, task) -> list[dict]:
    """Texts, pairs, token lists, (question, context) or (context, choices) -> rows."""
    out = []
    for i, item in enumerate(items):
        if fmt in ("classification", "pair_classification", "regression"):
            text = (item,) if isinstance(item, str) else tuple(item)
            out.append({"text": text, "label": None})
        elif fmt == "tagging":
            tokens = item.split() if isinstance(item, str) else list(item)
            out.append({"tokens": tokens, "tags": None})
        elif fmt == "qa":
            question, context = item
            out.append({"id": str(i), "question": question, "context": context,
                        "answers": None})
        elif fmt == "multiple_choice":
            context, choices = item
            out.append({"context": context, "choices": list(choices), "label": None})
        else:
            raise AdapterxlError(f"predict does not take {fmt} modules (retrieval reads "
                                 f"representations: use evaluate)")
    return out


def _task_of(mod):
    """The catalogue task a module predicts, or one rebuilt from its manifest."""
    from .tasks import Task, catalog

    m = mod.manifest
    name = next(iter(mod.heads)) if len(mod.heads) > 1 else m["task"]
    if name in catalog():
        return catalog()[name]
    fmt = (m.get("formats") or {}).get(name) or m.get("format")
    return Task(name=name, description="from the module's manifest", format=fmt,
                role="target", languages=tuple(m.get("languages") or ["en"]),
                metric=DEFAULT_METRICS.get(fmt, "accuracy"), sources={},
                hyperparameters=dict(DEFAULT_HYPERPARAMETERS),
                labels=tuple(mod.labels_for(name)), num_choices=None)


def predict(module, inputs, language: str | None = None, *, lang_modules: str | None = None,
            model: str | None = None, batch_size: int = 32, max_length: int | None = None,
            force: bool = False) -> list:
    """Run a trained module (with everything it is stacked on or fuses) on `inputs`:

    - classification: texts -> label names; pair classification: (first, second) pairs ->
      label names; regression: pairs -> scores;
    - tagging: token lists (or whitespace-separated strings) -> one tag per token;
    - qa: (question, context) pairs -> answer texts;
    - multiple choice: (context, [choices]) -> the index of the chosen one.

    With `language` and `lang_modules` (a folder of `lang-<code>` language modules), the
    module's language module is swapped for that language's where one exists (MAD-X)."""
    from .backbone import load_backbone
    from .evaluation import check_predictable, language_swap
    from .formats import get_format, predict as run
    from .hub import resolve_module
    from .modules import load_for_inference, open_module

    mod = open_module(resolve_module(module))
    task = _task_of(mod)
    fmt = get_format(task.format)
    head = check_predictable(mod, task)
    if isinstance(inputs, (str, tuple)):
        raise AdapterxlError("inputs must be a list (of texts, pairs, token lists, ...)")
    rows = _inputs(task.format, inputs, task)
    if not rows:
        return []
    backbone = load_backbone(model or mod.manifest["backbone"]["id"])
    net = load_for_inference(backbone, mod, force=force, task=head)
    if lang_modules is not None:
        if language is None:
            raise AdapterxlError("lang_modules= needs language=")
        language_swap(net, mod, lang_modules)(language)
    labels = mod.labels_for(head) if head else []
    length = max_length or task.hyperparameters.get("max_length", 256)
    features = fmt.encode(rows, backbone.tokenizer, length, False, task)
    outputs = run(net, features, backbone.tokenizer, batch_size, desc="predict")
    preds = fmt.decode(outputs, features, rows, labels, task)
    if task.format in ("classification", "pair_classification"):
        return [labels[int(p)] for p in preds]
    if task.format == "regression":
        return [float(p) for p in preds]
    if task.format == "multiple_choice":
        return [int(p) for p in preds]
    return list(preds)


def assemble(task: str, model: str = "xlm-roberta-large", *, method: str = "seq_bn",
             method_config: dict | None = None, stack=(), precision=None, quantize="none",
             labels=None):
    """A model to train elsewhere (e.g. with transformers.Trainer): the backbone, the modules
    of `stack` frozen beneath, a new trainable `method` module and a fresh head for `task`.
    `model(**batch)` returns {"loss", "logits"}. Save it with `adapterxl.save_module`."""
    from .backbone import load_backbone
    from .formats import get_format
    from .heads import head_config
    from .hub import resolve_module
    from .modules import assemble as build, open_module
    from .tasks import get_task

    t = get_task(task)
    fmt = get_format(t.format)
    names = list(labels) if labels is not None else list(t.labels or ())
    lower = []
    for path in ([stack] if isinstance(stack, (str, Path)) else stack):
        lower += open_module(resolve_module(path)).chain()
    backbone = load_backbone(model, precision, quantize)
    head = head_config(fmt.head, backbone.hidden_size, fmt.num_outputs(names), backbone.pooling)
    net, top = build(backbone, lower, method=method, config=method_config or {},
                     heads={t.name: head})
    net.use_head(t.name)
    net.freeze()
    # What save_module needs to write a complete manifest.
    net.adapterxl = {"task": t, "labels": names, "lower": lower, "top": top, "model": model}
    return net


def save_module(model, output, *, hyperparameters: dict | None = None,
                metrics: dict | None = None, data: dict | None = None, seed: int | None = None):
    """Save a model from `adapterxl.assemble` (trained anywhere) as an adapterxl module: its
    trainable module, head, the modules beneath (copied in) and a complete manifest. Returns
    the module directory's path."""
    import time

    from .modules import get_method, method_config, save_module as write
    from ._version import versions

    info = getattr(model, "adapterxl", None)
    if info is None:
        raise AdapterxlError("save_module takes a model built by adapterxl.assemble (it "
                             "records the task, labels and the modules beneath)")
    task, top = info["task"], info["top"]
    manifest = {
        "name": task.name, "kind": "module", "role": "task", "task": task.name,
        "format": task.format, "labels": info["labels"],
        "languages": [task.train_language], "backbone": model.backbone.describe(),
        "method": {"name": top.method, "engine": get_method(top.method).engine,
                   "config": method_config(top.method, top.config)},
        "head": model.head_configs[task.name], "init_from": None,
        "data": data or {"source": "unknown (trained outside adapterxl)"},
        "hyperparameters": hyperparameters or {}, "seed": seed,
        "metrics": {"dev": metrics or {}},
        "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "trained_with": "outside adapterxl (adapterxl.assemble + save_module)",
    }
    mod = write(output, manifest, model.module_state(top), model.head_state(), info["lower"])
    return mod.path
