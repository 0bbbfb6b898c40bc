"""Recipes: one YAML schema for an experiment grid, parsed into typed dataclasses.

Every problem is reported as one line that names the file, the key's dotted path and the bad
value, e.g. ``recipe stilts.yaml: grid.targets[2]: unknown task 'xnlii' (did you mean
'xnli'?)``. ``key=value`` overrides are applied to the raw YAML before validation, so they are
checked exactly like the file (and an error in an overridden key says so).
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .. import safe_yaml
from ..configs import PRECISIONS, QUANTIZE
from ..errors import AdapterxlError
from ..settings import EVALUATE, TrainConfig, settings_of
from ..tasks import EVALUATION_SPLITS as SPLITS  # held-out splits, test first

COMPOSITIONS = ("none", "stack", "fuse", "init_from")
DATA_SOURCES = ("hf", "samples")



# Training settings a recipe may set: the TrainConfig fields declared for recipes.
TRAIN_KEYS = {k: spec for k, spec in settings_of(TrainConfig).items() if spec.recipe}


EVAL_KEYS = {"languages": (str, list), "suite": str, "split": str, "max_examples": int,
             "max_length": int, "batch_size": int}
GRID_KEYS = ("backbones", "intermediates", "compositions", "targets", "methods", "seeds")
TOP_KEYS = ("name", "description", "notes", "model", "data", "data_dirs", "variants", "groups",
            "grid", "train", "train_intermediate", "train_target", "evaluate", "cache",
            "tracking")
# `tracking: tensorboard` or `tracking: {report_to: tensorboard, logging_steps: 10}`: every
# module a run trains logs to <run dir>/tracking/<recipe name>/<module>.
TRACKING_KEYS = {"report_to": str, "logging_steps": int}
VARIANT_KEYS = ("task", "data_dir", "requires")
BACKBONE_KEYS = ("model", "name", "quantize", "precision")


# --- typed recipe ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Backbone:
    name: str                  # what the store's `cells.backbone` says
    model: str                 # HF id, local directory or builtin:tiny-<arch>
    quantize: str = "none"
    precision: str | None = None


@dataclass(frozen=True)
class Variant:
    """A task trained on other data than the catalogue's (translated, another language...):
    `data_dir` holds it; while it is null, cells that need it are skipped with `requires`."""
    name: str
    task: str
    data_dir: str | None = None
    requires: str | None = None


@dataclass(frozen=True)
class Grid:
    backbones: tuple[Backbone, ...]
    intermediates: tuple[str, ...]
    compositions: tuple[str, ...]
    targets: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class EvalSettings:
    languages: tuple[str, ...] | str = "all"
    suite: str | None = None
    split: str = "test"
    max_examples: int | None = None
    max_length: int | None = None
    batch_size: int = 64


@dataclass
class Recipe:
    name: str
    source: str                # the file it came from ("<string>" when parsed from text)
    text: str                  # the YAML text as written
    overrides: tuple[str, ...]
    raw: dict                  # the YAML after overrides (what the hash covers)
    grids: tuple[Grid, ...]
    data: str = "hf"
    data_dirs: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    train_intermediate: dict = field(default_factory=dict)
    train_target: dict = field(default_factory=dict)
    evaluate: EvalSettings = field(default_factory=EvalSettings)
    cache: str | None = None
    description: str = ""
    tracking: dict = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """sha256 of the recipe after overrides (key order and formatting do not count)."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str)
                              .encode()).hexdigest()

    def settings(self, role: str) -> dict:
        """Training settings for a module of `role` (intermediate or target)."""
        extra = self.train_intermediate if role == "intermediate" else self.train_target
        out = {**self.train, **extra}
        if "method_config" in self.train and "method_config" in extra:
            out["method_config"] = {**self.train["method_config"], **extra["method_config"]}
        return out

    def task_of(self, atom: str) -> str:
        return self.variants[atom].task if atom in self.variants else atom

    def data_dir_of(self, atom: str) -> str | None:
        if atom in self.variants:
            return self.variants[atom].data_dir
        return self.data_dirs.get(atom)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("raw")
        out.pop("text")
        return out


# --- parsing helpers -------------------------------------------------------------------------

class _Where:
    """Builds error messages: 'recipe NAME: PATH: message', noting overridden keys."""

    def __init__(self, source: str, overridden: dict[str, str]):
        self.source = source
        self.overridden = overridden

    def error(self, path: str, message: str) -> AdapterxlError:
        def related(k):
            return any(p == q or p.startswith(q + ".") or p.startswith(q + "[")
                       or q.startswith(p + ".")
                       for p in (path, _bare(path)) for q in (k, _bare(k)))

        by = next((f"{k}={v}" for k, v in self.overridden.items() if related(k)), None)
        note = f" (from the override {by})" if by else ""
        return AdapterxlError(f"recipe {self.source}: {path}{note}: {message}")


def _bare(path: str) -> str:
    """A path without list indices: grid[0].targets[2] and grid.0.targets -> grid.targets."""
    return re.sub(r"\.\d+(?=\.|$)", "", re.sub(r"\[\d+\]", "", path))


def _did_you_mean(name, known) -> str:
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=2, cutoff=0.5)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _unknown(kind: str, name, known) -> str:
    hint = _did_you_mean(name, known)
    if hint:
        return f"unknown {kind} {name!r}{hint}"
    return f"unknown {kind} {name!r}; known: {', '.join(sorted(str(k) for k in known))}"


def _check_keys(w: _Where, path: str, value: dict, allowed) -> None:
    for key in value:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise w.error(where, _unknown("key", key, allowed))


def _as_list(w: _Where, path: str, value) -> list:
    if value is None:
        raise w.error(path, "is empty")
    if isinstance(value, (str, int, float, dict)):
        return [value]
    if not isinstance(value, list) or not value:
        raise w.error(path, f"expects a list, got {value!r}")
    return value


def _typed(w: _Where, path: str, value, types):
    types = types if isinstance(types, tuple) else (types,)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in types:
        raise w.error(path, f"expects {types[0].__name__}, got {value!r}")
    if not isinstance(value, types):
        raise w.error(path, f"expects {types[0].__name__}, got {value!r}")
    return value


# --- overrides -------------------------------------------------------------------------------

def apply_overrides(raw: dict, overrides, source: str = "<recipe>") -> tuple[dict, dict]:
    """Apply `key=value` strings (dotted paths, values parsed as YAML) to a copy of `raw`.
    A key segment that meets a list applies to each element (`grid.targets=[xnli]` on a list of
    grids), or indexes it when numeric (`grid.0.seeds=[1]`). Returns (new raw, {path: value})."""
    raw = copy.deepcopy(raw)
    done = {}
    for item in overrides:
        if "=" not in item:
            raise AdapterxlError(f"recipe {source}: override {item!r} is not key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise AdapterxlError(f"recipe {source}: override {item!r} has an empty key")
        try:
            value = safe_yaml.load(text, f"override {key}") if text.strip() else None
        except yaml.YAMLError as e:
            raise AdapterxlError(f"recipe {source}: override {item!r}: the value is not "
                                 f"valid YAML ({str(e).splitlines()[0]})") from e
        _set(raw, key.split("."), value, key, source)
        done[key] = text
    return raw, done


def _set(node, parts, value, key, source) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        if head.isdigit():
            index = int(head)
            if index >= len(node):
                raise AdapterxlError(f"recipe {source}: override {key}: index {index} is out "
                                     f"of range (the list has {len(node)} items)")
            if not rest:
                node[index] = value
            else:
                _set(node[index], rest, value, key, source)
            return
        for element in node:
            _set(element, parts, value, key, source)
        return
    if not isinstance(node, dict):
        raise AdapterxlError(f"recipe {source}: override {key}: {head!r} is inside a value that "
                             f"is not a mapping")
    if not rest:
        node[head] = value
        return
    if node.get(head) is None:
        node[head] = {}
    _set(node[head], rest, value, key, source)


# --- the schema ------------------------------------------------------------------------------

# The recipes shipped with the package (a clone's top-level recipes/ points here).
BUNDLED = Path(__file__).resolve().parent.parent / "recipes"


def bundled_recipes() -> list[str]:
    return sorted(p.stem for p in BUNDLED.glob("*.yaml"))


def find_recipe(recipe) -> Path:
    """A recipe file: a path, or the name of a shipped recipe (`stilts-xtreme`), so that
    `adapterxl run stilts-xtreme` works from an installed package outside a clone."""
    path = Path(recipe)
    if path.is_file():
        return path
    name = str(recipe)
    if path.suffix == "" and "/" not in name and (BUNDLED / f"{name}.yaml").is_file():
        return BUNDLED / f"{name}.yaml"
    import difflib

    close = difflib.get_close_matches(path.stem, bundled_recipes(), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise AdapterxlError(f"recipe {name!r} does not exist{hint}: give a recipe file or the "
                         f"name of a shipped one ({', '.join(bundled_recipes())})")


def load_recipe(path, overrides=()) -> Recipe:
    """Read, override and validate a recipe file (a path or a shipped recipe's name)."""
    path = find_recipe(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise AdapterxlError(f"recipe {path} is not UTF-8 text (byte {e.start}: "
                             f"{e.reason}); save it as UTF-8") from None
    return parse_recipe(text, overrides, source=path.name, default_name=path.stem)


def parse_recipe(text: str, overrides=(), source: str = "<string>",
                 default_name: str = "recipe") -> Recipe:
    try:
        raw = safe_yaml.load(text, f"recipe {source}")
    except yaml.YAMLError as e:
        raise AdapterxlError(f"recipe {source} is not valid YAML "
                             f"({' '.join(str(e).split())})") from e
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise AdapterxlError(f"recipe {source}: the top level must be a mapping of keys "
                             f"({', '.join(TOP_KEYS)})")
    raw, overridden = apply_overrides(raw, overrides, source)
    w = _Where(source, overridden)
    return _validate(raw, w, text, tuple(overrides), default_name)


def _validate(raw: dict, w: _Where, text: str, overrides: tuple, default_name: str) -> Recipe:
    from ..tasks import catalog

    _check_keys(w, "", raw, TOP_KEYS)
    tasks = catalog()
    name = raw.get("name") or default_name
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise w.error("name", f"must be a simple name (letters, digits, . _ -), got {name!r}")
    data, data_dirs = _data(w, raw, tasks)
    variants = _variants(w, raw, tasks)
    atoms = {**{n: n for n in tasks}, **{n: v.task for n, v in variants.items()}}
    train = {section: _train_section(w, raw, section)
             for section in ("train", "train_intermediate", "train_target")}
    evaluate = _evaluate(w, raw)
    grids = _grids(w, raw, atoms, variants, tasks, train, data, data_dirs)
    _check_languages(w, evaluate, grids, atoms, tasks)
    groups = _groups(w, raw, grids)
    cache = raw.get("cache")
    _typed(w, "cache", cache, str)
    description = raw.get("description") or ""
    return Recipe(name=name, source=w.source, text=text, overrides=overrides, raw=raw,
                  grids=tuple(grids), data=data, data_dirs=data_dirs, variants=variants,
                  groups=groups, train=train["train"],
                  train_intermediate=train["train_intermediate"],
                  train_target=train["train_target"], evaluate=evaluate, cache=cache,
                  description=str(description).strip(), tracking=_tracking(w, raw))


def _data(w: _Where, raw: dict, tasks) -> tuple[str, dict]:
    """The recipe's data source and its per-task local directories."""
    data = raw.get("data", "hf")
    if data not in DATA_SOURCES:
        raise w.error("data", _unknown("data source", data, DATA_SOURCES)
                      + " (local files: data_dirs.<task>: DIR)")
    data_dirs = raw.get("data_dirs") or {}
    if not isinstance(data_dirs, dict):
        raise w.error("data_dirs", "expects a mapping task: directory")
    for task, d in data_dirs.items():
        if task not in tasks:
            raise w.error(f"data_dirs.{task}", _unknown("task", task, tasks))
        if d is not None and not isinstance(d, str):
            raise w.error(f"data_dirs.{task}", f"expects a directory, got {d!r}")
    return data, {k: v for k, v in data_dirs.items() if v}


def _variants(w: _Where, raw: dict, tasks) -> dict:
    variants = {}
    for vname, spec in (raw.get("variants") or {}).items():
        path = f"variants.{vname}"
        if not isinstance(spec, dict):
            raise w.error(path, "expects a mapping with task, data_dir, requires")
        _check_keys(w, path, spec, VARIANT_KEYS)
        if vname in tasks or vname == "none" or any(c in str(vname) for c in "+>,"):
            raise w.error(path, "a variant needs a name of its own (not a task, 'none', or "
                                "containing + > ,)")
        task = spec.get("task")
        if task not in tasks:
            raise w.error(f"{path}.task", _unknown("task", task, tasks))
        for key in ("data_dir", "requires"):
            _typed(w, f"{path}.{key}", spec.get(key), str)
        variants[vname] = Variant(vname, task, spec.get("data_dir"), spec.get("requires"))
    return variants


def _train_section(w: _Where, raw: dict, section: str) -> dict:
    """A train section's settings, each checked against its TrainConfig declaration."""
    value = raw.get(section) or {}
    if not isinstance(value, dict):
        raise w.error(section, "expects a mapping of training settings")
    _check_keys(w, section, value, TRAIN_KEYS)
    for key, v in value.items():
        why = TRAIN_KEYS[key].why(v)
        if why:
            raise w.error(f"{section}.{key}", why)
    value = {k: TRAIN_KEYS[k].check(v, k) for k, v in value.items()}
    return {k: v for k, v in value.items() if v is not None}


def _evaluate(w: _Where, raw: dict) -> EvalSettings:
    from ..tasks import SUITES

    ev = raw.get("evaluate") or {}
    if not isinstance(ev, dict):
        raise w.error("evaluate", "expects a mapping")
    _check_keys(w, "evaluate", ev, EVAL_KEYS)
    for key, v in ev.items():
        _typed(w, f"evaluate.{key}", v, EVAL_KEYS[key])
        why = EVALUATE[key].why(v) if key in EVALUATE else None
        if why:
            raise w.error(f"evaluate.{key}", why)
    suite = ev.get("suite")
    if suite is not None and suite not in SUITES:
        raise w.error("evaluate.suite", _unknown("suite", suite, SUITES))
    split = ev.get("split", "test")
    if split not in SPLITS:
        raise w.error("evaluate.split", _unknown("split", split, SPLITS))
    languages = ev.get("languages", "all")
    if isinstance(languages, str) and languages != "all":
        languages = [x.strip() for x in languages.split(",") if x.strip()]
    if isinstance(languages, list):
        languages = tuple(str(x) for x in languages)
    return EvalSettings(languages=languages, suite=suite, split=split,
                        max_examples=ev.get("max_examples"), max_length=ev.get("max_length"),
                        batch_size=ev.get("batch_size") or 64)


def _grids(w: _Where, raw: dict, atoms, variants, tasks, train, data, data_dirs) -> list:
    from ..formats import get_format
    from ..modules import get_method

    model = raw.get("model")
    _typed(w, "model", model, str)
    grid_raw = raw.get("grid")
    if grid_raw is None:
        raise w.error("grid", "is missing (backbones, intermediates, compositions, targets, "
                              "methods, seeds)")
    many = isinstance(grid_raw, list)
    grids = []
    for gi, g in enumerate(grid_raw if many else [grid_raw]):
        gp = f"grid[{gi}]" if many else "grid"
        if not isinstance(g, dict):
            raise w.error(gp, "expects a mapping of " + ", ".join(GRID_KEYS))
        _check_keys(w, gp, g, GRID_KEYS)
        grids.append(_grid(w, gp, g, model, atoms, variants, tasks, get_format, get_method,
                           train, data, data_dirs))
    return grids


def _check_languages(w: _Where, evaluate: EvalSettings, grids, atoms, tasks) -> None:
    """Languages must name a language of at least one target (typos are caught here)."""
    languages, suite = evaluate.languages, evaluate.suite
    if not isinstance(languages, tuple):
        return
    targets = {atoms[t] for g in grids for t in g.targets}
    pool = set()
    for t in targets:
        pool |= set(tasks[t].suites.get(suite, ()) if suite else tasks[t].languages)
    for i, lang in enumerate(languages):
        if lang not in pool:
            raise w.error(f"evaluate.languages[{i}]",
                          _unknown("language for these targets", lang, pool))


def _groups(w: _Where, raw: dict, grids) -> dict:
    groups = raw.get("groups") or {}
    if not isinstance(groups, dict):
        raise w.error("groups", "expects a mapping name: [intermediates]")
    every = {i for g in grids for i in g.intermediates}
    for gname, members in groups.items():
        for i, m in enumerate(_as_list(w, f"groups.{gname}", members)):
            if m not in every:
                raise w.error(f"groups.{gname}[{i}]",
                              _unknown("intermediate (not in the grid)", m, every))
    return {k: list(v) if isinstance(v, list) else [v] for k, v in groups.items()}


def _tracking(w: _Where, raw: dict) -> dict:
    from ..tracking import REPORT_TO

    tracking = raw.get("tracking") or {}
    if isinstance(tracking, str):
        tracking = {"report_to": tracking}
    if not isinstance(tracking, dict):
        raise w.error("tracking", "expects a tracker name or a mapping (report_to, "
                                  "logging_steps)")
    _check_keys(w, "tracking", tracking, tuple(TRACKING_KEYS))
    for key, kind in TRACKING_KEYS.items():
        _typed(w, f"tracking.{key}", tracking.get(key), kind)
    if tracking.get("report_to", "none") not in REPORT_TO:
        raise w.error("tracking.report_to", _unknown("tracker", tracking["report_to"],
                                                     REPORT_TO))
    return tracking


def parse_intermediate(expr: str) -> list[list[str]]:
    """'none' -> []; 'a' -> [[a]]; 'a+b' -> [[a, b]] (multi-task); 'a>b' -> [[a], [b]]
    (b trained on a); 'a+b>c' -> [[a, b], [c]]."""
    expr = str(expr).strip()
    if expr == "none":
        return []
    return [[atom.strip() for atom in step.split("+")] for step in expr.split(">")]


def _grid(w, gp, g, model, atoms, variants, tasks, get_format, get_method, train, data,
          data_dirs) -> Grid:
    for key in GRID_KEYS:
        if key not in g and not (key == "backbones" and model):
            if key in ("compositions",):
                continue
            if key == "seeds":
                continue
            raise w.error(f"{gp}.{key}", "is missing")

    backbones = []
    if model:  # `model=...` replaces the grid's backbones (CI and smoke runs)
        backbones = [Backbone(name=_short(model), model=model)]
    else:
        for i, b in enumerate(_as_list(w, f"{gp}.backbones", g.get("backbones"))):
            bp = f"{gp}.backbones[{i}]"
            if isinstance(b, str):
                backbones.append(Backbone(name=_short(b), model=b))
                continue
            if not isinstance(b, dict) or not b.get("model"):
                raise w.error(bp, "expects a model id or a mapping with model (and quantize, "
                                  "precision, name)")
            _check_keys(w, bp, b, BACKBONE_KEYS)
            q = b.get("quantize", "none") or "none"
            if q not in QUANTIZE:
                raise w.error(f"{bp}.quantize", _unknown("quantization", q, QUANTIZE))
            p = b.get("precision")
            if p is not None and p not in PRECISIONS:
                raise w.error(f"{bp}.precision", _unknown("precision", p, PRECISIONS))
            name = b.get("name") or (_short(b["model"]) + ("" if q == "none" else f"-{q}"))
            backbones.append(Backbone(name=str(name), model=str(b["model"]), quantize=q,
                                      precision=p))
    names = [b.name for b in backbones]
    if len(set(names)) != len(names):
        raise w.error(f"{gp}.backbones", f"two backbones have the same name ({names}); give "
                                         f"them distinct `name`s")

    methods = [str(m) for m in _as_list(w, f"{gp}.methods", g.get("methods"))]
    for i, m in enumerate(methods):
        try:
            get_method(m)
        except AdapterxlError:
            from ..modules.methods import METHODS
            raise w.error(f"{gp}.methods[{i}]", _unknown("method", m, METHODS)) from None

    seeds = _as_list(w, f"{gp}.seeds", g.get("seeds", [42]))
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, int):
            raise w.error(f"{gp}.seeds[{i}]", f"expects an integer, got {s!r}")

    comps = [str(c) for c in _as_list(w, f"{gp}.compositions", g.get("compositions",
                                                                      ["stack"]))]
    for i, c in enumerate(comps):
        if c not in COMPOSITIONS:
            raise w.error(f"{gp}.compositions[{i}]", _unknown("composition", c, COMPOSITIONS))

    inters = [str(x) for x in _as_list(w, f"{gp}.intermediates", g.get("intermediates"))]
    for i, expr in enumerate(inters):
        ip = f"{gp}.intermediates[{i}]"
        steps = parse_intermediate(expr)
        if expr.strip() != "none" and "none" in expr.replace(" ", "").split(">"):
            raise w.error(ip, "'none' stands alone")
        for step in steps:
            if len(set(step)) != len(step):
                raise w.error(ip, f"a task is named twice in {'+'.join(step)!r}")
            dirs = set()
            for atom in step:
                if not atom:
                    raise w.error(ip, f"empty task in {expr!r} (use a, a+b or a>b)")
                if atom not in atoms:
                    raise w.error(ip, _unknown("task", atom, atoms))
                fmt = get_format(tasks[atoms[atom]].format)
                if fmt.head is None:
                    raise w.error(ip, f"{atom} is a {fmt.name} task: it has no training data, "
                                      f"so it cannot be an intermediate task")
                dirs.add(variants[atom].data_dir if atom in variants else
                         data_dirs.get(atom))
            if len(step) > 1 and len(dirs) > 1:
                raise w.error(ip, f"the multi-task step {'+'.join(step)!r} mixes data "
                                  f"directories; one module trains from one source")
        if len(steps) > 1 and "fuse" in comps:
            raise w.error(f"{gp}.compositions[{comps.index('fuse')}]",
                          f"fuse does not apply to the sequence {expr!r} ({ip}): put "
                          f"sequences and fusions in separate grids (grid: a list)")
    if set(comps) == {"none"} and any(x != "none" for x in inters):
        raise w.error(f"{gp}.compositions", "intermediates other than 'none' need stack, "
                                            "fuse or init_from")

    targets = [str(t) for t in _as_list(w, f"{gp}.targets", g.get("targets"))]
    for i, t in enumerate(targets):
        if t not in atoms:
            raise w.error(f"{gp}.targets[{i}]", _unknown("task", t, atoms))
    for key, values in (("intermediates", inters), ("targets", targets),
                        ("methods", methods), ("compositions", comps)):
        if len(set(values)) != len(values):
            raise w.error(f"{gp}.{key}", f"a value is listed twice: {values}")
    return Grid(tuple(backbones), tuple(inters), tuple(comps), tuple(targets), tuple(methods),
                tuple(int(s) for s in seeds))


def _short(model: str) -> str:
    model = model.rstrip("/")
    if model.startswith("builtin:"):
        return model.split(":", 1)[1]
    return model.rsplit("/", 1)[-1] or model
