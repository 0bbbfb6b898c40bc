"""--module-layers (issue 19): a module only in some encoder layers. Its layers are recorded in
the method config (leave_out), so loading and stacking place it identically; backward stops
at the lowest module, since nothing below it needs a gradient; None changes nothing."""
import pytest
import torch

from adapterxl.backbone import load_backbone
from adapterxl.errors import AdapterxlError
from adapterxl.heads import head_config
from adapterxl.modules import (assemble, load_for_inference, method_config, open_module,
                               with_module_layers)
from adapterxl.settings import TrainConfig, layer_selection
from conftest import batch, fails, logits, quick, randomize, save_nli_module

# tiny-xlmr has 2 layers; compacter's bottleneck must be a multiple of phm_dim there
METHODS = {"seq_bn": {}, "double_seq_bn": {}, "par_bn": {}, "compacter": {"reduction_factor": 8},
           "lora": {}, "dora": {}, "ia3": {}}


def test_layer_selection():
    assert layer_selection("top:6", 12) == list(range(6, 12))
    assert layer_selection("6-11", 12) == list(range(6, 12))
    assert layer_selection("0, 2-3,3", 12) == [0, 2, 3]
    assert layer_selection("top:12", 12) == list(range(12))
    for spec, why in [("top:13", "has 12 layers"), ("12", "layer 12 does not exist"),
                      ("4-2", "not a range"), ("top:0", "at least 1"),
                      ("bottom:3", "unknown selection"), ("six", "cannot read"),
                      ("-1", "cannot read")]:
        with pytest.raises(AdapterxlError, match=why):
            layer_selection(spec, 12)
    # the syntax is refused when the config is made, before any backbone loads
    with pytest.raises(AdapterxlError, match="--module-layers must be .*upper:3"):
        TrainConfig(task="xnli", output="o", module_layers="upper:3")


def test_out_of_range_is_one_error_line(tmp_path):
    fails("train-target", "--task", "xnli", "--model", "builtin:tiny-xlmr", "--data", "samples",
          "--module-layers", "top:3", "--max-steps", "1", "-o", tmp_path / "m",
          match="the backbone has 2 layers")


def test_none_changes_nothing():
    for method in METHODS:
        config = method_config(method, METHODS[method])
        assert with_module_layers(method, config, None, 12) is config
    assert "leave_out" not in method_config("lora")  # PEFT manifests stay as they were
    with pytest.raises(AdapterxlError, match="not both"):
        with_module_layers("seq_bn", {"leave_out": [0]}, "top:1", 2)
    with pytest.raises(AdapterxlError, match="embeddings"):
        with_module_layers("seq_bn_inv", {}, "top:1", 2)


def _layer_outputs_need_grad(model, inputs) -> list[bool]:
    """Per encoder layer: does its output take part in the autograd graph of a training step?"""
    seen = []
    hooks = [layer.register_forward_hook(
        lambda m, a, out: seen.append((out[0] if isinstance(out, tuple) else out).requires_grad))
        for layer in model.encoder.get_submodule(_layers(model))]
    try:
        model.train()
        model(labels=torch.zeros(inputs["input_ids"].shape[0], dtype=torch.long),
              **inputs)["loss"].backward()
    finally:
        for h in hooks:
            h.remove()
    return seen


def _layers(model) -> str:
    names = [n for n, _ in model.encoder.named_modules() if n.endswith("encoder.layer")]
    return names[0]


@pytest.mark.parametrize("method", list(METHODS))
def test_module_only_in_chosen_layers_and_backward_stops_there(method):
    backbone = load_backbone("builtin:tiny-xlmr")
    config = with_module_layers(method, METHODS[method], "top:1", 2)
    assert config["leave_out"] == [0]
    model, slot = assemble(backbone, [], method=method, config=config,
                           head=head_config("classification", 64, 3))
    params = [n for n, _ in model.encoder.named_parameters() if slot.name in n.split(".")]
    assert params and all(".layer.1." in n for n in params
                          if ".layer." in n), params  # compacter's shared rule is per module
    assert any(".layer.1." in n for n in params)
    # layer 0 has no module: its output is computed outside the graph (no activations kept,
    # no backward through it); layer 1's takes part
    assert _layer_outputs_need_grad(model, batch(backbone)) == [False, True]


def test_all_layers_keep_the_graph_from_the_bottom():
    # the reference: a module in every layer makes backward run through all of them
    backbone = load_backbone("builtin:tiny-xlmr")
    model, _ = assemble(backbone, [], method="seq_bn", head=head_config("classification", 64, 3))
    assert _layer_outputs_need_grad(model, batch(backbone)) == [True, True]


@pytest.mark.parametrize("lower_layers,upper_layers,method", [
    ("top:1", None, "seq_bn"), (None, "top:1", "seq_bn"), ("1", "0-1", "lora"),
    ("top:1", "top:1", "ia3")])
def test_save_load_and_stack_place_it_identically(tmp_path, lower_layers, upper_layers, method):
    first = load_backbone("builtin:tiny-xlmr")
    lower_model, lower_slot = assemble(
        first, [], method=method, config=with_module_layers(method, {}, lower_layers, 2),
        head=head_config("classification", 64, 3))
    randomize(lower_model, lower_slot, 1)
    inputs = batch(first)
    alone = logits(lower_model, inputs)
    lower = save_nli_module(lower_model, lower_slot, tmp_path / "lower")
    assert torch.equal(logits(load_for_inference(load_backbone("builtin:tiny-xlmr"),
                                                  open_module(tmp_path / "lower")), inputs),
                       alone)

    fresh = load_backbone("builtin:tiny-xlmr")
    model, top = assemble(fresh, lower.chain(), method=method,
                          config=with_module_layers(method, {}, upper_layers, 2),
                          head=head_config("classification", 64, 3))
    randomize(model, top, 2)
    expected = logits(model, inputs)
    save_nli_module(model, top, tmp_path / "top", lower=lower.chain())
    loaded = load_for_inference(load_backbone("builtin:tiny-xlmr"), open_module(tmp_path / "top"))
    assert torch.equal(logits(loaded, inputs), expected)


@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_training_with_module_layers_learns_and_records_them(tmp_path, method):
    result = quick("mnli", tmp_path / "m", method=method, module_layers="top:1",
                   max_steps=200, batch_size=32)
    history = result["history"]
    assert history[-1]["loss"] < history[0]["loss"], history
    assert result["dev"] >= 0.6, history  # chance is 1/3
    module = open_module(result["module"])
    assert module.method_config["leave_out"] == [0]
    assert module.manifest.hyperparameters["module_layers"] == "top:1"
    model = load_for_inference(load_backbone("builtin:tiny-xlmr"), module)
    assert all(".layer.0." not in n for n, _ in model.encoder.named_parameters()
               if ".axl0." in n)


@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_planner_counts_backward_from_the_lowest_module(method):
    """The cost model builds the module with the same method config: with the module in the
    top 2 of 4 layers it predicts what autograd really saves, and less than for all layers."""
    from transformers import AutoConfig

    from adapterxl.configs import BUILTIN
    from adapterxl.planning import measure, plan

    spec = dict(BUILTIN["tiny-xlmr"], num_hidden_layers=4, attention_probs_dropout_prob=0.0)
    cfg = dict(spec)
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    every, top = (plan("tiny", method=method, precision="bf16", seq_len=32, batch=4,
                       device="cpu", config=config, module_layers=layers)
                  for layers in (None, "top:2"))
    assert top["method_config"]["leave_out"] == [0, 1]
    assert top["backward_layers"] < every["backward_layers"]
    got = measure(spec, method, "bf16", seq_len=32, batch=4,
                  method_config=top["method_config"])
    saved = top["memory_at_batch"]["activations"]
    assert 0.9 < saved / got["saved"] < 1.15
    assert saved < every["memory_at_batch"]["activations"]


@pytest.mark.parametrize("method", ["lora", "dora", "ia3"])
def test_peft_export_and_import_keep_the_layers(tmp_path, method):
    from adapterxl.modules.export import export_module, import_module

    first = load_backbone("builtin:tiny-xlmr")
    model, slot = assemble(first, [], method=method,
                           config=with_module_layers(method, {}, "top:1", 2),
                           head=head_config("classification", 64, 3))
    randomize(model, slot, 3)
    inputs = batch(first)
    expected = logits(model, inputs)
    save_nli_module(model, slot, tmp_path / "mod")
    export_module(tmp_path / "mod", "peft", tmp_path / "peft")
    back = import_module(tmp_path / "peft", tmp_path / "back", model="builtin:tiny-xlmr")
    assert back.method_config["leave_out"] == [0]
    loaded = load_for_inference(load_backbone("builtin:tiny-xlmr"), back, force=True)
    assert torch.equal(logits(loaded, inputs), expected)


def test_a_malformed_selection_is_refused_before_anything_loads(tmp_path):
    from adapterxl.experiments.recipe import parse_recipe

    fails("train-target", "--task", "xnli", "--model", "builtin:tiny-xlmr", "--data", "samples",
          "--module-layers", "top-3", "-o", tmp_path / "m", match="--module-layers must be",
          also=("cannot read 'top-3'",))
    text = ("grid: {backbones: [builtin:tiny-xlmr], intermediates: [none], targets: [xnli], "
            "methods: [seq_bn], compositions: [none]}\n"
            "train: {module_layers: 'bottom:2'}\n")
    with pytest.raises(AdapterxlError, match=r"module_layers.*unknown selection 'bottom:2'"):
        parse_recipe(text)
    assert parse_recipe(text.replace("bottom", "top")).settings("target")["module_layers"] \
        == "top:2"
