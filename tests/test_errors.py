"""Bad input ends in one clear line on stderr and exit code 2, without a traceback."""
import json

import pytest
from conftest import cli, fails

TINY = ["--model", "builtin:tiny-xlmr", "--data", "samples", "--max-steps", "2",
        "--batch-size", "8"]


def test_unknown_task_suggests():
    line = fails("train-intermediate", "--task", "mlni", *TINY, match="unknown task 'mlni'")
    assert "did you mean 'mnli'" in line


def test_unknown_method():
    fails("train-intermediate", "--task", "mnli", "--method", "lorra", *TINY,
          match="unknown method 'lorra'")


def test_unknown_method_config_key():
    fails("train-intermediate", "--task", "mnli", "--method-config", "rank=4", *TINY,
          match="unknown config key 'rank'")


def test_unknown_language(mnli_module):
    fails("evaluate", "--task", "xnli", "--module", mnli_module, "--languages", "de,xx",
          "--data", "samples", match="unknown language for xnli 'xx'")


def test_missing_module_directory(tmp_path):
    fails("evaluate", "--task", "xnli", "--module", str(tmp_path / "nope"), "--data", "samples",
          match="does not exist")
    fails("train-target", "--task", "xnli", "--stack", str(tmp_path / "nope"), *TINY,
          match="does not exist")


def test_offline_model_id(tmp_path):
    line = fails("train-intermediate", "--task", "mnli", "--model", "xlm-roberta-large",
                 "--data", "samples", "-o", str(tmp_path / "m"), match="cannot load backbone")
    assert "builtin:tiny-xlmr" in line  # says how to run offline


def test_offline_dataset(tmp_path):
    line = fails("train-intermediate", "--task", "mnli", "--model", "builtin:tiny-xlmr",
                 "-o", str(tmp_path / "m"), match="cannot fetch dataset nyu-mll/glue")
    assert "--data samples" in line


def test_malformed_data_file(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n{oops\n')
    fails("train-intermediate", "--task", "mnli", "--data-dir", str(tmp_path), "--model",
          "builtin:tiny-xlmr", match=f"{tmp_path / 'train.jsonl'}:2: not valid JSON")


def test_label_outside_label_set(tmp_path):
    (tmp_path / "train.tsv").write_text("premise\thypothesis\tlabel\na\tb\tentailment\nc\td\tmaybe\n")
    fails("train-intermediate", "--task", "mnli", "--data-dir", str(tmp_path), "--model",
          "builtin:tiny-xlmr", match="train.tsv:3: label 'maybe' is not in the label set")


def test_missing_column(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"premise": "a", "label": 0}\n')
    fails("train-intermediate", "--task", "mnli", "--data-dir", str(tmp_path), "--model",
          "builtin:tiny-xlmr", match="missing column 'hypothesis'")


def test_corrupted_weights(tmp_path, mnli_module):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(mnli_module, bad)
    weights = bad / "module.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])
    fails("evaluate", "--task", "xnli", "--module", str(bad), "--data", "samples",
          match="module.safetensors is corrupted")


def test_module_from_another_backbone_is_refused(tmp_path, mnli_module):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from adapterxl.backbone import builtin_path

    other = tmp_path / "other-backbone"
    src = builtin_path("tiny-xlmr")
    model = AutoModel.from_pretrained(src, add_pooling_layer=False)
    with torch.no_grad():
        model.get_input_embeddings().weight.add_(0.5)
    model.save_pretrained(other)
    AutoTokenizer.from_pretrained(src).save_pretrained(other)
    line = fails("evaluate", "--task", "xnli", "--module", mnli_module, "--model", str(other),
                 "--data", "samples", match="was trained on builtin:tiny-xlmr")
    assert str(other) in line and "--force" in line


def test_not_a_module(tmp_path):
    (tmp_path / "x").mkdir()
    fails("evaluate", "--task", "xnli", "--module", str(tmp_path / "x"), "--data", "samples",
          match="is not an adapterxl module")
    (tmp_path / "x" / "manifest.json").write_text("{")
    fails("evaluate", "--task", "xnli", "--module", str(tmp_path / "x"), "--data", "samples",
          match="is not valid JSON")


def test_failed_save_keeps_previous_module(tmp_path, mnli_module, monkeypatch):
    """A crash while writing a module leaves the previous module at that path intact."""
    import shutil

    from adapterxl.modules import open_module, store

    target = tmp_path / "m"
    shutil.copytree(mnli_module, target)
    before = (target / "module.safetensors").read_bytes()
    mod = open_module(target)

    def boom(*a, **k):
        raise OSError("No space left on device")
    monkeypatch.setattr(store._io, "write_json", boom)
    with pytest.raises(OSError):
        store.save_module(target, dict(mod.manifest), mod.weights(), mod.head_weights(), [])
    assert (target / "module.safetensors").read_bytes() == before
    assert json.loads((target / "manifest.json").read_text())["name"] == "mnli"
    assert [p.name for p in tmp_path.iterdir()] == ["m"], "staging directory left behind"


def test_hub_ids_with_a_slash_are_not_taken_for_paths():
    """'org/name' goes to the Hub (offline here), a missing './dir' is a missing path."""
    fails("train-intermediate", "--task", "mnli", "--model", "facebook/xlm-roberta-xl",
          "--data", "samples", match="cannot load backbone 'facebook/xlm-roberta-xl'")
    fails("train-intermediate", "--task", "mnli", "--model", "./no-such-dir", "--data",
          "samples", match="backbone path './no-such-dir' does not exist")


def test_unlabeled_dev_split_is_refused(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n')
    (tmp_path / "validation.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": -1}\n')
    fails("train-intermediate", "--task", "mnli", "--data-dir", str(tmp_path), "--model",
          "builtin:tiny-xlmr", match="validation data has unlabeled examples")


def test_unexpected_errors_are_one_line_too(monkeypatch):
    import adapterxl.tasks.query as tasks

    def broken(role=None):
        raise RuntimeError("something deep broke\nsecond line")
    monkeypatch.setattr(tasks, "list_tasks", broken)
    result = cli("tasks")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: unexpected RuntimeError: something deep broke "
                                     "(rerun with `adapterxl --debug ...` for the traceback)")
    debug = cli("--debug", "tasks")
    assert isinstance(debug.exception, RuntimeError)


def test_licensed_task_without_files_says_why(tmp_path):
    from click.testing import CliRunner

    from adapterxl.cli import main

    r = CliRunner().invoke(main, ["train-intermediate", "--task", "ccg", "--model",
                                  "builtin:tiny-xlmr", "-o", str(tmp_path / "ccg")])
    assert r.exit_code == 2
    line = r.stderr.strip()
    assert "\n" not in line and "CCGbank" in line and "--data-dir" in line
