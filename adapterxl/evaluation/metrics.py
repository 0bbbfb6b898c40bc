"""Metrics, defined as google-research/xtreme's evaluate.py defines them."""
from __future__ import annotations

import numpy as np

from ..errors import unknown


def accuracy(predictions, labels) -> float:
    """Fraction of exact matches (XTREME: XNLI, PAWS-X, Tatoeba). Empty input is an error."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or labels.size == 0:
        raise ValueError(f"accuracy needs equal, non-empty inputs, got {predictions.shape} "
                         f"and {labels.shape}")
    return float((predictions == labels).mean())


METRICS = {"accuracy": accuracy}


def score(metric: str, logits, labels) -> float:
    """The task metric from classifier logits."""
    if metric not in METRICS:
        raise unknown("metric", metric, METRICS)
    return METRICS[metric](np.asarray(logits).argmax(-1), labels)
