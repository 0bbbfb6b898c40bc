"""What adapterxl knows about each backbone architecture: where its per-layer linear maps are
(for PEFT's target_modules), how the `adapters` library attaches to it, and which methods
do not work on it. Support is measured, not assumed: tests/test_backbones.py runs every
method on every tiny builtin, so a change of library version that breaks or fixes a
combination shows up there.

Logical matrices, one Linear per transformer layer each:
  q, k, v   attention query / key / value projections
  o         attention output projection
  ffn_in    first FFN linear; in gated FFNs (mT5, Llama, Qwen2) the *linear* (up) branch,
            wi_1 / up_proj, not the activated gate (wi_0 / gate_proj) — the same one the
            `adapters` library treats as the intermediate projection
  ffn_out   second FFN linear (wo / down_proj / output.dense)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .errors import AdapterxlError

MATRICES = ("q", "k", "v", "o", "ffn_in", "ffn_out")
# Method names as adapterxl spells them: `adapters` configs, AdapterFusion, PEFT variants.
ADAPTERS_METHODS = ("seq_bn", "double_seq_bn", "par_bn", "seq_bn_inv", "compacter",
                    "prefix_tuning", "fusion")
PEFT_METHODS = ("lora", "dora", "ia3")


@dataclass(frozen=True)
class Arch:
    model_type: str
    layer: str                      # regex of one layer's module name, relative to the model
    matrices: dict[str, str]        # logical name -> path of the Linear inside a layer
    decoder: bool = False           # causal: pool the last token, no bidirectional context
    adapters_unsupported: frozenset[str] = frozenset()
    peft_unsupported: frozenset[str] = frozenset()
    # Why the unsupported combinations fail, one line each, for error messages and docs.
    notes: tuple[tuple[str, str], ...] = ()


_BERT_LIKE = {"q": "attention.self.query", "k": "attention.self.key",
              "v": "attention.self.value", "o": "attention.output.dense",
              "ffn_in": "intermediate.dense", "ffn_out": "output.dense"}
_DECODER = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
            "o": "self_attn.o_proj", "ffn_in": "mlp.up_proj", "ffn_out": "mlp.down_proj"}

# The interface-based `adapters` path (used for qwen2 by the library and for xlm-roberta-xl by
# us) has no prefix-tuning hook, and its AdapterModelInterface has no field for it.
_NO_PREFIX = ("prefix_tuning", "the adapters library's plugin interface has no prefix tuning")

ARCHS: dict[str, Arch] = {a.model_type: a for a in (
    Arch("xlm-roberta", r"encoder\.layer\.\d+", _BERT_LIKE),
    Arch("xlm-roberta-xl", r"encoder\.layer\.\d+", _BERT_LIKE,
         adapters_unsupported=frozenset({"prefix_tuning"}), notes=(_NO_PREFIX,)),
    Arch("bert", r"encoder\.layer\.\d+", _BERT_LIKE),
    Arch("deberta-v2", r"encoder\.layer\.\d+",
         {**_BERT_LIKE, "q": "attention.self.query_proj", "k": "attention.self.key_proj",
          "v": "attention.self.value_proj"}),
    # Block i's layer.0 is self-attention, layer.1 the FFN (an encoder has no cross-attention).
    Arch("mt5", r"encoder\.block\.\d+",
         {"q": "layer.0.SelfAttention.q", "k": "layer.0.SelfAttention.k",
          "v": "layer.0.SelfAttention.v", "o": "layer.0.SelfAttention.o",
          "ffn_in": "layer.1.DenseReluDense.wi_1", "ffn_out": "layer.1.DenseReluDense.wo"}),
    Arch("llama", r"layers\.\d+", _DECODER, decoder=True,
         adapters_unsupported=frozenset({"prefix_tuning"}),
         # adapters 1.3 builds the prefix's mask for additive float masks (0 = attend); with
         # padding, SDPA attention (the default) gets a boolean mask (True = attend), so the
         # prefix is masked out: output unchanged, zero gradients, no error.
         notes=(("prefix_tuning", "the prefix is silently masked out under SDPA attention "
                 "with padding (adapters 1.3 inverts the boolean mask)"),)),
    Arch("qwen2", r"layers\.\d+", _DECODER, decoder=True,
         adapters_unsupported=frozenset({"prefix_tuning"}), notes=(_NO_PREFIX,)),
)}


def get_arch(model_type: str) -> Arch:
    if model_type not in ARCHS:
        raise AdapterxlError(f"unsupported backbone architecture {model_type!r}; supported: "
                             f"{', '.join(sorted(ARCHS))}")
    return ARCHS[model_type]


def matrices(model_type: str) -> dict[str, str]:
    """Logical matrix name -> a regex that PEFT full-matches against module names, hitting
    exactly that Linear in every layer (plain suffixes are ambiguous: `output.dense` is both
    BERT's attention output and its FFN output). The optional prefix lets the backbone sit
    inside a wrapper module."""
    arch = get_arch(model_type)
    return {name: rf"(?:.*\.)?{arch.layer}\.{re.escape(path)}"
            for name, path in arch.matrices.items()}


def _check_names(names: list[str]) -> None:
    bad = [n for n in names if n not in MATRICES]
    if bad or not names:
        raise AdapterxlError(f"unknown target matrix {bad[0] if bad else '(none given)'!r}; "
                             f"known: {', '.join(MATRICES)}")


def peft_targets(model_type: str, names: list[str]) -> str:
    """`target_modules` for PEFT (LoraConfig, IA3Config): one regex over the chosen matrices."""
    _check_names(names)
    regexes = matrices(model_type)
    return "|".join(f"(?:{regexes[n]})" for n in dict.fromkeys(names))


def ia3_feedforward(model_type: str, names: list[str]) -> str:
    """IA3Config's `feedforward_modules`: of the chosen matrices, those whose *input* IA3
    scales (the FFN's second linear, i.e. the activations inside the FFN, as in the paper).
    A regex that matches nothing when ffn_out is not chosen, since PEFT requires a value."""
    _check_names(names)
    return matrices(model_type)["ffn_out"] if "ffn_out" in names else r"(?!)"


def unsupported(model_type: str, method: str) -> str | None:
    """Why `method` cannot run on this architecture, or None when it can."""
    arch = get_arch(model_type)
    if method in arch.adapters_unsupported | arch.peft_unsupported:
        why = dict(arch.notes).get(method, "fails on this architecture")
        return f"method {method!r} is not supported on {model_type} backbones: {why}"
    return None


def check_supported(model_type: str, method: str) -> None:
    """Refuse an unsupported combination before any training starts."""
    if (why := unsupported(model_type, method)) is not None:
        raise AdapterxlError(why)


def adapters_interface(model_type: str):
    """The `adapters` plugin interface for architectures the library lacks, else None (the
    library then uses its own model classes, or its bundled interface, as for qwen2)."""
    if model_type != "xlm-roberta-xl":
        return None
    from adapters import AdapterModelInterface

    # XLMRobertaXLLayer (transformers 4.57) is pre-LayerNorm: attention.self_attn_layer_norm
    # before attention and LayerNorm before the FFN; the residual is added inside
    # attention.output / output, after their dense. So, like the library's own pre-LN
    # interfaces (qwen2), adapters hook the dense outputs, take the residual from the pre-norms'
    # inputs, and have no post-sublayer norm to re-apply (layer_ln_* = None).
    return AdapterModelInterface(
        adapter_methods=["bottleneck", "lora", "reft", "invertible"],
        model_embeddings="embeddings",
        model_layers="encoder.layer",
        layer_self_attn="attention",
        layer_cross_attn=None,
        attn_q_proj="self.query",
        attn_k_proj="self.key",
        attn_v_proj="self.value",
        attn_o_proj="output.dense",
        layer_intermediate_proj="intermediate.dense",
        layer_output_proj="output.dense",
        layer_pre_self_attn="attention.self_attn_layer_norm",
        layer_pre_cross_attn=None,
        layer_pre_ffn="LayerNorm",
        layer_ln_1=None,
        layer_ln_2=None,
    )


def adapters_init(model: torch.nn.Module, model_type: str) -> None:
    """`adapters.init(model)` with our interface where the library has none. Idempotent."""
    import adapters

    get_arch(model_type)
    if hasattr(model, "adapters_config"):
        return
    adapters.init(model, interface=adapters_interface(model_type))
