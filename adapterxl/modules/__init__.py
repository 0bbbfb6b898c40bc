"""Modules and their composition behind one interface. Which library implements a method
(`adapters` or PEFT) stays inside this package."""
from __future__ import annotations

from ..backbone import Backbone
from ..errors import AdapterxlError
from .methods import METHODS, get_method, method_config
from .model import ModularModel, Slot
from .store import ModuleDir, open_module, save_module

__all__ = ["METHODS", "ModularModel", "ModuleDir", "Slot", "assemble", "check_compatible",
           "get_method", "method_config", "open_module", "save_module", "load_for_inference"]


def check_compatible(backbone: Backbone, module: ModuleDir, force: bool = False) -> None:
    """Refuse a module trained on other backbone weights, naming both."""
    theirs = module.manifest["backbone"]
    if theirs.get("hidden_size") not in (None, backbone.hidden_size):
        raise AdapterxlError(
            f"module {module.path} has hidden size {theirs['hidden_size']} "
            f"({theirs['id']}), backbone {backbone.id} has {backbone.hidden_size}")
    if theirs.get("fingerprint") != backbone.fingerprint and not force:
        raise AdapterxlError(
            f"module {module.path} was trained on {theirs['id']} (fingerprint "
            f"{theirs.get('fingerprint')}), not on {backbone.id} ({backbone.fingerprint}); "
            f"pass --force to use it anyway")


def assemble(backbone: Backbone, lower: list[ModuleDir], *, method: str | None = None,
             config: dict | None = None, init_from: ModuleDir | None = None,
             head: dict | None = None, force: bool = False) -> tuple[ModularModel, Slot | None]:
    """Build a model for training: `lower` modules frozen and active, bottom first; on top a
    new trainable module of `method` (or one initialized from `init_from`'s weights); a fresh
    head of config `head`. Returns the model and the trainable slot."""
    model = ModularModel(backbone)
    for mod in lower + ([init_from] if init_from else []):
        check_compatible(backbone, mod, force)
    for mod in lower:
        slot = model.add_module(mod.method, mod.method_config, trainable=False)
        model.load_module_state(slot, mod.weights(), str(mod.path))
    top = None
    if init_from is not None:
        top = model.add_module(init_from.method, init_from.method_config, trainable=True)
        model.load_module_state(top, init_from.weights(), str(init_from.path))
    elif method is not None:
        top = model.add_module(method, method_config(method, config), trainable=True)
    if head is not None:
        model.set_head(head)
    return model, top


def load_for_inference(backbone: Backbone, module: ModuleDir, force: bool = False) -> ModularModel:
    """The module with everything it was stacked on, all frozen, with its head."""
    model, _ = assemble(backbone, module.chain(), force=force)
    model.set_head(module.head_config, module.head_weights())
    model.eval()
    return model
