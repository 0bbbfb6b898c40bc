"""Interoperability: export a module in PEFT's or AdapterHub's (`adapters`) own format, and
import adapters in those formats (ours, or published by others, e.g. AdapterHub language
adapters) as adapterxl modules.

- LoRA / DoRA / IA3 modules -> PEFT: `adapter_config.json` (written by PEFT's own config
  class: peft_type, base_model_name_or_path, the real target module names, r, lora_alpha) and
  `adapter_model.safetensors` with PEFT's key names, for
  `PeftModel.from_pretrained(AutoModel.from_pretrained(backbone), DIR)`.
- Bottleneck-type modules -> AdapterHub: `adapter_config.json` (config, model_type,
  hidden_size, name, version) and `adapter.safetensors`, for
  `adapters.init(model); model.load_adapter(DIR, use_safetensors=True)`. Written and read
  without the `adapters` package: the bottleneck engine uses AdapterHub's parameter names.
- The head is adapterxl's own: exported beside as `head.safetensors` + `head_config.json`
  (task, format, labels, head config); an import restores it when present.

An imported module without a head is *head-less*: manifest `head` is null and
head.safetensors holds no tensors. It can be stacked (--stack, --lang-module, --init-from,
--fuse) but not evaluated on its own. Imported modules record the fingerprint of the backbone
given at import (`--model`), so using them on other weights is refused like any module.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import torch

from .. import _io
from ..errors import AdapterxlError
from .store import HEAD, MANIFEST, ModuleDir, check_output, open_module, save_module

FORMATS = ("peft", "adapters")
CONFIG = "adapter_config.json"
HEAD_CONFIG = "head_config.json"
PEFT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
ADAPTERS_WEIGHTS = ("adapter.safetensors", "pytorch_adapter.bin")
PEFT_PREFIX = "base_model.model."
PLACEHOLDER = "{module}"
# PEFT parameter groups, followed by the adapter name in the live model's parameter names.
_PEFT_PARTS = ("lora_A", "lora_B", "lora_magnitude_vector", "ia3_l")


# ---- export ---------------------------------------------------------------------------------
def export_module(module, fmt: str, output, overwrite: bool = False) -> Path:
    """Write `module` in `fmt` ("peft" or "adapters") into the folder `output`; returns it.
    An earlier export at `output` is replaced only with `overwrite`; the module itself, a
    file or any other folder there is refused."""
    from .methods import get_method

    check_output(output, [module], overwrite, marker=CONFIG)
    if fmt not in FORMATS:
        raise AdapterxlError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    mod = open_module(module)
    if mod.kind == "fusion":
        raise AdapterxlError(f"{mod.path} is a fusion: PEFT and adapters formats hold one "
                             f"adapter; export its members (fused/NN-name) instead")
    lower = mod.manifest.get("stack") or []
    if lower:
        raise AdapterxlError(
            f"{mod.path} is stacked on {', '.join(e['name'] for e in lower)}: the {fmt} format "
            f"holds one adapter, which would not work alone; export each level separately "
            f"({mod.path}/stack/NN-name, then {mod.path}) and stack them in that library")
    engine = get_method(mod.method).engine
    if mod.method == "prefix":
        raise AdapterxlError("prefix modules cannot be exported: adapterxl no longer builds "
                             "prefix tuning")
    if engine != ("peft" if fmt == "peft" else "bottleneck"):
        other = "adapters" if fmt == "peft" else "peft"
        raise AdapterxlError(f"{mod.method} modules are built by the {engine} engine: export "
                             f"them with --format {other}")
    weights = mod.weights()
    out = Path(output)
    with _io.staged(out) as staged:
        if fmt == "peft":
            _write_peft(mod, weights, staged)
        else:
            _write_adapters(mod, weights, staged)
        if mod.manifest.get("head") is not None:
            (staged / HEAD).write_bytes((mod.path / HEAD).read_bytes())
            mod.head_weights()  # verifies the sha256 of what was copied
            _io.write_json(staged / HEAD_CONFIG, {
                k: mod.manifest.get(k) for k in ("task", "format", "labels", "head", "heads",
                                                 "tasks", "task_labels", "formats")
                if mod.manifest.get(k) is not None})
    return out


def _peft_key(key: str) -> str:
    parts = [p for p in key.split(".") if p != PLACEHOLDER]
    if parts[-2:] == ["lora_magnitude_vector", "weight"]:
        parts = parts[:-1]  # PEFT saves DoRA's magnitude without ".weight"
    return PEFT_PREFIX + ".".join(parts)


def _targets(weights: dict) -> list[str]:
    out = []
    for key in weights:
        parts = key.split(".")
        for i, p in enumerate(parts):
            if p in _PEFT_PARTS:
                out.append(".".join(parts[:i]))
                break
    return sorted(set(out), key=_natural)


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _write_peft(mod: ModuleDir, weights: dict, out: Path) -> None:
    from peft import IA3Config, LoraConfig
    from safetensors.torch import save_file

    from ..architectures import matrices

    cfg = mod.method_config
    targets = _targets(weights)
    base = mod.manifest["backbone"]["id"]
    if mod.method == "ia3":
        ffn = re.compile(matrices(mod.manifest["backbone"]["model_type"])["ffn_out"])
        config = IA3Config(target_modules=targets, base_model_name_or_path=base,
                           feedforward_modules=[t for t in targets if ffn.fullmatch(t)])
    else:
        config = LoraConfig(r=cfg["r"], lora_alpha=cfg["alpha"], lora_dropout=cfg["dropout"],
                            target_modules=targets, use_dora=mod.method == "dora",
                            base_model_name_or_path=base)
    config.inference_mode = True
    config.save_pretrained(str(out))
    save_file({_peft_key(k): v.contiguous() for k, v in weights.items()},
              out / PEFT_WEIGHTS[0], metadata={"format": "pt"})


def _write_adapters(mod: ModuleDir, weights: dict, out: Path) -> None:
    from safetensors.torch import save_file

    name = re.sub(r"[^A-Za-z0-9_-]", "_", mod.name)
    config, tensors = adapterhub_files(mod.method, mod.method_config, name,
                                       mod.manifest["backbone"], weights)
    _io.write_json(out / CONFIG, config)
    save_file(tensors, out / ADAPTERS_WEIGHTS[0], metadata={"format": "pt"})


def adapterhub_files(method: str, method_cfg: dict, name: str, backbone: dict,
                     weights: dict) -> tuple[dict, dict]:
    """AdapterHub's adapter_config.json and weights for a bottleneck module, made without its
    library: the native engine's parameter names are AdapterHub's, so the weights only get
    the adapter's name in place of the placeholder. `backbone`: the manifest's description."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    from .. import __version__
    from ._bottleneck import to_adapterhub

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


# ---- import ---------------------------------------------------------------------------------
def detect_format(folder) -> str:
    """"peft" or "adapters" for a folder holding an adapter in one of those formats."""
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        raise AdapterxlError(f"{folder} is already an adapterxl module; use it as it is")
    config = _read_config(folder)
    if "peft_type" in config:
        return "peft"
    if "config" in config:
        return "adapters"
    raise AdapterxlError(f"{folder / CONFIG} is neither a PEFT nor an adapters config")


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG
    if not path.is_file():
        raise AdapterxlError(f"{folder} holds no {CONFIG}: not a PEFT or adapters adapter")
    config = _io.read_json(path)
    if not isinstance(config, dict):
        raise AdapterxlError(f"{path} is not a JSON object")
    return config


def _load_weights(folder: Path, names: tuple[str, str], allow_pickle: bool) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    safe, pickled = (folder / n for n in names)
    if safe.is_file():
        try:
            return load_file(safe)
        except (SafetensorError, OSError, ValueError) as e:
            raise AdapterxlError(f"{safe} is not a readable safetensors file ({e})") from e
    if pickled.is_file():
        if not allow_pickle:
            raise AdapterxlError(
                f"{pickled} is a pickle file (.bin), which can run code when loaded; refused. "
                f"Pass --allow-pickle if you trust its source (it is then read with "
                f"torch.load(weights_only=True), which loads tensors only)")
        try:
            state = torch.load(pickled, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure is the file's fault
            raise AdapterxlError(f"{pickled} cannot be read as plain tensors "
                                 f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                                 ) from e
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                                   for v in state.values()):
            raise AdapterxlError(f"{pickled} does not hold a dictionary of tensors")
        return state
    raise AdapterxlError(f"{folder} holds no weights ({' or '.join(names)})")


def _strip_to(key: str, known) -> str | None:
    """`key` with leading segments dropped until it names something in `known` (checkpoints
    saved from a model with a head carry its base-model prefix, e.g. `roberta.`)."""
    parts = key.split(".")
    for i in range(min(3, len(parts))):
        candidate = ".".join(parts[i:])
        if known(candidate):
            return candidate
    return None


def _from_peft(config: dict, tensors: dict, backbone, source: str) -> tuple[str, dict, dict]:
    from ..architectures import matrices

    kind = config.get("peft_type")
    if kind not in ("LORA", "IA3"):
        raise AdapterxlError(f"{source}: PEFT type {kind!r} cannot be imported (LORA, with "
                             f"or without DoRA, and IA3 can)")
    unsupported = [k for k, ok in (
        ("rank_pattern", not config.get("rank_pattern")),
        ("alpha_pattern", not config.get("alpha_pattern")),
        ("use_rslora", not config.get("use_rslora")),
        ("bias", config.get("bias", "none") == "none"),
        ("lora_bias", not config.get("lora_bias")),
        ("modules_to_save", not config.get("modules_to_save")),
        ("layers_to_transform", config.get("layers_to_transform") is None),
        ("fan_in_fan_out", not config.get("fan_in_fan_out")),
        ("target_parameters", not config.get("target_parameters")),
        ("layer_replication", not config.get("layer_replication")),
    ) if not ok]
    if unsupported:
        raise AdapterxlError(f"{source}: PEFT option {unsupported[0]} = "
                             f"{config.get(unsupported[0])!r} has no adapterxl equivalent")
    linear = {n for n, m in backbone.model.named_modules() if isinstance(m, torch.nn.Linear)}
    state, targets = {}, set()
    for key, value in tensors.items():
        key = key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key
        parts = key.split(".")
        cut = next((i for i, p in enumerate(parts) if p in _PEFT_PARTS), None)
        if cut is None:
            raise AdapterxlError(f"{source}: unexpected tensor {key} (not a LoRA/IA3 weight)")
        target = _strip_to(".".join(parts[:cut]), linear.__contains__)
        if target is None:
            raise AdapterxlError(f"{source}: {'.'.join(parts[:cut])} is not a linear layer of "
                                 f"{backbone.id}")
        rest = parts[cut + 1:] or ["weight"]  # DoRA's magnitude is saved without ".weight"
        state[".".join([target, parts[cut], PLACEHOLDER, *rest])] = value
        targets.add(target)
    names = []
    for logical, regex in matrices(backbone.model_type).items():
        hit = {n for n in linear if re.fullmatch(regex, n)}
        if hit and hit <= targets:
            names.append(logical)
            targets -= hit
    if targets:
        raise AdapterxlError(f"{source}: adapts {sorted(targets, key=_natural)[0]} (and "
                             f"{len(targets) - 1} more) without adapting all the layers' "
                             f"matching projections; adapterxl modules adapt whole "
                             f"projection kinds (q, k, v, o, ffn_in, ffn_out)")
    if kind == "IA3":
        return "ia3", {"matrices": names}, state
    method = "dora" if config.get("use_dora") else "lora"
    return method, {"r": config["r"], "alpha": config.get("lora_alpha", 8),
                    "dropout": config.get("lora_dropout", 0.0), "matrices": names}, state


# AdapterHub's names for the configs it ships, as adapter_config.json may give them.
_CONFIG_IDS = {"seq_bn": "seq_bn", "pfeiffer": "seq_bn", "double_seq_bn": "double_seq_bn",
               "houlsby": "double_seq_bn", "par_bn": "par_bn", "parallel": "par_bn",
               "scaled_par_bn": None, "compacter": "compacter", "seq_bn_inv": "seq_bn_inv",
               "pfeiffer+inv": "seq_bn_inv", "double_seq_bn_inv": None, "houlsby+inv": None}


def _from_adapters(config: dict, backbone, source: str) -> tuple[str, dict]:
    from ._bottleneck import from_adapterhub
    from .methods import method_config

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


def import_module(source, output, model: str | None = None, task: str | None = None,
                  name: str | None = None, role: str | None = None,
                  language: str | None = None, allow_pickle: bool = False,
                  registry=None, overwrite: bool = False) -> ModuleDir:
    """Convert an adapter in PEFT or adapters format (a folder, or a Hub / registry id
    `org/name[@revision]`, pulled first) into an adapterxl module at `output`. `model`: the
    backbone it belongs to (default: the one its config names); its fingerprint is recorded.
    The head comes back when the folder has adapterxl's head files, else the module is
    head-less. `role` defaults to "language" for invertible (MAD-X) adapters."""
    from ..backbone import load_backbone
    from ..training import versions
    from . import assemble
    from .methods import get_method

    check_output(output, [source], overwrite)  # before a pull: nothing is fetched in vain
    folder = Path(source)
    if not folder.is_dir():
        from .. import hub

        if not hub.is_hub_id(str(source)):
            raise AdapterxlError(f"adapter directory {str(source)!r} does not exist")
        folder = hub.pull(str(source), registry)
    fmt = detect_format(folder)
    config = _read_config(folder)
    model_id = model or config.get("base_model_name_or_path") or config.get("model_name")
    if not model_id:
        raise AdapterxlError(f"{folder / CONFIG} names no base model: give the backbone with "
                             f"--model")
    if role not in (None, "task", "language"):
        raise AdapterxlError(f"role must be task or language, got {role!r}")
    backbone = load_backbone(model_id)
    where = str(folder)
    if fmt == "peft":
        tensors = _load_weights(folder, PEFT_WEIGHTS, allow_pickle)
        method, method_cfg, state = _from_peft(config, tensors, backbone, where)
    else:
        tensors = _load_weights(folder, ADAPTERS_WEIGHTS, allow_pickle)
        method, method_cfg = _from_adapters(config, backbone, where)
    net, slot = assemble(backbone, [], method=method, config=method_cfg)
    if fmt == "adapters":
        expected = set(net.module_state(slot))
        adapter_name = config.get("name") or ""
        state = {}
        for key, value in tensors.items():
            neutral = ".".join(PLACEHOLDER if p == adapter_name else p for p in key.split("."))
            state[_strip_to(neutral, expected.__contains__) or neutral] = value
    net.load_module_state(slot, state, where)  # refuses missing, unexpected, mis-shaped tensors
    weights = net.module_state(slot)

    head, head_weights, extra = None, {}, {"labels": []}
    if (folder / HEAD_CONFIG).is_file() and (folder / HEAD).is_file():
        from safetensors.torch import load_file

        saved = _io.read_json(folder / HEAD_CONFIG)
        head = saved.get("head")
        head_weights = load_file(folder / HEAD)
        if saved.get("heads"):
            for task_name, cfg in saved["heads"].items():
                net.set_head(cfg, name=task_name)
            net.load_head_state(head_weights)
        else:
            net.set_head(head, head_weights)  # checks that they fit
        extra = {k: v for k, v in saved.items() if k != "head"}
    role = role or ("language" if method == "seq_bn_inv" else "task")
    manifest = {
        **extra,
        "name": name or re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(str(source)).name) or "imported",
        "kind": "module",
        "role": role,
        "task": task or extra.get("task") or "unknown",
        "format": extra.get("format"),
        "languages": [language] if language else [],
        "backbone": backbone.describe(),
        "method": {"name": method, "engine": get_method(method).engine, "config": slot.config},
        "head": head,
        "data": {"source": "import"},
        "imported": {"format": fmt, "from": str(source), "config": config},
        "hyperparameters": {},
        "metrics": {},
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return save_module(output, manifest, weights, head_weights, [])
