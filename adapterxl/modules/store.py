"""The module directory: weights (safetensors), head, manifest, and full copies of the
modules it is stacked on, so a module is self-contained and can be moved or shared.

    <module>/manifest.json        what it is, how it was made, what it scored
    <module>/module.safetensors   module weights, engine-neutral keys
    <module>/head.safetensors     task head
    <module>/stack/00-<name>/     lower modules, bottom first (flattened: no nested stack/)
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import _io
from ..errors import AdapterxlError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "module.safetensors"
HEAD = "head.safetensors"
STACK = "stack"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ModuleDir:
    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def method(self) -> str:
        return self.manifest["method"]["name"]

    @property
    def method_config(self) -> dict:
        return self.manifest["method"]["config"]

    @property
    def head_config(self) -> dict:
        return self.manifest["head"]

    def _tensors(self, filename: str) -> dict[str, torch.Tensor]:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.path / filename
        if not path.exists():
            raise AdapterxlError(f"module {self.path}: {filename} is missing")
        expected = self.manifest.get("files", {}).get(filename)
        if expected and sha256(path) != expected:
            raise AdapterxlError(f"module {self.path}: {filename} is corrupted "
                                 f"(sha256 differs from the manifest)")
        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as e:
            raise AdapterxlError(f"module {self.path}: {filename} is not a readable "
                                 f"safetensors file ({e})") from e

    def weights(self) -> dict[str, torch.Tensor]:
        return self._tensors(WEIGHTS)

    def head_weights(self) -> dict[str, torch.Tensor]:
        return self._tensors(HEAD)

    def lower(self) -> list["ModuleDir"]:
        """The modules this one is stacked on, bottom first."""
        entries = self.manifest.get("stack", [])
        dirs = sorted((self.path / STACK).iterdir()) if (self.path / STACK).is_dir() else []
        if len(dirs) != len(entries):
            raise AdapterxlError(f"module {self.path}: manifest lists {len(entries)} lower "
                                 f"modules but {STACK}/ holds {len(dirs)}")
        return [open_module(d) for d in dirs]

    def chain(self) -> list["ModuleDir"]:
        """This module with everything beneath it, bottom first."""
        return self.lower() + [self]


def open_module(path) -> ModuleDir:
    path = Path(path)
    if not path.is_dir():
        raise AdapterxlError(f"module directory {str(path)!r} does not exist")
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise AdapterxlError(f"{str(path)!r} is not an adapterxl module (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AdapterxlError(f"{manifest_path} is not valid JSON ({e})") from e
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise AdapterxlError(f"{manifest_path}: unsupported module format version {version!r} "
                             f"(this adapterxl reads up to {FORMAT_VERSION})")
    for key in ("name", "task", "method", "head", "backbone"):
        if key not in manifest:
            raise AdapterxlError(f"{manifest_path}: missing field {key!r}")
    return ModuleDir(path, manifest)


def save_module(path, manifest: dict, weights: dict[str, torch.Tensor],
                head_weights: dict[str, torch.Tensor], lower: list[ModuleDir]) -> ModuleDir:
    """Write a module directory atomically (a previous module at `path` survives a crash)."""
    from safetensors.torch import save_file

    path = Path(path)
    staged = None
    try:
        staged = _io.staging_dir(path)
        save_file(weights, staged / WEIGHTS)
        save_file(head_weights, staged / HEAD)
        stack = []
        for i, mod in enumerate(lower):
            dest = staged / STACK / f"{i:02d}-{mod.name}"
            dest.mkdir(parents=True)
            for filename in (MANIFEST, WEIGHTS, HEAD):
                shutil.copy2(mod.path / filename, dest / filename)
            # Copies are flattened: their own lower modules are the copies before them, so
            # `stack` (the physical list) is emptied; `stacked_on` keeps the provenance.
            copied = dict(mod.manifest, stack=[])
            _io.write_json(dest / MANIFEST, copied)
            stack.append({"name": mod.name, "task": mod.manifest["task"], "method": mod.method,
                          "sha256": mod.manifest.get("files", {}).get(WEIGHTS)})
        manifest = dict(manifest, format_version=FORMAT_VERSION, stack=stack, stacked_on=stack,
                        files={f: sha256(staged / f) for f in (WEIGHTS, HEAD)})
        _io.write_json(staged / MANIFEST, manifest)
        _io.replace_dir(staged, path)
    except BaseException as e:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        if isinstance(e, OSError):  # WriteError included: name the module, not the staging dir
            # A full disk or a permission problem is the user's environment, not a bug: one
            # line (exit 2) saying what survived; still an OSError, with its errno.
            kept = ("the previous module there is unchanged" if path.exists()
                    else "nothing was written")
            raise _io.WriteError(f"cannot save module to {path}: {e.strerror or e}; {kept}",
                                 e.errno) from e
        raise
    return ModuleDir(path, manifest)
