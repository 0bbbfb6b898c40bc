"""Engine: PEFT (LoRA, DoRA, IA3), and PEFT's file format (export and import). Private to
modules/. Several active PEFT adapters are additive: W·x + ΔW_a·x + ΔW_b·x, which is what
stacking means for LoRA in adapterxl."""
from __future__ import annotations

import re

import torch
from torch import nn

from ..errors import AdapterxlError
from .methods import PLACEHOLDER, strip_wrapper

# PEFT's saved key prefix (PeftModel wraps the base model twice).
PREFIX = "base_model.model."
# PEFT parameter groups, followed by the adapter name in the live model's parameter names.
PARTS = ("lora_A", "lora_B", "lora_magnitude_vector", "ia3_l")


def _config(method: str, config: dict, model_type: str, targets: list[str] | None = None,
            base: str | None = None):
    """PEFT's config for a module: its matrices as one regex over module names (to inject
    it), or, in an export, the module names it adapts (`targets`) and the base model id."""
    from peft import IA3Config, LoraConfig

    from ..architectures import ia3_feedforward, matrices, peft_targets

    if targets is None:
        leave_out = config.get("leave_out", ())  # --module-layers
        targets = peft_targets(model_type, config["matrices"], leave_out)
        feedforward = ia3_feedforward(model_type, config["matrices"], leave_out)
    else:
        ffn = re.compile(matrices(model_type)["ffn_out"])
        feedforward = [t for t in targets if ffn.fullmatch(t)]
    if method == "ia3":
        return IA3Config(target_modules=targets, feedforward_modules=feedforward,
                         base_model_name_or_path=base)
    return LoraConfig(r=config["r"], lora_alpha=config["alpha"], lora_dropout=config["dropout"],
                      target_modules=targets, use_dora=method == "dora",
                      base_model_name_or_path=base)


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


# ---- PEFT's file format ---------------------------------------------------------------------
def export_files(method: str, config: dict, model_type: str, base: str,
                 weights: dict) -> tuple:
    """(PEFT config, tensors under PEFT's key names) of a module, for
    `PeftModel.from_pretrained(AutoModel.from_pretrained(base), DIR)`; the config names the
    real target modules."""
    peft_config = _config(method, config, model_type, _targets(weights), base)
    peft_config.inference_mode = True
    return peft_config, {_peft_key(k): v.contiguous() for k, v in weights.items()}


def _peft_key(key: str) -> str:
    parts = [p for p in key.split(".") if p != PLACEHOLDER]
    if parts[-2:] == ["lora_magnitude_vector", "weight"]:
        parts = parts[:-1]  # PEFT saves DoRA's magnitude without ".weight"
    return PREFIX + ".".join(parts)


def _targets(weights: dict) -> list[str]:
    out = []
    for key in weights:
        parts = key.split(".")
        for i, p in enumerate(parts):
            if p in PARTS:
                out.append(".".join(parts[:i]))
                break
    return sorted(set(out), key=natural)


def natural(name: str):
    """Sort key that orders layer 2 before layer 10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# PEFT options adapterxl has no equivalent for, with the value that means "not used".
_UNSUPPORTED = (("rank_pattern", lambda v: not v), ("alpha_pattern", lambda v: not v),
                ("use_rslora", lambda v: not v), ("bias", lambda v: v in (None, "none")),
                ("lora_bias", lambda v: not v), ("modules_to_save", lambda v: not v),
                ("layers_to_transform", lambda v: v is None),
                ("fan_in_fan_out", lambda v: not v), ("target_parameters", lambda v: not v),
                ("layer_replication", lambda v: not v))


def import_files(config: dict, tensors: dict, backbone, source: str) -> tuple[str, dict, dict]:
    """(method, method config, engine-neutral state) of a PEFT adapter (its
    adapter_config.json and tensors) for `backbone`; refuses what adapterxl cannot represent."""
    from ..architectures import matrices

    kind = config.get("peft_type")
    if kind not in ("LORA", "IA3"):
        raise AdapterxlError(f"{source}: PEFT type {kind!r} cannot be imported (LORA, with "
                             f"or without DoRA, and IA3 can)")
    for key, unused in _UNSUPPORTED:
        if not unused(config.get(key)):
            raise AdapterxlError(f"{source}: PEFT option {key} = {config.get(key)!r} has no "
                                 f"adapterxl equivalent")
    linear = {n for n, m in backbone.model.named_modules() if isinstance(m, torch.nn.Linear)}
    state, targets = {}, set()
    for key, value in tensors.items():
        key = key[len(PREFIX):] if key.startswith(PREFIX) else key
        parts = key.split(".")
        cut = next((i for i, p in enumerate(parts) if p in PARTS), None)
        if cut is None:
            raise AdapterxlError(f"{source}: unexpected tensor {key} (not a LoRA/IA3 weight)")
        target = strip_wrapper(".".join(parts[:cut]), linear.__contains__)
        if target is None:
            raise AdapterxlError(f"{source}: {'.'.join(parts[:cut])} is not a linear layer of "
                                 f"{backbone.id}")
        rest = parts[cut + 1:]
        if not rest and parts[cut] == "lora_magnitude_vector":
            rest = ["weight"]  # DoRA's magnitude is saved without ".weight"; IA3's is bare
        state[".".join([target, parts[cut], PLACEHOLDER, *rest])] = value
        targets.add(target)
    # The layers it leaves out (a module of --module-layers, whose export names its target
    # modules one by one): those with no adapted projection.
    layers = {n: _layer_of(n, backbone.model_type) for n in linear}
    leave_out = sorted({layers[n] for n in linear if layers[n] is not None}
                       - {layers[t] for t in targets})
    names = []
    for logical, regex in matrices(backbone.model_type, leave_out).items():
        hit = {n for n in linear if re.fullmatch(regex, n)}
        if hit and hit <= targets:
            names.append(logical)
            targets -= hit
    if targets:
        raise AdapterxlError(f"{source}: adapts {sorted(targets, key=natural)[0]} (and "
                             f"{len(targets) - 1} more) without adapting all the layers' "
                             f"matching projections; adapterxl modules adapt whole "
                             f"projection kinds (q, k, v, o, ffn_in, ffn_out)")
    placed = {"leave_out": leave_out} if leave_out else {}
    if kind == "IA3":
        return "ia3", {"matrices": names, **placed}, state
    method = "dora" if config.get("use_dora") else "lora"
    return method, {"r": config["r"], "alpha": config.get("lora_alpha", 8),
                    "dropout": config.get("lora_dropout", 0.0), "matrices": names,
                    **placed}, state


def _layer_of(module: str, model_type: str) -> int | None:
    """The layer number of a module name, or None outside the layers."""
    from ..architectures import get_arch

    m = re.fullmatch(r"(?:.*\.)?" + get_arch(model_type).layer.replace(r"\d+", r"(\d+)")
                     + r"\..*", module)
    return int(m.group(1)) if m else None
