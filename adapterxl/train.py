"""Training a module (phase 2: intermediate, phase 3: target) on a frozen backbone.

One function, `train_module(TrainConfig)`, serves the CLI (train-intermediate, train-target),
the quickstart and the tests. The loop runs through accelerate, so `accelerate launch` /
`torchrun` give data parallelism without changes here."""
from __future__ import annotations

import math
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import _io
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
    model, top = assemble(backbone, lower, method=cfg.method, config=cfg.method_config,
                          init_from=init_from, force=cfg.force,
                          head=head_config(fmt.head, backbone.hidden_size,
                                           fmt.num_outputs(labels), backbone.pooling))

    accelerator = Accelerator(device_placement=False, cpu=backbone.device.type == "cpu")
    micro = cfg.micro_batch_size or hp["batch_size"]
    per_step = micro * accelerator.num_processes
    if hp["batch_size"] % per_step:
        raise AdapterxlError(f"batch size {hp['batch_size']} is not a multiple of micro-batch "
                             f"{micro} x {accelerator.num_processes} processes")
    accum = hp["batch_size"] // per_step
    tok = backbone.tokenizer
    train_features = fmt.encode(train_rows, tok, hp["max_length"], True, task)
    dev_features = fmt.encode(dev_rows, tok, hp["max_length"], False, task)
    train_dl = loader(train_features, tok, micro, shuffle=True, seed=cfg.seed,
                      device=backbone.device,
                      collate=fmt.collate(tok, backbone.device, True, cfg.seed))
    sampler = train_dl.batch_sampler  # accelerate may wrap it; epochs are set on ours
    steps_per_epoch = max(1, len(train_dl) // (accum * accelerator.num_processes))
    total = cfg.max_steps or max(1, math.ceil(hp["epochs"] * steps_per_epoch))

    params = model.trainable_parameters()
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=hp["lr"])
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    model, optimizer, train_dl = accelerator.prepare(model, optimizer, train_dl)
    core = accelerator.unwrap_model(model)

    eval_at = {max(1, round(total * (i + 1) / cfg.evals)) for i in range(cfg.evals)}
    best = {"metric": -math.inf, "step": 0, "state": None}
    history = []
    step, epoch, tokens, seen = 0, 0, 0, 0
    bar = tqdm(total=total, desc=f"train {task.name}", unit="step", dynamic_ncols=True,
               disable=None if (progress and accelerator.is_main_process) else True)
    start = time.perf_counter()
    running = None
    model.train()
    while step < total:
        sampler.set_epoch(epoch)
        for i, batch in enumerate(train_dl):
            batch = {k: v.to(backbone.device) for k, v in batch.items()}
            loss = model(**batch)["loss"]
            if not torch.isfinite(loss):
                raise AdapterxlError(f"loss became {loss.item()} at step {step}: lower the "
                                     f"learning rate (now {hp['lr']}) or use --precision fp32")
            accelerator.backward(loss / accum)
            tokens += int(batch["attention_mask"].sum())
            seen += len(batch["labels"])
            if (i + 1) % accum:
                continue
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}", best=f"{max(best['metric'], 0):.3f}")
            if step in eval_at:
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
            if step >= total:
                break
        epoch += 1
    bar.close()
    seconds = time.perf_counter() - start

    _restore(core, top, best["state"])
    result = {
        "task": task.name, "steps": step, "epochs_seen": round(seen / len(train_features), 3),
        "best_step": best["step"], "metric": task.metric, "dev": best["metric"],
        "dev_metrics": best.get("values", {}), "warnings": warnings,
        "train_seconds": round(seconds, 2), "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1), "history": history,
        "trainable_parameters": sum(p.numel() for p in params),
    }
    if accelerator.is_main_process:
        manifest = _manifest(cfg, task, core, top, hp, init_from, result, labels)
        saved = save_module(cfg.output, manifest, core.module_state(top),
                            {k: v.detach().float().cpu().contiguous()
                             for k, v in core.head.state_dict().items()}, lower)
        result["module"] = str(saved.path)
        _io.write_json(saved.path / "train-results.json", result)
    accelerator.wait_for_everyone()
    return result


def _snapshot(model, top) -> dict:
    return {"module": model.module_state(top),
            "head": {k: v.detach().clone().cpu() for k, v in model.head.state_dict().items()}}


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
                                            "data", "data_dir", "force")}, **hp},
        "seed": cfg.seed,
        "metrics": {"dev": {task.metric: result["dev"], **result["dev_metrics"]},
                    "best_step": result["best_step"], "steps": result["steps"]},
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
