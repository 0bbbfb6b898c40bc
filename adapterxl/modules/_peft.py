"""Engine: PEFT (LoRA). Private to modules/. Several active LoRA adapters are additive:
W·x + ΔW_a·x + ΔW_b·x, which is what stacking means for LoRA in adapterxl."""
from __future__ import annotations

import torch


def _lora_config(config: dict):
    from peft import LoraConfig

    return LoraConfig(r=config["r"], lora_alpha=config["alpha"], lora_dropout=config["dropout"],
                      target_modules=list(config["target_modules"]))


def add(model: torch.nn.Module, slot: str, method: str, config: dict, handle):
    """Inject a LoRA adapter in place; returns the PEFT handle used to manage adapters."""
    from peft import get_peft_model

    if handle is None:
        return get_peft_model(model, _lora_config(config), adapter_name=slot)
    handle.add_adapter(slot, _lora_config(config))
    return handle


def activate(handle, slots: list[str]) -> None:
    handle.base_model.set_adapter(list(slots))
