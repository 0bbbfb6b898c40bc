"""Stacking: the lower module is frozen and active; init-from continues a module; stacked LoRA
modules add their deltas."""
import pytest
import torch

from adapterxl.backbone import load_backbone
from adapterxl.modules import assemble, load_for_inference, open_module
from adapterxl.modules.model import _neutral
from conftest import batch, quick


@pytest.mark.parametrize("fixture,method", [("mnli_module", "seq_bn"), ("mnli_lora", "lora"),
                                            ("mnli_module", "lora")])  # the last one mixed
def test_stacked_target_keeps_intermediate_frozen_and_active(request, tmp_path, tiny, fixture,
                                                              method):
    lower_dir = request.getfixturevalue(fixture)
    lower = open_module(lower_dir)
    result = quick("xnli", tmp_path / "xnli", stack=[lower_dir], backbone=tiny, method=method)
    # Frozen: after training, the intermediate weights inside the model equal the saved ones.
    in_model = {_neutral(n, "axl0"): p.detach().cpu() for n, p in tiny.model.named_parameters()
                if "axl0" in n.split(".")}
    saved = lower.weights()
    assert in_model.keys() == saved.keys()
    for key in saved:
        assert torch.equal(in_model[key], saved[key]), key

    target = open_module(result["module"])
    assert target.manifest["stacked_on"][0]["name"] == "mnli"
    assert [m.name for m in target.chain()] == ["mnli", "xnli"]

    # Active: the same target module and head without the intermediate give other logits.
    fresh = load_backbone("builtin:tiny-xlmr")
    inputs = batch(fresh)
    with torch.no_grad():
        stacked = load_for_inference(fresh, target)(**inputs)["logits"]
        alone, top = assemble(load_backbone("builtin:tiny-xlmr"), [], method=target.method,
                              config=target.method_config)
        alone.load_module_state(top, target.weights(), "target")
        alone.set_head(target.head_config, target.head_weights())
        alone.eval()
        without = alone(**inputs)["logits"]
    assert not torch.allclose(stacked, without, atol=1e-4)


def test_init_from_continues_the_module(tmp_path, mnli_module):
    result = quick("xnli", tmp_path / "xnli", init_from=mnli_module)
    target = open_module(result["module"])
    assert target.manifest["init_from"]["task"] == "mnli"
    assert [m.name for m in target.chain()] == ["xnli"]  # continued, not stacked
    before, after = open_module(mnli_module).weights(), target.weights()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before), "init-from did not train"


def test_stack_and_init_from_together_are_refused(tmp_path, mnli_module):
    from adapterxl.errors import AdapterxlError

    with pytest.raises(AdapterxlError, match="cannot be combined"):
        quick("xnli", tmp_path / "x", stack=[mnli_module], init_from=mnli_module)


def test_stacked_lora_is_additive(tiny):
    """Two active LoRA modules give W x + s_a B_a A_a x + s_b B_b A_b x (not a chain)."""
    model, a = assemble(tiny, [], method="lora")
    model.slots[0].trainable = False
    b = model.add_module("lora", dict(a.config), trainable=True)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in model.encoder.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    query = model.encoder.encoder.layer[0].attention.self.query
    x = torch.randn(3, 5, 64, generator=g)
    scale = a.config["alpha"] / a.config["r"]
    expected = query.base_layer(x)
    for slot in (a, b):
        expected = expected + scale * query.lora_B[slot.name](query.lora_A[slot.name](x))
    with torch.no_grad():
        got = query(x)
    assert torch.allclose(got, expected, atol=1e-6)
    # And both modules matter: the chained form would differ.
    chained = query.base_layer(x) + scale * query.lora_B[b.name](
        query.lora_A[b.name](scale * query.lora_B[a.name](query.lora_A[a.name](x))))
    assert not torch.allclose(got, chained, atol=1e-3)
