"""Token tagging (UD-POS, PAN-X / WikiANN NER with IOB2, CCG supertags): each word is
labelled on its first subword; a sentence longer than the window is cut into consecutive
windows (no word is dropped), and a word split across two windows is labelled in the first."""
from __future__ import annotations

import numpy as np

from ..scoring import metrics
from ..heads import IGNORE
from .base import Format


class Tagging(Format):
    head = "token"

    def labeled(self, row):
        return row.get("tags") is not None

    def labels(self, task, rows, backbone):
        """The catalogue's tag set, or (CCG supertags) every tag seen in the data."""
        if task.labels is not None:
            return list(task.labels)
        return sorted({t for r in rows if r.get("tags") for t in r["tags"]})

    def indexed(self, task, rows, labels):
        """Tag strings (a tag set collected from the data) -> indices into `labels`."""
        if task.labels is not None:
            return rows
        lookup = {t: i for i, t in enumerate(labels)}
        return [{**r, "tags": [lookup[t] if isinstance(t, str) else t for t in r["tags"]]}
                if r.get("tags") else r for r in rows]

    def encode(self, rows, tokenizer, max_length, train, task):
        enc = tokenizer([r["tokens"] for r in rows], is_split_into_words=True, truncation=True,
                        max_length=max_length, return_overflowing_tokens=True)
        features, seen = [], set()
        for i, example in enumerate(enc["overflow_to_sample_mapping"]):
            row = rows[example]
            words = enc.word_ids(i)
            first = []  # (token position, word index) of words whose first subword is here
            previous = None
            for pos, word in enumerate(words):
                if word is not None and word != previous and (example, word) not in seen:
                    first.append((pos, word))
                    seen.add((example, word))
                previous = word
            feature = {"input_ids": enc["input_ids"][i], "_example": example, "_first": first}
            if row.get("tags") is not None:
                labels = [IGNORE] * len(words)
                for pos, word in first:
                    labels[pos] = row["tags"][word]
                feature["labels"] = labels
            features.append(feature)
        return features

    def decode(self, outputs, features, rows, labels, task):
        predictions = [[None] * len(r["tokens"]) for r in rows]
        for out, feature in zip(outputs, features):
            for pos, word in feature["_first"]:
                predictions[feature["_example"]][word] = int(np.argmax(out[pos]))
        # A word with no subword at all (an empty string token) gets the first label.
        return [[labels[p if p is not None else 0] for p in sent] for sent in predictions]

    def score(self, metric, predictions, rows, labels, lang):
        gold = [[labels[t] for t in r["tags"]] for r in rows]
        values = metrics.tagging_f1(gold, predictions)
        values["token_accuracy"] = metrics.token_accuracy(gold, predictions)
        if metric == "accuracy":  # CCG supertagging is scored per token
            values["accuracy"] = values["token_accuracy"]
        return values

    def write(self, predictions, rows, labels, path):
        from .. import _io

        # XTREME's layout: one tag per line, a blank line after each sentence.
        _io.write_text(path, "".join("".join(f"{t}\n" for t in sent) + "\n"
                                     for sent in predictions))
