"""The CLI end to end: train-intermediate -> train-target --stack -> evaluate, on samples."""
import json

import pytest

from click.testing import CliRunner

from adapterxl.cli import main

COMMON = ["--model", "builtin:tiny-xlmr", "--data", "samples", "--max-steps", "15",
          "--batch-size", "16", "--max-length", "64"]


def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result


@pytest.mark.slow
def test_three_phases(tmp_path):
    mnli, xnli, cont = tmp_path / "mnli", tmp_path / "xnli", tmp_path / "xnli-cont"
    r = run("train-intermediate", "--task", "mnli", "-o", str(mnli), *COMMON)
    assert r.exit_code == 0, r.output + r.stderr
    assert "module saved to" in r.stdout
    manifest = json.loads((mnli / "manifest.json").read_text())
    for key in ("backbone", "method", "task", "labels", "languages", "data", "hyperparameters",
                "seed", "stacked_on", "metrics", "versions", "files"):
        assert key in manifest, key
    assert manifest["backbone"]["fingerprint"] and manifest["method"]["name"] == "seq_bn"
    train_results = json.loads((mnli / "train-results.json").read_text())
    assert train_results["steps"] == 15 and train_results["tokens_per_second"] > 0

    r = run("train-target", "--task", "xnli", "--stack", str(mnli), "-o", str(xnli), *COMMON)
    assert r.exit_code == 0, r.output + r.stderr
    r = run("train-target", "--task", "xnli", "--init-from", str(mnli), "-o", str(cont), *COMMON)
    assert r.exit_code == 0, r.output + r.stderr

    out = tmp_path / "eval"
    r = run("evaluate", "--task", "xnli", "--module", str(xnli), "--data", "samples",
            "--languages", "all", "-o", str(out))
    assert r.exit_code == 0, r.output + r.stderr
    assert "| xnli |" in r.stdout and "avg" in r.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["stack"] == ["mnli", "xnli"]
    langs = sorted(results["per_language"])
    assert langs == ["ar", "de", "en", "es", "fr", "sw", "zh"]
    assert 0 <= results["average"]["accuracy"] <= 1
    assert results["score"] == results["average"]["accuracy"]
    for lang in langs:  # XTREME layout: xnli/test-<lang>.tsv, one label per example
        lines = (out / "xnli" / f"test-{lang}.tsv").read_text().splitlines()
        assert len(lines) == results["examples"][lang]
        assert set(lines) <= {"entailment", "neutral", "contradiction"}

    r = run("evaluate", "--task", "xnli", "--module", str(xnli), "--data", "samples",
            "--languages", "de,zh", "--split", "validation", "-o", str(out / "v"))
    assert r.exit_code == 0, r.output + r.stderr
    assert (out / "v" / "xnli" / "validation-zh.tsv").exists()


def test_tasks_lists_catalogue():
    r = run("tasks")
    assert r.exit_code == 0
    assert "mnli" in r.stdout and "xnli" in r.stdout and "15 languages" in r.stdout


def test_tasks_lists_a_suite_with_its_languages():
    r = run("tasks", "--suite", "xtreme-r", "--json")
    assert r.exit_code == 0, r.output
    rows = {t["name"]: t for t in json.loads(r.stdout)}
    assert len(rows) == 10 and "pawsx" not in rows and "xcopa" in rows
    assert len(rows["udpos"]["languages"]) == 38  # XTREME-R's list, not XTREME's 33
    assert rows["xquad"]["english_training_data"] == "squad"
    r = run("tasks", "--suite", "intermediate")
    assert "hellaswag" in r.stdout and "xnli" not in r.stdout
