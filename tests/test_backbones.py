"""Every supported architecture loads as a tiny builtin, and every adapter method either works
on it (forward + backward, gradients only into the adapter) or is listed as unsupported in
adapterxl.architectures. Unsupported combinations run too, as strict xfails: when a library
upgrade (or our engine) fixes one, the test fails and the table must be updated."""
from __future__ import annotations

import pytest
import torch

from adapterxl.architectures import (ADAPTERS_METHODS, ARCHS, MATRICES, PEFT_METHODS,
                                     check_supported, ia3_feedforward, matrices, peft_targets,
                                     unsupported)
from adapterxl.backbone import default_pooling, load_backbone
from adapterxl.errors import AdapterxlError
from adapterxl.heads import pool
from adapterxl.modules import _bottleneck

BUILTINS = {"tiny-xlmr": "xlm-roberta", "tiny-xlmr-xl": "xlm-roberta-xl", "tiny-mt5": "mt5",
            "tiny-deberta": "deberta-v2", "tiny-bert": "bert", "tiny-llama": "llama",
            "tiny-qwen2": "qwen2"}
TEXTS = ["Der Hund schläft im Garten.", "Hi"]  # different lengths: right padding is exercised


def _load(name: str):
    return load_backbone(f"builtin:{name}", device="cpu")


def _inputs(backbone) -> dict:
    enc = backbone.tokenizer(TEXTS, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def test_every_arch_has_a_builtin():
    assert set(BUILTINS.values()) == set(ARCHS)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads(name):
    b = _load(name)
    inputs = _inputs(b)
    with torch.no_grad():
        hidden = b.model(**inputs).last_hidden_state
    assert hidden.shape == (2, inputs["input_ids"].shape[1], 64)
    assert b.model_type == BUILTINS[name] and b.hidden_size == 64
    assert b.pooling == ("last" if ARCHS[b.model_type].decoder else "mean")
    assert not any(p.requires_grad for p in b.model.parameters())
    if name == "tiny-mt5":  # the encoder alone, not AutoModel's encoder-decoder MT5Model
        assert type(b.model).__name__ == "MT5EncoderModel"


@pytest.mark.parametrize("name", BUILTINS)
def test_bottleneck_hooks_leave_output_unchanged(name):
    # The native engine's hooks are inert until a module is active, and an inactive module
    # changes nothing.
    b = _load(name)
    inputs = _inputs(b)
    with torch.no_grad():
        before = b.model(**inputs).last_hidden_state
        engine = _bottleneck.Engine(b.model, b.model_type)
        engine.add("x", "seq_bn_inv", {})
        assert torch.equal(b.model(**inputs).last_hidden_state, before)


def test_full_mt5_checkpoint_loads_as_encoder(tmp_path):
    # Real mT5 checkpoints (google/mt5-base) hold encoder and decoder; we must get the encoder
    # with its pretrained weights, not AutoModel's encoder-decoder.
    from transformers import MT5Model

    tiny = _load("tiny-mt5")
    full = MT5Model(tiny.model.config).eval()
    full.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    b = load_backbone(str(tmp_path), device="cpu")
    assert type(b.model).__name__ == "MT5EncoderModel" and b.pooling == "mean"
    inputs = _inputs(b)
    with torch.no_grad():
        assert torch.allclose(b.model(**inputs).last_hidden_state,
                              full.encoder(**inputs).last_hidden_state)


def test_tiny_xlmr_weights_unchanged():
    # Modules record this fingerprint; a changed tiny-xlmr would orphan every saved one.
    # (Builtin version 3: the same on transformers 4.57 and 5.x, see the next test.)
    assert _load("tiny-xlmr").fingerprint == "aad3598a4f44e571"


@pytest.mark.parametrize("name", ["tiny-xlmr", "tiny-mt5", "tiny-llama"])
def test_builtin_weights_do_not_depend_on_transformers_init(name):
    """adapterxl draws the builtin weights itself: whatever transformers' initialisation (and
    the global RNG) left in the model, the drawn weights are the same."""
    from transformers import AutoConfig, AutoModel

    from adapterxl.backbone import _draw_weights
    from adapterxl.configs import BUILTIN

    spec = dict(BUILTIN[name])
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    drawn = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = AutoModel.from_config(config)
        _draw_weights(model, config)
        drawn.append(model.state_dict())
    assert drawn[0].keys() == drawn[1].keys()
    for key in drawn[0]:
        assert torch.equal(drawn[0][key], drawn[1][key]), key
    norms = [k for k in drawn[0] if "norm" in k.lower() and k.endswith("weight")]
    assert norms and all(torch.all(drawn[0][k] == 1) for k in norms)


def test_pooler_kwarg_matches_model_classes():
    import inspect

    from adapterxl.configs import POOLER_KWARG, model_class
    from transformers import AutoConfig, AutoModel

    for model_type in ARCHS:
        cls = model_class(model_type)
        if cls is AutoModel:
            cls = AutoModel._model_mapping[type(AutoConfig.for_model(model_type))]
        takes = "add_pooling_layer" in inspect.signature(cls.__init__).parameters
        assert takes == (model_type in POOLER_KWARG), model_type


def test_default_pooling_of_real_ids():
    assert default_pooling("FacebookAI/xlm-roberta-large", "xlm-roberta") == "first"
    assert default_pooling("facebook/xlm-roberta-xl", "xlm-roberta-xl") == "first"
    assert default_pooling("microsoft/mdeberta-v3-base", "deberta-v2") == "first"
    assert default_pooling("google/mt5-base", "mt5") == "mean"
    assert default_pooling("Qwen/Qwen2-0.5B", "qwen2") == "last"
    assert default_pooling("meta-llama/Llama-3.2-1B", "llama") == "last"
    assert default_pooling("openai-community/gpt2", "gpt2") == "last"  # outside the table
    assert default_pooling("FacebookAI/roberta-base", "roberta") == "first"


def test_last_pooling_picks_last_real_token():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float).view(2, 4, 3)
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    assert torch.equal(pool(hidden, right, "last"), torch.stack([hidden[0, 2], hidden[1, 3]]))
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    assert torch.equal(pool(hidden, left, "last"), hidden[:, 3])


@pytest.mark.parametrize("name", BUILTINS)
def test_each_matrix_is_one_linear_per_layer(name):
    import re

    b = _load(name)
    linears = [n for n, m in b.model.named_modules() if isinstance(m, torch.nn.Linear)]
    for logical, regex in matrices(b.model_type).items():
        hits = [n for n in linears if re.fullmatch(regex, n)]
        assert len(hits) == b.model.config.num_hidden_layers, (logical, hits)
        # Also when the backbone sits inside a wrapper module.
        assert all(re.fullmatch(regex, f"backbone.{n}") for n in hits)


def test_unknown_names_are_refused_in_one_line():
    with pytest.raises(AdapterxlError, match="known: q, k, v, o, ffn_in, ffn_out"):
        peft_targets("bert", ["query"])
    with pytest.raises(AdapterxlError, match="supported: .*xlm-roberta-xl"):
        matrices("gpt2")
    with pytest.raises(AdapterxlError, match="prefix tuning"):
        check_supported("qwen2", "prefix_tuning")
    assert "prefix tuning" in unsupported("bert", "prefix_tuning")


def _step(model, backbone, base: set[int], trainable) -> None:
    """One forward + backward: some adapter parameter gets a gradient, the frozen backbone's
    parameters none."""
    model.train()
    out = model(**_inputs(backbone))
    out.last_hidden_state.float().pow(2).mean().backward()
    params = dict(model.named_parameters())
    assert all(p.grad is None for p in params.values() if id(p) in base)
    got = [n for n, p in params.items()
           if id(p) not in base and p.grad is not None and p.grad.abs().sum() > 0]
    assert got and all(trainable(n) for n in got), got


def _adapters_case(name: str, method: str) -> None:
    b = _load(name)
    base = {id(p) for p in b.model.parameters()}
    engine = _bottleneck.Engine(b.model, b.model_type)
    if method == "prefix_tuning":
        raise AdapterxlError("prefix tuning is not built")  # listed as unsupported everywhere
    if method == "fusion":
        engine.add("a", "seq_bn", {})
        engine.add("b", "seq_bn", {})
        engine.add_fusion("f", ["a", "b"])
        engine.activate([], ("f", ["a", "b"]))
        for n, p in b.model.named_parameters():
            p.requires_grad_("adapter_fusion_layer" in n)
        _step(b.model, b, base, lambda n: "adapter_fusion_layer" in n)
        return
    # Compacter's default reduction (32) leaves a 2-wide bottleneck at hidden size 64, which
    # its phm_dim (4) must divide; real backbones (768+) are fine with the default.
    kwargs = {"reduction_factor": 4} if method == "compacter" else {}
    engine.add("slot", method, kwargs)
    engine.activate(["slot"], None)
    for n, p in b.model.named_parameters():
        p.requires_grad_("slot" in n.split("."))
    _step(b.model, b, base, lambda n: "slot" in n.split("."))


def _peft_case(name: str, method: str) -> None:
    from peft import IA3Config, LoraConfig, get_peft_model

    b = _load(name)
    base = {id(p) for p in b.model.parameters()}
    mixed = method.endswith("+seq_bn")
    method = method.removesuffix("+seq_bn")
    if mixed:  # the bottleneck engine hooks the projections before PEFT wraps them
        engine = _bottleneck.Engine(b.model, b.model_type)
        engine.add("bn", "seq_bn", {})
        engine.activate(["bn"], None)
    targets = peft_targets(b.model_type, list(MATRICES))
    if method == "ia3":
        config = IA3Config(target_modules=targets,
                           feedforward_modules=ia3_feedforward(b.model_type, list(MATRICES)))
    else:
        config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, use_dora=method == "dora")
    model = get_peft_model(b.model, config)
    injected = {n.rsplit(".", 2)[0] for n, _ in model.named_parameters()
                if ".lora_A." in n or ".ia3_l." in n}
    assert len(injected) == len(MATRICES) * b.model.config.num_hidden_layers
    if mixed:  # get_peft_model froze everything but its own parameters
        for n, p in model.named_parameters():
            if "bn" in n.split("."):
                p.requires_grad_(True)
    _step(model, b, base, lambda n: "lora_" in n or "ia3_" in n or "bn" in n.split("."))
    if mixed:
        assert any("bn" in n.split(".") and p.grad is not None
                   for n, p in model.named_parameters())


CASES = [(name, m) for name in BUILTINS
         for m in (*ADAPTERS_METHODS, *PEFT_METHODS, *(f"{p}+seq_bn" for p in PEFT_METHODS))]


def _case_param(name: str, method: str):
    why = unsupported(BUILTINS[name], method.removesuffix("+seq_bn"))
    marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
    return pytest.param(name, method, marks=marks, id=f"{name}-{method}")


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name,method", [_case_param(n, m) for n, m in CASES])
def test_method_trains_only_the_adapter(name, method):
    if method in ADAPTERS_METHODS:
        _adapters_case(name, method)
    else:
        _peft_case(name, method)


def test_materializing_a_builtin_leaves_the_global_rng_alone(tmp_path, monkeypatch):
    """A run that builds the builtin backbone must draw the same module weights as one that
    finds it in the cache (transformers' own init would consume the global RNG)."""
    import torch

    monkeypatch.setenv("ADAPTERXL_HOME", str(tmp_path))
    draws = []
    for _ in range(2):  # the first call materializes, the second reads the cache
        torch.manual_seed(0)
        load_backbone("builtin:tiny-xlmr")
        draws.append(torch.rand(3))
    assert torch.equal(*draws)
