"""Methods a module can be built with, and which engine builds each. Users choose a method;
the engine (the `adapters` library or PEFT) is our choice and is recorded in the manifest."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import AdapterxlError, unknown


@dataclass(frozen=True)
class Method:
    name: str
    engine: str                       # "adapters" or "peft"
    defaults: dict = field(default_factory=dict)
    doc: str = ""


METHODS = {
    "seq_bn": Method("seq_bn", "adapters", {"reduction_factor": 16},
                     "sequential bottleneck adapter after each layer's FFN (Pfeiffer)"),
    # PEFT, not `adapters`: stacked LoRA modules must add their deltas (W + dA + dB); the
    # adapters library's Stack chains them instead.
    "lora": Method("lora", "peft",
                   {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["query", "value"]},
                   "low-rank update of the attention query and value projections"),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise unknown("method", name, METHODS)
    return METHODS[name]


def method_config(name: str, overrides: dict | None = None) -> dict:
    """The method's defaults with the user's overrides; unknown keys are refused."""
    method = get_method(name)
    config = dict(method.defaults)
    for key, value in (overrides or {}).items():
        if key not in config:
            raise AdapterxlError(f"unknown config key {key!r} for method {name!r}; "
                                 f"known: {', '.join(sorted(config))}")
        config[key] = value
    return config
