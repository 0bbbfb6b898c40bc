"""SIGTERM / SIGUSR1 / Ctrl-C: a checkpoint at the next step boundary, then a clean exit saying
how to resume; tested by signalling a real training process."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapterxl.preemption import Interrupted, StopRequest

ROOT = Path(__file__).resolve().parent.parent


def _start(output, *extra):
    # Enough steps that the run is always still training when the signal comes.
    args = [sys.executable, "-c", "from adapterxl.cli import main; main()",
            "train-intermediate", "--task", "mnli", "--model", "builtin:tiny-xlmr",
            "--data", "samples", "--max-steps", "100000", "--batch-size", "4",
            "--max-length", "32", "--max-train-examples", "64", "--checkpoint-every", "1",
            "-o", str(output), *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _step(info: Path) -> int:
    try:
        return json.loads(info.read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def _signal_after(proc, info: Path, beyond: int, signum) -> tuple[str, int]:
    """Wait until the run has checkpointed a step past `beyond`, signal it, return (its
    output, exit code)."""
    deadline = time.monotonic() + 300
    while _step(info) <= beyond:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never reached its training loop"
        time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    return out + err, proc.returncode


@pytest.mark.slow
def test_signals_checkpoint_and_say_how_to_resume(tmp_path):
    out = tmp_path / "mnli"
    info = tmp_path / "mnli.checkpoint" / "checkpoint.json"
    err, code = _signal_after(_start(out), info, 0, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("stopped by SIGTERM at step ") and "--resume" in line, err
    assert str(tmp_path / "mnli.checkpoint") in line
    stopped = int(line.split("at step ")[1].split("/")[0])
    assert _step(info) == stopped  # the checkpoint is of the step it stopped at
    assert not out.exists()

    # The resumed run continues from there; a Slurm-style SIGUSR1 stops it the same way.
    err, code = _signal_after(_start(out, "--resume"), info, stopped, signal.SIGUSR1)
    assert code == 128 + signal.SIGUSR1, err
    assert f"resuming from the checkpoint at step {stopped}/" in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("stopped by SIGUSR1") and int(
        line.split("at step ")[1].split("/")[0]) > stopped

    # Ctrl-C is the same clean stop.
    err, code = _signal_after(_start(out, "--resume"), info, _step(info), signal.SIGINT)
    assert code == 130 and err.strip().splitlines()[-1].startswith("stopped by SIGINT"), err


def test_second_ctrl_c_stops_at_once_and_says_where_the_checkpoint_is():
    previous = signal.getsignal(signal.SIGINT)
    with StopRequest(lambda: "interrupted at step 3/9; the last checkpoint ...") as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.signum == signal.SIGINT
        with pytest.raises(Interrupted, match="the last checkpoint"):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is previous  # handlers are put back
