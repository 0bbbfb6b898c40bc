"""Interrupted training runs resume exactly; checkpoints survive crashes and stay small."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import quick
from adapterxl import checkpoint
from adapterxl.cli import main
from adapterxl.errors import AdapterxlError

# 120 examples are 15 micro-batches an epoch: 40 steps cross five epoch boundaries, and the odd
# count makes one accumulated step per epoch straddle two epochs.
RUN = dict(max_length=64, batch_size=16, micro_batch_size=8, lr=3e-3, max_steps=40,
           checkpoint_every=5, max_train_examples=120, max_eval_examples=48)
WEIGHTS = ("module.safetensors", "head.safetensors")

# Trains in a child process, slowed a little per forward pass (sleeping changes no numbers) so
# that the parent reliably kills it mid-run.
CHILD = """
import json, sys, time
from adapterxl.modules.model import ModularModel
forward = ModularModel.forward
def slow(self, *args, **kwargs):
    time.sleep(0.02)
    return forward(self, *args, **kwargs)
ModularModel.forward = slow
from adapterxl.training import TrainConfig, train_module
train_module(TrainConfig(**json.loads(sys.argv[1])), progress=False)
"""


def interrupted(output, at_step, **kw):
    """A run stopped (as by Ctrl-C) right after writing the checkpoint of `at_step`."""
    real = checkpoint.save

    def save(where, state, info):
        real(where, state, info)
        if state["step"] >= at_step:
            raise KeyboardInterrupt

    checkpoint.save = save
    try:
        with pytest.raises(KeyboardInterrupt):
            quick("mnli", output, **kw)
    finally:
        checkpoint.save = real
    return checkpoint.directory(output)


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    output = tmp_path / "killed"
    where = checkpoint.directory(output)
    cfg = dict(task="mnli", output=str(output), model="builtin:tiny-xlmr", data="samples", **RUN)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert child.poll() is None, child.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint at step >= 10 in time"
            try:
                if json.loads((where / checkpoint.INFO).read_text())["step"] >= 10:
                    break
            except (OSError, ValueError):  # not written yet (it is replaced atomically)
                pass
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not output.exists(), "the child finished before it was killed"
    saved = checkpoint.load(where)
    assert 10 <= saved["step"] < 40

    resumed = quick("mnli", output, resume=True, **RUN)
    assert resumed["resumed_from_step"] == saved["step"] and resumed["steps"] == 40
    assert not where.exists(), "the checkpoint outlived the saved module"
    whole = quick("mnli", tmp_path / "whole", **RUN)
    for name in WEIGHTS:
        assert (output / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert resumed["history"] == whole["history"]
    assert (resumed["tokens"], resumed["best_step"]) == (whole["tokens"], whole["best_step"])


def _partial_write(monkeypatch):
    real = torch.save

    def save(obj, f, *args, **kwargs):
        if obj["step"] >= 4:
            f.write(b"half a checkpoint")
            raise KeyboardInterrupt  # as if killed while writing
        real(obj, f, *args, **kwargs)
    monkeypatch.setattr(torch, "save", save)


def _failed_rename(monkeypatch):
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == checkpoint.FILE and (Path(dst).parent / checkpoint.FILE).exists():
            raise KeyboardInterrupt
        real(src, dst)
    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("crash", [_partial_write, _failed_rename])
def test_crash_while_checkpointing_keeps_the_previous_one(tmp_path, monkeypatch, crash):
    crash(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        quick("mnli", tmp_path / "m", max_steps=10, checkpoint_every=2)
    monkeypatch.undo()
    where = checkpoint.directory(tmp_path / "m")
    assert checkpoint.load(where)["step"] == 2
    assert json.loads((where / checkpoint.INFO).read_text())["step"] == 2
    # the half-written temporary file is gone too
    assert sorted(p.name for p in where.iterdir()) == [checkpoint.INFO, checkpoint.FILE]


def test_refusals(tmp_path):
    where = interrupted(tmp_path / "m", 2, max_steps=6, checkpoint_every=2)
    with pytest.raises(AdapterxlError, match="pass --resume") as e:
        quick("mnli", tmp_path / "m", max_steps=6, checkpoint_every=2)
    assert str(where) in str(e.value)
    with pytest.raises(AdapterxlError, match="--lr is 0.001 .* made with 0.003") as e:
        quick("mnli", tmp_path / "m", max_steps=6, lr=1e-3, resume=True)
    with pytest.raises(AdapterxlError, match="--max-steps"):
        quick("mnli", tmp_path / "m", max_steps=7, resume=True)
    assert checkpoint.load(where)["step"] == 2  # refusing touched nothing
    # checkpoint_every may change on resume: it does not change what is computed
    assert quick("mnli", tmp_path / "m", max_steps=6, checkpoint_every=0,
                 resume=True)["resumed_from_step"] == 2

    # through the CLI: one line, saying where it looked
    result = CliRunner().invoke(main, [
        "train-intermediate", "--task", "mnli", "--model", "builtin:tiny-xlmr", "--data",
        "samples", "-o", str(tmp_path / "fresh"), "--resume"])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: cannot resume: no checkpoint at ")
    assert str(tmp_path / "fresh.checkpoint" / checkpoint.FILE) in line


def test_nan_loss_keeps_the_checkpoint(tmp_path):
    with pytest.raises(AdapterxlError) as e:
        quick("mnli", tmp_path / "m", max_steps=10, lr=1e30, checkpoint_every=1)
    message = str(e.value)
    where = checkpoint.directory(tmp_path / "m")
    last = checkpoint.load(where)["step"]  # intact and loadable
    assert "\n" not in message
    assert f"at step {last + 1};" in message and f"(step {last})" in message
    assert str(where) in message and "lower the learning rate" in message


def test_checkpoint_holds_no_backbone_weights(tmp_path, tiny):
    # LoRA r=32 makes the trainable weights big enough that the constant part (RNG states,
    # counters) does not dominate: the file is about 4 copies of them (weights, best snapshot,
    # Adam's two moments).
    where = interrupted(tmp_path / "m", 2, max_steps=4, checkpoint_every=2, method="lora",
                        method_config={"r": 32}, backbone=tiny)
    state = checkpoint.load(where)
    trainable = sum(t.numel() * t.element_size()
                    for part in ("module", "head") for t in state[part].values())
    size = (where / checkpoint.FILE).stat().st_size
    backbone = sum(p.numel() * p.element_size() for n, p in tiny.model.named_parameters()
                   if "axl" not in n)
    assert size < 5 * trainable, (size, trainable)
    assert size < backbone / 2, (size, backbone)
    assert all("{module}" in k for k in state["module"])


def test_resume_restores_the_collators_generator(tmp_path, monkeypatch):
    # No catalogue task trains with MLM masking yet, so a classification collator that
    # corrupts tokens with a generator of its own stands in for MaskingCollator. The loader
    # collates one batch ahead of training, which a naive save of the generator gets wrong.
    from adapterxl.formats import get_format

    fmt = type(get_format("pair_classification"))
    plain = fmt.collate

    class Corrupting:
        def __init__(self, base, seed):
            self.base, self.generator = base, torch.Generator().manual_seed(seed)

        def __call__(self, features):
            batch = self.base(features)
            hit = torch.rand(batch["input_ids"].shape, generator=self.generator) < 0.15
            batch["input_ids"][hit & (batch["attention_mask"] == 1)] = 3  # <unk>
            return batch

    def collate(self, tokenizer, device, train, seed):
        base = plain(self, tokenizer, device, train, seed)
        if not train:
            return base
        from adapterxl.data.preprocess import Collator
        return Corrupting(base or Collator(tokenizer.pad_token_id), seed)

    monkeypatch.setattr(fmt, "collate", collate)
    run = dict(RUN, max_steps=16, evals=2)
    interrupted(tmp_path / "r", 10, **run)
    quick("mnli", tmp_path / "r", resume=True, **run)
    quick("mnli", tmp_path / "whole", **run)
    for name in WEIGHTS:
        assert (tmp_path / "r" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
