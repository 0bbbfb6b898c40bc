"""The report of an experiment run: markdown tables and plots read from `<run>/store.sqlite`.

`build_report(run)` writes `<run>/report/report.md` and PNG figures:

- per target task, a table of per-language scores (x100, mean over seeds) per
  (backbone, method, intermediate, composition), with the task score (mean ± std over seeds);
- the gain of each intermediate over the no-intermediate baseline (`intermediate = "none"`) of
  the same (backbone, method, target): per seed `score - baseline score` (the baseline of the
  same seed when it exists, else the baseline's mean), mean ± sample std (ddof=1) over seeds;
- XTREME / XTREME-R scores for configurations that have every task of the suite;
- cost per cell (device seconds, GPU-hours, tokens, parameters, peak memory);
- figures: a gain heatmap intermediate × target (as in Phang et al. 2020), per-language bars
  for one target, scaling curves (score vs parameters and vs GPU-hours) when several backbones
  are present, order effects (A>B vs B>A) when sequences are present.

Whatever is missing (no baseline, one backbone, no sequences, a partial suite) is said in the
report's notes instead of failing.
"""
from __future__ import annotations

import json
import math
import sqlite3
import statistics
from collections import defaultdict
from pathlib import Path

from .. import _io
from ..errors import AdapterxlError

BASELINE = "none"
STORE = "store.sqlite"
_CELL_COLUMNS = ("id", "backbone", "method", "intermediate", "composition", "target", "seed",
                 "status", "module", "error", "device_seconds", "tokens", "peak_memory_bytes",
                 "started", "finished", "score", "parameters")


# ----------------------------------------------------------------------------- reading

def load_run(run_dir) -> dict:
    """The store of a run as plain Python: {"run": {key: value}, "cells": [dict],
    "metrics": [dict], "modules": [dict]} (only read; columns the runner adds come along)."""
    path = Path(run_dir) / STORE
    if not path.is_file():
        raise AdapterxlError(f"{run_dir}: no {STORE} (is this a run directory written by "
                             f"`adapterxl run`?)")
    try:
        # Not mode=ro: the runner's store is in WAL mode, which a read-only connection cannot
        # always open; we only SELECT.
        con = sqlite3.connect(str(path), timeout=60)
    except sqlite3.Error as e:
        raise AdapterxlError(f"{path}: cannot open the store ({e})") from e
    con.row_factory = sqlite3.Row
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = {"run", "cells", "metrics"} - tables
        if missing:
            raise AdapterxlError(f"{path}: not a run store (missing tables: "
                                 f"{', '.join(sorted(missing))})")
        run = {r["key"]: r["value"] for r in con.execute("SELECT key, value FROM run")}
        cells = [dict(r) for r in con.execute("SELECT * FROM cells ORDER BY id")]
        metrics = [dict(r) for r in con.execute("SELECT * FROM metrics")]
        modules = ([dict(r) for r in con.execute("SELECT * FROM modules ORDER BY key")]
                   if "modules" in tables else [])
    except sqlite3.DatabaseError as e:
        raise AdapterxlError(f"{path}: unreadable store ({e})") from e
    finally:
        con.close()
    return {"run": run, "cells": cells, "metrics": metrics, "modules": modules}


def done_cells(store: dict) -> list[dict]:
    """Cells that finished with a score."""
    return [c for c in store["cells"] if c.get("status") == "done" and c.get("score") is not None]


# ----------------------------------------------------------------------------- numbers

def mean_std(values) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1; None for a single value)."""
    values = [float(v) for v in values]
    if not values:
        return float("nan"), None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _pts(value, digits: int = 1, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = 100 * value + 0.0  # no "-0.0"
    if round(value, digits) == 0:
        value = 0.0
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _pm(mean: float, std: float | None, sign: bool = False) -> str:
    text = _pts(mean, sign=sign)
    return text if std is None else f"{text} ± {_pts(std)}"


def _language_value(task: str, values: dict[str, float]) -> float:
    """A task's number for one language from its metric values (QA: (EM+F1)/2)."""
    from ..scoring.metrics import task_score
    from ..tasks import get_task

    try:
        return task_score(get_task(task).metric, values)
    except (AdapterxlError, ValueError, KeyError):
        return statistics.fmean(values.values())


def per_language(store: dict) -> dict[str, dict[str, float]]:
    """{cell id: {language: value}} for each cell's target task (values in [0, 1])."""
    grouped: dict = defaultdict(lambda: defaultdict(dict))
    targets = {c["id"]: c["target"] for c in store["cells"]}
    for m in store["metrics"]:
        if targets.get(m["cell"]) == m["task"] and m["value"] is not None:
            grouped[m["cell"]][m["language"]][m["metric"]] = m["value"]
    return {cell: {lang: _language_value(targets[cell], vals) for lang, vals in langs.items()}
            for cell, langs in grouped.items()}


def _config(c: dict) -> tuple:
    return (c["backbone"], c["method"], c["intermediate"], c["composition"])


def _label(intermediate: str, composition: str) -> str:
    if intermediate == BASELINE:
        return "none (baseline)"
    return intermediate if composition in ("stack", BASELINE) else f"{intermediate} ({composition})"


def _lang_order(langs) -> list[str]:
    return sorted(langs, key=lambda lang: (lang != "en", lang))


def gains(store: dict) -> tuple[list[dict], list[str]]:
    """Gains over the no-intermediate baseline, one row per (backbone, method, target,
    intermediate, composition); and notes on what has no baseline."""
    cells = done_cells(store)
    base: dict = defaultdict(dict)
    for c in cells:
        if c["intermediate"] == BASELINE:
            base[(c["backbone"], c["method"], c["target"])][c["seed"]] = c["score"]
    groups: dict = defaultdict(dict)
    for c in cells:
        if c["intermediate"] != BASELINE:
            groups[(c["backbone"], c["method"], c["target"], c["intermediate"],
                    c["composition"])][c["seed"]] = c["score"]
    rows, missing = [], set()
    for key in sorted(groups):
        backbone, method, target, intermediate, composition = key
        scores = groups[key]
        baseline = base.get((backbone, method, target))
        if not baseline:
            missing.add((backbone, method, target))
            continue
        base_mean = statistics.fmean(baseline.values())
        per_seed = {s: v - baseline.get(s, base_mean) for s, v in sorted(scores.items())}
        gain, gain_std = mean_std(per_seed.values())
        score, score_std = mean_std(scores.values())
        rows.append({"backbone": backbone, "method": method, "target": target,
                     "intermediate": intermediate, "composition": composition,
                     "seeds": sorted(scores), "score": score, "score_std": score_std,
                     "baseline": base_mean, "baseline_seeds": sorted(baseline),
                     "gain": gain, "gain_std": gain_std, "per_seed_gain": per_seed,
                     "paired": all(s in baseline for s in scores)})
    notes = [f"no baseline (intermediate 'none') for {t} on {b} / {m}: gains not computed"
             for b, m, t in sorted(missing)]
    return rows, notes


def suite_scores(store: dict) -> tuple[list[dict], list[str]]:
    """XTREME / XTREME-R scores (suite_score of the tasks' mean scores over seeds) for each
    (backbone, method, intermediate, composition) that has every task of the suite."""
    from ..scoring.metrics import suite_score
    from ..tasks import suite_tasks

    scores: dict = defaultdict(lambda: defaultdict(list))
    for c in done_cells(store):
        scores[_config(c)][c["target"]].append(c["score"])
    rows, notes = [], []
    for suite in ("xtreme", "xtreme-r"):
        names = [t.name for t in suite_tasks(suite)]
        partial = []
        for config in sorted(scores):
            have = {t: statistics.fmean(v) for t, v in scores[config].items() if t in names}
            if len(have) == len(names):
                rows.append({"suite": suite, "backbone": config[0], "method": config[1],
                             "intermediate": config[2], "composition": config[3],
                             "score": suite_score(have), "tasks": have})
            elif have:
                partial.append((len(have), config, [t for t in names if t not in have]))
        if partial:
            n, config, missing = max(partial, key=lambda p: p[0])
            notes.append(f"{suite.upper()} incomplete for {len(partial)} configuration(s) "
                         f"(at most {n}/{len(names)} tasks, e.g. {config[0]} / {config[1]} / "
                         f"{_label(config[2], config[3])} lacks {', '.join(missing)}): no "
                         f"benchmark score for them")
    return rows, notes


# ----------------------------------------------------------------------------- tables

def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return out


def target_tables(store: dict, gain_rows: list[dict]) -> dict[str, str]:
    """{target: markdown table} of per-language scores (x100, mean over seeds)."""
    cells = done_cells(store)
    langs_of = per_language(store)
    gain_of = {(g["backbone"], g["method"], g["target"], g["intermediate"], g["composition"]): g
               for g in gain_rows}
    out = {}
    for target in sorted({c["target"] for c in cells}):
        mine = [c for c in cells if c["target"] == target]
        langs = _lang_order({lang for c in mine for lang in langs_of.get(c["id"], {})})
        by_config: dict = defaultdict(list)
        for c in mine:
            by_config[_config(c)].append(c)
        rows = []
        for config in sorted(by_config, key=lambda k: (k[0], k[1], k[2] != BASELINE, k[2], k[3])):
            group = by_config[config]
            values = []
            for lang in langs:
                got = [langs_of[c["id"]][lang] for c in group if lang in langs_of.get(c["id"], {})]
                values.append(statistics.fmean(got) if got else None)
            present = [v for v in values if v is not None]
            score, std = mean_std(c["score"] for c in group)
            g = gain_of.get((config[0], config[1], target, config[2], config[3]))
            rows.append([config[0], config[1], _label(config[2], config[3])]
                        + [_pts(v) for v in values]
                        + [_pts(statistics.fmean(present)) if present else "–", _pm(score, std),
                           _pm(g["gain"], g["gain_std"], sign=True) if g else "–",
                           ",".join(str(s) for s in sorted(c["seed"] for c in group))])
        head = ["backbone", "method", "intermediate"] + langs + ["avg", "score", "gain", "seeds"]
        out[target] = "\n".join(_table(head, rows))
    return out


def cost_table(store: dict) -> str:
    rows, total = [], defaultdict(float)
    for c in store["cells"]:
        sec = c.get("device_seconds")
        mem = c.get("peak_memory_bytes")
        rows.append([c["id"], c["backbone"], c["method"], _label(c["intermediate"],
                     c["composition"]), c["target"], c["seed"], c["status"],
                     "–" if sec is None else f"{sec:.1f}",
                     "–" if sec is None else f"{sec / 3600:.4f}",
                     "–" if c.get("tokens") is None else f"{c['tokens']:,}",
                     "–" if c.get("parameters") is None else f"{c['parameters']:,}",
                     "–" if mem is None else f"{mem / 2**20:.0f}",
                     "–" if c.get("finished") is None else _date(c["finished"])])
        total["seconds"] += sec or 0
        total["tokens"] += c.get("tokens") or 0
    lines = _table(["cell", "backbone", "method", "intermediate", "target", "seed", "status",
                    "device s", "GPU-h", "tokens", "trainable params", "peak MiB", "finished"],
                   rows)
    lines.append(f"| **total** | | | | | | | {total['seconds']:.1f} | "
                 f"{total['seconds'] / 3600:.4f} | {int(total['tokens']):,} | | | |")
    mods = store.get("modules") or []
    if mods:
        reused = sum(1 for m in mods if m.get("reused"))
        sec = sum(m.get("device_seconds") or 0 for m in mods)
        lines += ["", f"Modules: {len(mods)} in the store ({reused} reused from an earlier run), "
                      f"{sec:.1f} device seconds to train them."]
    return "\n".join(lines)


def order_effects(store: dict) -> list[dict]:
    """Pairs of sequences A>B and B>A with the same (backbone, method, target, composition)."""
    scores: dict = defaultdict(list)
    for c in done_cells(store):
        if ">" in c["intermediate"]:
            scores[(c["backbone"], c["method"], c["target"], c["composition"],
                    c["intermediate"])].append(c["score"])
    rows = []
    for (b, m, t, comp, seq), vals in sorted(scores.items()):
        rev = ">".join(reversed(seq.split(">")))
        if rev == seq or seq > rev or (b, m, t, comp, rev) not in scores:
            continue
        ab, ab_std = mean_std(vals)
        ba, ba_std = mean_std(scores[(b, m, t, comp, rev)])
        rows.append({"backbone": b, "method": m, "target": t, "composition": comp, "ab": seq,
                     "ba": rev, "ab_score": ab, "ab_std": ab_std, "ba_score": ba,
                     "ba_std": ba_std, "difference": ab - ba})
    return rows


# ----------------------------------------------------------------------------- figures

def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise AdapterxlError(f"the report's figures need matplotlib ({e}); "
                             f"pip install matplotlib") from e

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return str(path)


def _slug(*parts) -> str:
    text = "-".join(str(p) for p in parts)
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def plot_gain_heatmap(gain_rows: list[dict], backbone: str, method: str, path: Path) -> str:
    import numpy as np

    rows = [g for g in gain_rows if g["backbone"] == backbone and g["method"] == method]
    inter = sorted({(g["intermediate"], g["composition"]) for g in rows})
    targets = sorted({g["target"] for g in rows})
    grid = np.full((len(inter), len(targets)), np.nan)
    for g in rows:
        grid[inter.index((g["intermediate"], g["composition"])), targets.index(g["target"])] = \
            100 * g["gain"]
    limit = max(float(np.nanmax(np.abs(grid))), 0.1)
    fig = _figure(1.6 + 1.1 * len(targets), 1.6 + 0.5 * len(inter))
    import matplotlib
    from matplotlib.colors import TwoSlopeNorm

    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto",
                      norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit))
    for i in range(len(inter)):
        for j in range(len(targets)):
            text = "n/a" if math.isnan(grid[i, j]) else f"{grid[i, j]:+.1f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(targets)), targets, rotation=30, ha="right")
    ax.set_yticks(range(len(inter)), [_label(*k) for k in inter])
    ax.set_xlabel("target task (zero-shot, mean over evaluated languages)")
    ax.set_ylabel("intermediate task")
    ax.set_title(f"Gain over no-intermediate baseline\n{backbone}, {method}", fontsize=10)
    cbar = fig.colorbar(image, ax=ax)
    cbar.set_label("gain (score points, mean over seeds)")
    return _save(fig, path)


def plot_language_bars(store: dict, target: str, path: Path, max_series: int = 8) -> str:
    import numpy as np

    langs_of = per_language(store)
    cells = [c for c in done_cells(store) if c["target"] == target and c["id"] in langs_of]
    counts: dict = defaultdict(int)
    for c in cells:
        counts[(c["backbone"], c["method"])] += 1
    backbone, method = max(counts, key=lambda k: (counts[k], k))
    cells = [c for c in cells if (c["backbone"], c["method"]) == (backbone, method)]
    langs = _lang_order({lang for c in cells for lang in langs_of[c["id"]]})
    by_config: dict = defaultdict(list)
    for c in cells:
        by_config[(c["intermediate"], c["composition"])].append(c)
    order = sorted(by_config, key=lambda k: (k[0] != BASELINE,
                                             -statistics.fmean(c["score"] for c in by_config[k])))
    order = order[:max_series]
    fig = _figure(max(6.0, 0.9 * len(langs) * max(1, len(order)) / 3 + 3), 4.2)
    ax = fig.add_subplot()
    width = 0.8 / len(order)
    x = np.arange(len(langs))
    for i, key in enumerate(order):
        means, stds = [], []
        for lang in langs:
            vals = [100 * langs_of[c["id"]][lang] for c in by_config[key]
                    if lang in langs_of[c["id"]]]
            means.append(statistics.fmean(vals) if vals else np.nan)
            stds.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
        ax.bar(x + (i - (len(order) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
               label=_label(*key))
    ax.set_xticks(x, langs)
    ax.set_xlabel("language (zero-shot; en = training language)")
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{target}: score per language by intermediate task\n{backbone}, {method} "
                 f"(mean over seeds, error bars: std)", fontsize=10)
    ax.legend(title="intermediate", fontsize=7, title_fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def plot_scaling(store: dict, path: Path, max_series: int = 10) -> str:
    cells = done_cells(store)
    series: dict = defaultdict(lambda: defaultdict(list))
    for c in cells:
        series[(c["target"], c["method"], c["intermediate"], c["composition"])][
            c["backbone"]].append(c)
    keys = sorted(series, key=lambda k: (-len(series[k]), k))[:max_series]
    fig = _figure(14, 4.8)
    axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    for key in sorted(keys):
        pts = []
        for backbone, group in series[key].items():
            params = [c["parameters"] for c in group if c.get("parameters")]
            secs = [c["device_seconds"] for c in group if c.get("device_seconds") is not None]
            pts.append((statistics.fmean(params) if params else None,
                        statistics.fmean(secs) / 3600 if secs else None,
                        100 * statistics.fmean(c["score"] for c in group)))
        label = f"{key[0]} · {key[1]} · {_label(key[2], key[3])}"
        for ax, idx in zip(axes, (0, 1)):
            xy = sorted((p[idx], p[2]) for p in pts if p[idx])
            if xy:
                ax.plot([p[0] for p in xy], [p[1] for p in xy], marker="o", label=label)
    axes[0].set_xlabel("trainable parameters of the cell's module (grow with backbone size; log)")
    axes[1].set_xlabel("GPU-hours per cell (device seconds / 3600; log scale)")
    for ax, what in zip(axes, ("parameters", "compute")):
        ax.set_xscale("log")
        ax.set_ylabel("target score (%)")
        ax.set_title(f"Scaling with {what} (one point per backbone)", fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].legend(title="target · method · intermediate", fontsize=7, title_fontsize=8,
                   loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _save(fig, path)


def plot_order_effects(rows: list[dict], path: Path) -> str:
    import numpy as np

    fig = _figure(max(5.0, 1.0 * len(rows) + 2.5), 5.0)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [100 * r["ab_score"] for r in rows], 0.4,
           yerr=[100 * (r["ab_std"] or 0) for r in rows], capsize=2, label="A>B (as named first)")
    ax.bar(x + 0.2, [100 * r["ba_score"] for r in rows], 0.4,
           yerr=[100 * (r["ba_std"] or 0) for r in rows], capsize=2, label="B>A (reversed)")
    ax.set_xticks(x, [f"{r['ab']} / {r['ba']} → {r['target']}\n{r['backbone']}, {r['method']}"
                      for r in rows], fontsize=7, rotation=30, ha="right")
    ax.set_xlabel("intermediate sequence → target (backbone, method)")
    ax.set_ylabel("target score (%)")
    ax.set_title("Order effects of intermediate-task sequences (mean over seeds)", fontsize=10)
    ax.legend(title="order (A>B: A trained first)", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


# ----------------------------------------------------------------------------- the report

def _date(value) -> str:
    """A store timestamp (seconds since the epoch, as a number or text) as a UTC date."""
    import datetime

    try:
        return datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return "?" if value in (None, "") else str(value)


def markdown_tables(md: list[str]) -> dict[str, dict]:
    """{title: {"columns": [...], "rows": [[...], ...]}} of the tables in report lines, each
    named after the heading above it (numbered when a heading holds several)."""
    md = "\n".join(md).splitlines()  # some entries are whole tables
    tables, title, i = {}, "report", 0
    while i < len(md):
        line = md[i]
        if line.startswith("#"):
            title = line.lstrip("#").strip()
        if line.startswith("| ") and i + 1 < len(md) and md[i + 1].startswith("|---"):
            columns = [c.strip() for c in line.strip().strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(md) and md[i].startswith("|"):
                rows.append([c.strip() for c in md[i].strip().strip("|").split("|")])
                i += 1
            name, n = title, 2
            while name in tables:
                name, n = f"{title} ({n})", n + 1
            tables[name] = {"columns": columns, "rows": rows}
            continue
        i += 1
    return tables


def _export(out: Path, md: list[str], export, payload: dict) -> list[str]:
    import csv
    import io

    written = []
    tables = markdown_tables(md)
    if "csv" in export:
        for name, table in tables.items():
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(table["columns"])
            writer.writerows(table["rows"])
            path = out / "tables" / f"{_slug(name)}.csv"
            _io.write_text(path, buf.getvalue())
            written.append(str(path))
    if "json" in export:
        path = out / "report.json"
        _io.write_json(path, {**payload, "tables": tables})
        written.append(str(path))
    return written


EXPORTS = ("csv", "json")


def _header(info: dict, cells: list[dict], run_dir) -> list[str]:
    """The report's title, the run's provenance and cell counts, and how to read the scores."""
    md = ["# Experiment report", "",
          f"- run: `{Path(run_dir).resolve()}`",
          f"- recipe hash: `{info.get('recipe_hash', '?')}`, git commit: "
          f"`{info.get('git_commit', '?')}`, created: {_date(info.get('created'))}"]
    status: dict = defaultdict(int)
    for c in cells:
        status[c["status"]] += 1
    md.append("- cells: " + (", ".join(f"{n} {s}" for s, n in sorted(status.items())) or "none"))
    if info.get("versions"):
        try:
            versions = json.loads(info["versions"])
            md.append("- versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
        except (ValueError, AttributeError):
            md.append(f"- versions: {info['versions']}")
    return md + ["", "Scores are x100 (QA: (EM+F1)/2), means over seeds; ± is the sample "
                     "standard deviation over seeds. A gain is score − the no-intermediate "
                     "baseline's score (same backbone, method, target; the same seed when the "
                     "baseline has it).", ""]


def _gain_section(gain_rows: list[dict], out: Path, fig_dir: Path, figures: list) -> list[str]:
    """The gains table and one heatmap per (backbone, method); appends the figures drawn."""
    md = ["## Gains over the no-intermediate baseline", ""]
    if not gain_rows:
        return md + ["No gains: no intermediate cell has a finished baseline to compare with.", ""]
    md += _table(["backbone", "method", "target", "intermediate", "gain", "score",
                  "baseline", "seeds"],
                 [[g["backbone"], g["method"], g["target"],
                   _label(g["intermediate"], g["composition"]),
                   _pm(g["gain"], g["gain_std"], sign=True), _pm(g["score"], g["score_std"]),
                   _pts(g["baseline"]), ",".join(map(str, g["seeds"]))] for g in gain_rows])
    md.append("")
    for backbone, method in sorted({(g["backbone"], g["method"]) for g in gain_rows}):
        name = f"gain-heatmap-{_slug(backbone, method)}.png"
        figures.append(plot_gain_heatmap(gain_rows, backbone, method, fig_dir / name))
        md += [f"![gain heatmap {backbone} {method}]"
               f"({Path(figures[-1]).relative_to(out).as_posix()})", ""]
    return md


def build_report(run_dir, output=None, target: str | None = None, export=()) -> dict:
    """Write `<output>/report.md` (default `<run_dir>/report/`) and its PNG figures; return
    {"report", "figures", "tables", "gains", "suites", "order_effects", "notes", "exported"}.
    `target` picks the per-language bar chart's task (default: the target with the most
    cells). `export` ("csv", "json") also writes every table as `tables/<name>.csv` and/or
    `report.json` (the tables, the gains, suite scores, order effects and cells, with numbers
    unrounded and dates as dates)."""
    for fmt in export:
        if fmt not in EXPORTS:
            from ..errors import unknown
            raise unknown("export format", fmt, EXPORTS)
    store = load_run(run_dir)
    out = Path(output) if output else Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    cells, done = store["cells"], done_cells(store)
    notes: list[str] = []
    figures: list[str] = []

    gain_rows, gain_notes = gains(store)
    suites, suite_notes = suite_scores(store)
    tables = target_tables(store, gain_rows)
    orders = order_effects(store)
    notes += gain_notes
    if not any(c["intermediate"] == BASELINE for c in done):
        notes.append("no baseline cell (intermediate 'none') finished: no gains, no heatmap")

    info = store["run"]
    md = _header(info, cells, run_dir)

    md += ["## Scores per target task and language", ""]
    if not tables:
        notes.append("no finished cell with a score: nothing to tabulate")
    for name, table in tables.items():
        md += [f"### {name}", "", table, ""]

    md += _gain_section(gain_rows, out, fig_dir, figures)

    md += ["## XTREME / XTREME-R", ""]
    if suites:
        md += _table(["suite", "backbone", "method", "intermediate", "score", "tasks"],
                     [[s["suite"], s["backbone"], s["method"],
                       _label(s["intermediate"], s["composition"]), _pts(s["score"]),
                       ", ".join(f"{t} {_pts(v)}" for t, v in s["tasks"].items())]
                      for s in suites])
        md.append("")
    else:
        md += ["No configuration covers every task of XTREME or XTREME-R: no benchmark score.",
               ""]
    notes += suite_notes

    if done:
        targets = sorted({c["target"] for c in done})
        chosen = target or max(targets, key=lambda t: (sum(c["target"] == t for c in done), t))
        if chosen not in targets:
            raise AdapterxlError(f"no finished cell has target {chosen!r}; targets: "
                                 f"{', '.join(targets)}")
        if any(c["target"] == chosen for c in done if c["id"] in per_language(store)):
            md += ["## Per-language scores", ""]
            figures.append(plot_language_bars(store, chosen,
                                              fig_dir / f"languages-{_slug(chosen)}.png"))
            md += [f"![{chosen} per language]({Path(figures[-1]).relative_to(out).as_posix()})",
                   ""]
        else:
            notes.append(f"no per-language metrics for {chosen}: no per-language chart")

    md += ["## Scaling", ""]
    backbones = sorted({c["backbone"] for c in done})
    if len(backbones) > 1:
        figures.append(plot_scaling(store, fig_dir / "scaling.png"))
        md += [f"Backbones: {', '.join(backbones)}.", "",
               f"![scaling]({Path(figures[-1]).relative_to(out).as_posix()})", ""]
    else:
        md += [f"One backbone ({backbones[0] if backbones else 'none finished'}): no scaling "
               f"curves.", ""]
        notes.append("one backbone: no scaling curves")

    md += ["## Order effects (A>B vs B>A)", ""]
    if orders:
        md += _table(["backbone", "method", "target", "A>B", "score A>B", "B>A", "score B>A",
                      "A>B − B>A"],
                     [[r["backbone"], r["method"], r["target"], r["ab"],
                       _pm(r["ab_score"], r["ab_std"]), r["ba"], _pm(r["ba_score"], r["ba_std"]),
                       _pts(r["difference"], sign=True)] for r in orders])
        figures.append(plot_order_effects(orders, fig_dir / "order-effects.png"))
        md += ["", f"![order effects]({Path(figures[-1]).relative_to(out).as_posix()})", ""]
    else:
        has_seq = any(">" in c["intermediate"] for c in done)
        md += ["No pair of sequences in both orders." if has_seq
               else "No intermediate-task sequences in this run.", ""]
        notes.append("no A>B / B>A pairs: no order effects")

    md += ["## Cost per cell", "", cost_table(store), ""]
    failed = [c for c in cells if c["status"] == "failed"]
    if failed:
        md += ["## Failed cells", ""]
        md += [f"- `{c['id']}`: " + ((c.get("error") or "").strip().splitlines() or
                                    ["no error recorded"])[0] for c in failed]
        md.append("")
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    report = out / "report.md"
    _io.write_text(report, "\n".join(md))
    dated = [{**c, "started": c.get("started") and _date(c["started"]),
              "finished": c.get("finished") and _date(c["finished"])} for c in cells]
    exported = _export(out, md, export, {
        "run": {**info, "created": _date(info.get("created"))}, "cells": dated,
        "gains": gain_rows, "suites": suites, "order_effects": orders, "notes": notes})
    return {"report": str(report), "figures": figures, "tables": tables, "gains": gain_rows,
            "suites": suites, "order_effects": orders, "notes": notes, "exported": exported}
