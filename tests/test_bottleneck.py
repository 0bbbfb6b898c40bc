"""The native bottleneck engine's own behaviour beyond AdapterHub parity: one engine per
backbone, AdapterFusion's regulariser in the training loss, AdapterHub configs mapped to
methods and back, prefix tuning refused in one line."""
import pytest
import torch

from adapterxl.errors import AdapterxlError
from adapterxl.heads import head_config
from adapterxl.modules import ModularModel, _adapterhub, _bottleneck
from conftest import batch, fails


def test_second_model_on_a_backbone_reuses_the_engine(tiny):
    first = ModularModel(tiny, ["seq_bn_inv"])
    first.add_module("seq_bn_inv", {}, trainable=True)
    second = ModularModel(tiny, ["seq_bn"])
    slot = second.add_module("seq_bn", {}, trainable=True)
    layer = tiny.model.encoder.layer[0].output
    assert len(layer._forward_hooks) == 1  # hooks registered once
    # The first model's invertible adapter of the same slot name is gone with it.
    assert slot.name not in tiny.model.invertible_adapters


def test_fusion_regulariser_is_added_to_the_training_loss(tiny):
    model = ModularModel(tiny, ["seq_bn"])
    members = [model.add_module("seq_bn", {}, False, fused=True) for _ in range(2)]
    model.add_fusion(members, trainable=True)
    model.set_head(head_config("classification", 64, 3))
    with torch.no_grad():
        for n, p in model.encoder.named_parameters():
            if n.endswith("value.weight") and "adapter_fusion_layer" in n:
                p.add_(0.1)  # move V away from the identity: a penalty to see
    inputs = dict(batch(tiny), labels=torch.tensor([0, 1, 2, 0, 1, 2]))
    reg = model._bottleneck.regularization()
    expected = sum(0.01 * (torch.eye(64) - p.detach()).pow(2).sum()
                   for n, p in model.encoder.named_parameters()
                   if n.endswith("value.weight") and "adapter_fusion_layer" in n)
    assert reg is not None and torch.isclose(reg, expected)
    model.train()
    torch.manual_seed(0)
    with_penalty = model(**inputs)["loss"]
    # A frozen fusion is not penalised: same dropout draws, the loss without the term.
    for n, p in model.encoder.named_parameters():
        if "adapter_fusion_layer" in n:
            p.requires_grad_(False)
    torch.manual_seed(0)
    without = model(**inputs)["loss"]
    assert torch.isclose(with_penalty - without, reg, atol=1e-5)


@pytest.mark.parametrize("method", ["seq_bn", "double_seq_bn", "par_bn", "compacter",
                                    "seq_bn_inv"])
def test_adapterhub_config_round_trip(method):
    config = {"reduction_factor": 8, "non_linearity": "gelu"}
    method_back, config_back = _adapterhub.from_adapterhub(
        _adapterhub.to_adapterhub(method, config))
    assert method_back == method
    assert {k: config_back[k] for k in config} == config


def test_adapterhub_config_the_engine_does_not_compute_is_refused():
    config = _adapterhub.to_adapterhub("seq_bn", {})
    with pytest.raises(AdapterxlError, match="use_gating"):
        _adapterhub.from_adapterhub(dict(config, use_gating=True))
    with pytest.raises(AdapterxlError, match="residual_before_ln must be true or false"):
        method, ours = _adapterhub.from_adapterhub(dict(config, residual_before_ln="post_add"))
        _bottleneck.full_config(method, ours)
    with pytest.raises(AdapterxlError, match="matches none"):
        _adapterhub.from_adapterhub(dict(config, mh_adapter=True, original_ln_before=True,
                                         is_parallel=True))


def test_prefix_is_refused_in_one_line(tmp_path):
    fails("train-intermediate", "--task", "mnli", "--model", "builtin:tiny-xlmr", "--method",
          "prefix", "--data", "samples", "-o", tmp_path / "p", match="prefix tuning")
    assert not (tmp_path / "p").exists()


def test_unknown_layout_is_refused(tiny):
    del tiny.model.encoder.layer[0].output.dropout
    with pytest.raises(AdapterxlError, match="cannot attach"):
        _bottleneck.Engine(tiny.model, "xlm-roberta")
