"""Bootstrap 95% confidence intervals of a task's score, per language and for the average
over languages (how sure a zero-shot number is, as lm-eval and MTEB users expect one).

The unit resampled is what the metric averages over: an example (accuracy, QA exact match and
F1, STS pairs) or a sentence (tagging, whose chunk F1 is a ratio of counts summed over
sentences). Each unit's additive statistics are computed once, so a resample is a sum, not a
rescoring; Pearson/Spearman, which are not sums, are recomputed on each resample. The average's
interval resamples every language independently and averages the resampled scores, resample by
resample. Retrieval scores (BUCC mining, Tatoeba, mAP) are corpus-level and get no interval."""
from __future__ import annotations

import numpy as np

from . import metrics

RESAMPLES = 1000
SEED = 0


def _qa_units(fmt, metric, preds, rows, labels, lang) -> np.ndarray:
    out = []
    for r, p in zip(rows, preds):
        v = fmt.score(metric, [p], [r], labels, lang)
        out.append((v["exact_match"], v["f1"]))
    return np.asarray(out, dtype=np.float64)


def _tagging_units(preds, rows, labels, metric) -> np.ndarray:
    out = []
    for r, p in zip(rows, preds):
        gold = [labels[t] for t in r["tags"]]
        if metric == "accuracy":  # CCG: per-token accuracy
            out.append((sum(g == q for g, q in zip(gold, p)), len(gold), 0))
            continue
        g, q = set(metrics.extract_chunks([gold])), set(metrics.extract_chunks([p]))
        out.append((len(g & q), len(q), len(g)))
    return np.asarray(out, dtype=np.float64)


def _chunk_f1(sums: np.ndarray) -> np.ndarray:
    c, p, g = sums[..., 0], sums[..., 1], sums[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p + g > 0, 2 * c / np.where(p + g > 0, p + g, 1), 0.0)


def resampled_scores(fmt, metric: str, preds, rows, labels, lang,
                     resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray | None:
    """`resamples` bootstrap values of the language's task score (metrics.task_score), or None
    for corpus-level metrics. `fmt` is the task's format: one without a head (retrieval, scored
    on representations) is corpus-level; a per-token head resamples sentences."""
    n = len(rows)
    if n == 0 or fmt is None or fmt.head is None or resamples <= 0:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    if metric == "pearson_spearman":
        x = np.asarray(preds, dtype=np.float64).reshape(n)
        y = np.asarray([r["label"] for r in rows], dtype=np.float64)
        return np.asarray([metrics.task_score(metric, metrics.pearson_spearman(x[i], y[i]))
                           for i in draws])
    if metric in ("squad", "squad_v2", "mlqa"):
        units = _qa_units(fmt, metric, preds, rows, labels, lang)
        return units[draws].mean(axis=1).mean(axis=1)  # (EM + F1) / 2
    if fmt.head == "token":
        units = _tagging_units(preds, rows, labels, metric)
        sums = np.stack([units[i].sum(axis=0) for i in draws])
        if metric == "accuracy":
            return sums[:, 0] / np.maximum(sums[:, 1], 1)
        return _chunk_f1(sums)
    if metric == "accuracy":
        correct = np.asarray([int(p == r["label"]) for p, r in zip(preds, rows)],
                             dtype=np.float64)
        return correct[draws].mean(axis=1)
    return None


def interval(samples: np.ndarray | None) -> list[float] | None:
    """The percentile 95% interval [2.5%, 97.5%] of bootstrap values."""
    if samples is None or len(samples) == 0:
        return None
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def average_interval(per_language: dict[str, np.ndarray | None]) -> list[float] | None:
    """The interval of the mean over languages (None unless every language has samples)."""
    values = list(per_language.values())
    if not values or any(v is None for v in values):
        return None
    return interval(np.mean(np.stack(values), axis=0))
