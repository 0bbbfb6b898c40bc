"""Save -> load gives identical logits, for single modules and for stacks."""
import pytest
import torch

from adapterxl.backbone import load_backbone
from adapterxl.heads import head_config
from adapterxl.modules import assemble, load_for_inference, open_module, save_module
from conftest import batch


def _randomize(model, slot, seed):
    # LoRA's B starts at zero and heads start random: give every module weight a non-trivial
    # value so a lost or misplaced tensor would change the logits.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.encoder.named_parameters():
            if slot.name in n.split("."):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def _save(model, slot, path, task="xnli", lower=()):
    manifest = {"name": task, "task": task, "format": "pair_classification",
                "labels": ["entailment", "neutral", "contradiction"],
                "backbone": model.backbone.describe(),
                "method": {"name": slot.method, "config": slot.config}, "head": model.head_config}
    head = {k: v.detach().clone() for k, v in model.head.state_dict().items()}
    return save_module(path, manifest, model.module_state(slot), head, list(lower))


def _logits(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(**inputs)["logits"]


@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_single_module_roundtrip(tmp_path, tiny, method):
    model, slot = assemble(tiny, [], method=method, head=head_config("classification", 64, 3))
    _randomize(model, slot, 0)
    inputs = batch(tiny)
    expected = _logits(model, inputs)
    _save(model, slot, tmp_path / "mod")
    loaded = load_for_inference(load_backbone("builtin:tiny-xlmr"), open_module(tmp_path / "mod"))
    assert torch.equal(_logits(loaded, inputs), expected)


@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_stack_roundtrip(tmp_path, tiny, method):
    lower_model, lower_slot = assemble(tiny, [], method=method,
                                       head=head_config("classification", 64, 3))
    _randomize(lower_model, lower_slot, 1)
    lower = _save(lower_model, lower_slot, tmp_path / "lower", task="mnli")

    fresh = load_backbone("builtin:tiny-xlmr")
    model, top = assemble(fresh, lower.chain(), method=method,
                          head=head_config("classification", 64, 3))
    _randomize(model, top, 2)
    inputs = batch(fresh)
    expected = _logits(model, inputs)
    saved = _save(model, top, tmp_path / "top", lower=lower.chain())
    assert [m.name for m in open_module(saved.path).chain()] == ["mnli", "xnli"]
    loaded = load_for_inference(load_backbone("builtin:tiny-xlmr"), open_module(tmp_path / "top"))
    assert torch.equal(_logits(loaded, inputs), expected)
    # The stacked module is self-contained: it survives deletion of the original lower module.
    import shutil
    shutil.rmtree(tmp_path / "lower")
    again = load_for_inference(load_backbone("builtin:tiny-xlmr"), open_module(tmp_path / "top"))
    assert torch.equal(_logits(again, inputs), expected)
