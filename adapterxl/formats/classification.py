"""Sentence and sentence-pair classification (XNLI, PAWS-X, MNLI, QQP) and regression
(STS-B, SICK-R: one output, 0-5 scores)."""
from __future__ import annotations

import numpy as np

from ..scoring import metrics
from .base import Format


class Classification(Format):
    head = "classification"

    def encode(self, rows, tokenizer, max_length, train, task):
        fields = list(zip(*(r["text"] for r in rows)))
        enc = tokenizer(*fields, truncation=True, max_length=max_length)
        features = []
        for i, row in enumerate(rows):
            feature = {k: enc[k][i] for k in enc.keys()}
            if row["label"] is not None:
                feature["labels"] = row["label"]
            features.append(feature)
        return features

    def decode(self, outputs, features, rows, labels, task):
        return [int(np.argmax(o)) for o in outputs]

    def score(self, metric, predictions, rows, labels, lang):
        gold = [r["label"] for r in rows]
        return {"accuracy": metrics.accuracy(predictions, gold)}

    def write(self, predictions, rows, labels, path):
        super().write([labels[p] for p in predictions], rows, labels, path)


class Regression(Classification):
    def num_outputs(self, labels) -> int:
        return 1

    def encode(self, rows, tokenizer, max_length, train, task):
        features = super().encode(rows, tokenizer, max_length, train, task)
        for f in features:
            if "labels" in f:
                f["labels"] = float(f["labels"])
        return features

    def decode(self, outputs, features, rows, labels, task):
        return [float(o[0]) for o in outputs]

    def score(self, metric, predictions, rows, labels, lang):
        return metrics.pearson_spearman(predictions, [r["label"] for r in rows])

    def write(self, predictions, rows, labels, path):
        Format.write(self, [f"{p:.4f}" for p in predictions], rows, labels, path)
