"""adapterxl's version and the versions of the packages a result was made with (ground floor:
imports nothing of adapterxl, so every layer may record provenance)."""
from __future__ import annotations

import platform

__version__ = "0.1.0"

# What results and manifests record besides Python and adapterxl: the libraries that decide
# the numbers (a missing one is recorded as None).
_RECORDED = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets")


def versions() -> dict:
    import importlib.metadata as md

    # adapterxl's own version from the code that runs (installed metadata may be another copy's)
    out = {"python": platform.python_version(), "adapterxl": __version__}
    for pkg in _RECORDED:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out
