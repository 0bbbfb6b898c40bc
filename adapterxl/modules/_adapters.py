"""Engine: the AdapterHub `adapters` library (bottleneck adapters). Private to modules/."""
from __future__ import annotations

import logging

import torch


def add(model: torch.nn.Module, slot: str, method: str, config: dict) -> None:
    import adapters
    from adapters import AdapterConfig

    if not hasattr(model, "adapters_config"):
        adapters.init(model)
    model.add_adapter(slot, config=AdapterConfig.load(method, **config))
    device = model.get_input_embeddings().weight.device
    model.adapter_to(slot, device=device)


def activate(model: torch.nn.Module, slots: list[str]) -> None:
    from adapters import Stack

    # set_active_adapters resets LoRA merges inside a forward context created before the new
    # setup is active, which logs a spurious "none are activated" warning.
    log = logging.getLogger("adapters.model_mixin")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        # A Stack of bottleneck adapters is sequential: each sees the one below's output.
        model.set_active_adapters(Stack(*slots) if len(slots) > 1 else slots[0])
    finally:
        log.setLevel(level)
