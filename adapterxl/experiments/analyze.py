"""Analyses of a run: which task similarity predicts transfer, and which languages are diverse.

`similarity(run)` measures, for every (intermediate, target) pair of a run, how similar the two
tasks are, and correlates that with the measured transfer gain (Spearman's rho):

- **representation** (`cka`): linear CKA (Kornblith et al. 2019) between the backbone's last
  hidden layer, mean-pooled over tokens, with the intermediate module active and with the
  target task's own module active, on the same probe examples (English, the target task's
  dev split unless `probe_task` is given). The target's own module is the no-intermediate
  baseline's module when the run has one (the target task alone), else the cell's module;
- **weights** (`weight_cosine`): cosine similarity of the flattened module weights of the two
  modules, for modules of the same method and config (other pairs get None).

`typology(languages, k)` reads URIEL (Littell et al. 2017) as bundled in the `lang2vec` package
and gives, for each pair of languages, the cosine distance between URIEL's kNN-imputed
syntax, phonology and inventory vectors, their mean ("typological"), and the genetic distance
(1 − shared Glottolog nodes / the deeper language's node count); with `k`, a greedy max-min
diverse subset.
"""
from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import AdapterxlError
from .report import BASELINE, done_cells, gains, load_run

# ----------------------------------------------------------------------------- measures


def linear_cka(x, y) -> float:
    """Linear CKA between two representations of the same n examples (n × d1, n × d2):
    ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), columns centered. 1 for a representation
    with itself, symmetric, invariant to orthogonal transforms and isotropic scaling."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"linear_cka needs two matrices with the same number (>= 2) of rows, "
                         f"got {x.shape} and {y.shape}")
    x = x - x.mean(0, keepdims=True)
    y = y - y.mean(0, keepdims=True)
    cross = np.linalg.norm(y.T @ x) ** 2
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    if denom == 0:
        return float("nan")
    return float(min(1.0, max(0.0, cross / denom)))


def weight_cosine(a: dict, b: dict) -> float | None:
    """Cosine similarity of two modules' weights flattened in name order; None when the
    modules have different parameter names or shapes (another method or config)."""
    if set(a) != set(b) or any(tuple(a[k].shape) != tuple(b[k].shape) for k in a):
        return None
    va = np.concatenate([a[k].detach().float().reshape(-1).cpu().numpy() for k in sorted(a)])
    vb = np.concatenate([b[k].detach().float().reshape(-1).cpu().numpy() for k in sorted(b)])
    denom = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return None if denom == 0 else float(np.dot(va, vb) / denom)


def spearman(x, y) -> float | None:
    """Spearman's rho (ties share their mean rank); None with fewer than 3 pairs or a constant
    input."""
    from ..scoring.metrics import pearson_spearman

    if len(x) < 3:
        return None
    rho = pearson_spearman(x, y)["spearman"]
    return None if math.isnan(rho) else rho


# ----------------------------------------------------------------------------- modules

def _intermediate_module(cell: dict, store: dict):
    """The intermediate module a cell's target module was trained on: the top of its stack,
    the module it continued (init_from), else the run's module of that task."""
    from ..modules import open_module

    target = open_module(_path(store, cell["module"]))
    if cell["composition"] == "fuse":
        return None, "fusion: several intermediate modules"
    lower = [m for m in target.lower() if m.role != "language"]
    if lower:
        return lower[-1], None
    init = target.manifest.get("init_from") or {}
    if init.get("path") and Path(init["path"]).is_dir():
        return open_module(init["path"]), None
    name = cell["intermediate"].split(">")[-1]
    for row in store.get("modules") or []:
        path = _path(store, row.get("path"))
        if path is None or row.get("role") == "target" or \
                cell["intermediate"] not in (row.get("label"), row.get("task")) and \
                name != row.get("task"):
            continue
        mod = open_module(path)
        if row.get("backbone", cell["backbone"]) == cell["backbone"] and \
                row.get("method", cell["method"]) == cell["method"]:
            return mod, None
    return None, "intermediate module not found"


def _path(store: dict, path) -> Path | None:
    """A module directory recorded in the store: absolute, or relative to the run."""
    if not path:
        return None
    for candidate in (Path(path), Path(store["dir"]) / path):
        if candidate.is_dir():
            return candidate
    return None


def _probe_rows(task, source: dict, max_examples: int):
    from ..data.sources import available_languages, load_split

    data = source.get("source", "hf")
    data, data_dir = ("local", source.get("dir")) if data == "local" else (data, None)
    if data not in ("hf", "samples", "local"):
        data = "hf"
    last = None
    for split in ("validation", "test", "train"):
        try:
            if task.train_language not in available_languages(task, split, data, data_dir):
                continue
            rows = load_split(task, split, task.train_language, data=data, data_dir=data_dir,
                              max_examples=max_examples)
        except AdapterxlError as e:
            last = e
            continue
        if rows:
            return rows
    raise AdapterxlError(f"no probe data for {task.name} ({last or 'no split found'})")


class _Representations:
    """Mean-pooled last-layer vectors of probe examples under a module, cached per (module,
    probe task)."""

    def __init__(self, max_examples: int, max_length: int = 128, batch_size: int = 32):
        self.max_examples, self.max_length, self.batch_size = max_examples, max_length, batch_size
        self.cache: dict = {}
        self.features: dict = {}

    def __call__(self, mod, probe: str, source: dict) -> np.ndarray:
        import torch

        from ..backbone import load_backbone
        from ..data.preprocess import loader
        from ..formats import get_format
        from ..modules import load_for_inference
        from ..tasks import get_task

        key = (str(Path(mod.path).resolve()), probe)
        if key in self.cache:
            return self.cache[key]
        task = get_task(probe)
        fmt = get_format(task.format)
        if fmt.head is None:
            raise AdapterxlError(f"probe task {probe} is a retrieval task: pick a task with "
                                 f"training data (--probe-task)")
        b = mod.manifest["backbone"]
        # A fresh backbone per module: loading injects the module into the model.
        backbone = load_backbone(b["id"], b.get("precision"), b.get("quantize", "none"),
                                 trust_remote_code=bool(b.get("trust_remote_code")))
        net = load_for_inference(backbone, mod)
        fkey = (b["id"], probe)
        if fkey not in self.features:
            rows = _probe_rows(task, source, self.max_examples)
            max_length = min(self.max_length, task.hyperparameters.get("max_length", 128))
            feats = fmt.encode(rows, backbone.tokenizer, max_length, False, task)
            self.features[fkey] = [{k: v for k, v in f.items()
                                    if k in ("input_ids", "attention_mask", "token_type_ids")}
                                   for f in feats]
        feats = self.features[fkey]
        batches = loader(feats, backbone.tokenizer, self.batch_size, shuffle=False)
        order = [i for batch in batches.batch_sampler for i in batch]
        out = []
        with torch.no_grad():
            for batch in batches:
                batch = {k: v.to(backbone.device) for k, v in batch.items()}
                out.append(net.embed(net.num_layers, **batch).float().cpu().numpy())
        vectors = np.concatenate(out)
        restored = np.empty_like(vectors)
        restored[np.asarray(order)] = vectors
        self.cache[key] = restored
        return restored


# ----------------------------------------------------------------------------- similarity

def similarity(run_dir, probe_task: str | None = None, max_examples: int = 64) -> dict:
    """Task similarity of each (intermediate, target) pair of a run by representation (linear
    CKA) and module weights (cosine), and Spearman's rho of each with the transfer gain
    (the report's gain: cell score − the no-intermediate baseline's, mean over seeds).
    Returns {"pairs": [...], "correlations": {measure: {"spearman", "pairs"}}, "skipped": [...],
    "probe_task", "max_examples"}."""
    from ..modules import open_module
    from ..tasks import get_task

    if probe_task is not None:
        get_task(probe_task)
    if max_examples < 2:
        raise AdapterxlError("--max-examples must be at least 2 (CKA compares examples)")
    store = {**load_run(run_dir), "dir": str(run_dir)}
    cells = done_cells(store)
    base: dict = defaultdict(list)
    for c in cells:
        if c["intermediate"] == BASELINE:
            base[(c["backbone"], c["method"], c["target"])].append(c)
    groups: dict = defaultdict(list)
    for c in cells:
        if c["intermediate"] != BASELINE:
            groups[(c["backbone"], c["method"], c["target"], c["intermediate"],
                    c["composition"])].append(c)
    if not groups:
        raise AdapterxlError(f"{run_dir}: no finished cell with an intermediate task: nothing "
                             f"to compare")
    gain_of = {(g["backbone"], g["method"], g["target"], g["intermediate"], g["composition"]): g
               for g in gains(store)[0]}
    reps = _Representations(max_examples)
    pairs, skipped = [], []
    for key in sorted(groups):
        backbone, method, target, intermediate, composition = key
        group = sorted(groups[key], key=lambda c: c["seed"])
        label = f"{intermediate} → {target} ({backbone}, {method}, {composition})"
        baseline = base.get((backbone, method, target))
        if not baseline:
            skipped.append(f"{label}: no baseline, no gain")
            continue
        cell = group[0]
        if _path(store, cell.get("module")) is None:
            skipped.append(f"{label}: module directory {cell.get('module')!r} is missing")
            continue
        inter, why = _intermediate_module(cell, store)
        if inter is None:
            skipped.append(f"{label}: {why}")
            continue
        ref = sorted(baseline, key=lambda c: c["seed"])[0]
        own = open_module(_path(store, ref.get("module")) or _path(store, cell["module"]))
        probe = probe_task or target
        source = open_module(_path(store, cell["module"])).manifest.get("data") or {}
        if "source" not in source:  # a multi-task module: {task: source}
            source = next(iter(source.values()), {}) if source else {}
        cka = linear_cka(reps(inter, probe, source), reps(own, probe, source))
        gain = gain_of[key]["gain"]
        pairs.append({"backbone": backbone, "method": method, "target": target,
                      "intermediate": intermediate, "composition": composition,
                      "gain": gain, "cka": None if math.isnan(cka) else cka,
                      "weight_cosine": weight_cosine(inter.weights(), own.weights())
                      if inter.method == own.method and inter.method_config == own.method_config
                      else None,
                      "intermediate_module": str(inter.path), "target_module": str(own.path),
                      "probe_task": probe, "seeds": [c["seed"] for c in group]})
    correlations = {}
    for measure in ("cka", "weight_cosine"):
        usable = [p for p in pairs if p[measure] is not None]
        rho = spearman([p[measure] for p in usable], [p["gain"] for p in usable])
        correlations[measure] = {"spearman": rho, "pairs": len(usable)}
    return {"run": str(run_dir), "probe_task": probe_task, "max_examples": max_examples,
            "pairs": pairs, "correlations": correlations, "skipped": skipped}


def format_similarity(result: dict) -> str:
    lines = ["| backbone | method | intermediate | target | gain | CKA | weight cos |",
             "|---|---|---|---|---|---|---|"]
    for p in result["pairs"]:
        lines.append(f"| {p['backbone']} | {p['method']} | {p['intermediate']} | {p['target']} "
                     f"| {100 * p['gain']:+.1f} | {_num(p['cka'])} | {_num(p['weight_cosine'])} |")
    lines.append("")
    for measure, c in result["correlations"].items():
        lines.append(f"Spearman rho({measure}, gain) = {_num(c['spearman'])} over "
                     f"{c['pairs']} pairs")
    lines += [f"skipped: {s}" for s in result["skipped"]]
    return "\n".join(lines)


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


# ----------------------------------------------------------------------------- typology

URIEL_SETS = {"syntactic": "S_", "phonological": "P_", "inventory": "INV_"}
MEASURES = ("typological", "syntactic", "phonological", "inventory", "genetic")


def _uriel_dir() -> Path:
    import importlib.metadata

    # Located through the installed distribution, not find_spec("lang2vec"): lang2vec also
    # installs a script bin/lang2vec.py, and under a console script sys.path[0] is bin/, so an
    # import lookup finds that script instead of the package.
    try:
        dist = importlib.metadata.distribution("lang2vec")
    except importlib.metadata.PackageNotFoundError:
        raise AdapterxlError("typology needs the URIEL data bundled with the lang2vec package, "
                             "which is not installed (pip install 'adapterxl[typology]')") from None
    data = Path(dist.locate_file("lang2vec")) / "data"
    needed = ("feature_predictions.npz", "family_features.npz", "letter_codes.json")
    missing = [f for f in needed if not (data / f).is_file()]
    if missing:
        raise AdapterxlError(f"the lang2vec package at {data.parent} lacks URIEL's "
                             f"{', '.join(missing)} (reinstall lang2vec==1.1.2)")
    return data


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float("nan") if denom == 0 else max(0.0, 1.0 - float(np.dot(a, b)) / denom)


def uriel_vectors(languages: list[str]) -> dict:
    """{language: {"code": ISO 639-3, "syntactic"|"phonological"|"inventory": kNN-imputed
    URIEL vector, "family": Glottolog membership vector}}. Reads lang2vec's bundled data files
    directly (its module imports pkg_resources, which current setuptools no longer ships)."""
    data = _uriel_dir()
    letters = json.loads((data / "letter_codes.json").read_text())
    pred = np.load(data / "feature_predictions.npz")
    fam = np.load(data / "family_features.npz")
    pred_langs = {code: i for i, code in enumerate(pred["langs"].tolist())}
    fam_langs = {code: i for i, code in enumerate(fam["langs"].tolist())}
    feats = pred["feats"].tolist()
    columns = {name: [i for i, f in enumerate(feats) if f.startswith(prefix)]
               for name, prefix in URIEL_SETS.items()}
    out, unknown = {}, []
    for lang in languages:
        code = letters.get(lang, lang)
        if code not in pred_langs or code not in fam_langs:
            unknown.append(lang)
            continue
        row = pred["data"][pred_langs[code], :, 0].astype(np.float64)
        out[lang] = {"code": code, **{name: row[cols] for name, cols in columns.items()},
                     "family": fam["data"][fam_langs[code], :, 0].astype(np.float64)}
    if unknown:
        raise AdapterxlError(f"not in URIEL: {', '.join(unknown)} (use ISO 639-1 or 639-3 "
                             f"codes, e.g. sw or swh)")
    return out


def _genetic(a: np.ndarray, b: np.ndarray) -> float:
    depth = max(float(a.sum()), float(b.sum()))
    return 1.0 if depth == 0 else 1.0 - float(np.dot(a, b)) / depth


def max_min_subset(names: list[str], distance, k: int) -> list[str]:
    """Greedy max-min diverse subset: the farthest pair first, then repeatedly the item whose
    nearest chosen item is farthest (ties: input order)."""
    if k >= len(names):
        return list(names)
    if k == 1:
        return [names[0]]
    best = max(((a, b) for i, a in enumerate(names) for b in names[i + 1:]),
               key=lambda p: distance[p[0]][p[1]])
    chosen = list(best)
    while len(chosen) < k:
        rest = [n for n in names if n not in chosen]
        chosen.append(max(rest, key=lambda n: min(distance[n][c] for c in chosen)))
    return chosen


def typology(languages, k: int | None = None, measure: str = "typological") -> dict:
    """URIEL distances between `languages` (a list or comma string of ISO 639-1/3 codes) and,
    with `k`, a greedy max-min diverse subset of k languages under `measure` (typological:
    the mean of the syntactic, phonological and inventory cosine distances; or one of those;
    or genetic). Returns {"languages", "codes", "measure", "distances": {measure: {a: {b: d}}},
    "subset", "subset_min_distance"}."""
    if isinstance(languages, str):
        languages = [x.strip() for x in languages.split(",") if x.strip()]
    languages = list(dict.fromkeys(languages))
    if len(languages) < 2:
        raise AdapterxlError("typology needs at least two languages")
    if measure not in MEASURES:
        from ..errors import unknown
        raise unknown("measure", measure, MEASURES)
    if k is not None and not 1 <= k <= len(languages):
        raise AdapterxlError(f"--k must be between 1 and the number of languages "
                             f"({len(languages)}), got {k}")
    vec = uriel_vectors(languages)
    distances = {m: {a: {} for a in languages} for m in MEASURES}
    for a in languages:
        for b in languages:
            d = {name: _cosine_distance(vec[a][name], vec[b][name]) for name in URIEL_SETS}
            d["typological"] = statistics.fmean(d[name] for name in URIEL_SETS)
            d["genetic"] = _genetic(vec[a]["family"], vec[b]["family"])
            for m in MEASURES:
                distances[m][a][b] = 0.0 if a == b else d[m]
    subset = max_min_subset(languages, distances[measure], k) if k else None
    spread = (min(distances[measure][a][b] for i, a in enumerate(subset) for b in subset[i + 1:])
              if subset and len(subset) > 1 else None)
    return {"languages": languages, "codes": {lang: vec[lang]["code"] for lang in languages},
            "measure": measure, "distances": distances, "subset": subset,
            "subset_min_distance": spread, "source": "URIEL (lang2vec data)"}


def format_typology(result: dict) -> str:
    langs, m = result["languages"], result["measure"]
    lines = [f"{m} distance (URIEL via lang2vec)", "",
             "| | " + " | ".join(langs) + " |", "|" + "---|" * (len(langs) + 1)]
    for a in langs:
        lines.append(f"| {a} | " + " | ".join(f"{result['distances'][m][a][b]:.3f}"
                                             for b in langs) + " |")
    if result["subset"]:
        lines += ["", f"diverse subset (k={len(result['subset'])}, greedy max-min): "
                      f"{', '.join(result['subset'])} (min pairwise distance "
                      f"{_num(result['subset_min_distance'])})"]
    return "\n".join(lines)
