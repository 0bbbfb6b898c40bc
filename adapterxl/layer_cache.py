"""The frozen lower layers, computed once per training sequence (`--cache-frozen-layers`).

With modules only in the upper layers (`--module-layers`), the embeddings and the layers below
the lowest module are frozen and hold no module: with their dropout off they are a pure
function of the input. The first time a training sequence is seen, its hidden states at the
lowest module's layer input (real tokens only) are kept; a batch whose sequences are all kept
starts there: the embeddings' output is replaced by the kept states and the layers below are
skipped. From the second epoch on, a step costs the upper layers' forward and backward only;
dev evaluations after the first start there too. Hooks on the model do it (`session`), so the
training loop and `predict` only pass each batch's feature indices (`_rows`).

Exact up to float rounding: a sequence's kept states come from the batch it was first seen
in, and a different batch pads it differently (masked positions change no real token's value,
but matrix shapes change the order of sums). A resumed run rebuilds the cache as it goes.
Architectures whose layers are uniform and take no state from the layer before (BERT,
XLM-R, XLM-R XL) are supported; mT5 (relative position bias built in block 0) and DeBERTa-v2
(a convolution after layer 0) are refused."""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import logs
from .architectures import get_arch
from .data.preprocess import ROWS
from .errors import AdapterxlError

SUPPORTED = ("bert", "xlm-roberta", "xlm-roberta-xl")
# Above this many bytes the kept states live in a file beside the checkpoint, not in memory.
IN_MEMORY = 4 << 30


def lowest_module_layer(encoder: nn.Module, model_type: str, slot_prefix: str) -> int:
    """The lowest encoder layer holding a module parameter; 0 also when a module sits outside
    the layers (an invertible adapter on the embeddings)."""
    number = re.compile(get_arch(model_type).layer.replace(r"\d+", r"(\d+)") + r"\.")
    lowest = None
    for name, _ in encoder.named_parameters():
        if not any(part.startswith(slot_prefix) for part in name.split(".")):
            continue
        found = number.search(name)
        layer = int(found.group(1)) if found else 0
        lowest = layer if lowest is None else min(lowest, layer)
    return 0 if lowest is None else lowest


def _sequences(feature: dict) -> list[int]:
    """The token count of each sequence a feature becomes (one per choice in multiple choice)."""
    ids = feature["input_ids"]
    return [len(s) for s in ids] if ids and isinstance(ids[0], list) else [len(ids)]


class _Store:
    """Every training sequence's kept states, in one flat [tokens, hidden] buffer (a file
    beside the checkpoint when large), addressed by sequence."""

    def __init__(self, features: list[dict], hidden: int, where: Path, name: str):
        counts = [_sequences(f) for f in features]
        self.choices = len(counts[0]) if counts else 1
        lengths = [n for c in counts for n in c]
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.kept = np.zeros(len(lengths), dtype=bool)
        self.hidden, self.where, self.name = hidden, where, name
        self.buffer: torch.Tensor | None = None
        self.file: Path | None = None

    def _allocate(self, dtype: torch.dtype) -> None:
        tokens = int(self.offsets[-1])
        size = tokens * self.hidden * torch.empty((), dtype=dtype).element_size()
        if size <= IN_MEMORY:
            self.buffer = torch.empty(tokens, self.hidden, dtype=dtype)
            return
        self.where.mkdir(parents=True, exist_ok=True)
        self.file = self.where / f"layer-cache-{self.name}.bin"
        logs.logger.info(f"keeping the frozen layers' outputs of {self.name} in {self.file} "
                         f"({size / 2**30:.1f} GiB)")
        with open(self.file, "wb") as f:
            f.truncate(size)
        self.buffer = torch.from_file(str(self.file), shared=True, size=tokens * self.hidden,
                                      dtype=dtype).view(tokens, self.hidden)

    def sequences(self, rows: torch.Tensor) -> np.ndarray:
        rows = rows.cpu().numpy().astype(np.int64)
        return (rows[:, None] * self.choices + np.arange(self.choices)).reshape(-1)

    def put(self, seqs: np.ndarray, hidden: torch.Tensor) -> None:
        if self.buffer is None:
            self._allocate(hidden.dtype)
        hidden = hidden.detach().to("cpu", self.buffer.dtype)
        for i, s in enumerate(seqs):
            if not self.kept[s]:
                start, n = int(self.offsets[s]), int(self.lengths[s])
                self.buffer[start:start + n] = hidden[i, :n]
                self.kept[s] = True

    def get(self, seqs: np.ndarray, width: int, device) -> torch.Tensor:
        out = torch.zeros(len(seqs), width, self.hidden, dtype=self.buffer.dtype)
        for i, s in enumerate(seqs):
            start, n = int(self.offsets[s]), int(self.lengths[s])
            out[i, :n] = self.buffer[start:start + n]
        return out.to(device, non_blocking=True)

    def close(self) -> None:
        self.buffer = None
        if self.file is not None:
            self.file.unlink(missing_ok=True)


class LayerCache:
    """Keeps and replays the frozen lower layers' outputs of one training run's sequences.
    `tasks` / `dev`: task name -> its training / dev features, which the batches' `_rows`
    index. A batch is a task's training batch in train mode and its dev batch in eval mode
    (the model's active head names the task)."""

    def __init__(self, model: nn.Module, model_type: str, hidden: int, slot_prefix: str,
                 tasks: dict[str, list[dict]], where: Path,
                 dev: dict[str, list[dict]] | None = None):
        if model_type not in SUPPORTED:
            raise AdapterxlError(f"--cache-frozen-layers is not supported on {model_type} "
                                 f"backbones (supported: {', '.join(SUPPORTED)}): their layers "
                                 f"take more than the hidden states from the layer below")
        encoder = model.encoder
        self.start = lowest_module_layer(encoder, model_type, slot_prefix)
        if self.start == 0:
            raise AdapterxlError("--cache-frozen-layers needs frozen layers below the lowest "
                                 "module: give --module-layers (e.g. top:6), and no modules "
                                 "below it in every layer or on the embeddings")
        path = get_arch(model_type).layer.split(r"\.\d+")[0].replace("\\", "")
        owner, _, self._attr = path.rpartition(".")
        self._owner = encoder.get_submodule(owner) if owner else encoder
        self.layers: nn.ModuleList = getattr(self._owner, self._attr)
        self.embeddings: nn.Module = encoder.embeddings
        self.model = model
        self.stores = {(name, True): _Store(f, hidden, where, name) for name, f in tasks.items()}
        self.stores.update({(name, False): _Store(f, hidden, where, f"{name}-dev")
                            for name, f in (dev or {}).items()})
        self.counts = {"replayed_batches": 0, "computed_batches": 0,
                       "dev_replayed_batches": 0, "dev_computed_batches": 0}
        self._open: list = []

    @contextmanager
    def frozen_dropout_off(self):
        """While active, the embeddings and the layers below the lowest module stay in eval
        mode (no dropout) whatever `train()` is called on: their outputs are then a function
        of the input alone, so the kept ones are what they would compute again."""
        frozen = [self.embeddings, *self.layers[:self.start]]
        for m in frozen:
            m.train = (lambda mode=True, m=m: nn.Module.train(m, False))
            nn.Module.train(m, False)
        try:
            yield
        finally:
            for m in frozen:
                del m.train

    @contextmanager
    def batch(self, key: tuple[str, bool], rows: torch.Tensor, attention_mask: torch.Tensor):
        """Around one forward: replays the kept states when every sequence of the batch has
        them, else computes as usual and keeps them."""
        store = self.stores[key]
        prefix = "" if key[1] else "dev_"
        seqs = store.sequences(rows)
        if store.kept[seqs].all():
            self.counts[prefix + "replayed_batches"] += 1
            with self._replay(store.get(seqs, attention_mask.shape[-1],
                                        attention_mask.device)):
                yield
        else:
            self.counts[prefix + "computed_batches"] += 1
            with self._keep(store, seqs):
                yield

    def _before(self, module, args, kwargs):
        rows = kwargs.pop(ROWS, None)
        key = (module.active_head, module.training)
        if rows is not None and key in self.stores:
            context = self.batch(key, rows, kwargs["attention_mask"])
            context.__enter__()
            self._open.append(context)
        return args, kwargs

    def _after(self, module, args, kwargs, output):
        while self._open:  # also when the forward raised (always_call): layers restored
            self._open.pop().__exit__(None, None, None)

    @contextmanager
    def _replay(self, hidden: torch.Tensor):
        def embeddings_out(module, args, output):
            return hidden.to(output.dtype)

        hook = self.embeddings.register_forward_hook(embeddings_out)
        setattr(self._owner, self._attr, nn.ModuleList(self.layers[self.start:]))
        try:
            yield
        finally:
            hook.remove()
            setattr(self._owner, self._attr, self.layers)

    @contextmanager
    def _keep(self, store: _Store, seqs: np.ndarray):
        def keep(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            store.put(seqs, hidden)

        hook = self.layers[self.start].register_forward_pre_hook(keep, with_kwargs=True)
        try:
            yield
        finally:
            hook.remove()

    @contextmanager
    def session(self):
        """Around the training loop: the frozen layers' dropout off; the kept states freed
        (their files removed) however the loop ends."""
        hooks = [self.model.register_forward_pre_hook(self._before, with_kwargs=True),
                 self.model.register_forward_hook(self._after, with_kwargs=True,
                                                  always_call=True)]
        try:
            with self.frozen_dropout_off():
                yield self
        finally:
            for hook in hooks:
                hook.remove()
            for store in self.stores.values():
                store.close()

    def stats(self) -> dict:
        """How many training and dev batches were replayed from the kept states and how many
        computed."""
        return {"from_layer": self.start, **self.counts}
