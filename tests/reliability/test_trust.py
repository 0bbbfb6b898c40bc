"""Module folders and backbones are checked before they are used (issue 16): manifest field
types and head sizes, files that are not regular (a FIFO would hang the reader), damaged files
that would be copied into a new module, pulled files that are not safetensors, pickle
backbones without --allow-pickle, tokenizer code (auto_map) without --trust-remote-code."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fails, quick

TINY = ["--model", "builtin:tiny-xlmr", "--data", "samples", "--max-steps", "1",
        "--max-length", "32", "--batch-size", "8", "--method", "lora"]


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return Path(quick("mnli", tmp_path_factory.mktemp("trust") / "mnli", max_steps=2,
                      method="lora")["module"])


@pytest.fixture
def copy(module, tmp_path):
    return Path(shutil.copytree(module, tmp_path / "copy"))


def _edit(mod, **fields):
    manifest = json.loads((mod / "manifest.json").read_text())
    for dotted, value in fields.items():
        node, *path = dotted.split("__")
        target = manifest
        for part in [node, *path][:-1]:
            target = target[part]
        target[[node, *path][-1]] = value
    (mod / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("edit,match", [
    ({"method": "seq_bn"}, "'method' must be a mapping"),
    ({"backbone": ["x"]}, "'backbone' must be a mapping"),
    ({"head__num_labels": 2_000_000_000}, "not a plausible size"),
    ({"files": {"module.safetensors": 5}}, "sha256 string"),
])
def test_manifest_fields_are_checked_on_open(copy, tmp_path, edit, match):
    _edit(copy, **edit)
    fails("evaluate", "--task", "xnli", "--module", copy, "--data", "samples",
          "--languages", "en", "-o", tmp_path / "eval", match=match)


@pytest.mark.slow
def test_special_files_are_refused_without_hanging(copy, tmp_path):
    weights = copy / "head.safetensors"
    weights.unlink()
    os.mkfifo(weights)
    code = "from adapterxl.cli import main; main()"
    r = subprocess.run([sys.executable, "-c", code, "train-target", "--task", "xnli", *TINY,
                        "--stack", str(copy), "-o", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().startswith("error:") and "not a regular file" in r.stderr
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"outside")
    weights.unlink()
    weights.symlink_to(outside)
    fails("train-target", "--task", "xnli", *TINY, "--stack", copy, "-o", tmp_path / "y",
          match="symbolic link leaving the module")


def test_damaged_modules_are_not_built_on(copy, tmp_path):
    head = copy / "head.safetensors"
    data = bytearray(head.read_bytes())
    data[-2] ^= 0xFF
    head.write_bytes(bytes(data))
    for flag in ("--stack", "--init-from"):
        fails("train-target", "--task", "xnli", *TINY, flag, copy, "-o", tmp_path / "x",
              match="head.safetensors is corrupted")
        assert not (tmp_path / "x").exists()


def test_a_pulled_file_must_be_safetensors(module, tmp_path):
    registry = tmp_path / "registry"
    dest = Path(shutil.copytree(module, registry / "acme" / "fake" / "main"))
    (dest / "head.safetensors").write_bytes(b"not safetensors at all")
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["files"]["head.safetensors"] = hashlib.sha256(b"not safetensors at all").hexdigest()
    (dest / "manifest.json").write_text(json.dumps(manifest))
    fails("pull", "acme/fake", "--registry", registry, match="not a valid safetensors file")
    from adapterxl.hub import cache_dir
    assert not cache_dir("acme/fake").exists()


def _backbone(path):
    """A checkpoint with pickled weights (pytorch_model.bin), as older ones are: transformers 5
    writes only safetensors, so the weights are converted by hand."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from adapterxl.backbone import builtin_path

    AutoModel.from_pretrained(builtin_path("tiny-xlmr")).save_pretrained(path)
    AutoTokenizer.from_pretrained(builtin_path("tiny-xlmr")).save_pretrained(path)
    torch.save(load_file(path / "model.safetensors"), path / "pytorch_model.bin")
    (path / "model.safetensors").unlink()
    return path


def test_pickle_backbones_and_tokenizer_code_need_opt_in(tmp_path):
    pickled = _backbone(tmp_path / "pickled")
    assert not list(pickled.glob("*.safetensors"))
    args = ["--task", "mnli", "--data", "samples", "--max-steps", "1", "--max-length", "32",
            "--batch-size", "8", "--method", "lora"]
    fails("train-intermediate", *args, "--model", pickled, "-o", tmp_path / "m",
          match="--allow-pickle")
    assert not (tmp_path / "m").exists()
    custom = Path(shutil.copytree(pickled, tmp_path / "custom"))
    (custom / "pytorch_model.bin").unlink(missing_ok=True)
    from transformers import AutoModel

    from adapterxl.backbone import builtin_path
    AutoModel.from_pretrained(builtin_path("tiny-xlmr")).save_pretrained(custom)
    config = json.loads((custom / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": ["tok.MyTokenizer", None]}
    (custom / "tokenizer_config.json").write_text(json.dumps(config))
    fails("train-intermediate", *args, "--model", custom, "-o", tmp_path / "m2",
          match="--trust-remote-code", also=["tokenizer_config.json"])
