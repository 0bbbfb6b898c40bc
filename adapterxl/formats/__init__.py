"""Task formats: how canonical rows (docs/FORMATS.md) become features, which head reads the
encoder, how outputs become predictions, how predictions are scored and written in XTREME's
submission layout. One file per format family; the training loop and evaluation only talk to
the `Format` interface."""
from __future__ import annotations

from ..errors import unknown
from .base import Format, Scored, predict

__all__ = ["Format", "Scored", "get_format", "predict"]


def get_format(name: str) -> Format:
    from .classification import Classification, Regression
    from .multiple_choice import MultipleChoice
    from .qa import ExtractiveQA
    from .retrieval import Retrieval
    from .tagging import Tagging
    from .mlm import MaskedLM

    formats = {"classification": Classification(), "pair_classification": Classification(),
               "regression": Regression(), "tagging": Tagging(), "qa": ExtractiveQA(),
               "multiple_choice": MultipleChoice(), "retrieval": Retrieval(), "mlm": MaskedLM()}
    if name not in formats:
        raise unknown("task format", name, formats)
    fmt = formats[name]
    fmt.name = name
    return fmt
