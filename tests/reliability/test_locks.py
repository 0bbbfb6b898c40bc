"""Interrupted runs and locks (issue 16): resuming from the final checkpoint trains no more;
what a killed run left is cleaned by the next one; a lock records host, PID and the process's
start time, so a reused PID or garbage content does not make anyone wait forever; every wait
has a timeout naming the lock file; two runs writing one output: the second refuses."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from adapterxl import checkpoint
from adapterxl.errors import AdapterxlError
from conftest import fails, interrupt_at, quick

RUN = dict(max_steps=4, evals=2, max_eval_examples=16, max_train_examples=64, method="lora")


@pytest.fixture
def other_process():
    """A live process that is not this one (its PID and real start time)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _lock(path, **info):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "time": time.time(), **info}))
    return path


@pytest.mark.slow
def test_resume_from_the_final_checkpoint_saves_without_training(tmp_path, monkeypatch):
    whole = quick("mnli", tmp_path / "whole", **RUN)
    with monkeypatch.context() as m:
        interrupt_at(m, RUN["max_steps"])  # killed after the last checkpoint, before saving
        with pytest.raises(AdapterxlError, match="simulated"):
            quick("mnli", tmp_path / "m", **RUN)
    assert checkpoint.load(checkpoint.directory(tmp_path / "m"))["step"] == RUN["max_steps"]
    resumed = quick("mnli", tmp_path / "m", resume=True, **RUN)
    assert resumed["steps"] == whole["steps"] == RUN["max_steps"]
    assert resumed["tokens"] == whole["tokens"]
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["metrics"]["steps"] == RUN["max_steps"]
    assert (manifest["files"] == json.loads((tmp_path / "whole" / "manifest.json")
                                            .read_text())["files"])


@pytest.mark.slow
def test_leftovers_of_a_killed_run_are_cleaned(tmp_path):
    out = tmp_path / "m"
    staging = tmp_path / ".m.tmp-k1ll3d"
    old = tmp_path / ".m.old-k1ll3d"
    for d in (staging, old):
        d.mkdir()
        (d / "module.safetensors").write_bytes(b"half")
    ckpt = checkpoint.directory(out)
    ckpt.mkdir()
    (ckpt / ".checkpoint.pt.x9").write_bytes(b"half")
    _lock(out.with_name("m.lock"), pid=2 ** 22 + 4321, start=1)  # a dead process's lock
    quick("mnli", out, **RUN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_stale_locks_are_recognised(tmp_path, other_process):
    from adapterxl.experiments.cache import ModuleCache

    cache = ModuleCache(tmp_path, poll=0.05, echo=lambda *_: None)
    lock = cache.lock_path("p" * 64, "mnli")
    # the PID is alive but belongs to another process than the one that took the lock
    _lock(lock, pid=other_process, start=1)
    assert "reused" in cache.stale(lock)
    # garbage content waits only a few seconds, not the 600 s of another host's lock
    lock.write_text("\x00garbage")
    assert cache.stale(lock) is None   # may be being written
    old = time.time() - 30
    os.utime(lock, (old, old))
    assert "unreadable" in cache.stale(lock)


def test_every_wait_has_a_timeout_naming_the_lock(tmp_path, other_process):
    from adapterxl.experiments.cache import ModuleCache
    from adapterxl.lock import start_time

    cache = ModuleCache(tmp_path, poll=0.05, echo=lambda *_: None, timeout=0.5)
    lock = _lock(cache.lock_path("w" * 64, "mnli"), pid=other_process,
                 start=start_time(other_process))
    began = time.monotonic()
    with pytest.raises(AdapterxlError) as e:
        cache.ensure("w" * 64, "mnli", {}, lambda path, resume: pytest.fail("trained"))
    assert str(lock) in str(e.value) and f"pid {other_process}" in str(e.value)
    assert time.monotonic() - began < 30


def test_a_second_writer_of_one_output_refuses(tmp_path, other_process):
    from adapterxl.lock import start_time

    out = tmp_path / "m"
    lock = _lock(tmp_path / "m.lock", pid=other_process, start=start_time(other_process))
    fails("train-intermediate", "--task", "mnli", "--model", "builtin:tiny-xlmr", "--data",
          "samples", "--max-steps", "1", "--seed", "7", "--method", "lora", "-o", out,
          match="another process", also=[str(lock), f"pid {other_process}"])
    assert not out.exists() and lock.exists()
