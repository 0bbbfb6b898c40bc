"""The module directory: weights (safetensors), head, manifest, and full copies of the
modules it is stacked on, so a module is self-contained and can be moved or shared.

    <module>/manifest.json        what it is, how it was made, what it scored
    <module>/module.safetensors   module weights, engine-neutral keys
    <module>/head.safetensors     task head
    <module>/stack/00-<name>/     lower modules, bottom first (flattened: no nested stack/)
    <module>/fused/00-<name>/     a fusion's members (module.safetensors then holds the
                                  fusion's own weights)

A multi-task module has one head per task: manifest `heads` {task: config}, and
head.safetensors keys `<task>.<param>`; a single-task module's keys are unprefixed.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import _io
from ..errors import AdapterxlError
from .manifest import FORMAT_VERSION, Manifest

MANIFEST = "manifest.json"
WEIGHTS = "module.safetensors"
HEAD = "head.safetensors"
STACK = "stack"
FUSED = "fused"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ModuleDir:
    path: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def method(self) -> str:
        return self.manifest.method.name

    @property
    def method_config(self) -> dict:
        return self.manifest.method.config

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def role(self) -> str:
        """"language" for language modules (MAD-X), else "task"."""
        return self.manifest.role

    @property
    def head_config(self) -> dict:
        return self.manifest.head

    @property
    def heads(self) -> dict[str, dict]:
        """{task: head config}; one entry unless the module is multi-task."""
        return self.manifest.all_heads

    @property
    def sha256(self) -> str | None:
        """The recorded sha256 of the module's weights: what identifies it in a stack."""
        return self.manifest.files.get(WEIGHTS)

    def labels_for(self, task: str) -> list:
        return self.manifest.labels_for(task)

    def _tensors(self, filename: str) -> dict[str, torch.Tensor]:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        self._check_file(filename, f"module {self.path}")
        try:
            return load_file(self.path / filename)
        except (SafetensorError, OSError, ValueError) as e:
            raise AdapterxlError(f"module {self.path}: {filename} is not a readable "
                                 f"safetensors file ({e})") from e

    def weights(self) -> dict[str, torch.Tensor]:
        return self._tensors(WEIGHTS)

    def head_weights(self) -> dict[str, torch.Tensor]:
        return self._tensors(HEAD)

    def _copies(self, key: str, folder: str, what: str) -> list["ModuleDir"]:
        entries = getattr(self.manifest, key) or []
        dirs = sorted((self.path / folder).iterdir()) if (self.path / folder).is_dir() else []
        if len(dirs) != len(entries):
            raise AdapterxlError(f"module {self.path}: manifest lists {len(entries)} {what} "
                                 f"modules but {folder}/ holds {len(dirs)}")
        return [open_module(d) for d in dirs]

    def lower(self) -> list["ModuleDir"]:
        """The modules this one is stacked on, bottom first."""
        return self._copies("stack", STACK, "lower")

    def fused(self) -> list["ModuleDir"]:
        """A fusion's members (empty for a plain module)."""
        return self._copies("fused", FUSED, "fused")

    def chain(self) -> list["ModuleDir"]:
        """This module with everything beneath it, bottom first."""
        return self.lower() + [self]

    def verify(self, deep: bool = False, label: str | None = None) -> None:
        """Every weights file has the sha256 the manifest records (a module is copied, built
        on or published only after this); file names cannot leave the folder. `deep`: the
        stack/ and fused/ copies too, each the very module its entry records. `label` names
        the module in errors (default: its path)."""
        label = label or f"module {self.path}"
        for name in self.manifest.files:
            if "/" in name or "\\" in name or name in ("", ".", ".."):
                raise AdapterxlError(f"{label}: the manifest names the file {name!r}, a path "
                                     f"that would leave the module folder; refused")
        for filename in (WEIGHTS, HEAD):
            if not self.manifest.files.get(filename):
                raise AdapterxlError(f"{label}: the manifest records no sha256 for "
                                     f"{filename}; refused")
            self._check_file(filename, label)
        if not deep:
            return
        for key, folder, copies in (("stack", STACK, self.lower), ("fused", FUSED, self.fused)):
            for entry, copy in zip(getattr(self.manifest, key) or [], copies()):
                inner = f"{label} {folder}/{copy.path.name}"
                copy.verify(deep=True, label=inner)
                if entry.get("sha256") and copy.sha256 != entry["sha256"]:
                    raise AdapterxlError(f"{inner}: {WEIGHTS} is not the module its parent's "
                                         f"manifest records (sha256 differs)")

    def _check_file(self, filename: str, label: str) -> None:
        """The file exists and, where the manifest records one, has its sha256."""
        path = self.path / filename
        if not path.is_file():
            raise AdapterxlError(f"{label}: {filename} is missing")
        expected = self.manifest.files.get(filename)
        if expected and sha256(path) != expected:
            raise AdapterxlError(f"{label}: {filename} is corrupted (sha256 differs from the "
                                 f"manifest): tampered or truncated")


def _close_match(path: Path) -> str:
    import difflib

    parent = path.parent if path.parent.is_dir() else None
    if parent is None:
        return ""
    names = [p.name for p in parent.iterdir() if p.is_dir()]
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    return f" (did you mean {str(parent / close[0])!r}?)" if close else ""


def open_module(path) -> ModuleDir:
    """The module in the local folder `path` (a Hub id is resolved to one by the caller:
    `adapterxl.hub.resolve_module`)."""
    path = Path(path)
    if not path.is_dir():
        raise AdapterxlError(f"module directory {str(path)!r} does not exist"
                             + _close_match(path))
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise AdapterxlError(f"{str(path)!r} is not an adapterxl module (no {MANIFEST})")
    manifest = Manifest.from_json(_io.read_json(manifest_path), str(manifest_path))
    _check_files(path)
    return ModuleDir(path, manifest)


def _check_files(root: Path) -> None:
    """A module folder holds directories and regular files only: a FIFO or a device would
    hang whoever reads it, and a symbolic link may only point to a file inside the module."""
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode):
                target = p.resolve()
                if not target.is_relative_to(real_root):
                    raise AdapterxlError(f"module {root}: {p.relative_to(root)} is a symbolic "
                                         f"link leaving the module; refused")
                mode = os.stat(p).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise AdapterxlError(f"module {root}: {p.relative_to(root)} is not a regular "
                                     f"file (a FIFO, socket or device); refused")
    for name in (MANIFEST, WEIGHTS, HEAD):  # the files every reader opens
        if (root / name).is_dir():
            raise AdapterxlError(f"module {root}: {name} is a directory, not a file; refused")


def check_output(output, reads=(), overwrite: bool = False, flag: str = "--output",
                 marker: str = MANIFEST) -> Path:
    """Refuse an output that would destroy something: empty, an existing file, one of the
    modules or folders the command reads (or a folder inside or around one), a directory that
    is not what this command writes (a folder holding `marker`: a module's manifest, an
    export's adapter config), or one that is without `overwrite`. Returns the output as a
    Path."""
    if output is None or not str(output).strip():
        raise AdapterxlError(f"{flag} is empty: name the module directory to write")
    path = Path(output).expanduser()
    target = path.resolve()
    for read in reads:
        if read is None or not Path(read).exists():
            continue  # a Hub id, resolved elsewhere, is never under the output
        source = Path(read).resolve()
        if target == source or source in target.parents or target in source.parents:
            raise AdapterxlError(f"{flag} {path} would overwrite the module {read} that this "
                                 f"command reads; write to another directory")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise AdapterxlError(f"{flag} {path} exists and is not a directory; choose another "
                             f"output or remove it")
    if path.is_dir():
        if (path / marker).exists():
            if not overwrite:
                what = "a module" if marker == MANIFEST else "an earlier output"
                raise AdapterxlError(f"{what} already exists at {path}: pass --overwrite "
                                     f"to replace it, or choose another {flag}")
        elif any(path.iterdir()):
            raise AdapterxlError(f"{flag} {path} is a directory that is not a module and "
                                 f"not empty; choose another output")
    return path


def _copy(mod: ModuleDir, dest: Path) -> dict:
    mod.verify()  # a damaged file must not become part of the new module
    dest.mkdir(parents=True)
    for filename in (MANIFEST, WEIGHTS, HEAD):
        shutil.copy2(mod.path / filename, dest / filename)
    # Copies are flattened: their own lower modules are the copies before them, so
    # `stack` (the physical list) is emptied; `stacked_on` keeps the provenance.
    _io.write_json(dest / MANIFEST, mod.manifest.replace(stack=[]).to_json())
    return {"name": mod.name, "task": mod.manifest.task, "method": mod.method,
            "role": mod.role, "sha256": mod.sha256}


def save_module(path, manifest: Manifest | dict, weights: dict[str, torch.Tensor],
                head_weights: dict[str, torch.Tensor], lower: list[ModuleDir],
                fused: list[ModuleDir] = ()) -> ModuleDir:
    """Write a module directory atomically (a previous module at `path` survives a crash).
    `manifest`: what the module is (a dict is read as a manifest's JSON); its layout fields
    (format version, stack, files) are filled in here. `lower`: the modules beneath, bottom
    first; `fused`: a fusion's members."""
    from safetensors.torch import save_file

    path = Path(path)
    try:
        with _io.staged(path) as staged:
            save_file(weights, staged / WEIGHTS)
            save_file(head_weights, staged / HEAD)
            stack = [_copy(mod, staged / STACK / f"{i:02d}-{mod.name}")
                     for i, mod in enumerate(lower)]
            members = [_copy(mod, staged / FUSED / f"{i:02d}-{mod.name}")
                       for i, mod in enumerate(fused)]
            if not isinstance(manifest, Manifest):
                manifest = Manifest.from_json(dict(manifest, format_version=FORMAT_VERSION),
                                              f"manifest of {path}")
            manifest = manifest.replace(
                format_version=FORMAT_VERSION, stack=stack, stacked_on=stack,
                fused=members or None,
                files={f: sha256(staged / f) for f in (WEIGHTS, HEAD)})
            _io.write_json(staged / MANIFEST, manifest.to_json())
    except Exception as e:  # noqa: BLE001 - only the environment's write failures are handled
        # A full disk or a permission problem is the user's environment, not a bug: one line
        # (exit 2) naming the module and saying what survived; still an OSError, with its errno.
        kept = "the previous module there is unchanged" if path.exists() else "nothing was written"
        error = _io.as_write_error(e.__cause__ if isinstance(e, _io.WriteError) else e,
                                   f"save module to {path}", path, kept)
        if error is None and isinstance(e, OSError):
            error = _io.WriteError(f"cannot save module to {path}: {e.strerror or e}; {kept}",
                                   e.errno)
        if error is None:
            raise
        raise error from e
    return ModuleDir(path, manifest)
