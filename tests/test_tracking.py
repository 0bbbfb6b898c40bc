"""Tracking through accelerate's trackers, checked by reading TensorBoard's event files back."""
import json

import pytest

from conftest import cli, fails, quick

pytest.importorskip("tensorboard", reason="tensorboard is not installed (the [tracking] extra)")


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder)).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_tensorboard_curves(tmp_path):
    from transformers import get_linear_schedule_with_warmup
    import torch

    result = quick("mnli", tmp_path / "mnli", max_steps=20, evals=2, report_to="tensorboard",
                   method="lora",
                   logging_steps=5, tracking_project="study")
    run = tmp_path / "tracking" / "study" / "mnli"
    s = _scalars(run)
    assert [step for step, _ in s["train/loss"]] == [5, 10, 15, 20]
    # the learning rate is the schedule's (warmup 10%, then linear decay) after each step
    opt = torch.optim.SGD([torch.zeros(1)], lr=3e-3)
    sched = get_linear_schedule_with_warmup(opt, 2, 20)
    expected = []
    for _ in range(20):
        opt.step()
        sched.step()
        expected.append(sched.get_last_lr()[0])
    for step, value in s["train/learning_rate"]:
        assert value == pytest.approx(expected[step - 1], rel=1e-5)
    assert all(v > 0 for _, v in s["train/grad_norm"] + s["train/tokens_per_second"])
    assert all(0 < v < 10 for _, v in s["train/loss"])
    # every dev evaluation, with the values train-results.json has
    history = json.loads((tmp_path / "mnli" / "train-results.json").read_text())["history"]
    assert [step for step, _ in s["dev/accuracy"]] == [h["step"] for h in history] == [10, 20]
    for (_, value), h in zip(s["dev/accuracy"], history):
        assert value == pytest.approx(h["accuracy"], abs=1e-6)
    assert result["steps"] == 20
    assert list(run.glob("*/hparams.yml"))  # the run's configuration


def test_report_to_is_validated(tmp_path):
    import importlib.util

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    fails("train-intermediate", "--task", "mnli", "--model", "builtin:tiny-xlmr", "--data",
          "samples", "--report-to", "wandb", "-o", tmp_path / "m",
          match="--report-to wandb needs the wandb package")


def test_recipe_runs_group_their_cells(tmp_path):
    run = cli("run", "quickstart", "model=builtin:tiny-xlmr", "data=samples",
              "train.max_steps=2", "train.batch_size=4", "train.max_length=32",
              "train.max_train_examples=16", "train.max_eval_examples=8", "train.evals=1",
              "evaluate.max_examples=8", "evaluate.languages=[de]", "tracking=tensorboard",
              "--run-dir", tmp_path / "run", "--cache-dir", tmp_path / "cache")
    assert run.exit_code == 0, run.output
    runs = sorted(p.name for p in (tmp_path / "run" / "tracking" / "quickstart").iterdir())
    assert len(runs) >= 2  # the intermediate and the target module, side by side
    for name in runs:
        assert "train/loss" in _scalars(tmp_path / "run" / "tracking" / "quickstart" / name)
