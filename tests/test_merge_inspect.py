"""Merging modules (weighted parameter average; exact LoRA update sums) and inspecting them."""
import json
import shutil

import pytest
import torch

from adapterxl.backbone import load_backbone
from adapterxl.modules import ModularModel, install, load_for_inference, open_module
from adapterxl.evaluation.fusion import inspect_module
from adapterxl.modules.inspect import format_inspection
from adapterxl.modules.merge import merge_modules
from conftest import batch, cli, fails, quick


# Short runs with one small dev evaluation: the modules only need non-trivial weights. (The
# session fixtures mnli_module / mnli_lora train 60 steps; these keep this file fast alone.)
FAST = dict(max_steps=8, evals=1, max_eval_examples=16)


@pytest.fixture(scope="module")
def mnli_module(tmp_path_factory):
    return quick("mnli", tmp_path_factory.mktemp("m") / "mnli", **FAST)["module"]


@pytest.fixture(scope="module")
def paws_bn(tmp_path_factory):
    """A second seq_bn module (another task, two labels: its head differs from mnli's)."""
    return quick("paws", tmp_path_factory.mktemp("m") / "paws", **FAST)["module"]


@pytest.fixture(scope="module")
def mnli_lora(tmp_path_factory):
    return quick("mnli", tmp_path_factory.mktemp("m") / "mnli-lora", method="lora",
                 **FAST)["module"]


@pytest.fixture(scope="module")
def qqp_lora(tmp_path_factory):
    """A second LoRA module of another rank and another alpha/r than mnli_lora (8, 16)."""
    return quick("qqp", tmp_path_factory.mktemp("m") / "qqp-lora", method="lora",
                 method_config={"r": 4, "alpha": 4}, **FAST)["module"]


def _logits(model, inputs):
    with torch.no_grad():
        return model(**inputs)["logits"]


def _hidden(model, inputs):
    with torch.no_grad():
        return model.encode(**inputs)[0].last_hidden_state


def test_lora_merge_is_the_weighted_sum_of_updates(tmp_path, mnli_lora, qqp_lora):
    w = [0.7, -0.4]
    merged = merge_modules([mnli_lora, qqp_lora], tmp_path / "merged", w)
    a, b = open_module(mnli_lora), open_module(qqp_lora)
    cfg = merged.method_config
    assert cfg["r"] == a.method_config["r"] + b.method_config["r"] == 12
    assert cfg["alpha"] / cfg["r"] == a.method_config["alpha"] / a.method_config["r"]
    assert merged.manifest["head_from"] == "mnli"  # mnli and qqp heads differ
    assert [m["weight"] for m in merged.manifest["merged_from"]] == w
    assert "metrics" not in merged.manifest

    def delta(mod, site):
        t, c = mod.weights(), mod.method_config
        return (c["alpha"] / c["r"]) * (t[f"{site}.lora_B.{{module}}.weight"].double()
                                        @ t[f"{site}.lora_A.{{module}}.weight"].double())

    sites = {k.split(".lora_A.")[0] for k in a.weights() if ".lora_A." in k}
    assert sites
    for site in sites:
        expected = w[0] * delta(a, site) + w[1] * delta(b, site)
        assert torch.allclose(delta(merged, site), expected, atol=1e-6), site

    # End to end: with weights (1, 1) the merged module is the two modules active together.
    summed = merge_modules([mnli_lora, qqp_lora], tmp_path / "sum", [1, 1])
    both = ModularModel(load_backbone("builtin:tiny-xlmr"), ["lora", "lora"])
    install(both, a)
    install(both, b)
    both.eval()
    inputs = batch(both.backbone)
    loaded = load_for_inference(load_backbone("builtin:tiny-xlmr"), summed)
    assert torch.allclose(_hidden(loaded, inputs), _hidden(both, inputs), atol=1e-5)


def test_seq_bn_merge_weights(tmp_path, mnli_module, paws_bn):
    first = merge_modules([mnli_module, paws_bn], tmp_path / "first", [1, 0])
    inputs = batch(load_backbone("builtin:tiny-xlmr"))
    original = load_for_inference(load_backbone("builtin:tiny-xlmr"), open_module(mnli_module))
    merged = load_for_inference(load_backbone("builtin:tiny-xlmr"), first)
    assert torch.equal(_logits(merged, inputs), _logits(original, inputs))

    half = merge_modules([mnli_module, paws_bn], tmp_path / "half", name="soup")
    assert half.name == "soup" and half.manifest["head_from"] == "mnli"
    a, b, m = open_module(mnli_module).weights(), open_module(paws_bn).weights(), half.weights()
    assert a.keys() == m.keys()
    for k in a:
        assert torch.allclose(m[k].double(), 0.5 * a[k].double() + 0.5 * b[k].double(),
                              atol=1e-7), k
    assert torch.equal(half.head_weights()["out_proj.weight"],
                       open_module(mnli_module).head_weights()["out_proj.weight"])


def test_same_heads_are_averaged(tmp_path, mnli_module):
    merged = merge_modules([mnli_module, mnli_module], tmp_path / "self", [0.25, 0.75])
    assert "head_from" not in merged.manifest
    assert merged.name == "merge-mnli+mnli"
    orig = open_module(mnli_module)
    for mine, theirs in ((merged.weights(), orig.weights()),
                         (merged.head_weights(), orig.head_weights())):
        for k in theirs:
            assert torch.allclose(mine[k], theirs[k], atol=1e-7), k


def test_merged_module_stacks(tmp_path, mnli_module, paws_bn):
    cli_out = cli("merge", "--merge", f"{mnli_module},{paws_bn}", "--weights", "0.5,0.5",
                  "-o", tmp_path / "merged")
    assert cli_out.exit_code == 0, cli_out.output
    assert "saved to" in cli_out.output
    result = quick("xnli", tmp_path / "xnli", stack=[str(tmp_path / "merged")],
                   **dict(FAST, max_steps=2))
    target = open_module(result["module"])
    assert [m.name for m in target.chain()] == ["merge-mnli+paws", "xnli"]

    # inspect: the chain, bottom first, with the parameter counts the model has.
    info = inspect_module(result["module"])
    assert [n["name"] for n in info["composition"]] == ["merge-mnli+paws", "xnli"]
    counts = load_for_inference(load_backbone("builtin:tiny-xlmr"), target).parameter_counts()
    assert [n["parameters"] for n in info["composition"]] == [counts["axl0"], counts["axl1"]]
    assert info["head_parameters"] == counts["heads"]
    assert info["parameters"] == sum(counts.values())
    assert all(n["intact"] for n in info["composition"])
    assert info["composition"][0]["method"] == "seq_bn"
    assert "merge-mnli+paws" in format_inspection(info)

    out = cli("inspect", result["module"], "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["composition"][1]["name"] == "xnli"


def _edited_copy(module, dest, section, key, value):
    """A copy of `module` whose manifest has manifest[section][key] = value."""
    shutil.copytree(module, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest[section][key] = value
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def test_merge_refusals(tmp_path, mnli_module, mnli_lora):
    fails("merge", "--merge", f"{mnli_module},{mnli_lora}", "-o", tmp_path / "x",
          match="method is lora")
    other = _edited_copy(mnli_module, tmp_path / "other", "backbone", "fingerprint",
                         "0000000000000000")
    fails("merge", "--merge", f"{mnli_module},{other}", "-o", tmp_path / "x",
          match="fingerprint 0000000000000000")
    dora = _edited_copy(mnli_lora, tmp_path / "dora", "method", "name", "dora")
    fails("merge", "--merge", f"{dora},{mnli_lora}", "-o", tmp_path / "x", match="DoRA")
    fails("merge", "--merge", f"{mnli_module},{mnli_module}", "--weights", "1", "-o",
          tmp_path / "x", match="1 numbers for 2 modules")
    fails("merge", "--merge", f"{mnli_module},{mnli_module}", "--weights", "1,x", "-o",
          tmp_path / "x", match="--weights expects numbers")
    assert not (tmp_path / "x").exists()


def test_merge_refuses_different_configs_and_stacks(tmp_path, mnli_module):
    wide = tmp_path / "wide"
    shutil.copytree(mnli_module, wide)
    manifest = json.loads((wide / "manifest.json").read_text())
    manifest["method"]["config"]["reduction_factor"] = 8
    (wide / "manifest.json").write_text(json.dumps(manifest))
    fails("merge", "--merge", f"{mnli_module},{wide}", "-o", tmp_path / "x",
          match="reduction_factor=8")
    stacked = quick("xnli", tmp_path / "stacked", stack=[mnli_module],
                    **dict(FAST, max_steps=1))["module"]
    fails("merge", "--merge", f"{stacked},{mnli_module}", "-o", tmp_path / "x",
          match="stacked on nothing")


def test_inspect_fusion_weights(tmp_path, mnli_module, paws_bn):
    fused = quick("xnli", tmp_path / "fusion", fuse=[mnli_module, paws_bn],
                  **dict(FAST, max_steps=2))
    fusion = open_module(fused["module"])
    fails("merge", "--merge", f"{fused['module']},{mnli_module}", "-o", tmp_path / "x",
          match="it is a fusion")

    info = inspect_module(fused["module"], data="samples", max_examples=16)
    top = info["composition"][-1]
    assert top["kind"] == "fusion"
    assert [c["name"] for c in top["children"]] == ["mnli", "paws"]
    counts = load_for_inference(load_backbone("builtin:tiny-xlmr"), fusion).parameter_counts()
    assert [c["parameters"] for c in top["children"]] == [counts["axl0"], counts["axl1"]]
    assert top["parameters"] == counts["axlfusion"]
    sites = info["fusion_weights"]
    assert len(sites) == 2  # one per layer of the tiny backbone
    for weights in sites.values():
        assert set(weights) == {"mnli", "paws"}
        assert sum(weights.values()) == pytest.approx(1, abs=1e-5)
    assert info["fusion_average"]["mnli"] == pytest.approx(
        sum(w["mnli"] for w in sites.values()) / len(sites))
    text = format_inspection(info)
    assert "average" in text and "paws" in text

    # Without data AdapterFusion's weights are not measured (and no backbone is loaded).
    assert inspect_module(fused["module"])["fusion_weights"] is None
    out = cli("inspect", fused["module"], "--data", "samples", "--max-examples", "8", "--json")
    assert out.exit_code == 0, out.output
    assert set(json.loads(out.stdout)["fusion_average"]) == {"mnli", "paws"}


def test_inspect_lora_fusion_needs_no_data(tmp_path, mnli_lora, qqp_lora):
    fused = quick("xnli", tmp_path / "fusion", fuse=[mnli_lora, qqp_lora], method="lora",
                  **dict(FAST, max_steps=2))
    info = inspect_module(fused["module"])
    sites = info["fusion_weights"]
    assert sites and all(sum(w.values()) == pytest.approx(1, abs=1e-5) for w in sites.values())
    assert any("query" in s for s in sites)


def test_methods_command():
    out = cli("methods")
    assert out.exit_code == 0, out.output
    assert "lora" in out.output and "peft" in out.output
    rows = json.loads(cli("methods", "--json").stdout)
    assert {r["name"] for r in rows} >= {"seq_bn", "lora", "dora", "ia3"}
