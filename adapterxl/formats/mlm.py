"""Masked language modelling on raw text (language modules, MAD-X style). BERT's recipe: 15%
of the non-special tokens are selected; 80% of those become <mask>, 10% a random token, 10%
stay. Training masks each batch afresh; evaluation masks once with a fixed seed so that dev
scores are comparable across steps. The dev metric is masked-token accuracy."""
from __future__ import annotations

import numpy as np
import torch

from ..data.preprocess import Collator
from ..heads import IGNORE
from .base import Format

MASK_PROBABILITY = 0.15


def mask_tokens(ids: torch.Tensor, special: torch.Tensor, tokenizer,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    probability = torch.full(ids.shape, MASK_PROBABILITY)
    probability[special] = 0.0
    chosen = torch.bernoulli(probability, generator=generator).bool()
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    ids = ids.clone()
    replace = chosen & torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool()
    ids[replace] = tokenizer.mask_token_id
    randomize = chosen & ~replace & torch.bernoulli(torch.full(ids.shape, 0.5),
                                                    generator=generator).bool()
    ids[randomize] = torch.randint(len(tokenizer), ids.shape, generator=generator)[randomize]
    return ids, labels


class MaskingCollator(Collator):
    def __init__(self, tokenizer, pad_to_multiple_of, seed):
        super().__init__(tokenizer.pad_token_id, pad_to_multiple_of)
        self.tokenizer = tokenizer
        self.generator = torch.Generator().manual_seed(seed)
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)))

    def __call__(self, features):
        batch = super().__call__([{"input_ids": f["input_ids"]} for f in features])
        special = torch.isin(batch["input_ids"], self.special)
        batch["input_ids"], batch["labels"] = mask_tokens(batch["input_ids"], special,
                                                          self.tokenizer, self.generator)
        return batch


class MaskedLM(Format):
    head = "mlm"
    language = True

    def labels(self, task, rows, backbone):
        """The vocabulary: a masked token is predicted among all of them."""
        return [str(i) for i in range(backbone.model.get_input_embeddings().num_embeddings)]

    def num_outputs(self, labels) -> int:
        return len(labels)

    def labeled(self, row):
        return True

    def encode(self, rows, tokenizer, max_length, train, task):
        enc = tokenizer([r["text"] for r in rows], truncation=True, max_length=max_length)
        features = [{"input_ids": ids} for ids in enc["input_ids"]]
        if train:
            return features
        generator = torch.Generator().manual_seed(0)
        special = set(tokenizer.all_special_ids)
        for f in features:
            ids = torch.tensor(f["input_ids"])
            is_special = torch.tensor([i in special for i in f["input_ids"]])
            masked, labels = mask_tokens(ids, is_special, tokenizer, generator)
            f["input_ids"], f["labels"] = masked.tolist(), labels.tolist()
        return features

    def collate(self, tokenizer, device, train, seed):
        if not train:
            return None
        multiple = 8 if device is not None and device.type == "cuda" else None
        return MaskingCollator(tokenizer, multiple, seed)

    def decode(self, outputs, features, rows, labels, task):
        counts = []
        for out, f in zip(outputs, features):
            gold = np.asarray(f["labels"])
            where = gold != IGNORE
            counts.append((int((out.argmax(-1)[where] == gold[where]).sum()), int(where.sum())))
        return counts

    def score(self, metric, predictions, rows, labels, lang):
        correct = sum(c for c, _ in predictions)
        total = sum(n for _, n in predictions)
        return {"accuracy": correct / max(total, 1)}
