"""Task metrics, defined exactly as the official XTREME / XTREME-R scoring defines them.

Every function returns fractions in [0, 1]; XTREME's scripts and leaderboards print the same
numbers multiplied by 100 (``format_table`` does that when it prints).

Where each definition comes from (google-research/xtreme unless said otherwise):

- ``accuracy``: ``evaluate.py`` (XNLI, PAWS-X, Tatoeba; XCOPA in XTREME-R).
- ``tagging_f1``: ``evaluate.py`` calls seqeval's ``f1_score`` / ``precision_score`` /
  ``recall_score`` on the tag sequences of PAN-X (NER) and UD-POS. ``install_tools.sh`` installs
  an unpinned ``seqeval``, which at XTREME's release was seqeval 0.0.12; its chunk rules are
  reproduced here (see :func:`extract_chunks`).
- ``squad``: ``third_party/evaluate_squad.py``, which ``install_tools.sh`` downloads from the
  SQuAD v1.1 official script (XQuAD, TyDiQA-GoldP); ``version=2`` follows the official SQuAD
  v2.0 script.
- ``mlqa``: ``third_party/evaluate_mlqa.py`` = facebookresearch/MLQA ``mlqa_evaluation_v1.py``.
- ``bucc_f1``: ``evaluate.py``'s ``bucc_f1`` and ``third_party/utils_retrieve.py``'s
  ``bucc_eval`` (the threshold is tuned by ``retrieval.tune_threshold``).
- ``map_at_k``: XTREME-R's ``third_party/utils_lareqa.py`` (``average_precision_at_k``) for
  LAReQA; for Mewsli-X (``third_party/utils_mewslix.py``, MRR over the top 20 with a single gold
  entity) it gives the same number.
- The XTREME score: ``evaluate.py`` averages each task over its languages, a QA task counts
  (EM + F1) / 2, every other task its F1 or accuracy, and the overall score is the mean over
  tasks (:func:`task_score`, :func:`suite_score`).
"""
from __future__ import annotations

import math
import re
import string
import sys
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import unknown

__all__ = [
    "METRICS", "Metric", "accuracy", "bucc_f1",
    "extract_chunks", "map_at_k", "mlqa", "mlqa_normalize", "pearson_spearman", "primary",
    "score", "squad", "squad_normalize", "suite_score", "tagging_f1",
    "task_score", "token_accuracy",
]


# ----------------------------------------------------------------------------- classification

def accuracy(predictions, labels) -> float:
    """Fraction of exact matches (XTREME: XNLI, PAWS-X, Tatoeba). Empty input is an error."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or labels.size == 0:
        raise ValueError(f"accuracy needs equal, non-empty inputs, got {predictions.shape} "
                         f"and {labels.shape}")
    return float((predictions == labels).mean())


# ----------------------------------------------------------------------------- tagging

def _check_tag_sequences(gold, pred) -> None:
    for name, seqs in (("gold", gold), ("pred", pred)):
        if isinstance(seqs, str) or any(isinstance(s, str) for s in seqs):
            raise ValueError(f"{name} must be a list of tag sequences (one list per sentence)")
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} sentences, pred has {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: gold has {len(g)} tags, pred has {len(p)}")


def _boundary_and_type(tag) -> tuple[str, str]:
    # seqeval 0.0.12: the boundary letter is the tag's first character, the type is what
    # follows the last '-' (the whole tag when it has no '-').
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"tags must be non-empty strings, got {tag!r}")
    return tag[0], tag.split("-")[-1]


def _closes_chunk(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """Does the chunk open at the previous position end before the current one?"""
    (p_mark, p_type), (c_mark, c_type) = prev, cur
    if p_mark in ("E", "S"):
        return True
    if p_mark in ("B", "I") and c_mark in ("B", "S", "O"):
        return True
    return p_mark not in ("O", ".") and p_type != c_type


def _opens_chunk(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """Does a chunk start at the current position?"""
    (p_mark, p_type), (c_mark, c_type) = prev, cur
    if c_mark in ("B", "S"):
        return True
    if p_mark in ("E", "S", "O") and c_mark in ("E", "I"):
        return True
    return c_mark not in ("O", ".") and p_type != c_type


def extract_chunks(sequences: Sequence[Sequence[str]]) -> list[tuple[str, int, int]]:
    """Chunks ``(type, first, last)`` exactly as seqeval 0.0.12's ``get_entities`` finds them
    in a list of sentences (the version XTREME's ``evaluate.py`` ran).

    The sentences are joined into one stream with an ``"O"`` after each sentence (and one more
    at the end), so offsets are positions in that stream and no chunk crosses a sentence. Each
    tag is read as a *boundary letter*, its first character, and a *type*, the text after its
    last ``-`` (the whole tag when there is none). Between the previous tag and the current one:

    - a chunk **ends** if the previous letter is ``E`` or ``S``; or the previous letter is
      ``B``/``I`` and the current one is ``B``, ``S`` or ``O``; or the previous letter is not
      ``O`` or ``.`` and the type changes;
    - a chunk **starts** if the current letter is ``B`` or ``S``; or an ``E``/``I`` follows an
      ``E``, ``S`` or ``O``; or the current letter is not ``O`` or ``.`` and the type changes.

    Consequences for IOB2/IOBES NER tags: ``I-PER`` after ``O`` (or after ``I-LOC``) starts a
    PER entity, ``B-PER I-LOC`` is two entities, ``S-X`` is a one-token entity and ``E-X``
    closes one.

    Consequences for UD-POS tags, which have no prefix: the first letter is taken as the
    boundary (``NOUN`` -> ``N``, ``PROPN`` -> ``P``, ``ADJ`` -> ``A``, ``SCONJ`` -> ``S``,
    ``INTJ`` -> ``I``) and the whole tag is the type. So a run of identical consecutive tags
    is **one** chunk (``NOUN NOUN`` is one NOUN chunk over both tokens) and a change of tag
    starts a new chunk - except tags beginning with ``S`` (``SCONJ``, ``SYM``), which are
    always one-token chunks, and tags beginning with ``B``/``E``/``O``/``.``, which follow
    those letters' rules. XTREME's UD-POS "F1" is therefore an F1 over such runs, not
    per-token accuracy (see :func:`token_accuracy`).
    """
    stream: list[str] = []
    for sentence in sequences:
        stream.extend(sentence)
        stream.append("O")
    stream.append("O")
    chunks = []
    prev = ("O", "")
    begin = 0
    for i, tag in enumerate(stream):
        cur = _boundary_and_type(tag)
        if _closes_chunk(prev, cur):
            chunks.append((prev[1], begin, i - 1))
        if _opens_chunk(prev, cur):
            begin = i
        prev = cur
    return chunks


def tagging_f1(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Micro precision, recall and F1 over chunks (seqeval 0.0.12's ``f1_score``, as XTREME's
    ``evaluate.py`` computes them for PAN-X and UD-POS).

    Chunks are found by :func:`extract_chunks` (read its docstring for what happens with
    prefix-less POS tags) and compared as sets of ``(type, first, last)``: a predicted chunk
    counts only if its type and both ends match a gold chunk. Precision is 0 when nothing is
    predicted, recall is 0 when there is no gold chunk, F1 is 0 when both are 0 (so two
    all-``O`` inputs score 0, as in seqeval). Sentences of different lengths raise ValueError.
    """
    _check_tag_sequences(gold, pred)
    gold_chunks = set(extract_chunks(gold))
    pred_chunks = set(extract_chunks(pred))
    correct = len(gold_chunks & pred_chunks)
    precision = correct / len(pred_chunks) if pred_chunks else 0.0
    recall = correct / len(gold_chunks) if gold_chunks else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def token_accuracy(gold: list[list[str]], pred: list[list[str]]) -> float:
    """Plain per-token accuracy over all tokens of all sentences (reported beside the UD-POS
    chunk F1). Sentences of different lengths, or no tokens at all, raise ValueError."""
    _check_tag_sequences(gold, pred)
    total = sum(len(g) for g in gold)
    if total == 0:
        raise ValueError("token_accuracy needs at least one token")
    correct = sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
    return correct / total


# ----------------------------------------------------------------------------- QA: SQuAD

_ASCII_PUNCT = frozenset(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    """The official SQuAD normalization: lowercase, delete ASCII punctuation characters
    (``string.punctuation``; deleted, not replaced by a space, so ``Eiffel-Tower`` becomes
    ``eiffeltower``), replace the words a/an/the by a space, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    text = _EN_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _squad_v1_scores(prediction: str, golds: list[str]) -> tuple[float, float]:
    if not golds:
        raise ValueError("SQuAD v1.1 scoring needs at least one gold answer per question "
                         "(use version=2 for unanswerable questions)")
    norm_pred = squad_normalize(prediction)
    em = max(float(norm_pred == squad_normalize(g)) for g in golds)
    f1 = max(_token_f1(norm_pred.split(), squad_normalize(g).split()) for g in golds)
    return em, f1


def _squad_v2_scores(prediction: str, golds: list[str]) -> tuple[float, float]:
    # SQuAD v2.0 official script: gold answers that normalize to nothing are dropped; a
    # question left without gold answers has the single gold answer "" (unanswerable).
    golds = [g for g in golds if squad_normalize(g)] or [""]
    norm_pred = squad_normalize(prediction)
    pred_tokens = norm_pred.split()
    em = f1 = 0.0
    for g in golds:
        norm_gold = squad_normalize(g)
        em = max(em, float(norm_gold == norm_pred))
        gold_tokens = norm_gold.split()
        if not gold_tokens or not pred_tokens:
            f1 = max(f1, float(gold_tokens == pred_tokens))
        else:
            f1 = max(f1, _token_f1(pred_tokens, gold_tokens))
    return em, f1


def _average_qa(predictions: Mapping[str, str], answers: Mapping[str, Sequence[str]],
                scorer: Callable[[str, list[str]], tuple[float, float]], name: str) -> dict:
    if not answers:
        raise ValueError(f"{name} needs at least one question")
    em_sum = f1_sum = 0.0
    missing = 0
    for qid, golds in answers.items():
        if qid not in predictions:
            missing += 1
            continue
        em, f1 = scorer(predictions[qid], list(golds))
        em_sum += em
        f1_sum += f1
    if missing:
        warnings.warn(f"{name}: {missing} of {len(answers)} questions have no prediction "
                      "and score 0", stacklevel=3)
    total = len(answers)
    return {"exact_match": em_sum / total, "f1": f1_sum / total, "missing": missing}


def squad(predictions: dict[str, str], answers: dict[str, list[str]], version: int = 1) -> dict:
    """Exact match and F1 as the official SQuAD scripts compute them (XQuAD and TyDiQA-GoldP in
    XTREME use v1.1).

    ``answers`` maps each question id to its gold answer texts; scores are the max over those
    answers, averaged over every question in ``answers``. A question with no prediction counts
    0 and is reported in ``missing`` (with a warning), as in the v1.1 script; predictions for
    ids not in ``answers`` are ignored.

    ``version=2``: SQuAD v2.0 semantics. Gold ``[]`` (or only answers that normalize to
    nothing) means unanswerable, and then the only correct prediction is one that normalizes
    to ``""``; token F1 with an empty side is 1 if both are empty, else 0. (The v2.0 script
    leaves questions without a prediction out of the average; here they count 0 as in v1.1,
    and ``missing`` says how many there were.)
    """
    if version not in (1, 2):
        raise ValueError(f"SQuAD version must be 1 or 2, got {version!r}")
    scorer = _squad_v1_scores if version == 1 else _squad_v2_scores
    return _average_qa(predictions, answers, scorer, f"squad v{version}")


# ----------------------------------------------------------------------------- QA: MLQA

_MAXUNICODE = sys.maxunicode
_CJK = re.compile("[\u4e00-\u9fa5]")
_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
}
_MLQA_LANGS = ("ar", "de", "en", "es", "hi", "vi", "zh")


def _mlqa_punct(ch: str) -> bool:
    # MLQA's PUNCT set: every code point below sys.maxunicode whose Unicode category starts
    # with "P", plus string.punctuation (which adds ASCII symbols such as $ + < = > ^ ` | ~).
    return ch in _ASCII_PUNCT or (ord(ch) < _MAXUNICODE
                                  and unicodedata.category(ch).startswith("P"))


def _mixed_segmentation(text: str) -> list[str]:
    # Each CJK ideograph in U+4E00..U+9FA5 (and each punctuation character) is its own token;
    # the text between them is split on whitespace.
    tokens: list[str] = []
    pending = ""
    for ch in text:
        if _CJK.match(ch) or _mlqa_punct(ch):
            tokens.extend(pending.split())
            pending = ""
            tokens.append(ch)
        else:
            pending += ch
    tokens.extend(pending.split())
    return tokens


def mlqa_normalize(text: str, lang: str) -> str:
    """MLQA's official normalization for answer language ``lang``, in its order:

    1. lowercase;
    2. delete every punctuation character - all Unicode categories P* (Pc Pd Ps Pe Pi Pf Po)
       plus ASCII ``string.punctuation``;
    3. replace articles by a space: en a/an/the; es un/una/unos/unas/el/la/los/las; de
       ein/eine/einen/einem/eines/einer/der/die/das/den/dem/des; vi của/là/cái/chiếc/những
       (whole words); ar: every occurrence of "ال" anywhere, even inside a word (the script's
       pattern ``\\sال^|ال`` can only ever match its second branch); hi, zh: nothing;
    4. tokenize - whitespace for en/es/de/vi/ar/hi; for zh "mixed segmentation": every CJK
       character U+4E00..U+9FA5 is a token, other runs are split on whitespace - and join the
       tokens with single spaces.

    Languages other than ar, de, en, es, hi, vi, zh raise ValueError (the script raises too).
    """
    if lang not in _MLQA_LANGS:
        raise ValueError(f"MLQA normalization is defined for {', '.join(_MLQA_LANGS)}; "
                         f"got {lang!r}")
    text = "".join(ch for ch in text.lower() if not _mlqa_punct(ch))
    if lang == "ar":
        text = text.replace("ال", " ")
    elif lang in _MLQA_ARTICLES:
        text = _MLQA_ARTICLES[lang].sub(" ", text)
    tokens = _mixed_segmentation(text) if lang == "zh" else text.split()
    return " ".join(t for t in tokens if t.strip())


def mlqa(predictions: dict[str, str], answers: dict[str, list[str]], lang: str) -> dict:
    """Exact match and F1 as MLQA's official ``mlqa_evaluation_v1.py`` computes them, with the
    language-specific normalization of :func:`mlqa_normalize` (``lang`` is the answer/context
    language). Max over gold answers, averaged over every question in ``answers``; a question
    with no prediction counts 0 and is reported in ``missing`` (with a warning)."""
    mlqa_normalize("", lang)  # reject an unsupported language before scoring anything

    def scorer(prediction: str, golds: list[str]) -> tuple[float, float]:
        if not golds:
            raise ValueError("MLQA scoring needs at least one gold answer per question")
        norm_pred = mlqa_normalize(prediction, lang)
        norm_golds = [mlqa_normalize(g, lang) for g in golds]
        em = max(float(norm_pred == g) for g in norm_golds)
        f1 = max(_token_f1(norm_pred.split(), g.split()) for g in norm_golds)
        return em, f1

    return _average_qa(predictions, answers, scorer, f"mlqa ({lang})")


# ----------------------------------------------------------------------------- regression

def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values all get the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    sorted_vals = values[order]
    ranks = np.empty(len(values), dtype=float)
    start = 0
    while start < len(values):
        stop = start + 1
        while stop < len(values) and sorted_vals[stop] == sorted_vals[start]:
            stop += 1
        ranks[order[start:stop]] = (start + 1 + stop) / 2  # mean of start+1 .. stop
        start = stop
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    if denom == 0:
        return float("nan")  # a constant input: undefined (scipy also returns nan)
    return max(-1.0, min(1.0, float((dx * dy).sum()) / denom))


def pearson_spearman(predictions, labels) -> dict:
    """Pearson's r and Spearman's rho (Pearson's r of the average ranks, ties sharing the mean
    rank, as scipy's ``spearmanr``). Needs two equal-length inputs of at least 2 values; a
    constant input gives nan (undefined)."""
    x = np.asarray(predictions, dtype=float).reshape(-1)
    y = np.asarray(labels, dtype=float).reshape(-1)
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"pearson_spearman needs two equal-length inputs of at least 2 "
                         f"values, got {x.size} and {y.size}")
    return {"pearson": _pearson(x, y),
            "spearman": _pearson(_average_ranks(x), _average_ranks(y))}


# ----------------------------------------------------------------------------- retrieval

def bucc_f1(predicted: set[tuple[str, str]], gold: set[tuple[str, str]]) -> dict:
    """Precision, recall and F1 of mined sentence pairs, as XTREME's ``bucc_f1`` / LASER's
    ``bucc_eval`` count them: both sides are sets of (source id, target id) pairs,
    correct = |predicted & gold|, precision = correct / |predicted|, recall = correct / |gold|;
    all three are 0 when nothing is correct."""
    predicted, gold = set(map(tuple, predicted)), set(map(tuple, gold))
    correct = len(predicted & gold)
    if correct == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision = correct / len(predicted)
    recall = correct / len(gold)
    return {"precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall)}


def map_at_k(rankings: list[list[str]], relevant: list[set[str]], k: int = 20) -> float:
    """Mean average precision at k, as XTREME-R computes it (``average_precision_at_k`` in
    ``third_party/utils_lareqa.py``; LAReQA and Mewsli-X use k = 20).

    For each query the ranking is cut to its first k items; walking down it, each relevant
    item not already seen higher up adds precision-at-its-rank (hits so far / rank). The sum is
    divided by **min(k, |relevant|)** (by |relevant| when k is 0 or None), and the mean is
    taken over queries. With one relevant item (Mewsli-X) this is the reciprocal rank of the
    gold entity within the top k. A query with an empty ranking scores 0; one with no relevant
    item is an error."""
    if len(rankings) != len(relevant):
        raise ValueError(f"{len(rankings)} rankings for {len(relevant)} relevance sets")
    if not rankings:
        raise ValueError("map_at_k needs at least one query")
    total = 0.0
    for ranking, targets in zip(rankings, relevant):
        targets = set(targets)
        if not targets:
            raise ValueError("every query needs at least one relevant candidate")
        ranking = list(ranking)[:k] if k else list(ranking)
        seen: set = set()
        hits = ap = 0.0
        for rank, item in enumerate(ranking, start=1):
            if item in targets and item not in seen:
                hits += 1
                ap += hits / rank
            seen.add(item)
        total += ap / (min(len(targets), k) if k else len(targets))
    return total / len(rankings)


# ----------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class Metric:
    """A catalogue metric: ``compute(...)`` returns a dict of values; ``primary_keys`` are
    averaged for model selection on dev; ``task_keys`` are averaged for the number a task
    contributes to the XTREME score."""
    name: str
    compute: Callable[..., dict]
    primary_keys: tuple[str, ...]
    task_keys: tuple[str, ...]
    description: str = field(default="", compare=False)

    def __call__(self, *args, **kwargs) -> dict:
        return self.compute(*args, **kwargs)


def _accuracy_values(predictions, labels) -> dict:
    return {"accuracy": accuracy(predictions, labels)}


def _squad_v1(predictions, answers) -> dict:
    return squad(predictions, answers, version=1)


def _squad_v2(predictions, answers) -> dict:
    return squad(predictions, answers, version=2)


def _map_at_20(rankings, relevant) -> dict:
    return {"map@20": map_at_k(rankings, relevant, k=20)}


_QA = ("exact_match", "f1")

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", _accuracy_values, ("accuracy",), ("accuracy",),
           "accuracy(predictions, labels)"),
    Metric("tagging_f1", tagging_f1, ("f1",), ("f1",),
           "tagging_f1(gold, pred): seqeval chunk F1"),
    Metric("squad", _squad_v1, ("f1",), _QA, "squad(predictions, answers): SQuAD v1.1"),
    Metric("squad_v2", _squad_v2, ("f1",), _QA, "squad(predictions, answers): SQuAD v2.0"),
    Metric("mlqa", mlqa, ("f1",), _QA, "mlqa(predictions, answers, lang)"),
    Metric("pearson_spearman", pearson_spearman, ("pearson", "spearman"),
           ("pearson", "spearman"), "pearson_spearman(predictions, labels)"),
    Metric("bucc_f1", bucc_f1, ("f1",), ("f1",), "bucc_f1(predicted, gold)"),
    Metric("map@20", _map_at_20, ("map@20",), ("map@20",), "map_at_k(rankings, relevant, 20)"),
)}


def _get(metric: str) -> Metric:
    if metric not in METRICS:
        raise unknown("metric", metric, METRICS)
    return METRICS[metric]


def _mean_of(values, keys: tuple[str, ...], metric: str) -> float:
    if isinstance(values, (int, float, np.floating, np.integer)):
        return float(values)
    missing = [k for k in keys if k not in values]
    if missing:
        raise ValueError(f"metric {metric} needs {', '.join(keys)} in its values, "
                         f"missing {', '.join(missing)}")
    return sum(float(values[k]) for k in keys) / len(keys)


def primary(metric: str, values) -> float:
    """The number used for model selection on dev: accuracy, F1 (tagging, QA, BUCC), the mean
    of Pearson and Spearman, or mAP@20. A bare number is returned as is."""
    m = _get(metric)
    return _mean_of(values, m.primary_keys, metric)


def task_score(metric: str, values) -> float:
    """The number a task contributes to the XTREME score: (exact_match + f1) / 2 for the QA
    metrics (squad, squad_v2, mlqa), the primary value for every other metric."""
    m = _get(metric)
    return _mean_of(values, m.task_keys, metric)


def suite_score(task_scores: dict[str, float]) -> float:
    """XTREME / XTREME-R overall score: the unweighted mean of the tasks' scores, each already
    averaged over its languages (:func:`task_score` of the language-averaged values)."""
    if not task_scores:
        raise ValueError("suite_score needs at least one task score")
    return sum(float(v) for v in task_scores.values()) / len(task_scores)


def score(metric: str, logits, labels) -> float:
    """The task metric from classifier logits: argmax, then accuracy. A ``pearson_spearman``
    task (a regression head, one output per example) scores its outputs directly, as the mean
    of Pearson and Spearman. Other metrics need decoded predictions: use their functions."""
    m = _get(metric)
    logits = np.asarray(logits)
    if m.name == "accuracy":
        return accuracy(logits.argmax(-1), labels)
    if m.name == "pearson_spearman":
        if logits.ndim == 2 and logits.shape[-1] == 1:
            logits = logits[:, 0]
        return primary(metric, pearson_spearman(logits, labels))
    raise ValueError(f"score() takes classification or regression logits; metric {metric!r} "
                     f"needs decoded predictions: call METRICS[{metric!r}] instead")
