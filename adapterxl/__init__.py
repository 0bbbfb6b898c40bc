"""adapterxl: English intermediate-task modules for zero-shot cross-lingual transfer.

The notebook API (`train`, `evaluate`, `predict`, `assemble`, `save_module`, `register_task`,
`TrainConfig`) is imported on first use, so `import adapterxl` stays quick and quiet."""
import logging as _logging

__version__ = "0.1.0"

# bitsandbytes warns on import that an optional CPU kernel package is missing, through a
# logger nobody configured (so Python prints it); adapterxl never uses that kernel. Quiet it
# unless the application has set the level itself (-v shows it again).
if _logging.getLogger("bitsandbytes").level == _logging.NOTSET:
    _logging.getLogger("bitsandbytes").setLevel(_logging.ERROR)

__all__ = ["train", "evaluate", "predict", "assemble", "save_module", "register_task",
           "TrainConfig", "AdapterxlError", "__version__"]


def __getattr__(name: str):
    if name in ("train", "evaluate", "predict", "assemble", "save_module", "register_task"):
        from . import api

        return getattr(api, name)
    if name == "TrainConfig":
        from .settings import TrainConfig

        return TrainConfig
    if name == "AdapterxlError":
        from .errors import AdapterxlError

        return AdapterxlError
    raise AttributeError(f"module 'adapterxl' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
