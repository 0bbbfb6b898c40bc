"""Engine: bottleneck adapters built natively (seq_bn, double_seq_bn, par_bn, compacter,
seq_bn_inv's invertible adapter) and AdapterFusion. Private to modules/.

It computes what AdapterHub's `adapters` 1.3 computes, at the same places, under the same
parameter names (`...output.adapters.<name>.adapter_down.0.weight`,
`invertible_adapters.<name>.F.0.weight`, `...adapter_fusion_layer.<name>.query.weight`), so
AdapterHub weight files map 1:1 and modules written by the `adapters` engine load unchanged.
tests/fixtures/adapterhub holds the parity fixtures, made by that library.

Placement, per family (see FAMILIES):
- post-LN encoders (XLM-R, BERT, mDeBERTa) and mT5's sublayers: the adapters live on the
  sublayer module itself (`attention.output`, `output`, `layer.0`, `layer.1`), act on the
  dense output after its dropout, and the module's LayerNorm (post-LN only) is re-applied
  after them, as AdapterHub's original_ln_before/after do;
- pre-LN models (XLM-R XL, Llama, Qwen2): the adapters act on the attention / MLP output
  (XLM-R XL: its output.dense, before that module's dropout), the residual being the input
  of the pre-norm; the model adds the residual itself afterwards.
Forward hooks only; no transformers class is patched.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import get_activation

from ..errors import AdapterxlError

# The full configuration of each method: adapterxl's defaults (methods.py) override the
# matching keys. These are AdapterHub's values for its config of the same name.
BASE = {"mh_adapter": False, "output_adapter": True, "reduction_factor": 16,
        "non_linearity": "relu", "original_ln_before": True, "original_ln_after": True,
        "residual_before_ln": True, "init_weights": "bert", "is_parallel": False,
        "scaling": 1.0, "inv_adapter": None, "inv_adapter_reduction_factor": None,
        "leave_out": [], "dropout": 0.0, "phm_layer": False, "phm_dim": 4}
PRESETS = {
    "seq_bn": {},
    "double_seq_bn": {"mh_adapter": True, "non_linearity": "swish", "original_ln_before": False},
    "par_bn": {"reduction_factor": 2, "original_ln_before": False, "init_weights": "mam_adapter",
               "is_parallel": True, "scaling": 4.0},
    "compacter": {"mh_adapter": True, "reduction_factor": 32, "non_linearity": "gelu",
                  "original_ln_before": False, "phm_layer": True},
    "seq_bn_inv": {"inv_adapter": "nice", "inv_adapter_reduction_factor": 2},
}
# Keys a user may set beyond the method's defaults (the others would make it another method).
TUNABLE = {"original_ln_before", "original_ln_after", "residual_before_ln", "init_weights",
           "scaling", "inv_adapter_reduction_factor"}
# AdapterHub config keys that only describe things this engine always does (their AdapterHub
# defaults); an imported config with another value is refused.
FIXED = {"ln_before": False, "ln_after": False, "adapter_residual_before_ln": False,
         "use_gating": False, "cross_adapter": False, "init_weights_seed": None,
         "factorized_phm_W": True, "shared_W_phm": False, "shared_phm_rule": True,
         "factorized_phm_rule": False, "phm_c_init": "normal", "phm_init_range": 0.0001,
         "learn_phm": True, "hypercomplex_nonlinearity": "glorot-uniform", "phm_rank": 1,
         "phm_bias": True, "stochastic_depth": 0.0}


def full_config(method: str, config: dict) -> dict:
    """AdapterHub's complete config for a method and adapterxl's (partial) config of it."""
    full = {**BASE, **PRESETS[method], **config}
    for key in ("original_ln_before", "original_ln_after", "residual_before_ln"):
        if not isinstance(full[key], bool):  # e.g. AdapterHub's residual_before_ln="post_add"
            raise AdapterxlError(f"{method}: {key} must be true or false, got {full[key]!r}")
    if not isinstance(full["scaling"], (int, float)) or isinstance(full["scaling"], bool):
        raise AdapterxlError(f"{method}: scaling must be a number (AdapterHub's learned "
                             f"scalings are not supported), got {full['scaling']!r}")
    return full


@dataclass(frozen=True)
class Site:
    """Where one kind of adapter sits in a layer.
    holder: module (relative to the layer) owning the `adapters` dict; for hooked sites a new
    child of that name is created. hook: module whose output the adapters transform (for
    holder sites: the holder's dropout). residual: for hooked sites, the pre-norm whose input
    is the residual; None: the holder's second positional input (post-LN) or first (mT5).
    ln: the holder's LayerNorm to re-apply (post-LN) or None."""
    location: str            # "mh_adapter" or "output_adapter"
    holder: str
    hook: str
    residual: str | None = None
    ln: str | None = None
    hooked: bool = False     # AdapterHub's interface mode: the model adds the residual
    residual_arg: int = 1    # holder sites: which positional input is the residual


_BERT = (Site("mh_adapter", "attention.output", "attention.output.dropout", ln="LayerNorm"),
         Site("output_adapter", "output", "output.dropout", ln="LayerNorm"))
# The whole attention / MLP output (= o_proj / down_proj's), so that a LoRA that PEFT adds to
# o_proj or down_proj is included, as in AdapterHub's Llama layer.
_DECODER = (Site("mh_adapter", "attention_adapters", "self_attn", "input_layernorm",
                 hooked=True),
            Site("output_adapter", "output_adapters", "mlp", "post_attention_layernorm",
                 hooked=True))
# (layers, embeddings, where invertible_adapters live, sites)
FAMILIES = {
    "xlm-roberta": ("encoder.layer", "embeddings", "", _BERT),
    "bert": ("encoder.layer", "embeddings", "", _BERT),
    "deberta-v2": ("encoder.layer", "embeddings", "", _BERT),
    "xlm-roberta-xl": ("encoder.layer", "embeddings", "", (
        Site("mh_adapter", "attention_adapters", "attention.output.dense",
             "attention.self_attn_layer_norm", hooked=True),
        Site("output_adapter", "output_adapters", "output.dense", "LayerNorm", hooked=True))),
    "mt5": ("encoder.block", "encoder.embed_tokens", "encoder", (
        Site("mh_adapter", "layer.0", "layer.0.dropout", residual_arg=0),
        Site("output_adapter", "layer.1", "layer.1.dropout", residual_arg=0))),
    "llama": ("layers", "embed_tokens", "", _DECODER),
    "qwen2": ("layers", "embed_tokens", "", _DECODER),
}


def _get(module: nn.Module, path: str) -> nn.Module:
    return module.get_submodule(path) if path else module


class _Activation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.f = nn.functional.leaky_relu if name.lower() == "leakyrelu" else \
            get_activation(name.lower())

    def forward(self, x):
        return self.f(x)


class PHMLayer(nn.Module):
    """Compacter's parameterised hypercomplex multiplication: W = Σ_i rule_i ⊗ (W_left_i W_right_i),
    the rule shared by every layer of the module (AdapterHub's defaults: shared rule,
    factorised rank-1 W, with bias)."""

    def __init__(self, inputs: int, outputs: int, n: int, shared: nn.ParameterDict):
        super().__init__()
        if inputs % n or outputs % n:
            raise AdapterxlError(f"compacter: {inputs}->{outputs} is not divisible by phm_dim {n}")
        self.shared = [shared]  # a list: not a submodule, so its parameter is named only once
        self.W_left = nn.Parameter(torch.empty(n, inputs // n, 1))
        self.W_right = nn.Parameter(torch.empty(n, 1, outputs // n))
        self.b = nn.Parameter(torch.zeros(outputs))
        # Glorot-normal per component: what AdapterHub 1.3 runs for its "glorot-uniform"
        # default (its first branch tests only that a non-linearity name is set).
        for w in (self.W_left, self.W_right):
            for i in range(n):
                nn.init.xavier_normal_(w.data[i])

    def forward(self, x):
        rule = self.shared[0]["phm_rule"]
        w = torch.bmm(self.W_left, self.W_right)
        # Kronecker product of each rule_i [n, n] with w_i [in/n, out/n], summed over i.
        h = (rule[:, :, None, :, None] * w[:, None, :, None, :]).reshape(
            rule.shape[0], rule.shape[1] * w.shape[1], rule.shape[2] * w.shape[2]).sum(0)
        return x @ h.to(x.dtype) + self.b


class Adapter(nn.Module):
    """One bottleneck: up(act(down(x))) · scaling (+ the adapter residual unless parallel)."""

    def __init__(self, hidden: int, config: dict, shared: nn.ParameterDict | None):
        super().__init__()
        width = max(int(hidden // config["reduction_factor"]), 1)
        self.config = config
        self.parallel = config["is_parallel"]
        if config["phm_layer"]:
            down = PHMLayer(hidden, width, config["phm_dim"], shared)
            self.adapter_up = PHMLayer(width, hidden, config["phm_dim"], shared)
        else:
            down, self.adapter_up = nn.Linear(hidden, width), nn.Linear(width, hidden)
        self.adapter_down = nn.Sequential(down, _Activation(config["non_linearity"]))
        self.scaling = float(config["scaling"])
        self.dropout = nn.Dropout(config["dropout"])
        if config["phm_layer"]:
            return
        if config["init_weights"] == "bert":
            for linear in (down, self.adapter_up):
                nn.init.normal_(linear.weight, std=0.02)
                nn.init.zeros_(linear.bias)
        elif config["init_weights"] == "mam_adapter":  # up-projection zero: starts as identity
            nn.init.kaiming_uniform_(down.weight, a=math.sqrt(5))
            nn.init.zeros_(down.bias)
            nn.init.zeros_(self.adapter_up.weight)
            nn.init.zeros_(self.adapter_up.bias)
        elif config["init_weights"] == "houlsby":
            for linear in (down, self.adapter_up):
                nn.init.trunc_normal_(linear.weight, std=1e-2, a=-2e-2, b=2e-2)
                nn.init.zeros_(linear.bias)
        else:
            raise AdapterxlError(f"unknown init_weights {config['init_weights']!r}; "
                                 f"known: bert, mam_adapter, houlsby")

    def pre(self, h, x, ln):
        """(adapter input, adapter residual) from the sublayer output h and its residual x."""
        if self.parallel:
            return x, x
        c = self.config
        residual = h
        if c["original_ln_before"]:
            h = ln(h + x) if ln is not None else (h + x if x is not None else h)
        return h, (residual if c["residual_before_ln"] else h)

    def forward(self, h, residual):
        up = self.adapter_up(self.adapter_down(h)) * self.scaling
        out = self.dropout(up)
        return (out if self.parallel else out + residual), up


class Fusion(nn.Module):
    """AdapterFusion, "dynamic": attention of the sublayer output (query) over the modules'
    up-projections (keys, values), value initialised near the identity."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden, bias=False)
        for linear in (self.query, self.key):
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)
        with torch.no_grad():  # AdapterHub's value_initialized: identity plus 1e-6 everywhere
            self.value.weight.fill_(1e-6).fill_diagonal_(1.0)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, ups, residual):
        """ups [batch, length, members, hidden] -> (output, attention [batch, length, members])."""
        q, k, v = self.query(query), self.key(ups), self.value(ups)
        scores = torch.matmul(q.unsqueeze(2), k.transpose(-2, -1)).squeeze(2)
        probs = self.dropout(scores).softmax(-1)
        return torch.matmul(probs.unsqueeze(2), v).squeeze(2) + residual, probs

    def regularization(self) -> torch.Tensor:
        """AdapterHub's penalty keeping the value map near the identity: 0.01·‖I − V‖²."""
        eye = torch.eye(self.value.weight.shape[0], device=self.value.weight.device)
        return 0.01 * (eye - self.value.weight).pow(2).sum()


class SiteAdapters(nn.Module):
    """The owner of a hooked site's adapters (a new child of the layer)."""

    def __init__(self):
        super().__init__()
        self.adapters = nn.ModuleDict()
        self.adapter_fusion_layer = nn.ModuleDict()


class NICE(nn.Module):
    """The invertible adapter on the embeddings (NICE coupling block), forward direction."""

    def __init__(self, hidden: int, non_linearity: str, reduction_factor: float):
        super().__init__()
        self.split = hidden // 2

        def subnet(n_in, n_out):
            width = int(n_in // reduction_factor)
            return nn.Sequential(nn.Linear(n_in, width), _Activation(non_linearity),
                                 nn.Linear(width, n_out))

        self.F = subnet(hidden - self.split, self.split)
        self.G = subnet(self.split, hidden - self.split)

    def forward(self, x):
        x1, x2 = x[..., :self.split], x[..., self.split:]
        y1 = x1 + self.F(x2)
        return torch.cat((y1, x2 + self.G(y1)), -1)


def attach(model: nn.Module, model_type: str) -> "Engine":
    """The model's engine, created on first use (hooks must be registered only once)."""
    engine = getattr(model, "_axl_bottleneck", None)
    if engine is None:
        engine = Engine(model, model_type)
        model._axl_bottleneck = engine  # a plain attribute: not a submodule, no parameters
    return engine


class Engine:
    """The bottleneck adapters of one model: which exist where, which are active, the hooks."""

    def __init__(self, model: nn.Module, model_type: str):
        if model_type not in FAMILIES:
            raise AdapterxlError(f"bottleneck modules are not supported on {model_type} "
                                 f"backbones; use a PEFT method (lora, dora, ia3)")
        self.model_type = model_type
        layers, embeddings, base, sites = FAMILIES[model_type]
        self.hidden = model.config.hidden_size if hasattr(model.config, "hidden_size") \
            else model.config.d_model
        # AdapterFusion's attention dropout, as AdapterHub takes it from the model config
        self.fusion_dropout = float(getattr(model.config, "attention_probs_dropout_prob", 0.0)
                                    or 0.0)
        self.base = _get(model, base)
        self.layers = list(_get(model, layers))
        self.stack: list[str] = []
        self.fusion: tuple[str, list[str]] | None = None
        self.attentions: dict[str, torch.Tensor] | None = None  # filled while recording
        self.base.invertible_adapters = nn.ModuleDict()
        self.root = model  # Compacter's shared PHM rules live on the model itself
        model.shared_parameters = nn.ModuleDict()
        self.sites = []  # (layer index, Site, owner module)
        try:
            for i, layer in enumerate(self.layers):
                for site in sites:
                    if site.hooked:
                        owner = SiteAdapters()
                        layer.add_module(site.holder, owner)
                        self._hook(i, site, owner, _get(layer, site.hook),
                                   _get(layer, site.residual), None)
                    else:
                        owner = _get(layer, site.holder)
                        owner.adapters = nn.ModuleDict()
                        owner.adapter_fusion_layer = nn.ModuleDict()
                        self._hook(i, site, owner, _get(layer, site.hook), owner,
                                   _get(owner, site.ln) if site.ln else None)
                    self.sites.append((i, site, owner))
            _get(model, embeddings).register_forward_hook(self._embeddings)
        except AttributeError as e:  # a model class whose modules are not where we expect
            raise AdapterxlError(f"bottleneck modules cannot attach to {type(model).__name__} "
                                 f"({e}); use a PEFT method (lora, dora, ia3)") from e

    # ---- building ------------------------------------------------------------------------
    def add(self, name: str, method: str, config: dict) -> None:
        """A module `name` (replacing one of that name: a second ModularModel on the same
        backbone reuses the engine and its slot names)."""
        config = full_config(method, config)
        for d in [o.adapters for _, _, o in self.sites] + [self.base.invertible_adapters,
                                                           self.root.shared_parameters]:
            if name in d:
                del d[name]
        device = self.layers[0].parameters().__next__().device
        shared = None
        if config["phm_layer"]:
            n = config["phm_dim"]
            shared = nn.ParameterDict({"phm_rule": nn.Parameter(torch.randn(n, n, n) * 0.0001)})
            self.root.shared_parameters[name] = shared
        for i, site, owner in self.sites:
            wanted = config["mh_adapter"] if site.location == "mh_adapter" \
                else config["output_adapter"]
            if wanted and i not in config["leave_out"]:
                owner.adapters[name] = Adapter(self.hidden, config, shared)
        if config["inv_adapter"]:
            self.base.invertible_adapters[name] = NICE(
                self.hidden, config["non_linearity"], config["inv_adapter_reduction_factor"])
        self.to(device)

    def add_fusion(self, name: str, members: list[str]) -> None:
        for _, _, owner in self.sites:
            if name in owner.adapter_fusion_layer:
                del owner.adapter_fusion_layer[name]
            present = [m in owner.adapters for m in members]
            if all(present):
                owner.adapter_fusion_layer[name] = Fusion(self.hidden, self.fusion_dropout)
        self.to(self.layers[0].parameters().__next__().device)

    def to(self, device) -> None:
        self.base.invertible_adapters.to(device)
        self.root.shared_parameters.to(device)
        for _, _, owner in self.sites:
            owner.adapters.to(device)
            owner.adapter_fusion_layer.to(device)

    def activate(self, stack: list[str], fusion: tuple[str, list[str]] | None) -> None:
        self.stack, self.fusion = list(stack), fusion

    def regularization(self) -> torch.Tensor | None:
        """The active fusion's penalty summed over layers, if it trains."""
        if self.fusion is None:
            return None
        terms = [owner.adapter_fusion_layer[self.fusion[0]].regularization()
                 for _, _, owner in self.sites if self.fusion[0] in owner.adapter_fusion_layer
                 and owner.adapter_fusion_layer[self.fusion[0]].value.weight.requires_grad]
        return sum(terms) if terms else None

    # ---- forward -------------------------------------------------------------------------
    def _embeddings(self, module, args, output):
        first = self.stack[0] if self.stack else (self.fusion[1][0] if self.fusion else None)
        if first is not None and first in self.base.invertible_adapters:
            return self.base.invertible_adapters[first](output)
        return None

    def _hook(self, index, site, owner, target, residual_from, ln):
        # The residual is the input of `residual_from` (a pre-norm, or the holder itself);
        # the adapters transform `target`'s output. At holder sites the holder then adds the
        # residual and applies its LayerNorm (post-LN) itself, which is AdapterHub's
        # original_ln_after step; with original_ln_after off, the holder's output is replaced.
        seen = {}

        def capture(module, args, kwargs):
            if site.hooked:
                seen["x"] = args[0] if args else kwargs["hidden_states"]
            else:
                n = site.residual_arg
                seen["x"] = args[n] if len(args) > n else kwargs.get(
                    "input_tensor" if n == 1 else "hidden_states")

        def transform(module, args, output):
            if not self._active(owner):
                return None
            h = output[0] if isinstance(output, tuple) else output
            x = seen.get("x")
            y, last = self._apply(owner, h, x, ln, site, index)
            if last is None:
                return None
            if not site.hooked and not last.config["original_ln_after"]:
                seen["y"] = y  # the holder must not add the residual: replace its output
                return None
            return (y,) + output[1:] if isinstance(output, tuple) else y

        def replace(module, args, output):
            y = seen.pop("y", None)
            if y is None:
                return None
            return (y,) + tuple(output[1:]) if isinstance(output, tuple) else y

        residual_from.register_forward_pre_hook(capture, with_kwargs=True)
        target.register_forward_hook(transform)
        if not site.hooked:
            owner.register_forward_hook(replace)

    def _active(self, owner) -> bool:
        names = self.stack + (self.fusion[1] if self.fusion else [])
        return any(n in owner.adapters for n in names)

    def _apply(self, owner, h, x, ln, site, index):
        """(the adapters' output before AdapterHub's original_ln_after step, last adapter)."""
        state, residual, last = h, None, None
        for name in self.stack:
            if name not in owner.adapters:
                continue
            last = owner.adapters[name]
            inp, residual = last.pre(state, x, ln)
            state, _ = last(inp, residual)
        if self.fusion is not None and self.fusion[0] in owner.adapter_fusion_layer:
            fname, members = self.fusion
            members = [m for m in members if m in owner.adapters]
            last = owner.adapters[members[-1]]
            query, residual = last.pre(state, x, ln)
            ups = torch.stack([owner.adapters[m](query, residual)[1] for m in members], 2)
            state, probs = owner.adapter_fusion_layer[fname](query, ups, residual)
            if self.attentions is not None:
                self.attentions[f"{index}.{site.location}"] = probs.detach()
        if last is None:
            return h, None
        return (state + h if last.parallel else state), last
