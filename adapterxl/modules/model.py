"""ModularModel: a frozen backbone, a stack of modules (lower ones frozen, at most one
trainable on top) and a task head."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from ..backbone import Backbone
from ..errors import AdapterxlError
from ..heads import build_head
from . import _adapters, _peft
from .methods import get_method

SLOT_PREFIX = "axl"
PLACEHOLDER = "{module}"


@dataclass
class Slot:
    name: str          # internal name inside the backbone: axl0, axl1, ... in stack order
    method: str
    config: dict
    trainable: bool


class ModularModel(nn.Module):
    def __init__(self, backbone: Backbone):
        super().__init__()
        self.backbone = backbone
        self.encoder = backbone.model
        self.slots: list[Slot] = []
        self.head: nn.Module | None = None
        self.head_config: dict | None = None
        self._peft = None
        # Which encoder inputs the tokenizer produces that the encoder accepts.
        self._input_names = list(backbone.tokenizer.model_input_names)

    # ---- modules -------------------------------------------------------------------------
    @property
    def engine(self) -> str | None:
        return get_method(self.slots[0].method).engine if self.slots else None

    def add_module(self, method: str, config: dict, trainable: bool) -> Slot:
        engine = get_method(method).engine
        if self.engine is not None and engine != self.engine:
            raise AdapterxlError(
                f"cannot stack a {method} module on {self.slots[0].method} modules yet: "
                f"they are built by different engines ({engine} vs {self.engine})")
        if any(s.trainable for s in self.slots):
            raise AdapterxlError("only the top module of a stack can be trained")
        slot = Slot(f"{SLOT_PREFIX}{len(self.slots)}", method, dict(config), trainable)
        if engine == "adapters":
            _adapters.add(self.encoder, slot.name, method, slot.config)
        else:
            self._peft = _peft.add(self.encoder, slot.name, method, slot.config, self._peft)
        self.slots.append(slot)
        self._activate()
        return slot

    def _activate(self) -> None:
        names = [s.name for s in self.slots]
        if self.engine == "adapters":
            _adapters.activate(self.encoder, names)
        else:
            _peft.activate(self._peft, names)
        self.freeze()

    def _slot_params(self, slot: Slot) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.encoder.named_parameters() if slot.name in n.split(".")}

    def module_state(self, slot: Slot) -> dict[str, torch.Tensor]:
        """The slot's weights under engine-neutral keys (slot name replaced by a placeholder)."""
        return {_neutral(n, slot.name): p.detach().float().cpu().contiguous()
                for n, p in self._slot_params(slot).items()}

    def load_module_state(self, slot: Slot, state: dict[str, torch.Tensor], source: str) -> None:
        params = self._slot_params(slot)
        expected = {_neutral(n, slot.name): p for n, p in params.items()}
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            what = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
            raise AdapterxlError(f"module {source} does not fit this backbone/method ({what}, "
                                 f"{len(missing)} missing, {len(extra)} unexpected tensors)")
        with torch.no_grad():
            for key, p in expected.items():
                if p.shape != state[key].shape:
                    raise AdapterxlError(f"module {source}: tensor {key} has shape "
                                         f"{tuple(state[key].shape)}, expected {tuple(p.shape)}")
                p.copy_(state[key].to(p.dtype))

    # ---- head ----------------------------------------------------------------------------
    def set_head(self, config: dict, state: dict[str, torch.Tensor] | None = None) -> None:
        head = build_head(config)
        if hasattr(head, "bind"):
            head.bind(self.encoder.get_input_embeddings())
        if state is not None:
            try:
                head.load_state_dict(state)
            except RuntimeError as e:
                raise AdapterxlError(f"head weights do not fit the head config: "
                                     f"{str(e).splitlines()[0]}") from e
        self.head = head.to(self.backbone.device)
        self.head_config = dict(config)
        self.freeze()

    # ---- training state ------------------------------------------------------------------
    def freeze(self) -> None:
        """Everything frozen except the trainable slot and, when a slot trains, the head.
        Engines flip requires_grad when adapters are (re)activated, so this runs last."""
        self.encoder.requires_grad_(False)
        trainable = [s for s in self.slots if s.trainable]
        for slot in trainable:
            for p in self._slot_params(slot).values():
                p.requires_grad_(True)
        if self.head is not None:
            self.head.requires_grad_(bool(trainable))

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ---- forward -------------------------------------------------------------------------
    def autocast(self):
        precision = self.backbone.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.backbone.device.type, dtype=self.backbone.dtype)

    def forward(self, labels: torch.Tensor | None = None, **inputs) -> dict:
        inputs = {k: v for k, v in inputs.items() if k in self._input_names}
        shape = inputs["input_ids"].shape
        if len(shape) == 3:  # multiple choice: [batch, choices, length] -> one row per choice
            inputs = {k: v.flatten(0, 1) for k, v in inputs.items()}
        with self.autocast():
            hidden = self.encoder(**inputs).last_hidden_state
        logits = self.head(hidden, inputs.get("attention_mask"))
        if len(shape) == 3:
            logits = logits.view(shape[0], shape[1])
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.head.loss(logits, labels)
        return out

    @torch.no_grad()
    def embed(self, layer: int, **inputs) -> torch.Tensor:
        """Sentence embeddings for retrieval: the mean over tokens of hidden layer `layer`
        (0 = the embedding output), as XTREME does for BUCC and Tatoeba."""
        from ..heads import pool

        inputs = {k: v for k, v in inputs.items() if k in self._input_names}
        with self.autocast():
            states = self.encoder(**inputs, output_hidden_states=True).hidden_states
        return pool(states[layer].float(), inputs["attention_mask"], "mean")

    @property
    def num_layers(self) -> int:
        return self.encoder.config.num_hidden_layers


def _neutral(name: str, slot: str) -> str:
    return ".".join(PLACEHOLDER if part == slot else part for part in name.split("."))
