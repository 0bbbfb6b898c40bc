"""Real file-system faults, not monkeypatched ones (issue 16): a full disk (a small tmpfs) and a
read-only file system end in one `error:` line naming the path and what to do, exit code 2, and
leave nothing partial. Needs root (to mount); skipped with the reason otherwise."""
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import cli, fails

TINY = ["--model", "builtin:tiny-xlmr", "--data", "samples", "--max-steps", "2",
        "--max-length", "32", "--batch-size", "8", "--method", "lora"]


def _mount(where, options):
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, f"axl-{uuid.uuid4().hex[:8]}",
                        str(where)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


@pytest.fixture
def disk(tmp_path):
    """A 512 KiB tmpfs, unmounted at the end."""
    where = tmp_path / "disk"
    _mount(where, "size=512k")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk, free):
    """Leave about `free` bytes on `disk`."""
    size = shutil.disk_usage(disk).free - free
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(size, 0))


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "mnli"
    r = cli("train-intermediate", "--task", "mnli", *TINY, "-o", out)
    assert r.exit_code == 0, r.output
    return out


def _only(folder, *names):
    assert sorted(p.name for p in folder.iterdir()) == sorted(names), list(folder.iterdir())


def test_full_disk_while_checkpointing(disk):
    fill(disk, 16 * 1024)
    line = fails("train-intermediate", "--task", "mnli", *TINY, "-o", disk / "m",
                 match="No space left on device",
                 also=[str(disk / "m.checkpoint"), "free space"])
    assert "checkpoint" in line
    _only(disk, "filler")


def test_full_disk_while_saving_the_module(disk, tmp_path):
    # The checkpoint lives elsewhere, so the final save is what meets the full disk.
    elsewhere = tmp_path / "checkpoints"
    elsewhere.mkdir()
    (disk / "m.checkpoint").symlink_to(elsewhere)
    fill(disk, 16 * 1024)
    fails("train-intermediate", "--task", "mnli", *TINY, "-o", disk / "m",
          match="cannot save module to", also=[str(disk / "m"), "No space left on device",
                                               "nothing was written"])
    _only(disk, "filler", "m.checkpoint")
    assert (elsewhere / "checkpoint.pt").is_file()  # the run can be resumed once there is space


@pytest.mark.slow
def test_full_disk_while_writing_predictions(disk, module):
    fill(disk, 0)
    fails("evaluate", "--task", "xnli", "--module", module, "--data", "samples",
          "--languages", "en,de", "--max-length", "32", "-o", disk / "eval",
          match="No space left on device", also=["free space"])
    partial = [p for p in disk.rglob("*") if p.name != "filler"]  # no empty folders either
    assert partial == []


def test_read_only_output(tmp_path, module):
    where = tmp_path / "ro"
    _mount(where, "size=256k,ro")
    try:
        fails("train-intermediate", "--task", "mnli", *TINY, "-o", where / "m",
              match="Read-only file system", also=[str(where / "m")])
        fails("evaluate", "--task", "xnli", "--module", module, "--data", "samples",
              "--languages", "en", "--max-length", "32", "-o", where / "eval",
              match="Read-only file system", also=["write elsewhere"])
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_full_module_cache_fails_the_run(disk, tmp_path):
    fill(disk, 16 * 1024)
    text = open("recipes/quickstart.yaml", encoding="utf-8").read()
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text, encoding="utf-8")
    result = cli("run", recipe, "model=builtin:tiny-xlmr", "train.max_steps=2",
                 "train.batch_size=8", "evaluate.languages=[en]", "grid.methods=[lora]",
                 "--run-dir", tmp_path / "run", "--cache-dir", disk / "cache")
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 of 1 cells failed")
