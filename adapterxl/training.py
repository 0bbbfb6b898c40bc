"""Training a module (phase 2: intermediate, phase 3: target, and language modules) on a
frozen backbone.

One function, `train_module(TrainConfig)`, serves the CLI (train-intermediate, train-target,
train-language), the quickstart and the tests. What trains is one new module on top of
frozen ones (`stack`, `lang_module`), a module continued (`init_from`), or a fusion of
modules (`fuse`); on one task, or on several at once with one head each (multi-task). The loop runs through accelerate, so `accelerate launch` /
`torchrun` give data parallelism: every process trains on its own micro-batches (see
LengthGroupedBatches.shard), gradients are averaged across processes at each optimizer step
only, every process evaluates (the same numbers), and the main process alone writes
checkpoints and the module."""
from __future__ import annotations

import json
import math
import os
import platform
import random
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import _io, checkpoint, logs, preemption, tracking
from . import lock as locks
from .settings import TrainConfig  # noqa: F401 - declared with its settings, used here
from .backbone import Backbone, load_backbone
from .errors import AdapterxlError
from .evaluation import metrics
from .formats import Format, get_format, predict
from .heads import head_config
from . import memory
from .modules import (Fusion, assemble, common_lower, get_method, method_config, open_module,
                      save_module)
from .modules.store import check_output, verify
from .data.mixture import TaskStream, task_probabilities
from .data.preprocess import loader
from .data.hub import provenance
from .data.sources import load_split, source_kind
from .data.text import language_rows, language_task
from .tasks import Task, get_task, guard_warning

# Fusion learning rates: AdapterFusion's 5e-5 (Pfeiffer et al. 2021); LoRA fusion trains one
# logit per module per projection, which moves at LoRA-like rates only if the rate is large.
FUSION_LR = {"bottleneck": 5e-5, "peft": 1e-2}



# Key under which a batch carries its masking generator's state (MLM), see _TrackMasking.
MASKING_STATE = "_masking_state"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions() -> dict:
    import importlib.metadata as md

    from . import __version__

    # adapterxl's own version from the code that runs (installed metadata may be another copy's)
    out = {"python": platform.python_version(), "adapterxl": __version__}
    for pkg in ("torch", "transformers", "peft", "bitsandbytes",
                "accelerate", "datasets"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _tasks(cfg: TrainConfig) -> list[Task]:
    names = [n.strip() for n in cfg.task.split(",") if n.strip()]
    if not names:
        raise AdapterxlError("no task given")
    if len(set(names)) != len(names):
        raise AdapterxlError(f"a task is named twice in {cfg.task!r}")
    if names == ["mlm"]:
        return [language_task(cfg.language)]
    if cfg.language or cfg.text:
        raise AdapterxlError("--language and --text are for language modules "
                             "(adapterxl train-language)")
    tasks = [get_task(n) for n in names]
    if cfg.dataset:
        if len(tasks) > 1:
            raise AdapterxlError("--dataset gives one task's data: train one task with it")
        tasks = [_from_dataset(tasks[0], cfg)]
    elif cfg.columns or cfg.dev_split:
        raise AdapterxlError("--columns and --dev-split describe a --dataset ID: give one")
    for task in tasks:
        if get_format(task.format).head is None:
            raise AdapterxlError(
                f"{task.name} is a {task.format} task: it has no training data and is "
                f"evaluated from a module's representations (train an intermediate module, "
                f"then `adapterxl evaluate --task {task.name} --module DIR`)")
    return tasks


def _from_dataset(task: Task, cfg: TrainConfig) -> Task:
    """The task with its data read from the Hub dataset `cfg.dataset` (ID[:CONFIG]) instead of
    its catalogue sources: `columns` map canonical keys to the dataset's columns (else the
    task's own mapping), `dev_split` is the split for model selection (else 5% of train)."""
    from dataclasses import replace

    from .tasks import FIELD_KEYS

    path, _, name = cfg.dataset.partition(":")
    if not path:
        raise AdapterxlError(f"--dataset expects ID[:CONFIG], got {cfg.dataset!r}")
    for key in cfg.columns:
        if key not in FIELD_KEYS[task.format]:
            from .errors import unknown
            raise unknown(f"--columns key for the {task.format} format", key,
                          FIELD_KEYS[task.format])
    source = {"path": path, "name": name or None}
    sources = {"train": {**source, "split": "train"}}
    if cfg.dev_split:
        sources["validation"] = {**source, "split": cfg.dev_split}
    return replace(task, sources=sources, local_only=None,
                   fields={**task.fields, **cfg.columns} if cfg.columns else task.fields,
                   converter=None if cfg.columns else task.converter)


def _resolve(cfg: TrainConfig):
    tasks = _tasks(cfg)
    get_method(cfg.method)
    if cfg.optimizer not in OPTIMIZERS:
        from .errors import unknown
        raise unknown("optimizer", cfg.optimizer, OPTIMIZERS)
    if cfg.module_dtype not in ("fp32", "bf16"):
        from .errors import unknown
        raise unknown("module dtype", cfg.module_dtype, ("fp32", "bf16"))
    source_kind(cfg.data, cfg.data_dir)
    given = [flag for flag, value in (("--stack", cfg.stack), ("--init-from", cfg.init_from),
                                      ("--fuse", cfg.fuse)) if value]
    if len(given) > 1:
        why = ("--init-from continues a module together with everything it was stacked on"
               if "--init-from" in given else
               "a fusion sits on the stack its modules were trained on")
        raise AdapterxlError(f"{' and '.join(given)} cannot be combined: {why}")
    if len(cfg.fuse) == 1:
        raise AdapterxlError("--fuse needs at least two modules")
    lower = []
    for path in cfg.stack:
        lower += open_module(path).chain()
    init_from = open_module(cfg.init_from) if cfg.init_from else None
    if init_from is not None:
        lower = init_from.lower()
    fuse = [open_module(p) for p in cfg.fuse]
    if fuse:
        lower = common_lower(fuse)
    if cfg.lang_module:
        lang = open_module(cfg.lang_module)
        if lang.role != "language":
            raise AdapterxlError(f"--lang-module {lang.path} is not a language module (it was "
                                 f"trained on {lang.manifest['task']}); train one with "
                                 f"`adapterxl train-language`")
        if lower and lower[0].role == "language":
            if _sha(lower[0]) != _sha(lang):
                raise AdapterxlError(f"the modules beneath already start with the language "
                                     f"module {lower[0].path}, not {lang.path}")
        else:
            lower = lang.chain() + lower
    first = tasks[0]
    hp = first.hyperparameters
    if fuse:
        lr = FUSION_LR[get_method(fuse[0].method).engine]
    else:
        lr = get_method(init_from.method if init_from else cfg.method).lr
    settings = {
        "lr": lr if cfg.lr is None else cfg.lr,
        "epochs": cfg.epochs if cfg.epochs is not None else hp.get("epochs", 3),
        "batch_size": (hp.get("batch_size", 32) if cfg.batch_size is None
                       else cfg.batch_size),
        "max_length": (hp.get("max_length", 256) if cfg.max_length is None
                       else cfg.max_length),
    }
    for mod in lower + fuse + ([init_from] if init_from else []):
        verify(mod)  # before training: a damaged module would be copied into the new one
    below = [m for m in lower + fuse + ([init_from] if init_from else [])
             if m.role != "language"]
    warnings = [w for task in tasks for m in below
                for w in (guard_warning(t, task.name) for t in m.manifest.get("tasks")
                          or [m.manifest["task"]]) if w]
    return tasks, lower, init_from, fuse, settings, warnings


def _sha(mod) -> str | None:
    return mod.manifest.get("files", {}).get("module.safetensors")


def task_labels(task, fmt: Format, rows: list[dict], backbone: Backbone) -> list[str]:
    """The label set: the catalogue's, or (CCG supertags) every tag seen in the data, and
    the vocabulary for masked language modelling."""
    if fmt.head == "mlm":
        return [str(i) for i in range(backbone.model.get_input_embeddings().num_embeddings)]
    if task.labels is not None:
        return list(task.labels)
    if fmt.name == "tagging":
        return sorted({t for r in rows if r.get("tags") for t in r["tags"]})
    return []


def index_tags(rows: list[dict], labels: list[str]) -> list[dict]:
    """Tag strings (tasks whose tag set comes from the data) -> indices into `labels`."""
    lookup = {t: i for i, t in enumerate(labels)}
    return [{**r, "tags": [lookup[t] if isinstance(t, str) else t for t in r["tags"]]}
            if r.get("tags") else r for r in rows]


def dev_score(model, fmt: Format, task, rows, features, labels, tokenizer, lang, seed=0,
              batch_size: int = 64) -> dict:
    outputs = predict(model, features, tokenizer, batch_size,
                      collate=fmt.collate(tokenizer, model.backbone.device, False, seed))
    predictions = fmt.decode(outputs, features, rows, labels, task)
    return fmt.score(task.metric, predictions, rows, labels, lang)


@dataclass
class _TaskData:
    """One task's data and labels during a run."""
    task: Task
    fmt: Format
    labels: list
    train_rows: list
    dev_rows: list
    train_features: list = field(default_factory=list)
    dev_features: list = field(default_factory=list)


def _load_task(cfg: TrainConfig, task: Task, backbone: Backbone,
               given: tuple | None = None) -> _TaskData:
    fmt = get_format(task.format)
    if given is not None:  # canonical rows passed from Python (adapterxl.train(rows=...))
        train_rows, dev_rows = list(given[0]), list(given[1])
        if cfg.max_train_examples:
            train_rows = train_rows[:cfg.max_train_examples]
        if cfg.max_eval_examples:
            dev_rows = dev_rows[:cfg.max_eval_examples]
    elif task.format == "mlm":
        train_rows, dev_rows = language_rows(
            task, text=cfg.text, dataset=cfg.dataset, samples=source_kind(
                cfg.data, cfg.data_dir) == "samples", seed=cfg.seed,
            max_train=cfg.max_train_examples, max_dev=cfg.max_eval_examples)
    else:
        train_rows = load_split(task, "train", data=cfg.data, data_dir=cfg.data_dir,
                                max_examples=cfg.max_train_examples)
        if source_kind(cfg.data, cfg.data_dir) == "hf" and "validation" not in task.sources:
            # No English dev set on the Hub (TyDiQA-GoldP): model selection on 5% of train.
            held_out = max(1, len(train_rows) // 20)
            random.Random(cfg.seed).shuffle(train_rows)
            dev_rows, train_rows = train_rows[:held_out], train_rows[held_out:]
            dev_rows = dev_rows[:cfg.max_eval_examples] if cfg.max_eval_examples else dev_rows
        else:
            dev_rows = load_split(task, "validation", data=cfg.data, data_dir=cfg.data_dir,
                                  max_examples=cfg.max_eval_examples)
    for split, rows in (("train", train_rows), ("validation", dev_rows)):
        if not all(fmt.labeled(r) for r in rows):
            raise AdapterxlError(f"{task.name} {split} data has unlabeled examples; training "
                                 f"and model selection need labels")
    labels = task_labels(task, fmt, train_rows + dev_rows, backbone)
    if task.labels is None and fmt.name == "tagging":
        train_rows, dev_rows = index_tags(train_rows, labels), index_tags(dev_rows, labels)
    return _TaskData(task, fmt, labels, train_rows, dev_rows)


def train_module(cfg: TrainConfig, progress: bool = True, backbone: Backbone | None = None,
                 rows: dict | None = None) -> dict:
    """Train one module (or fusion) and save it to `cfg.output`. Returns the run's results.

    `backbone` (optional) is an already-loaded backbone to use instead of loading `cfg.model`;
    the modules are injected into it, so pass a fresh one per run. `rows` (optional) gives a
    task's data directly: {task name: (train rows, dev rows)}, canonical rows
    (adapterxl.train converts a list of records or a datasets.Dataset).

    The output is checked before anything loads (it must not be a module this run reads, nor
    an existing module without `overwrite`) and locked while the run writes it
    (`<output>.lock`): a second run on the same output refuses. What a killed run left beside
    it (staging directories, temporary files) is removed once the lock is ours."""
    output = check_output(cfg.output, [*cfg.stack, cfg.init_from, *cfg.fuse, cfg.lang_module,
                                       cfg.model], cfg.overwrite)
    lock = output.with_name(output.name + ".lock")
    # Only the main process writes (data parallelism: torchrun/accelerate set RANK).
    took = (os.environ.get("RANK", "0") == "0"
            and locks.acquire_output(lock, f"the module {output}", echo=logs.logger.info))
    try:
        if took:
            _io.remove_leftovers(output, logs.logger.info)
        return _train_module(cfg, progress, backbone, rows)
    finally:
        if took:
            locks.release(lock)


def _train_module(cfg: TrainConfig, progress: bool, backbone: Backbone | None,
                  rows: dict | None) -> dict:
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    tasks, lower, init_from, fuse, hp, warnings = _resolve(cfg)
    multi = len(tasks) > 1
    probabilities = task_probabilities({t.name: 1 for t in tasks}, cfg.sampling,
                                       cfg.sampling_temperature)  # validates early
    tracking.check(cfg.report_to)
    if cfg.checkpoint_every is not None and cfg.checkpoint_every < 0:
        raise AdapterxlError(f"--checkpoint-every must be 0 or more, got {cfg.checkpoint_every}")
    where = checkpoint.directory(cfg.output)
    config = checkpoint.config_of(cfg)
    saved = None
    if cfg.resume:
        saved = checkpoint.load(where)
        checkpoint.check_config(saved["config"], config, where)
    elif checkpoint.exists(where):
        # Starting over would silently discard the interrupted run's work.
        raise AdapterxlError(f"an interrupted run left a checkpoint in {where}: pass --resume "
                             f"to continue it, or delete that directory to start over")
    log = logs.logger.info
    set_seed(cfg.seed)
    backbone = backbone or load_backbone(cfg.model, cfg.precision, cfg.quantize,
                                         trust_remote_code=cfg.trust_remote_code,
                                         allow_pickle=cfg.allow_pickle)
    rows = rows or {}
    data = {t.name: _load_task(cfg, t, backbone, rows.get(t.name)) for t in tasks}
    probabilities = task_probabilities({n: len(d.train_rows) for n, d in data.items()},
                                       cfg.sampling, cfg.sampling_temperature)
    # Again: loading may or may not have drawn random numbers (a builtin backbone is
    # materialized from its own seed the first time only; a passed-in backbone is not loaded
    # at all), and a run must not depend on that.
    set_seed(cfg.seed)
    heads = {n: head_config(d.fmt.head, backbone.hidden_size, d.fmt.num_outputs(d.labels),
                            backbone.pooling) for n, d in data.items()}
    model, top = assemble(backbone, lower, method=cfg.method, config=cfg.method_config,
                          init_from=init_from, fuse=fuse, heads=heads, force=cfg.force)
    # Once the inputs are known to be usable: a run that fails on them says only why.
    for warning in warnings:
        logs.warn(warning)
    if cfg.module_dtype == "bf16":
        if backbone.precision != "bf16":
            raise AdapterxlError(f"--module-dtype bf16 needs --precision bf16 (bf16 autocast); "
                                 f"the backbone runs in {backbone.precision}")
        model.cast_trainable(top, torch.bfloat16)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing()

    accelerator = Accelerator(device_placement=False, cpu=backbone.device.type == "cpu",
                              **tracking.accelerator_kwargs(cfg))
    processes = accelerator.num_processes
    tok = backbone.tokenizer
    for name, d in data.items():
        max_length = (d.task.hyperparameters.get("max_length", hp["max_length"])
                      if cfg.max_length is None else cfg.max_length)
        d.train_features = d.fmt.encode(d.train_rows, tok, max_length, True, d.task)
        d.dev_features = d.fmt.encode(d.dev_rows, tok, max_length, False, d.task)
    micro = hp["batch_size"] if cfg.micro_batch_size is None else cfg.micro_batch_size
    if processes > 1 and not cfg.micro_batch_size:
        micro = hp["batch_size"] // processes  # --batch-size stays the effective batch
    if not cfg.micro_batch_size and backbone.device.type == "cuda" and processes == 1:
        micro = memory.find_micro_batch(lambda n: _try_micro_batch(model, data, tok, n, cfg.seed),
                                 micro, hp["batch_size"], log,
                                 f" at --max-length {hp['max_length']}",
                                 fallback=model.gradient_checkpointing)
    per_step = micro * processes
    if hp["batch_size"] % per_step:
        raise AdapterxlError(f"batch size {hp['batch_size']} is not a multiple of micro-batch "
                             f"{micro} x {accelerator.num_processes} processes")
    accum = hp["batch_size"] // per_step
    loaders, masking_collate = {}, None
    for name, d in data.items():
        collate = d.fmt.collate(tok, backbone.device, True, cfg.seed)
        if getattr(collate, "generator", None) is not None:
            collate = masking_collate = _TrackMasking(collate)
        dl = loader(d.train_features, tok, micro, shuffle=True, seed=cfg.seed,
                    device=backbone.device, collate=collate)
        # Creating an epoch's iterator draws a seed from the loader's generator; by default
        # that is torch's global RNG, which a resumed run would then draw from once more than
        # the interrupted one did. A generator of its own keeps the global RNG for dropout.
        dl.generator = torch.Generator().manual_seed(cfg.seed)
        loaders[name] = dl
    if masking_collate is not None and multi:
        raise AdapterxlError("masked language modelling trains alone (train-language)")
    # Data parallelism: the loaders are not prepared by accelerate (whose sharding of a
    # batch sampler drops or repeats batches at an epoch's end, so that the processes would
    # not see what one process accumulating sees); each process takes every N-th batch itself.
    stream = TaskStream(loaders, probabilities, cfg.seed, processes, accelerator.process_index)
    batches = {n: len(dl) for n, dl in loaders.items()}
    batches_per_epoch = sum(batches.values())
    steps_per_epoch = max(1, batches_per_epoch // (accum * processes))
    total = (max(1, math.ceil(hp["epochs"] * steps_per_epoch)) if cfg.max_steps is None
             else cfg.max_steps)
    every = (max(1, math.ceil(total / 10)) if cfg.checkpoint_every is None
             else cfg.checkpoint_every)

    params = model.trainable_parameters()
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = make_optimizer(cfg.optimizer,
                               [{"params": decay, "weight_decay": cfg.weight_decay},
                                {"params": no_decay, "weight_decay": 0.0}], hp["lr"])
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)

    eval_at = {max(1, round(total * (i + 1) / cfg.evals)) for i in range(cfg.evals)}
    best = {"metric": -math.inf, "step": 0, "state": None}
    history = []
    step, position, tokens, seen = 0, 0, 0, 0
    running, elapsed, masking, last_checkpoint = None, 0.0, None, None
    if saved is not None:
        if saved["fingerprint"] != backbone.fingerprint:
            raise AdapterxlError(f"cannot resume: the backbone's weights differ from those the "
                                 f"checkpoint in {where} was trained on; delete it to start over")
        if saved["batches"] != batches:
            raise AdapterxlError(f"cannot resume: the training data changed ({batches} "
                                 f"micro-batches per epoch, the checkpoint in {where} saw "
                                 f"{saved['batches']}); delete it to start over")
        if saved.get("processes", 1) != processes:
            raise AdapterxlError(f"cannot resume: the checkpoint in {where} was made by "
                                 f"{saved.get('processes', 1)} process(es), this run has "
                                 f"{processes}; resume with as many, or delete it to start over")
        core.load_module_state(top, saved["module"], f"checkpoint {where}")
        core.load_head_state(saved["head"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        step, position = saved["step"], saved["position"]
        tokens, seen, running, elapsed = (saved["tokens"], saved["seen"], saved["running"],
                                          saved["seconds"])
        history, best, masking = saved["history"], saved["best"], saved["masking"]
        last_checkpoint = step
        if masking is not None:
            masking_collate.generator.set_state(masking)
        # Last, so that nothing above (loading, building the model) moves them.
        checkpoint.set_rng_state(saved["rng"])
        log(f"resuming from the checkpoint at step {step}/{total} in {where}")

    def save_checkpoint(position: int) -> None:
        checkpoint.save(where, {
            "format_version": checkpoint.FORMAT_VERSION, "config": config,
            "fingerprint": backbone.fingerprint, "batches": batches,
            "step": step, "position": position, "tokens": tokens,
            "seen": seen, "running": running,
            "seconds": elapsed + time.perf_counter() - start,
            "history": _plain(history), "best": {**best, "values": _plain(best.get("values", {}))},
            "module": core.module_state(top), "head": core.head_state(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": checkpoint.rng_state(), "masking": masking, "processes": processes,
        }, {"step": step, "total": total, "epoch": round(position / batches_per_epoch, 3),
            "task": cfg.task, "output": str(cfg.output),
            "config_hash": checkpoint.config_hash(config),
            "resume": "rerun the same command with --resume"})

    tracker = tracking.Tracker(accelerator, cfg, {**config, **{f"hp/{k}": v
                                                               for k, v in hp.items()}})
    bar = tqdm(total=total, initial=step, desc=f"train {cfg.task}", unit="step",
               dynamic_ncols=True,
               disable=None if (progress and accelerator.is_main_process
                                and logs.progress_enabled()) else True)
    start = time.perf_counter()
    tokens_at, step_started = tokens, start
    model.train()
    # g: the micro-batch's index in the run's stream, over all processes. A process's k-th
    # micro-batch is its (k // accum)-th optimizer step's (k % accum)-th.
    chunks, pending = 1, []

    def backward_step() -> float:
        """Forward and backward over the step's micro-batches, each in `chunks` pieces;
        out of memory: start the step again in twice as many pieces (one process only)."""
        nonlocal chunks
        while True:
            try:
                for i, (name, batch) in enumerate(pending):
                    core.use_head(name)
                    parts = memory.split(batch, chunks)
                    rows, loss_value = len(batch["labels"]), 0.0
                    for j, part in enumerate(parts):
                        part = {k: v.to(backbone.device) for k, v in part.items()}
                        # Gradients are averaged across processes at the step's last
                        # backward only.
                        sync = i == len(pending) - 1 and j == len(parts) - 1
                        with nullcontext() if sync else accelerator.no_sync(model):
                            loss = model(**part)["loss"]
                            diverged = not bool(torch.isfinite(loss))
                            if processes > 1:  # all stop, or none: a lone one would deadlock
                                diverged = bool(accelerator.reduce(torch.tensor(
                                    float(diverged), device=accelerator.device), "max"))
                            if diverged:
                                raise AdapterxlError(_diverged(loss.item(), step + 1, hp["lr"],
                                                               where, last_checkpoint))
                            share = len(part["labels"]) / rows
                            accelerator.backward(loss * share / accum)
                        loss_value += loss.item() * share
                return loss_value
            except Exception as e:  # noqa: BLE001 - only out-of-memory errors are handled
                if not memory.is_oom(e):
                    raise
                optimizer.zero_grad(set_to_none=True)
                memory.release()
                widest = max(len(b["labels"]) for _, b in pending)
                if processes > 1 or chunks >= widest:
                    raise AdapterxlError(
                        f"out of memory at step {step + 1} with micro-batches of "
                        f"{-(-widest // chunks)} examples; pass a smaller --micro-batch-size or "
                        f"--max-length (then --resume from the last checkpoint)") from None
                chunks *= 2
                log(f"out of memory at step {step + 1}: running each micro-batch of {micro} in "
                    f"{chunks} pieces from now on (same data, same effective batch)")

    # g: the micro-batch's index in the run's stream, over all processes. A process's k-th
    # micro-batch is its (k // accum)-th optimizer step's (k % accum)-th.
    def resume_hint() -> str:
        if last_checkpoint is None:
            return "no checkpoint was written yet: rerun the same command to start over"
        return (f"the last checkpoint (step {last_checkpoint}/{total}) is in {where}: rerun "
                f"the same command with --resume to continue")

    with preemption.StopRequest(lambda: f"interrupted at step {step}/{total}; "
                                        f"{resume_hint()}") as stop:
        # Resumed from the final checkpoint (killed before it was removed): save, train no more.
        for g, name, batch in stream.stream(position) if step < total else ():
            last = ((g - accelerator.process_index) // processes + 1) % accum == 0
            masking = batch.pop(MASKING_STATE, masking)
            pending.append((name, batch))
            tokens += int(batch["attention_mask"].sum())
            seen += len(batch["labels"])
            if not last:
                continue
            loss_value = backward_step()
            pending = []
            grad_norm = accelerator.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            now = time.perf_counter()
            tracker.step(step, loss_value, scheduler.get_last_lr()[0], grad_norm,
                         tokens - tokens_at, now - step_started)
            tokens_at, step_started = tokens, now
            running = loss_value if running is None else 0.9 * running + 0.1 * loss_value
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}", best=f"{max(best['metric'], 0):.3f}")
            if step in eval_at:
                # Every process evaluates: the weights are the same, so are the numbers and the
                # choice of the best step; no process waits on another.
                values, metric = _evaluate_dev(core, data, tok, cfg.seed)
                tracker.evaluation(step, values, metric)
                history.append({"step": step, "loss": running, **values})
                if best["state"] is None or metric > best["metric"]:  # NaN never wins
                    best = {"metric": metric, "step": step, "state": _snapshot(core, top),
                            "values": values}
                model.train()
            # Only here, at an optimizer-step boundary: no gradients are half accumulated.
            if step in eval_at or (every and step % every == 0):
                if accelerator.is_main_process:
                    # Every process has now trained on every micro-batch of the stream before
                    # this position.
                    save_checkpoint(g - accelerator.process_index + processes)
                last_checkpoint = step
            if step >= total:
                break
            # Asked to stop (preemption, time limit, Ctrl-C): here, at a step boundary, with a
            # checkpoint of exactly this step.
            signum = stop.signum or 0
            if processes > 1:  # all stop at the same step, or none
                signum = int(accelerator.reduce(torch.tensor(
                    float(signum), device=accelerator.device), "max"))
            if signum:
                if last_checkpoint != step and accelerator.is_main_process:
                    save_checkpoint(g - accelerator.process_index + processes)
                last_checkpoint = step
                bar.close()
                tracker.end()
                raise preemption.Stopped(
                    f"stopped by {signal.Signals(signum).name} at step {step}/{total}: "
                    f"checkpoint saved in {where}; rerun the same command with --resume to "
                    f"continue", signum)
    bar.close()
    tracker.end()
    seconds = elapsed + time.perf_counter() - start
    if processes > 1:  # counted per process
        tokens, seen = (int(x) for x in accelerator.reduce(
            torch.tensor([tokens, seen], device=accelerator.device), "sum").tolist())

    _restore(core, top, best["state"])
    first = tasks[0]
    result = {
        "task": cfg.task if multi else first.name, "steps": step,
        "epochs_seen": round(seen / sum(len(d.train_features) for d in data.values()), 3),
        "best_step": best["step"],
        "metric": "mean of the tasks' primary metrics" if multi else first.metric,
        "dev": best["metric"], "dev_metrics": best.get("values", {}), "warnings": warnings,
        "train_seconds": round(seconds, 2), "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1), "history": history,
        "trainable_parameters": sum(p.numel() for p in params),
        "micro_batch_size": micro, "micro_batch_chunks": chunks,
        "gradient_checkpointing": core.checkpointing,
    }
    if multi:
        result["sampling"] = {"strategy": cfg.sampling, "temperature": cfg.sampling_temperature,
                              "probabilities": probabilities}
    if saved is not None:
        result["resumed_from_step"] = saved["step"]
    if accelerator.is_main_process:
        manifest = _manifest(cfg, data, core, top, hp, init_from, result, rows)
        module = save_module(cfg.output, manifest, core.module_state(top), core.head_state(),
                             lower, fused=fuse)
        result["module"] = str(module.path)
        _io.write_json(module.path / "train-results.json", result)
        checkpoint.remove(where)  # the module is safely saved: nothing left to resume
    accelerator.wait_for_everyone()
    return result


OPTIMIZERS = ("adamw", "adamw8bit", "paged_adamw", "paged_adamw8bit")


def make_optimizer(name: str, groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """AdamW, or bitsandbytes' 8-bit (states quantized blockwise: about 2 bytes per parameter
    instead of 8) and paged (states in CUDA unified memory, evicted to the CPU under memory
    pressure) variants. They matter for large trainable parts, such as AdapterFusion on XXL
    (about 2.4B parameters); a bottleneck module's states are small either way."""
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    import warnings

    import bitsandbytes as bnb

    cls = {"adamw8bit": bnb.optim.AdamW8bit, "paged_adamw": bnb.optim.PagedAdamW,
           "paged_adamw8bit": bnb.optim.PagedAdamW8bit}[name]
    # On the CPU paged optimizers fall back to plain memory, warning at every new state.
    warnings.filterwarnings("ignore", message="Paged optimizers are not supported on CPU")
    return cls(groups, lr=lr)


def _try_micro_batch(model, data: dict, tok, n: int, seed: int) -> None:
    """A forward and backward pass on the n longest training examples of every task (the
    worst case for memory); gradients are discarded."""
    from .data.preprocess import Collator, length

    try:
        model.train()
        for name, d in data.items():
            longest = sorted(d.train_features, key=length, reverse=True)[:n]
            # A collator of its own: MLM masking must not advance the run's generator.
            collate = d.fmt.collate(tok, model.backbone.device, True, seed) or Collator(
                tok.pad_token_id, 8)
            batch = {k: v.to(model.backbone.device) for k, v in collate(longest).items()
                     if not k.startswith("_")}
            model.use_head(name)
            model(**batch)["loss"].backward()
    finally:
        model.zero_grad(set_to_none=True)


def _evaluate_dev(model, data: dict[str, _TaskData], tok, seed) -> tuple[dict, float]:
    """Dev metrics: one task's values, or {task: values} for several; and the number that
    selects the best step (the primary metric, or the mean of the tasks' primary metrics)."""
    scores, values = [], {}
    for name, d in data.items():
        model.use_head(name)
        values[name] = dev_score(model, d.fmt, d.task, d.dev_rows, d.dev_features, d.labels,
                                 tok, d.task.train_language, seed)
        metric = metrics.primary(d.task.metric, values[name])
        scores.append(-math.inf if math.isnan(metric) else metric)  # e.g. constant predictions
    if len(data) == 1:
        return next(iter(values.values())), scores[0]
    return values, sum(scores) / len(scores)


def _snapshot(model, top) -> dict:
    # module_state returns the parameters themselves for fp32 weights on the CPU: clone, or
    # the "best" snapshot would keep training along with the model.
    return {"module": {k: v.clone() for k, v in model.module_state(top).items()},
            "head": {k: v.clone() for k, v in model.head_state().items()}}


class _TrackMasking:
    """Wraps a collator with a random generator (MLM masking) and attaches to each batch the
    generator's state after masking it. The prepared loader collates one batch ahead, so at a
    step boundary the generator has already moved past the batches trained on; a checkpoint
    saves the state that came with the last trained batch instead."""

    def __init__(self, collate):
        self.collate, self.generator = collate, collate.generator

    def __call__(self, features):
        batch = self.collate(features)
        batch[MASKING_STATE] = self.generator.get_state()
        return batch


def _plain(value):
    """Metric values as plain floats (numpy scalars do not load with weights_only=True)."""
    return json.loads(json.dumps(value, default=float))


def _diverged(loss: float, step: int, lr: float, where: Path, last: int | None) -> str:
    what = f"loss became {loss} at step {step}"
    advice = f"lower the learning rate (now {lr}) or use --precision fp32"
    if last is None:
        return f"{what} (no checkpoint was written before it): {advice}"
    # Resuming replays the same steps, so with the same settings it diverges the same way;
    # and changed settings are a different run, which --resume refuses.
    return (f"{what}; the last checkpoint (step {last}) is kept in {where}, but resuming it "
            f"would likely diverge again: {advice} and start over (delete {where} first)")


def _restore(model, top, state) -> None:
    if state is None:
        return
    model.load_module_state(top, state["module"], "best checkpoint")
    model.load_head_state(state["head"])


def _data_source(cfg, task, given: tuple | None = None) -> dict:
    if given is not None:
        return {"source": "rows", "train": len(given[0]), "validation": len(given[1])}
    if task.format == "mlm":
        return {"source": "text", "text": str(Path(cfg.text).resolve()) if cfg.text else None,
                "dataset": cfg.dataset,
                "samples": None if cfg.text or cfg.dataset else f"text/{task.train_language}.txt",
                "validation": "5% of the lines held out (at most 2000)"}
    data = {"source": source_kind(cfg.data, cfg.data_dir)}
    if data["source"] == "hf":
        # with the commit each source resolved to ("unpinned" when that cannot be known)
        data["train"] = provenance(task, "train", task.train_language)
        data["validation"] = (provenance(task, "validation", task.train_language)
                              if "validation" in task.sources else
                              "5% of train held out (the Hub has no English dev set)")
    elif data["source"] == "local":
        data["dir"] = str(Path(cfg.data_dir).resolve())
    return data


def _manifest(cfg, data: dict[str, _TaskData], model, top, hp, init_from, result,
              rows: dict | None = None) -> dict:
    rows = rows or {}
    names = list(data)
    first = data[names[0]]
    language = first.task.format == "mlm"
    name = f"lang-{first.task.train_language}" if language else "+".join(names)
    if isinstance(top, Fusion):
        method = {"name": "fusion", "engine": top.engine,
                  "config": {"members": len(top.members),
                             "kind": ("AdapterFusion (dynamic)" if top.engine == "bottleneck"
                                      else "learned weighted combination")}}
    else:
        method = {"name": top.method, "engine": get_method(top.method).engine,
                  "config": method_config(top.method, top.config)}
    dev = result["dev_metrics"]
    manifest = {
        "name": name,
        "kind": "fusion" if isinstance(top, Fusion) else "module",
        "role": "language" if language else "task",
        "task": "+".join(names),
        "format": first.task.format,
        "labels": [] if language else list(first.labels),
        "languages": [first.task.train_language],
        "backbone": model.backbone.describe(),
        "method": method,
        "head": model.head_configs[names[0]],
        "init_from": None if init_from is None else {
            "name": init_from.name, "task": init_from.manifest["task"],
            "path": str(init_from.path.resolve()),
            "sha256": init_from.manifest.get("files", {}).get("module.safetensors")},
        "data": _data_source(cfg, first.task, rows.get(first.task.name)),
        "hyperparameters": {**{k: v for k, v in asdict(cfg).items()
                               if k not in ("task", "output", "model", "stack", "init_from",
                                            "fuse", "lang_module", "data", "data_dir", "force",
                                            "resume", "checkpoint_every", "text", "dataset",
                                            "columns", "dev_split", "overwrite",
                                            "allow_pickle", "report_to", "logging_steps",
                                            "tracking_dir", "tracking_project",
                                            "language")}, **hp},
        "seed": cfg.seed,
        "metrics": {"dev": ({first.task.metric: result["dev"], **dev} if len(names) == 1
                            else {"mean": result["dev"], **dev}),
                    "best_step": result["best_step"], "steps": result["steps"]},
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if len(names) > 1:
        manifest["tasks"] = names
        manifest["heads"] = {n: model.head_configs[n] for n in names}
        manifest["task_labels"] = {n: list(d.labels) for n, d in data.items()}
        manifest["formats"] = {n: d.task.format for n, d in data.items()}
        manifest["data"] = {n: _data_source(cfg, d.task, rows.get(n)) for n, d in data.items()}
        manifest["sampling"] = result["sampling"]
    return manifest

