"""Formats own their code paths: the label set, label indices, whether they train language
modules and how a language is evaluated are the format's, so that training and evaluation
never branch on a format's name."""
from types import SimpleNamespace

import torch

from adapterxl.formats import Scored, get_format
from adapterxl.tasks import FORMATS, get_task

ROWS = [{"tokens": ["a", "b"], "tags": ["NP", "S/NP"]}, {"tokens": ["c"], "tags": ["NP"]},
        {"tokens": ["d"], "tags": None}]


def test_a_tag_set_missing_from_the_catalogue_is_collected_from_the_data_and_indexed():
    fmt, task = get_format("tagging"), SimpleNamespace(labels=None)
    labels = fmt.labels(task, ROWS, None)
    assert labels == ["NP", "S/NP"]
    assert [r["tags"] for r in fmt.indexed(task, ROWS, labels)] == [[0, 1], [0], None]


def test_catalogue_labels_win_and_leave_rows_as_read():
    panx = get_task("panx")
    fmt = get_format(panx.format)
    assert fmt.labels(panx, ROWS, None) == list(panx.labels)
    assert fmt.indexed(panx, ROWS, list(panx.labels)) is ROWS
    mnli = get_task("mnli")
    assert get_format(mnli.format).labels(mnli, [], None) == list(mnli.labels)


def test_masked_language_modelling_predicts_the_vocabulary():
    model = torch.nn.Module()
    model.get_input_embeddings = lambda: torch.nn.Embedding(7, 2)
    labels = get_format("mlm").labels(get_task("mnli"), [], SimpleNamespace(model=model))
    assert labels == [str(i) for i in range(7)]


def test_language_modules_and_corpus_level_scores_are_format_properties():
    assert [f for f in FORMATS if get_format(f).language] == ["mlm"]
    assert [f for f in FORMATS if not get_format(f).per_example] == ["retrieval"]


def test_retrieval_evaluates_a_corpus_at_its_layer_and_tunes_bucc_on_dev(monkeypatch):
    fmt, calls = get_format("retrieval"), []

    def run(model, corpus, tokenizer, metric, layer, max_length, batch_size, dev):
        calls.append((metric, layer, dev))
        return ["q1"], {"accuracy": 1.0}, {"threshold": 0.5}

    monkeypatch.setattr(fmt, "run", run)
    corpus = {"queries": [{"id": "q1"}, {"id": "q2"}], "candidates": [], "gold": {}}
    model = SimpleNamespace(num_layers=24)
    bucc, tatoeba = get_task("bucc2018"), get_task("tatoeba")
    got = fmt.evaluate(model, corpus, None, bucc, [], "de", dev=lambda: "dev corpus")
    assert isinstance(got, Scored) and got.examples == 2 and got.labeled is None
    assert got.extra == {"threshold": 0.5} and got.values == {"accuracy": 1.0}
    fmt.evaluate(model, corpus, None, tatoeba, [], "de", layer=3, dev=lambda: "dev corpus")
    assert calls[0][2] == "dev corpus" and calls[1] == ("accuracy", 3, None)
    assert calls[0][1] == (bucc.hyperparameters.get("layer") or 14) == got.layer
