"""Methods a module can be built with, and which engine builds each. Users choose a method;
the engine (the `adapters` library or PEFT) is our choice and is recorded in the manifest.

Bottleneck-style methods (and prefix tuning) come from `adapters`, which composes them as a
sequential Stack and fuses them with AdapterFusion. LoRA, DoRA and IA3 come from PEFT, because
several active PEFT adapters add their updates (W·x + ΔW_a·x + ΔW_b·x), which is what stacking
LoRA modules means in adapterxl; the `adapters` library's Stack would chain them instead."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import AdapterxlError, unknown


@dataclass(frozen=True)
class Method:
    name: str
    engine: str                       # "adapters" or "peft"
    defaults: dict = field(default_factory=dict)
    doc: str = ""
    library_id: str = ""              # the adapters library's config id
    fusable: bool = True              # can be a member of --fuse
    lr: float = 1e-4                  # default learning rate (the paper's 1e-5 is for full FT)


_BN = {"reduction_factor": 16, "non_linearity": "relu", "dropout": 0.0, "leave_out": []}

METHODS = {m.name: m for m in [
    Method("seq_bn", "adapters", _BN,
           "sequential bottleneck adapter after each layer's FFN (Pfeiffer)", "seq_bn"),
    Method("double_seq_bn", "adapters", dict(_BN, non_linearity="swish"),
           "bottleneck adapters after attention and after the FFN (Houlsby)", "double_seq_bn"),
    Method("par_bn", "adapters", dict(_BN, reduction_factor=2, scaling=4.0),
           "parallel bottleneck adapter beside each FFN (He et al.)", "par_bn"),
    Method("compacter", "adapters",
           {"reduction_factor": 32, "phm_dim": 4, "dropout": 0.0, "leave_out": []},
           "Houlsby adapters with Kronecker-factored (PHM) weights", "compacter"),
    Method("prefix", "adapters",
           {"prefix_length": 30, "bottleneck_size": 512, "dropout": 0.0, "leave_out": []},
           "trainable key/value prefixes in every attention layer", "prefix_tuning",
           fusable=False, lr=1e-3),
    Method("seq_bn_inv", "adapters", _BN,
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

# Earlier module manifests spelled LoRA's target list as PEFT module names.
_LEGACY_KEYS = {"target_modules": "matrices"}
_LEGACY_TARGETS = {"query": "q", "key": "k", "value": "v"}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise unknown("method", name, METHODS)
    return METHODS[name]


def method_config(name: str, overrides: dict | None = None) -> dict:
    """The method's defaults with the user's overrides; unknown keys are refused. For
    `adapters` methods any field of the library's config class is accepted too."""
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


def _library_fields(method: Method) -> set[str]:
    if method.engine != "adapters":
        return set()
    import dataclasses

    from adapters import AdapterConfig

    fixed = {"architecture", "inv_adapter", "is_parallel", "phm_layer", "mh_adapter",
             "output_adapter"}  # these would turn the method into another one
    return {f.name for f in dataclasses.fields(AdapterConfig.load(method.library_id))} - fixed


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
    if "matrices" in config:
        if isinstance(config["matrices"], str):
            config["matrices"] = [m for m in config["matrices"].split(",") if m]
        if not config["matrices"]:
            raise AdapterxlError(f"{name}: matrices must name at least one projection")


def adapters_config(name: str, config: dict):
    """The `adapters` library config object for a method of that engine."""
    from adapters import AdapterConfig

    return AdapterConfig.load(get_method(name).library_id, **config)
