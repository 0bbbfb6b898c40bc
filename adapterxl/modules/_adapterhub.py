"""AdapterHub's file format (what the `adapters` library saves and loads:
adapter_config.json with the full bottleneck config, and the weights under its parameter
names), written and read without that library. Private to modules/.

The bottleneck engine (_bottleneck.py) uses AdapterHub's parameter names, so the weights map
1:1: only the adapter's name stands where the engine-neutral keys hold the placeholder."""
from __future__ import annotations

from ..errors import AdapterxlError
from ._bottleneck import BASE, FIXED, PRESETS, TUNABLE, full_config
from .methods import PLACEHOLDER, method_config, strip_wrapper

# Keys of methods.py's defaults: an imported config keeps these, plus TUNABLE ones that differ.
_SHAPE_KEYS = ("reduction_factor", "non_linearity", "dropout", "leave_out", "phm_dim")


def from_adapterhub(config: dict) -> tuple[str, dict]:
    """(method, adapterxl config) for an AdapterHub bottleneck config (adapter_config.json's
    "config"); refuses what this engine does not compute."""
    config = {k: v for k, v in config.items() if k != "architecture"}
    for key, value in FIXED.items():
        if key in config and config[key] != value:
            raise AdapterxlError(f"AdapterHub config {key}={config[key]!r} is not supported by "
                                 f"adapterxl's bottleneck engine (only {value!r})")
    structural = set(BASE) - TUNABLE - set(_SHAPE_KEYS) - {"scaling"}
    for method in PRESETS:
        preset = full_config(method, {})
        if all(config.get(k, BASE[k]) == preset[k] for k in structural
               if k not in ("inv_adapter",)) and \
                bool(config.get("inv_adapter")) == bool(preset["inv_adapter"]):
            if config.get("inv_adapter") not in (None, "nice"):
                raise AdapterxlError(f"invertible adapter {config['inv_adapter']!r} is not "
                                     f"supported (only 'nice')")
            ours = {k: config[k] for k in _SHAPE_KEYS if k in config}
            ours.update({k: config[k] for k in TUNABLE | {"scaling"}
                         if k in config and config[k] != preset[k]})
            if method != "compacter":
                ours.pop("phm_dim", None)
            return method, ours
    raise AdapterxlError("this AdapterHub bottleneck config matches none of seq_bn, "
                         "double_seq_bn, par_bn, compacter, seq_bn_inv")


def to_adapterhub(method: str, config: dict) -> dict:
    """AdapterHub's full config dict for a method and its adapterxl config."""
    return {**FIXED, **full_config(method, config)}


def export_files(method: str, method_cfg: dict, name: str, backbone: dict,
                 weights: dict) -> tuple[dict, dict]:
    """AdapterHub's adapter_config.json and weights for a bottleneck module, the adapter
    named `name`. `backbone`: the manifest's description of the backbone."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    from .._version import __version__

    config = {
        "config": to_adapterhub(method, method_cfg),
        "hidden_size": backbone.get("hidden_size"),
        "model_class": MODEL_MAPPING_NAMES.get(backbone.get("model_type")),
        "model_name": backbone.get("id"),
        "model_type": backbone.get("model_type"),
        "name": name,
        "version": f"adapterxl.{__version__}",
    }
    return config, {k.replace(PLACEHOLDER, name): v.contiguous() for k, v in weights.items()}


# AdapterHub's names for the configs it ships, as adapter_config.json may give them.
_CONFIG_IDS = {"seq_bn": "seq_bn", "pfeiffer": "seq_bn", "double_seq_bn": "double_seq_bn",
               "houlsby": "double_seq_bn", "par_bn": "par_bn", "parallel": "par_bn",
               "scaled_par_bn": None, "compacter": "compacter", "seq_bn_inv": "seq_bn_inv",
               "pfeiffer+inv": "seq_bn_inv", "double_seq_bn_inv": None, "houlsby+inv": None}


def import_config(config: dict, backbone, source: str) -> tuple[str, dict]:
    """(method, adapterxl config) of an AdapterHub adapter_config.json made for `backbone`;
    refuses another backbone's or an architecture adapterxl does not build."""
    for key, ours in (("model_type", backbone.model_type),
                      ("hidden_size", backbone.hidden_size)):
        if config.get(key) not in (None, ours):
            raise AdapterxlError(f"{source} was made for {key} {config[key]!r}; the backbone "
                                 f"{backbone.id} has {ours!r}")
    theirs = config["config"]
    if isinstance(theirs, str):
        if _CONFIG_IDS.get(theirs) is None:
            raise AdapterxlError(f"{source}: this adapter architecture ({theirs}) matches no "
                                 f"adapterxl method")
        return _CONFIG_IDS[theirs], {}
    arch = theirs.get("architecture") or "bottleneck"
    if arch != "bottleneck":
        raise AdapterxlError(f"{source}: this adapter architecture ({arch}) matches no "
                             f"adapterxl method")
    try:
        method, overrides = from_adapterhub(theirs)
    except AdapterxlError as e:
        raise AdapterxlError(f"{source}: {e}") from None
    method_config(method, overrides)  # refuses values adapterxl does not accept
    return method, overrides


def import_tensors(tensors: dict, adapter_name: str, expected: set[str]) -> dict:
    """AdapterHub's tensors under the engine-neutral keys the module's slot expects
    (`expected`): the adapter's name becomes the placeholder, a head model's prefix goes."""
    state = {}
    for key, value in tensors.items():
        neutral = ".".join(PLACEHOLDER if p == adapter_name else p for p in key.split("."))
        state[strip_wrapper(neutral, expected.__contains__) or neutral] = value
    return state
