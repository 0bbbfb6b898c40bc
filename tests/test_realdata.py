"""Readers and `adapterxl score` on real public files (../shared/realdata, see its README).

The files are never committed; every test skips with a reason when they are absent. Expected
numbers are either XTREME's own (its evaluate_test.py golden scores, the UD token counts of its
preprocessing quoted in issue 15) or derived here from the files independently of the readers.
"""
from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from adapterxl.data.readers import (
    load_local, read_bucc, read_conllu, read_squad_json, read_tatoeba, read_tsv)
from adapterxl.tasks import get_task

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def real(*parts) -> Path:
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not here: {path} (see ../shared/realdata/README.md)")
    return path


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- adapterxl score

# XTREME's evaluate_test.py: TASK2AVG_SCORES and XTREME_R_TASK2AVG_SCORES
GOLDEN = {
    "pawsx": {"accuracy": 51.42857142857143}, "xnli": {"accuracy": 30.666666666666668},
    "panx": {"f1": 57.50793650793652, "precision": 54.729166666666664,
             "recall": 62.750000000000014},
    "udpos": {"f1": 70.21746048354693, "precision": 71.02232625883823,
              "recall": 69.54982073976082},
    "bucc2018": {"f1": 55.0, "precision": 55.0, "recall": 55.0},
    "tatoeba": {"accuracy": 53.611111111111114},
    "xquad": {"exact_match": 77.27272727272727, "f1": 79.9586776859504},
    "mlqa": {"exact_match": 57.142857142857146, "f1": 81.76870748299321},
    "tydiqa": {"exact_match": 88.88888888888889, "f1": 97.22222222222223},
}
GOLDEN_R = {"mewslix": {"map@20": 14.39025156130419}}


def run_score(*args):
    from click.testing import CliRunner

    from adapterxl.cli import main

    return CliRunner().invoke(main, ["score", *map(str, args)])


def test_score_reproduces_xtreme_golden_scores_on_its_mock_data():
    mock = real("xtreme", "mock_test_data")
    out = run_score(mock / "predictions", mock / "labels", "--json")
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert set(result["tasks"]) == set(GOLDEN)
    for task, averages in GOLDEN.items():
        assert result["tasks"][task]["average"] == pytest.approx(averages, abs=1e-9), task
    scores = {t: r["score"] for t, r in result["tasks"].items()}
    assert scores["xquad"] == pytest.approx((GOLDEN["xquad"]["exact_match"]
                                             + GOLDEN["xquad"]["f1"]) / 2)
    assert result["groups"]["all_task"] == pytest.approx(sum(scores.values()) / len(scores))
    assert result["groups"]["retrieval"] == pytest.approx(
        (scores["bucc2018"] + scores["tatoeba"]) / 2)
    table = run_score(mock / "predictions", mock / "labels")
    assert "| udpos | 33 |" in table.output and "all_task: " in table.output


def test_score_xtreme_r_subset_and_missing_language(tmp_path):
    mock = real("xtreme", "mock_test_data")
    for side in ("predictions", "labels"):
        for task in ("xnli", "mewslix", "mlqa", "tydiqa"):
            shutil.copytree(mock / side / task, tmp_path / side / task)
    out = run_score(tmp_path / "predictions", tmp_path / "labels", "--suite", "xtreme-r",
                    "--json")
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    for task, averages in {**GOLDEN_R, "xnli": GOLDEN["xnli"], "mlqa": GOLDEN["mlqa"],
                           "tydiqa": GOLDEN["tydiqa"]}.items():
        assert result["tasks"][task]["average"] == pytest.approx(averages, abs=1e-9), task
    assert "all_task" not in result["groups"]  # not every XTREME-R task was scored
    (tmp_path / "labels" / "xnli" / "test-de.tsv").unlink()
    out = run_score(tmp_path / "predictions", tmp_path / "labels", "--suite", "xtreme-r")
    assert out.exit_code == 2
    assert out.output.strip().splitlines() == [
        f"error: {tmp_path / 'labels' / 'xnli' / 'test-de.tsv'} is not available (xnli is "
        f"scored over all its xtreme-r languages)"]


# --------------------------------------------------------------------------- UD


def conllu_counts(path: Path) -> tuple[int, int, int]:
    """(sentences, syntactic words, surface tokens) counted from the file's id column."""
    sentences = words = merged = 0
    in_sentence = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            sentences += in_sentence
            in_sentence = False
            continue
        if line.startswith("#"):
            continue
        in_sentence = True
        first = line.split("\t", 1)[0]
        if first.isdigit():
            words += 1
        elif "-" in first:
            a, b = map(int, first.split("-"))
            merged += b - a  # a span of b-a+1 words is one token
    return sentences + in_sentence, words, words - merged


@pytest.mark.parametrize("name, lang, sentences, tokens", [
    ("en_ewt-ud-test.conllu", "en", 2077, 24740),   # XTREME's test-en: 2,077 / 24,740
    ("de_gsd-ud-test.conllu", "de", 977, 16225),    # XTREME's test-de: 977 / 16,225
])
def test_ud_counts_as_xtreme_preprocesses(tmp_path, name, lang, sentences, tokens):
    path = real("ud", name)
    assert conllu_counts(path)[::2] == (sentences, tokens)
    shutil.copy(path, tmp_path / f"test.{lang}.conllu")
    rows = load_local(get_task("udpos"), tmp_path, "test", lang)
    assert len(rows) == sentences
    assert sum(len(r["tokens"]) for r in rows) == tokens
    assert all(r["tags"] is not None and len(r["tags"]) == len(r["tokens"]) for r in rows)
    split = read_conllu(path, multiword="split")
    assert sum(len(r["tokens"]) for r in split) == conllu_counts(path)[1]


def test_ud_multiword_token_keeps_a_tag_of_its_words():
    path = real("ud", "de_gsd-ud-test.conllu")
    spans = {}  # surface form -> tags of its words, over the file
    lines = path.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines):
        first = line.split("\t", 1)[0]
        if "-" in first and first[0].isdigit():
            a, b = map(int, first.split("-"))
            form = line.split("\t")[1]
            spans.setdefault(form, set()).update(lines[i + 1 + k].split("\t")[3]
                                                 for k in range(b - a + 1))
    rows = read_conllu(path)
    seen = 0
    for r in rows:
        for token, tag in zip(r["tokens"], r["tags"]):
            if token in spans and token not in ("_",):
                seen += 1
                assert tag in spans[token], (token, tag)
    assert seen > 100  # "im", "zum", "am", ... occur hundreds of times
    assert Counter(t for r in rows for t, g in zip(r["tokens"], r["tags"])
                   if t == "im" and g == "ADP")["im"] > 50


# --------------------------------------------------------------------------- XQuAD, XCOPA


def test_xquad_all_languages_1190_questions_with_answers(tmp_path):
    folder = real("xquad")
    langs = sorted(p.name.split(".")[1] for p in folder.glob("xquad.*.json"))
    assert len(langs) == 12
    for lang in langs:
        rows = read_squad_json(folder / f"xquad.{lang}.json")
        assert len(rows) == 1190, lang
        assert all(r["answers"] for r in rows)
    shutil.copytree(folder, tmp_path / "xquad")  # XTREME's download layout
    rows = load_local(get_task("xquad"), tmp_path, "test", "de")
    assert len(rows) == 1190 and rows[0]["answers"][0]["text"] in rows[0]["context"]


def test_xcopa_labels_and_xtreme_zeroed_test_labels(tmp_path):
    data = real("xcopa", "data")
    task = get_task("xcopa")
    for lang in ("et", "zh"):
        gold = [json.loads(line)["label"] for line in
                (data / lang / f"test.{lang}.jsonl").read_text(encoding="utf-8").splitlines()]
        rows = load_local(task, data / lang, "test", lang)
        assert len(rows) == 500 and [r["label"] for r in rows] == gold
        assert len(load_local(task, data / lang, "validation", lang)) == 100
        # XTREME's xcopa_preprocess sets every test label to 0 in download/xcopa/test-<lang>
        xcopa = mkdir(tmp_path / "download" / "xcopa")
        with open(xcopa / f"test-{lang}.jsonl", "w", encoding="utf-8") as f:
            for line in (data / lang / f"test.{lang}.jsonl").read_text().splitlines():
                f.write(json.dumps(dict(json.loads(line), label=0)) + "\n")
        hidden = load_local(task, tmp_path / "download", "test", lang)
        assert len(hidden) == 500 and all(r["label"] is None for r in hidden)


# --------------------------------------------------------------------------- Tatoeba


def test_tatoeba_gold_as_xtreme_writes_it(tmp_path):
    src_file, trg_file = real("tatoeba", "tatoeba.deu-eng.deu"), real("tatoeba",
                                                                      "tatoeba.deu-eng.eng")
    aligned = read_tatoeba(src_file, trg_file, "de")
    assert len(aligned["queries"]) == 1000 == len(aligned["gold"])
    # XTREME's tatoeba_preprocess: the English side sorted; the hidden label of sorted line k
    # is the line number of its original position (= its German translation's line)
    deu = src_file.read_text(encoding="utf-8").splitlines()
    eng = trg_file.read_text(encoding="utf-8").splitlines()
    order = sorted(range(len(eng)), key=lambda i: eng[i].strip())
    (tmp_path / "de-en.de").write_text("\n".join(deu) + "\n", encoding="utf-8")
    (tmp_path / "de-en.en").write_text("".join(eng[i].strip() + "\n" for i in order),
                                       encoding="utf-8")
    (tmp_path / "test-de.tsv").write_text("".join(f"{i}\n" for i in order))
    corpus = read_tatoeba(tmp_path / "de-en.de", tmp_path / "de-en.en", "de",
                          gold=tmp_path / "test-de.tsv")
    text = {c["id"]: c["text"] for c in corpus["candidates"]}
    right = sum(text[cs[0]] == eng[int(q.split("-")[1])].strip()
                for q, cs in corpus["gold"].items())
    assert right == 1000
    # adapterxl's own Tatoeba prediction file has the same orientation: written from the
    # gold it is the label file
    from adapterxl.formats import get_format

    source = {c: q for q, cs in corpus["gold"].items() for c in cs}
    preds = [source[c["id"]] for c in corpus["candidates"]]
    get_format("retrieval").write(preds, corpus, None, tmp_path / "pred.tsv")
    assert (tmp_path / "pred.tsv").read_text() == (tmp_path / "test-de.tsv").read_text()


# --------------------------------------------------------------------------- BUCC


def xtreme_bucc_f1(x, y, src_lines, trg_lines, gold_lines):
    """XTREME's procedure written out plainly (utils_retrieve.py: text_load_unify,
    mine_bitext(mode='mine', retrieval='max', margin='ratio', k=4), read_sent2id,
    bucc_optimize, bucc_extract), on embeddings given per line."""
    def unify(lines):
        index, first = {}, []
        for i, (_, text) in enumerate(lines):
            if text not in index:
                index[text] = len(first)
                first.append(i)
        return first

    def sent2id(lines):
        count = Counter(t for _, t in lines)
        return {t: i for i, t in reversed(lines) if count[t] == 1}

    xs, ys = unify(src_lines), unify(trg_lines)
    x = (x[xs] / np.linalg.norm(x[xs], axis=1, keepdims=True)).astype(np.float32)
    y = (y[ys] / np.linalg.norm(y[ys], axis=1, keepdims=True)).astype(np.float32)
    k = 4

    def knn(a, b):  # the k most similar rows of b for each row of a, best first
        import torch

        a, b = torch.from_numpy(a), torch.from_numpy(b)
        return torch.cat([torch.topk(a[s:s + 2048] @ b.T, k, dim=1).indices
                          for s in range(0, len(a), 2048)]).numpy()

    def cos(i, j):
        return float(x[i] @ y[j])

    fwd_ind, bwd_ind = knn(x, y), knn(y, x)
    fwd_mean = np.array([np.mean([cos(i, j) for j in row]) for i, row in enumerate(fwd_ind)])
    bwd_mean = np.array([np.mean([cos(i, j) for i in row]) for j, row in enumerate(bwd_ind)])
    fwd = np.array([[cos(i, j) / ((fwd_mean[i] + bwd_mean[j]) / 2) for j in fwd_ind[i]]
                    for i in range(len(xs))])
    bwd = np.array([[cos(i, j) / ((fwd_mean[i] + bwd_mean[j]) / 2) for i in bwd_ind[j]]
                    for j in range(len(ys))])
    fwd_best = fwd_ind[np.arange(len(xs)), fwd.argmax(1)]
    bwd_best = bwd_ind[np.arange(len(ys)), bwd.argmax(1)]
    pairs = list(zip(range(len(xs)), fwd_best)) + list(zip(bwd_best, range(len(ys))))
    scores = np.concatenate([fwd.max(1), bwd.max(1)])
    seen_s, seen_t, mined = set(), set(), []
    for p in np.argsort(-scores, kind="stable"):
        i, j = pairs[p]
        if i not in seen_s and j not in seen_t:
            seen_s.add(i)
            seen_t.add(j)
            if scores[p] > 0:
                mined.append((src_lines[xs[i]][1], trg_lines[ys[j]][1], scores[p]))
    s2id, t2id = sent2id(src_lines), sent2id(trg_lines)
    cand = {}
    for s, t, score in mined:
        if s in s2id and t in t2id:
            key = (s2id[s], t2id[t])
            cand[key] = max(score, cand.get(key, score))
    gold = set(gold_lines)
    items = sorted(cand.items(), key=lambda kv: -kv[1])
    best = threshold = ncorrect = 0
    for n, (key, score) in enumerate(items, 1):
        ncorrect += key in gold
        if ncorrect:
            p, r = ncorrect / n, ncorrect / len(gold)
            if 2 * p * r / (p + r) > best:
                best = 2 * p * r / (p + r)
                threshold = (score + items[n][1]) / 2
    extracted = {key for key, score in cand.items() if score >= threshold}
    correct = len(extracted & gold)
    return 2 * correct / (len(extracted) + len(gold)), extracted


@pytest.mark.slow
def test_bucc_real_sample_mining_f1_equals_xtreme_procedure():
    folder = real("bucc2018")
    corpus = read_bucc(folder, "zh", "dev")

    def lines(path):
        return [tuple(x.strip() for x in line.split("\t", 1))
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    zh, en = lines(folder / "zh-en.dev.zh"), lines(folder / "zh-en.dev.en")
    gold_lines = {tuple(line.split()) for line in
                  (folder / "zh-en.dev.gold").read_text().splitlines() if line.strip()}
    repeated = {side: [t for t, c in Counter(t for _, t in rows).items() if c > 1]
                for side, rows in (("queries", zh), ("candidates", en))}
    assert len(corpus["queries"]) == len({t for _, t in zh}) < len(zh) == 8624
    assert len(corpus["candidates"]) == len({t for _, t in en}) < len(en) == 13589
    assert {k: len(v) for k, v in corpus["repeated"].items()} == {
        k: len(v) for k, v in repeated.items()}
    assert {(q, c) for q, cs in corpus["gold"].items() for c in cs} == gold_lines
    # Embeddings: a sentence's vector depends only on its text (so repeats share it), and the
    # English side of a gold pair is a noisy copy of its Chinese sentence's vector.
    dim, rng = 24, np.random.default_rng(0)
    zh_text = dict(zh)
    base = {t: rng.standard_normal(dim) for t in sorted({t for _, t in zh} | {t for _, t in en})}
    partner = {}
    for s, t in sorted(gold_lines):
        partner.setdefault(dict(en)[t], zh_text[s])
    noise = {t: rng.standard_normal(dim) for t in sorted(base)}
    # a repeated English sentence is a close copy of a Chinese sentence outside the gold, so
    # the pair is mined with a high score: only the duplicate rule keeps it out
    gold_zh = {zh_text[s] for s, _ in gold_lines}
    spare = sorted({t for _, t in zh} - gold_zh - set(repeated["queries"]))
    partner.update(zip(sorted(repeated["candidates"]), spare))

    def vec(text, english):
        if english and text in partner:
            scale = 0.2 if text in repeated["candidates"] else 0.9
            return base[partner[text]] + scale * noise[text]
        return base[text]

    x = np.array([vec(t, False) for _, t in zh])
    y = np.array([vec(t, True) for _, t in en])
    expected_f1, expected_pairs = xtreme_bucc_f1(x, y, zh, en, gold_lines)

    import torch

    from adapterxl.scoring import metrics, neighbours as retrieval
    from adapterxl.formats.retrieval import _pairs, mined_pairs

    zh_row = {d: i for i, (d, _) in enumerate(zh)}
    en_row = {d: i for i, (d, _) in enumerate(en)}
    q = torch.tensor(x[[zh_row[r["id"]] for r in corpus["queries"]]], dtype=torch.float32)
    c = torch.tensor(y[[en_row[r["id"]] for r in corpus["candidates"]]], dtype=torch.float32)
    candidates = mined_pairs(q, c, corpus)
    threshold, _ = retrieval.tune_threshold(candidates, _pairs(corpus["gold"]))
    pairs = set(retrieval.apply_threshold(candidates, threshold))
    values = metrics.bucc_f1(pairs, gold_lines)
    assert 0.2 < expected_f1 < 0.95  # the noise leaves something to get wrong
    assert pairs == expected_pairs and len(pairs) > 50
    assert values["f1"] == pytest.approx(expected_f1, abs=1e-12)


# --------------------------------------------------------------------------- XNLI, PAWS-X, STS-B


def xtreme_writes_and_reads(rows, path: Path):
    """utils_preprocess.py writes with csv.writer(delimiter='\\t'); the processors read with
    csv.reader(delimiter='\\t', quotechar=None). Returns what the model gets."""
    with open(path, "w", encoding="utf-8") as f:
        csv.writer(f, delimiter="\t").writerows(rows)
    with open(path, encoding="utf-8-sig") as f:
        return [tuple(r[:2]) for r in csv.reader(f, delimiter="\t", quotechar=None)]


def test_german_xnli_counts_labels_and_xtreme_input(tmp_path):
    path = real("supergleber_xglue", "xnli-de-test.txt")
    task = get_task("xnli")
    raw = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    rows = read_tsv(task, path, header=False)
    assert len(rows) == 5010 == len(raw)
    assert Counter(task.labels[r["label"]] for r in rows) == Counter(r[2] for r in raw)
    assert set(Counter(r[2] for r in raw).values()) == {1670}
    fed = xtreme_writes_and_reads([r[:3] for r in raw], mkdir(tmp_path / "xnli") / "dev-de.tsv")
    got = load_local(task, tmp_path, "validation", "de")
    assert [r["text"] for r in got] == fed


def test_german_pawsx_counts_labels_and_xtreme_input(tmp_path):
    path = real("supergleber_xglue", "pawsx-de-test.tsv")
    task = get_task("pawsx")
    raw = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    shutil.copy(path, tmp_path / "test.de.tsv")  # adapterxl's layout: the file as published
    rows = load_local(task, tmp_path, "test", "de")
    assert len(rows) == 2000 == len(raw)
    assert [task.labels[r["label"]] for r in rows] == [r[3] for r in raw]
    # XTREME's pawsx_preprocess reads the fields by splitting on tabs, writes them with
    # csv.writer, and its processor reads them back without unquoting
    fed = xtreme_writes_and_reads([(r[1].strip(), r[2].strip(), r[3]) for r in raw],
                                  mkdir(tmp_path / "download" / "pawsx") / "dev-de.tsv")
    got = load_local(task, tmp_path / "download", "validation", "de")
    assert [r["text"] for r in got] == fed
    differs = sum(f != (r[1].strip(), r[2].strip()) for f, r in zip(fed, raw))
    assert differs == 134  # issue 15: the rows where the model sees CSV quote marks


def test_stsb_multi_mt_csv(tmp_path):
    path = real("stsb_multi_mt", "stsb-de-test.csv")
    with open(path, encoding="utf-8", newline="") as f:
        raw = list(csv.reader(f))
    shutil.copy(path, tmp_path / "test.de.csv")
    rows = load_local(get_task("stsb_multi"), tmp_path, "test", "de")
    assert len(rows) == 1379 == len(raw)
    assert [r["label"] for r in rows] == [float(r[2]) for r in raw]
    assert [r["text"] for r in rows] == [(r[0], r[1]) for r in raw]
