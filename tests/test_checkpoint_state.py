"""The training state a checkpoint holds (checkpoint.TrainState / RunKey): saved in the
FORMAT_VERSION 2 layout that runs before it wrote (one flat dict), read back equal, and refused
when another backbone, data or process count made it."""
import math

import numpy as np
import pytest
import torch

from adapterxl import checkpoint
from adapterxl.checkpoint import RunKey, TrainState
from adapterxl.errors import AdapterxlError

# The keys of a FORMAT_VERSION 2 checkpoint as train.py packed them by hand: files written
# before TrainState existed must still resume.
V2_KEYS = {"format_version", "config", "fingerprint", "batches", "step", "position", "tokens",
           "seen", "running", "seconds", "history", "best", "module", "head", "optimizer",
           "scheduler", "rng", "masking", "processes"}
KEY = RunKey({"task": "mnli", "lr": 0.003}, "abc123", {"mnli": 15}, 1)


def _state() -> TrainState:
    snapshot = {"module": {"w": torch.ones(2)}, "head": {"b": torch.zeros(1)}}
    return TrainState(step=10, position=21, tokens=512, seen=160, running=0.69, seconds=3.5,
                      history=[{"step": 10, "loss": 0.69, "accuracy": np.float64(0.5)}],
                      best={"metric": 0.5, "step": 10, "state": snapshot,
                            "values": {"accuracy": np.float32(0.5)}},
                      masking=torch.Generator().manual_seed(3).get_state())


def _weights() -> dict:
    layer = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1)
    layer(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return {"module": layer.state_dict(), "head": {"b": torch.zeros(1)},
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}


def test_state_saves_in_the_v2_layout_and_reads_back_equal(tmp_path):
    state = _state()
    checkpoint.save_state(tmp_path, KEY, state, _weights(), {"step": state.step})
    saved = checkpoint.load(tmp_path)  # weights_only=True: numpy scalars became floats
    assert set(saved) == V2_KEYS and saved["format_version"] == 2
    back = checkpoint.restored_state(saved, KEY, tmp_path)
    assert (back.step, back.position, back.tokens, back.seen) == (10, 21, 512, 160)
    assert (back.running, back.seconds) == (0.69, 3.5)
    assert back.history == [{"step": 10, "loss": 0.69, "accuracy": 0.5}]
    assert back.best["values"] == {"accuracy": 0.5} and back.best["step"] == 10
    assert torch.equal(back.best["state"]["module"]["w"], torch.ones(2))
    assert torch.equal(back.masking, state.masking)
    assert saved["optimizer"]["state"] and saved["rng"]["torch"].dtype == torch.uint8


def test_a_fresh_state_has_no_best_yet():
    state = TrainState()
    assert state.step == 0 and state.best["state"] is None and state.best["metric"] == -math.inf
    assert TrainState().history is not state.history  # no list shared between runs


@pytest.mark.parametrize("other, says", [
    (RunKey(KEY.config, "zzz999", KEY.batches, 1), "backbone's weights differ"),
    (RunKey(KEY.config, KEY.fingerprint, {"mnli": 16}, 1), "training data changed"),
    (RunKey(KEY.config, KEY.fingerprint, KEY.batches, 2), "made by 1 process"),
])
def test_another_run_is_refused_in_one_line(tmp_path, other, says):
    checkpoint.save_state(tmp_path, KEY, _state(), _weights(), {})
    with pytest.raises(AdapterxlError, match=says) as e:
        checkpoint.restored_state(checkpoint.load(tmp_path), other, tmp_path)
    assert "\n" not in str(e.value) and str(tmp_path) in str(e.value)


def test_a_checkpoint_without_a_process_count_was_made_by_one(tmp_path):
    checkpoint.save_state(tmp_path, KEY, _state(), _weights(), {})
    saved = checkpoint.load(tmp_path)
    del saved["processes"]  # written before data parallelism counted processes
    assert checkpoint.restored_state(saved, KEY, tmp_path).step == 10
    with pytest.raises(AdapterxlError, match="made by 1 process"):
        checkpoint.restored_state(saved, RunKey(KEY.config, KEY.fingerprint, KEY.batches, 2),
                                  tmp_path)
