"""The `Format` interface every task format implements, its `Scored` result, and `predict`
(head outputs over length-sorted batches). The formats themselves live one family per file;
formats/__init__ maps names to them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch



@dataclass
class Scored:
    """One language (or the dev set) evaluated: what `Format.evaluate` returns."""
    predictions: list            # one per row (per query / candidate for a corpus), as written
    values: dict | None          # metric values over the labeled rows; None: nothing scored
    examples: int                # rows (queries of a corpus)
    labeled: int | None          # rows scored; None: a corpus scored as a whole
    samples: np.ndarray | None = None   # bootstrap values of the task score, when asked
    extra: dict | None = None    # facts of the scoring itself (BUCC: the tuned threshold)
    layer: int | None = None     # the hidden layer read, for formats scored on representations


class Format:
    name: str = ""
    head: str | None = None       # head type in heads.py; None: no head (retrieval)
    extension: str = "tsv"          # submission file extension
    language: bool = False          # trains language modules (masked language modelling)
    per_example: bool = True        # the score averages over examples (so it bootstraps)

    def labels(self, task, rows: list[dict], backbone) -> list[str]:
        """The label set a head predicts: the catalogue's (none for formats without)."""
        return list(task.labels) if task.labels is not None else []

    def indexed(self, task, rows: list[dict], labels: list[str]) -> list[dict]:
        """Rows whose labels index `labels` (they already do, unless a format says)."""
        return rows

    def num_outputs(self, labels) -> int:
        return len(labels)

    def labeled(self, row: dict) -> bool:
        return row.get("label") is not None

    def encode(self, rows: list[dict], tokenizer, max_length: int, train: bool,
               task) -> list[dict]:
        """Features: `input_ids` (+ `labels` when training or scoring), bookkeeping under
        keys starting with "_"."""
        raise NotImplementedError

    def decode(self, outputs: list[np.ndarray], features: list[dict], rows: list[dict],
               labels, task) -> list:
        """One prediction per row from the per-feature outputs."""
        raise NotImplementedError

    def score(self, metric: str, predictions: list, rows: list[dict], labels,
              lang: str) -> dict:
        """The metric values (fractions) of labeled rows."""
        raise NotImplementedError

    def write(self, predictions: list, rows: list[dict], labels, path: Path) -> None:
        from .. import _io

        _io.write_text(path, "".join(f"{p}\n" for p in predictions))

    def collate(self, tokenizer, device, train: bool, seed: int):
        return None  # the default Collator

    def evaluate(self, model, rows, tokenizer, task, labels, lang: str, *, max_length: int = 256,
                 batch_size: int = 64, features: list[dict] | None = None, seed: int = 0,
                 desc: str | None = None, resamples: int = 0, layer: int | None = None,
                 dev=None) -> Scored:
        """encode -> predict -> decode -> score: the predictions of every row, the metric
        values of the labeled ones (hidden test labels: predictions only) and, with
        `resamples`, their bootstrap values. `features` are the rows already encoded (the
        training loop's dev set); `layer` and `dev` (a function returning the validation
        rows of `lang`, or None) serve formats scored on representations."""
        if features is None:
            features = self.encode(rows, tokenizer, max_length, False, task)
        outputs = predict(model, features, tokenizer, batch_size, desc=desc,
                          collate=self.collate(tokenizer, model.backbone.device, False, seed))
        predictions = self.decode(outputs, features, rows, labels, task)
        keep = [i for i, r in enumerate(rows) if self.labeled(r)]
        if rows and not keep:
            return Scored(predictions, None, len(rows), 0)
        kept, kept_rows = [predictions[i] for i in keep], [rows[i] for i in keep]
        samples = None
        if resamples:
            from ..scoring import bootstrap

            samples = bootstrap.resampled_scores(self, task.metric, kept, kept_rows,
                                                 labels, lang, resamples=resamples)
        return Scored(predictions, self.score(task.metric, kept, kept_rows, labels, lang),
                      len(rows), len(keep), samples)


@torch.no_grad()
def predict(model, features: list[dict], tokenizer, batch_size: int = 64,
            collate=None, desc: str | None = None) -> list[np.ndarray]:
    """Head outputs per feature, in the order of `features` (batches are length-sorted
    inside). Token-level outputs are cut to each feature's own length. `desc` labels the
    progress bar."""
    from ..data.preprocess import loader
    from ..logs import progress

    model.eval()
    device = model.backbone.device
    dl = loader(features, tokenizer, batch_size, shuffle=False, device=device, collate=collate)
    order = [i for batch in dl.batch_sampler for i in batch]
    outputs = []
    for batch in progress(dl, desc=desc or "predict", unit="batch"):
        batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        logits = model(**batch)["logits"].float().cpu().numpy()
        lengths = batch["attention_mask"].sum(-1).cpu().numpy()
        for row, n in zip(logits, lengths):
            outputs.append(row[:int(n)] if row.ndim == 2 and np.ndim(n) == 0 else row)
    result = [None] * len(features)
    for i, out in zip(order, outputs):
        result[i] = out
    return result
