"""Experiment tracking through accelerate's trackers (TensorBoard, Weights & Biases, MLflow):
training loss, learning rate, gradient norm and tokens/s every `logging_steps` optimizer steps,
every dev evaluation, and the run's configuration.

Runs are grouped under a project (`tracking_project`, default "adapterxl"; a recipe run uses
the recipe's name): TensorBoard writes `<tracking_dir>/<project>/<run>/`, so
`tensorboard --logdir <tracking_dir>` compares them; W&B puts runs of a project in one group,
MLflow in one experiment. Only the main process logs."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from .errors import AdapterxlError

REPORT_TO = ("none", "tensorboard", "wandb", "mlflow")
# What each tracker needs installed (the [tracking] extra brings TensorBoard).
_PACKAGES = {"tensorboard": ("tensorboard", "pip install 'adapterxl[tracking]'"),
             "wandb": ("wandb", "pip install wandb"), "mlflow": ("mlflow", "pip install mlflow")}


def check(report_to: str) -> str:
    if report_to not in REPORT_TO:
        from .errors import unknown
        raise unknown("tracker (--report-to)", report_to, REPORT_TO)
    if report_to != "none":
        module, how = _PACKAGES[report_to]
        if importlib.util.find_spec(module) is None:
            raise AdapterxlError(f"--report-to {report_to} needs the {module} package, which "
                                 f"is not installed ({how})")
    return report_to


def directory(cfg) -> Path:
    """Where local trackers write: --tracking-dir, else `tracking/` beside the module."""
    return Path(cfg.tracking_dir) if cfg.tracking_dir else Path(cfg.output).parent / "tracking"


def accelerator_kwargs(cfg) -> dict:
    if check(cfg.report_to) == "none":
        return {}
    return {"log_with": cfg.report_to, "project_dir": str(directory(cfg))}


def _plain(value):
    """Trackers' configs take numbers, text, booleans and None."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class Tracker:
    """Logs one training run; a no-op with report_to none."""

    def __init__(self, accelerator, cfg, config: dict):
        self.accelerator = accelerator
        self.on = cfg.report_to != "none"
        self.every = max(1, cfg.logging_steps)
        self._window = {"loss": 0.0, "steps": 0, "tokens": 0, "seconds": 0.0}
        if not self.on:
            return
        project = cfg.tracking_project or "adapterxl"
        run = Path(cfg.output).name
        flat = {k: _plain(v) for k, v in config.items()}
        if cfg.report_to == "tensorboard":
            accelerator.init_trackers(f"{project}/{run}", config=flat)
        else:
            init = {"wandb": {"name": run, "group": project}} if cfg.report_to == "wandb" \
                else {"mlflow": {"run_name": run}}
            accelerator.init_trackers(project, config=flat, init_kwargs=init)

    def step(self, step: int, loss: float, lr: float, grad_norm, tokens: int,
             seconds: float) -> None:
        """After optimizer step `step`: the window's mean loss, the learning rate, the gradient
        norm (before clipping) and tokens/s, every `logging_steps` steps."""
        if not self.on:
            return
        w = self._window
        w["loss"] += loss
        w["steps"] += 1
        w["tokens"] += tokens
        w["seconds"] += seconds
        w.update(step=step, lr=lr, norm=float(grad_norm) if grad_norm is not None else math.nan)
        if step % self.every == 0:
            self._flush()

    def _flush(self) -> None:
        w = self._window
        if w["steps"]:
            self.accelerator.log({"train/loss": w["loss"] / w["steps"],
                                  "train/learning_rate": w["lr"], "train/grad_norm": w["norm"],
                                  "train/tokens_per_second": w["tokens"] / max(w["seconds"],
                                                                               1e-9)},
                                 step=w["step"])
        self._window = {"loss": 0.0, "steps": 0, "tokens": 0, "seconds": 0.0}

    def evaluation(self, step: int, values: dict, metric: float) -> None:
        if self.on:
            self.accelerator.log({**{f"dev/{k}": float(v) for k, v in values.items()
                                     if isinstance(v, (int, float))},
                                  "dev/score": float(metric)}, step=step)

    def end(self) -> None:
        """The last, partial window (a short or stopped run still has its point), then close."""
        if self.on:
            self._flush()
            self.accelerator.end_training()
            self.on = False
