"""The memory planner (`adapterxl plan`) and random-weight backbones (benchmarks). No GPU: the
planner's predictions are not checked against measurements here (benchmarks/gpu.sh does)."""
import json
import subprocess
import sys
import textwrap

import click
import pytest
import torch
from click.testing import CliRunner

from adapterxl.errors import AdapterxlError
from adapterxl.configs import PUBLISHED, load_config, meta_model
from adapterxl.planning import GIB, plan, weight_breakdown

# The published shapes under the names used below; written to config.json files, so the
# planner's file path is what is tested (PUBLISHED itself plans without files).
CONFIGS = {name: PUBLISHED[hub_id] for name, hub_id in (
    ("xlm-roberta-base", "xlm-roberta-base"), ("xlm-roberta-large", "xlm-roberta-large"),
    ("xlm-roberta-xl", "facebook/xlm-roberta-xl"), ("xlm-roberta-xxl", "facebook/xlm-roberta-xxl"),
    ("mt5-xxl", "google/mt5-xxl"), ("llama-2-13b", "meta-llama/Llama-2-13b-hf"))}
# Known sizes of the bare models adapterxl loads (no pooler, no LM head, mT5 encoder only).
KNOWN = {"xlm-roberta-base": 278e6, "xlm-roberta-large": 560e6, "xlm-roberta-xl": 3.48e9,
         "xlm-roberta-xxl": 10.7e9, "mt5-xxl": 5.66e9,
         # Llama-2-13B is 13.016B with its 164M-parameter LM head; the bare model 12.852B.
         "llama-2-13b": 13.016e9 - 32000 * 5120}


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    root = tmp_path_factory.mktemp("configs")
    out = {}
    for name, spec in CONFIGS.items():
        (root / f"{name}.json").write_text(json.dumps(spec))
        out[name] = str(root / f"{name}.json")
    return out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_meta_parameter_counts_match_known_sizes(configs, name):
    model = meta_model(load_config(configs[name]))
    total = sum(p.numel() for p in model.parameters())
    assert abs(total - KNOWN[name]) / KNOWN[name] < 0.01, total
    assert all(p.device.type == "meta" for p in model.parameters())
    if name == "xlm-roberta-large":
        emb = weight_breakdown(model)["embeddings"]["params"]
        assert abs(emb - 256e6) / 256e6 < 0.01


def test_quantization_factors_and_embeddings(configs):
    model = meta_model(load_config(configs["xlm-roberta-large"]))
    w = {q: weight_breakdown(model, q, "bf16") for q in ("none", "8bit", "4bit")}
    lin = {q: w[q]["linear"]["bytes"] for q in w}
    n = w["none"]["linear"]["params"]
    assert lin["none"] == 2 * n
    assert lin["none"] / lin["8bit"] == pytest.approx(2.0, rel=0.01)   # + fp32 row scales
    assert lin["4bit"] * 8 / n == pytest.approx(4.127, abs=0.01)       # NF4 + double quant
    for q in w:  # embeddings: 2 bytes/param whatever the quantization, never upcast
        emb = w[q]["embeddings"]
        assert emb["bytes"] == 2 * emb["params"] and emb["params"] > 250e6
        assert w[q]["linear_fp32"]["params"] == 0
    # mT5: transformers keeps `wo` unquantized and in fp32 under 8/4-bit
    mt5 = weight_breakdown(meta_model(load_config(configs["mt5-xxl"])), "4bit", "bf16")
    assert mt5["linear_fp32"]["params"] == 24 * 4096 * 10240
    assert mt5["linear_fp32"]["bytes"] == 4 * mt5["linear_fp32"]["params"]


@pytest.mark.parametrize("method,cfg", [("seq_bn", {}), ("lora", {}),
                                        ("lora", {"r": 4, "matrices": ["q", "k", "v", "o"]})])
def test_module_counts_equal_a_real_modular_model(tiny, method, cfg):
    from adapterxl.heads import head_config
    from adapterxl.modules import ModularModel

    net = ModularModel(tiny, [method])
    slot = net.add_module(method, cfg, trainable=True)
    net.set_head(head_config("classification", tiny.hidden_size, 3))
    real = net.parameter_counts()
    p = plan("builtin:tiny-xlmr", method=method, method_config=cfg)
    assert p["params"]["module"] == real[slot.name]
    assert p["params"]["head"] == real["heads"]


def test_micro_batch_search_is_monotone_in_gpu_size(configs):
    micro = []
    for gib in (8, 16, 24, 40, 80, 141):
        p = plan(configs["xlm-roberta-large"], batch=64, gpu_memory=f"{gib}GiB")
        f = next(iter(p["fits"].values()))
        micro.append(f["plain"]["max_micro_batch"])
        if f["plain"]["micro_batch"]:
            assert 64 % f["plain"]["micro_batch"] == 0
            assert f["plain"]["micro_batch"] * f["plain"]["accumulation"] == 64
    assert micro == sorted(micro) and micro[0] < micro[-1]
    # activations grow with the micro-batch; checkpointing saves memory
    p = plan(configs["xlm-roberta-xxl"], seq_len=512, batch=64, gpu_memory="h100")
    f = p["fits"]["h100"]
    assert f["checkpointing"]["max_micro_batch"] > f["plain"]["max_micro_batch"]
    assert p["memory_at_batch"]["allocated"] > 60 * GIB


def test_eager_attention_adds_the_quadratic_term(configs):
    sdpa = plan(configs["xlm-roberta-base"], attention="sdpa", batch=1)
    eager = plan(configs["xlm-roberta-base"], attention="eager", batch=1)
    s, a, L, h = 256, 12, 12, 768
    # eager keeps q, k, v, the softmax output, the dropout mask and its output (2 + 1 + 2
    # bytes per score); SDPA keeps q, k, v, its output and an fp32 log-sum-exp per head
    eager_attn = 2 * s * (h + 2 * h) + a * s * s * 5
    sdpa_attn = 2 * s * (2 * h + 2 * h) + 4 * s * a
    diff = eager["memory_at_batch"]["activations"] - sdpa["memory_at_batch"]["activations"]
    assert diff == (L - 1) * (eager_attn - sdpa_attn)  # seq_bn: layer 0 keeps only its adapter
    # "auto" is the attention transformers itself picks for the model (for T5: eager before
    # transformers 5, SDPA since)
    for name in ("mt5-xxl", "xlm-roberta-base"):
        built = meta_model(load_config(configs[name])).config._attn_implementation
        assert plan(configs[name], batch=1)["attention"] == built


@pytest.mark.parametrize("name", ["tiny-xlmr", "tiny-bert", "tiny-deberta", "tiny-xlmr-xl",
                                  "tiny-mt5", "tiny-llama", "tiny-qwen2"])
def test_attention_side_adapters_are_told_apart_on_every_family(name):
    """double_seq_bn puts one bottleneck after each layer's attention and one after its FFN.
    The engine holds the attention one on `attention.output` in post-LN encoders, on
    `layer.0` in mT5 and on a hooked `attention_adapters` elsewhere: the planner must see
    an attention site and an output site in every layer of every family."""
    from adapterxl.configs import BUILTIN, config_from_spec
    from adapterxl.planning import module_parameters

    sites = module_parameters(config_from_spec(BUILTIN[name]), "double_seq_bn")["sites"]
    layers = {}
    for site in sites:
        layers.setdefault(site["layer"], []).append(site["attention"])
    assert {k: sorted(v) for k, v in layers.items()} == {0: [False, True], 1: [False, True]}


@pytest.mark.parametrize("name", ["tiny-xlmr", "tiny-xlmr-xl", "tiny-llama", "tiny-mt5"])
@pytest.mark.parametrize("method", ["seq_bn", "lora", "double_seq_bn"])
def test_planner_predicts_what_autograd_saves(name, method):
    """On the CPU every tensor can be counted: the planner's activations (device="cpu") must
    match the bytes autograd saves for backward, and its peak the most tensor memory alive
    over two optimizer steps. (SDPA runs without attention dropout here: the CPU's SDPA
    falls back to the s x s math kernel under dropout, CUDA's flash kernel does not.)"""
    from transformers import AutoConfig

    from adapterxl.configs import BUILTIN
    from adapterxl.planning import measure

    spec = dict(BUILTIN[name])
    if spec["model_type"].startswith("xlm-roberta"):
        spec["attention_probs_dropout_prob"] = 0.0
    got = measure(spec, method, "bf16", seq_len=32, batch=4)
    cfg = dict(spec)
    p = plan(name, method=method, precision="bf16", seq_len=32, batch=4, device="cpu",
             config=AutoConfig.for_model(cfg.pop("model_type"), **cfg))["memory_at_batch"]
    peak = p["frozen_weights"] + p["module_and_head_states"] + p["activations"] + \
        p["activation_transient"]
    assert 0.9 < p["activations"] / got["saved"] < 1.15
    assert 0.85 < peak / got["peak"] < 1.15
    assert abs(p["frozen_weights"] / got["frozen"] - 1) < 0.03


def test_cli_table_json_and_errors(configs):
    from adapterxl.cli import Group
    from adapterxl.cli.cmd_plan import register

    @click.group(cls=Group)
    def main():
        pass

    register(main)
    r = CliRunner().invoke(main, ["plan", "--model", configs["llama-2-13b"], "--quantize",
                                  "4bit", "--method", "lora", "--method-config", "r=16",
                                  "--gpu-memory", "h100"])
    assert r.exit_code == 0, r.output
    assert "NOT yet against" in r.output and "| h100 |" in r.output
    r = CliRunner().invoke(main, ["plan", "--model", configs["xlm-roberta-xl"], "--json"])
    data = json.loads(r.output)
    assert data["params"]["module"] > 0 and set(data["fits"]) == {"h100", "h200"}
    assert data["checked_against_gpu"] is False
    for args in (["--method", "nope"], ["--model", "/nonexistent/config.json"],
                 ["--gpu-memory", "lots"], ["--method-config", "bogus=1"]):
        r = CliRunner().invoke(main, ["plan", "--model", configs[
            "xlm-roberta-base"], *args] if args[0] != "--model" else ["plan", *args])
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_unreadable_config_is_one_error(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(AdapterxlError):
        plan(str(bad))
    bad.write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(AdapterxlError, match="model_type"):
        plan(str(bad))


def test_random_backbone_bf16_shapes_and_seed():
    from adapterxl.backbone import random_backbone

    spec = dict(CONFIGS["xlm-roberta-base"], num_hidden_layers=2, hidden_size=64,
                num_attention_heads=4, intermediate_size=128, vocab_size=5000)
    a = random_backbone(spec, device="cpu", seed=1)
    b = random_backbone(spec, device="cpu", seed=1)
    c = random_backbone(spec, device="cpu", seed=2)
    assert {p.dtype for p in a.model.parameters()} == {torch.bfloat16}
    assert a.model.get_input_embeddings().weight.shape == (5000, 64)
    assert a.model.encoder.layer[0].intermediate.dense.weight.shape == (128, 64)
    assert not any(p.requires_grad for p in a.model.parameters())
    sa, sb, sc = (dict(x.model.state_dict()) for x in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    ids = a.tokenizer("hello world")["input_ids"]
    assert max(ids) < 2000 and len(a.tokenizer) == 2000
    with torch.no_grad():
        out = a.model(input_ids=torch.tensor([ids]))
    assert out.last_hidden_state.dtype == torch.bfloat16


def test_random_backbone_never_materializes_fp32(tmp_path):
    # A mid-sized model (XLM-R base layers, 120k vocabulary: 177M params) in a fresh process:
    # the peak RSS it adds stays well below the fp32 weights alone (4 bytes/param).
    code = textwrap.dedent("""
        import json, resource, sys
        import torch, transformers, adapterxl.backbone as B
        from adapterxl.configs import load_config
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        spec = json.loads(sys.argv[1])
        bb = B.random_backbone(spec, device="cpu")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        n = sum(p.numel() for p in bb.model.parameters())
        dtypes = sorted({str(p.dtype) for p in bb.model.parameters()})
        print(json.dumps({"added": peak - base, "params": n, "dtypes": dtypes}))
    """)
    spec = dict(CONFIGS["xlm-roberta-base"], vocab_size=120000)
    out = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True,
                         text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["dtypes"] == ["torch.bfloat16"]
    assert 170e6 < r["params"] < 185e6
    assert r["added"] < 0.75 * 4 * r["params"], r  # bf16 is 2 bytes/param


def test_published_backbones_plan_without_files_or_network():
    for hub_id, spec in PUBLISHED.items():
        config = load_config(hub_id)
        assert config.model_type == spec["model_type"]
    xxl = plan("facebook/xlm-roberta-xxl", quantize="4bit", batch=16)
    assert 10.6e9 < xxl["params"]["backbone"] < 10.8e9  # XLM-R XXL: 10.7B
