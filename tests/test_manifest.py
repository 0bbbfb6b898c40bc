"""The module manifest as one class: it round-trips through JSON, reads manifests written
before (format 1), refuses ill-typed fields, and ModuleDir.verify checks the files it records."""
import json
import shutil
from pathlib import Path

import pytest

from adapterxl.errors import AdapterxlError
from adapterxl.modules import Manifest, MethodSpec, open_module
from adapterxl.modules.manifest import FORMAT_VERSION

LEGACY = Path(__file__).parent / "fixtures" / "legacy-module"


def _manifest(**changes) -> Manifest:
    base = dict(name="mnli", task="mnli", format="pair_classification",
                labels=["entailment", "neutral", "contradiction"], languages=["en"],
                backbone={"id": "builtin:tiny-xlmr", "fingerprint": "abc", "hidden_size": 64},
                method=MethodSpec("lora", {"r": 8, "alpha": 16}, "peft"),
                head={"type": "classification", "hidden_size": 64, "num_labels": 3},
                hyperparameters={"lr": 3e-4}, seed=7, metrics={"dev": {"accuracy": 0.5}},
                files={"module.safetensors": "0" * 64, "head.safetensors": "1" * 64})
    return Manifest(**{**base, **changes})


def test_round_trip_through_json():
    manifest = _manifest(extra={"written_by_a_newer_version": [1, 2]})
    text = json.dumps(manifest.to_json())
    back = Manifest.from_json(json.loads(text))
    assert back == manifest
    assert back.method.config == {"r": 8, "alpha": 16} and back.format_version == FORMAT_VERSION
    # unknown keys survive a copy; optional fields never set are not written
    assert json.loads(text)["written_by_a_newer_version"] == [1, 2]
    assert "merged_from" not in json.loads(text) and json.loads(text)["head"] is not None


def test_head_less_module_writes_null_head():
    data = _manifest(head=None).to_json()
    assert data["head"] is None and Manifest.from_json(data).head is None


def test_mapping_view_reads_like_the_json():
    manifest = _manifest()
    assert manifest["method"] == {"name": "lora", "engine": "peft",
                                  "config": {"r": 8, "alpha": 16}}
    assert manifest.get("head_from") is None and "head_from" not in manifest
    assert dict(manifest) == manifest.to_json()


@pytest.mark.parametrize("name", ["stack", "fusion"])
def test_format_1_manifest_reads_and_writes_back_unchanged(name):
    data = json.loads((LEGACY / name / "manifest.json").read_text())
    manifest = Manifest.from_json(data)
    assert manifest.format_version == 1 and manifest.method.engine == "adapters"
    assert manifest.kind == ("fusion" if name == "fusion" else "module")
    assert manifest.to_json() == data


def test_defaults_of_fields_a_format_1_writer_left_out():
    data = json.loads((LEGACY / "stack" / "manifest.json").read_text())
    for key in ("kind", "role", "labels", "fused"):
        data.pop(key, None)
    manifest = Manifest.from_json(data)
    assert (manifest.kind, manifest.role, manifest.labels_for("xnli"), manifest.fused) == \
        ("module", "task", [], None)
    assert manifest.all_heads == {"xnli": data["head"]} and manifest.all_tasks == ["xnli"]


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(format_version=FORMAT_VERSION + 1), "unsupported module format version"),
    (lambda m: m.pop("format_version"), "unsupported module format version None"),
    (lambda m: m.pop("task"), "missing field 'task'"),
    (lambda m: m.update(labels="a,b"), "'labels' must be a list"),
    (lambda m: m["method"].update(name=3), "'method.name' must be a string"),
    (lambda m: m["head"].update(num_labels=0), "not a plausible size"),
])
def test_ill_typed_manifest_is_refused(edit, match):
    data = _manifest().to_json()
    edit(data)
    with pytest.raises(AdapterxlError, match=match):
        Manifest.from_json(data, "where.json")


def test_verify_checks_the_copies_too(tmp_path):
    mod_dir = Path(shutil.copytree(LEGACY / "stack", tmp_path / "stack"))
    open_module(mod_dir).verify(deep=True)
    copy = next((mod_dir / "stack").iterdir())
    weights = copy / "module.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    open_module(mod_dir).verify()  # its own files are intact
    with pytest.raises(AdapterxlError, match=f"stack/{copy.name}: module.safetensors is "
                                             f"corrupted"):
        open_module(mod_dir).verify(deep=True)


def test_verify_refuses_a_file_name_leaving_the_folder(tmp_path):
    mod_dir = Path(shutil.copytree(LEGACY / "fusion", tmp_path / "fusion"))
    data = json.loads((mod_dir / "manifest.json").read_text())
    data["files"]["../elsewhere.safetensors"] = "0" * 64
    (mod_dir / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(AdapterxlError, match="would leave the module folder"):
        open_module(mod_dir).verify()
