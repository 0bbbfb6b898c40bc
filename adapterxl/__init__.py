"""adapterxl: English intermediate-task modules for zero-shot cross-lingual transfer.

The public face: `train`, `evaluate`, `predict`, `assemble`, `save_module`, `register_task`
(the notebook API), `TrainConfig`, `open_module`, `run_recipe`, `plan`, `AdapterxlError` and
`__version__`. Each is imported on first use, so `import adapterxl` (and `adapterxl --help`)
stays quick, quiet and torch-free. This file is outside the layers (docs/ARCHITECTURE.md): it
may name anything, lazily."""
import importlib as _importlib
import logging as _logging

from ._version import __version__

# bitsandbytes warns on import that an optional CPU kernel package is missing, through a
# logger nobody configured (so Python prints it); adapterxl never uses that kernel. Quiet it
# unless the application has set the level itself (-v shows it again).
if _logging.getLogger("bitsandbytes").level == _logging.NOTSET:
    _logging.getLogger("bitsandbytes").setLevel(_logging.ERROR)

# name -> the modules that define it, tried in order (the first that exists wins: `plan` moves
# from plan.py to planning.py, so that the function and the module no longer share a name).
_PUBLIC = {
    "train": ("api",), "evaluate": ("api",), "predict": ("api",), "assemble": ("api",),
    "save_module": ("api",), "register_task": ("api",),
    "TrainConfig": ("settings",),
    "open_module": ("modules.store",),
    "run_recipe": ("experiments.runner",),
    "plan": ("planning", "plan"),
    "AdapterxlError": ("errors",),
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    for module in _PUBLIC.get(name, ()):
        try:
            found = _importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{module}":
                raise   # a missing dependency inside the module, not the module itself
            continue
        return getattr(found, name)
    raise AttributeError(f"module 'adapterxl' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
