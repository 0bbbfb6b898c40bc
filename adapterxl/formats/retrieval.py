"""Retrieval (BUCC, Tatoeba, LAReQA, Mewsli-X): no head and no training. Sentences are
embedded by the mean over tokens of one hidden layer (default: layer 14 of 24 for XLM-R Large,
7 of 12 for Base, as the paper and XTREME do) and compared by cosine similarity.

A corpus (docs/FORMATS.md) is {"queries", "candidates", "gold"}; predictions are, per task:
Tatoeba, for each English sentence (a candidate), the index of the nearest
sentence in the other language (XTREME's direction); BUCC the mined pairs above the threshold tuned
on the validation corpus; LAReQA / Mewsli-X the 20 best candidate ids per query."""
from __future__ import annotations

import json

import torch

from ..scoring import metrics, neighbours as retrieval
from .base import Format, Scored


def default_layer(num_layers: int) -> int:
    return max(1, num_layers * 14 // 24)


@torch.no_grad()
def embed(model, texts: list[str], tokenizer, layer: int, max_length: int,
          batch_size: int = 128, desc: str = "encode") -> torch.Tensor:
    """[len(texts), hidden] float32 embeddings, in the order of `texts`."""
    from ..data.preprocess import loader
    from ..logs import progress

    model.eval()
    device = model.backbone.device
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    features = [{"input_ids": ids} for ids in enc["input_ids"]]
    dl = loader(features, tokenizer, batch_size, shuffle=False, device=device)
    order = [i for batch in dl.batch_sampler for i in batch]
    chunks = [model.embed(layer, **{k: v.to(device) for k, v in batch.items()})
              for batch in progress(dl, desc=desc, unit="batch")]
    out = torch.empty((len(texts), chunks[0].shape[-1]), dtype=torch.float32, device=device)
    out[order] = torch.cat(chunks)
    return out


class Retrieval(Format):
    head = None
    extension = "tsv"
    per_example = False  # BUCC mining, Tatoeba, mAP are corpus-level: no bootstrap

    def num_outputs(self, labels) -> int:
        return 0

    def labeled(self, corpus):
        return corpus.get("gold") is not None

    def evaluate(self, model, rows, tokenizer, task, labels, lang, *, max_length=256,
                 batch_size=64, layer=None, dev=None, **_) -> Scored:
        """The corpus embedded at `layer` (default: the task's, else 14/24 of the depth) and
        searched; BUCC tunes its threshold on `dev()` (the validation corpus) when there is
        one."""
        if layer is None:
            layer = task.hyperparameters.get("layer") or default_layer(model.num_layers)
        tune = dev() if dev is not None and task.metric == "bucc_f1" else None
        predictions, values, extra = self.run(model, rows, tokenizer, task.metric, layer,
                                              max_length, batch_size, tune)
        return Scored(predictions, values, len(rows["queries"]), None, extra=extra,
                      layer=layer)

    def run(self, model, corpus: dict, tokenizer, metric: str, layer: int, max_length: int,
            batch_size: int, dev: dict | None = None) -> tuple[list, dict | None, dict]:
        """Predictions, metric values (None without gold), and extra facts (the BUCC
        threshold and where it was tuned)."""
        q = embed(model, [x["text"] for x in corpus["queries"]], tokenizer, layer, max_length,
                  batch_size, desc="encode queries")
        c = embed(model, [x["text"] for x in corpus["candidates"]], tokenizer, layer,
                  max_length, batch_size, desc="encode candidates")
        qids = [x["id"] for x in corpus["queries"]]
        cids = [x["id"] for x in corpus["candidates"]]
        gold = corpus.get("gold")
        extra = {}
        if metric == "bucc_f1":
            tune = dev if dev is not None and dev.get("gold") else corpus
            if tune is not corpus:
                dq = embed(model, [x["text"] for x in tune["queries"]], tokenizer, layer,
                           max_length, batch_size)
                dc = embed(model, [x["text"] for x in tune["candidates"]], tokenizer, layer,
                           max_length, batch_size)
            else:
                dq, dc = q, c
            threshold, _ = retrieval.tune_threshold(mined_pairs(dq, dc, tune),
                                                    _pairs(tune["gold"]))
            extra = {"threshold": threshold,
                     "threshold_tuned_on": "validation" if tune is not corpus else "itself"}
            pairs = retrieval.apply_threshold(mined_pairs(q, c, corpus), threshold)
            predictions = sorted(pairs)
            values = metrics.bucc_f1(set(pairs), _pairs(gold)) if gold else None
        elif metric == "map@20":
            ranked = retrieval.rank(q, c, k=min(20, len(cids)))
            predictions = [[cids[j] for j in row] for row in ranked.tolist()]
            values = None if gold is None else {"map@20": metrics.map_at_k(
                predictions, [set(gold.get(qid, ())) for qid in qids], k=20)}
        else:  # Tatoeba: XTREME searches the other language with each English sentence
            nearest = retrieval.nearest(c, q).tolist()
            predictions = [qids[j] for j in nearest]
            values = None
            if gold is not None:
                source = {cid: qid for qid, cs in gold.items() for cid in cs}
                values = {"accuracy": metrics.accuracy(predictions,
                                                       [source.get(cid) for cid in cids])}
        return predictions, values, extra

    def write(self, predictions, rows, labels, path):
        from .. import _io

        if predictions and isinstance(predictions[0], tuple):  # BUCC: src<TAB>trg per pair
            text = "".join(f"{s}\t{t}\n" for s, t in predictions)
        elif predictions and isinstance(predictions[0], list):  # ranked ids per query
            text = "".join(json.dumps({"id": q["id"], "ranking": p}) + "\n"
                           for q, p in zip(rows["queries"], predictions))
        else:  # Tatoeba: per English sentence, the index of the sentence it retrieved
            index = {q["id"]: i for i, q in enumerate(rows["queries"])}
            text = "".join(f"{index[p]}\n" for p in predictions)
        _io.write_text(path, text)


def mined_pairs(q, c, corpus) -> list[tuple[str, str, float]]:
    """XTREME's BUCC candidates: pairs mined between the embeddings of the corpus's
    sentences, named by id, without those whose sentence is repeated in its side
    (``corpus["repeated"]``, see ``data.readers.read_bucc_files``)."""
    repeated = corpus.get("repeated") or {}
    skip_q, skip_c = set(repeated.get("queries", ())), set(repeated.get("candidates", ()))
    return [(s, t, score) for s, t, score in _named(retrieval.bucc_mine(q, c), corpus)
            if s not in skip_q and t not in skip_c]


def _named(mined, corpus) -> list[tuple[str, str, float]]:
    qids = [x["id"] for x in corpus["queries"]]
    cids = [x["id"] for x in corpus["candidates"]]
    return [(qids[i], cids[j], float(s)) for i, j, s in mined]


def _pairs(gold: dict) -> set[tuple[str, str]]:
    return {(q, c) for q, cs in gold.items() for c in cs}
