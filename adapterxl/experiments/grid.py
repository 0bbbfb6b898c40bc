"""Expanding a recipe into cells, each with the modules it needs (a small tree of `ModuleSpec`s
identified by content-addressed cache keys).

A cell is (backbone, method, intermediate, composition, target, seed):

- intermediate ``none``: the target module alone (composition ``none``);
- ``a`` / ``a+b`` (multi-task, one shared module) / ``a>b`` (b trained on a, each link with
  the cell's composition): ``stack`` trains the target on top of the frozen intermediate
  module(s), ``init_from`` continues the last intermediate module on the target task;
- ``fuse``: a fusion (AdapterFusion / LoRA fusion) over one module per intermediate task
  (``a+b``: a and b trained separately) plus the target's own module trained alone;
- retrieval targets (bucc2018, tatoeba, lareqa, mewslix) train nothing: the last intermediate
  module is evaluated directly (no cell for ``fuse``; intermediate ``none`` is skipped).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..settings import names
from .recipe import Backbone, Recipe, parse_intermediate

CACHE_FORMAT = 1
# The recipe's training settings that change what a module learns (declared on TrainConfig:
# `keyed`); micro_batch_size or checkpoint_every only change memory use and checkpoint
# frequency, so modules are shared across them.
KEYED_SETTINGS = names(recipe=True, keyed=True)


@dataclass(frozen=True)
class ModuleSpec:
    """One module to train (or take from the cache)."""
    task: str                       # catalogue task, or a comma list (multi-task)
    label: str                      # as the recipe names it: mnli, mnli+squad, mnli-de
    role: str                       # intermediate | target
    backbone: Backbone
    method: str
    seed: int
    data: str
    data_dir: str | None
    settings: tuple                 # sorted (key, value-as-JSON) pairs
    how: str = "none"               # none | stack | init_from | fuse
    lower: tuple = ()               # ModuleSpecs beneath (stack/init_from: one; fuse: members)
    missing: str | None = None      # why it cannot be trained here (data not available)

    @property
    def key(self) -> str:
        return _key(self)

    def material(self) -> dict:
        """What the cache key hashes."""
        return {
            "format": CACHE_FORMAT, "task": self.task, "role": self.role,
            "model": self.backbone.model, "model_files": _model_signature(self.backbone.model),
            "quantize": self.backbone.quantize, "precision": self.backbone.precision,
            "method": self.method, "seed": self.seed, "data": self.data,
            "data_dir": _dir_signature(self.data_dir), "how": self.how,
            "settings": {k: json.loads(v) for k, v in self.settings},
            "lower": [m.key for m in self.lower],
        }

    def walk(self):
        """Every module of the tree, lower ones first."""
        for m in self.lower:
            yield from m.walk()
        yield self


_KEYS: dict = {}


def _key(spec: ModuleSpec) -> str:
    if spec not in _KEYS:
        _KEYS[spec] = hashlib.sha256(json.dumps(spec.material(), sort_keys=True)
                                     .encode()).hexdigest()
    return _KEYS[spec]


def _dir_signature(path) -> list | None:
    """A local data directory by its files' names, sizes and modification times (hashing the
    contents of large corpora would cost more than it saves)."""
    if path is None:
        return None
    root = Path(path).expanduser()
    if not root.is_dir():
        return [str(root.resolve()), "missing"]
    files = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            files.append([str(p.relative_to(root)), st.st_size, int(st.st_mtime)])
    return [str(root.resolve()), files]


def _model_signature(model: str):
    """Local checkpoints change in place: their config and weight files' sizes and times
    count. Hub ids and builtin backbones count by name."""
    p = Path(model).expanduser()
    if model.startswith("builtin:") or not p.is_dir():
        return None
    return [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in sorted(p.iterdir())
            if f.is_file() and (f.suffix in (".json", ".safetensors", ".bin"))]


@dataclass
class Cell:
    id: str
    backbone: Backbone
    method: str
    intermediate: str
    composition: str
    target: str                     # as the recipe names it (a task or a variant)
    task: str                       # the catalogue task evaluated
    seed: int
    priority: int                   # 0 baselines, 1 single intermediate, 2 the rest
    index: int                      # position in the expansion (stable)
    top: ModuleSpec | None          # the module evaluated
    skip: str | None = None         # why the cell cannot run here
    retrieval: bool = False

    @property
    def modules(self) -> list[ModuleSpec]:
        if self.top is None:
            return []
        seen, out = set(), []
        for m in self.top.walk():
            if m.key not in seen:
                seen.add(m.key)
                out.append(m)
        return out

    def row(self) -> dict:
        return {"id": self.id, "backbone": self.backbone.name, "method": self.method,
                "intermediate": self.intermediate, "composition": self.composition,
                "target": self.target, "seed": self.seed}


def cell_id(backbone: str, method: str, intermediate: str, composition: str, target: str,
            seed: int) -> str:
    return f"{backbone}|{method}|{intermediate}|{composition}|{target}|{seed}"


MAX_CELLS = 10_000  # a grid this large is more likely a typo than a plan (`run --max-cells`)


def count(recipe: Recipe) -> int:
    """The number of cells at most (before deduplication), without building them."""
    total = 0
    for g in recipe.grids:
        comps = max(1, len([c for c in g.compositions if c != "none"]))
        total += (len(g.backbones) * len(g.intermediates) * comps * len(g.targets)
                  * len(g.methods) * len(g.seeds))
    return total


def expand(recipe: Recipe) -> list[Cell]:
    """Every cell of the recipe, deduplicated by id, in a stable order: grid order (backbone,
    intermediate, composition, target, method, seed nested in that order)."""
    from ..formats import get_format
    from ..tasks import get_task

    cells: dict[str, Cell] = {}
    for grid in recipe.grids:
        for backbone in grid.backbones:
            for inter in grid.intermediates:
                steps = parse_intermediate(inter)
                comps = ["none"] if not steps else [c for c in grid.compositions if c != "none"]
                for comp in comps:
                    for target in grid.targets:
                        task = recipe.task_of(target)
                        retrieval = get_format(get_task(task).format).head is None
                        if retrieval and comp == "fuse":
                            continue
                        for method in grid.methods:
                            for seed in grid.seeds:
                                cid = cell_id(backbone.name, method, inter, comp, target, seed)
                                if cid in cells:
                                    continue
                                cells[cid] = _cell(recipe, cid, backbone, method, inter, steps,
                                                   comp, target, task, seed, retrieval,
                                                   len(cells))
    return list(cells.values())


def _cell(recipe, cid, backbone, method, inter, steps, comp, target, task, seed, retrieval,
          index) -> Cell:
    def spec(label, atoms, role, how="none", lower=()):
        tasks = [recipe.task_of(a) for a in atoms]
        data_dir = recipe.data_dir_of(atoms[0])
        return ModuleSpec(task=",".join(tasks), label=label, role=role, backbone=backbone,
                          method=method, seed=seed, data=recipe.data, data_dir=data_dir,
                          settings=_settings(recipe.settings(role)), how=how,
                          lower=tuple(lower), missing=_missing(recipe, atoms))

    priority = 0 if not steps else 1 if len(steps) == 1 and len(steps[0]) == 1 and \
        comp != "fuse" else 2
    top, skip = None, None
    if comp == "fuse":
        members = [spec(a, [a], "intermediate") for a in steps[0]]
        members.append(spec(target, [target], "target"))
        top = spec(target, [target], "target", "fuse", members)
    else:
        below = None
        for step in steps:
            below = spec("+".join(step), step, "intermediate",
                         comp if below is not None else "none",
                         (below,) if below is not None else ())
        if retrieval:
            top = below
            if top is None:
                skip = (f"{task} is a retrieval task: it is evaluated from an intermediate "
                        f"module's representations, and intermediate 'none' has no module")
        else:
            top = spec(target, [target], "target", comp if below is not None else "none",
                       (below,) if below is not None else ())
    if skip is None and top is not None:
        for m in top.walk():
            if m.missing:
                skip = m.missing
                break
    if skip is None:
        skip = eval_missing(recipe, task)
    return Cell(id=cid, backbone=backbone, method=method, intermediate=inter, composition=comp,
                target=target, task=task, seed=seed, priority=priority, index=index, top=top,
                skip=skip, retrieval=retrieval)


def _settings(settings: dict) -> tuple:
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in settings.items()
                        if k in KEYED_SETTINGS))


def _missing(recipe: Recipe, atoms) -> str | None:
    """Why training data for these atoms is not available under the recipe's source."""
    from ..tasks import get_task

    for atom in atoms:
        if atom in recipe.variants:
            v = recipe.variants[atom]
            if not v.data_dir:
                return (f"{atom} needs data that is not configured: "
                        f"{v.requires or 'set variants.' + atom + '.data_dir'} "
                        f"(variants.{atom}.data_dir)")
            if not Path(v.data_dir).expanduser().is_dir():
                return f"{atom}: data directory {v.data_dir!r} does not exist"
            continue
        task = get_task(atom)
        d = recipe.data_dirs.get(atom)
        if d and not Path(d).expanduser().is_dir():
            return f"{atom}: data directory {d!r} (data_dirs.{atom}) does not exist"
        if task.local_only and not d and recipe.data != "samples":
            return (f"{atom} is local files only ({' '.join(task.local_only.split())}); set "
                    f"data_dirs.{atom}=DIR")
        if d or recipe.data == "samples":
            from ..data.sources import available_languages

            if task.train_language not in available_languages(task, "train", recipe.data, d):
                return (f"no {task.train_language} training data for {atom} in "
                        f"{d or 'the bundled samples'}")
    return None


def eval_missing(recipe: Recipe, task: str) -> str | None:
    langs, why = eval_languages(recipe, task)
    return why if not langs else None


def eval_languages(recipe: Recipe, task: str) -> tuple[list[str], str | None]:
    """The languages `task` is evaluated in under this recipe, and why there are none."""
    from ..data.sources import available_languages
    from ..tasks import get_task

    t = get_task(task)
    ev = recipe.evaluate
    d = recipe.data_dirs.get(task)
    if t.local_only and not d and recipe.data != "samples":
        return [], (f"{task} is local files only ({' '.join(t.local_only.split())}); set "
                    f"data_dirs.{task}=DIR")
    suite = ev.suite if ev.suite in t.suites else None
    pool = list(t.suites[suite]) if suite else list(t.languages)
    if isinstance(ev.languages, tuple):
        pool = [lang for lang in ev.languages if lang in pool]
        if not pool:
            return [], f"none of evaluate.languages ({', '.join(ev.languages)}) is a " \
                       f"language of {task}"
    if d and not Path(d).expanduser().is_dir():
        return [], f"{task}: data directory {d!r} (data_dirs.{task}) does not exist"
    have = set(available_languages(t, ev.split, recipe.data, d))
    langs = [lang for lang in pool if lang in have]
    if not langs:
        return [], (f"no {ev.split} data for {task} in {', '.join(pool)} "
                    f"(source: {d or recipe.data})")
    return langs, None


def order(cells: list[Cell]) -> list[Cell]:
    """The most informative cells first: baselines (intermediate none), then single
    intermediate tasks, then sequences, multi-task and fusions; grid order within each."""
    return sorted(cells, key=lambda c: (c.priority, c.index))


def shard(cells: list[Cell], index: int, count: int) -> list[Cell]:
    """Every `count`-th cell of the stable order, starting at `index` (0-based)."""
    return [c for i, c in enumerate(order(cells)) if i % count == index]

