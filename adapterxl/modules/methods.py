"""Methods a module can be built with, and which engine builds each. Users choose a method;
the engine (adapterxl's own bottleneck engine, or PEFT) is our choice and is recorded in the
manifest (manifests of format 1 record "adapters", AdapterHub's library, which computed
the same: see ENGINE_ALIASES).

Bottleneck-style methods come from the bottleneck engine (_bottleneck.py), which composes
them as a sequential stack and fuses them with AdapterFusion, as AdapterHub does. LoRA, DoRA
and IA3 come from PEFT, because several active PEFT adapters add their updates
(W·x + ΔW_a·x + ΔW_b·x), which is what stacking LoRA modules means in adapterxl; a
sequential stack would chain them instead."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import AdapterxlError, unknown


@dataclass(frozen=True)
class Method:
    name: str
    engine: str                       # "bottleneck" or "peft"
    defaults: dict = field(default_factory=dict)
    doc: str = ""
    library_id: str = ""              # AdapterHub's config id (its file format)
    fusable: bool = True              # can be a member of --fuse
    lr: float = 1e-4                  # default learning rate (the paper's 1e-5 is for full FT)


_BN = {"reduction_factor": 16, "non_linearity": "relu", "dropout": 0.0, "leave_out": []}

METHODS = {m.name: m for m in [
    Method("seq_bn", "bottleneck", _BN,
           "sequential bottleneck adapter after each layer's FFN (Pfeiffer)", "seq_bn"),
    Method("double_seq_bn", "bottleneck", dict(_BN, non_linearity="swish"),
           "bottleneck adapters after attention and after the FFN (Houlsby)", "double_seq_bn"),
    Method("par_bn", "bottleneck", dict(_BN, reduction_factor=2, scaling=4.0),
           "parallel bottleneck adapter beside each FFN (He et al.)", "par_bn"),
    Method("compacter", "bottleneck",
           {"reduction_factor": 32, "phm_dim": 4, "dropout": 0.0, "leave_out": []},
           "Houlsby adapters with Kronecker-factored (PHM) weights", "compacter"),
    Method("prefix", "bottleneck",
           {"prefix_length": 30, "bottleneck_size": 512, "dropout": 0.0, "leave_out": []},
           "trainable key/value prefixes in every attention layer", "prefix_tuning",
           fusable=False, lr=1e-3),
    Method("seq_bn_inv", "bottleneck", _BN,
           "language module (MAD-X): seq_bn plus an invertible adapter on the embeddings",
           "seq_bn_inv"),
    Method("lora", "peft",
           {"r": 8, "alpha": 16, "dropout": 0.0, "matrices": ["q", "v"]},
           "low-rank update of the chosen projections (default attention query and value)",
           lr=3e-4),
    Method("dora", "peft",
           {"r": 8, "alpha": 16, "dropout": 0.0, "matrices": ["q", "v"]},
           "LoRA with a learned magnitude per output (weight-decomposed)", lr=3e-4),
    Method("ia3", "peft", {"matrices": ["k", "v", "ffn_out"]},
           "learned rescaling of keys, values and the FFN's hidden activations",
           fusable=False, lr=3e-3),
]}

# Engine-neutral parameter names: module weights are stored with this in place of the slot
# (or adapter) name, so a module loads under any slot and exports under any name.
PLACEHOLDER = "{module}"


def strip_wrapper(key: str, known) -> str | None:
    """`key` with leading segments dropped until it names something `known` accepts (adapter
    files saved from a model with a head carry its base-model prefix, e.g. `roberta.`)."""
    parts = key.split(".")
    for i in range(min(3, len(parts))):
        candidate = ".".join(parts[i:])
        if known(candidate):
            return candidate
    return None


# The engine name earlier manifests recorded for the same computation.
ENGINE_ALIASES = {"adapters": "bottleneck"}


def engine_name(name: str) -> str:
    return ENGINE_ALIASES.get(name, name)


# Earlier module manifests spelled LoRA's target list as PEFT module names.
_LEGACY_KEYS = {"target_modules": "matrices"}
_LEGACY_TARGETS = {"query": "q", "key": "k", "value": "v"}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise unknown("method", name, METHODS)
    return METHODS[name]


def method_config(name: str, overrides: dict | None = None) -> dict:
    """The method's defaults with the user's overrides; unknown keys are refused. For
    bottleneck methods the few AdapterHub config fields the engine implements are accepted
    too (_bottleneck.TUNABLE)."""
    method = get_method(name)
    config = dict(method.defaults)
    allowed = set(config) | _library_fields(method)
    for key, value in (overrides or {}).items():
        if key in _LEGACY_KEYS and _LEGACY_KEYS[key] in config:
            key, value = _LEGACY_KEYS[key], [_LEGACY_TARGETS.get(v, v) for v in value]
        if key not in allowed:
            raise AdapterxlError(f"unknown config key {key!r} for method {name!r}; "
                                 f"known: {', '.join(sorted(config))}")
        config[key] = value
    _check(name, config)
    return config


def with_module_layers(method: str, config: dict, spec: str | None,
                       num_layers: int) -> dict:
    """The method config that places a module only in the layers `spec` selects
    (`--module-layers`; settings.layer_selection): the others become its `leave_out`, which
    the manifest records, so stacking, evaluation and loading place it the same way. None:
    `config` unchanged (every layer)."""
    from ..settings import layer_selection

    if spec is None:
        return config
    if config.get("leave_out"):
        raise AdapterxlError("give either --module-layers or a leave_out method setting, "
                             "not both")
    if get_method(method).name == "seq_bn_inv":  # (prefix is refused on every backbone)
        raise AdapterxlError("--module-layers does not apply to seq_bn_inv: its invertible "
                             "adapter sits on the embeddings, below every layer")
    keep = set(layer_selection(spec, num_layers))
    return {**config, "leave_out": [i for i in range(num_layers) if i not in keep]}


def _library_fields(method: Method) -> set[str]:
    if method.engine == "peft":
        # Only when given (--module-layers), so other PEFT modules' configs are unchanged.
        return {"leave_out"}
    if method.name == "prefix":
        return set()
    from ._bottleneck import TUNABLE

    return set(TUNABLE)


def _check(name: str, config: dict) -> None:
    def positive(key, kind=(int, float)):
        if key in config and (not isinstance(config[key], kind) or isinstance(config[key], bool)
                              or config[key] <= 0):
            raise AdapterxlError(f"{name}: {key} must be a positive number, got {config[key]!r}")

    for key in ("reduction_factor", "r", "alpha", "prefix_length", "bottleneck_size", "phm_dim"):
        positive(key)
    if "dropout" in config and not (isinstance(config["dropout"], (int, float))
                                    and 0 <= config["dropout"] < 1):
        raise AdapterxlError(f"{name}: dropout must be in [0, 1), got {config['dropout']!r}")
    leave_out = config.get("leave_out", [])
    if not isinstance(leave_out, list) or any(
            isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in leave_out):
        raise AdapterxlError(f"{name}: leave_out must be a list of layer numbers, got "
                             f"{leave_out!r}")
    if "matrices" in config:
        if isinstance(config["matrices"], str):
            config["matrices"] = [m for m in config["matrices"].split(",") if m]
        if not config["matrices"]:
            raise AdapterxlError(f"{name}: matrices must name at least one projection")
