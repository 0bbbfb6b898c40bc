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

What each format's files hold is the engines' business (_peft.py, _adapterhub.py); this file
checks what can be exported, stages the folder, and builds the imported module. `import`
takes a folder: a Hub id is pulled by `adapterxl.hub.import_module`.

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
from . import _adapterhub, _peft
from .manifest import Manifest, MethodSpec
from .store import HEAD, MANIFEST, ModuleDir, check_output, open_module, save_module

FORMATS = ("peft", "adapters")
CONFIG = "adapter_config.json"
HEAD_CONFIG = "head_config.json"
PEFT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
ADAPTERS_WEIGHTS = ("adapter.safetensors", "pytorch_adapter.bin")
# What head_config.json carries from the manifest (the head and what its outputs mean).
_HEAD_FIELDS = ("task", "format", "labels", "head", "heads", "tasks", "task_labels", "formats")


# ---- export ---------------------------------------------------------------------------------
def export_module(module, fmt: str, output, overwrite: bool = False) -> Path:
    """Write the module in the folder `module` in `fmt` ("peft" or "adapters") into the
    folder `output`; returns it. An earlier export at `output` is replaced only with
    `overwrite`; the module itself, a file or any other folder there is refused."""
    from .methods import get_method

    check_output(output, [module], overwrite, marker=CONFIG)
    if fmt not in FORMATS:
        raise AdapterxlError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    mod = open_module(module)
    if mod.kind == "fusion":
        raise AdapterxlError(f"{mod.path} is a fusion: PEFT and adapters formats hold one "
                             f"adapter; export its members (fused/NN-name) instead")
    lower = mod.manifest.stack
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
        if mod.manifest.head is not None:
            (staged / HEAD).write_bytes((mod.path / HEAD).read_bytes())
            mod.head_weights()  # verifies the sha256 of what was copied
            _io.write_json(staged / HEAD_CONFIG, {
                k: v for k, v in mod.manifest.to_json().items() if k in _HEAD_FIELDS})
    return out


def _write_peft(mod: ModuleDir, weights: dict, out: Path) -> None:
    from safetensors.torch import save_file

    backbone = mod.manifest.backbone
    config, tensors = _peft.export_files(mod.method, mod.method_config, backbone["model_type"],
                                         backbone["id"], weights)
    config.save_pretrained(str(out))
    save_file(tensors, out / PEFT_WEIGHTS[0], metadata={"format": "pt"})


def _write_adapters(mod: ModuleDir, weights: dict, out: Path) -> None:
    from safetensors.torch import save_file

    name = re.sub(r"[^A-Za-z0-9_-]", "_", mod.name)
    config, tensors = _adapterhub.export_files(mod.method, mod.method_config, name,
                                               mod.manifest.backbone, weights)
    _io.write_json(out / CONFIG, config)
    save_file(tensors, out / ADAPTERS_WEIGHTS[0], metadata={"format": "pt"})


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


def _head(folder: Path, net) -> tuple[dict | None, dict, dict]:
    """(head config, head weights, manifest fields) from adapterxl's head files beside an
    exported adapter, set on `net` (which checks that they fit); a head-less module without
    them."""
    if not ((folder / HEAD_CONFIG).is_file() and (folder / HEAD).is_file()):
        return None, {}, {"labels": []}
    from safetensors.torch import load_file

    saved = _io.read_json(folder / HEAD_CONFIG)
    head = saved.get("head")
    head_weights = load_file(folder / HEAD)
    if saved.get("heads"):
        for task_name, cfg in saved["heads"].items():
            net.set_head(cfg, name=task_name)
        net.load_head_state(head_weights)
    else:
        net.set_head(head, head_weights)
    return head, head_weights, {k: v for k, v in saved.items()
                                if k in _HEAD_FIELDS and k != "head"}


def import_module(folder, output, model: str | None = None, task: str | None = None,
                  name: str | None = None, role: str | None = None,
                  language: str | None = None, allow_pickle: bool = False,
                  overwrite: bool = False, origin: str | None = None) -> ModuleDir:
    """Convert the adapter in PEFT or adapters format in the local `folder` into an adapterxl
    module at `output`. `model`: the backbone it belongs to (default: the one its config
    names); its fingerprint is recorded. The head comes back when the folder has adapterxl's
    head files, else the module is head-less. `role` defaults to "language" for invertible
    (MAD-X) adapters. `origin`: where the folder came from (a Hub id), recorded and used for
    the default name."""
    from ..backbone import load_backbone
    from .._version import versions
    from . import assemble
    from .methods import get_method

    check_output(output, [folder], overwrite)
    folder = Path(folder)
    if not folder.is_dir():
        raise AdapterxlError(f"adapter directory {str(folder)!r} does not exist")
    origin = origin or str(folder)
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
        method, method_cfg, state = _peft.import_files(config, tensors, backbone, where)
    else:
        tensors = _load_weights(folder, ADAPTERS_WEIGHTS, allow_pickle)
        method, method_cfg = _adapterhub.import_config(config, backbone, where)
    net, slot = assemble(backbone, [], method=method, config=method_cfg)
    if fmt == "adapters":
        state = _adapterhub.import_tensors(tensors, config.get("name") or "",
                                           set(net.module_state(slot)))
    net.load_module_state(slot, state, where)  # refuses missing, unexpected, mis-shaped tensors
    head, head_weights, saved = _head(folder, net)
    task = task or saved.pop("task", None) or "unknown"
    saved.pop("task", None)  # given as `task`: it overrides the saved one
    manifest = Manifest(
        **saved,
        name=name or re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(origin).name) or "imported",
        role=role or ("language" if method == "seq_bn_inv" else "task"),
        task=task,
        languages=[language] if language else [],
        backbone=backbone.describe(),
        method=MethodSpec(method, slot.config, get_method(method).engine),
        head=head,
        data={"source": "import"},
        imported={"format": fmt, "from": origin, "config": config},
        hyperparameters={}, metrics={}, versions=versions(),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return save_module(output, manifest, net.module_state(slot), head_weights, [])
