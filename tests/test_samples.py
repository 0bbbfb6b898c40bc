"""The bundled synthetic samples of every task format (resources/make_samples.py): they are
what the generator writes, QA offsets are exact, labels are balanced and in their sets,
retrieval gold ids exist, the bundled tokenizer covers them, and each format's label is
learnable from token ids by a cheap baseline (no training code involved)."""
import importlib.util
import json
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import adapterxl


def _script(name: str):
    """A build tool beside the bundled samples, loaded by path (the runtime package does not
    import them)."""
    path = Path(adapterxl.__file__).parent / "resources" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


st = _script("make_samples")
SAMPLES = st.default_samples_dir()
TOKENIZER = SAMPLES.parent / "tokenizer" / "tiny-multilingual.json"


@lru_cache(maxsize=None)
def generated() -> dict:
    return st.generate()


@lru_cache(maxsize=1)
def tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(TOKENIZER))


def rows(rel: str) -> list:
    return [json.loads(line) for line in generated()[rel].splitlines() if line.strip()]


def files_of(task: str) -> list:
    return sorted(rel for rel in generated() if rel.startswith(task + "/"))


def tasks_of(fmt: str) -> list:
    return [t for t, spec in st.TASKS.items() if spec[0] == fmt]


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def test_regenerating_gives_the_bundled_files(tmp_path):
    written = st.write_all(tmp_path)
    assert len(written) == len(generated())
    for path in written:
        rel = path.relative_to(tmp_path)
        assert (SAMPLES / rel).read_bytes() == path.read_bytes(), rel
    # ... and nothing stale next to them
    folders = {rel.split("/")[0] for rel in generated()}
    bundled = {p.relative_to(SAMPLES).as_posix() for folder in folders
               for p in (SAMPLES / folder).iterdir()}
    assert bundled == set(generated())


def test_layout_and_size():
    gen = generated()
    assert sum(len(text.encode("utf-8")) for text in gen.values()) < 4_000_000
    for task, (fmt, role, _, langs, _) in st.TASKS.items():
        names = {rel.split("/", 1)[1] for rel in files_of(task)}
        if role == "intermediate":
            assert names == {"train.jsonl", "validation.jsonl"}, task
            continue
        expected = {f"{split}.{lang}.jsonl" for lang in langs for split in ("validation", "test")}
        if role == "target":
            expected.add("train.en.jsonl")
        assert names == expected, task
    for lang in ("en", "de", "fr", "es", "sw", "zh", "ar"):
        lines = gen[f"text/{lang}.txt"].splitlines()
        assert len(lines) == st.TEXT_LINES and all(line.strip() for line in lines)


# ---------------------------------------------------------------------------
# Labels, tags, offsets, gold ids
# ---------------------------------------------------------------------------

def _balanced(labels, k):
    counts = Counter(labels)
    assert len(counts) == k, counts
    assert min(counts.values()) >= 0.8 * len(labels) / k, counts


@pytest.mark.parametrize("task", tasks_of("pair_classification"))
def test_classification_labels(task):
    for rel in files_of(task):
        data = rows(rel)
        assert all(len(r["text"]) == 2 and all(r["text"]) for r in data)
        assert {r["label"] for r in data} <= set(st.LABELS[task])
        _balanced([r["label"] for r in data], len(st.LABELS[task]))


@pytest.mark.parametrize("task", tasks_of("regression"))
def test_regression_scores(task):
    lo = 1.0 if task == "sickr" else 0.0
    for rel in files_of(task):
        scores = np.array([r["label"] for r in rows(rel)])
        assert all(isinstance(s, float) for s in scores)
        assert scores.min() >= lo and scores.max() <= 5.0
        assert scores.std() > 1.0  # spread over the whole range, not a constant
        assert (scores < lo + 1.5).mean() > 0.1 and (scores > 3.5).mean() > 0.1


@pytest.mark.parametrize("task, n", [("hellaswag", 4), ("cosmosqa", 4), ("commonsenseqa", 5),
                                     ("siqa", 3), ("copa", 2), ("xcopa", 2)])
def test_multiple_choice_labels(task, n):
    for rel in files_of(task):
        data = rows(rel)
        assert all(len(r["choices"]) == n and len(set(r["choices"])) == n for r in data), rel
        assert {r["label"] for r in data} <= {str(i) for i in range(n)}
        _balanced([r["label"] for r in data], n)


@pytest.mark.parametrize("task, tagset", [("udpos", st.UPOS_TAGS), ("panx", st.PANX_TAGS),
                                          ("ccg", st.CCG_TAGS)])
def test_tags_are_in_the_tag_set(task, tagset):
    for rel in files_of(task):
        data = rows(rel)
        seen = Counter()
        for r in data:
            assert len(r["tokens"]) == len(r["tags"]) > 0
            assert all(w and " " not in w for w in r["tokens"])
            seen.update(r["tags"])
        assert set(seen) <= set(tagset), rel
        if task != "ccg":
            assert set(seen) == set(tagset), rel  # every tag occurs in every file
        if task == "panx":  # IOB2: I-X only after B-X or I-X
            for r in data:
                for prev, tag in zip(["O"] + r["tags"], r["tags"]):
                    assert not tag.startswith("I-") or prev[2:] == tag[2:], r


@pytest.mark.parametrize("task", tasks_of("qa"))
def test_qa_answers_are_exact_spans(task):
    ids, n, unanswerable, non_ascii, long_ctx = set(), 0, 0, 0, 0
    for rel in files_of(task):
        data = rows(rel)
        enc = tokenizer().encode_batch([(r["question"], r["context"]) for r in data])
        long_ctx += sum(len(e.ids) > 128 for e in enc)
        for r in data:
            assert r["id"] not in ids
            ids.add(r["id"])
            n += 1
            unanswerable += not r["answers"]
            for a in r["answers"]:
                non_ascii += any(ord(c) > 127 for c in r["context"][:a["start"] + len(a["text"])])
                assert r["context"][a["start"]:a["start"] + len(a["text"])] == a["text"], r["id"]
                assert 1 <= len(a["text"].split()) <= 3
    if task == "squad_v2":
        assert 0.25 < unanswerable / n < 0.4
    else:
        assert unanswerable == 0
    assert long_ctx > 0.1 * n  # document stride matters
    # multi-byte text up to the answer's end: character offsets are not byte offsets
    assert non_ascii > 0.1 * n


def _retrieval(rel):
    queries = [r for r in rows(rel) if "query" in r]
    cands = [r for r in rows(rel) if "candidate" in r]
    return queries, cands


@pytest.mark.parametrize("task", tasks_of("retrieval"))
def test_retrieval_gold_ids_exist(task):
    for rel in files_of(task):
        queries, cands = _retrieval(rel)
        assert len(queries) + len(cands) == len(rows(rel))
        cand_ids = [c["id"] for c in cands]
        assert len(set(cand_ids)) == len(cand_ids)
        assert len({q["id"] for q in queries}) == len(queries)
        for q in queries:
            assert set(q["gold"]) <= set(cand_ids), (rel, q)
        golds = [len(q["gold"]) for q in queries]
        lang = rel.split(".")[-2]
        if task == "tatoeba":
            assert golds == [1] * len(queries) and len(cands) == len(queries)
        elif task == "bucc2018":
            assert len(queries) == len(cands) == 150 and sum(golds) == 40
            assert all(q["id"].startswith(f"{lang}-") and len(q["id"]) == 12 for q in queries)
            assert all(c["id"].startswith("en-") and len(c["id"]) == 12 for c in cands)
        elif task == "lareqa":
            assert min(golds) >= 2
        else:
            assert golds == [1] * len(queries)


# ---------------------------------------------------------------------------
# The bundled tokenizer
# ---------------------------------------------------------------------------

def _all_texts():
    mod = _script("make_tokenizer")
    texts = []
    for rel, text in generated().items():
        if rel.endswith(".txt"):
            texts += text.splitlines()
        else:
            texts += [t for line in text.splitlines() for t in mod._row_texts(json.loads(line))]
    return texts


def test_tokenizer_covers_the_samples_and_fits_the_builtin_backbone():
    from adapterxl.configs import BUILTIN

    tok = tokenizer()
    assert tok.get_vocab_size() <= BUILTIN["tiny-xlmr"]["vocab_size"]
    assert tok.token_to_id("<mask>") == tok.get_vocab_size() - 1
    unk = tok.token_to_id("<unk>")
    ids = [i for e in tok.encode_batch(_all_texts(), add_special_tokens=False) for i in e.ids]
    assert len(ids) > 100_000
    assert ids.count(unk) / len(ids) < 0.01


# ---------------------------------------------------------------------------
# Learnability: cheap bag-of-token-ids baselines reach well above chance
# ---------------------------------------------------------------------------

def _bags(texts, vocab_size, offset=0, out=None):
    out = np.zeros((len(texts), vocab_size), np.float32) if out is None else out
    for i, e in enumerate(tokenizer().encode_batch(list(texts), add_special_tokens=False)):
        for t in e.ids:
            out[i, offset + t] = 1.0
    return out


def _pair_features(data):
    v = tokenizer().get_vocab_size()
    x = _bags([r["text"][0] for r in data], 2 * v)
    return _bags([r["text"][1] for r in data], 2 * v, offset=v, out=x)


def _softmax_regression(x, y, k, steps=300, lr=1.0):
    """Multinomial logistic regression by full-batch gradient descent (features in [0, 1])."""
    used = x.any(0)
    x = x[:, used]
    w = np.zeros((x.shape[1], k), np.float32)
    b = np.zeros(k, np.float32)
    onehot = np.eye(k, dtype=np.float32)[y]
    for _ in range(steps):
        z = x @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(x)
        w -= lr * (x.T @ g + 1e-4 * w)
        b -= lr * g.sum(0)
    return lambda xs: (xs[:, used] @ w + b).argmax(1)


def _train_val(task):
    role = st.TASKS[task][1]
    if role == "intermediate":
        return rows(f"{task}/train.jsonl"), rows(f"{task}/validation.jsonl")
    return rows(f"{task}/train.en.jsonl"), rows(f"{task}/validation.en.jsonl")


@pytest.mark.parametrize("task", ["qqp", "paws", "pawsx", "anli_plus"])
def test_classification_is_learnable(task):
    train, val = _train_val(task)
    labels = list(st.LABELS[task])
    predict = _softmax_regression(_pair_features(train),
                                  np.array([labels.index(r["label"]) for r in train]), len(labels))
    acc = (predict(_pair_features(val)) == [labels.index(r["label"]) for r in val]).mean()
    assert acc > 1 / len(labels) + 0.3, acc


@pytest.mark.parametrize("task", ["stsb", "sickr", "stsb_multi"])
def test_regression_is_learnable(task):
    train, val = _train_val(task)

    def features(data):
        x = _pair_features(data)
        return x / x.sum(1, keepdims=True)  # token fractions, as mean pooling sees them

    x, y = features(train), np.array([r["label"] for r in train])
    used = x.any(0)
    x = x[:, used]
    xm, ym = x.mean(0), y.mean()
    w = np.linalg.solve((x - xm).T @ (x - xm) + 1e-2 * np.eye(x.shape[1]), (x - xm).T @ (y - ym))
    pred = (features(val)[:, used] - xm) @ w + ym
    r = np.corrcoef(pred, [r["label"] for r in val])[0, 1]
    assert r > 0.7, r


@pytest.mark.parametrize("task", ["hellaswag", "cosmosqa", "commonsenseqa", "siqa", "copa"])
def test_multiple_choice_is_learnable(task):
    train, val = _train_val(task)
    v = tokenizer().get_vocab_size()

    def choice_bags(data):  # [examples, choices, vocabulary]
        k = len(data[0]["choices"])
        return _bags([c for r in data for c in r["choices"]], v).reshape(len(data), k, v)

    def context_bags(data):
        return _bags([r["context"] for r in data], v)

    xs, ys = choice_bags(train), np.array([int(r["label"]) for r in train])
    vx, vy = choice_bags(val), np.array([int(r["label"]) for r in val])
    n, k, _ = xs.shape
    # 1. A linear scorer of each choice's tokens, trained with a softmax over the choices.
    used = xs.any((0, 1))
    x, w = xs[:, :, used], np.zeros(int(used.sum()), np.float32)
    onehot = np.eye(k, dtype=np.float32)[ys]
    for _ in range(200):
        z = x @ w
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= np.einsum("nk,nkv->v", p - onehot, x) / n
    acc = ((vx[:, :, used] @ w).argmax(1) == vy).mean()
    assert acc > 0.8, acc
    # 2. The context decides too: co-occurrence of context tokens with the correct choice's
    # tokens (minus the wrong choices') in training scores the validation choices.
    right = xs[np.arange(n), ys]
    wrong = (xs.sum(1) - right) / (k - 1)
    m = context_bags(train).T @ (right - wrong)
    acc = (np.einsum("nkv,nv->nk", vx, context_bags(val) @ m).argmax(1) == vy).mean()
    assert acc > 0.8, acc


@pytest.mark.parametrize("task, lang", [("udpos", "en"), ("udpos", "de"), ("udpos", "ar"),
                                        ("udpos", "zh"), ("panx", "en"), ("panx", "sw"),
                                        ("panx", "zh"), ("ccg", "en")])
def test_tagging_is_learnable(task, lang):
    """The most frequent tag per word, the word seen through the tokenizer: its first
    subword id in English (the training language: what a tagger's head sees), all of its
    ids elsewhere (the 2000-piece vocabulary splits many rarer target-language words, and
    most Chinese ones, into a bare "▁" and characters, as XLM-R does)."""
    if st.TASKS[task][1] == "intermediate":
        train, val = rows(f"{task}/train.jsonl"), rows(f"{task}/validation.jsonl")
    else:  # the language's validation and test rows, split in two
        data = rows(f"{task}/validation.{lang}.jsonl") + rows(f"{task}/test.{lang}.jsonl")
        train, val = data[::2], data[1::2]

    def keyed(data):
        enc = tokenizer().encode_batch([r["tokens"] for r in data], is_pretokenized=True,
                                       add_special_tokens=False)
        out = []
        for e, r in zip(enc, data):
            pieces = defaultdict(list)
            for t, w in zip(e.ids, e.word_ids):
                pieces[w].append(t)
            keys = [pieces[i][0] if lang == "en" else tuple(pieces[i])
                    for i in range(len(r["tags"]))]
            out += list(zip(keys, r["tags"]))
        return out

    counts = defaultdict(Counter)
    for key, tag in keyed(train):
        counts[key][tag] += 1
    majority = Counter(tag for _, tag in keyed(train)).most_common(1)[0][0]
    pairs = keyed(val)
    acc = np.mean([(counts[key].most_common(1)[0][0] if key in counts else majority) == tag
                   for key, tag in pairs])
    base = np.mean([tag == majority for _, tag in pairs])
    assert acc > 0.9 and acc > base + 0.2, (acc, base)


@pytest.mark.parametrize("task", tasks_of("retrieval"))
def test_retrieval_is_findable_by_shared_tokens(task):
    """Cosine of binary bags of token ids (no learning) ranks a gold candidate first."""
    v = tokenizer().get_vocab_size()
    hits = total = 0
    for rel in files_of(task):
        queries, cands = _retrieval(rel)
        q = _bags([x["query"] for x in queries], v)
        c = _bags([x["candidate"] for x in cands], v)
        sims = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ \
            (c / np.linalg.norm(c, axis=1, keepdims=True)).T
        for i, x in enumerate(queries):
            if x["gold"]:
                total += 1
                hits += cands[int(sims[i].argmax())]["id"] in x["gold"]
    assert hits / total > 0.9, hits / total
