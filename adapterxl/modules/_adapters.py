"""Engine: the AdapterHub `adapters` library (bottleneck adapters, Compacter, prefix tuning,
AdapterFusion). Private to modules/."""
from __future__ import annotations

import contextlib
import logging

from torch import nn

from ..errors import AdapterxlError
from .methods import adapters_config


def init(model: nn.Module, model_type: str) -> None:
    if not hasattr(model, "adapters_config"):
        from ..architectures import adapters_init

        try:
            adapters_init(model, model_type)
        except (AttributeError, TypeError, ValueError, KeyError) as e:
            # e.g. a model class the library does not know (custom code of a known type)
            raise AdapterxlError(
                f"the adapters library cannot attach to {type(model).__name__} "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); use a "
                f"PEFT method (lora, dora, ia3)") from e


def add(model: nn.Module, slot: str, method: str, config: dict, model_type: str) -> None:
    init(model, model_type)
    try:
        model.add_adapter(slot, config=adapters_config(method, config))
    except AssertionError as e:  # the library's shape checks, e.g. Compacter's phm_dim
        raise AdapterxlError(f"{method} with {config} does not fit this backbone: {e}") from e
    model.adapter_to(slot, device=model.get_input_embeddings().weight.device)


def add_fusion(model: nn.Module, name: str, members: list[str]) -> None:
    from adapters import Fuse

    model.add_adapter_fusion(Fuse(*members, name=name), "dynamic", name=name)
    model.adapter_fusion_to(Fuse(*members, name=name),
                            device=model.get_input_embeddings().weight.device)


@contextlib.contextmanager
def _quiet():
    # set_active_adapters resets LoRA merges inside a forward context created before the new
    # setup is active, which logs a spurious "none are activated" warning.
    log = logging.getLogger("adapters.model_mixin")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def activate(model: nn.Module, stack: list[str], fusion: tuple[str, list[str]] | None) -> None:
    """A Stack of the modules, bottom first (sequential: each sees the one below's output),
    with the fusion on top."""
    if not hasattr(model, "adapters_config"):  # no bottleneck module: `adapters` not needed
        return
    from adapters import Fuse, Stack

    blocks = list(stack)
    if fusion is not None:
        blocks.append(Fuse(*fusion[1], name=fusion[0]))
    with _quiet():
        if not blocks:
            model.set_active_adapters(None)
        else:
            model.set_active_adapters(Stack(*blocks) if len(blocks) > 1 else blocks[0])


def fusion_attentions(outputs) -> dict:
    """{layer: [batch, length, members] attention} from a forward with
    output_adapter_fusion_attentions=True (one fusion, at the FFN output)."""
    found = getattr(outputs, "adapter_fusion_attentions", None) or {}
    out = {}
    for per_layer in found.values():
        for layer, locations in per_layer.items():
            for location, attention in locations.items():
                out[f"{layer}.{location}"] = attention
    return out
