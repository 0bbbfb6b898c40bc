"""Tokenization and batching: dynamic padding with length-grouped batches, so a batch is
padded to its own longest example and examples of similar length share a batch."""
from __future__ import annotations

import random

import torch
from torch.utils.data import DataLoader, Sampler


def encode(rows: list[dict], tokenizer, max_length: int) -> list[dict]:
    fields = list(zip(*(r["text"] for r in rows)))
    enc = tokenizer(*fields, truncation=True, max_length=max_length)
    features = []
    for i, row in enumerate(rows):
        feature = {k: enc[k][i] for k in enc.keys()}
        if row["label"] is not None:
            feature["labels"] = row["label"]
        features.append(feature)
    return features


class LengthGroupedBatches(Sampler):
    """Shuffled batches of similar-length examples: indices are shuffled, cut into mega-
    batches of `group` batches, sorted by length inside each, then batches are shuffled.
    Deterministic for a given seed and epoch."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0, group: int = 50,
                 shuffle: bool = True):
        self.lengths, self.batch_size, self.seed, self.group = lengths, batch_size, seed, group
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

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
        return iter(self._batches())

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def collator(tokenizer, pad_to_multiple_of: int | None = None):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of,
                                   return_tensors="pt")


def loader(features: list[dict], tokenizer, batch_size: int, shuffle: bool, seed: int = 0,
           device: torch.device | None = None) -> DataLoader:
    """Training loaders group by length; evaluation loaders sort by length (order restored by
    the caller through the `index` kept in each batch)."""
    lengths = [len(f["input_ids"]) for f in features]
    sampler = LengthGroupedBatches(lengths, batch_size, seed=seed, shuffle=shuffle,
                                   group=50 if shuffle else len(features))
    multiple = 8 if device is not None and device.type == "cuda" else None
    return DataLoader(features, batch_sampler=sampler, collate_fn=collator(tokenizer, multiple))
