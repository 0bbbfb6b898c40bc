"""A module learns a learnable synthetic task while the backbone stays bit-identical."""
import pytest
import torch

from conftest import quick


def _base_weights(model):
    # PEFT renames wrapped weights (query.weight -> query.base_layer.weight); the bottleneck
    # engine adds new parameters only. Map back to the original names.
    return {n.replace(".base_layer", ""): p.detach().clone() for n, p in model.named_parameters()
            if "axl" not in n}


@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_module_learns_and_backbone_is_unchanged(tmp_path, tiny, method):
    before = _base_weights(tiny.model)
    result = quick("mnli", tmp_path / "m", method=method, max_steps=300, batch_size=32,
                   backbone=tiny)
    # Labels follow hedge / negation words; chance is 1/3.
    assert result["dev"] >= 0.75, result["history"]
    assert result["history"][-1]["accuracy"] > result["history"][0]["accuracy"]
    after = _base_weights(tiny.model)
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), f"backbone weight {name} changed"


def test_only_module_and_head_train(tiny):
    from adapterxl.heads import head_config
    from adapterxl.modules import assemble

    model, top = assemble(tiny, [], method="seq_bn", head=head_config("classification", 64, 3))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable, "nothing trains"
    assert all(".axl0." in n or n.startswith("heads.") for n in trainable), trainable
    assert any(n.startswith("heads.") for n in trainable)
