"""Recipes, grid expansion, the module cache, the run store and the runner (adapterxl run)."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from adapterxl.errors import AdapterxlError
from adapterxl.experiments import grid, parse_recipe
from adapterxl.experiments.cache import ModuleCache
from adapterxl.experiments.results import Store

RECIPES = Path(__file__).resolve().parent.parent / "recipes"

TINY = """
name: tiny
data: samples
grid:
  backbones: [builtin:tiny-xlmr]
  intermediates: [none, mnli]
  compositions: [stack]
  targets: [xnli]
  methods: [seq_bn]
  seeds: [1]
train: {max_steps: 2, batch_size: 4, max_length: 32, max_train_examples: 16,
        max_eval_examples: 8, evals: 1, lr: 3.0e-3}
evaluate: {languages: [de], max_examples: 8, max_length: 32}
"""


def cells_of(text, *overrides):
    return grid.expand(parse_recipe(text, overrides, source="t.yaml"))


# --- recipes and grids (no training) ---------------------------------------------------------

def test_grid_counts_ids_and_overrides():
    text = TINY.replace("[none, mnli]", "[none, mnli, squad, mnli+squad, mnli>squad]") \
        .replace("[stack]", "[stack, init_from]").replace("[xnli]", "[xnli, tatoeba]")
    cells = cells_of(text)
    # none: 1 composition; 4 others x 2 compositions; x 2 targets
    assert len(cells) == (1 + 4 * 2) * 2 - 1 + 1
    ids = [c.id for c in cells]
    assert len(set(ids)) == len(ids)
    assert ids == [c.id for c in cells_of(text)]          # stable
    assert "tiny-xlmr|seq_bn|mnli>squad|init_from|xnli|1" in ids
    none_tatoeba = next(c for c in cells if c.id == "tiny-xlmr|seq_bn|none|none|tatoeba|1")
    assert none_tatoeba.skip and "retrieval" in none_tatoeba.skip
    seq = next(c for c in cells if c.id == "tiny-xlmr|seq_bn|mnli>squad|stack|xnli|1")
    assert [m.label for m in seq.modules] == ["mnli", "squad", "xnli"]
    assert seq.priority == 2 and cells[0].priority == 0
    # the intermediate mnli module is one cache key for every target and composition
    keys = {m.key for c in cells if c.intermediate == "mnli" for m in c.modules
            if m.label == "mnli"}
    assert len(keys) == 1
    # overrides: more seeds and methods multiply, values are YAML
    more = cells_of(text, "grid.seeds=[1, 2]", "grid.methods=[seq_bn, lora]")
    assert len(more) == 4 * len(cells)
    one = cells_of(text, "grid.targets=[xnli]", "grid.intermediates=[mnli]",
                   "grid.compositions=[fuse]")
    assert [c.id for c in one] == ["tiny-xlmr|seq_bn|mnli|fuse|xnli|1"]
    assert [m.label for m in one[0].modules] == ["mnli", "xnli", "xnli"]
    # model= replaces every backbone
    big = TINY.replace("[builtin:tiny-xlmr]", "[xlm-roberta-base, {model: facebook/xlm-roberta-xl,"
                                              " quantize: 8bit}]")
    assert {c.backbone.name for c in cells_of(big)} == {"xlm-roberta-base", "xlm-roberta-xl-8bit"}
    assert {c.backbone.model for c in cells_of(big, "model=builtin:tiny-xlmr")} == \
        {"builtin:tiny-xlmr"}


@pytest.mark.parametrize("overrides, message", [
    (["grid.targets=[xnli, pawsx, xnlii]"],
     "recipe t.yaml: grid.targets[2] (from the override grid.targets=[xnli, pawsx, xnlii]): "
     "unknown task 'xnlii' (did you mean 'xnli'"),
    (["train.max_stepz=3"], "train.max_stepz (from the override train.max_stepz=3): "
                            "unknown key 'max_stepz' (did you mean 'max_steps'"),
    (["grid.compositions=[stak]"], "grid.compositions[0]"),
    (["grid.methods=[lorra]"], "unknown method 'lorra' (did you mean 'lora'"),
    (["grid.intermediates=[none, tatoeba]"], "grid.intermediates[1] (from the override"),
    (["grid.intermediates=[mnli>squad]", "grid.compositions=[fuse]"], "fuse does not apply"),
    (["evaluate.languages=[dee]"], "evaluate.languages[0]"),
    (["data=hff"], "recipe t.yaml: data (from the override data=hff): unknown data source"),
    (["grid.seeds=[one]"], "grid.seeds[0]"),
    (["grid.0.targets=[xnli]"], "grid.0 (from the override grid.0.targets=[xnli]): unknown key '0'"),
    (["nonsense"], "is not key=value"),
])
def test_bad_recipes_name_the_path(overrides, message):
    with pytest.raises(AdapterxlError) as e:
        cells_of(TINY, *overrides)
    assert message in str(e.value)


def test_bad_key_in_file():
    with pytest.raises(AdapterxlError, match=r"recipe t.yaml: grid.tragets: unknown key "
                                             r"'tragets' \(did you mean 'targets'"):
        cells_of(TINY.replace("targets:", "tragets:"))


def test_local_only_and_variants_skip_with_reason():
    text = TINY.replace("data: samples", "data: hf") \
        .replace("[none, mnli]", "[ccg, mnli-de]") \
        + "variants:\n  mnli-de: {task: mnli, requires: MNLI in German}\n"
    cells = cells_of(text)
    reasons = {c.intermediate: c.skip for c in cells}
    assert "local files only" in reasons["ccg"] and "data_dirs.ccg" in reasons["ccg"]
    assert "MNLI in German" in reasons["mnli-de"]
    # under the bundled samples ccg has data
    assert not next(c for c in cells_of(text, "data=samples") if c.intermediate == "ccg").skip


def test_every_recipe_passes_dry_run(tmp_path):
    from click.testing import CliRunner

    from adapterxl.cli import main

    recipes = sorted(RECIPES.glob("*.yaml"))
    assert {p.stem for p in recipes} >= {"stilts-xtreme", "order", "task-similarity",
                                          "sts-lowres", "scaling", "typology", "quickstart"}
    runner = CliRunner()
    for path in recipes:
        for extra in ([], ["model=builtin:tiny-xlmr", "data=samples", "train.max_steps=2"]):
            res = runner.invoke(main, ["run", str(path), *extra, "--dry-run", "--run-dir",
                                       str(tmp_path / path.stem), "--cache-dir",
                                       str(tmp_path / "cache")])
            assert res.exit_code == 0, (path.name, res.output)
            assert "modules:" in res.output and "estimated training cost" in res.output
    res = runner.invoke(main, ["run", str(recipes[0]), "grid.targets=[xnlii]", "--dry-run"])
    assert res.exit_code == 2 and "unknown task 'xnlii'" in res.output
    assert not (tmp_path / recipes[0].stem / "store.sqlite").exists()  # dry runs write nothing


def test_budget_and_shard_parsing():
    from adapterxl.experiments.runner import parse_budget, parse_shard

    assert parse_budget("20gpu-h") == 72000 and parse_budget("90s") == 90
    assert parse_budget("2h") == 7200 and parse_budget("1.5m") == 90
    assert parse_shard("1/3") == (1, 3)
    for bad in ("20", "3 parsecs"):
        with pytest.raises(AdapterxlError, match="--budget"):
            parse_budget(bad)
    for bad in ("3/3", "1-2", "0/0"):
        with pytest.raises(AdapterxlError, match="--shard"):
            parse_shard(bad)
    cells = cells_of(TINY, "grid.seeds=[1, 2, 3]", "grid.targets=[xnli, pawsx]")
    parts = [grid.shard(cells, i, 3) for i in range(3)]
    ids = [c.id for p in parts for c in p]
    assert sorted(ids) == sorted(c.id for c in cells) and len(set(ids)) == len(ids)


# --- store and cache concurrency (no training) -----------------------------------------------

def test_store_two_writers(tmp_path):
    rows = [{"id": f"c{i}", "backbone": "b", "method": "m", "intermediate": "none",
             "composition": "none", "target": "xnli", "seed": 1, "task": "xnli",
             "priority": 0, "position": i} for i in range(40)]
    errors = []

    def writer(part):
        try:
            with Store(tmp_path / "store.sqlite", timeout=30) as store:
                store.add_cells(rows)
                for r in rows[part::2]:
                    store.start_cell(r["id"], "h")
                    store.put_metrics(r["id"], "xnli", {"de": {"accuracy": 0.5}})
                    store.finish_cell(r["id"], "done", score=0.5, device_seconds=1.0)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    db = sqlite3.connect(tmp_path / "store.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*) FROM cells WHERE status='done'").fetchone()[0] == 40
    assert db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 40
    cols = {r[1] for r in db.execute("PRAGMA table_info(cells)")}
    assert {"id", "backbone", "method", "intermediate", "composition", "target", "seed",
            "status", "module", "error", "device_seconds", "tokens", "peak_memory_bytes",
            "started", "finished", "score", "parameters"} <= cols


def _fake_train(calls, delay=0.0):
    def train(path, resume):
        calls.append((threading.current_thread().name, resume))
        time.sleep(delay)
        path.mkdir(parents=True)
        (path / "train-results.json").write_text(json.dumps({"train_seconds": 1, "tokens": 5}))
        return {"train_seconds": 1, "tokens": 5}
    return train


def test_cache_lock_one_trainer_and_stale_locks(tmp_path):
    cache = ModuleCache(tmp_path, poll=0.05, echo=lambda *_: None)
    calls, got = [], []
    threads = [threading.Thread(target=lambda: got.append(
        cache.ensure("k" * 64, "mnli", {}, _fake_train(calls, 0.3))), name=f"t{i}")
        for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1                                   # trained once
    assert sorted(now for _, now in got) == [False, True]    # the other reused it
    assert not cache.lock_path("k" * 64, "mnli").exists()
    # a lock left by a dead process on this host is broken; the checkpoint resumes
    import socket
    key = "s" * 64
    lock = cache.lock_path(key, "squad")
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": 2 ** 22 + 12345,
                                "time": 0}))
    ckpt = cache.path(key, "squad").with_name(cache.path(key, "squad").name + ".checkpoint")
    ckpt.mkdir()
    (ckpt / "checkpoint.pt").write_text("x")
    calls = []
    entry, now = cache.ensure(key, "squad", {}, _fake_train(calls))
    assert now and calls[0][1] is True                       # resume=True
    # a lock from another host is stale only when it was not touched for stale_after
    lock = cache.lock_path("o" * 64, "qqp")
    lock.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert cache.stale(lock) is None
    old = time.time() - 3600
    os.utime(lock, (old, old))
    assert "not touched" in cache.stale(lock)


# --- running recipes (trains tiny modules) ---------------------------------------------------

@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("module-cache")


class Counter:
    """Counts train_module calls; raises KeyboardInterrupt at call number `stop_at`."""

    def __init__(self, stop_at=None):
        from adapterxl.training import train_module
        self.real, self.calls, self.stop_at = train_module, [], stop_at

    def __call__(self, cfg, progress=True, backbone=None):
        if self.stop_at is not None and len(self.calls) + 1 == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append(cfg)
        return self.real(cfg, progress=progress, backbone=backbone)


def test_interrupted_run_resumes_without_retraining(tmp_path, shared_cache, monkeypatch):
    from adapterxl.experiments import runner

    run_dir = tmp_path / "run"
    first = Counter(stop_at=2)    # the baseline cell finishes, then Ctrl-C in the next one
    monkeypatch.setattr(runner, "train_module", first)
    with pytest.raises(KeyboardInterrupt):
        runner.run_recipe(parse_recipe(TINY, source="t.yaml"), run_dir=run_dir,
                          cache_dir=shared_cache, echo=lambda *_: None)
    assert [c.task for c in first.calls] == ["xnli"]
    with Store(run_dir / "store.sqlite") as store:
        status = {cid: r["status"] for cid, r in store.cells().items()}
    assert status == {"tiny-xlmr|seq_bn|none|none|xnli|1": "done",
                      "tiny-xlmr|seq_bn|mnli|stack|xnli|1": "pending"}
    again = Counter()
    monkeypatch.setattr(runner, "train_module", again)
    out = runner.run_recipe(parse_recipe(TINY, source="t.yaml"), run_dir=run_dir,
                            cache_dir=shared_cache, echo=lambda *_: None)
    assert [c.task for c in again.calls] == ["mnli", "xnli"]   # nothing retrained
    assert again.calls[1].stack and not again.calls[0].stack
    assert out["done"] == 2 and out["pending"] == 0
    db = sqlite3.connect(run_dir / "store.sqlite")
    assert db.execute("SELECT COUNT(*) FROM modules").fetchone()[0] == 3
    row = db.execute("SELECT score, device_seconds, tokens, parameters, module FROM cells "
                     "WHERE intermediate='mnli'").fetchone()
    assert row[0] is not None and row[1] > 0 and row[2] > 0 and row[3] > 0
    assert Path(row[4]).is_dir()
    assert db.execute("SELECT language, metric FROM metrics WHERE cell LIKE '%mnli%'") \
        .fetchall() == [("de", "accuracy")]
    info = dict(db.execute("SELECT key, value FROM run").fetchall())
    assert info["recipe"] == TINY and json.loads(info["versions"])["torch"]
    # a third run does nothing
    third = Counter()
    monkeypatch.setattr(runner, "train_module", third)
    out = runner.run_recipe(parse_recipe(TINY, source="t.yaml"), run_dir=run_dir,
                            cache_dir=shared_cache, echo=lambda *_: None)
    assert not third.calls and out["ran"] == 0
    # another recipe in the same run directory is refused
    with pytest.raises(AdapterxlError, match="another recipe"):
        runner.run_recipe(parse_recipe(TINY, ["grid.seeds=[2]"], source="t.yaml"),
                          run_dir=run_dir, cache_dir=shared_cache, echo=lambda *_: None)


def test_cache_shared_across_recipes(tmp_path, shared_cache, monkeypatch):
    from adapterxl.experiments import runner

    monkeypatch.setattr(runner, "train_module", Counter())
    runner.run_recipe(parse_recipe(TINY, source="a.yaml"), run_dir=tmp_path / "a",
                      cache_dir=shared_cache, echo=lambda *_: None)
    other = TINY.replace("name: tiny", "name: other").replace("[none, mnli]", "[mnli]") \
        .replace("[xnli]", "[xnli, pawsx]")
    count = Counter()
    monkeypatch.setattr(runner, "train_module", count)
    lines = []
    out = runner.run_recipe(parse_recipe(other, source="b.yaml"), run_dir=tmp_path / "b",
                            cache_dir=shared_cache, echo=lines.append)
    assert [c.task for c in count.calls] == ["pawsx"]   # mnli and mnli->xnli come from cache
    assert out["done"] == 2
    db = sqlite3.connect(tmp_path / "b" / "store.sqlite")
    reused = dict(db.execute("SELECT label, reused FROM modules WHERE role='intermediate'"))
    assert reused == {"mnli": 2}


def test_budget_orders_and_stops_cleanly(tmp_path, shared_cache):
    from adapterxl.experiments import runner

    lines = []
    out = runner.run_recipe(parse_recipe(TINY, source="t.yaml"), run_dir=tmp_path / "r",
                            cache_dir=shared_cache, budget=1e-6, echo=lines.append)
    assert out["stopped_for_budget"] and out["ran"] == 1
    assert out["done"] == 1 and out["pending"] == 1
    assert any("left pending" in line for line in lines)
    with Store(tmp_path / "r" / "store.sqlite") as store:
        cells = store.cells()
    assert cells["tiny-xlmr|seq_bn|none|none|xnli|1"]["status"] == "done"  # baseline first
    # the dry run now measures throughput from the store
    plan = runner.run_recipe(parse_recipe(TINY, ["grid.seeds=[1]"], source="t.yaml"),
                             run_dir=tmp_path / "r", cache_dir=tmp_path / "empty-cache",
                             dry_run=True, echo=lambda *_: None)
    assert plan["modules_to_train"] == 2 and plan["estimated_seconds"] > 0


def test_two_shards_cover_all_cells_once(tmp_path, shared_cache):
    from adapterxl.experiments import runner

    recipe = parse_recipe(TINY, source="t.yaml")
    outs = [runner.run_recipe(recipe, run_dir=tmp_path / "r", cache_dir=shared_cache,
                              shard=f"{i}/2", echo=lambda *_: None) for i in range(2)]
    assert [o["ran"] for o in outs] == [1, 1]
    with Store(tmp_path / "r" / "store.sqlite") as store:
        cells = store.cells()
    assert len(cells) == 2 and all(r["status"] == "done" for r in cells.values())


@pytest.mark.slow
def test_two_shard_processes_share_store_and_cache(tmp_path):
    """Two `adapterxl run --shard` processes at once: both cells need the mnli module; it is
    trained once (the other shard waits for the lock and reuses it), both write one store."""
    import subprocess
    import sys

    recipe = tmp_path / "two.yaml"
    recipe.write_text(TINY.replace("[none, mnli]", "[mnli]").replace("[xnli]", "[xnli, pawsx]"))
    cmd = [sys.executable, "-c", "from adapterxl.cli import main; main()", "run", str(recipe),
           "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]
    procs = [subprocess.Popen(cmd + ["--shard", f"{i}/2"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum(o.count("  training mnli (intermediate)") for o in outs) == 1, outs
    db = sqlite3.connect(tmp_path / "run" / "store.sqlite")
    assert db.execute("SELECT COUNT(*) FROM cells WHERE status='done'").fetchone()[0] == 2
    assert db.execute("SELECT trained_here, reused FROM modules WHERE label='mnli'") \
        .fetchone() == (1, 1)


def test_interrupted_module_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    from adapterxl import checkpoint
    from adapterxl.experiments import runner

    real_save, saves = checkpoint.save, []

    def save_then_interrupt(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(1)
        if len(saves) == 1:
            raise KeyboardInterrupt

    recipe = parse_recipe(TINY, ["grid.intermediates=[none]", "train.max_steps=4",
                                 "train.checkpoint_every=1"], source="t.yaml")
    monkeypatch.setattr(checkpoint, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.run_recipe(recipe, run_dir=tmp_path / "run", cache_dir=tmp_path / "cache",
                          echo=lambda *_: None)
    assert list((tmp_path / "cache").glob("*.checkpoint"))
    count = Counter()
    monkeypatch.setattr(runner, "train_module", count)
    out = runner.run_recipe(recipe, run_dir=tmp_path / "run", cache_dir=tmp_path / "cache",
                            echo=lambda *_: None)
    assert out["done"] == 1 and [c.resume for c in count.calls] == [True]
    results = json.loads(next((tmp_path / "cache").glob("xnli-*/train-results.json"))
                         .read_text())
    assert results["resumed_from_step"] == 1 and results["steps"] == 4
    assert not list((tmp_path / "cache").glob("*.checkpoint"))


def test_run_then_report_and_similarity_through_the_cli(tmp_path):
    """The three commands researchers chain: run a (tiny) recipe, report it, analyze it."""
    from click.testing import CliRunner

    from adapterxl.cli import main

    recipe = tmp_path / "chain.yaml"
    recipe.write_text(TINY.replace("name: tiny", "name: chain")
                      .replace("intermediates: [none, mnli]", "intermediates: [none, mnli, qqp]")
                      .replace("targets: [xnli]", "targets: [xnli, pawsx]"))
    run_dir, env = tmp_path / "run", {"ADAPTERXL_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    r = runner.invoke(main, ["run", str(recipe), "--run-dir", str(run_dir),
                             "--cache-dir", str(tmp_path / "cache")], env=env)
    assert r.exit_code == 0, r.output
    with sqlite3.connect(run_dir / "store.sqlite") as db:
        done = db.execute("SELECT count(*) FROM cells WHERE status = 'done'").fetchone()[0]
        metrics = db.execute("SELECT count(*) FROM metrics").fetchone()[0]
    assert done == 6 and metrics >= 6
    r = runner.invoke(main, ["report", str(run_dir)], env=env)
    assert r.exit_code == 0, r.output
    report = (run_dir / "report" / "report.md").read_text()
    assert "xnli" in report and "pawsx" in report
    pngs = list((run_dir / "report").rglob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    r = runner.invoke(main, ["analyze", "similarity", str(run_dir), "--json",
                             "--max-examples", "8"], env=env)
    assert r.exit_code == 0, r.output
    result = json.loads(r.output[r.output.index("{"):])
    assert result["pairs"] and set(result["correlations"]) >= {"cka", "weight_cosine"}


def test_dry_run_reports_the_memory_plan(tmp_path):
    """With a readable config, --dry-run says when a module needs a smaller micro-batch on an
    H100 (here XLM-R XXL's shape in bf16 at batch 256, sequence length 512)."""
    from adapterxl.experiments.runner import run_recipe

    xxl = tmp_path / "xxl"
    xxl.mkdir()
    (xxl / "config.json").write_text(json.dumps(dict(
        model_type="xlm-roberta-xl", vocab_size=250880, hidden_size=4096, num_hidden_layers=48,
        num_attention_heads=32, intermediate_size=16384, max_position_embeddings=514,
        type_vocab_size=1, pad_token_id=1)))
    text = (TINY.replace("builtin:tiny-xlmr", str(xxl))
            .replace("batch_size: 4, max_length: 32", "batch_size: 256, max_length: 512"))
    lines = []
    run_recipe(parse_recipe(text, source="t.yaml"), run_dir=tmp_path / "run", dry_run=True,
               cache_dir=tmp_path / "cache", echo=lines.append)
    memory = next(line for line in lines if line.startswith("memory"))
    assert "micro-batch" in memory and "on an H100" in memory, memory


def test_quickstart_recipe_is_what_quickstart_runs():
    from adapterxl import quickstart
    from adapterxl.experiments import load_recipe

    recipe = load_recipe(RECIPES / "quickstart.yaml")
    assert recipe.settings("intermediate") == recipe.settings("target") == quickstart.SETTINGS
    (cell,) = grid.expand(recipe)
    assert (cell.backbone.model, cell.intermediate, cell.composition, cell.target,
            cell.method) == (quickstart.MODEL, quickstart.INTERMEDIATE, "stack",
                             quickstart.TARGET, "seq_bn")
    assert recipe.data == "samples"
