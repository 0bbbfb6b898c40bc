"""The stream of training micro-batches, for one task or a mixture of tasks.

Micro-batch g of the run (counted over all processes) comes from one task. With one task,
batch g is the task's batch g % n of epoch g // n, and data-parallel processes take every
P-th one (LengthGroupedBatches.shard). With several tasks a seeded schedule picks the task of
every g: task t with probability p_t ∝ n_t^(1/T) (n_t: its training examples; T = 1
proportional, T = ∞ uniform), and each task runs through its own epochs. The schedule is a pure
function of (seed, g), so a resumed run continues exactly from a position g."""
from __future__ import annotations

import math

import numpy as np

from ..errors import AdapterxlError

SAMPLING = ("proportional", "temperature", "uniform")
_BLOCK = 4096


def task_probabilities(sizes: dict[str, int], sampling: str,
                       temperature: float | None = None) -> dict[str, float]:
    if sampling not in SAMPLING:
        raise AdapterxlError(f"unknown sampling {sampling!r}; known: {', '.join(SAMPLING)}")
    if temperature is not None and sampling != "temperature":
        raise AdapterxlError("--sampling-temperature needs --sampling temperature")
    t = {"proportional": 1.0, "uniform": math.inf}.get(sampling, temperature or 2.0)
    if t <= 0:
        raise AdapterxlError(f"--sampling-temperature must be positive, got {t}")
    weights = {k: 1.0 if math.isinf(t) else n ** (1 / t) for k, n in sizes.items()}
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


class TaskStream:
    def __init__(self, loaders: dict, probabilities: dict[str, float] | None = None,
                 seed: int = 0, processes: int = 1, rank: int = 0):
        self.loaders, self.names = loaders, list(loaders)
        if len(self.names) > 1 and processes > 1:
            raise AdapterxlError("multi-task training runs in one process; launch it without "
                                 "accelerate/torchrun, or train one task per run")
        self.processes, self.rank, self.seed = processes, rank, seed
        self.p = np.array([(probabilities or {}).get(n, 1 / len(self.names))
                           for n in self.names])
        self._blocks: dict[int, np.ndarray] = {}
        for dl in loaders.values():
            dl.batch_sampler.shard(processes, rank)

    def task_at(self, g: int) -> str:
        if len(self.names) == 1:
            return self.names[0]
        block, i = divmod(g, _BLOCK)
        if block not in self._blocks:
            rng = np.random.default_rng([self.seed, block])
            self._blocks = {block: rng.choice(len(self.names), size=_BLOCK, p=self.p)}
        return self.names[self._blocks[block][i]]

    def counts(self, position: int) -> dict[str, int]:
        """How many batches of each task micro-batches 0..position-1 took."""
        out = dict.fromkeys(self.names, 0)
        if len(self.names) == 1:
            out[self.names[0]] = position
            return out
        for g in range(position):
            out[self.task_at(g)] += 1
        return out

    def stream(self, position: int = 0):
        """(g, task, batch) for this process, from micro-batch `position` on, endlessly."""
        if len(self.names) == 1:
            name = self.names[0]
            dl = self.loaders[name]
            n = len(dl)
            epoch, skip = divmod(position, n)
            while True:
                dl.batch_sampler.set_epoch(epoch)
                dl.batch_sampler.skip = skip
                for j, batch in zip(dl.batch_sampler.positions(), dl):
                    yield epoch * n + j, name, batch
                skip, epoch = 0, epoch + 1
        done = self.counts(position)
        iterators = {}
        g = position
        while True:
            name = self.task_at(g)
            batch = next(iterators[name], None) if name in iterators else None
            if batch is None:
                dl = self.loaders[name]
                epoch, skip = divmod(done[name], len(dl))
                dl.batch_sampler.set_epoch(epoch)
                dl.batch_sampler.skip = skip
                iterators[name] = iter(dl)
                batch = next(iterators[name])
            done[name] += 1
            yield g, name, batch
            g += 1
