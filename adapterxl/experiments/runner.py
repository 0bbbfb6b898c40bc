"""Running a recipe: plan the cells, train what the module cache lacks, evaluate, record.

`run_recipe` is what `adapterxl run` calls. Each cell's modules are taken from the shared
content-addressed cache or trained into it (`cache.ModuleCache.ensure`, one trainer per key
across processes); then the cell's top module is evaluated zero-shot and the metrics go to the
run's SQLite store. Interrupting and running again continues: finished cells are not redone,
an interrupted module training resumes from its checkpoint.
"""
from __future__ import annotations

import functools
import json
import math
import re
import socket
import time
from dataclasses import fields
from pathlib import Path

from ..errors import AdapterxlError
from ..evaluation import evaluate
from ..preemption import Stopped
from ..training import TrainConfig, train_module
from . import grid as grid_
from .cache import ModuleCache
from .recipe import Recipe, load_recipe
from .results import Store, dumps

_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "gpu-h": 3600, "gpu-hours": 3600,
          "gpuh": 3600, "d": 86400}


def parse_budget(text: str | None) -> float | None:
    """'20gpu-h', '2h', '30m', '90s' -> seconds of device time (one device: wall time)."""
    if text in (None, ""):
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z-]+)\s*", str(text).lower())
    if not m or m.group(2) not in _UNITS:
        raise AdapterxlError(f"--budget expects a number and a unit (20gpu-h, 2h, 30m, 90s), "
                             f"got {text!r}")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise AdapterxlError(f"--budget must be more than nothing, got {text!r}")
    return seconds


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' with 0 <= i < n (0-based, like Slurm array task ids)."""
    if text in (None, ""):
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise AdapterxlError(f"--shard expects i/n with 0 <= i < n (0-based), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def memory_plan(cell: grid_.Cell) -> str | None:
    """The memory planner's verdict for the cell's most demanding module to train (an H100):
    a note when it needs a smaller micro-batch or does not fit, None when it fits as asked or
    the backbone's config cannot be read (offline, unknown id)."""
    notes = []
    for spec in cell.modules:
        settings = {k: json.loads(v) for k, v in spec.settings}
        p = _plan(spec.backbone.model, spec.method, json.dumps(settings.get("method_config")),
                  spec.backbone.quantize, spec.backbone.precision or "bf16",
                  settings.get("max_length", 256), settings.get("batch_size", 32))
        if p is None:
            return None
        fit = p["fits"]["h100"]
        gib = fit["plain"]["allocated_bytes"] / 2**30
        if not fit["fits"]:
            notes.append(f"{spec.label} on {spec.backbone.name} does not fit an H100 "
                         f"(planned {gib:.1f} GiB at micro-batch 1)")
        elif fit["plain"]["micro_batch"] < p["batch"]:
            notes.append(f"{spec.label} on {spec.backbone.name}: micro-batch "
                         f"{fit['plain']['micro_batch']} x {fit['plain']['accumulation']} on an "
                         f"H100 ({gib:.1f} GiB planned)")
    return "; ".join(notes) or None


@functools.lru_cache(maxsize=None)
def _plan(model, method, method_config, quantize, precision, seq_len, batch) -> dict | None:
    """One plan per distinct setting (a grid repeats them); None when the config is not
    readable: then no other cell tries the same backbone again."""
    from ..errors import AdapterxlError
    from ..planning import plan

    if model in _unreadable:
        return None
    if not _config_is_local(model):
        # A dry run must be quick, also offline: no Hub round trips (with retries) here.
        _unreadable.add(model)
        return None
    try:
        return plan(model, method=method, method_config=json.loads(method_config),
                    quantize=quantize, precision=precision, seq_len=seq_len, batch=batch,
                    gpu_memory="h100")
    except (AdapterxlError, OSError, ValueError):
        _unreadable.add(model)
        return None


_unreadable: set[str] = set()


def _config_is_local(model: str) -> bool:
    from ..configs import PUBLISHED

    if model.startswith("builtin:") or model in PUBLISHED or Path(model).expanduser().exists():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:  # noqa: BLE001 - an id the Hub library rejects is simply not cached
        return False


def git_commit(start: Path) -> str | None:
    """The commit checked out around `start`, read from .git without running git."""
    for d in [start.resolve(), *start.resolve().parents]:
        git = d / ".git"
        if git.is_file():  # a worktree: "gitdir: PATH"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (d / text.split(":", 1)[1].strip()).resolve()
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref:"):
                return head
            ref = head.split(":", 1)[1].strip()
            for root in (git, git / "commondir"):
                if root.is_file():  # worktrees keep refs in the common dir
                    root = (git / root.read_text().strip()).resolve()
                if (root / ref).is_file():
                    return (root / ref).read_text().strip()
                packed = root / "packed-refs"
                if packed.is_file():
                    for line in packed.read_text().splitlines():
                        if line.endswith(" " + ref):
                            return line.split()[0]
        except OSError:
            return None
        return None
    return None


def _resolve_recipe(recipe, overrides) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    return load_recipe(recipe, overrides)


def run_recipe(recipe, overrides=(), run_dir=None, dry_run: bool = False,
               budget: str | float | None = None, shard: str | tuple | None = None,
               cache_dir=None, echo=print, max_cells: int = grid_.MAX_CELLS) -> dict:
    """Run (or with dry_run, plan) a recipe. Returns a summary dict; the store is
    `<run_dir>/store.sqlite` (run_dir default: runs/<recipe name>)."""
    recipe = _resolve_recipe(recipe, overrides)
    size = grid_.count(recipe)
    if size > max_cells:
        raise AdapterxlError(f"recipe {recipe.source}: the grid has {size:,} cells, more than "
                             f"the limit of {max_cells:,}; shrink it, or raise the limit with "
                             f"--max-cells {size}")
    seconds = budget if isinstance(budget, (int, float)) else parse_budget(budget)
    part = shard if isinstance(shard, tuple) else parse_shard(shard)
    cells = grid_.expand(recipe)
    selected = grid_.shard(cells, *part) if part else grid_.order(cells)
    run_dir = Path(run_dir) if run_dir else Path("runs") / recipe.name
    cache = ModuleCache(cache_dir or recipe.cache, echo=echo)
    if dry_run:
        return plan(recipe, cells, selected, run_dir, cache, part, seconds, echo)
    return _run(recipe, cells, selected, run_dir, cache, part, seconds, echo)


# --- the plan ---------------------------------------------------------------------------------

def plan(recipe: Recipe, cells, selected, run_dir: Path, cache: ModuleCache, part, budget,
         echo=print) -> dict:
    """What a run would do: cells, modules to train vs reuse, estimated cost. Reads the store
    when the run directory has one (finished cells, measured throughput); writes nothing."""
    stored, throughput, known_tokens = {}, {}, {}
    db = run_dir / "store.sqlite"
    other = None
    if db.is_file():
        with Store(db) as store:
            if store.run_info().get("recipe_hash") not in (None, recipe.hash):
                other = (f"note: {run_dir} holds a run of another recipe (or other "
                         f"overrides); running this one there would be refused")
            stored = store.cells()
            throughput = store.throughput()
            for m in store.modules():
                if m["tokens"]:
                    known_tokens.setdefault((m["backbone"], m["label"], m["role"]), []) \
                        .append(m["tokens"])
    todo, done, skipped = [], [], []
    to_train, cached = {}, {}
    for cell in selected:
        status = stored.get(cell.id, {}).get("status")
        if cell.skip:
            skipped.append(cell)
            continue
        if status == "done":
            done.append(cell)
            continue
        todo.append(cell)
        for m in cell.modules:
            if m.key in to_train or m.key in cached:
                continue
            if cache.lookup(m.key, m.task) is not None:
                cached[m.key] = m
            else:
                to_train[m.key] = m
    tokens, unknown = 0, []
    seconds = 0.0
    for m in to_train.values():
        t = _estimate_tokens(recipe, m, known_tokens)
        tps = throughput.get(m.backbone.name)
        if t is None or not tps:
            unknown.append(m)
            continue
        tokens += t
        seconds += t / tps
    lines = [f"recipe {recipe.name} ({recipe.source}, hash {recipe.hash[:12]}); run directory "
             f"{run_dir}; module cache {cache.root}"]
    if recipe.overrides:
        lines.append(f"overrides: {' '.join(recipe.overrides)}")
    if other:
        lines.append(other)
    shard_note = f" (shard {part[0]}/{part[1]}: {len(selected)} of {len(cells)})" if part else ""
    lines.append(f"cells: {len(cells)}{shard_note}; to run {len(todo)}, done {len(done)}, "
                 f"skipped {len(skipped)}")
    lines.append(f"modules: {len(to_train)} to train, {len(cached)} reused from the cache")
    if not to_train:
        cost = "nothing to train"
    elif unknown:
        why = ("no measured throughput in this run's store yet" if not throughput
               else f"{len(unknown)} module(s) without a token estimate or throughput")
        cost = f"unknown ({why})"
    else:
        cost = f"about {_duration(seconds)} of device time for {tokens:,} training tokens " \
               f"(measured tokens/s from this run's store; evaluation not counted)"
    lines.append(f"estimated training cost: {cost}")
    if budget:
        lines.append(f"budget: {_duration(budget)} (cells run in the order below; the rest stay "
                     f"pending)")
    notes = [n for n in (memory_plan(c) for c in todo) if n]
    lines.append("memory (adapterxl plan, H100; checked on the CPU, not yet on a GPU): "
                 + ("; ".join(dict.fromkeys(notes)) if notes else
                    "every module whose config is local fits at its batch size")
                 + (f" (not planned: {', '.join(sorted(_unreadable))}: config not in the "
                    f"local cache; `adapterxl plan --model ID` fetches only the config)"
                    if _unreadable else ""))
    lines.append("")
    lines.append("order | cell | status | modules to train / cached")
    for i, cell in enumerate(selected):
        status = ("skipped" if cell.skip else
                  stored.get(cell.id, {}).get("status") or "pending")
        mods = cell.modules
        n_train = sum(1 for m in mods if m.key in to_train)
        lines.append(f"{i + 1} | {cell.id} | {status} | {n_train} / {len(mods) - n_train}")
    if skipped:
        lines.append("")
        lines.append("skipped cells:")
        for cell in skipped:
            lines.append(f"  {cell.id}: {cell.skip}")
    if to_train:
        lines.append("")
        lines.append("modules to train:")
        for m in to_train.values():
            lines.append(f"  {m.label} ({m.role}, {m.backbone.name}, {m.method}, seed {m.seed}"
                         f"{', ' + m.how + ' on ' + '/'.join(x.label for x in m.lower) if m.lower else ''})"
                         f" -> {cache.path(m.key, m.task)}")
    for line in lines:
        echo(line)
    return {"dry_run": True, "cells": len(cells), "selected": len(selected), "to_run": len(todo),
            "done": len(done), "skipped": len(skipped), "modules_to_train": len(to_train),
            "modules_cached": len(cached), "estimated_seconds": None if unknown else seconds,
            "text": "\n".join(lines)}


def _estimate_tokens(recipe: Recipe, m: grid_.ModuleSpec, known: dict) -> int | None:
    seen = known.get((m.backbone.name, m.label, m.role))
    if seen:
        return int(sum(seen) / len(seen))
    s = recipe.settings(m.role)
    if s.get("max_steps") and s.get("batch_size") and s.get("max_length"):
        return s["max_steps"] * s["batch_size"] * s["max_length"]  # an upper bound
    return None


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} device-h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


# --- the run ---------------------------------------------------------------------------------

def _run(recipe: Recipe, cells, selected, run_dir: Path, cache: ModuleCache, part, budget,
         echo) -> dict:
    from .._version import versions

    store = Store(run_dir / "store.sqlite")
    try:
        store.init_run({
            "recipe": recipe.text, "recipe_hash": recipe.hash, "versions": dumps(versions()),
            "git_commit": git_commit(Path.cwd()) or "", "created": str(time.time()),
            "name": recipe.name, "overrides": dumps(list(recipe.overrides)),
            "resolved": dumps(recipe.raw),
        })
        store.add_cells([{**c.row(), "task": c.task, "skip": c.skip, "priority": c.priority,
                          "position": c.index} for c in cells])
        label = f" shard {part[0]}/{part[1]}," if part else ""
        echo(f"run {recipe.name}:{label} {len(selected)} cells; store {store.path}; module "
             f"cache {cache.root}")
        spent, ran, trained, reused, stopped = 0.0, 0, 0, 0, False
        for i, cell in enumerate(selected):
            row = store.cell(cell.id) or {}
            if row.get("status") in ("done", "skipped"):
                continue
            if budget is not None and spent >= budget:
                stopped = True
                break
            echo(f"[{i + 1}/{len(selected)}] {cell.id}")
            out = run_cell(recipe, cell, store, cache, run_dir, echo)
            spent += out["device_seconds"]
            trained += out["trained"]
            reused += out["reused"]
            ran += 1
        counts = {s: 0 for s in ("pending", "running", "done", "failed", "skipped")}
        ids = {c.id for c in selected}
        for cid, row in store.cells().items():
            if cid in ids:
                counts[row["status"]] += 1
        summary = {"run_dir": str(run_dir), "store": str(store.path), "cells": len(selected),
                   "ran": ran, "modules_trained": trained, "modules_reused": reused,
                   "device_seconds": round(spent, 2), "budget_seconds": budget,
                   "stopped_for_budget": stopped, **counts}
        echo(f"done {counts['done']}, failed {counts['failed']}, skipped {counts['skipped']}, "
             f"pending {counts['pending']} (of {len(selected)}); this invocation: {ran} cells, "
             f"{trained} modules trained, {reused} reused, {_duration(spent)}")
        if stopped:
            echo(f"budget of {_duration(budget)} spent: {counts['pending']} cells left pending; "
                 f"run again (with a new --budget) to continue")
        if counts["failed"]:
            echo("failed cells are retried by the next run; errors are in the store "
                 "(cells.error)")
        return summary
    finally:
        store.close()


def _train_config(recipe: Recipe, spec: grid_.ModuleSpec, path: Path, resume: bool,
                  paths: dict, run_dir: Path | None = None) -> TrainConfig:
    settings = recipe.settings(spec.role)
    allowed = {f.name for f in fields(TrainConfig)}
    kw = {k: v for k, v in settings.items() if k in allowed}
    if spec.backbone.precision:
        kw["precision"] = spec.backbone.precision
    if recipe.tracking.get("report_to", "none") != "none" and run_dir is not None:
        # Tracking is not part of the module's cache key: it changes nothing it computes.
        kw.update(report_to=recipe.tracking["report_to"],
                  logging_steps=recipe.tracking.get("logging_steps", 10),
                  tracking_dir=str(Path(run_dir) / "tracking"), tracking_project=recipe.name)
    lower = [paths[m.key] for m in spec.lower]
    return TrainConfig(
        task=spec.task, output=str(path), model=spec.backbone.model, method=spec.method,
        quantize=spec.backbone.quantize, data=spec.data, data_dir=spec.data_dir,
        seed=spec.seed, resume=resume,
        overwrite=True,  # the cache's own folder, under the key's lock: a half-finished entry
        stack=lower if spec.how == "stack" else [],
        init_from=lower[0] if spec.how == "init_from" else None,
        fuse=lower if spec.how == "fuse" else [], **kw)


def _peak_memory() -> int | None:
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except (ImportError, OSError):
        return None


def run_cell(recipe: Recipe, cell: grid_.Cell, store: Store, cache: ModuleCache,
             run_dir: Path, echo=print) -> dict:
    """Train (or reuse) the cell's modules, evaluate, record. Errors mark the cell failed (and
    the run goes on); an interrupt puts it back to pending and propagates."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    store.start_cell(cell.id, socket.gethostname())
    start = time.perf_counter()
    paths, tokens, trained, reused = {}, 0, 0, 0
    top_entry = None
    try:
        for spec in cell.modules:
            def train(path, resume, spec=spec):
                what = "resuming" if resume else "training"
                echo(f"  {what} {spec.label} ({spec.role}) -> {path}")
                return train_module(_train_config(recipe, spec, path, resume, paths, run_dir),
                                    progress=False)

            entry, now = cache.ensure(spec.key, spec.task, spec.material(), train)
            paths[spec.key] = entry["path"]
            store.record_module(spec, entry, now)
            if now:
                trained += 1
                tokens += int(entry.get("tokens") or 0)
            else:
                reused += 1
                echo(f"  reusing {spec.label} ({spec.role}) from {entry['path']}")
            if spec.key == cell.top.key:
                top_entry = entry
        languages, why = grid_.eval_languages(recipe, cell.task)
        if not languages:
            raise AdapterxlError(why)
        ev = recipe.evaluate
        result = evaluate(cell.task, paths[cell.top.key], languages=",".join(languages),
                          data=recipe.data, data_dir=recipe.data_dirs.get(cell.task),
                          split=ev.split, output=str(run_dir / "cells" / _safe(cell.id)),
                          precision=cell.backbone.precision, quantize=cell.backbone.quantize,
                          batch_size=ev.batch_size, max_length=ev.max_length,
                          max_examples=ev.max_examples)
        store.put_metrics(cell.id, cell.task, result["per_language"])
        seconds = time.perf_counter() - start
        score = result.get("score")
        store.finish_cell(cell.id, "done", module=paths[cell.top.key],
                          device_seconds=seconds, tokens=tokens,
                          peak_memory_bytes=_peak_memory(),
                          score=None if score is None or (isinstance(score, float)
                                                          and math.isnan(score)) else score,
                          parameters=(top_entry or {}).get("trainable_parameters"),
                          metric=result.get("metric"), languages=",".join(languages),
                          trained_modules=trained, reused_modules=reused)
        echo(f"  score {score if score is None else round(score, 4)} "
             f"({result.get('metric')}, {len(result['per_language'])} languages, "
             f"{seconds:.1f} s)")
    except KeyboardInterrupt:
        store.reset_cell(cell.id)
        raise
    except Stopped as e:  # preempted: the module's checkpoint is kept; running again resumes
        store.reset_cell(cell.id)
        raise Stopped(f"{str(e).split(';')[0]}; run the recipe again to continue (finished "
                      f"cells are kept, this training resumes from its checkpoint)",
                      e.signum) from None
    except Exception as e:  # one cell failing does not stop the grid
        seconds = time.perf_counter() - start
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        error = text if isinstance(e, AdapterxlError) else f"{type(e).__name__}: {text}"
        store.finish_cell(cell.id, "failed", error=error, device_seconds=seconds, tokens=tokens,
                          trained_modules=trained, reused_modules=reused)
        echo(f"  failed: {error}")
    return {"device_seconds": time.perf_counter() - start, "trained": trained,
            "reused": reused}


def _safe(cid: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in cid.replace("|", "__"))
