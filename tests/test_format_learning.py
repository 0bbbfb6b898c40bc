"""One learning test per head type: on the tiny random backbone a module learns the synthetic
version of each format (bundled samples) well above chance, and its predictions are scored and
written in the submission layout."""
import json

import pytest

from conftest import quick

# task, steps, metric key, chance level, required level
CASES = [
    ("qqp", 150, "accuracy", 0.5, 0.8),
    ("stsb", 250, "pearson", 0.0, 0.5),
    ("udpos", 150, "token_accuracy", 1 / 17, 0.7),
    ("panx", 150, "f1", 0.0, 0.5),
    ("squad", 200, "f1", 0.0, 0.5),
    ("hellaswag", 150, "accuracy", 0.25, 0.6),
]


@pytest.mark.parametrize("task,steps,key,chance,required", CASES, ids=[c[0] for c in CASES])
def test_module_learns_each_format(tmp_path, task, steps, key, chance, required):
    result = quick(task, tmp_path / task, max_steps=steps, max_length=128)
    best = result["dev_metrics"][key]
    assert best >= required > chance, (task, result["history"])
    manifest = json.loads((tmp_path / task / "manifest.json").read_text())
    assert manifest["format"] and manifest["head"]["type"]


def test_tagging_module_transfers_and_writes_conll_layout(tmp_path):
    from adapterxl.evaluation import evaluate

    module = quick("udpos", tmp_path / "udpos", max_steps=150, max_length=128)["module"]
    result = evaluate("udpos", module, data="samples", output=str(tmp_path / "eval"))
    assert set(result["per_language"]) >= {"en", "de"}
    assert 0 < result["score"] <= 1
    text = (tmp_path / "eval" / "udpos" / "test-de.tsv").read_text()
    sentences = [s for s in text.split("\n\n") if s.strip()]
    assert len(sentences) == result["examples"]["de"]


def test_qa_module_transfers_and_writes_json(tmp_path):
    from adapterxl.evaluation import evaluate

    module = quick("squad", tmp_path / "squad", max_steps=200, max_length=128)["module"]
    result = evaluate("xquad", module, data="samples", output=str(tmp_path / "eval"))
    assert {"exact_match", "f1"} <= set(result["average"])
    # XTREME counts QA as (EM + F1) / 2.
    avg = result["average"]
    assert result["score"] == pytest.approx((avg["exact_match"] + avg["f1"]) / 2)
    preds = json.loads((tmp_path / "eval" / "xquad" / "test-de.json").read_text())
    assert len(preds) == result["examples"]["de"]


def test_multiple_choice_module_answers_two_choice_task(tmp_path):
    """A module trained with 4 choices scores pairs one at a time, so COPA's 2 choices work."""
    from adapterxl.evaluation import evaluate

    module = quick("copa", tmp_path / "copa", max_steps=100, max_length=64)["module"]
    result = evaluate("xcopa", module, data="samples", output=str(tmp_path / "eval"))
    assert result["per_language"]


def test_retrieval_reads_representations_of_any_module(tmp_path, mnli_module):
    from adapterxl.evaluation import evaluate

    result = evaluate("tatoeba", mnli_module, data="samples", output=str(tmp_path / "eval"))
    assert result["layer"] == 1  # tiny-xlmr has 2 layers: 2 * 14 // 24 = 1
    assert result["average"]["accuracy"] > 0.5  # planted shared tokens make pairs findable
    lines = (tmp_path / "eval" / "tatoeba" / "test-de.tsv").read_text().split()
    assert len(lines) == result["examples"]["de"] and all(x.isdigit() for x in lines)


def test_bucc_threshold_is_tuned_on_validation(tmp_path, mnli_module):
    from adapterxl.evaluation import evaluate

    result = evaluate("bucc2018", mnli_module, data="samples", languages="de",
                      output=str(tmp_path / "eval"))
    assert result["retrieval"]["de"]["threshold_tuned_on"] == "validation"
    pairs = (tmp_path / "eval" / "bucc2018" / "test-de.tsv").read_text().splitlines()
    assert all(len(p.split("\t")) == 2 for p in pairs)
    assert 0 <= result["average"]["f1"] <= 1


def test_retrieval_task_cannot_be_trained(tmp_path):
    from adapterxl.errors import AdapterxlError

    with pytest.raises(AdapterxlError, match="representations"):
        quick("tatoeba", tmp_path / "t")
