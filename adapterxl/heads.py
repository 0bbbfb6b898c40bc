"""Task heads: one small module per format, independent of which library built the modules.
Heads stay in fp32 and are never quantized."""
from __future__ import annotations

import torch
from torch import nn

from .errors import unknown


POOLING = ("first", "mean")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """One vector per sequence: the first token (<s>, as XLM-R's head does) or the mean over
    non-padding tokens."""
    if how == "first":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class ClassificationHead(nn.Module):
    """XLM-R's sentence classification head: dense + tanh over the pooled sequence."""

    def __init__(self, hidden_size: int, num_labels: int, pooling: str = "first",
                 dropout: float = 0.1):
        super().__init__()
        if pooling not in POOLING:
            raise unknown("pooling", pooling, POOLING)
        self.pooling = pooling
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(pool(hidden.float(), attention_mask, self.pooling))
        x = torch.tanh(self.dense(x))
        return self.out_proj(self.dropout(x))

    @staticmethod
    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels)


HEADS = {"classification": ClassificationHead}
# Which head serves each task format.
FORMAT_HEAD = {"classification": "classification", "pair_classification": "classification"}


def head_config(task_format: str, hidden_size: int, num_labels: int,
                pooling: str = "first") -> dict:
    if task_format not in FORMAT_HEAD:
        raise unknown("task format", task_format, FORMAT_HEAD)
    return {"type": FORMAT_HEAD[task_format], "hidden_size": hidden_size,
            "num_labels": num_labels, "pooling": pooling}


def build_head(config: dict) -> nn.Module:
    cls = HEADS[config["type"]]
    return cls(config["hidden_size"], config["num_labels"], config.get("pooling", "first"))
