"""Training a module (phase 2: intermediate, phase 3: target, and language modules) on a
frozen backbone: `prepare` (what to train, on what, from where; the model, data, optimizer),
`loop` (the optimizer steps, dev evaluations, checkpoints) and `finish` (the best state saved
as a module).

One function, `train_module(TrainConfig)`, serves the CLI (train-intermediate, train-target,
train-language), the quickstart and the tests. What trains is one new module on top of
frozen ones (`stack`, `lang_module`), a module continued (`init_from`), or a fusion of
modules (`fuse`); on one task, or on several at once with one head each (multi-task). The
loop runs through accelerate, so `accelerate launch` / `torchrun` give data parallelism: every process trains on its own micro-batches (see
LengthGroupedBatches.shard), gradients are averaged across processes at each optimizer step
only, every process evaluates (the same numbers), and the main process alone writes
checkpoints and the module."""
from __future__ import annotations

import math
import os
import random
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import _io, checkpoint, logs, preemption, tracking
from . import lock as locks
from .settings import TrainConfig, hyperparameters
from .backbone import Backbone, load_backbone
from .checkpoint import RunKey, TrainState
from ._version import versions
from .errors import AdapterxlError
from .scoring import metrics
from .formats import Format, get_format
from .heads import head_config
from .hub import resolve_module
from . import memory
from .modules import (Fusion, Manifest, MethodSpec, assemble, get_method, method_config,
                      save_module, with_module_layers)
from .modules.compose import Composition, compose
from .modules.model import SLOT_PREFIX
from .modules.store import check_output
from .data.mixture import TaskStream, task_probabilities
from .data.preprocess import ROW, loader
from .layer_cache import LayerCache
from .data.sources import DataSource
from .data.split import given_provenance, provenance, train_and_dev
from .data.text import LANGUAGE_TASK, language_rows, language_task, text_provenance
from .tasks import Task, get_task, guard_warning

# Key under which a batch carries its masking generator's state (MLM), see _TrackMasking.
MASKING_STATE = "_masking_state"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)



def _tasks(cfg: TrainConfig) -> list[Task]:
    names = [n.strip() for n in cfg.task.split(",") if n.strip()]
    if not names:
        raise AdapterxlError("no task given")
    if len(set(names)) != len(names):
        raise AdapterxlError(f"a task is named twice in {cfg.task!r}")
    if names == [LANGUAGE_TASK]:
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


def _resolve(cfg: TrainConfig) -> tuple[list[Task], DataSource, Composition, dict, list[str]]:
    """Everything checkable before anything loads: the tasks, the data source, the modules
    the new one is composed with, the hyperparameters and the transfer warnings."""
    tasks = _tasks(cfg)
    get_method(cfg.method)
    if cfg.optimizer not in OPTIMIZERS:
        from .errors import unknown
        raise unknown("optimizer", cfg.optimizer, OPTIMIZERS)
    if cfg.module_dtype not in ("fp32", "bf16"):
        from .errors import unknown
        raise unknown("module dtype", cfg.module_dtype, ("fp32", "bf16"))
    source = DataSource(cfg.data, cfg.data_dir)
    # Hub ids become local folders here, at the edge: modules/ only opens folders
    comp = compose([resolve_module(p) for p in cfg.stack],
                   resolve_module(cfg.init_from) if cfg.init_from else None,
                   [resolve_module(p) for p in cfg.fuse],
                   resolve_module(cfg.lang_module) if cfg.lang_module else None)
    hp = tasks[0].hyperparameters
    settings = {
        "lr": comp.default_lr(cfg.method) if cfg.lr is None else cfg.lr,
        "epochs": cfg.epochs if cfg.epochs is not None else hp.get("epochs", 3),
        "batch_size": (hp.get("batch_size", 32) if cfg.batch_size is None
                       else cfg.batch_size),
        "max_length": (hp.get("max_length", 256) if cfg.max_length is None
                       else cfg.max_length),
    }
    beneath = comp.tasks_beneath()
    warnings = [w for task in tasks for t in beneath for w in [guard_warning(t, task.name)]
                if w]
    return tasks, source, comp, settings, warnings


def dev_score(model, fmt: Format, task, rows, features, labels, tokenizer, lang, seed=0,
              batch_size: int = 64) -> dict:
    """The dev metric values: the format's evaluation of the already encoded dev rows."""
    return fmt.evaluate(model, rows, tokenizer, task, labels, lang, features=features,
                        seed=seed, batch_size=batch_size).values


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


def _load_task(cfg: TrainConfig, task: Task, backbone: Backbone, source: DataSource,
               given: tuple | None = None) -> _TaskData:
    fmt = get_format(task.format)
    if given is not None:  # canonical rows passed from Python (adapterxl.train(rows=...))
        train_rows, dev_rows = list(given[0]), list(given[1])
        if cfg.max_train_examples:
            train_rows = train_rows[:cfg.max_train_examples]
        if cfg.max_eval_examples:
            dev_rows = dev_rows[:cfg.max_eval_examples]
    elif fmt.language:
        train_rows, dev_rows = language_rows(
            task, text=cfg.text, dataset=cfg.dataset, samples=source.kind == "samples",
            seed=cfg.seed, max_train=cfg.max_train_examples, max_dev=cfg.max_eval_examples)
    else:
        train_rows, dev_rows = train_and_dev(task, source, cfg.seed, cfg.max_train_examples,
                                             cfg.max_eval_examples)
    for split, rows in (("train", train_rows), ("validation", dev_rows)):
        if not all(fmt.labeled(r) for r in rows):
            raise AdapterxlError(f"{task.name} {split} data has unlabeled examples; training "
                                 f"and model selection need labels")
    labels = fmt.labels(task, train_rows + dev_rows, backbone)
    return _TaskData(task, fmt, labels, fmt.indexed(task, train_rows, labels),
                     fmt.indexed(task, dev_rows, labels))


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
        run = prepare(cfg, backbone, rows)
        return finish(run, loop(run, progress))
    finally:
        if took:
            locks.release(lock)


@dataclass
class Run:
    """A prepared run: what `loop` trains and `finish` saves."""
    cfg: TrainConfig
    data: dict[str, _TaskData]
    comp: Composition
    hp: dict                  # lr, epochs, batch_size, max_length as resolved
    warnings: list[str]
    probabilities: dict       # multi-task sampling
    backbone: Backbone
    accelerator: Any
    model: Any                # as prepared by accelerate (wrapped under data parallelism)
    core: Any                 # the ModularModel itself
    top: Any                  # the trainable slot (module or fusion)
    params: list
    optimizer: Any
    scheduler: Any
    stream: TaskStream
    masking_collate: Any      # the MLM collator whose generator a checkpoint saves
    micro: int                # examples per micro-batch
    accum: int                # micro-batches per optimizer step and process
    total: int                # optimizer steps
    every: int                # steps between checkpoints (0: only at evaluations)
    eval_at: set
    key: RunKey
    where: Path               # the checkpoint directory
    saved: dict | None        # the checkpoint resumed from
    rows: dict
    chunks: int = 1           # pieces each micro-batch runs in (doubles when out of memory)
    last_checkpoint: int | None = None
    started: float = 0.0      # when this process started training (perf_counter)
    layer_cache: LayerCache | None = None  # --cache-frozen-layers

    @property
    def processes(self) -> int:
        return self.accelerator.num_processes


def prepare(cfg: TrainConfig, backbone: Backbone | None = None, rows: dict | None = None) -> Run:
    """Check the settings and the composition, read a checkpoint to resume, load the backbone
    and the data, build the model, batches, optimizer and schedule."""
    from accelerate import Accelerator

    tasks, source, comp, hp, warnings = _resolve(cfg)
    task_probabilities({t.name: 1 for t in tasks}, cfg.sampling,
                       cfg.sampling_temperature)  # validates early
    tracking.check(cfg.report_to)
    if cfg.checkpoint_every is not None and cfg.checkpoint_every < 0:
        raise AdapterxlError(f"--checkpoint-every must be 0 or more, got {cfg.checkpoint_every}")
    where = checkpoint.directory(cfg.output)
    config = checkpoint.config_of(cfg)
    saved = _checkpoint_to_resume(cfg, where, config)
    set_seed(cfg.seed)
    backbone = backbone or load_backbone(cfg.model, cfg.precision, cfg.quantize,
                                         trust_remote_code=cfg.trust_remote_code,
                                         allow_pickle=cfg.allow_pickle)
    rows = rows or {}
    data = {t.name: _load_task(cfg, t, backbone, source, rows.get(t.name)) for t in tasks}
    probabilities = task_probabilities({n: len(d.train_rows) for n, d in data.items()},
                                       cfg.sampling, cfg.sampling_temperature)
    # Again: loading may or may not have drawn random numbers (a builtin backbone is
    # materialized from its own seed the first time only; a passed-in backbone is not loaded
    # at all), and a run must not depend on that.
    set_seed(cfg.seed)
    model, top = _model(cfg, backbone, comp, data, warnings)
    accelerator = Accelerator(device_placement=False, cpu=backbone.device.type == "cpu",
                              **tracking.accelerator_kwargs(cfg))
    processes = accelerator.num_processes
    _encode(cfg, data, backbone.tokenizer, hp)
    micro, accum = _batching(cfg, hp, model, data, backbone, processes)
    loaders, masking_collate = _loaders(cfg, data, backbone, micro)
    cache = _layer_cache(cfg, model, data, backbone, where, masking_collate)
    # Data parallelism: the loaders are not prepared by accelerate (whose sharding of a
    # batch sampler drops or repeats batches at an epoch's end, so that the processes would
    # not see what one process accumulating sees); each process takes every N-th batch itself.
    stream = TaskStream(loaders, probabilities, cfg.seed, processes, accelerator.process_index)
    batches = {n: len(dl) for n, dl in loaders.items()}
    steps_per_epoch = max(1, sum(batches.values()) // (accum * processes))
    total = (max(1, math.ceil(hp["epochs"] * steps_per_epoch)) if cfg.max_steps is None
             else cfg.max_steps)
    every = (max(1, math.ceil(total / 10)) if cfg.checkpoint_every is None
             else cfg.checkpoint_every)
    params, optimizer, scheduler = _optimizer(cfg, model, hp["lr"], total)
    model, optimizer = accelerator.prepare(model, optimizer)
    return Run(cfg, data, comp, hp, warnings, probabilities, backbone, accelerator, model,
               accelerator.unwrap_model(model), top, params, optimizer, scheduler, stream,
               masking_collate, micro, accum, total, every,
               {max(1, round(total * (i + 1) / cfg.evals)) for i in range(cfg.evals)},
               RunKey(config, backbone.fingerprint, batches, processes), where, saved, rows,
               layer_cache=cache)


def _layer_cache(cfg: TrainConfig, model, data: dict, backbone: Backbone, where: Path,
                 masking_collate) -> LayerCache | None:
    if not cfg.cache_frozen_layers:
        return None
    if masking_collate is not None:
        raise AdapterxlError("--cache-frozen-layers: masked language modelling draws new masks "
                             "every epoch, so the lower layers' outputs change; train without "
                             "it")
    for d in data.values():  # dev batches say which features they hold, too
        d.dev_features = [{**f, ROW: i} for i, f in enumerate(d.dev_features)]
    return LayerCache(model, backbone.model_type, backbone.hidden_size, SLOT_PREFIX,
                      {n: d.train_features for n, d in data.items()}, where,
                      dev={n: d.dev_features for n, d in data.items()})


def _checkpoint_to_resume(cfg: TrainConfig, where: Path, config: dict) -> dict | None:
    if cfg.resume:
        saved = checkpoint.load(where)
        checkpoint.check_config(saved["config"], config, where)
        return saved
    if checkpoint.exists(where):
        # Starting over would silently discard the interrupted run's work.
        raise AdapterxlError(f"an interrupted run left a checkpoint in {where}: pass --resume "
                             f"to continue it, or delete that directory to start over")
    return None


def _model(cfg: TrainConfig, backbone: Backbone, comp: Composition, data: dict,
           warnings: list[str]):
    """The model with its heads and the trainable slot on top of the composition."""
    heads = {n: head_config(d.fmt.head, backbone.hidden_size, d.fmt.num_outputs(d.labels),
                            backbone.pooling) for n, d in data.items()}
    if cfg.module_layers is not None and (comp.init_from is not None or comp.fuse):
        raise AdapterxlError("--module-layers places a new module; with --init-from or --fuse "
                             "the modules keep the layers they were trained in")
    config = with_module_layers(cfg.method, cfg.method_config, cfg.module_layers,
                                backbone.model.config.num_hidden_layers)
    model, top = assemble(backbone, comp.lower, method=cfg.method, config=config,
                          init_from=comp.init_from, fuse=comp.fuse, heads=heads, force=cfg.force)
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
    return model, top


def _encode(cfg: TrainConfig, data: dict, tok, hp: dict) -> None:
    for d in data.values():
        max_length = (d.task.hyperparameters.get("max_length", hp["max_length"])
                      if cfg.max_length is None else cfg.max_length)
        d.train_features = d.fmt.encode(d.train_rows, tok, max_length, True, d.task)
        d.dev_features = d.fmt.encode(d.dev_rows, tok, max_length, False, d.task)


def _batching(cfg: TrainConfig, hp: dict, model, data: dict, backbone: Backbone,
              processes: int) -> tuple[int, int]:
    """(examples per micro-batch, micro-batches per optimizer step and process): the given
    micro-batch, else on one GPU the largest that fits in memory."""
    micro = hp["batch_size"] if cfg.micro_batch_size is None else cfg.micro_batch_size
    if processes > 1 and not cfg.micro_batch_size:
        micro = hp["batch_size"] // processes  # --batch-size stays the effective batch
    if not cfg.micro_batch_size and backbone.device.type == "cuda" and processes == 1:
        micro = memory.find_micro_batch(
            lambda n: _try_micro_batch(model, data, backbone.tokenizer, n, cfg.seed),
            micro, hp["batch_size"], logs.logger.info, f" at --max-length {hp['max_length']}",
            fallback=model.gradient_checkpointing)
    per_step = micro * processes
    if hp["batch_size"] % per_step:
        raise AdapterxlError(f"batch size {hp['batch_size']} is not a multiple of micro-batch "
                             f"{micro} x {processes} processes")
    return micro, hp["batch_size"] // per_step


def _loaders(cfg: TrainConfig, data: dict, backbone: Backbone, micro: int):
    """One shuffled loader per task, and the MLM collator whose masking a checkpoint keeps."""
    tok = backbone.tokenizer
    loaders, masking_collate = {}, None
    for name, d in data.items():
        collate = d.fmt.collate(tok, backbone.device, True, cfg.seed)
        if getattr(collate, "generator", None) is not None:
            collate = masking_collate = _TrackMasking(collate)
        features = d.train_features
        if cfg.cache_frozen_layers:  # the batches say which features they hold
            features = [{**f, ROW: i} for i, f in enumerate(features)]
        dl = loader(features, tok, micro, shuffle=True, seed=cfg.seed,
                    device=backbone.device, collate=collate)
        # Creating an epoch's iterator draws a seed from the loader's generator; by default
        # that is torch's global RNG, which a resumed run would then draw from once more than
        # the interrupted one did. A generator of its own keeps the global RNG for dropout.
        dl.generator = torch.Generator().manual_seed(cfg.seed)
        loaders[name] = dl
    if masking_collate is not None and len(data) > 1:
        raise AdapterxlError("masked language modelling trains alone (train-language)")
    return loaders, masking_collate


def _optimizer(cfg: TrainConfig, model, lr: float, total: int):
    """The trainable parameters, the optimizer (no weight decay on biases and norms) and the
    linear schedule with warmup."""
    from transformers import get_linear_schedule_with_warmup

    params = model.trainable_parameters()
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = make_optimizer(cfg.optimizer,
                               [{"params": decay, "weight_decay": cfg.weight_decay},
                                {"params": no_decay, "weight_decay": 0.0}], lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    return params, optimizer, scheduler


def loop(run: Run, progress: bool = True) -> TrainState:
    """Optimizer steps until `run.total` (from the checkpoint when resuming): dev evaluations
    at `run.eval_at` keep the best state; checkpoints at evaluations and every `run.every`
    steps. Asked to stop (preemption, time limit, Ctrl-C), it checkpoints the step it is at
    and raises preemption.Stopped."""
    from tqdm.auto import tqdm

    cfg, acc = run.cfg, run.accelerator
    state = _resume(run) if run.saved is not None else TrainState()
    tracker = tracking.Tracker(acc, cfg, {**run.key.config,
                                          **{f"hp/{k}": v for k, v in run.hp.items()}})
    bar = tqdm(total=run.total, initial=state.step, desc=f"train {cfg.task}", unit="step",
               dynamic_ncols=True,
               disable=None if (progress and acc.is_main_process
                                and logs.progress_enabled()) else True)
    run.started = time.perf_counter()
    tokens_at, step_started = state.tokens, run.started
    run.model.train()
    pending = []
    with (run.layer_cache.session() if run.layer_cache else nullcontext()), \
            preemption.StopRequest(lambda: f"interrupted at step {state.step}/{run.total}; "
                                        f"{_resume_hint(run)}") as stop:
        # Resumed from the final checkpoint (killed before it was removed): save, train no more.
        # g: the micro-batch's index in the run's stream, over all processes. A process's k-th
        # micro-batch is its (k // accum)-th optimizer step's (k % accum)-th.
        batches = run.stream.stream(state.position) if state.step < run.total else ()
        for g, name, batch in batches:
            last = ((g - acc.process_index) // run.processes + 1) % run.accum == 0
            state.masking = batch.pop(MASKING_STATE, state.masking)
            pending.append((name, batch))
            state.tokens += int(batch["attention_mask"].sum())
            state.seen += len(batch["labels"])
            if not last:
                continue
            loss_value, grad_norm = _optimizer_step(run, pending, state.step)
            pending = []
            state.step += 1
            now = time.perf_counter()
            tracker.step(state.step, loss_value, run.scheduler.get_last_lr()[0], grad_norm,
                         state.tokens - tokens_at, now - step_started)
            tokens_at, step_started = state.tokens, now
            state.running = (loss_value if state.running is None
                             else 0.9 * state.running + 0.1 * loss_value)
            bar.update(1)
            bar.set_postfix(loss=f"{state.running:.4f}",
                            best=f"{max(state.best['metric'], 0):.3f}")
            if state.step in run.eval_at:
                _evaluate(run, state, tracker)
            # Every process has now trained on every micro-batch of the stream before this.
            state.position = g - acc.process_index + run.processes
            # Only here, at an optimizer-step boundary: no gradients are half accumulated.
            if state.step in run.eval_at or (run.every and state.step % run.every == 0):
                _checkpoint(run, state)
            if state.step >= run.total:
                break
            # Asked to stop (preemption, time limit, Ctrl-C): here, at a step boundary, with a
            # checkpoint of exactly this step.
            signum = stop.signum or 0
            if run.processes > 1:  # all stop at the same step, or none
                signum = int(acc.reduce(torch.tensor(float(signum), device=acc.device), "max"))
            if signum:
                if run.last_checkpoint != state.step:
                    _checkpoint(run, state)
                bar.close()
                tracker.end()
                raise preemption.Stopped(
                    f"stopped by {signal.Signals(signum).name} at step "
                    f"{state.step}/{run.total}: checkpoint saved in {run.where}; rerun the same "
                    f"command with --resume to continue", signum)
    bar.close()
    tracker.end()
    return state


def _resume(run: Run) -> TrainState:
    """The checkpoint's state, its weights, optimizer and schedule loaded into the run."""
    saved, where = run.saved, run.where
    state = checkpoint.restored_state(saved, run.key, where)
    run.core.load_module_state(run.top, saved["module"], f"checkpoint {where}")
    run.core.load_head_state(saved["head"])
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scheduler.load_state_dict(saved["scheduler"])
    run.last_checkpoint = state.step
    if state.masking is not None:
        run.masking_collate.generator.set_state(state.masking)
    # Last, so that nothing above (loading, building the model) moves them.
    checkpoint.set_rng_state(saved["rng"])
    logs.logger.info(f"resuming from the checkpoint at step {state.step}/{run.total} in {where}")
    return state


def _checkpoint(run: Run, state: TrainState) -> None:
    """Save the run at this step (the main process writes it)."""
    if run.accelerator.is_main_process:
        seconds = state.seconds + time.perf_counter() - run.started
        checkpoint.save_state(
            run.where, run.key, replace(state, seconds=seconds),
            {"module": run.core.module_state(run.top), "head": run.core.head_state(),
             "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict()},
            {"step": state.step, "total": run.total,
             "epoch": round(state.position / sum(run.key.batches.values()), 3),
             "task": run.cfg.task, "output": str(run.cfg.output),
             "config_hash": checkpoint.config_hash(run.key.config),
             "resume": "rerun the same command with --resume"})
    run.last_checkpoint = state.step


def _resume_hint(run: Run) -> str:
    if run.last_checkpoint is None:
        return "no checkpoint was written yet: rerun the same command to start over"
    return (f"the last checkpoint (step {run.last_checkpoint}/{run.total}) is in {run.where}: "
            f"rerun the same command with --resume to continue")


def _evaluate(run: Run, state: TrainState, tracker) -> None:
    """Dev evaluation; the best state so far is kept. Every process evaluates: the weights
    are the same, so are the numbers and the choice of the best step; no process waits."""
    values, metric = _evaluate_dev(run.core, run.data, run.backbone.tokenizer, run.cfg.seed)
    tracker.evaluation(state.step, values, metric)
    state.history.append({"step": state.step, "loss": state.running, **values})
    if state.best["state"] is None or metric > state.best["metric"]:  # NaN never wins
        state.best = {"metric": metric, "step": state.step,
                      "state": _snapshot(run.core, run.top), "values": values}
    run.model.train()


def _optimizer_step(run: Run, pending: list, step: int) -> tuple[float, Any]:
    """One optimizer step over the pending micro-batches: (loss, gradient norm)."""
    loss_value = _backward(run, pending, step)
    grad_norm = run.accelerator.clip_grad_norm_(run.params, 1.0)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss_value, grad_norm


def _backward(run: Run, pending: list, step: int) -> float:
    """Forward and backward over the step's micro-batches, each in `run.chunks` pieces; out
    of memory: start the step again in twice as many pieces (one process only)."""
    while True:
        try:
            loss_value = 0.0
            for i, (name, batch) in enumerate(pending):
                # The step's loss as reported is its last micro-batch's (as it always was).
                loss_value = _backward_batch(run, name, batch, i == len(pending) - 1, step)
            return loss_value
        except Exception as e:  # noqa: BLE001 - only out-of-memory errors are handled
            if not memory.is_oom(e):
                raise
            run.optimizer.zero_grad(set_to_none=True)
            memory.release()
            widest = max(len(b["labels"]) for _, b in pending)
            if run.processes > 1 or run.chunks >= widest:
                raise AdapterxlError(
                    f"out of memory at step {step + 1} with micro-batches of "
                    f"{-(-widest // run.chunks)} examples; pass a smaller --micro-batch-size "
                    f"or --max-length (then --resume from the last checkpoint)") from None
            run.chunks *= 2
            logs.logger.info(f"out of memory at step {step + 1}: running each micro-batch of "
                             f"{run.micro} in {run.chunks} pieces from now on (same data, "
                             f"same effective batch)")


def _backward_batch(run: Run, name: str, batch: dict, last: bool, step: int) -> float:
    acc, device = run.accelerator, run.backbone.device
    run.core.use_head(name)
    parts = memory.split(batch, run.chunks)
    rows, loss_value = len(batch["labels"]), 0.0
    for j, part in enumerate(parts):
        part = {k: v.to(device) for k, v in part.items()}
        # Gradients are averaged across processes at the step's last backward only.
        sync = last and j == len(parts) - 1
        with nullcontext() if sync else acc.no_sync(run.model):
            loss = run.model(**part)["loss"]
            diverged = not bool(torch.isfinite(loss))
            if run.processes > 1:  # all stop, or none: a lone one would deadlock
                diverged = bool(acc.reduce(torch.tensor(float(diverged), device=acc.device),
                                           "max"))
            if diverged:
                raise AdapterxlError(_diverged(loss.item(), step + 1, run.hp["lr"], run.where,
                                               run.last_checkpoint))
            share = len(part["labels"]) / rows
            acc.backward(loss * share / run.accum)
        loss_value += loss.item() * share
    return loss_value


def finish(run: Run, state: TrainState) -> dict:
    """The best state restored and saved as the module (the main process writes it, then
    removes the checkpoint); returns the run's results."""
    acc, cfg, data = run.accelerator, run.cfg, run.data
    seconds = state.seconds + time.perf_counter() - run.started
    tokens, seen = state.tokens, state.seen
    if run.processes > 1:  # counted per process
        tokens, seen = (int(x) for x in acc.reduce(
            torch.tensor([tokens, seen], device=acc.device), "sum").tolist())
    _restore(run.core, run.top, state.best["state"])
    multi, first = len(data) > 1, next(iter(data.values())).task
    result = {
        "task": cfg.task if multi else first.name, "steps": state.step,
        "epochs_seen": round(seen / sum(len(d.train_features) for d in data.values()), 3),
        "best_step": state.best["step"],
        "metric": "mean of the tasks' primary metrics" if multi else first.metric,
        "dev": state.best["metric"], "dev_metrics": state.best.get("values", {}),
        "warnings": run.warnings, "train_seconds": round(seconds, 2), "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1), "history": state.history,
        "trainable_parameters": sum(p.numel() for p in run.params),
        "micro_batch_size": run.micro, "micro_batch_chunks": run.chunks,
        "gradient_checkpointing": run.core.checkpointing,
    }
    if run.layer_cache is not None:
        result["layer_cache"] = run.layer_cache.stats()
    if multi:
        result["sampling"] = {"strategy": cfg.sampling, "temperature": cfg.sampling_temperature,
                              "probabilities": run.probabilities}
    if run.saved is not None:
        result["resumed_from_step"] = run.saved["step"]
    if acc.is_main_process:
        manifest = _manifest(cfg, data, run.core, run.top, run.hp, run.comp.init_from, result,
                             run.rows)
        module = save_module(cfg.output, manifest, run.core.module_state(run.top),
                             run.core.head_state(), run.comp.lower, fused=run.comp.fuse)
        result["module"] = str(module.path)
        _io.write_json(module.path / "train-results.json", result)
        checkpoint.remove(run.where)  # the module is safely saved: nothing left to resume
    acc.wait_for_everyone()
    return result


def _data_source(cfg, task, given: tuple | None = None) -> dict:
    """A manifest's `data` entry for one task."""
    if given is not None:
        return given_provenance(*given)
    if get_format(task.format).language:
        return text_provenance(task, cfg.text, cfg.dataset)
    return provenance(task, DataSource(cfg.data, cfg.data_dir))


OPTIMIZERS = ("adamw", "adamw8bit", "paged_adamw", "paged_adamw8bit")


def make_optimizer(name: str, groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """AdamW, or bitsandbytes' 8-bit (states quantized blockwise: about 2 bytes per parameter
    instead of 8) and paged (states in CUDA unified memory, evicted to the CPU under memory
    pressure) variants. They matter for large trainable parts, such as AdapterFusion on XXL
    (about 2.4B parameters); a bottleneck module's states are small either way."""
    if name == "adamw":
        # On a GPU one fused kernel per step instead of a few per tensor (the default there is
        # `foreach`); the CPU keeps the default.
        params = [p for g in groups for p in g["params"]]
        cuda = bool(params) and all(p.is_cuda for p in params)
        return torch.optim.AdamW(groups, lr=lr, fused=True if cuda else None)
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


def _manifest(cfg, data: dict[str, _TaskData], model, top, hp, init_from, result,
              rows: dict | None = None) -> Manifest:
    rows = rows or {}
    names = list(data)
    first = data[names[0]]
    language = get_format(first.task.format).language
    if isinstance(top, Fusion):
        method = MethodSpec("fusion", {"members": len(top.members),
                                       "kind": ("AdapterFusion (dynamic)"
                                                if top.engine == "bottleneck"
                                                else "learned weighted combination")},
                            top.engine)
    else:
        method = MethodSpec(top.method, method_config(top.method, top.config),
                            get_method(top.method).engine)
    dev = result["dev_metrics"]
    multi = len(names) > 1
    return Manifest(
        name=f"lang-{first.task.train_language}" if language else "+".join(names),
        kind="fusion" if isinstance(top, Fusion) else "module",
        role="language" if language else "task",
        task="+".join(names),
        format=first.task.format,
        labels=[] if language else list(first.labels),
        languages=[first.task.train_language],
        backbone=model.backbone.describe(),
        method=method,
        head=model.head_configs[names[0]],
        init_from=None if init_from is None else {
            "name": init_from.name, "task": init_from.manifest.task,
            "path": str(init_from.path.resolve()), "sha256": init_from.sha256},
        data=({n: _data_source(cfg, d.task, rows.get(n)) for n, d in data.items()} if multi
              else _data_source(cfg, first.task, rows.get(first.task.name))),
        hyperparameters={**hyperparameters(cfg), **hp},
        seed=cfg.seed,
        metrics={"dev": ({"mean": result["dev"], **dev} if multi
                         else {first.task.metric: result["dev"], **dev}),
                 "best_step": result["best_step"], "steps": result["steps"]},
        versions=versions(),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        tasks=names if multi else None,
        heads={n: model.head_configs[n] for n in names} if multi else None,
        task_labels={n: list(d.labels) for n, d in data.items()} if multi else None,
        formats={n: d.task.format for n, d in data.items()} if multi else None,
        sampling=result["sampling"] if multi else None)

