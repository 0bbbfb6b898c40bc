"""The module manifest (`manifest.json`): what a module is, how it was made and what it scored.
This class is the on-disk format; the writers (training, `import`, `merge`,
`adapterxl.save_module`) build one and `save_module` writes it, and `open_module` reads it back
through `Manifest.from_json`, which checks every field's type before anything is allocated.

Format versions: 2 records engine "bottleneck" for bottleneck-type modules; 1 recorded
"adapters" (the library that built them then: same tensors, same outputs). Version 1 files are
read as they are (`modules.methods.engine_name` maps the old engine name).

A Manifest is also a read-only mapping of its JSON (`manifest["task"]`, `.get("files")`), so
code written against the plain dict of earlier versions reads it unchanged."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..errors import AdapterxlError

FORMAT_VERSION = 2
MAX_LABELS = 1 << 21   # a vocabulary (MLM heads) is the largest label set: 262k for Gemma
MAX_HIDDEN = 1 << 17


@dataclass
class MethodSpec:
    """Which method built the module, with its full config; `engine` is the library that ran
    it (None in a manifest that does not say)."""
    name: str
    config: dict = field(default_factory=dict)
    engine: str | None = None

    def to_json(self) -> dict:
        out = {"name": self.name}
        if self.engine is not None:
            out["engine"] = self.engine
        out["config"] = self.config
        return out


@dataclass(kw_only=True)
class Manifest(Mapping):
    name: str
    kind: str = "module"            # "module" or "fusion"
    role: str = "task"              # "task", or "language" for language modules (MAD-X)
    task: str                       # "a+b" for a multi-task module; "unknown" when imported
    format: str | None = None
    labels: list | None = None      # the head's labels, in output order
    languages: list | None = None   # training language(s)
    backbone: dict                  # Backbone.describe(): id, fingerprint, model_type, ...
    method: MethodSpec
    head: dict | None               # None: head-less (imported without adapterxl's head)
    init_from: dict | None = None   # {name, task, path, sha256} of the module continued
    data: dict | None = None        # where the training data came from
    hyperparameters: dict | None = None
    seed: int | None = None
    metrics: dict | None = None
    versions: dict | None = None
    created: str | None = None
    trained_with: str | None = None
    # multi-task modules: one entry per task
    tasks: list | None = None
    heads: dict | None = None
    task_labels: dict | None = None
    formats: dict | None = None
    sampling: dict | None = None
    # merged and imported modules
    merged_from: list | None = None
    head_from: str | None = None
    imported: dict | None = None
    # written by save_module: the physical layout
    format_version: int = FORMAT_VERSION
    stack: list = field(default_factory=list)       # lower copies in stack/, bottom first
    stacked_on: list = field(default_factory=list)  # provenance (stack is emptied in copies)
    fused: list | None = None                       # a fusion's members in fused/
    files: dict = field(default_factory=dict)       # {file name: sha256}
    # keys this version does not know (a newer writer's), kept so that a copy keeps them
    extra: dict = field(default_factory=dict)

    # ---- typed reads --------------------------------------------------------------------
    @property
    def all_heads(self) -> dict[str, dict]:
        """{task: head config}; one entry unless the module is multi-task."""
        return self.heads or {self.task: self.head}

    @property
    def all_tasks(self) -> list[str]:
        return self.tasks or [self.task]

    def labels_for(self, task: str) -> list:
        return (self.task_labels or {}).get(task, self.labels or [])

    # ---- JSON ---------------------------------------------------------------------------
    def to_json(self) -> dict:
        """The JSON object written to manifest.json. Optional fields that are None are left
        out (`head` is always written: null marks a head-less module)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                continue
            if f.name == "method":
                value = value.to_json()
            if value is None and f.name != "head":
                continue
            out[f.name] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "manifest") -> "Manifest":
        """The manifest in `data` (a parsed manifest.json of any format up to ours); refuses a
        field of the wrong type or an implausible head size, naming `where`."""
        _check(data, where)
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        method = data["method"]
        values["method"] = MethodSpec(method["name"], method.get("config") or {},
                                      method.get("engine"))
        for key in ("stack", "stacked_on", "files"):
            if values.get(key) is None:
                values.pop(key, None)  # null in the file: the field's empty default
        values.setdefault("head", None)
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def replace(self, **changes) -> "Manifest":
        return replace(self, **changes)

    # ---- the read-only mapping of the JSON ----------------------------------------------
    def __getitem__(self, key: str):
        return self.to_json()[key]

    def __iter__(self):
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())

    def keys(self):
        return self.to_json().keys()

    def items(self):
        return self.to_json().items()

    def values(self):
        return self.to_json().values()


# Field types a manifest must have; a wrong one is refused here rather than failing somewhere
# deeper (an AttributeError) or being used as given.
_REQUIRED = ("name", "task", "method", "head", "backbone")
_TYPES = {"name": str, "task": str, "method": dict, "head": dict, "backbone": dict,
          "kind": str, "role": str, "labels": list, "languages": list, "files": dict,
          "stack": list, "fused": list, "stacked_on": list, "heads": dict, "tasks": list,
          "task_labels": dict, "metrics": dict, "hyperparameters": dict}
_WHAT = {str: "a string", dict: "a mapping", list: "a list"}


def _check(manifest: Any, where: str) -> None:
    if not isinstance(manifest, dict):
        raise AdapterxlError(f"{where}: expected a JSON object, found "
                             f"{type(manifest).__name__}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise AdapterxlError(f"{where}: unsupported module format version {version!r} "
                             f"(this adapterxl reads up to {FORMAT_VERSION})")
    for key in _REQUIRED:
        if key not in manifest:
            raise AdapterxlError(f"{where}: missing field {key!r}")

    def bad(name: str, want: str):
        value = manifest
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return AdapterxlError(f"{where}: field {name!r} must be {want}, found "
                              f"{json.dumps(value)[:60]}")

    for key, kind in _TYPES.items():
        if manifest.get(key) is not None and not isinstance(manifest[key], kind):
            raise bad(key, _WHAT[kind])
    if not isinstance(manifest["method"].get("name"), str):
        raise bad("method.name", "a string")
    if not isinstance(manifest["method"].get("config", {}), dict):
        raise bad("method.config", "a mapping")
    if not isinstance(manifest["backbone"].get("id"), str):
        raise bad("backbone.id", "a string")
    for name, value in (manifest.get("files") or {}).items():
        if not isinstance(value, str):
            raise bad(f"files.{name}", "a sha256 string")
    heads = {"head": manifest["head"]}
    heads.update({f"heads.{k}": v for k, v in (manifest.get("heads") or {}).items()})
    for name, head in heads.items():
        if head is None:
            continue  # a module without a head (imported)
        if not isinstance(head, dict):
            raise bad(name, "a mapping")
        _check_sizes(head, name, where)
    for key in ("stack", "fused"):
        if any(not isinstance(e, dict) for e in manifest.get(key) or ()):
            raise bad(key, "a list of mappings")


def _check_sizes(head: dict, name: str, where: str) -> None:
    # Checked before anything is allocated: a head claiming 2 billion labels would try to
    # allocate hundreds of GB.
    for key, top in (("num_labels", MAX_LABELS), ("hidden_size", MAX_HIDDEN)):
        value = head.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 1 <= value <= top):
            raise AdapterxlError(f"{where}: {name}.{key} is {value!r}, not a plausible "
                                 f"size (1 to {top:,})")
