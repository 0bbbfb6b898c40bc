"""Modules and their composition behind one interface. Which library implements a method
(the native bottleneck engine or PEFT) stays inside this package."""
from __future__ import annotations

from ..backbone import Backbone
from ..errors import AdapterxlError
from .methods import METHODS, get_method, method_config, with_module_layers
from .manifest import Manifest, MethodSpec
from .model import Fusion, ModularModel, Slot
from .store import ModuleDir, open_module, save_module

__all__ = ["METHODS", "Fusion", "Manifest", "MethodSpec", "ModularModel", "ModuleDir", "Slot",
           "assemble", "check_compatible", "common_lower", "get_method", "install",
           "method_config", "open_module", "save_module", "load_for_inference",
           "with_module_layers"]


def check_compatible(backbone: Backbone, module: ModuleDir, force: bool = False) -> None:
    """Refuse a module trained on other backbone weights, naming both."""
    theirs = module.manifest.backbone
    if theirs.get("hidden_size") not in (None, backbone.hidden_size):
        raise AdapterxlError(
            f"module {module.path} has hidden size {theirs['hidden_size']} "
            f"({theirs['id']}), backbone {backbone.id} has {backbone.hidden_size}")
    if theirs.get("fingerprint") != backbone.fingerprint and not force:
        raise AdapterxlError(
            f"module {module.path} was trained on {theirs['id']} (fingerprint "
            f"{theirs.get('fingerprint')}), not on {backbone.id} ({backbone.fingerprint}); "
            f"pass --force to use it anyway")


def _methods(mods: list[ModuleDir]) -> list[str]:
    out = []
    for mod in mods:
        out += [m.method for m in mod.fused()] if mod.kind == "fusion" else [mod.method]
    return out


def install(model: ModularModel, mod: ModuleDir, trainable: bool = False) -> Slot | Fusion:
    """Add a stored module (or fusion with its members) on top of the model's stack, loaded
    with its weights."""
    if mod.kind == "fusion":
        members = []
        for member in mod.fused():
            slot = model.add_module(member.method, member.method_config, False, fused=True)
            model.load_module_state(slot, member.weights(), str(member.path))
            members.append(slot)
        top = model.add_fusion(members, trainable)
    else:
        top = model.add_module(mod.method, mod.method_config, trainable)
    model.load_module_state(top, mod.weights(), str(mod.path))
    return top


def common_lower(members: list[ModuleDir]) -> list[ModuleDir]:
    """The chain the modules to fuse were all trained on (e.g. a language module); they must
    share it, since a fusion sits on one stack."""
    def key(mod):
        return [m.sha256 for m in mod.lower()]

    for mod in members:
        if mod.kind == "fusion":
            raise AdapterxlError(f"{mod.path} is a fusion; fuse plain modules")
        if key(mod) != key(members[0]):
            raise AdapterxlError(f"modules to fuse must be stacked on the same modules: "
                                 f"{members[0].path} and {mod.path} are not")
    return members[0].lower()


def assemble(backbone: Backbone, lower: list[ModuleDir], *, method: str | None = None,
             config: dict | None = None, init_from: ModuleDir | None = None,
             fuse: list[ModuleDir] = (), head: dict | None = None,
             heads: dict[str, dict] | None = None,
             force: bool = False) -> tuple[ModularModel, Slot | Fusion | None]:
    """Build a model for training: `lower` modules frozen and active, bottom first; on top a
    new trainable module of `method` (or one initialized from `init_from`'s weights), or a new
    trainable fusion of the modules `fuse`; a fresh head of config `head` (or one per task,
    `heads`). Returns the model and the trainable slot."""
    plan = list(lower) + list(fuse) + ([init_from] if init_from else [])
    for mod in plan:
        check_compatible(backbone, mod, force)
    for mod in lower:
        if mod.kind == "fusion":
            raise AdapterxlError(f"{mod.path} is a fusion: nothing can be stacked on a fusion")
    model = ModularModel(backbone, _methods(plan) + ([method] if method else []))
    for mod in lower:
        install(model, mod)
    top = None
    if fuse:
        members = []
        for mod in fuse:
            slot = model.add_module(mod.method, mod.method_config, False, fused=True)
            model.load_module_state(slot, mod.weights(), str(mod.path))
            members.append(slot)
        top = model.add_fusion(members, trainable=True)
    elif init_from is not None:
        if init_from.kind == "fusion":
            raise AdapterxlError(f"--init-from {init_from.path}: continuing a fusion is not "
                                 f"supported; fuse the modules again")
        top = install(model, init_from, trainable=True)
    elif method is not None:
        top = model.add_module(method, config or {}, trainable=True)
    for name, cfg in (heads or {}).items():
        model.set_head(cfg, name=name)
    if head is not None:
        model.set_head(head)
    return model, top


def load_for_inference(backbone: Backbone, module: ModuleDir, force: bool = False,
                       task: str | None = None) -> ModularModel:
    """The module with everything it was stacked on, all frozen, with its heads (`task`
    picks the active one of a multi-task module)."""
    chain = module.lower() + [module]
    for mod in chain:
        check_compatible(backbone, mod, force)
    model = ModularModel(backbone, _methods(chain))
    for mod in chain:
        install(model, mod)
    heads = module.heads
    if len(heads) == 1:
        name, cfg = next(iter(heads.items()))
        model.set_head(cfg, module.head_weights(), name=name)
    else:
        for name, cfg in heads.items():
            model.set_head(cfg, name=name)
        model.load_head_state(module.head_weights())
        model.use_head(task if task in heads else next(iter(heads)))
    model.eval()
    return model
