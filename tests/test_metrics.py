"""Metrics on hand-computed cases (XTREME's definitions)."""
import numpy as np
import pytest

from adapterxl.evaluation.metrics import accuracy, score


def test_accuracy_hand_computed():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert accuracy(["a", "b"], ["a", "c"]) == 0.5


def test_accuracy_refuses_mismatched_or_empty():
    with pytest.raises(ValueError):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError):
        accuracy([], [])


def test_score_takes_the_argmax_of_logits():
    logits = np.array([[0.1, 0.7, 0.2], [2.0, -1.0, 0.0], [0.0, 0.0, 3.0]])
    assert score("accuracy", logits, [1, 0, 1]) == pytest.approx(2 / 3)


def test_format_table():
    from adapterxl.evaluation import format_table

    table = format_table({"task": "xnli", "split": "test", "per_language": {"de": 0.5, "en": 0.75},
                          "average": 0.625, "skipped_languages": ["sw"]})
    assert "| xnli | 50.0 | 75.0 | 62.5 |" in table and "sw" in table
