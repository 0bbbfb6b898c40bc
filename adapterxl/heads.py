"""Task heads: one small module per kind of output, independent of which library built the
modules. Heads stay in fp32 and are never quantized. Each head maps the encoder's last hidden
states to logits and knows its loss."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .errors import unknown

POOLING = ("first", "mean", "last")
IGNORE = -100  # label of positions that carry no loss (padding, non-first subwords)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """One vector per sequence: the first token (<s>, as XLM-R's head does), the mean over
    non-padding tokens, or the last non-padding token (a causal decoder's only token that has
    seen the whole sequence)."""
    if how == "first":
        return hidden[:, 0]
    if how == "last":
        # The position of the mask's last 1, not mask.sum() - 1: also right for left padding.
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.long() * positions).argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class ClassificationHead(nn.Module):
    """XLM-R's sentence classification head: dense + tanh over the pooled sequence. With one
    output it is a regression head (STS scores), trained with mean squared error."""

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

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.shape[-1] == 1:
            return F.mse_loss(logits.squeeze(-1), labels.float())
        return F.cross_entropy(logits, labels)


class ChoiceHead(ClassificationHead):
    """Multiple choice: one score per (context, choice) pair; the encoder sees the choices of
    an example as separate sequences and the model folds the scores back to [batch, choices]."""

    def __init__(self, hidden_size: int, num_labels: int = 1, pooling: str = "first",
                 dropout: float = 0.1):
        super().__init__(hidden_size, 1, pooling, dropout)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels)


class TokenHead(nn.Module):
    """A label per token (POS, NER, CCG supertags); only first subwords carry labels."""

    def __init__(self, hidden_size: int, num_labels: int, pooling: str | None = None,
                 dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(hidden.float()))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


class SpanHead(nn.Module):
    """Extractive QA: start and end logits per token. Labels are [batch, 2] token positions;
    position 0 (<s>) stands for "no answer in this window"."""

    def __init__(self, hidden_size: int, num_labels: int = 2, pooling: str | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.out_proj = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.out_proj(hidden.float())
        # Padding can never be a span boundary.
        return logits.masked_fill(~attention_mask.bool().unsqueeze(-1), -1e4)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (F.cross_entropy(logits[..., 0], labels[:, 0])
                + F.cross_entropy(logits[..., 1], labels[:, 1])) / 2


class MaskedLMHead(nn.Module):
    """Masked language modelling (language modules): XLM-R's LM head transform with the
    decoder tied to the backbone's frozen input embeddings, so the head adds only
    hidden_size² + vocab parameters, not a second vocabulary matrix."""

    def __init__(self, hidden_size: int, num_labels: int, pooling: str | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size)
        self.bias = nn.Parameter(torch.zeros(num_labels))
        self._embeddings = None  # bound by the model; not a submodule, so never saved

    def bind(self, embeddings: nn.Embedding) -> None:
        self._embeddings = [embeddings]

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(F.gelu(self.dense(hidden.float())))
        weight = self._embeddings[0].weight
        return x @ weight.float().t() + self.bias

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


HEADS = {"classification": ClassificationHead, "choice": ChoiceHead, "token": TokenHead,
         "span": SpanHead, "mlm": MaskedLMHead}


def head_config(head_type: str, hidden_size: int, num_labels: int,
                pooling: str = "first") -> dict:
    if head_type not in HEADS:
        raise unknown("head", head_type, HEADS)
    return {"type": head_type, "hidden_size": hidden_size, "num_labels": num_labels,
            "pooling": pooling}


def build_head(config: dict) -> nn.Module:
    cls = HEADS[config["type"]]
    return cls(config["hidden_size"], config["num_labels"], config.get("pooling", "first"))
