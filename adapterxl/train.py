"""Training a module (phase 2: intermediate, phase 3: target) on a frozen backbone.

One function, `train_module(TrainConfig)`, serves the CLI (train-intermediate, train-target),
the quickstart and the tests. The loop runs through accelerate, so `accelerate launch` /
`torchrun` give data parallelism: every process trains on its own micro-batches (see
LengthGroupedBatches.shard), gradients are averaged across processes at each optimizer step
only, every process evaluates (the same numbers), and the main process alone writes
checkpoints and the module."""
from __future__ import annotations

import json
import math
import platform
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import _io, checkpoint
from .backbone import Backbone, load_backbone
from .errors import AdapterxlError
from .evaluation import metrics
from .formats import Format, get_format, predict
from .heads import head_config
from .modules import assemble, get_method, method_config, open_module, save_module
from .data.preprocess import loader
from .data.hub import hub_spec
from .data.sources import load_split, source_kind
from .tasks import get_task, guard_warning

# Learning rates for modules (the paper's 1e-5 is for full fine-tuning).
DEFAULT_LR = {"seq_bn": 1e-4, "lora": 3e-4}


@dataclass
class TrainConfig:
    """Every field is a CLI flag of train-intermediate / train-target (and a recipe key)."""
    task: str
    output: str
    model: str = "xlm-roberta-large"
    method: str = "seq_bn"
    method_config: dict = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    init_from: str | None = None
    data: str = "hf"
    data_dir: str | None = None
    precision: str | None = None
    quantize: str = "none"
    lr: float | None = None
    epochs: float | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    micro_batch_size: int | None = None
    max_length: int | None = None
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    evals: int = 5
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    seed: int = 42
    force: bool = False
    # Optimizer steps between checkpoints (in `<output>.checkpoint/`), besides the one at
    # every dev evaluation. None: every 10% of the run; 0: only at evaluations.
    checkpoint_every: int | None = None
    resume: bool = False  # continue from the checkpoint of an interrupted run


# Key under which a batch carries its masking generator's state (MLM), see _TrackMasking.
MASKING_STATE = "_masking_state"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("adapterxl", "torch", "transformers", "adapters", "peft", "bitsandbytes",
                "accelerate", "datasets"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _resolve(cfg: TrainConfig):
    task = get_task(cfg.task)
    if get_format(task.format).head is None:
        raise AdapterxlError(f"{task.name} is a {task.format} task: it has no training data and "
                             f"is evaluated from a module's representations (train an "
                             f"intermediate module, then `adapterxl evaluate --task {task.name} "
                             f"--module DIR`)")
    get_method(cfg.method)
    source_kind(cfg.data, cfg.data_dir)
    if cfg.stack and cfg.init_from:
        raise AdapterxlError("--stack and --init-from cannot be combined: --init-from "
                             "continues a module together with everything it was stacked on")
    lower = []
    for path in cfg.stack:
        lower += open_module(path).chain()
    init_from = open_module(cfg.init_from) if cfg.init_from else None
    if init_from is not None:
        lower = init_from.lower()
    hp = task.hyperparameters
    method = init_from.method if init_from else cfg.method
    settings = {
        "lr": cfg.lr or DEFAULT_LR[method],
        "epochs": cfg.epochs if cfg.epochs is not None else hp.get("epochs", 3),
        "batch_size": cfg.batch_size or hp.get("batch_size", 32),
        "max_length": cfg.max_length or hp.get("max_length", 256),
    }
    warnings = [w for w in (guard_warning(m.manifest["task"], task.name)
                            for m in lower + ([init_from] if init_from else [])) if w]
    return task, lower, init_from, settings, warnings


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


def train_module(cfg: TrainConfig, progress: bool = True, backbone: Backbone | None = None) -> dict:
    """Train one module and save it to `cfg.output`. Returns the run's results.

    `backbone` (optional) is an already-loaded backbone to use instead of loading `cfg.model`;
    the modules are injected into it, so pass a fresh one per run."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    task, lower, init_from, hp, warnings = _resolve(cfg)
    fmt = get_format(task.format)
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
    log = tqdm.write if progress else (lambda *_: None)
    for warning in warnings:
        log(f"warning: {warning}")
    set_seed(cfg.seed)
    backbone = backbone or load_backbone(cfg.model, cfg.precision, cfg.quantize)
    train_rows = load_split(task, "train", data=cfg.data, data_dir=cfg.data_dir,
                            max_examples=cfg.max_train_examples)
    held_out = None
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
    # Again: loading may or may not have drawn random numbers (a builtin backbone is
    # materialized from its own seed the first time only; a passed-in backbone is not loaded
    # at all), and a run must not depend on that.
    set_seed(cfg.seed)
    model, top = assemble(backbone, lower, method=cfg.method, config=cfg.method_config,
                          init_from=init_from, force=cfg.force,
                          head=head_config(fmt.head, backbone.hidden_size,
                                           fmt.num_outputs(labels), backbone.pooling))

    accelerator = Accelerator(device_placement=False, cpu=backbone.device.type == "cpu")
    processes = accelerator.num_processes
    micro = cfg.micro_batch_size or hp["batch_size"]
    if processes > 1 and not cfg.micro_batch_size:
        micro = hp["batch_size"] // processes  # --batch-size stays the effective batch
    per_step = micro * processes
    if hp["batch_size"] % per_step:
        raise AdapterxlError(f"batch size {hp['batch_size']} is not a multiple of micro-batch "
                             f"{micro} x {accelerator.num_processes} processes")
    accum = hp["batch_size"] // per_step
    tok = backbone.tokenizer
    train_features = fmt.encode(train_rows, tok, hp["max_length"], True, task)
    dev_features = fmt.encode(dev_rows, tok, hp["max_length"], False, task)
    collate = fmt.collate(tok, backbone.device, True, cfg.seed)
    if getattr(collate, "generator", None) is not None:
        collate = _TrackMasking(collate)
    train_dl = loader(train_features, tok, micro, shuffle=True, seed=cfg.seed,
                      device=backbone.device, collate=collate)
    # Creating an epoch's iterator draws a seed from the loader's generator; by default that
    # is torch's global RNG, which a resumed run would then draw from once more than the
    # interrupted one did. A generator of its own keeps the global RNG for dropout only.
    train_dl.generator = torch.Generator().manual_seed(cfg.seed)
    sampler = train_dl.batch_sampler
    # Data parallelism: the loader is not prepared by accelerate (whose sharding of a
    # batch sampler drops or repeats batches at an epoch's end, so that the processes would not
    # see what one process accumulating sees); each process takes every N-th batch itself.
    sampler.shard(processes, accelerator.process_index)
    steps_per_epoch = max(1, len(train_dl) // (accum * processes))
    total = cfg.max_steps or max(1, math.ceil(hp["epochs"] * steps_per_epoch))
    every = (max(1, math.ceil(total / 10)) if cfg.checkpoint_every is None
             else cfg.checkpoint_every)
    batches_per_epoch = len(train_dl)

    params = model.trainable_parameters()
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=hp["lr"])
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)

    eval_at = {max(1, round(total * (i + 1) / cfg.evals)) for i in range(cfg.evals)}
    best = {"metric": -math.inf, "step": 0, "state": None}
    history = []
    step, epoch, tokens, seen = 0, 0, 0, 0
    skip = 0  # micro-batches of `epoch` already trained on (when resuming mid-epoch)
    running, elapsed, masking, last_checkpoint = None, 0.0, None, None
    if saved is not None:
        if saved["fingerprint"] != backbone.fingerprint:
            raise AdapterxlError(f"cannot resume: the backbone's weights differ from those the "
                                 f"checkpoint in {where} was trained on; delete it to start over")
        if saved["batches_per_epoch"] != batches_per_epoch:
            raise AdapterxlError(f"cannot resume: the training data changed ({batches_per_epoch}"
                                 f" micro-batches per epoch, the checkpoint in {where} saw "
                                 f"{saved['batches_per_epoch']}); delete it to start over")
        if saved.get("processes", 1) != processes:
            raise AdapterxlError(f"cannot resume: the checkpoint in {where} was made by "
                                 f"{saved.get('processes', 1)} process(es), this run has "
                                 f"{processes}; resume with as many, or delete it to start over")
        core.load_module_state(top, saved["module"], f"checkpoint {where}")
        core.head.load_state_dict(saved["head"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        step, epoch, skip = saved["step"], saved["epoch"], saved["batch"]
        tokens, seen, running, elapsed = (saved["tokens"], saved["seen"], saved["running"],
                                          saved["seconds"])
        history, best, masking = saved["history"], saved["best"], saved["masking"]
        last_checkpoint = step
        if masking is not None:
            collate.generator.set_state(masking)
        # Last, so that nothing above (loading, building the model) moves them.
        checkpoint.set_rng_state(saved["rng"])
        log(f"resuming from the checkpoint at step {step}/{total} in {where}")

    def save_checkpoint(epoch: int, batch_in_epoch: int) -> None:
        checkpoint.save(where, {
            "format_version": checkpoint.FORMAT_VERSION, "config": config,
            "fingerprint": backbone.fingerprint, "batches_per_epoch": batches_per_epoch,
            "step": step, "epoch": epoch, "batch": batch_in_epoch, "tokens": tokens,
            "seen": seen, "running": running,
            "seconds": elapsed + time.perf_counter() - start,
            "history": _plain(history), "best": {**best, "values": _plain(best.get("values", {}))},
            "module": core.module_state(top),
            "head": {k: v.detach().cpu() for k, v in core.head.state_dict().items()},
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": checkpoint.rng_state(), "masking": masking, "processes": processes,
        }, {"step": step, "total": total, "epoch": epoch, "task": task.name,
            "output": str(cfg.output), "config_hash": checkpoint.config_hash(config),
            "resume": "rerun the same command with --resume"})

    bar = tqdm(total=total, initial=step, desc=f"train {task.name}", unit="step",
               dynamic_ncols=True,
               disable=None if (progress and accelerator.is_main_process) else True)
    start = time.perf_counter()
    model.train()
    while step < total:
        sampler.set_epoch(epoch)
        sampler.skip = skip
        # j: the batch's index in the epoch, over all processes; g: in the stream of batches
        # that runs on across epochs. A process's k-th batch of that stream is its
        # (k // accum)-th optimizer step's (k % accum)-th micro-batch.
        for j, batch in zip(sampler.positions(), train_dl):
            g = epoch * batches_per_epoch + j
            last = ((g - accelerator.process_index) // processes + 1) % accum == 0
            masking = batch.pop(MASKING_STATE, masking)
            batch = {k: v.to(backbone.device) for k, v in batch.items()}
            # Gradients are averaged across processes at an optimizer step's last
            # micro-batch only.
            with nullcontext() if last else accelerator.no_sync(model):
                loss = model(**batch)["loss"]
                diverged = not bool(torch.isfinite(loss))
                if processes > 1:  # all processes stop, or none: a lone one would deadlock
                    diverged = bool(accelerator.reduce(
                        torch.tensor(float(diverged), device=accelerator.device), "max"))
                if diverged:
                    raise AdapterxlError(_diverged(loss.item(), step + 1, hp["lr"], where,
                                                   last_checkpoint))
                accelerator.backward(loss / accum)
            tokens += int(batch["attention_mask"].sum())
            seen += len(batch["labels"])
            if not last:
                continue
            accelerator.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}", best=f"{max(best['metric'], 0):.3f}")
            if step in eval_at:
                # Every process evaluates: the weights are the same, so are the numbers and
                # the choice of the best step; no process waits on another.
                values = dev_score(core, fmt, task, dev_rows, dev_features, labels, tok,
                                   task.train_language, cfg.seed)
                metric = metrics.primary(task.metric, values)
                if math.isnan(metric):  # e.g. a correlation of constant predictions
                    metric = -math.inf
                history.append({"step": step, "loss": running, **values})
                if best["state"] is None or metric > best["metric"]:  # NaN never wins
                    best = {"metric": metric, "step": step, "state": _snapshot(core, top),
                            "values": values}
                model.train()
            # Only here, at an optimizer-step boundary: no gradients are half accumulated.
            if step in eval_at or (every and step % every == 0):
                if accelerator.is_main_process:
                    # Every process has now trained on every batch of the stream before
                    # `done`; the position is saved as (epoch, batches of it done), 1 or more.
                    done = g - accelerator.process_index + processes
                    at_epoch, at_batch = divmod(done - 1, batches_per_epoch)
                    save_checkpoint(at_epoch, at_batch + 1)
                last_checkpoint = step
            if step >= total:
                break
        skip = 0
        epoch += 1
    bar.close()
    seconds = elapsed + time.perf_counter() - start
    if processes > 1:  # counted per process
        tokens, seen = (int(x) for x in accelerator.reduce(
            torch.tensor([tokens, seen], device=accelerator.device), "sum").tolist())

    _restore(core, top, best["state"])
    result = {
        "task": task.name, "steps": step, "epochs_seen": round(seen / len(train_features), 3),
        "best_step": best["step"], "metric": task.metric, "dev": best["metric"],
        "dev_metrics": best.get("values", {}), "warnings": warnings,
        "train_seconds": round(seconds, 2), "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1), "history": history,
        "trainable_parameters": sum(p.numel() for p in params),
    }
    if saved is not None:
        result["resumed_from_step"] = saved["step"]
    if accelerator.is_main_process:
        manifest = _manifest(cfg, task, core, top, hp, init_from, result, labels)
        module = save_module(cfg.output, manifest, core.module_state(top),
                            {k: v.detach().float().cpu().contiguous()
                             for k, v in core.head.state_dict().items()}, lower)
        result["module"] = str(module.path)
        _io.write_json(module.path / "train-results.json", result)
        checkpoint.remove(where)  # the module is safely saved: nothing left to resume
    accelerator.wait_for_everyone()
    return result


def _snapshot(model, top) -> dict:
    # module_state returns the parameters themselves for fp32 weights on the CPU: clone, or
    # the "best" snapshot would keep training along with the model.
    return {"module": {k: v.clone() for k, v in model.module_state(top).items()},
            "head": {k: v.detach().clone().cpu() for k, v in model.head.state_dict().items()}}


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
    model.head.load_state_dict(state["head"])


def _manifest(cfg, task, model, top, hp, init_from, result, labels) -> dict:
    data = {"source": source_kind(cfg.data, cfg.data_dir)}
    if data["source"] == "hf":
        data["train"] = hub_spec(task, "train", task.train_language)["sources"]
        data["validation"] = (hub_spec(task, "validation", task.train_language)["sources"]
                              if "validation" in task.sources else
                              "5% of train held out (the Hub has no English dev set)")
    elif data["source"] == "local":
        data["dir"] = str(Path(cfg.data_dir).resolve())
    return {
        "name": task.name,
        "task": task.name,
        "format": task.format,
        "labels": [] if task.format == "mlm" else list(labels),
        "languages": [task.train_language],
        "backbone": model.backbone.describe(),
        "method": {"name": top.method, "engine": get_method(top.method).engine,
                   "config": method_config(top.method, top.config)},
        "head": model.head_config,
        "init_from": None if init_from is None else {
            "name": init_from.name, "task": init_from.manifest["task"],
            "path": str(init_from.path.resolve()),
            "sha256": init_from.manifest.get("files", {}).get("module.safetensors")},
        "data": data,
        "hyperparameters": {**{k: v for k, v in asdict(cfg).items()
                               if k not in ("task", "output", "model", "stack", "init_from",
                                            "data", "data_dir", "force", "resume",
                                            "checkpoint_every")}, **hp},
        "seed": cfg.seed,
        "metrics": {"dev": {task.metric: result["dev"], **result["dev_metrics"]},
                    "best_step": result["best_step"], "steps": result["steps"]},
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
