"""Fitting training into GPU memory: the micro-batch finder and the out-of-memory back-off.

The finder runs a forward and backward pass on the longest examples at decreasing micro-batch
sizes (each a divisor of the effective batch) and keeps the first that fits; gradients then
accumulate to the effective batch. If memory still runs out mid-run (an unusually long batch,
fragmentation), the training loop replays the optimizer step with every micro-batch split into
twice as many chunks: the data, their order and the effective batch stay the same, so the run
is the same training (and resumable), only executed in smaller pieces."""
from __future__ import annotations

import gc
from typing import Callable

import torch

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
