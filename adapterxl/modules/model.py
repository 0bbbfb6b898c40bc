"""ModularModel: a frozen backbone, a composition of modules and task heads.

The composition, bottom first, is a stack of modules, optionally topped by a fusion of
several modules. At most one element trains: the top module, or the fusion. Bottleneck
modules (the native bottleneck engine) run as a sequential stack; LoRA/DoRA/IA3 modules (PEFT)
are all active at once, so their updates add up. Both engines can share one model: each acts
at its own sites (adapters after sublayers, PEFT inside the projections)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from ..backbone import Backbone
from ..errors import AdapterxlError
from ..heads import build_head
from . import _bottleneck, _peft
from .methods import PLACEHOLDER, get_method, method_config

SLOT_PREFIX = "axl"
FUSION = "axlfusion"


@dataclass
class Slot:
    name: str          # internal name inside the backbone: axl0, axl1, ... in stack order
    method: str
    config: dict
    trainable: bool
    fused: bool = False  # a member of the fusion rather than a level of the stack

    @property
    def engine(self) -> str:
        return get_method(self.method).engine


@dataclass
class Fusion:
    members: list[Slot]
    trainable: bool
    name: str = FUSION
    method: str = "fusion"
    config: dict = field(default_factory=dict)

    @property
    def engine(self) -> str:
        return self.members[0].engine


class ModularModel(nn.Module):
    def __init__(self, backbone: Backbone, methods: list[str] = ()):
        super().__init__()
        self.backbone = backbone
        self.encoder = backbone.model
        self.slots: list[Slot] = []
        self.fusion: Fusion | None = None
        self.lora_fusion: _peft.LoraFusion | None = None
        self.heads = nn.ModuleDict()
        self.head_configs: dict[str, dict] = {}
        self.active_head: str | None = None
        self._peft = None
        self._bottleneck: _bottleneck.Engine | None = None
        # Which encoder inputs the tokenizer produces that the encoder accepts.
        self._input_names = list(backbone.tokenizer.model_input_names)
        if any(get_method(m).engine == "bottleneck" for m in methods):
            # Before PEFT wraps any projection: the engine hooks the original Linear modules.
            self._bottleneck = _bottleneck.attach(self.encoder, backbone.model_type)

    # ---- modules -------------------------------------------------------------------------
    def add_module(self, method: str, config: dict, trainable: bool, fused: bool = False) -> Slot:
        """Add a module on top of the stack (or, `fused`, as a future fusion member)."""
        _check_supported(self.backbone.model_type, method)
        if self.fusion is not None:
            raise AdapterxlError("nothing can be stacked on a fusion")
        if any(s.trainable for s in self.slots):
            raise AdapterxlError("only the top module of a stack can be trained")
        config = method_config(method, config)
        below = [s.method for s in self.slots if s.engine == "bottleneck" and not s.fused]
        if not fused and below and "par_bn" in below + [method] and get_method(method).engine \
                == "bottleneck":
            # As in AdapterHub: inside a stack, a parallel adapter restarts from the sublayer's
            # input, so a par_bn module on top silently discards the modules below it (and
            # above one, a module sees only par_bn's change): not a sequential stack.
            raise AdapterxlError(f"par_bn cannot be stacked with other bottleneck-type modules "
                                 f"({', '.join(below + [method])}): a parallel adapter ignores "
                                 f"the modules below it; use seq_bn, or LoRA on top")
        if method == "compacter":
            width = int(self.backbone.hidden_size // config["reduction_factor"])
            if width < config["phm_dim"] or width % config["phm_dim"]:
                raise AdapterxlError(
                    f"compacter: the bottleneck (hidden size {self.backbone.hidden_size} / "
                    f"reduction_factor {config['reduction_factor']} = {width}) must be a "
                    f"multiple of phm_dim {config['phm_dim']}; choose another reduction_factor")
        slot = Slot(f"{SLOT_PREFIX}{len(self.slots)}", method, config, trainable, fused)
        if slot.engine == "bottleneck":
            if self._bottleneck is None:
                if self._peft is not None:
                    raise AdapterxlError(f"a {method} module cannot be added after LoRA-type "
                                         f"modules on this model; build it with both methods "
                                         f"known")
                self._bottleneck = _bottleneck.attach(self.encoder, self.backbone.model_type)
            self._bottleneck.add(slot.name, method, config)
        else:
            self._peft = _peft.add(self.encoder, slot.name, method, config,
                                   self.backbone.model_type, self._peft)
        self.slots.append(slot)
        self._activate()
        return slot

    def add_fusion(self, members: list[Slot], trainable: bool) -> Fusion:
        """Fuse modules already added with fused=True: AdapterFusion (attention over the
        modules' outputs, per layer) for bottleneck modules, a learned weighted combination
        for LoRA modules."""
        engines = {m.engine for m in members}
        if len(members) < 2:
            raise AdapterxlError("a fusion needs at least two modules")
        if len(engines) > 1:
            raise AdapterxlError("cannot fuse bottleneck-type and LoRA-type modules together "
                                 f"({', '.join(m.method for m in members)})")
        for m in members:
            if not get_method(m.method).fusable:
                raise AdapterxlError(f"{m.method} modules cannot be fused; stack or merge them")
        fusion = Fusion(members, trainable, config={"members": len(members)})
        names = [m.name for m in members]
        if fusion.engine == "bottleneck":
            _check_supported(self.backbone.model_type, "fusion")
            self._bottleneck.add_fusion(fusion.name, names)
        else:
            self.lora_fusion = _peft.LoraFusion(self.encoder, names).to(self.backbone.device)
        self.fusion = fusion
        self._activate()
        return fusion

    def _activate(self) -> None:
        stack = [s.name for s in self.slots if s.engine == "bottleneck" and not s.fused]
        fusion = None
        if self.fusion is not None and self.fusion.engine == "bottleneck":
            fusion = (self.fusion.name, [m.name for m in self.fusion.members])
        if self._bottleneck is not None:
            self._bottleneck.activate(stack, fusion)
        if self._peft is not None:
            _peft.activate(self._peft, [s.name for s in self.slots if s.engine == "peft"])
        self.freeze()

    @property
    def composition(self) -> list:
        return self.slots if self.fusion is None else (
            [s for s in self.slots if not s.fused] + [self.fusion])

    def _slot_params(self, slot: Slot | Fusion) -> dict[str, nn.Parameter]:
        if isinstance(slot, Fusion) and slot.engine == "peft":
            return {"lora_fusion.logits": self.lora_fusion.logits}
        return {n: p for n, p in self.encoder.named_parameters() if slot.name in n.split(".")}

    def module_state(self, slot: Slot | Fusion) -> dict[str, torch.Tensor]:
        """The slot's weights under engine-neutral keys (slot name replaced by a placeholder)."""
        return {_neutral(n, slot.name): p.detach().float().cpu().contiguous()
                for n, p in self._slot_params(slot).items()}

    def load_module_state(self, slot: Slot | Fusion, state: dict[str, torch.Tensor],
                          source: str) -> None:
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

    # ---- heads ---------------------------------------------------------------------------
    @property
    def head(self) -> nn.Module | None:
        return self.heads[self.active_head] if self.active_head is not None else None

    @property
    def head_config(self) -> dict | None:
        return self.head_configs.get(self.active_head)

    def set_head(self, config: dict, state: dict[str, torch.Tensor] | None = None,
                 name: str = "default") -> None:
        """Add (or replace) the head `name` and make it the active one."""
        head = build_head(config)
        if hasattr(head, "bind"):
            head.bind(self.encoder.get_input_embeddings())
        if state is not None:
            try:
                head.load_state_dict(state)
            except RuntimeError as e:
                raise AdapterxlError(f"head weights do not fit the head config: "
                                     f"{str(e).splitlines()[0]}") from e
        self.heads[name] = head.to(self.backbone.device)
        self.head_configs[name] = dict(config)
        self.active_head = name
        self.freeze()

    def use_head(self, name: str) -> None:
        if name not in self.heads:
            raise AdapterxlError(f"no head for {name!r}; heads: {', '.join(self.heads)}")
        self.active_head = name

    def head_state(self) -> dict[str, torch.Tensor]:
        """All heads' weights: one head unprefixed, several as `<name>.<param>`."""
        if len(self.heads) == 1:
            return {k: v.detach().float().cpu().contiguous()
                    for k, v in self.head.state_dict().items()}
        return {f"{name}.{k}": v.detach().float().cpu().contiguous()
                for name, head in self.heads.items() for k, v in head.state_dict().items()}

    def load_head_state(self, state: dict[str, torch.Tensor]) -> None:
        if len(self.heads) == 1:
            self.head.load_state_dict(state)
            return
        for name, head in self.heads.items():
            head.load_state_dict({k[len(name) + 1:]: v for k, v in state.items()
                                  if k.startswith(name + ".")})

    # ---- training state ------------------------------------------------------------------
    def freeze(self) -> None:
        """Everything frozen except the trainable slot (or fusion) and, when something
        trains, the heads. PEFT flips requires_grad when adapters are (re)activated, so this
        runs last."""
        self.encoder.requires_grad_(False)
        if self.lora_fusion is not None:  # lives outside the encoder
            self.lora_fusion.requires_grad_(False)
        trainable = [s for s in self.composition if s.trainable]
        for slot in trainable:
            for p in self._slot_params(slot).values():
                p.requires_grad_(True)
        self.heads.requires_grad_(bool(trainable))

    def cast_trainable(self, slot: Slot | Fusion, dtype: torch.dtype) -> None:
        """Keep the trainable module's weights in `dtype` (bf16 halves their memory and that of
        their gradients; for a 2.4B-parameter AdapterFusion on XXL that is gigabytes). Heads
        stay fp32; saved modules are fp32 either way."""
        with torch.no_grad():
            for p in self._slot_params(slot).values():
                p.data = p.data.to(dtype)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_counts(self) -> dict[str, int]:
        counts = {s.name: sum(p.numel() for p in self._slot_params(s).values())
                  for s in self.slots}
        if self.fusion is not None:
            counts[self.fusion.name] = sum(p.numel()
                                           for p in self._slot_params(self.fusion).values())
        counts["heads"] = sum(p.numel() for p in self.heads.parameters())
        return counts

    # ---- forward -------------------------------------------------------------------------
    def autocast(self):
        precision = self.backbone.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.backbone.device.type, dtype=self.backbone.dtype)

    def encode(self, **inputs):
        """The encoder's output for the tokenizer's inputs (other keys are ignored)."""
        extra = {k: inputs.pop(k) for k in ("output_hidden_states",) if k in inputs}
        inputs = {k: v for k, v in inputs.items() if k in self._input_names}
        if inputs["input_ids"].dim() == 3:  # multiple choice: [batch, choices, length]
            inputs = {k: v.flatten(0, 1) for k, v in inputs.items()}
        with self.autocast():
            return self.encoder(**inputs, **extra), inputs

    def forward(self, labels: torch.Tensor | None = None, **inputs) -> dict:
        shape = inputs["input_ids"].shape
        outputs, inputs = self.encode(**inputs)
        logits = self.head(outputs.last_hidden_state, inputs.get("attention_mask"))
        if len(shape) == 3:
            logits = logits.view(shape[0], shape[1])
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.head.loss(logits, labels)
            if self.training and self._bottleneck is not None:
                # AdapterFusion's penalty keeping its value map near the identity (AdapterHub
                # adds it to the loss of a training fusion).
                reg = self._bottleneck.regularization()
                if reg is not None:
                    out["loss"] = out["loss"] + reg.to(out["loss"].dtype)
        return out

    @torch.no_grad()
    def embed(self, layer: int, **inputs) -> torch.Tensor:
        """Sentence embeddings for retrieval: the mean over tokens of hidden layer `layer`
        (0 = the embedding output), as XTREME does for BUCC and Tatoeba."""
        from ..heads import pool

        outputs, inputs = self.encode(**inputs, output_hidden_states=True)
        return pool(outputs.hidden_states[layer].float(), inputs["attention_mask"], "mean")

    @torch.no_grad()
    def fusion_weights(self, batches=None) -> dict[str, torch.Tensor]:
        """Per fusion site, the average weight each fused module receives: AdapterFusion's
        attention averaged over the non-padding tokens of `batches`; for LoRA the learned
        (input-independent) combination weights."""
        if self.fusion is None:
            raise AdapterxlError("this model has no fusion")
        if self.fusion.engine == "peft":
            return dict(zip(self.lora_fusion.site_names, self.lora_fusion.weights()))
        if batches is None:
            raise AdapterxlError("AdapterFusion's attention depends on the input: give data")
        sums, count = {}, 0.0
        for batch in batches:
            self._bottleneck.attentions = {}
            try:
                _, inputs = self.encode(**batch)
                found = self._bottleneck.attentions
            finally:
                self._bottleneck.attentions = None
            mask = inputs["attention_mask"].float().cpu()
            for site, att in found.items():
                att = att.float().cpu()
                sums[site] = sums.get(site, 0) + (att * mask.unsqueeze(-1)).sum((0, 1))
            count += float(mask.sum())
        return {site: s / count for site, s in sums.items()}

    @property
    def checkpointing(self) -> bool:
        # transformers 5 renamed the flag (the old name warns); 4.x has only the old one.
        for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
            if hasattr(type(self.encoder), name):
                return bool(getattr(self.encoder, name))
        return False

    def gradient_checkpointing(self) -> None:
        """Recompute each layer's activations in backward instead of keeping them (non-
        reentrant, so it works although the backbone's inputs need no gradient)."""
        kwargs = {"use_reentrant": False}
        if hasattr(self.encoder, "activation_checkpointing_enable"):  # transformers >= 5.2x
            self.encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    @property
    def num_layers(self) -> int:
        return self.encoder.config.num_hidden_layers


def _check_supported(model_type: str, method: str) -> None:
    """Refuse a method the architecture cannot run, before anything is built or trained."""
    from ..architectures import unsupported

    name = method if method == "fusion" else (get_method(method).library_id or method)
    why = unsupported(model_type, name)
    if why is not None:  # in the user's words: "prefix", not the library's "prefix_tuning"
        raise AdapterxlError(why.replace(repr(name), repr(method)))


def _neutral(name: str, slot: str) -> str:
    return ".".join(PLACEHOLDER if part == slot else part for part in name.split("."))
