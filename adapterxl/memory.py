"""Fitting training into GPU memory: the micro-batch finder and the out-of-memory back-off.

The finder runs a forward and backward pass on the longest examples at decreasing micro-batch
sizes (each a divisor of the effective batch) and keeps the first that fits; gradients then
accumulate to the effective batch. If memory still runs out mid-run (an unusually long batch,
fragmentation), the training loop replays the optimizer step with every micro-batch split into
twice as many chunks: the data, their order and the effective batch stay the same, so the run
is the same training (and resumable), only executed in smaller pieces."""
from __future__ import annotations

import contextlib
import gc
import weakref
from typing import Callable, Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .errors import AdapterxlError

OutOfMemory = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def is_oom(error: BaseException) -> bool:
    return isinstance(error, OutOfMemory) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def candidates(start: int, batch_size: int) -> list[int]:
    """start, start/2, ... down to 1, keeping those that divide the effective batch."""
    out, n = [], start
    while n >= 1:
        if batch_size % n == 0 and n not in out:
            out.append(n)
        n //= 2
    if 1 not in out:
        out.append(1)
    return out


def find_micro_batch(try_batch: Callable[[int], None], start: int, batch_size: int,
                     log=lambda *_: None, what: str = "",
                     fallback: Callable[[], None] | None = None) -> int:
    """The largest candidate micro-batch for which `try_batch(n)` (a forward and backward
    pass on the n longest examples) runs without running out of memory. When not even one
    example fits, `fallback` (turning gradient checkpointing on) is called once and the search
    runs again: checkpointing costs a recomputed forward (about +50% FLOPs with a frozen
    backbone), so it is used only when memory needs it."""
    try:
        return _search(try_batch, start, batch_size, log, what)
    except AdapterxlError:
        if fallback is None:
            raise
    fallback()
    log("micro-batch finder: not even one example fits; gradient checkpointing is on")
    return _search(try_batch, start, batch_size, log, what + " with gradient checkpointing")


def _search(try_batch, start, batch_size, log, what) -> int:
    failed = []
    for n in candidates(start, batch_size):
        try:
            try_batch(n)
        except Exception as e:  # noqa: BLE001 - only out-of-memory errors are handled
            if not is_oom(e):
                raise
            failed.append(n)
            release()
            continue
        if failed:
            log(f"micro-batch finder: {n} fits ({', '.join(map(str, failed))} ran out of "
                f"memory); gradients accumulate to the batch of {batch_size}")
        return n
    raise AdapterxlError(f"out of memory even with a micro-batch of 1{what}: lower "
                         f"--max-length, use --quantize 4bit or 8bit, or use a larger GPU")


def split(batch: dict[str, torch.Tensor], chunks: int) -> list[dict[str, torch.Tensor]]:
    """A batch as up to `chunks` smaller batches (along the first dimension)."""
    rows = next(iter(batch.values())).shape[0]
    chunks = max(1, min(chunks, rows))
    if chunks == 1:
        return [batch]
    parts = {k: torch.tensor_split(v, chunks) for k, v in batch.items()}
    return [{k: parts[k][i] for k in batch} for i in range(chunks)]


# ---------------------------------------------------------------------------------- measuring
# What the planner (adapterxl.planning) predicts can be counted exactly on any device, tensor by
# tensor: these two are how benchmarks/plan_check.py and the tests check it on the CPU.
class LiveTensors(TorchDispatchMode):
    """Inside `with LiveTensors() as live:`, the bytes of every tensor storage an operation
    creates are added when it is made and taken off when it is freed; `live.peak` is the
    most that was alive at once (tensors made before the block are not counted)."""

    def __init__(self):
        super().__init__()
        self.alive: dict[int, int] = {}
        self.current = self.peak = 0

    def _freed(self, key: int) -> None:
        self.current -= self.alive.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # views and in-place results share an input's storage: nothing new was allocated
        given = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                 if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage.data_ptr() or id(storage)
                if key not in self.alive and key not in given and storage.nbytes():
                    self.alive[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._freed, key)
        return out


@contextlib.contextmanager
def saved_for_backward(exclude: Iterable[torch.Tensor] = ()):
    """Counts the distinct storages autograd saves for backward inside the block (yields a
    dict {storage: bytes}); storages of `exclude` (the parameters) are left out."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t):
        key = t.untyped_storage().data_ptr()
        if key not in skip:
            seen[key] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield seen
