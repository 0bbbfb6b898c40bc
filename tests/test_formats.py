"""Preprocessing of each format on hand-made rows: QA spans survive document stride and
multi-byte text, tags align to first subwords, choices batch as [batch, choices, length]."""
import numpy as np
import pytest

from adapterxl.data.preprocess import Collator
from adapterxl.formats import get_format
from adapterxl.heads import IGNORE

CONTEXT = ("Die Stadt Zürich liegt am See. 北京是中国的首都。 Der Bär heißt Björn und wohnt "
           "im Wald. Nobody knows why the river is called Limmat. " * 3
           + "The answer hides here: the code is Müller-Straße 7, sagt man.")


class Task:
    """The slice of a catalogue entry the formats read."""
    name, metric, labels = "squad", "squad", None
    hyperparameters = {"doc_stride": 20}


def qa_row(answer="Müller-Straße 7", context=CONTEXT, rid="q1"):
    start = context.index(answer)
    return {"id": rid, "question": "Wie lautet der Code?", "context": context,
            "answers": [{"text": answer, "start": start}]}


def test_qa_span_survives_document_stride_and_multibyte_text(tiny):
    qa = get_format("qa")
    row = qa_row()
    features = qa.encode([row], tiny.tokenizer, 48, True, Task())
    assert len(features) > 3, "the context should need several windows"
    found = 0
    for f in features:
        s, e = f["labels"]
        if (s, e) == (0, 0):
            continue
        found += 1
        offsets = f["_offsets"]
        text = row["context"][offsets[s][0]:offsets[e][1]].strip()
        assert text == "Müller-Straße 7"
    assert found >= 1
    # Windows overlap: consecutive windows share context characters.
    spans = [[o for o in f["_offsets"] if o is not None] for f in features]
    assert all(a[-1][1] > b[0][0] for a, b in zip(spans, spans[1:]))


def test_qa_decode_picks_the_best_span_across_windows(tiny):
    qa = get_format("qa")
    rows = [qa_row(), qa_row("Limmat", rid="q2")]
    features = qa.encode(rows, tiny.tokenizer, 48, True, Task())
    outputs = []
    for f in features:
        out = np.zeros((len(f["input_ids"]), 2))
        s, e = f["labels"]
        if (s, e) != (0, 0):
            out[s, 0] = out[e, 1] = 10.0
        outputs.append(out)
    assert qa.decode(outputs, features, rows, None, Task()) == ["Müller-Straße 7", "Limmat"]


def test_qa_v2_predicts_empty_answer_when_no_answer_scores_best(tiny):
    qa = get_format("qa")

    class V2(Task):
        metric = "squad_v2"

    row = qa_row()
    features = qa.encode([row], tiny.tokenizer, 48, False, V2())
    outputs = []
    for f in features:
        out = np.zeros((len(f["input_ids"]), 2))
        out[0] = 5.0  # <s>: no answer
        outputs.append(out)
    assert qa.decode(outputs, features, [row], None, V2()) == [""]
    assert qa.decode(outputs, features, [row], None, Task()) != [""]  # v1 always answers


def test_unanswerable_and_hidden_answers(tiny):
    qa = get_format("qa")
    row = {"id": "x", "question": "q", "context": "a b c", "answers": []}
    assert qa.encode([row], tiny.tokenizer, 48, True, Task())[0]["labels"] == (0, 0)
    hidden = dict(row, answers=None)
    assert "labels" not in qa.encode([hidden], tiny.tokenizer, 48, False, Task())[0]
    assert not qa.labeled(hidden)


def test_tagging_labels_first_subwords_only(tiny):
    tag = get_format("tagging")
    words = ["Björn", "wohnt", "unbelievably", "北京", "Straßenbahnhaltestelle", "."]
    row = {"tokens": words, "tags": [1, 2, 3, 4, 5, 6]}
    (f,) = tag.encode([row], tiny.tokenizer, 128, True, None)
    labelled = [lab for lab in f["labels"] if lab != IGNORE]
    assert labelled == row["tags"]
    # Every labelled position starts a word: the position before it belongs to another word.
    assert len(f["input_ids"]) > len(words) + 2, "some words should split into subwords"
    assert f["labels"][0] == IGNORE and f["labels"][-1] == IGNORE  # <s> and </s>


def test_tagging_long_sentence_is_split_into_windows_without_losing_words(tiny):
    tag = get_format("tagging")
    words = [f"Wort{i}" for i in range(60)]
    row = {"tokens": words, "tags": [i % 7 for i in range(60)]}
    features = tag.encode([row], tiny.tokenizer, 24, True, None)
    assert len(features) > 1
    labelled = [lab for f in features for lab in f["labels"] if lab != IGNORE]
    assert labelled == row["tags"]
    labels = [str(i) for i in range(7)]
    outputs = []
    for f in features:
        out = np.zeros((len(f["input_ids"]), 7))
        for pos, lab in enumerate(f["labels"]):
            if lab != IGNORE:
                out[pos, lab] = 1.0
        outputs.append(out)
    assert tag.decode(outputs, features, [row], labels, None) == [[labels[t] for t in row["tags"]]]


def test_multiple_choice_batches_by_choice(tiny):
    mc = get_format("multiple_choice")
    rows = [{"context": "Der Himmel ist", "choices": ["blau", "ein Auto", "laut sehr laut"],
             "label": 0},
            {"context": "Fire is", "choices": ["cold", "hot", "a number"], "label": 1}]
    features = mc.encode(rows, tiny.tokenizer, 32, True, None)
    batch = Collator(tiny.tokenizer.pad_token_id)(features)
    assert batch["input_ids"].shape[:2] == (2, 3)
    assert batch["labels"].tolist() == [0, 1]
    assert batch["attention_mask"].shape == batch["input_ids"].shape


def test_collator_pads_token_labels_with_ignore(tiny):
    feats = [{"input_ids": [0, 5, 2], "labels": [IGNORE, 3, IGNORE]},
             {"input_ids": [0, 5, 6, 7, 2], "labels": [IGNORE, 1, 2, 3, IGNORE]}]
    batch = Collator(1)(feats)
    assert batch["labels"].tolist()[0] == [IGNORE, 3, IGNORE, IGNORE, IGNORE]
    assert batch["input_ids"].tolist()[0] == [0, 5, 2, 1, 1]


def test_regression_labels_are_floats(tiny):
    reg = get_format("regression")
    (f,) = reg.encode([{"text": ("a b", "a c"), "label": 3.5}], tiny.tokenizer, 32, True, None)
    assert f["labels"] == 3.5
    assert Collator(1)([f])["labels"].dtype.is_floating_point


def test_unknown_format_suggests():
    from adapterxl.errors import AdapterxlError

    with pytest.raises(AdapterxlError, match="tagging"):
        get_format("taging")
