"""Modules written by adapterxl's `adapters` engine (manifest format 1, engine "adapters")
load with the native bottleneck engine and give the same logits (fixtures made by
tests/fixtures/legacy-module/make_legacy.py with the code of before the native engine)."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from adapterxl.backbone import load_backbone
from adapterxl.modules import load_for_inference, open_module

HERE = Path(__file__).parent / "fixtures" / "legacy-module"
_spec = importlib.util.spec_from_file_location("make_legacy", HERE / "make_legacy.py")
make_legacy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_legacy)


@pytest.mark.parametrize("name", ["stack", "fusion"])
def test_legacy_module_same_logits(name):
    record = json.loads((HERE / "expected.json").read_text())
    mod = open_module(HERE / name)
    assert mod.manifest["format_version"] == 1 and mod.manifest["method"]["engine"] == "adapters"
    backbone = load_backbone("builtin:tiny-xlmr", precision="fp32")
    make_legacy.fixed_backbone(backbone.model)
    # force: the builtin's fingerprint is of its own random init, which transformers versions
    # may draw differently; the weights actually used are the fixed ones above.
    model = load_for_inference(backbone, mod, force=True)
    with torch.no_grad():
        logits = model(**make_legacy.inputs())["logits"]
    expected = torch.tensor(record["logits"][name])
    assert (logits - expected).abs().max().item() <= 1e-5


def test_legacy_module_reports_the_engine_that_runs_it():
    from adapterxl.evaluation.fusion import inspect_module

    nodes = inspect_module(str(HERE / "stack"))["composition"]
    assert [n["method"] for n in nodes] == ["seq_bn_inv", "seq_bn"]
    assert {n["engine"] for n in nodes} == {"bottleneck"}  # recorded: "adapters"
