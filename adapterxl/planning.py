"""Predict the peak GPU memory of training a module on a frozen backbone, from the model's
config alone (no weights are read or downloaded), and the largest micro-batch that fits a GPU.

Checked on the CPU, not yet on a GPU: on the CPU every tensor can be counted, and with
`device="cpu"` the predicted saved activations land within 0.98-1.11x and the peak within
0.88-1.11x of the count for four families x six methods x two precisions (most within 10%;
benchmarks/RESULTS.md, transformers 5.23). The CUDA-specific terms (fp32 LayerNorm under autocast, 1-byte dropout
masks, flash attention under dropout, the allocator, cuBLAS and bitsandbytes) are not checked:
`benchmarks/gpu.sh` compares the prediction with `torch.cuda.max_memory_allocated()` when a
GPU is available; the target is within 15%.

How each term is computed (all in bytes; s = sequence length, b = micro-batch, h = hidden size,
f = FFN width, a = attention heads, L = layers):

- Frozen weights, per component, counted on the model built on the `meta` device (exact
  parameter counts, no memory): embeddings (every nn.Embedding: word, position, token type,
  T5's relative bias) stay at the 16-bit precision (2 bytes; 4 with --precision fp32), never
  quantized and never upcast. Linear weights: 2 bytes (bf16/fp16), 4 (fp32); 8bit: 1 byte per
  weight + a float32 scale per output row (LLM.int8 `SCB`); 4bit NF4 with double quantization:
  1/2 byte per weight + 1 byte per 64-block absmax (8-bit) + 4 bytes per 256 such blocks
  (≈ 4.127 bit/param). Linears transformers excludes from quantization are counted as it loads
  them: `_keep_in_fp32_modules` (mT5's `wo`) stay unquantized in **fp32** under 8/4-bit (and
  fp16). Norms and biases: at the precision.
- Module and head: built for real on the meta device with adapterxl's own ModularModel (the
  same code that trains), so counts are exact. fp32 parameters + fp32 gradients + AdamW's two
  fp32 moments (16 bytes/param) + the bf16 copies autocast makes of them (2 bytes/param).
- Activations saved for backward, per frozen layer that gradients pass through (to reach a
  module below), written from what autograd actually saves (counted tensor by tensor on the
  CPU: `measure`, benchmarks/plan_check.py, tests/test_plan.py). A frozen linear saves
  nothing (its input is only needed for its own weight's gradient), so unlike full
  fine-tuning (Korthikanti et al. 2022) the projections' inputs are not kept. What is kept,
  with e = 2 bytes (bf16/fp16) or 4 (fp32), s·b tokens, h hidden, f FFN width, a heads:
      SDPA attention   e·sb·(2·inner + 2·kv) + 4·sb·a     (q, k, v, output; fp32 log-sum-exp)
      eager attention  e·sb·(inner + 2·kv) + a·s²·b·(softmax + probabilities + mask)
      two norms        their input: 4 bytes for RMSNorm (upcast in Python) and for LayerNorm
                       under CUDA autocast (fp32 op), else e; T5's norm also keeps e
      FFN              the activation's saved tensors (counted by running it: 1 for GELU, 4
                       for the Python tanh-GELU) × e·sb·f, + 2·e·sb·f if gated
      dropout          a mask per hidden dropout (1 byte on CUDA, e on the CPU)
  Gradients reach down to the lowest module; in that layer only what sits above the module
  saves (for seq_bn, the adapter alone; for double_seq_bn's attention-side adapter, the layer
  less its attention, its pre-norm and a dropout mask before the adapter). Module sites, read
  from the injected parameters: bottleneck adapter e·sb·(h + m) (+ the norm seq_bn and par_bn
  re-apply on post-LN backbones); LoRA e·sb·(in + r) per matrix (PEFT casts the input to
  fp32, autocast casts it back: a copy is kept); DoRA also 2·e·sb·out and W + BA
  (weight-sized); IA3 the scaled tensor (fp32 when it scales an input). Pre-LN stacks add
  their final norm.
- Transient at the peak (early backward): two FFN-wide gradients and the fp32 residual
  gradient, 2·e·sb·f + 4·sb·h (eager attention: two s×s gradients per head if larger). For
  8/4-bit, two dequantized 16-bit copies of the largest linear weight.
- Allowance outside `max_memory_allocated`: CUDA context and kernels (0.6 GiB) plus 5% of the
  allocated memory for allocator fragmentation; "needs" = allocated × 1.05 + 0.6 GiB is what
  must fit the GPU's total memory.
- Gradient checkpointing: saved per layer only its input (e·sbh; 4·sbh for post-LN under
  CUDA autocast, whose residual stream is fp32), plus one layer's activations
  recomputed at a time; costs ≈ +50% FLOPs on a frozen backbone (4N → 6N per token).

Not modelled (to be measured on a GPU): bitsandbytes' own saved tensors in 8-bit backward,
cuBLAS workspaces beyond the context allowance, the loss/logits of heads over large label sets,
prefix tuning's longer keys/values (its prefix MLP is counted), padding (s is the padded length).
"""
from __future__ import annotations

import math
import re
from types import SimpleNamespace

import torch
from torch import nn

from .configs import (PRECISIONS, QUANTIZE, load_config, matches, meta_model, model_class,
                      not_converted, quiet, torch_dtype)
from .errors import AdapterxlError, unknown

GIB = 2 ** 30
# Total memory as nvidia-smi reports it for the 80 GB H100 (81,559 MiB) and the 141 GB H200
# (143,771 MiB); A100 80 GB 81,920 MiB, A100 40 GB 40,960 MiB, L40S/A6000 46,068 MiB.
GPUS = {"h100": 81559 * 2 ** 20, "h200": 143771 * 2 ** 20, "a100": 81920 * 2 ** 20,
        "a100-40gb": 40960 * 2 ** 20, "l40s": 46068 * 2 ** 20}
CUDA_CONTEXT = int(0.6 * GIB)
FRAGMENTATION = 0.05
BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
CHECKED_AGAINST_GPU = False
NOT_CHECKED = ("checked tensor by tensor on the CPU (benchmarks/plan_check.py), NOT yet against "
               "a GPU's max_memory_allocated (benchmarks/gpu.sh; target: within 15%)")


def _num_layers(config) -> int:
    return getattr(config, "num_hidden_layers", None) or getattr(config, "num_layers")


# ---------------------------------------------------------------------------------- weights
def quantized_bytes(shape: tuple[int, int], quantize: str, precision: str = "bf16") -> int:
    """Bytes of one Linear weight [out, in] as bitsandbytes stores it."""
    out_f, in_f = shape
    n = out_f * in_f
    if quantize == "8bit":
        return n + 4 * out_f                       # int8 weights + fp32 per-row scale (SCB)
    if quantize == "4bit":
        blocks = math.ceil(n / 64)                 # NF4 blocksize 64
        return math.ceil(n / 2) + blocks + 4 * math.ceil(blocks / 256) + 4  # DQ: 8-bit absmax
    return n * BYTES[precision]


def weight_breakdown(model: nn.Module, quantize: str = "none", precision: str = "bf16") -> dict:
    """{component: {"params", "bytes"}} of the frozen backbone as it would sit in GPU memory."""
    skip, keep = not_converted(model, quantize, precision)
    out = {k: {"params": 0, "bytes": 0} for k in ("embeddings", "linear", "linear_fp32",
                                                   "norms_biases")}
    largest = 0
    p = BYTES[precision]
    seen = set()
    for mname, mod in model.named_modules():
        for pname, param in mod.named_parameters(recurse=False):
            if id(param) in seen:  # tied
                continue
            seen.add(id(param))
            n = param.numel()
            if isinstance(mod, nn.Embedding):
                key, nbytes = "embeddings", n * p
            elif isinstance(mod, nn.Linear) and pname == "weight":
                if matches(mname, keep):
                    key, nbytes = "linear_fp32", n * 4
                elif matches(mname, skip):
                    key, nbytes = "linear", n * p
                else:
                    key, nbytes = "linear", quantized_bytes(tuple(param.shape), quantize,
                                                            precision)
                    largest = max(largest, n)
            else:
                key, nbytes = "norms_biases", n * p
            out[key]["params"] += n
            out[key]["bytes"] += nbytes
    out["_largest_linear"] = largest
    return out


# ---------------------------------------------------------------------------------- modules
def _stub_backbone(model: nn.Module, config, precision: str):
    from .backbone import Backbone

    tok = SimpleNamespace(model_input_names=["input_ids", "attention_mask"])
    return Backbone(model=model, tokenizer=tok, id="meta", fingerprint="meta",
                    model_type=config.model_type, hidden_size=config.hidden_size,
                    precision=precision, quantize="none", device=torch.device("meta"))


def module_parameters(config, method: str, method_config: dict | None = None,
                      head: str = "classification", num_labels: int = 3,
                      precision: str = "bf16") -> dict:
    """Build the backbone on the meta device, inject the module with ModularModel (the code
    that trains it) and count: {"module", "head", "backbone", "layers_with_module",
    "embedding_module", "sites"}."""
    from .heads import head_config
    from .modules import ModularModel
    from .modules.methods import get_method, method_config as resolve_config

    get_method(method)
    config_used = resolve_config(method, method_config or {})
    model = meta_model(config, precision)
    backbone_params = sum(p.numel() for p in model.parameters())
    with quiet(), torch.device("meta"):
        net = ModularModel(_stub_backbone(model, config, precision), [method])
        slot = net.add_module(method, config_used, trainable=True)
        net.set_head(head_config(head, config.hidden_size, num_labels))
    counts = net.parameter_counts()
    sites = module_sites(net.encoder, slot.name, config.hidden_size)
    layers = sorted({s["layer"] for s in sites if s["layer"] >= 0})
    embedding = any(s["layer"] < 0 for s in sites) or not sites
    return {"module": counts[slot.name], "head": counts["heads"], "backbone": backbone_params,
            "layers_with_module": layers, "embedding_module": embedding, "sites": sites,
            "method_config": config_used, "model": model}


# ---------------------------------------------------------------------------------- activations
def _attention_dims(config) -> tuple[int, int, int]:
    """(heads, q/k/v inner width, k/v inner width with grouped-query attention)."""
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "num_heads")
    head_dim = getattr(config, "d_kv", None) or getattr(config, "head_dim", None) \
        or config.hidden_size // heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    return heads, heads * head_dim, kv * head_dim


def _dropouts(config) -> tuple[float, float]:
    hidden = getattr(config, "hidden_dropout_prob", None)
    attn = getattr(config, "attention_probs_dropout_prob", None)
    if hidden is None:
        hidden = getattr(config, "dropout_rate", None)
    if attn is None:
        attn = getattr(config, "dropout_rate", getattr(config, "attention_dropout", 0.0))
    return float(hidden or 0.0), float(attn or 0.0)


def _gated(config) -> bool:
    if getattr(config, "is_gated_act", False):
        return True
    return config.model_type in ("llama", "qwen2", "mistral", "gemma", "qwen3")


# How each family's layer is written, as far as saved tensors go: its norm ("layernorm": the
# native op, which CUDA autocast runs in fp32; "rms": an RMSNorm that upcasts to fp32 in
# Python; "t5": T5's RMSNorm, which also keeps its 16-bit input), whether the norm follows
# the residual (post-LN: a bottleneck adapter then applies the layer's norm once more before
# itself), whether softmax runs in fp32 (T5), and how many hidden-sized dropout masks a layer
# saves (XLM-R XL: one; its FFN-output dropout keeps none, as measured), and whether the
# attention output's dropout comes before the engine's attention-side adapter (post-LN and
# T5: the adapter acts on the dropout's output; XLM-R XL: on the dense output, before it).
_FAMILY = {
    "t5": dict(norm="t5", post_ln=False, softmax_fp32=True, ffn_dropout=True, masks=2,
               dropout_below_adapter=True),
    "rms": dict(norm="rms", post_ln=False, softmax_fp32=False, ffn_dropout=False, masks=2,
                dropout_below_adapter=False),
    "pre_ln": dict(norm="layernorm", post_ln=False, softmax_fp32=False, ffn_dropout=False,
                   masks=1, dropout_below_adapter=False),
    "post_ln": dict(norm="layernorm", post_ln=True, softmax_fp32=False, ffn_dropout=False,
                    masks=2, dropout_below_adapter=True),
}


def _family(config) -> dict:
    t = config.model_type
    if t in ("mt5", "t5", "umt5"):
        return _FAMILY["t5"]
    if _gated(config):
        return _FAMILY["rms"]
    return _FAMILY["pre_ln" if t == "xlm-roberta-xl" else "post_ln"]


def uses_sdpa(config) -> bool:
    """Whether transformers runs this architecture with SDPA by default (no s² tensor kept)."""
    cls = model_class(config.model_type)
    try:
        from transformers.models.auto.modeling_auto import MODEL_MAPPING

        cls = MODEL_MAPPING[type(config)] if cls.__name__.startswith("Auto") else cls
    except KeyError:
        return False
    return bool(getattr(cls, "_supports_sdpa", False))


def _activation_saves(config, dtype: torch.dtype) -> float:
    """Tensors of its input's size (in `dtype`) that the FFN's activation function saves for
    backward, counted by running it: 1 for a native GELU or SiLU, 4 for transformers' Python
    tanh-GELU (`gelu_new`)."""
    from transformers.activations import ACT2FN

    name = getattr(config, "hidden_act", None) or getattr(config, "dense_act_fn", "gelu")
    x = torch.randn(256, dtype=dtype, requires_grad=True)
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        ACT2FN[name](x * 1.0)  # * 1.0: the input must be a non-leaf, as in a model
    return sum(seen.values()) / (x.numel() * x.element_size())


def _sizes(precision: str, device: str) -> dict:
    """Bytes per element of the tensors a layer saves. `device` matters: CUDA's dropout saves
    a bool mask (1 byte), the CPU's a mask in the activation dtype; CUDA autocast runs native
    LayerNorm in fp32 (so it saves an fp32 input and fp32 statistics), CPU autocast does not."""
    e = BYTES[precision]
    autocast_fp32_norm = device == "cuda" and e == 2
    return {"e": e, "mask": 1 if device == "cuda" else e,
            "layernorm": 4 if autocast_fp32_norm else e,
            "layernorm_stats": 8 if autocast_fp32_norm else 2 * e}


def _norm_bytes(kind: str, z: dict) -> tuple[int, int]:
    """(bytes per hidden element, bytes per token of statistics) a norm saves."""
    if kind == "rms":
        return 4, 4
    if kind == "t5":
        return 4 + z["e"], 4
    return z["layernorm"], z["layernorm_stats"]


def _cpu_math_sdpa(sdpa: bool, attention_dropout: float, device: str) -> bool:
    """Whether SDPA runs as its math kernel: the CPU's does under attention dropout (CUDA's
    kernels do not), and then upcasts 16-bit inputs to fp32 and keeps the s x s tensors, as
    eager attention does. (The planner's autograd check trains mT5 on the CPU with dropout.)"""
    return sdpa and device == "cpu" and attention_dropout > 0


def layer_activation_bytes(config, seq_len: int, micro_batch: int, precision: str = "bf16",
                           sdpa: bool | None = None, device: str = "cuda") -> int:
    """Bytes one frozen transformer layer saves for backward when gradients must flow
    through it (to a module below): see the module docstring. `device="cpu"` gives what the
    CPU saves (benchmarks/plan_check.py compares it with autograd's saved tensors)."""
    s, b, h = seq_len, micro_batch, config.hidden_size
    f = getattr(config, "intermediate_size", None) or getattr(config, "d_ff")
    hid_drop, _ = _dropouts(config)
    sdpa = uses_sdpa(config) if sdpa is None else sdpa
    fam, z = _family(config), _sizes(precision, device)
    e, sb = z["e"], s * b
    attn = _attention_bytes(config, s, b, precision, sdpa, device)
    norm, stats = _norm_bytes(fam["norm"], z)
    norms = 2 * (norm * sb * h + stats * sb)
    act = _activation_saves(config, torch_dtype(precision))
    ffn = e * sb * f * (act + 2 if _gated(config) else act)
    drops = 0
    if hid_drop:
        drops = fam["masks"] * z["mask"] * sb * h + (z["mask"] * sb * f if fam["ffn_dropout"] else 0)
    return int(attn + norms + ffn + drops)


def _attention_bytes(config, s: int, b: int, precision: str, sdpa: bool, device: str) -> int:
    """What a layer's attention (scores, softmax, q, k, v) saves for backward."""
    heads, inner, kv = _attention_dims(config)
    _, att_drop = _dropouts(config)
    fam, z = _family(config), _sizes(precision, device)
    e, sb = z["e"], s * b
    if _cpu_math_sdpa(sdpa, att_drop, device):  # fp32: q, k, v; softmax, dropout mask, output
        return 4 * sb * (inner + 2 * kv) + heads * s * s * b * 12
    if sdpa:  # q, k, v and the output, plus the fp32 log-sum-exp per head
        return e * sb * (2 * inner + 2 * kv) + 4 * sb * heads
    # q, k, v; softmax output (fp32 in T5), the 16-bit probabilities, dropout mask
    probs = 4 if fam["softmax_fp32"] else e
    if fam["softmax_fp32"] or att_drop:
        probs += e
    if att_drop:
        probs += z["mask"]
    return e * sb * (inner + 2 * kv) + heads * s * s * b * probs


def below_attention_adapter(config, seq_len: int, micro_batch: int, precision: str = "bf16",
                            sdpa: bool | None = None, device: str = "cuda") -> int:
    """The part of `layer_activation_bytes` that sits below the bottleneck engine's
    attention-side adapter, and is not saved in the layer where that adapter is the lowest
    module (no gradient flows there): the attention itself, the pre-norm of a pre-LN layer,
    and the attention output's dropout mask where the adapter follows it."""
    sdpa = uses_sdpa(config) if sdpa is None else sdpa
    fam, z = _family(config), _sizes(precision, device)
    sb, h = seq_len * micro_batch, config.hidden_size
    below = _attention_bytes(config, seq_len, micro_batch, precision, sdpa, device)
    if not fam["post_ln"]:
        norm, stats = _norm_bytes(fam["norm"], z)
        below += norm * sb * h + stats * sb
    if fam["dropout_below_adapter"] and _dropouts(config)[0]:
        below += z["mask"] * sb * h
    return int(below)


# The bottleneck engine's attention sites (modules/_bottleneck.py FAMILIES), by the module that
# holds their adapters: a hooked `attention_adapters` on pre-LN models and decoders, the
# attention sublayer's `attention.output` on post-LN encoders, T5's first (self-attention)
# sublayer `layer.0`. The output sites are `output_adapters`, `output` and `layer.1`.
_ATTENTION_SITE = re.compile(r"(^|\.)(attention_adapters|attention\.output|layer\.0)$")


def module_sites(net: nn.Module, slot: str, hidden: int) -> list[dict]:
    """Where the module sits, read from its parameters' names and shapes: one entry per
    injection site with its layer, kind and widths."""
    layer_re = re.compile(r"(?:layer|block|layers)\.(\d+)\.")
    sites = {}
    for name, p in net.named_parameters():
        parts = name.split(".")
        if slot not in parts:
            continue
        m = layer_re.search(name)
        layer = int(m.group(1)) if m else -1
        if "lora_A" in parts:
            key = name.split(".lora_A.")[0]
            sites.setdefault(key, {"layer": layer, "kind": "lora"}).update(
                r=p.shape[0], width=p.shape[1])
        elif "lora_magnitude_vector" in parts:
            sites.setdefault(name.split(".lora_magnitude_vector.")[0],
                             {"layer": layer, "kind": "lora"}).update(dora=p.shape[0])
        elif "ia3_l" in parts:  # [1, in] scales a projection's input, [out, 1] its output
            sites[name] = {"layer": layer, "kind": "ia3", "width": p.numel(),
                           "scales_input": p.dim() == 2 and p.shape[0] == 1}
        elif ".adapters." in name:
            key = name.split(f".adapters.{slot}.")[0]
            if key not in sites:
                # Whether a norm is counted with the adapter on post-LN backbones: seq_bn
                # applies the sublayer's norm once more before itself (original_ln_before);
                # double_seq_bn and compacter do not (plan_check: 1.14x over with the norm,
                # 0.99x without). par_bn keeps the norm it was measured with (1.00-1.07x).
                adapter = net.get_submodule(f"{key}.adapters.{slot}")
                config = getattr(adapter, "config", None) or {}
                sites[key] = {"layer": layer, "kind": "bottleneck", "width": hidden, "r": 0,
                              "attention": bool(_ATTENTION_SITE.search(key)),
                              "norm_before": bool(config.get("original_ln_before", True)
                                                  or config.get("is_parallel", False))}
            site = sites[key]
            if "adapter_down" in parts and parts[-1] == "weight" and p.dim() == 2:
                site["r"] = p.shape[0]
        elif "invertible_adapters" in parts:
            sites.setdefault("invertible", {"layer": -1, "kind": "invertible",
                                            "width": hidden})
    return list(sites.values())


def module_activation_bytes(sites: list[dict], config, seq_len: int, b: int,
                            precision: str = "bf16", lowest: int = 0,
                            device: str = "cuda", method_config: dict | None = None) -> int:
    """Bytes the module's own computations save for backward, in the layers gradients reach
    (from `lowest` up). A bottleneck adapter keeps its input and its bottleneck (and on a
    post-LN backbone the input of the layer's norm, which the adapter applies once more); a
    LoRA matrix keeps a 16-bit copy of its input (PEFT casts the input to the adapter's dtype,
    autocast casts it back) and the rank-r product, DoRA also the base output; IA3 the tensor
    it scales."""
    fam, z = _family(config), _sizes(precision, device)
    e, sb = z["e"], seq_len * b
    norm, stats = _norm_bytes(fam["norm"], z)
    total = 0
    for site in sites:
        if site["layer"] < lowest and site["layer"] != -1:
            continue
        w = site["width"]
        if site["kind"] == "bottleneck":
            r = site["r"] or max(1, w // int((method_config or {}).get("reduction_factor", 16)))
            again = fam["post_ln"] and site.get("norm_before", True)
            total += e * sb * (w + r) + (norm * sb * w + stats * sb if again else 0)
        elif site["kind"] == "lora":
            total += e * sb * (w + site.get("r", 0))
            if site.get("dora"):  # two output-sized tensors, and W + BA for its column norm
                total += 2 * e * sb * site["dora"] + e * w * site["dora"]
        elif site["kind"] == "ia3":  # PEFT casts a scaled input to the vector's fp32
            total += (4 if site["scales_input"] else e) * sb * w
        elif site["kind"] == "invertible":
            total += 2 * e * sb * w
    return int(total)


# ---------------------------------------------------------------------------------- memory
def parse_memory(text: str | int | float) -> int:
    """'80GiB', '80GB', '81559MiB', 'h100', 'h200', or a number of bytes -> bytes."""
    if isinstance(text, (int, float)):
        return int(text)
    t = str(text).strip().lower().replace(" ", "")
    if t in GPUS:
        return GPUS[t]
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)(gib|gb|mib|mb|tib|tb|b)?", t)
    if not m:
        raise AdapterxlError(f"cannot read GPU memory {text!r}: give e.g. 80GiB, 80GB, "
                             f"81559MiB or one of {', '.join(GPUS)}")
    unit = {"gib": GIB, "gb": 10 ** 9, "mib": 2 ** 20, "mb": 10 ** 6, "tib": 2 ** 40,
            "tb": 10 ** 12, "b": 1, None: 1}[m.group(2)]
    return int(float(m.group(1)) * unit)


def needs(allocated: int) -> int:
    """GPU memory a process whose max_memory_allocated is `allocated` needs in total."""
    return int(allocated * (1 + FRAGMENTATION)) + CUDA_CONTEXT


def _check_arguments(quantize: str, precision: str, attention: str, seq_len: int, batch: int,
                     num_labels: int) -> None:
    if quantize not in QUANTIZE:
        raise unknown("quantization", quantize, QUANTIZE)
    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    if attention not in ("auto", "sdpa", "eager"):
        raise unknown("attention", attention, ("auto", "sdpa", "eager"))
    for name, v in (("seq-len", seq_len), ("batch", batch), ("labels", num_labels)):
        if not isinstance(v, int) or v < 1:
            raise AdapterxlError(f"--{name} must be a positive integer, got {v!r}")


class _Costs:
    """The memory of training one module on one backbone, as a function of the micro-batch:
    fixed terms (weights, trainable states) plus activations that grow with it."""

    def __init__(self, config, counts: dict, weights: dict, largest: int, quantize: str,
                 precision: str, seq_len: int, sdpa: bool, device: str):
        self.config, self.counts, self.precision = config, counts, precision
        self.seq_len, self.sdpa, self.device = seq_len, sdpa, device
        layers = counts["layers_with_module"]
        self.lowest = 0 if counts["embedding_module"] or not layers else min(layers)
        # Gradients reach down to the lowest module; in the lowest layer itself only what
        # sits above the module saves anything, which for output-side bottleneck adapters
        # (seq_bn's one site, after the FFN) is the adapter alone, and for an attention-side
        # one (double_seq_bn's first site) the layer less what it computes below the adapter.
        at_lowest = [s for s in counts["sites"] if s["layer"] == self.lowest]
        adapters_only = bool(layers) and not counts["embedding_module"] and \
            all(s["kind"] == "bottleneck" for s in at_lowest)
        output_only = adapters_only and not any(s["attention"] for s in at_lowest)
        self.partial_lowest = adapters_only and not output_only
        self.backward_layers = _num_layers(config) - self.lowest - (1 if output_only else 0)
        trainable = counts["module"] + counts["head"]
        self.fixed = {
            "frozen_weights": sum(w["bytes"] for w in weights.values()),
            "module_and_head_states": trainable * (16 + 2),
            "dequant_transient": 2 * largest * 2 if quantize != "none" else 0,
        }
        self.fam, self.z = _family(config), _sizes(precision, device)
        self.norm, self.stats = _norm_bytes(self.fam["norm"], self.z)

    def per_micro(self, b: int, checkpointing: bool = False) -> dict:
        config, fam, z, seq_len = self.config, self.fam, self.z, self.seq_len
        sb, h = seq_len * b, config.hidden_size
        layer = layer_activation_bytes(config, seq_len, b, self.precision, self.sdpa,
                                       self.device)
        mod = module_activation_bytes(self.counts["sites"], config, seq_len, b, self.precision,
                                      self.lowest, self.device, self.counts["method_config"])
        # pre-LN stacks end in a final norm, which saves its input
        edge = 0 if fam["post_ln"] else self.norm * sb * h + self.stats * sb
        if self.sdpa and fam["norm"] == "t5" and self.device == "cuda":
            # T5's relative position bias reaches SDPA as a float mask [b, heads, s, s], one
            # tensor shared by all layers, which CUDA's memory-efficient kernel keeps for
            # backward (from the kernel's interface; not measured on a GPU).
            edge += _attention_dims(config)[0] * seq_len * sb * z["e"]
        n = self.backward_layers
        if checkpointing:  # each layer keeps its input (fp32 under CUDA autocast for post-LN)
            residual = z["layernorm"] if fam["post_ln"] else z["e"]
            saved = n * residual * sb * h + layer + mod // max(1, n)
        else:
            saved = n * layer + mod
            if self.partial_lowest:
                saved -= below_attention_adapter(config, seq_len, b, self.precision, self.sdpa,
                                                 self.device)
        return {"activations": saved + edge, "activation_transient": self.transient(b),
                "layer_activations": layer}

    def transient(self, b: int) -> int:
        """What backward holds beyond the saved tensors at its peak, in the FFN of the top
        layer (two FFN-wide gradients and the fp32 gradient of the residual stream), or in
        eager attention (two s x s gradients per head), whichever is larger."""
        config = self.config
        sb, e = self.seq_len * b, self.z["e"]
        f = getattr(config, "intermediate_size", None) or getattr(config, "d_ff")
        heads = _attention_dims(config)[0]
        ffn = 2 * e * sb * f
        math_kernel = _cpu_math_sdpa(self.sdpa, _dropouts(config)[1], self.device)
        attn = 0 if self.sdpa and not math_kernel else \
            2 * (4 if math_kernel else e) * heads * self.seq_len * sb
        return max(ffn, attn) + 4 * sb * config.hidden_size

    def allocated(self, b: int, checkpointing: bool = False) -> int:
        a = self.per_micro(b, checkpointing)
        return sum(self.fixed.values()) + a["activations"] + a["activation_transient"]

    def largest_fit(self, budget: int, checkpointing: bool = False) -> int:
        """The largest micro-batch whose total need fits `budget` bytes (0: not even one)."""
        def fits(b: int) -> bool:
            return needs(self.allocated(b, checkpointing)) <= budget

        if not fits(1):
            return 0
        lo, hi = 1, 1
        while fits(hi * 2) and hi < 2 ** 20:
            hi *= 2
        hi *= 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo


def _fits(costs: _Costs, gpu_memory: str | int | None, batch: int) -> dict:
    """For each GPU (the one given, else H100 and H200), with and without gradient
    checkpointing: the largest micro-batch that fits, and the one that divides `batch`."""
    from .memory import candidates

    gpus = {str(gpu_memory): parse_memory(gpu_memory)} if gpu_memory is not None else \
        {"h100": GPUS["h100"], "h200": GPUS["h200"]}
    fits = {}
    for name, budget in gpus.items():
        entry = {"gpu_bytes": budget}
        for ckpt in (False, True):
            key = "checkpointing" if ckpt else "plain"
            most = costs.largest_fit(budget, ckpt)
            micro = next((n for n in candidates(batch, batch) if n <= most), 0)
            entry[key] = {"max_micro_batch": most, "micro_batch": micro,
                          "accumulation": batch // micro if micro else None,
                          "allocated_bytes": costs.allocated(micro, ckpt) if micro else None}
        entry["gradient_checkpointing_needed"] = entry["plain"]["micro_batch"] == 0 and \
            entry["checkpointing"]["micro_batch"] > 0
        entry["fits"] = entry["plain"]["micro_batch"] > 0 or entry["checkpointing"][
            "micro_batch"] > 0
        fits[name] = entry
    return fits


def plan(model: str, method: str = "seq_bn", method_config: dict | None = None,
         quantize: str = "none", precision: str = "bf16", seq_len: int = 256,
         batch: int = 32, gpu_memory: str | int | None = None,
         head: str = "classification", num_labels: int = 3, attention: str = "auto",
         trust_remote_code: bool = False, config=None, device: str = "cuda",
         module_layers: str | None = None) -> dict:
    """The predicted peak training memory of a module on `model`, broken down, and for each
    GPU size (the one given, else H100 80 GB and H200 141 GB) the largest micro-batch that
    fits, the gradient accumulation to reach `batch`, and whether gradient checkpointing is
    needed. `module_layers` (--module-layers) puts the module only in those layers: backward
    then stops at the lowest one. A JSON-serializable dict."""
    from .architectures import check_supported, get_arch
    from .modules.methods import get_method, with_module_layers

    _check_arguments(quantize, precision, attention, seq_len, batch, num_labels)
    get_method(method)
    config = config if config is not None else load_config(model, trust_remote_code)
    get_arch(config.model_type)
    check_supported(config.model_type, get_method(method).library_id or method)
    method_config = with_module_layers(method, method_config or {}, module_layers,
                                       _num_layers(config))
    counts = module_parameters(config, method, method_config, head, num_labels, precision)
    weights = weight_breakdown(counts.pop("model"), quantize, precision)
    largest = weights.pop("_largest_linear")
    sdpa = uses_sdpa(config) if attention == "auto" else attention == "sdpa"
    costs = _Costs(config, counts, weights, largest, quantize, precision, seq_len, sdpa, device)
    full = costs.per_micro(batch)
    peak = costs.allocated(batch)
    return {
        "model": model, "model_type": config.model_type, "method": method,
        "method_config": counts["method_config"], "quantize": quantize,
        "precision": precision, "seq_len": seq_len, "batch": batch,
        "attention": "sdpa" if sdpa else "eager",
        "shape": {"layers": _num_layers(config), "hidden": config.hidden_size,
                  "ffn": getattr(config, "intermediate_size", None) or config.d_ff,
                  "heads": _attention_dims(config)[0], "vocab": config.vocab_size,
                  "gated_ffn": _gated(config)},
        "params": {"backbone": counts["backbone"],
                   "embeddings": weights["embeddings"]["params"],
                   "non_embedding": counts["backbone"] - weights["embeddings"]["params"],
                   "module": counts["module"], "head": counts["head"]},
        "weights": weights,
        "backward_layers": costs.backward_layers,
        "memory_at_batch": {**costs.fixed, **{k: full[k] for k in ("activations",
                                                                    "activation_transient")},
                            "allocated": peak, "needs_total": needs(peak)},
        "activation_bytes_per_sample": costs.per_micro(1)["activations"],
        "fits": _fits(costs, gpu_memory, batch),
        "checked_against_gpu": CHECKED_AGAINST_GPU,
        "note": NOT_CHECKED,
    }


# ---------------------------------------------------------------------------------- output
def _gib(n) -> str:
    return "-" if n is None else f"{n / GIB:.2f}"


def format_plan(p: dict) -> str:
    """A readable table of a plan."""
    w = p["weights"]
    m = p["memory_at_batch"]
    pr = p["params"]
    q = {"none": p["precision"], "8bit": "int8", "4bit": "NF4+DQ"}[p["quantize"]]
    lines = [
        f"{p['model']} ({p['model_type']}, {p['shape']['layers']} layers, hidden "
        f"{p['shape']['hidden']}, FFN {p['shape']['ffn']}, {p['shape']['heads']} heads)  "
        f"method {p['method']}  {p['quantize']}/{p['precision']}  seq {p['seq_len']}  "
        f"batch {p['batch']}  attention {p['attention']}",
        "",
        "| component | params | bytes/param | GiB |",
        "|---|---|---|---|",
        f"| embeddings ({p['precision']}, never quantized) | {w['embeddings']['params']:,} | "
        f"{w['embeddings']['bytes'] / max(1, w['embeddings']['params']):.3g} | "
        f"{_gib(w['embeddings']['bytes'])} |",
        f"| linear weights ({q}) | {w['linear']['params']:,} | "
        f"{w['linear']['bytes'] / max(1, w['linear']['params']):.3g} | "
        f"{_gib(w['linear']['bytes'])} |",
    ]
    if w["linear_fp32"]["params"]:
        lines.append(f"| linear kept in fp32 by transformers (_keep_in_fp32_modules) | "
                     f"{w['linear_fp32']['params']:,} | 4 | {_gib(w['linear_fp32']['bytes'])} |")
    lines += [
        f"| norms and biases | {w['norms_biases']['params']:,} | "
        f"{w['norms_biases']['bytes'] / max(1, w['norms_biases']['params']):.3g} | "
        f"{_gib(w['norms_biases']['bytes'])} |",
        f"| module + head: fp32 params, grads, AdamW, autocast copies | "
        f"{pr['module'] + pr['head']:,} ({pr['module']:,} + {pr['head']:,}) | 18 | "
        f"{_gib(m['module_and_head_states'])} |",
    ]
    if m["dequant_transient"]:
        lines.append(f"| dequantization transient (2 x largest linear, 16-bit) | | | "
                     f"{_gib(m['dequant_transient'])} |")
    lines += [
        f"| activations saved for backward ({p['backward_layers']} layers, batch "
        f"{p['batch']}) | | | {_gib(m['activations'])} |",
        f"| activation transient (one layer) | | | {_gib(m['activation_transient'])} |",
        f"| **allocated (predicts torch.cuda.max_memory_allocated)** | | | "
        f"**{_gib(m['allocated'])}** |",
        f"| needs in total (x{1 + FRAGMENTATION:.2f} fragmentation + "
        f"{CUDA_CONTEXT / GIB:.1f} GiB CUDA context) | | | {_gib(m['needs_total'])} |",
        "",
        f"activations: {_gib(p['activation_bytes_per_sample'])} GiB per sample; backbone "
        f"{pr['backbone']:,} params ({pr['non_embedding']:,} without embeddings)",
        "",
        "| GPU | GiB | micro-batch | accumulation | allocated GiB | largest that fits | "
        "with gradient checkpointing |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in p["fits"].items():
        plain, ck = f["plain"], f["checkpointing"]
        if plain["micro_batch"]:
            cell = (f"{plain['micro_batch']} | {plain['accumulation']} | "
                    f"{_gib(plain['allocated_bytes'])} | {plain['max_micro_batch']}")
        else:
            cell = "does not fit | - | - | 0"
        ckc = (f"micro-batch {ck['micro_batch']} (x{ck['accumulation']})"
               + (" **needed**" if f["gradient_checkpointing_needed"] else " (not needed)")
               if ck["micro_batch"] else "does not fit either: quantize or a larger GPU")
        lines.append(f"| {name} | {f['gpu_bytes'] / GIB:.1f} | {cell} | {ckc} |")
    lines += ["", f"note: {p['note']}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- checking
def measure(spec: dict, method: str = "seq_bn", precision: str = "bf16", seq_len: int = 128,
            batch: int = 8, seed: int = 0, method_config: dict | None = None) -> dict:
    """Count, tensor by tensor on the CPU, what `plan(..., device="cpu")` predicts for a
    backbone config `spec` (random weights): {"saved": bytes autograd saves for backward in
    one forward pass, parameters excluded; "peak": the most tensor memory alive at once over
    two optimizer steps, parameters included; "weights": the parameters and buffers;
    "frozen": the frozen parameters}."""
    from .backbone import random_backbone
    from .heads import head_config
    from .memory import LiveTensors, saved_for_backward
    from .modules import assemble

    torch.manual_seed(seed)
    with quiet():
        bb = random_backbone(spec, precision=precision, device=torch.device("cpu"), seed=seed)
        net, _ = assemble(bb, [], method=method, config=method_config,
                          head=head_config("classification", bb.hidden_size, 3))
    net.train()
    params = list(net.parameters()) + list(net.buffers())
    def size(tensors) -> int:
        return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                    for t in tensors}.values())

    weights = size(params)
    frozen = size(p for p in net.parameters() if not p.requires_grad)
    opt = torch.optim.AdamW(net.trainable_parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, spec["vocab_size"] - 1, (batch, seq_len), generator=g)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "labels": torch.randint(0, 3, (batch,), generator=g)}
    saved = {}
    with LiveTensors() as live:
        for step in range(2):  # the second step runs with the optimizer states allocated
            with saved_for_backward(exclude=params) as seen:
                loss = net(**inputs)["loss"]
            saved = dict(seen)
            loss.backward()
            del loss
            opt.step()
            opt.zero_grad(set_to_none=True)
    return {"saved": sum(saved.values()), "peak": weights + live.peak, "weights": weights,
            "frozen": frozen}
