"""Training checkpoints, so that an interrupted run resumes exactly where it stopped.

A checkpoint holds only what training changes (the trainable module and the head, optimizer
and scheduler state, RNG states, the data position, counters and the best-so-far snapshot),
never the frozen backbone: for a 13B backbone it stays a few MBs. It lives beside the module
directory, in `<output>.checkpoint/`, because the module directory itself is swapped in whole
at the end of training. `checkpoint.pt` is replaced atomically, so a kill while writing leaves
the previous checkpoint loadable; `checkpoint.json` is a summary for humans."""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import _io
from .errors import AdapterxlError
from .settings import names

FILE = "checkpoint.pt"
INFO = "checkpoint.json"
FORMAT_VERSION = 2  # 2: the data position is one micro-batch count (multi-task streams)
# Fields that do not change what training computes, so a resumed run may differ in them
# (declared on TrainConfig: `compared=False`). `output` is implied by where the checkpoint was
# found (and may be spelled differently).
NOT_COMPARED = names(compared=False)


def directory(output) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".checkpoint")


def config_of(cfg) -> dict:
    """The part of a TrainConfig a checkpoint must agree with, as plain JSON values (so a
    tuple and a list, or 3 and 3.0 from YAML, compare the way they were written)."""
    from dataclasses import asdict

    return json.loads(json.dumps({k: v for k, v in asdict(cfg).items()
                                  if k not in NOT_COMPARED}, sort_keys=True))


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def check_config(saved: dict, current: dict, where: Path) -> None:
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise AdapterxlError(
                f"cannot resume: --{key.replace('_', '-')} is {current.get(key)!r} but the "
                f"checkpoint in {where} was made with {saved.get(key)!r}; rerun with the same "
                f"settings, or delete {where} to start over")


# ---- the training state --------------------------------------------------------------------
@dataclass
class TrainState:
    """What the training loop changes, besides the weights and the optimizer: saved in every
    checkpoint and restored on --resume, so that the resumed run continues exactly."""
    step: int = 0                 # optimizer steps taken
    position: int = 0             # micro-batches of the run's stream consumed (all processes)
    tokens: int = 0               # tokens trained on (this process)
    seen: int = 0                 # examples trained on (this process)
    running: float | None = None  # the loss's moving average
    seconds: float = 0.0          # training time before this process started
    history: list = field(default_factory=list)  # dev evaluations: step, loss, values
    best: dict = field(default_factory=lambda: {"metric": -math.inf, "step": 0, "state": None})
    masking: Any = None           # the MLM masking generator's state after the last batch


@dataclass(frozen=True)
class RunKey:
    """What a checkpoint must have been made by to be resumed: the same settings, backbone
    weights, data (micro-batches per epoch and task) and number of processes."""
    config: dict
    fingerprint: str
    batches: dict
    processes: int

    def check(self, saved: dict, where: Path) -> None:
        """Refuse (one line) a checkpoint made by another backbone, data or process count;
        the settings are compared earlier (check_config), before anything loads."""
        if saved["fingerprint"] != self.fingerprint:
            raise AdapterxlError(f"cannot resume: the backbone's weights differ from those the "
                                 f"checkpoint in {where} was trained on; delete it to start over")
        if saved["batches"] != self.batches:
            raise AdapterxlError(f"cannot resume: the training data changed ({self.batches} "
                                 f"micro-batches per epoch, the checkpoint in {where} saw "
                                 f"{saved['batches']}); delete it to start over")
        if saved.get("processes", 1) != self.processes:
            raise AdapterxlError(f"cannot resume: the checkpoint in {where} was made by "
                                 f"{saved.get('processes', 1)} process(es), this run has "
                                 f"{self.processes}; resume with as many, or delete it to "
                                 f"start over")


def save_state(where: Path, key: RunKey, state: TrainState, weights: dict, info: dict) -> None:
    """A checkpoint of the run at `state`: `weights` holds the state dicts of "module",
    "head", "optimizer" and "scheduler"; the RNG states are taken now. The file's layout is
    FORMAT_VERSION 2's: one flat dict."""
    record = {f.name: getattr(state, f.name) for f in fields(TrainState)}
    record["history"] = _plain(state.history)
    record["best"] = {**state.best, "values": _plain(state.best.get("values", {}))}
    save(where, {"format_version": FORMAT_VERSION, "config": key.config,
                 "fingerprint": key.fingerprint, "batches": key.batches,
                 "processes": key.processes, **record, **weights, "rng": rng_state()}, info)


def restored_state(saved: dict, key: RunKey, where: Path) -> TrainState:
    """The TrainState of a checkpoint read by `load`, once `key` agrees with it; the weights
    are saved[name] for the names `save_state` took, the RNG states saved["rng"]."""
    key.check(saved, where)
    return TrainState(**{f.name: saved[f.name] for f in fields(TrainState)})


def _plain(value):
    """Metric values as plain floats (numpy scalars do not load with weights_only=True)."""
    return json.loads(json.dumps(value, default=float))


# ---- RNG states --------------------------------------------------------------------------
def rng_state() -> dict:
    # numpy's key array becomes a list so that the file loads with weights_only=True.
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (name, keys.tolist(), pos, has_gauss, gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- files -------------------------------------------------------------------------------
def save(where: Path, state: dict, info: dict) -> None:
    """Write `state` as where/checkpoint.pt: a temporary file in the same directory, synced,
    then renamed over the old one, so a reader (or a crash) only ever sees a whole file."""
    where = Path(where)
    tmp, created = None, not where.exists()
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{FILE}.", dir=where)
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, where / FILE)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if created:
            shutil.rmtree(where, ignore_errors=True)  # nothing of this run's was in it
        # A full disk: one line, and the last checkpoint survives. torch.save reports a
        # failed write of its zip container as a RuntimeError ("unexpected pos").
        kept = "the previous checkpoint is unchanged" if exists(where) else "none was written"
        error = _io.as_write_error(e, f"write a checkpoint to {where}", where, kept)
        if error is None and (isinstance(e, OSError) or (isinstance(e, RuntimeError)
                                                          and "writ" in str(e))):
            why = getattr(e, "strerror", None) or str(e).strip().splitlines()[0]
            error = _io.WriteError(f"cannot write a checkpoint to {where}: {why}; {kept}",
                                   getattr(e, "errno", None))
        if error is not None:
            raise error from e
        raise
    _sync_dir(where)  # the rename itself must survive a power cut
    _io.write_json(where / INFO, {**info, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                  "file": FILE})


def _sync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # directories cannot be opened on some systems (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def exists(where: Path) -> bool:
    return (Path(where) / FILE).is_file()


def load(where: Path) -> dict:
    path = Path(where) / FILE
    if not path.is_file():
        raise AdapterxlError(f"cannot resume: no checkpoint at {path}; start without --resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AdapterxlError(f"cannot resume: checkpoint {path} is unreadable ({first}); "
                             f"delete {where} to start over") from e
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise AdapterxlError(f"cannot resume: {path} is not a checkpoint this version of "
                             f"adapterxl writes; delete {where} to start over")
    return state


def remove(where: Path) -> None:
    shutil.rmtree(where, ignore_errors=True)
