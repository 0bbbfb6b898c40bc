"""Retrieval on precomputed embeddings: blocked exact kNN, BUCC margin mining, threshold tuning
(XTREME's third_party/utils_retrieve.py procedures), checked against brute force and hand
arithmetic."""
import math
import random
import re
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch

from adapterxl.scoring import neighbours as R
from adapterxl.scoring.neighbours import (apply_threshold, bucc_mine, knn, nearest,
                                            normalize, rank, tune_threshold)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _brute_topk(q, c, k):
    """Full similarity matrix, then every row sorted by (score desc, index asc)."""
    sims = normalize(q) @ normalize(c).T
    rows = [sorted(range(c.shape[0]), key=lambda j: (-sims[i, j].item(), j))[:k]
            for i in range(q.shape[0])]
    idx = torch.tensor(rows, dtype=torch.int64)
    return sims.gather(1, idx), idx


# ----------------------------------------------------------------------------- normalize

def test_normalize_gives_unit_float32_rows_and_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]], dtype=np.float64)
    n = normalize(x)
    assert n.dtype == torch.float32
    assert torch.allclose(n, torch.tensor([[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]]))
    assert torch.allclose(normalize(torch.tensor([0.0, 2.0])), torch.tensor([0.0, 1.0]))


# ----------------------------------------------------------------------------- knn

@pytest.mark.parametrize("k", [1, 5, 12])
@pytest.mark.parametrize("block_size", [1, 3, 7, 16, 40, 8192])
def test_blocked_knn_equals_brute_force(k, block_size):
    # 37 queries x 53 candidates: no block size divides both; blocks of 1, 3 and 7 are
    # smaller than k=12, so the running top-k has to merge across many blocks.
    q, c = _randn(37, 16, seed=1), _randn(53, 16, seed=2)
    ref_scores, ref_idx = _brute_topk(q, c, k)
    scores, idx = knn(q, c, k, block_size=block_size)
    assert idx.shape == (37, k) and idx.dtype == torch.int64
    assert scores.dtype == torch.float32
    assert torch.equal(idx, ref_idx)
    assert torch.allclose(scores, ref_scores, atol=1e-6)
    assert bool((scores[:, :-1] >= scores[:, 1:]).all())  # best first


def test_knn_never_builds_a_block_larger_than_block_size(monkeypatch):
    shapes = []
    original = R._similarity_block

    def spy(q, c):
        shapes.append((q.shape[0], c.shape[0]))
        return original(q, c)

    monkeypatch.setattr(R, "_similarity_block", spy)
    q, c = _randn(23, 8, seed=3), _randn(31, 8, seed=4)
    knn(q, c, 4, block_size=5)
    # blocked over both sides: ceil(23/5) * ceil(31/5) blocks of at most 5 x 5
    assert len(shapes) == math.ceil(23 / 5) * math.ceil(31 / 5)
    assert max(max(s) for s in shapes) == 5


@pytest.mark.parametrize("block_size", [1, 2, 4, 8192])
def test_ties_go_to_the_lower_candidate_index(block_size):
    e1, e2, e3 = torch.eye(3)
    # exact unit vectors: every similarity is exactly 0.0 or 1.0
    cands = torch.stack([e2, e1, e1, e3, e1, e2])
    queries = torch.stack([e1, e2])
    scores, idx = knn(queries, cands, 4, block_size=block_size)
    # e1: 1.0 at 1, 2, 4 (in index order), then the first of the 0.0 ties (index 0)
    # e2: 1.0 at 0, 5, then 0.0 ties at 1, 2 (lowest indices)
    assert idx.tolist() == [[1, 2, 4, 0], [0, 5, 1, 2]]
    assert scores.tolist() == [[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]]
    assert nearest(torch.stack([e3, e2]), cands, block_size=block_size).tolist() == [3, 0]
    # 40 exact copies of e1 (at 1, 4, 7, ...): a plain top-k picks any 4 of them
    many = torch.eye(3)[torch.tensor([1, 0, 2] * 40)]
    assert knn(e1[None], many, 4, block_size=block_size)[1].tolist() == [[1, 4, 7, 10]]
    # ... and with the whole tie group inside the top-k (then a 0.6 at 120), in index order
    many = torch.cat([many, torch.tensor([[0.6, 0.8, 0.0]])])
    assert knn(e1[None], many, 41, block_size=block_size)[1].tolist() == [
        list(range(1, 120, 3)) + [120]]


def test_numpy_input_and_faiss_flag_give_the_same_neighbours():
    q, c = _randn(20, 12, seed=5), _randn(30, 12, seed=6)
    _, ref = knn(q, c, 3)
    _, from_numpy = knn(q.numpy(), c.numpy().astype(np.float64), 3, block_size=7)
    assert torch.equal(from_numpy, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "faiss not installed" where it is missing
        _, with_flag = knn(q, c, 3, use_faiss=True)
    assert torch.equal(with_flag.cpu(), ref)


def test_dot_metric_ranks_by_inner_product_not_cosine():
    q = torch.tensor([[1.0, 0.0]])
    c = torch.tensor([[1.0, 0.0], [10.0, 1.0]])  # cos 1.0 vs 0.995; dot 1 vs 10
    assert rank(q, c, k=2).tolist() == [[0, 1]]
    assert rank(q, c, k=2, metric="dot").tolist() == [[1, 0]]


def test_rank_and_nearest():
    c = _randn(25, 10, seed=7)
    q = c + 0.01 * _randn(25, 10, seed=8)  # Tatoeba-like: query i translates candidate i
    assert torch.equal(nearest(q, c, block_size=6), torch.arange(25))
    top = rank(q, c, k=20, block_size=6)
    assert top.shape == (25, 20)
    assert torch.equal(top, _brute_topk(q, c, 20)[1])
    assert rank(q[:2], c[:5], k=20).shape == (2, 5)  # fewer candidates than k


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    q, c = _randn(300, 64, seed=9), _randn(500, 64, seed=10)
    s_cpu, i_cpu = knn(q, c, 5, block_size=128)
    s_gpu, i_gpu = knn(q.cuda(), c.cuda(), 5, block_size=128)
    assert i_gpu.device.type == "cuda"
    assert torch.equal(i_gpu.cpu(), i_cpu)
    assert torch.allclose(s_gpu.cpu(), s_cpu, atol=1e-5)
    mined_gpu = bucc_mine(q.cuda(), c.cuda(), block_size=64)
    mined_cpu = bucc_mine(q, c, block_size=64)
    assert [m[:2] for m in mined_gpu] == [m[:2] for m in mined_cpu]
    assert [m[2] for m in mined_gpu] == pytest.approx([m[2] for m in mined_cpu], rel=1e-5)


# ----------------------------------------------------------------------------- BUCC mining

def test_margin_scores_match_hand_computation():
    src = torch.eye(3)  # s0, s1, s2 = e1, e2, e3
    trg = torch.tensor([[0.6, 0.8, 0.0],   # t0
                        [0.0, 0.0, 1.0],   # t1
                        [0.8, 0.0, 0.6]])  # t2
    # cos(s_i, t_j) = t_j[i]:   t0   t1   t2
    #                     s0   .6   0    .8
    #                     s1   .8   0    0
    #                     s2   0    1    .6
    # k=2 mean cos of each source over its 2 nearest targets:
    #   s0 (.8+.6)/2 = .7   s1 (.8+0)/2 = .4   s2 (1+.6)/2 = .8
    # and of each target over its 2 nearest sources:
    #   t0 (.8+.6)/2 = .7   t1 (1+0)/2 = .5    t2 (.8+.6)/2 = .7
    # margin(i, j) = cos / ((mean_i + mean_j) / 2):
    #   forward  s0: t2 .8/.7 = 8/7 (t0: .6/.7)      s1: t0 .8/.55 = 16/11 (t1: 0)
    #            s2: t1 1/.65 = 20/13 (t2: .6/.75)
    #   backward t0: s1 16/11 (s0: .6/.7)            t1: s2 20/13 (s0: 0)
    #            t2: s0 8/7 (s2: .6/.75)
    # max strategy, best first: (2,1) 20/13, (1,0) 16/11, (0,2) 8/7
    mined = bucc_mine(src, trg, k=2)
    assert [m[:2] for m in mined] == [(2, 1), (1, 0), (0, 2)]
    assert [m[2] for m in mined] == pytest.approx([20 / 13, 16 / 11, 8 / 7], rel=1e-6)


def test_max_strategy_pools_both_directions_one_to_one():
    src = torch.tensor([[1.0, 0.0], [0.8, 0.6]])
    trg = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # k=1: cos s0-t0 1, s1-t0 .8, s1-t1 .6, s0-t1 0.
    # forward: s0->t0 1/((1+1)/2) = 1;  s1->t0 .8/((.8+1)/2) = 8/9
    # backward: t0->s0 1;               t1->s1 .6/((.6+.8)/2) = 6/7
    # max: (0,0) 1 taken; (1,0) 8/9 dropped (t0 taken); (1,1) 6/7 kept (from backward)
    mined = bucc_mine(src, trg, k=1)
    assert [m[:2] for m in mined] == [(0, 0), (1, 1)]
    assert mined[1][2] == pytest.approx(6 / 7, rel=1e-6)
    assert [m[:2] for m in bucc_mine(src, trg, k=1, retrieval="fwd")] == [(0, 0), (1, 0)]
    assert [m[:2] for m in bucc_mine(src, trg, k=1, retrieval="intersect")] == [(0, 0)]


def test_planted_parallel_pairs_are_mined():
    n, extra, dim = 80, 40, 32
    src = _randn(n, dim, seed=11)
    perm = torch.randperm(n + extra, generator=torch.Generator().manual_seed(12))
    trg = _randn(n + extra, dim, seed=13)  # distractors everywhere ...
    trg[perm[:n]] = src + 0.1 * _randn(n, dim, seed=14)  # ... except at the planted rows
    planted = {(i, int(perm[i])) for i in range(n)}
    for block_size in (7, 8192):
        mined = bucc_mine(src, trg, block_size=block_size)
        assert {(i, j) for i, j, _ in mined} == planted
        assert all(s > 1.0 for _, _, s in mined)
    # the ids/threshold half of the pipeline on top
    cands = [(f"s{i}", f"t{j}", s) for i, j, s in mined]
    gold = {(f"s{i}", f"t{j}") for i, j in planted}
    threshold, prf = tune_threshold(cands, gold)
    assert prf == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert apply_threshold(cands, threshold) == gold


# ----------------------------------------------------------------------------- thresholds

def test_tune_threshold_hand_made():
    cands = [("s1", "t1", 0.9), ("s2", "t2", 0.8), ("s3", "t9", 0.7), ("s4", "t4", 0.6),
             ("s5", "t8", 0.5), ("s4", "t4", 0.1)]  # repeated pair: its best score counts
    gold = {("s1", "t1"), ("s2", "t2"), ("s4", "t4"), ("s6", "t6")}  # s6-t6 never found
    # prefix F1 = 2*correct / (extracted + 4): .9 -> 2/5, .8 -> 4/6, .7 -> 4/7, .6 -> 6/8,
    # .5 -> 6/9; best after .6, threshold halfway to .5; P = R = F1 = 3/4
    threshold, prf = tune_threshold(cands, gold)
    assert threshold == pytest.approx(0.55)
    assert prf == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75})
    assert apply_threshold(cands, threshold) == {("s1", "t1"), ("s2", "t2"), ("s3", "t9"),
                                                 ("s4", "t4")}
    assert apply_threshold(cands, 0.6) == apply_threshold(cands, threshold)  # >= keeps 0.6


def test_tune_threshold_cuts_only_between_distinct_scores():
    # A per-item sweep would stop after b-2 (F1 2*2/(2+2) = 1) and pick threshold .5, which
    # really extracts all three .5 pairs (F1 2*2/(4+2) = 2/3). Counted as extracted:
    # cut at .9 -> 2*1/(1+2) = 2/3, cut at .5 -> 2/3; equal F1 keeps the higher threshold.
    cands = [("a", "1", 0.9), ("b", "2", 0.5), ("c", "3", 0.5), ("d", "4", 0.5)]
    threshold, prf = tune_threshold(cands, {("a", "1"), ("b", "2")})
    assert threshold == pytest.approx(0.7)
    assert prf == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3})


def test_tune_threshold_without_any_correct_candidate():
    threshold, prf = tune_threshold([("a", "1", 0.3), ("b", "2", 0.2)], {("a", "2")})
    assert threshold == 0.0 and prf == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.parametrize("seed", range(12))
def test_tune_threshold_matches_brute_force_sweep(seed):
    rng = random.Random(seed)
    cands = [(f"s{rng.randrange(40)}", f"t{rng.randrange(40)}", round(rng.random(), 1))
             for _ in range(150)]  # rounded scores: many ties, some repeated pairs
    pairs = sorted({(s, t) for s, t, _ in cands})
    gold = set(rng.sample(pairs, len(pairs) // 3)) | {("s99", "t99"), ("s98", "t98")}
    best_f1, best_t = Fraction(-1), None
    for t in sorted({s for _, _, s in cands}, reverse=True):  # every candidate score
        extracted = apply_threshold(cands, t)
        correct = len(extracted & gold)
        f1 = Fraction(2 * correct, len(extracted) + len(gold))  # == 2PR/(P+R), exactly
        if f1 > best_f1:
            best_f1, best_t = f1, t
    threshold, prf = tune_threshold(cands, gold)
    assert prf["f1"] == pytest.approx(float(best_f1), abs=1e-12)
    assert apply_threshold(cands, threshold) == apply_threshold(cands, best_t)
    extracted = apply_threshold(cands, threshold)
    assert prf["precision"] == pytest.approx(len(extracted & gold) / len(extracted))
    assert prf["recall"] == pytest.approx(len(extracted & gold) / len(gold))


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("call, message", [
    (lambda: knn(torch.zeros(3), torch.ones(4, 3), 1), "2-D"),
    (lambda: knn(torch.ones(2, 3), torch.ones(4, 5), 1), "dim 3 but candidates have dim 5"),
    (lambda: knn(torch.ones(0, 3), torch.ones(4, 3), 1), "queries is empty"),
    (lambda: knn(torch.ones(2, 3), torch.ones(0, 3), 1), "candidates is empty"),
    (lambda: knn(torch.ones(2, 3), torch.ones(4, 3), 5), "exceeds the number of candidates"),
    (lambda: knn(torch.ones(2, 3), torch.ones(4, 3), 0), "k must be a positive integer"),
    (lambda: knn(torch.ones(2, 3), torch.ones(4, 3), 1, block_size=0), "block_size"),
    (lambda: knn(torch.ones(2, 3), torch.ones(4, 3), 1, metric="l2"), "metric"),
    (lambda: knn(torch.tensor([[float("nan"), 1.0]]), torch.ones(4, 2), 1), "NaN"),
    (lambda: knn([[1.0]], torch.ones(4, 1), 1), "numpy array"),
    (lambda: nearest(torch.ones(2, 3), torch.ones(2, 4)), "dim 3 but candidates have dim 4"),
    (lambda: rank(torch.ones(2, 3), torch.ones(0, 3)), "candidates is empty"),
    (lambda: bucc_mine(torch.ones(2, 3), torch.ones(2, 4)), "src have dim 3 but trg"),
    (lambda: bucc_mine(torch.ones(2, 3), torch.ones(0, 3)), "trg is empty"),
    (lambda: bucc_mine(torch.ones(2, 3), torch.ones(2, 3), retrieval="union"), "retrieval"),
    (lambda: normalize(torch.ones(0, 3)), "non-empty"),
    (lambda: tune_threshold([], {("a", "b")}), "candidates is empty"),
    (lambda: tune_threshold([("a", "b", 1.0)], set()), "gold"),
    (lambda: tune_threshold([("a", "b")], {("a", "b")}), "(src, trg, score)"),
])
def test_shape_and_input_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
