"""Multiple choice (HellaSwag, Cosmos QA, CommonsenseQA, Social IQa, COPA, XCOPA): each choice
is encoded with the context as a pair and scored; the highest score wins. The head scores one
pair at a time, so a module trained with 4 choices also answers 2-choice tasks."""
from __future__ import annotations

import numpy as np

from ..scoring import metrics
from .base import Format


class MultipleChoice(Format):
    head = "choice"

    def num_outputs(self, labels) -> int:
        return 1

    def encode(self, rows, tokenizer, max_length, train, task):
        contexts = [r["context"] for r in rows for _ in r["choices"]]
        choices = [c for r in rows for c in r["choices"]]
        enc = tokenizer(contexts, choices, truncation=True, max_length=max_length)
        features, at = [], 0
        for row in rows:
            n = len(row["choices"])
            feature = {"input_ids": enc["input_ids"][at:at + n]}
            if "token_type_ids" in enc:
                feature["token_type_ids"] = enc["token_type_ids"][at:at + n]
            if row["label"] is not None:
                feature["labels"] = row["label"]
            features.append(feature)
            at += n
        return features

    def decode(self, outputs, features, rows, labels, task):
        return [int(np.argmax(o)) for o in outputs]

    def score(self, metric, predictions, rows, labels, lang):
        return {"accuracy": metrics.accuracy(predictions, [r["label"] for r in rows])}
