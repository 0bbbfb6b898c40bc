"""Engine: PEFT (LoRA, DoRA, IA3). Private to modules/. Several active PEFT adapters are
additive: W·x + ΔW_a·x + ΔW_b·x, which is what stacking means for LoRA in adapterxl."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import AdapterxlError


def _config(method: str, config: dict, model_type: str):
    from peft import IA3Config, LoraConfig

    from ..architectures import ia3_feedforward, peft_targets

    if method == "ia3":
        return IA3Config(target_modules=peft_targets(model_type, config["matrices"]),
                         feedforward_modules=ia3_feedforward(model_type, config["matrices"]))
    return LoraConfig(r=config["r"], lora_alpha=config["alpha"], lora_dropout=config["dropout"],
                      target_modules=peft_targets(model_type, config["matrices"]),
                      use_dora=method == "dora")


def add(model: nn.Module, slot: str, method: str, config: dict, model_type: str, handle):
    """Inject an adapter in place; returns the PEFT handle used to manage adapters."""
    from peft import get_peft_model

    peft_config = _config(method, config, model_type)
    try:
        if handle is None:
            return get_peft_model(model, peft_config, adapter_name=slot)
        handle.add_adapter(slot, peft_config)
    except ValueError as e:  # e.g. target modules not found in this architecture
        raise AdapterxlError(f"{method} cannot be applied to this {model_type} backbone: "
                             f"{str(e).splitlines()[0]}") from e
    return handle


def activate(handle, slots: list[str]) -> None:
    handle.base_model.set_adapter(list(slots))


class LoraFusion(nn.Module):
    """A learned weighted combination of LoRA modules: at every adapted projection, module i's
    update is scaled by softmax(logits[site])[i] (so the fused update is a convex combination
    of the modules' updates; the start, all logits 0, is their average). The weights do not
    depend on the input: AdapterFusion's attention needs bottleneck outputs to attend over."""

    def __init__(self, encoder: nn.Module, members: list[str]):
        super().__init__()
        from peft.tuners.lora import LoraLayer

        self.members = list(members)
        self.sites = [(name, m) for name, m in encoder.named_modules()
                      if isinstance(m, LoraLayer) and all(s in m.lora_A for s in members)]
        if not self.sites:
            raise AdapterxlError("the fused LoRA modules share no adapted projection")
        self.site_names = [name for name, _ in self.sites]
        self.logits = nn.Parameter(torch.zeros(len(self.sites), len(members)))
        self._base = [{s: m.scaling[s] for s in members} for _, m in self.sites]
        self._hooks = [m.register_forward_pre_hook(self._hook(i))
                       for i, (_, m) in enumerate(self.sites)]

    def _hook(self, i: int):
        def set_scaling(layer, args):
            weights = self.logits[i].softmax(-1)
            for j, s in enumerate(self.members):
                layer.scaling[s] = self._base[i][s] * weights[j]
        return set_scaling

    def weights(self) -> torch.Tensor:
        """[sites, members] combination weights."""
        return self.logits.detach().float().softmax(-1)
