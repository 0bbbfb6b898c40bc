"""Bad input is refused up front, never replaced by a default or accepted silently: one
`error:` line, exit code 2, nothing lost. One test per class of mistake (issue 16): numeric
settings (flags and recipe values), outputs that would destroy inputs, malformed data values,
recipes that could exhaust memory or hide a mistake."""
import json
import math

import pytest

from conftest import cli, fails, quick

TINY = ["--model", "builtin:tiny-xlmr", "--data", "samples", "--max-length", "32",
        "--batch-size", "8", "--method", "lora"]


def tree(path):
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return quick("mnli", tmp_path_factory.mktemp("refusals") / "mnli", max_steps=2,
                 method="lora")["module"]


# ---- settings: type and range, "not given" is None ---------------------------------------------
@pytest.mark.parametrize("flag,value", [
    ("--max-steps", "0"), ("--max-steps", "-3"), ("--lr", "0"), ("--lr", "-1"), ("--lr", "nan"),
    ("--epochs", "nan"), ("--epochs", "-1"), ("--batch-size", "0"), ("--batch-size", "-8"),
    ("--max-length", "0"), ("--max-length", "-5"), ("--micro-batch-size", "0"),
    ("--sampling-temperature", "0"), ("--seed", "-1"), ("--seed", str(2 ** 70)),
    ("--max-train-examples", "-1"), ("--max-steps", "two"), ("--warmup-ratio", "1.5"),
    ("--checkpoint-every", "-1"), ("--optimizer", "sgd"),
])
def test_bad_settings_are_one_line_naming_flag_and_range(tmp_path, flag, value):
    line = fails("train-intermediate", "--task", "mnli", *TINY, flag, value,
                 "-o", tmp_path / "m", match=flag)
    assert "must be" in line or "unknown" in line
    assert not (tmp_path / "m").exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("flag,value", [("--batch-size", "0"), ("--max-examples", "-1"),
                                        ("--max-length", "0"), ("--layer", "-2")])
def test_bad_evaluate_settings(module, tmp_path, flag, value):
    fails("evaluate", "--task", "xnli", "--module", module, "--data", "samples", flag, value,
          "-o", tmp_path / "eval", match=flag)


def test_library_callers_get_the_same_checks(tmp_path):
    from adapterxl.errors import AdapterxlError
    from adapterxl.training import TrainConfig

    for bad in ({"max_steps": 0}, {"lr": math.nan}, {"sampling_temperature": 0.0},
                {"seed": 2 ** 70}, {"epochs": -1.0}):
        with pytest.raises(AdapterxlError, match="must be"):
            TrainConfig(task="mnli", output=str(tmp_path / "m"), **bad)


@pytest.mark.parametrize("override,match", [
    ("train.lr=-1", "train.lr"), ("train.epochs=.nan", "train.epochs"),
    ("train.max_steps=0", "train.max_steps"), ("train.batch_size=-8", "train.batch_size"),
    ("evaluate.batch_size=0", "evaluate.batch_size"),
    ("train.sampling_temperature=0", "train.sampling_temperature"),
])
def test_recipe_values_are_checked_like_flags(override, match):
    from adapterxl.errors import AdapterxlError
    from adapterxl.experiments.recipe import load_recipe

    with pytest.raises(AdapterxlError, match=match) as e:
        load_recipe("recipes/quickstart.yaml", ["model=builtin:tiny-xlmr", override])
    assert "must be" in str(e.value) and "\n" not in str(e.value)


# ---- outputs never clobber inputs ----------------------------------------------------------
def test_outputs_never_clobber_inputs(module, tmp_path):
    from pathlib import Path

    before = tree(Path(module))
    for flag in ("--init-from", "--stack"):
        fails("train-target", "--task", "xnli", *TINY, "--max-steps", "1", flag, module,
              "-o", module, match="would overwrite the module")
        fails("train-target", "--task", "xnli", *TINY, "--max-steps", "1", flag, module,
              "-o", Path(module) / "inner", match="would overwrite the module")
    assert tree(Path(module)) == before
    # an existing regular file is not hidden away
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    fails("train-intermediate", "--task", "mnli", *TINY, "--max-steps", "1", "-o", file,
          match="not a directory")
    assert file.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt"]
    # an empty -o is refused, not replaced by runs/<task>
    fails("train-intermediate", "--task", "mnli", *TINY, "--max-steps", "1", "-o", "",
          match="--output is empty")
    # an existing module needs --overwrite
    fails("train-intermediate", "--task", "mnli", *TINY, "--max-steps", "1", "-o", module,
          match="--overwrite")
    assert tree(Path(module)) == before
    # a folder that is not a module is never replaced
    other = tmp_path / "results"
    other.mkdir()
    (other / "table.csv").write_text("a,b\n")
    fails("train-intermediate", "--task", "mnli", *TINY, "--max-steps", "1", "-o", other,
          match="not a module")
    # contradictory data flags
    fails("train-intermediate", "--task", "mnli", "--model", "builtin:tiny-xlmr", "--data",
          "samples", "--data-dir", tmp_path, "-o", tmp_path / "m", match="contradict")


# ---- data values -----------------------------------------------------------------------------
def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("task,ext,bad,match", [
    ("stsb", "jsonl", {"text": ["a b", "c d"], "label": float("nan")}, "finite"),
    ("stsb", "jsonl", {"text": ["a b", "c d"], "label": 1e6}, "range"),
    ("sickr", "jsonl", {"text": ["a b", "c d"], "label": 0.0}, "range"),
    ("mnli", "jsonl", {"premise": {"a": 1}, "hypothesis": "x", "label": 0}, "expected text"),
    ("mnli", "jsonl", {"premise": None, "hypothesis": "x", "label": 0}, "expected text"),
    ("squad", "jsonl", {"id": "q1", "question": "who?", "context": "Ann met Bob.",
                        "answers": {"text": ["Bob"], "answer_start": [40]}}, "not at character"),
    ("squad", "jsonl", {"id": "q1", "question": "who?", "context": "Ann met Bob.",
                        "answers": {"text": ["Bob"], "answer_start": [0]}}, "not at character"),
    ("panx", "jsonl", {"tokens": ["Ann", "", "Bob"], "tags": ["B-PER", "O", "B-PER"]},
     "empty word"),
])
def test_data_values_are_validated_with_file_and_line(tmp_path, task, ext, bad, match):
    from adapterxl.data.sources import load_split
    from adapterxl.errors import AdapterxlError
    from adapterxl.tasks import get_task

    good = load_split(get_task(task), "train", data="samples")[:2]
    lines = [json.dumps(r) for r in good] + [json.dumps(bad)]
    _write(tmp_path / f"train.{ext}", lines)
    with pytest.raises(AdapterxlError, match=match) as e:
        load_split(get_task(task), "train", data_dir=str(tmp_path))
    assert f"train.{ext}:3" in str(e.value)


def test_data_structure_limits(tmp_path):
    from adapterxl.data.sources import load_split
    from adapterxl.errors import AdapterxlError
    from adapterxl.tasks import get_task

    _write(tmp_path / "deep" / "train.jsonl", ["[" * 100_000 + "]" * 100_000])
    with pytest.raises(AdapterxlError, match="train.jsonl:1: JSON nested too deeply"):
        load_split(get_task("mnli"), "train", data_dir=str(tmp_path / "deep"))
    _write(tmp_path / "conll" / "train.tsv", ["Ann\tB-PER", "\tO", "Bob\tB-PER"])
    with pytest.raises(AdapterxlError, match="train.tsv:2: empty word"):
        load_split(get_task("panx"), "train", data_dir=str(tmp_path / "conll"))
    _write(tmp_path / "sts" / "train.tsv", ["a b\tc d\t3.0", "a b\tc d\tinf"])
    with pytest.raises(AdapterxlError, match="train.tsv:2: score inf"):
        load_split(get_task("stsb"), "train", data_dir=str(tmp_path / "sts"))


# ---- recipes ---------------------------------------------------------------------------------
BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['x'] * 9)}]\n"
               for p, c in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh"))


def test_recipes_refuse_what_would_hide_a_mistake(tmp_path):
    from adapterxl.errors import AdapterxlError
    from adapterxl.experiments.recipe import load_recipe, parse_recipe

    base = (tmp_path / "q.yaml")
    text = open("recipes/quickstart.yaml", encoding="utf-8").read()
    # an alias bomb in a free-form key, in the file or in an override, is refused at once
    with pytest.raises(AdapterxlError, match="aliases expand"):
        parse_recipe("notes:\n  " + BOMB.replace("\n", "\n  ") + text, source="bomb.yaml")
    with pytest.raises(AdapterxlError, match="aliases expand"):
        parse_recipe(text, ["notes=" + "{" + BOMB.replace("\n", ", ").rstrip(", ") + "}"])
    # a duplicate key does not silently replace the first
    with pytest.raises(AdapterxlError, match="duplicate key 'train'"):
        parse_recipe(text + "\ntrain: {lr: 0.1}\ntrain: {lr: 0.2}\n")
    # a Latin-1 file is one clear line
    base.write_bytes(("description: caf\xe9\n" + text).encode("latin-1"))
    with pytest.raises(AdapterxlError, match="not UTF-8"):
        load_recipe(base)
    # a grid too large to be meant is refused, with the way to allow it
    big = tmp_path / "big.yaml"
    big.write_text(text + "\n", encoding="utf-8")
    fails("run", big, "model=builtin:tiny-xlmr", "grid.seeds=" + json.dumps(list(range(20000))),
          "--dry-run", match="--max-cells")


def test_run_exits_non_zero_when_a_cell_failed(tmp_path):
    text = open("recipes/quickstart.yaml", encoding="utf-8").read()
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text, encoding="utf-8")
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the module cache should be")
    result = cli("run", recipe, "model=builtin:tiny-xlmr", "data=samples", "train.max_steps=1",
                 "grid.methods=[lora]", "--run-dir", tmp_path / "run", "--cache-dir", blocker)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "failed" in result.stderr
