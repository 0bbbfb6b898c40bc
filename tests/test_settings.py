"""Settings declared once (issue 17): every TrainConfig field is a flag and a recipe key, or
says why not; the flags, recipe keys, cache key, resume comparison and manifest
hyperparameters all come from the fields' declarations."""
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapterxl import settings
from adapterxl.cli import main
from adapterxl.settings import TrainConfig, flag_name, settings_of

ROOT = Path(__file__).resolve().parent.parent
TRAIN_COMMANDS = ("train-intermediate", "train-target", "train-language")


def _flags(command: str) -> set[str]:
    return {opt for p in main.commands[command].params for opt in p.opts if opt.startswith("--")}


def test_every_field_is_a_flag_and_a_recipe_key_or_says_why_not():
    from adapterxl.experiments.recipe import TRAIN_KEYS

    specs = settings_of(TrainConfig)
    every_flag = set().union(*(_flags(c) for c in TRAIN_COMMANDS))
    for f in dataclasses.fields(TrainConfig):
        spec = specs.get(f.name)
        assert spec is not None, f"{f.name}: declared without setting(...)"
        flag = flag_name(f.name)
        assert (flag in every_flag) == spec.flag, f.name
        assert spec.flag or spec.why_not, f"{f.name}: no flag and no reason"
        assert (f.name in TRAIN_KEYS) == spec.recipe, f.name
        assert spec.recipe or spec.why_not, f"{f.name}: not a recipe key and no reason"
        # `only` says which commands have it; the others do not
        for command in TRAIN_COMMANDS:
            kind = "language" if command == "train-language" else "task"
            assert (flag in _flags(command)) == (spec.only in (None, kind)), (f.name, command)
    # ... and nothing else: every train-* flag is a field
    fields = {flag_name(f.name) for f in dataclasses.fields(TrainConfig)}
    assert every_flag - {"--help"} <= fields


def test_optimizer_and_module_dtype_from_a_recipe():
    from adapterxl.experiments.recipe import parse_recipe

    text = ("grid: {backbones: [builtin:tiny-xlmr], intermediates: [none], targets: [xnli], "
            "methods: [seq_bn], compositions: [none]}\n"
            "train: {optimizer: paged_adamw, module_dtype: bf16}\n")
    recipe = parse_recipe(text)
    cfg = TrainConfig(task="xnli", output="x", **recipe.settings("target"))
    assert (cfg.optimizer, cfg.module_dtype) == ("paged_adamw", "bf16")
    with pytest.raises(Exception, match=r"train.optimizer.*adamw8bit"):
        parse_recipe(text.replace("paged_adamw", "adamw8bt"))


def test_the_derived_lists():
    from adapterxl.checkpoint import NOT_COMPARED
    from adapterxl.experiments.grid import KEYED_SETTINGS

    # what changes the learned module keys the cache; memory and bookkeeping do not
    assert {"optimizer", "module_dtype", "lr", "method_config", "precision"} <= set(KEYED_SETTINGS)
    assert not {"micro_batch_size", "checkpoint_every", "gradient_checkpointing",
                "report_to"} & set(KEYED_SETTINGS)
    # checkpoints written before store the compared settings: the set must not move
    assert set(NOT_COMPARED) == {"output", "resume", "checkpoint_every", "overwrite",
                                 "allow_pickle", "report_to", "logging_steps", "tracking_dir",
                                 "tracking_project"}
    cfg = TrainConfig(task="xnli", output="o", lr=3e-4, method_config={"r": 8})
    hp = settings.hyperparameters(cfg)
    assert hp["lr"] == 3e-4 and hp["method_config"] == {"r": 8} and hp["seed"] == 42
    assert not {"task", "output", "data_dir", "resume", "tracking_dir", "force"} & set(hp)
    hp["method_config"]["r"] = 16  # a copy: the manifest cannot change the config
    assert cfg.method_config == {"r": 8}


def test_flags_build_the_config(monkeypatch):
    import adapterxl.training

    made = []
    monkeypatch.setattr(adapterxl.training, "train_module", lambda cfg: made.append(cfg) or {
        "module": cfg.output, "metric": "accuracy", "dev": 0.5, "best_step": 1, "steps": 1,
        "tokens_per_second": 1.0})
    runner = CliRunner()
    r = runner.invoke(main, ["train-intermediate", "--task", "xnli", "--stack", "a,b",
                             "--method-config", "r=8", "--dataset", "org/set",
                             "--columns", "text=premise,hypothesis", "--columns", "label=y",
                             "--optimizer", "adamw8bit", "--lr", "2e-4", "--resume"])
    assert r.exit_code == 0, r.output
    cfg = made[-1]
    assert cfg.stack == ["a", "b"] and cfg.method_config == {"r": 8}
    assert cfg.columns == {"text": ["premise", "hypothesis"], "label": "y"}
    assert (cfg.optimizer, cfg.lr, cfg.resume, cfg.output) == ("adamw8bit", 2e-4, True,
                                                               "runs/xnli")
    # what was not given is TrainConfig's default
    defaults = TrainConfig(task="xnli", output="runs/xnli")
    for name in ("model", "method", "evals", "warmup_ratio", "seed", "data", "fuse"):
        assert getattr(cfg, name) == getattr(defaults, name), name
    r = runner.invoke(main, ["train-language", "--language", "sw", "--data", "samples"])
    assert r.exit_code == 0, r.output
    cfg = made[-1]
    assert (cfg.task, cfg.method, cfg.output, cfg.language) == ("mlm", "seq_bn_inv",
                                                                "runs/lang-sw", "sw")


def test_a_bad_value_is_refused_alike_by_flag_and_recipe():
    from adapterxl.experiments.recipe import parse_recipe

    r = CliRunner().invoke(main, ["train-intermediate", "--task", "xnli", "--module-dtype",
                                  "fp16"])
    assert r.exit_code == 2 and "--module-dtype" in r.output and "bf16" in r.output
    with pytest.raises(Exception, match="train.module_dtype.*bf16"):
        parse_recipe("grid: {backbones: [m], intermediates: [none], targets: [xnli], "
                     "methods: [seq_bn], compositions: [none]}\n"
                     "train: {module_dtype: fp16}\n")


def test_the_docs_show_every_setting():
    """docs/EXPERIMENTS.md carries settings.table() (regenerate it when a setting changes)."""
    docs = (ROOT / "docs" / "EXPERIMENTS.md").read_text(encoding="utf-8")
    assert settings.table() in docs


def test_choices_come_from_the_literals():
    from typing import get_args

    for command, flag, literal in (("evaluate", "--precision", settings.Precision),
                                   ("plan", "--quantize", settings.Quantize)):
        param = next(p for p in main.commands[command].params if flag in p.opts)
        assert tuple(param.type.choices) == get_args(literal)


def test_help_is_torch_free_and_python_m_works():
    code = ("import sys, runpy; sys.argv = ['adapterxl', '--help'];\n"
            "try: runpy.run_module('adapterxl', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "train-intermediate" in out.stdout
    assert re.search(r"False False\s*$", out.stdout), out.stdout[-200:]
