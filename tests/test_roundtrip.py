"""Save -> load gives identical logits, for single modules and for stacks."""
import pytest
import torch

from adapterxl.backbone import load_backbone
from adapterxl.heads import head_config
from adapterxl.modules import assemble, load_for_inference, open_module
from conftest import batch, logits, randomize, save_nli_module


@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_single_module_roundtrip(tmp_path, tiny, method):
    model, slot = assemble(tiny, [], method=method, head=head_config("classification", 64, 3))
    randomize(model, slot, 0)
    inputs = batch(tiny)
    expected = logits(model, inputs)
    save_nli_module(model, slot, tmp_path / "mod")
    loaded = load_for_inference(load_backbone("builtin:tiny-xlmr"), open_module(tmp_path / "mod"))
    assert torch.equal(logits(loaded, inputs), expected)


@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_stack_roundtrip(tmp_path, tiny, method):
    lower_model, lower_slot = assemble(tiny, [], method=method,
                                       head=head_config("classification", 64, 3))
    randomize(lower_model, lower_slot, 1)
    lower = save_nli_module(lower_model, lower_slot, tmp_path / "lower", task="mnli")

    fresh = load_backbone("builtin:tiny-xlmr")
    model, top = assemble(fresh, lower.chain(), method=method,
                          head=head_config("classification", 64, 3))
    randomize(model, top, 2)
    inputs = batch(fresh)
    expected = logits(model, inputs)
    saved = save_nli_module(model, top, tmp_path / "top", lower=lower.chain())
    assert [m.name for m in open_module(saved.path).chain()] == ["mnli", "xnli"]
    loaded = load_for_inference(load_backbone("builtin:tiny-xlmr"), open_module(tmp_path / "top"))
    assert torch.equal(logits(loaded, inputs), expected)
    # The stacked module is self-contained: it survives deletion of the original lower module.
    import shutil
    shutil.rmtree(tmp_path / "lower")
    again = load_for_inference(load_backbone("builtin:tiny-xlmr"), open_module(tmp_path / "top"))
    assert torch.equal(logits(again, inputs), expected)
