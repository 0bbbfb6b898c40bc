"""What adapterxl knows about each backbone architecture: where its per-layer linear maps are
(for PEFT's target_modules; the bottleneck engine's placement is in
modules/_bottleneck.py), and which methods do not work on it. Support is measured, not assumed: tests/test_backbones.py runs every
method on every tiny builtin, so a change of library version that breaks or fixes a
combination shows up there.

Logical matrices, one Linear per transformer layer each:
  q, k, v   attention query / key / value projections
  o         attention output projection
  ffn_in    first FFN linear; in gated FFNs (mT5, Llama, Qwen2) the *linear* (up) branch,
            wi_1 / up_proj, not the activated gate (wi_0 / gate_proj) — the same one the
            AdapterHub treats as the intermediate projection
  ffn_out   second FFN linear (wo / down_proj / output.dense)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import AdapterxlError

MATRICES = ("q", "k", "v", "o", "ffn_in", "ffn_out")
# Method names as adapterxl spells them: AdapterHub config ids, AdapterFusion, PEFT variants.
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

# Prefix tuning needs each architecture's attention rewritten to take the prefix keys and
# values; adapterxl's bottleneck engine only hooks module outputs, so it refuses it everywhere.
PREFIX_WHY = ("adapterxl's bottleneck engine does not build prefix tuning (it would have to "
              "rewrite every architecture's attention); use seq_bn or lora")

ARCHS: dict[str, Arch] = {a.model_type: a for a in (
    Arch("xlm-roberta", r"encoder\.layer\.\d+", _BERT_LIKE),
    Arch("xlm-roberta-xl", r"encoder\.layer\.\d+", _BERT_LIKE),
    Arch("bert", r"encoder\.layer\.\d+", _BERT_LIKE),
    Arch("deberta-v2", r"encoder\.layer\.\d+",
         {**_BERT_LIKE, "q": "attention.self.query_proj", "k": "attention.self.key_proj",
          "v": "attention.self.value_proj"}),
    # Block i's layer.0 is self-attention, layer.1 the FFN (an encoder has no cross-attention).
    Arch("mt5", r"encoder\.block\.\d+",
         {"q": "layer.0.SelfAttention.q", "k": "layer.0.SelfAttention.k",
          "v": "layer.0.SelfAttention.v", "o": "layer.0.SelfAttention.o",
          "ffn_in": "layer.1.DenseReluDense.wi_1", "ffn_out": "layer.1.DenseReluDense.wo"}),
    Arch("llama", r"layers\.\d+", _DECODER, decoder=True),
    Arch("qwen2", r"layers\.\d+", _DECODER, decoder=True),
)}


def get_arch(model_type: str) -> Arch:
    if model_type not in ARCHS:
        raise AdapterxlError(f"unsupported backbone architecture {model_type!r}; supported: "
                             f"{', '.join(sorted(ARCHS))}")
    return ARCHS[model_type]


def matrices(model_type: str, leave_out=()) -> dict[str, str]:
    """Logical matrix name -> a regex that PEFT full-matches against module names, hitting
    exactly that Linear in every layer but those in `leave_out` (plain suffixes are
    ambiguous: `output.dense` is both BERT's attention output and its FFN output). The
    optional prefix lets the backbone sit inside a wrapper module."""
    arch = get_arch(model_type)
    layer = arch.layer
    if leave_out:  # the layer number must not be one left out
        skip = "|".join(str(i) for i in sorted(set(leave_out)))
        layer = layer.replace(r"\d+", rf"(?!(?:{skip})\.)\d+")
    return {name: rf"(?:.*\.)?{layer}\.{re.escape(path)}"
            for name, path in arch.matrices.items()}


def _check_names(names: list[str]) -> None:
    bad = [n for n in names if n not in MATRICES]
    if bad or not names:
        raise AdapterxlError(f"unknown target matrix {bad[0] if bad else '(none given)'!r}; "
                             f"known: {', '.join(MATRICES)}")


def peft_targets(model_type: str, names: list[str], leave_out=()) -> str:
    """`target_modules` for PEFT (LoraConfig, IA3Config): one regex over the chosen matrices."""
    _check_names(names)
    regexes = matrices(model_type, leave_out)
    return "|".join(f"(?:{regexes[n]})" for n in dict.fromkeys(names))


def ia3_feedforward(model_type: str, names: list[str], leave_out=()) -> str:
    """IA3Config's `feedforward_modules`: of the chosen matrices, those whose *input* IA3
    scales (the FFN's second linear, i.e. the activations inside the FFN, as in the paper).
    A regex that matches nothing when ffn_out is not chosen, since PEFT requires a value."""
    _check_names(names)
    return matrices(model_type, leave_out)["ffn_out"] if "ffn_out" in names else r"(?!)"


def unsupported(model_type: str, method: str) -> str | None:
    """Why `method` cannot run on this architecture, or None when it can."""
    arch = get_arch(model_type)
    if method in ("prefix_tuning", "prefix"):
        return f"method 'prefix' is not supported on {model_type} backbones: {PREFIX_WHY}"
    if method in arch.adapters_unsupported | arch.peft_unsupported:
        why = dict(arch.notes).get(method, "fails on this architecture")
        return f"method {method!r} is not supported on {model_type} backbones: {why}"
    return None


def check_supported(model_type: str, method: str) -> None:
    """Refuse an unsupported combination before any training starts."""
    if (why := unsupported(model_type, method)) is not None:
        raise AdapterxlError(why)
