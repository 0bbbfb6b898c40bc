"""Batching: dynamic padding with length-grouped batches, so a batch is padded to its own
longest example and examples of similar length share a batch. Tokenization lives with each
format (adapterxl/formats/)."""
from __future__ import annotations

import random

import torch
from torch.utils.data import DataLoader, Sampler

from ..heads import IGNORE

ROW, ROWS = "_row", "_rows"  # a feature's index in its list; the batch's indices


class LengthGroupedBatches(Sampler):
    """Shuffled batches of similar-length examples: indices are shuffled, cut into mega-
    batches of `group` batches, sorted by length inside each, then batches are shuffled.
    Deterministic for a given seed and epoch.

    Data parallelism (`shard(num_replicas, rank)`): every process builds the same batches and
    takes every `num_replicas`-th one of the stream of batches that runs on across epochs
    (epoch e's batch j is number e * len(self) + j), so the processes' k-th batches together
    are batches k * num_replicas ... k * num_replicas + num_replicas - 1 of that stream: one
    optimizer step sees the same examples, in the same batches, as one process accumulating
    over them. `len()` stays the number of batches in an epoch, over all processes."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0, group: int = 50,
                 shuffle: bool = True):
        self.lengths, self.batch_size, self.seed, self.group = lengths, batch_size, seed, group
        self.shuffle = shuffle
        self.epoch = 0
        self.num_replicas, self.rank = 1, 0
        # Batches to leave out of the next iteration only: a resumed run continues mid-epoch
        # without collating (and so without drawing random masks for) batches it already saw.
        # Counted over all processes (an index into the epoch's batches).
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self, num_replicas: int, rank: int) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in 0..{num_replicas - 1}")
        self.num_replicas, self.rank = num_replicas, rank

    def positions(self) -> list[int]:
        """Indices into the epoch's batches that the next iteration yields, in order."""
        offset = self.epoch * len(self)
        return [j for j in range(self.skip, len(self))
                if (offset + j) % self.num_replicas == self.rank]

    def _batches(self) -> list[list[int]]:
        idx = list(range(len(self.lengths)))
        rng = random.Random(self.seed + self.epoch)
        if self.shuffle:
            rng.shuffle(idx)
        mega = self.batch_size * self.group
        batches = []
        for start in range(0, len(idx), mega):
            chunk = sorted(idx[start:start + mega], key=lambda i: -self.lengths[i])
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self):
        batches, mine, self.skip = self._batches(), self.positions(), 0
        return iter([batches[j] for j in mine])

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def length(feature: dict) -> int:
    ids = feature["input_ids"]
    return sum(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)


class Collator:
    """Pads a list of features into tensors. `input_ids` is one sequence per feature, or one
    per choice (multiple choice: -> [batch, choices, length]); list labels (tags, masked
    tokens) are padded with IGNORE; keys starting with "_" are bookkeeping and dropped, but
    `_row` (the feature's index) becomes the batch's `_rows`."""

    def __init__(self, pad_id: int, pad_to_multiple_of: int | None = None):
        self.pad_id, self.multiple = pad_id, pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        multi = bool(features[0]["input_ids"]) and isinstance(features[0]["input_ids"][0], list)
        groups = [f["input_ids"] if multi else [f["input_ids"]] for f in features]
        if len({len(g) for g in groups}) > 1:
            raise ValueError("every example in a multiple-choice batch needs the same number "
                             "of choices")
        seqs = [s for g in groups for s in g]
        width = max(map(len, seqs))
        if self.multiple:
            width = -(-width // self.multiple) * self.multiple
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, :len(s)] = 1
        out = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in features[0]:
            types = torch.zeros_like(ids)
            rows = [t for f in features for t in (f["token_type_ids"] if multi
                                                   else [f["token_type_ids"]])]
            for i, t in enumerate(rows):
                types[i, :len(t)] = torch.tensor(t, dtype=torch.long)
            out["token_type_ids"] = types
        if multi:
            out = {k: v.view(len(features), len(groups[0]), width) for k, v in out.items()}
        if ROW in features[0]:  # which training features these are (layer_cache)
            out[ROWS] = torch.tensor([f[ROW] for f in features], dtype=torch.long)
        labels = [f.get("labels") for f in features]
        if labels[0] is not None:
            if isinstance(labels[0], list):  # one label per token (QA spans are tuples)
                padded = torch.full((len(labels), width), IGNORE, dtype=torch.long)
                for i, lab in enumerate(labels):
                    padded[i, :len(lab)] = torch.tensor(lab, dtype=torch.long)
                out["labels"] = padded
            elif isinstance(labels[0], float):
                out["labels"] = torch.tensor(labels, dtype=torch.float)
            else:
                out["labels"] = torch.tensor(labels, dtype=torch.long)
        return out


def loader(features: list[dict], tokenizer, batch_size: int, shuffle: bool, seed: int = 0,
           device: torch.device | None = None, collate=None) -> DataLoader:
    """Training loaders group by length; evaluation loaders sort by length (the caller
    restores the order from the batch sampler)."""
    lengths = [length(f) for f in features]
    sampler = LengthGroupedBatches(lengths, batch_size, seed=seed, shuffle=shuffle,
                                   group=50 if shuffle else len(features))
    multiple = 8 if device is not None and device.type == "cuda" else None
    collate = collate or Collator(tokenizer.pad_token_id, multiple)
    return DataLoader(features, batch_sampler=sampler, collate_fn=collate)
