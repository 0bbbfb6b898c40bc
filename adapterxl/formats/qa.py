"""Extractive QA (SQuAD v1.1/v2.0, XQuAD, MLQA, TyDiQA-GoldP). Long contexts are cut into
overlapping windows (`doc_stride` tokens of overlap, Hugging Face's meaning); the answer span is
the best start/end pair over all windows among the `n_best` starts and ends, at most
`max_answer_length` tokens long. With SQuAD v2 semantics the answer is "" when the no-answer
score (start and end on <s>) beats the best span."""
from __future__ import annotations

import json

import numpy as np

from ..scoring import metrics
from .base import Format

N_BEST = 20
MAX_ANSWER_TOKENS = 30


class ExtractiveQA(Format):
    head = "span"
    extension = "json"

    def num_outputs(self, labels) -> int:
        return 2

    def labeled(self, row):
        return row.get("answers") is not None

    def encode(self, rows, tokenizer, max_length, train, task):
        stride = task.hyperparameters.get("doc_stride", 128) if task else 128
        stride = min(stride, max_length // 2)  # the question must leave room for context
        enc = tokenizer([r["question"] for r in rows], [r["context"] for r in rows],
                        truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
        features = []
        for i, example in enumerate(enc["overflow_to_sample_mapping"]):
            row = rows[example]
            sequence = enc.sequence_ids(i)
            offsets = [o if s == 1 else None for o, s in zip(enc["offset_mapping"][i], sequence)]
            feature = {"input_ids": enc["input_ids"][i], "_example": example,
                       "_offsets": offsets}
            if row.get("answers") is not None:
                feature["labels"] = self._span(row, offsets)
            features.append(feature)
        return features

    @staticmethod
    def _span(row, offsets) -> tuple[int, int]:
        """Token positions of the first gold answer in this window; (0, 0) (<s>) when the
        question is unanswerable or the answer is not entirely inside the window."""
        if not row["answers"]:
            return (0, 0)
        answer = row["answers"][0]
        start_char, end_char = answer["start"], answer["start"] + len(answer["text"])
        inside = [i for i, o in enumerate(offsets) if o is not None]
        if not inside or offsets[inside[0]][0] > start_char or offsets[inside[-1]][1] < end_char:
            return (0, 0)
        start = next(i for i in inside if offsets[i][1] > start_char)
        end = next(i for i in reversed(inside) if offsets[i][0] < end_char)
        return (start, max(start, end))

    def decode(self, outputs, features, rows, labels, task):
        with_null = task is not None and task.metric == "squad_v2"
        best = [(-np.inf, "") for _ in rows]
        null = [np.inf for _ in rows]
        for out, feature in zip(outputs, features):
            example, offsets = feature["_example"], feature["_offsets"]
            context = rows[example]["context"]
            start_logits, end_logits = out[:, 0], out[:, 1]
            null[example] = min(null[example], float(start_logits[0] + end_logits[0]))
            starts = np.argsort(-start_logits)[:N_BEST]
            ends = np.argsort(-end_logits)[:N_BEST]
            for s in starts:
                if s >= len(offsets) or offsets[s] is None:
                    continue
                for e in ends:
                    if e >= len(offsets) or offsets[e] is None or e < s \
                            or e - s + 1 > MAX_ANSWER_TOKENS:
                        continue
                    value = float(start_logits[s] + end_logits[e])
                    if value > best[example][0]:
                        text = context[offsets[s][0]:offsets[e][1]].strip()
                        best[example] = (value, text)
        return ["" if with_null and null[i] > best[i][0] else best[i][1]
                for i in range(len(rows))]

    def score(self, metric, predictions, rows, labels, lang):
        preds = {r["id"]: p for r, p in zip(rows, predictions)}
        gold = {r["id"]: [a["text"] for a in r["answers"]] for r in rows}
        if metric == "mlqa":
            return metrics.mlqa(preds, gold, lang)
        return metrics.squad(preds, gold, version=2 if metric == "squad_v2" else 1)

    def write(self, predictions, rows, labels, path):
        from .. import _io

        _io.write_text(path, json.dumps({r["id"]: p for r, p in zip(rows, predictions)},
                                        ensure_ascii=False, indent=1) + "\n")
