"""Reports and analyses of experiment runs (adapterxl.experiments.report / analyze, cli_report)."""
import importlib.util
import json
import math
import sqlite3
import statistics

import click
import numpy as np
import pytest
from click.testing import CliRunner

from adapterxl.errors import AdapterxlError
from adapterxl.experiments import analyze, report

PNG = b"\x89PNG\r\n\x1a\n"
SCHEMA = """
CREATE TABLE run(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE cells(id TEXT PRIMARY KEY, backbone TEXT, method TEXT, intermediate TEXT,
  composition TEXT, target TEXT, seed INTEGER, status TEXT, module TEXT, error TEXT,
  device_seconds REAL, tokens INTEGER, peak_memory_bytes INTEGER, started REAL, finished REAL,
  score REAL, parameters INTEGER);
CREATE TABLE metrics(cell TEXT, task TEXT, language TEXT, metric TEXT, value REAL,
  PRIMARY KEY (cell, task, language, metric));
CREATE TABLE modules(key TEXT PRIMARY KEY, path TEXT, task TEXT, role TEXT, device_seconds REAL,
  tokens INTEGER, created REAL, reused INTEGER);
"""


def make_store(run_dir, cells, metrics=(), modules=()):
    """A run store with the runner's schema. `cells`: dicts (missing columns get defaults);
    `metrics`: (cell, task, language, metric, value); `modules`: dicts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(run_dir / "store.sqlite")
    con.execute("PRAGMA journal_mode = WAL")  # as the runner's store
    con.executescript(SCHEMA)
    con.executemany("INSERT INTO run VALUES (?, ?)", [
        ("recipe", "name: test\n"), ("recipe_hash", "abc123"),
        ("versions", json.dumps({"adapterxl": "0.1.0"})), ("git_commit", "deadbeef"),
        ("created", "2026-01-01T00:00:00")])
    for i, c in enumerate(cells):
        row = {"id": f"cell{i}", "backbone": "b", "method": "seq_bn", "intermediate": "none",
               "composition": "none", "target": "xnli", "seed": 0, "status": "done",
               "module": None, "error": None, "device_seconds": 10.0, "tokens": 1000,
               "peak_memory_bytes": 2**20, "started": 0.0, "finished": 1.0, "score": 0.5,
               "parameters": 1000, **c}
        con.execute(f"INSERT INTO cells ({','.join(report._CELL_COLUMNS)}) VALUES "
                    f"({','.join('?' * len(report._CELL_COLUMNS))})",
                    [row[k] for k in report._CELL_COLUMNS])
    con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", list(metrics))
    for m in modules:
        con.execute("INSERT INTO modules VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [m.get(k) for k in ("key", "path", "task", "role", "device_seconds",
                                        "tokens", "created", "reused")])
    con.commit()
    con.close()
    return run_dir


def _train(task, output, **kw):
    from adapterxl.training import TrainConfig, train_module

    cfg = dict(task=task, output=str(output), model="builtin:tiny-xlmr", data="samples",
               max_steps=8, batch_size=16, max_length=64, lr=3e-3, evals=1)
    cfg.update(kw)
    return train_module(TrainConfig(**cfg), progress=False)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A run store filled from real tiny runs: intermediate modules (mnli, qqp, paws, stsb and
    the sequences mnli>qqp, qqp>mnli), targets xnli and pawsx stacked on them, baselines."""
    import torch

    from adapterxl.evaluation import evaluate

    # Two CPU cores shared with other processes: two torch threads each thrash (10x slower).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield _real_run(tmp_path_factory.mktemp("real-run"), evaluate)
    finally:
        torch.set_num_threads(threads)


def _real_run(root, evaluate):
    mods = root / "modules"
    inter, module_rows = {}, []
    for task in ("mnli", "qqp", "paws", "stsb"):
        r = _train(task, mods / task)
        inter[task] = r["module"]
        module_rows.append({"key": task, "path": r["module"], "task": task,
                            "role": "intermediate", "device_seconds": r["train_seconds"],
                            "tokens": r["tokens"], "created": 0.0, "reused": 0})
    for a, b in (("mnli", "qqp"), ("qqp", "mnli")):
        r = _train(b, mods / f"{a}-{b}", stack=[inter[a]])
        inter[f"{a}>{b}"] = r["module"]
        module_rows.append({"key": f"{a}>{b}", "path": r["module"], "task": b,
                            "role": "intermediate", "device_seconds": r["train_seconds"],
                            "tokens": r["tokens"], "created": 0.0, "reused": 0})
    plan = [("xnli", "none", 0), ("xnli", "none", 1), ("xnli", "mnli", 0), ("xnli", "mnli", 1),
            ("xnli", "qqp", 0), ("pawsx", "none", 0), ("pawsx", "mnli", 0),
            ("pawsx", "qqp", 0), ("pawsx", "paws", 0), ("pawsx", "stsb", 0),
            ("pawsx", "mnli>qqp", 0), ("pawsx", "qqp>mnli", 0)]
    cells, metrics = [], []
    for target, intermediate, seed in plan:
        cid = f"{target}-{intermediate.replace('>', '_')}-s{seed}"
        stack = [] if intermediate == "none" else [inter[intermediate]]
        r = _train(target, mods / cid, stack=stack, seed=seed)
        langs = "en,de,sw" if target == "xnli" else "en,de,es"
        e = evaluate(target, r["module"], languages=langs, data="samples", max_examples=30,
                     output=str(root / "eval" / cid))
        cells.append({"id": cid, "backbone": "builtin:tiny-xlmr", "intermediate": intermediate,
                      "composition": "none" if intermediate == "none" else "stack",
                      "target": target, "seed": seed, "module": r["module"],
                      "device_seconds": r["train_seconds"], "tokens": r["tokens"],
                      "parameters": r["trainable_parameters"], "score": e["score"]})
        metrics += [(cid, target, lang, k, v) for lang, vals in e["per_language"].items()
                    for k, v in vals.items()]
    cells.append({"id": "xnli-broken", "backbone": "builtin:tiny-xlmr", "intermediate": "paws",
                  "composition": "stack", "status": "failed", "score": None,
                  "error": "AdapterxlError: something broke\ntraceback"})
    return make_store(root / "run", cells, metrics, module_rows)


def _cells(run):
    return report.load_run(run)["cells"]


def _score(run, cid):
    return next(c["score"] for c in _cells(run) if c["id"] == cid)


# ----------------------------------------------------------------------------- report


def test_report_from_real_run(real_run, tmp_path):
    out = report.build_report(real_run)
    md_path = real_run / "report" / "report.md"
    assert out["report"] == str(md_path) and md_path.is_file()
    md = md_path.read_text()
    names = {p.split("/")[-1] for p in out["figures"]}
    assert {"gain-heatmap-builtin_tiny-xlmr-seq_bn.png", "languages-pawsx.png",
            "order-effects.png"} <= names
    for path in out["figures"]:
        with open(path, "rb") as f:
            assert f.read(8) == PNG
    # per-language numbers of a single-seed cell appear in its target's table
    store = report.load_run(real_run)
    values = {m["language"]: m["value"] for m in store["metrics"] if m["cell"] == "pawsx-qqp-s0"}
    row = next(line for line in out["tables"]["pawsx"].splitlines() if "| qqp |" in line)
    for lang in ("en", "de", "es"):
        assert f" {100 * values[lang]:.1f} " in row
    # gain = cell − baseline (same seed), by hand
    gain = _score(real_run, "xnli-qqp-s0") - _score(real_run, "xnli-none-s0")
    g = next(g for g in out["gains"] if g["target"] == "xnli" and g["intermediate"] == "qqp")
    assert g["gain"] == pytest.approx(gain) and g["gain_std"] is None
    row = next(line for line in out["tables"]["xnli"].splitlines() if "| qqp |" in line)
    assert f"{100 * gain:+.1f}" in row
    # order effects, missing pieces, failures, costs
    assert out["order_effects"][0]["ab"] == "mnli>qqp"
    assert out["order_effects"][0]["difference"] == pytest.approx(
        _score(real_run, "pawsx-mnli_qqp-s0") - _score(real_run, "pawsx-qqp_mnli-s0"))
    assert "one backbone: no scaling curves" in out["notes"]
    assert "xnli-broken" in md and "something broke" in md and "traceback" not in md
    assert "XTREME incomplete" in md and "GPU-h" in md
    # another output directory
    other = report.build_report(real_run, tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "report.md").is_file() and other["figures"]


def test_mean_std_over_two_seeds_by_hand(real_run):
    out = report.build_report(real_run)
    s = {cid: _score(real_run, cid) for cid in
         ("xnli-mnli-s0", "xnli-mnli-s1", "xnli-none-s0", "xnli-none-s1")}
    per_seed = [s["xnli-mnli-s0"] - s["xnli-none-s0"], s["xnli-mnli-s1"] - s["xnli-none-s1"]]
    mean = sum(per_seed) / 2
    std = math.sqrt(sum((d - mean) ** 2 for d in per_seed) / (2 - 1))
    g = next(g for g in out["gains"] if g["target"] == "xnli" and g["intermediate"] == "mnli")
    assert g["seeds"] == [0, 1] and g["paired"]
    assert g["gain"] == pytest.approx(mean) and g["gain_std"] == pytest.approx(std)
    score_mean = (s["xnli-mnli-s0"] + s["xnli-mnli-s1"]) / 2
    assert g["score"] == pytest.approx(score_mean)
    md = (real_run / "report" / "report.md").read_text()
    assert f"{100 * mean:+.1f} ± {100 * std:.1f}" in md


def test_report_synthetic_scaling_suites_and_missing_pieces(tmp_path):
    from adapterxl.tasks import suite_tasks

    xtreme = [t.name for t in suite_tasks("xtreme")]
    cells = []
    for bb, params, sec in (("small", 10**6, 3600.0), ("large", 10**7, 7200.0)):
        for t in ("xnli", "pawsx"):
            cells += [{"backbone": bb, "target": t, "score": 0.5, "parameters": params,
                       "device_seconds": sec},
                      {"backbone": bb, "target": t, "intermediate": "mnli",
                       "composition": "stack", "score": 0.6 if bb == "large" else 0.55,
                       "parameters": params, "device_seconds": sec}]
    # a complete XTREME for one configuration; one target without baseline
    cells += [{"backbone": "small", "method": "lora", "target": t, "score": 0.1 * (i % 5)}
              for i, t in enumerate(xtreme)]
    cells += [{"backbone": "small", "target": "udpos", "intermediate": "qqp",
               "composition": "stack", "score": 0.3}]
    cells += [{"backbone": "small", "status": "pending", "score": None}]
    run = make_store(tmp_path / "run", cells, [("cell0", "xnli", "en", "accuracy", 0.9),
                                                ("cell0", "xnli", "de", "accuracy", 0.4)])
    out = report.build_report(run)
    names = {p.split("/")[-1] for p in out["figures"]}
    assert "scaling.png" in names
    assert "languages-xnli.png" in names
    assert any("no baseline (intermediate 'none') for udpos on small / seq_bn" in n
               for n in out["notes"])
    [suite] = [s for s in out["suites"] if s["suite"] == "xtreme"]
    assert suite["method"] == "lora" and suite["score"] == pytest.approx(
        statistics.fmean(0.1 * (i % 5) for i in range(len(xtreme))))
    g = next(g for g in out["gains"] if g["backbone"] == "large" and g["target"] == "xnli")
    assert g["gain"] == pytest.approx(0.1)
    md = (run / "report" / "report.md").read_text()
    assert "| 90.0 | 40.0 |" in md and "+10.0" in md and "1 pending" in md


def test_report_without_finished_cells(tmp_path):
    run = make_store(tmp_path / "run", [{"status": "failed", "score": None, "error": "boom"}])
    out = report.build_report(run)
    assert out["figures"] == [] and out["gains"] == []
    text = (run / "report" / "report.md").read_text()
    assert "No gains" in text and "boom" in text


def test_report_errors(tmp_path):
    with pytest.raises(AdapterxlError, match="no store.sqlite"):
        report.build_report(tmp_path)
    (tmp_path / "store.sqlite").write_text("not a database")
    with pytest.raises(AdapterxlError, match="store"):
        report.build_report(tmp_path)


# ----------------------------------------------------------------------------- analyses


def test_linear_cka_properties():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(40, 5))
    assert analyze.linear_cka(x, x) == pytest.approx(1.0)
    assert analyze.linear_cka(x, y) == pytest.approx(analyze.linear_cka(y, x))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert analyze.linear_cka(x, 3 * x @ q + 1) == pytest.approx(1.0)
    assert 0 <= analyze.linear_cka(x, y) < 1
    with pytest.raises(ValueError):
        analyze.linear_cka(x, y[:10])


def test_similarity_on_real_run(real_run):
    out = analyze.similarity(real_run, max_examples=24)
    assert len(out["pairs"]) == 8  # xnli: mnli, qqp; pawsx: mnli, qqp, paws, stsb, 2 sequences
    gains = {(g["target"], g["intermediate"]): g["gain"]
             for g in report.build_report(real_run)["gains"]}
    for p in out["pairs"]:
        assert p["gain"] == pytest.approx(gains[(p["target"], p["intermediate"])])
    for p in out["pairs"]:
        assert 0 <= p["cka"] <= 1 + 1e-9
        assert -1 <= p["weight_cosine"] <= 1
        assert p["target_module"].endswith(f"{p['target']}-none-s0")
    seq = next(p for p in out["pairs"] if p["intermediate"] == "mnli>qqp")
    assert seq["intermediate_module"].endswith("01-qqp")  # the top of the stack: qqp on mnli
    for measure in ("cka", "weight_cosine"):
        rho = out["correlations"][measure]["spearman"]
        assert rho is not None and math.isfinite(rho) and -1 <= rho <= 1
        assert out["correlations"][measure]["pairs"] == 8
    # the same module on both sides: CKA 1
    reps = analyze._Representations(16)
    from adapterxl.modules import open_module
    mod = open_module(out["pairs"][0]["target_module"])
    a = reps(mod, "xnli", {"source": "samples"})
    assert analyze.linear_cka(a, a) == pytest.approx(1.0)


def test_typology():
    if importlib.util.find_spec("lang2vec") is None:
        with pytest.raises(AdapterxlError, match="lang2vec"):
            analyze.typology("en,de,sw", k=2)
        return
    out = analyze.typology("en,de,fr,sw,yo,ja", k=3)
    d = out["distances"]["typological"]
    assert out["codes"]["sw"] == "swa" and out["codes"]["yo"] == "yor"
    for a in out["languages"]:
        assert d[a][a] == 0
        for b in out["languages"]:
            assert d[a][b] == pytest.approx(d[b][a]) and 0 <= d[a][b] <= 1
    assert d["en"]["de"] < d["en"]["ja"]
    assert out["distances"]["genetic"]["en"]["de"] < out["distances"]["genetic"]["en"]["yo"]
    assert len(out["subset"]) == 3 and len(set(out["subset"])) == 3
    a, b = out["subset"][:2]  # starts with the farthest pair
    assert d[a][b] == max(d[x][y] for x in d for y in d)
    with pytest.raises(AdapterxlError, match="not in URIEL: xx"):
        analyze.typology("en,xx")
    with pytest.raises(AdapterxlError, match="--k"):
        analyze.typology("en,de", k=3)


# ----------------------------------------------------------------------------- CLI


def _cli():
    from adapterxl.cli import Group
    from adapterxl.cli.cmd_report import register

    @click.group(cls=Group)
    def main():
        pass

    register(main)
    return main


def test_cli(real_run, tmp_path):
    cli, runner = _cli(), CliRunner()
    res = runner.invoke(cli, ["report", str(real_run), "-o", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == str(tmp_path / "r" / "report.md")
    assert "note: one backbone: no scaling curves" in res.output
    res = runner.invoke(cli, ["analyze", "similarity", str(real_run), "--max-examples", "16",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.output)["correlations"]) == {"cka", "weight_cosine"}
    res = runner.invoke(cli, ["analyze", "typology", "--languages", "sw,yo,de,en", "--k", "2"])
    if importlib.util.find_spec("lang2vec") is None:
        assert res.exit_code == 2 and res.output.count("\n") == 1 and "lang2vec" in res.output
    else:
        assert res.exit_code == 0 and "diverse subset (k=2" in res.output
    res = runner.invoke(cli, ["report", str(tmp_path / "nothing")])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error:") and res.output.count("\n") == 1
    res = runner.invoke(cli, ["analyze", "similarity", str(real_run), "--probe-task", "mlni"])
    assert res.exit_code == 2 and "did you mean 'mnli'" in res.output
