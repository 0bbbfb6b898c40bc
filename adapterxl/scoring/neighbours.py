"""Retrieval on precomputed sentence embeddings, the way XTREME / XTREME-R score it.

Pure functions over float tensors (numpy arrays are accepted too); nothing here touches
models, files or ids beyond what the caller passes in.

- :func:`knn` -- exact top-k by cosine similarity (or inner product), computed in blocks over
  both the queries and the candidates: it never holds more than one ``block_size x block_size``
  similarity block plus a running ``[n_queries, k]`` top-k, so 400k x 400k sentences fit.
  Ties are broken deterministically: the lower candidate index wins.
- :func:`nearest` -- top-1 (Tatoeba: accuracy of ``nearest(...)[i] == i``).
- :func:`rank` -- top-k indices for mAP@20 (LAReQA, Mewsli-X in XTREME-R).
- :func:`bucc_mine` -- BUCC bitext mining as XTREME's ``third_party/utils_retrieve.py``
  ``mine_bitext`` runs it (LASER's recipe): k=4 neighbourhoods in both directions, the ratio
  margin, candidates from both directions and the greedy one-to-one ``max`` strategy.
- :func:`tune_threshold` / :func:`apply_threshold` -- XTREME's ``bucc_optimize`` /
  ``bucc_extract``: the score threshold that maximizes F1 on dev, counted as ``bucc_eval``
  counts it.

faiss is an optional accelerator only (``use_faiss=True``); the exact torch path is the
default and the reference.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

try:  # optional accelerator, never required
    import faiss
except ImportError:  # pragma: no cover - depends on the environment
    faiss = None

__all__ = ["normalize", "knn", "nearest", "rank", "bucc_mine", "tune_threshold",
           "apply_threshold"]

_LOW32 = (1 << 32) - 1
_METRICS = ("cosine", "dot")
_RETRIEVALS = ("max", "fwd", "bwd", "intersect")


# --------------------------------------------------------------------------- validation

def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise ValueError(f"{name} must be a torch.Tensor or a numpy array, "
                         f"got {type(x).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    return t


def _matrix(x, name: str) -> torch.Tensor:
    """`x` as a validated [n, dim] tensor (not yet converted or moved)."""
    t = _as_tensor(x, name)
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D [n, dim] array of embeddings, "
                         f"got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}): need at least one row")
    if t.shape[1] == 0:
        raise ValueError(f"{name} has zero-dimensional embeddings (shape {tuple(t.shape)})")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _same_dim(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name_a} have dim {a.shape[1]} but {name_b} have dim "
                         f"{b.shape[1]}: embeddings must come from the same space")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_metric(metric: str) -> None:
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")


def _pick_device(device, *tensors: torch.Tensor) -> torch.device:
    if device is not None:
        return torch.device(device)
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        names = ", ".join(sorted(str(d) for d in devices))
        raise ValueError(f"the embeddings are on different devices ({names}); "
                         "pass device= to choose where to compute")
    return devices.pop()


def _prepare(t: torch.Tensor, device: torch.device, metric: str) -> torch.Tensor:
    t = t.to(device=device, dtype=torch.float32)
    return _l2_normalize(t) if metric == "cosine" else t.contiguous()


def _l2_normalize(t: torch.Tensor) -> torch.Tensor:
    norms = torch.linalg.vector_norm(t, dim=-1, keepdim=True).clamp_min(1e-12)
    return (t / norms).contiguous()


# --------------------------------------------------------------------------- kNN

def normalize(x) -> torch.Tensor:
    """L2-normalize each row (or a single vector) to unit length, as float32.

    Zero vectors stay zero (their cosine with anything is 0). The result lives on the
    input's device; numpy input gives a CPU tensor.
    """
    t = _as_tensor(x, "x")
    if t.dim() not in (1, 2) or t.numel() == 0:
        raise ValueError(f"x must be a non-empty vector or [n, dim] matrix, "
                         f"got shape {tuple(t.shape)}")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError("x contains NaN or infinite values")
    return _l2_normalize(t.to(torch.float32))


def _similarity_block(q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """One [bq, bc] block of similarities (rows are already normalized for cosine)."""
    return q @ c.T


def _pack(scores: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Pack (score, candidate index) into int64 keys ordered as (score desc, index asc).

    The float32 bit pattern is mapped to an int32 with the same order as the floats (negative
    floats get their magnitude bits flipped) and fills the high 32 bits; the low 32 bits hold
    ``2**32 - 1 - index``. A top-k over such keys is exact and has no ties: equal scores go to
    the lower index, whatever the block layout or the backend.
    """
    bits = (scores + 0.0).view(torch.int32)  # + 0.0 turns -0.0 into +0.0
    keys = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).to(torch.int64)
    keys <<= 32
    keys |= _LOW32 - indices
    return keys


def _unpack(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    indices = _LOW32 - (keys & _LOW32)
    high = (keys >> 32).to(torch.int32)
    bits = torch.where(high < 0, high ^ 0x7FFFFFFF, high)
    return bits.view(torch.float32), indices


def _block_topk(sims: torch.Tensor, offset: int, k: int) -> torch.Tensor:
    """Packed keys of the exact top-`k` of each row of one block, by (score desc, index asc).

    A float top-(k+1) is taken: where the (k+1)-th value is below the k-th, the first k are
    exactly the scores ``>= k-th`` and only their order needs fixing (done by the packed
    keys). Rows where the two are equal have a tie group cut by the boundary, so which tied
    candidates made it is up to the backend; only those rows (rare on real embeddings) are
    redone over packed keys of the whole row.
    """
    n = sims.shape[1]
    if k >= n:
        values, cols = sims.topk(n, dim=1)
        return _pack(values, cols + offset)
    values, cols = sims.topk(k + 1, dim=1)
    split = values[:, k] == values[:, k - 1]
    keys = _pack(values[:, :k], cols[:, :k] + offset)
    if bool(split.any()):
        rows = split.nonzero()[:, 0]
        every = torch.arange(offset, offset + sims.shape[1], device=sims.device)
        keys[rows] = _pack(sims[rows], every).topk(k, dim=1).values
    return keys


def _knn_torch(q: torch.Tensor, c: torch.Tensor, k: int, block_size: int):
    nq, nc = q.shape[0], c.shape[0]
    if nc > _LOW32:
        raise ValueError(f"at most 2**32 - 1 candidates are supported, got {nc}")
    out_scores, out_indices = [], []
    for qs in range(0, nq, block_size):
        qb = q[qs:qs + block_size]
        best = None  # running top-k keys for this query block, [bq, <=k]
        for cs in range(0, nc, block_size):
            keys = _block_topk(_similarity_block(qb, c[cs:cs + block_size]), cs, k)
            if best is not None:
                keys = torch.cat([best, keys], dim=1)
                keys = keys.topk(min(k, keys.shape[1]), dim=1).values
            best = keys
        best = best.topk(best.shape[1], dim=1).values  # sorted, also for a single block
        scores, indices = _unpack(best)
        out_scores.append(scores)
        out_indices.append(indices)
    return torch.cat(out_scores), torch.cat(out_indices)


def _knn_faiss(q: torch.Tensor, c: torch.Tensor, k: int, block_size: int):
    qn = np.ascontiguousarray(q.detach().cpu().numpy(), dtype=np.float32)
    cn = np.ascontiguousarray(c.detach().cpu().numpy(), dtype=np.float32)
    index = faiss.IndexFlatIP(cn.shape[1])
    index.add(cn)
    scores, indices = [], []
    for qs in range(0, qn.shape[0], block_size):
        d, i = index.search(qn[qs:qs + block_size], k)
        scores.append(torch.from_numpy(d))
        indices.append(torch.from_numpy(i.astype(np.int64)))
    return (torch.cat(scores).to(q.device), torch.cat(indices).to(q.device))


def _knn_prepared(q, c, k, block_size, use_faiss):
    if use_faiss:
        if faiss is None:
            warnings.warn("use_faiss=True but faiss is not installed (pip install "
                          "'adapterxl[faiss]'); using the exact torch search", RuntimeWarning,
                          stacklevel=3)
        else:
            return _knn_faiss(q, c, k, block_size)
    return _knn_torch(q, c, k, block_size)


def knn(queries, candidates, k: int, block_size: int = 8192, device=None,
        use_faiss: bool = False, metric: str = "cosine"):
    """Exact top-`k` candidates of every query.

    Returns ``(scores, indices)``, both ``[n_queries, k]`` on the compute device: float32
    similarities in descending order and int64 candidate indices. Equal scores are ordered by
    candidate index (the lower index first), independently of `block_size`.

    `metric`: ``"cosine"`` (rows are L2-normalized first; XTREME's BUCC and Tatoeba) or
    ``"dot"`` (raw inner product, as XTREME-R's LAReQA baseline scores its encodings).
    The similarity matrix is computed in ``block_size x block_size`` blocks with a running
    top-k per query block: extra memory is about ``4 * block_size**2`` bytes (256 MiB at
    8192) plus ``O(n_queries * k)``, besides the float32 copies of the inputs. `device`
    defaults to the embeddings' device (numpy: CPU).
    `use_faiss=True` searches with ``faiss.IndexFlatIP`` when faiss is installed (also exact,
    but its order among tied scores is faiss's); without faiss it warns and uses torch.
    On CUDA, keep TF32 matmuls off (PyTorch's default) for exact float32 similarities.
    """
    q = _matrix(queries, "queries")
    c = _matrix(candidates, "candidates")
    _same_dim(q, c, "queries", "candidates")
    k = _positive_int(k, "k")
    if k > c.shape[0]:
        raise ValueError(f"k={k} exceeds the number of candidates ({c.shape[0]})")
    block_size = _positive_int(block_size, "block_size")
    _check_metric(metric)
    dev = _pick_device(device, q, c)
    return _knn_prepared(_prepare(q, dev, metric), _prepare(c, dev, metric), k, block_size,
                         use_faiss)


def nearest(queries, candidates, block_size: int = 8192, device=None,
            use_faiss: bool = False, metric: str = "cosine") -> torch.Tensor:
    """Index of the most similar candidate for each query, ``[n_queries]`` int64.

    Tatoeba accuracy is ``(nearest(queries, candidates) == arange(n)).mean()``. (XTREME's
    ``similarity_search`` indexes the non-English sentences and searches them with the
    English ones: ``nearest(english, other_language)``.)
    """
    return knn(queries, candidates, 1, block_size=block_size, device=device,
               use_faiss=use_faiss, metric=metric)[1][:, 0]


def rank(queries, candidates, k: int = 20, block_size: int = 8192, device=None,
         use_faiss: bool = False, metric: str = "cosine") -> torch.Tensor:
    """Top-`k` candidate indices per query, best first: ``[n_queries, min(k, n_candidates)]``.

    For mAP@20 (LAReQA, Mewsli-X): XTREME-R ranks all candidates by similarity and scores
    the first 20 (AP@k divides by ``min(#relevant, k)``).
    """
    c = _matrix(candidates, "candidates")
    k = _positive_int(k, "k")
    return knn(queries, c, min(k, c.shape[0]), block_size=block_size, device=device,
               use_faiss=use_faiss, metric=metric)[1]


# --------------------------------------------------------------------------- BUCC mining

def _margin_best(sims, inds, own_mean, other_mean):
    """Ratio margin of each of a row's k neighbours; the best one per row (first on ties)."""
    margins = sims / ((own_mean[:, None] + other_mean[inds]) / 2)
    best_score, best_col = margins.max(dim=1)
    return inds.gather(1, best_col[:, None])[:, 0], best_score


def bucc_mine(src, trg, k: int = 4, block_size: int = 8192, device=None,
              use_faiss: bool = False, retrieval: str = "max",
              min_score: float = 0.0) -> list[tuple[int, int, float]]:
    """Mine parallel sentence pairs between `src` and `trg` embeddings (XTREME's BUCC).

    Exactly XTREME's ``mine_bitext(mode='mine', retrieval='max', margin='ratio',
    neighborhood=4, dist='cosine')``:

    1. rows are L2-normalized; ``k' = min(k, n_trg)`` nearest targets of every source and
       ``min(k, n_src)`` nearest sources of every target (cosine);
    2. ``margin(x, y) = cos(x, y) / ((mean top-k cos of x in trg + mean top-k cos of y in
       src) / 2)``;
    3. each source's candidate is, among its k nearest targets, the one with the highest
       margin (forward); each target's likewise among its k nearest sources (backward);
    4. ``retrieval='max'``: the forward and backward candidates are pooled, sorted by margin
       (descending; ties: forward before backward, then by index) and taken greedily, a pair
       being kept only if neither its source nor its target was taken before -- at most one
       pair per source and per target. Pairs with margin ``> min_score`` (XTREME: 0) are
       returned. ``'fwd'`` / ``'bwd'`` return every source's / target's candidate and
       ``'intersect'`` the forward candidates confirmed backward (XTREME applies no threshold
       to those three).

    Returns ``[(src_index, trg_index, margin)]``, best first. XTREME also deduplicates
    identical sentence texts before embedding; do that on the text side if you need it.
    """
    x = _matrix(src, "src")
    y = _matrix(trg, "trg")
    _same_dim(x, y, "src", "trg")
    k = _positive_int(k, "k")
    block_size = _positive_int(block_size, "block_size")
    if retrieval not in _RETRIEVALS:
        raise ValueError(f"retrieval must be one of {_RETRIEVALS}, got {retrieval!r}")
    dev = _pick_device(device, x, y)
    x = _prepare(x, dev, "cosine")
    y = _prepare(y, dev, "cosine")

    x2y_sim, x2y_ind = _knn_prepared(x, y, min(k, y.shape[0]), block_size, use_faiss)
    y2x_sim, y2x_ind = _knn_prepared(y, x, min(k, x.shape[0]), block_size, use_faiss)
    x2y_mean = x2y_sim.mean(dim=1)
    y2x_mean = y2x_sim.mean(dim=1)
    fwd_best, fwd_score = _margin_best(x2y_sim, x2y_ind, x2y_mean, y2x_mean)
    bwd_best, bwd_score = _margin_best(y2x_sim, y2x_ind, y2x_mean, x2y_mean)

    fwd_best = fwd_best.cpu().numpy()
    bwd_best = bwd_best.cpu().numpy()
    fwd_score = fwd_score.cpu().double().numpy()
    bwd_score = bwd_score.cpu().double().numpy()
    n_src, n_trg = x.shape[0], y.shape[0]

    if retrieval == "fwd":
        return [(i, int(fwd_best[i]), float(fwd_score[i])) for i in range(n_src)]
    if retrieval == "bwd":
        return [(int(bwd_best[j]), j, float(bwd_score[j])) for j in range(n_trg)]
    if retrieval == "intersect":
        return [(i, int(j), float(fwd_score[i])) for i, j in enumerate(fwd_best)
                if bwd_best[j] == i]

    pair_src = np.concatenate([np.arange(n_src), bwd_best])
    pair_trg = np.concatenate([fwd_best, np.arange(n_trg)])
    scores = np.concatenate([fwd_score, bwd_score])
    order = np.argsort(-scores, kind="stable")
    seen_src = np.zeros(n_src, dtype=bool)
    seen_trg = np.zeros(n_trg, dtype=bool)
    mined = []
    for p in order.tolist():
        i, j = int(pair_src[p]), int(pair_trg[p])
        if seen_src[i] or seen_trg[j]:
            continue
        seen_src[i] = seen_trg[j] = True
        if scores[p] > min_score:
            mined.append((i, j, float(scores[p])))
    return mined


# --------------------------------------------------------------------------- thresholds

def _candidate_scores(candidates, allow_empty: bool = False) -> dict:
    """{(src, trg): score}, keeping the highest score of a repeated pair (as XTREME does)."""
    if isinstance(candidates, (str, bytes, dict)) or not hasattr(candidates, "__iter__"):
        raise ValueError("candidates must be a list of (src, trg, score) tuples, "
                         f"got {type(candidates).__name__}")
    candidates = list(candidates)
    if not candidates and not allow_empty:
        raise ValueError("candidates is empty: need at least one (src, trg, score) tuple")
    best: dict = {}
    for n, item in enumerate(candidates):
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise ValueError(f"candidate {n} must be a (src, trg, score) tuple, got {item!r}")
        src, trg, score = item
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise ValueError(f"candidate {n} has a non-numeric score {score!r}") from None
        if not np.isfinite(score):
            raise ValueError(f"candidate {n} has a non-finite score {score!r}")
        pair = (src, trg)
        if pair not in best or score > best[pair]:
            best[pair] = score
    return best


def _prf(ncorrect: int, nextract: int, ngold: int) -> dict:
    """Precision, recall and F1 as bucc_eval computes them (fractions, not percentages)."""
    if ncorrect == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision = ncorrect / nextract
    recall = ncorrect / ngold
    return {"precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall)}


def tune_threshold(candidates: list[tuple[str, str, float]],
                   gold: set[tuple[str, str]]) -> tuple[float, dict]:
    """The score threshold that maximizes F1 of the extracted pairs against `gold` (dev).

    XTREME's ``bucc_optimize``: candidates sorted by descending score, F1 of every prefix,
    threshold halfway between the score of the best prefix's last pair and the next lower
    score. Pairs are then extracted with ``score >= threshold`` (:func:`apply_threshold`,
    XTREME's ``bucc_extract``) and counted as ``bucc_eval`` does: precision = correct /
    extracted, recall = correct / |gold|. Differences, all where XTREME is ill-defined:
    prefixes are cut only between distinct scores (so the F1 reported is the F1 the
    threshold really gives when scores tie), equal F1 keeps the highest threshold (XTREME's
    strict ``>``), and when the best prefix is every candidate the threshold is the lowest
    score (XTREME indexes past its list there). A pair listed twice keeps its highest score.
    If no candidate is in `gold`, XTREME's initial threshold 0.0 is returned with zeros.
    O(n log n). Returns ``(threshold, {"precision", "recall", "f1"})`` as fractions in [0, 1].
    """
    scored = _candidate_scores(candidates)
    gold = _gold_set(gold)
    ngold = len(gold)
    pairs = list(scored)
    scores = np.fromiter((scored[p] for p in pairs), dtype=np.float64, count=len(pairs))
    correct = np.fromiter((p in gold for p in pairs), dtype=bool, count=len(pairs))

    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    ncorrect = np.cumsum(correct[order])
    # a prefix may only end where the score changes (the last pair of a tie group)
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    c = ncorrect[ends]
    if c[-1] == 0:
        threshold = 0.0
        return threshold, _prf(0, int((scores >= threshold).sum()), ngold)
    e = ends + 1
    f1 = np.where(c > 0, 2.0 * c / (e + ngold), -1.0)  # == 2PR/(P+R), exact integers
    g = int(np.argmax(f1))  # first maximum: the highest threshold among equal F1
    hi = float(s[ends[g]])
    if g + 1 < len(ends):
        lo = float(s[ends[g + 1]])
        threshold = (hi + lo) / 2
        if not lo < threshold <= hi:  # adjacent floats: keep the cut where it belongs
            threshold = hi
    else:
        threshold = hi
    return threshold, _prf(int(c[g]), int(e[g]), ngold)


def _gold_set(gold) -> set:
    if not isinstance(gold, (set, frozenset, list, tuple)) or len(gold) == 0:
        raise ValueError("gold must be a non-empty set of (src, trg) pairs")
    out = set()
    for item in gold:
        if not isinstance(item, tuple) or len(item) != 2:
            raise ValueError(f"gold pairs must be (src, trg) tuples, got {item!r}")
        out.add(item)
    return out


def apply_threshold(candidates: list[tuple[str, str, float]],
                    threshold: float) -> set[tuple[str, str]]:
    """The pairs whose (highest) score is ``>= threshold`` (XTREME's ``bucc_extract``)."""
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number, got {threshold!r}") from None
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    return {pair for pair, score in _candidate_scores(candidates, allow_empty=True).items()
            if score >= threshold}
