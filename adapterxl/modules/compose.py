"""What a new module is trained on top of: the modules beneath it (`stack`, a language module),
the module it continues (`init_from`) or the modules it fuses (`fuse`), opened, checked against
each other and verified, before anything loads. `assemble` then builds the model from it."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import AdapterxlError
from .methods import get_method
from .store import ModuleDir, open_module

# Fusion learning rates: AdapterFusion's 5e-5 (Pfeiffer et al. 2021); LoRA fusion trains one
# logit per module per projection, which moves at LoRA-like rates only if the rate is large.
FUSION_LR = {"bottleneck": 5e-5, "peft": 1e-2}


@dataclass
class Composition:
    lower: list[ModuleDir] = field(default_factory=list)  # frozen beneath, bottom first
    init_from: ModuleDir | None = None
    fuse: list[ModuleDir] = field(default_factory=list)

    @property
    def read(self) -> list[ModuleDir]:
        """Every module the run reads weights from."""
        return self.lower + self.fuse + ([self.init_from] if self.init_from else [])

    def default_lr(self, method: str) -> float:
        """A fusion's rate, else the method's (the continued module's method)."""
        if self.fuse:
            return FUSION_LR[get_method(self.fuse[0].method).engine]
        return get_method(self.init_from.method if self.init_from else method).lr

    def tasks_beneath(self) -> list[str]:
        """The tasks the task modules read were trained on (language modules aside)."""
        return [t for m in self.read if m.role != "language"
                for t in (m.manifest.get("tasks") or [m.manifest["task"]])]


def compose(stack=(), init_from: str | None = None, fuse=(),
            lang_module: str | None = None) -> Composition:
    """Open and check the modules named by --stack / --init-from / --fuse / --lang-module
    (paths), and verify their files: a damaged module would be copied into the new one."""
    given = [flag for flag, value in (("--stack", stack), ("--init-from", init_from),
                                      ("--fuse", fuse)) if value]
    if len(given) > 1:
        why = ("--init-from continues a module together with everything it was stacked on"
               if "--init-from" in given else
               "a fusion sits on the stack its modules were trained on")
        raise AdapterxlError(f"{' and '.join(given)} cannot be combined: {why}")
    if len(fuse) == 1:
        raise AdapterxlError("--fuse needs at least two modules")
    out = Composition()
    for path in stack:
        out.lower += open_module(path).chain()
    if init_from:
        out.init_from = open_module(init_from)
        out.lower = out.init_from.lower()
    out.fuse = [open_module(p) for p in fuse]
    if out.fuse:
        from . import common_lower

        out.lower = common_lower(out.fuse)
    if lang_module:
        out.lower = _with_language(out.lower, open_module(lang_module))
    for mod in out.read:
        mod.verify()
    return out


def _with_language(lower: list[ModuleDir], lang: ModuleDir) -> list[ModuleDir]:
    if lang.role != "language":
        raise AdapterxlError(f"--lang-module {lang.path} is not a language module (it was "
                             f"trained on {lang.manifest['task']}); train one with "
                             f"`adapterxl train-language`")
    if lower and lower[0].role == "language":
        if _sha(lower[0]) != _sha(lang):
            raise AdapterxlError(f"the modules beneath already start with the language "
                                 f"module {lower[0].path}, not {lang.path}")
        return lower
    return lang.chain() + lower


def _sha(mod) -> str | None:
    return mod.manifest.get("files", {}).get("module.safetensors")
