"""Self-describing results: versions, configuration, data provenance (with commits or
"unpinned"), date, runtime and bootstrap 95% intervals; report exports and dates."""
import csv
import json

import numpy as np
import pytest

from adapterxl.evaluation import evaluate
from adapterxl.scoring import bootstrap, metrics
from adapterxl.formats import get_format


def test_results_json_answers_which_versions_which_data_how_sure(mnli_module, tmp_path):
    out = tmp_path / "eval"
    r = evaluate("xnli", mnli_module, languages="en,de", data="samples", max_length=64,
                 output=str(out), bootstrap=200)
    saved = json.loads((out / "results.json").read_text())
    assert saved["versions"]["torch"] and saved["versions"]["transformers"]
    assert saved["config"]["task"] == "xnli" and saved["config"]["bootstrap"] == 200
    assert saved["module_config"]["method"]["name"] == "seq_bn"
    assert saved["module_config"]["hyperparameters"]["seed"] == 42
    assert saved["datasets"]["de"] == {"source": "samples",
                                       "adapterxl": saved["versions"]["adapterxl"]}
    assert saved["date"][:2] == "20" and saved["seconds"] > 0
    ci = saved["ci95"]
    for lang in ("en", "de"):
        lo, hi = ci["per_language"][lang]
        assert lo <= r["per_language"][lang]["accuracy"] <= hi and hi - lo > 0
    lo, hi = ci["average"]
    assert lo <= r["average"]["accuracy"] <= hi
    # the average's interval is narrower than a single language's (independent resamples)
    assert hi - lo < max(b - a for a, b in ci["per_language"].values())


def test_bootstrap_units_reproduce_the_metrics():
    """The per-sentence / per-example statistics sum to exactly the metric on all data."""
    rng = np.random.default_rng(1)
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    rows = [{"tags": list(rng.integers(0, 5, size=rng.integers(1, 12)))} for _ in range(60)]
    preds = [[labels[t] if rng.random() < 0.7 else labels[rng.integers(0, 5)] for t in r["tags"]]
             for r in rows]
    units = bootstrap._tagging_units(preds, rows, labels, "tagging_f1")
    gold = [[labels[t] for t in r["tags"]] for r in rows]
    assert float(bootstrap._chunk_f1(units.sum(0))) == pytest.approx(
        metrics.tagging_f1(gold, preds)["f1"])

    qa = get_format("qa")
    qrows = [{"id": str(i), "answers": [{"text": t, "answer_start": 0}]}
             for i, t in enumerate(["the cat", "a dog", "Berlin", "1990", "red and blue"])]
    qpreds = ["cat", "dog house", "Berlin", "1991", "blue and red"]
    units = bootstrap._qa_units(qa, "squad", qpreds, qrows, [], "en")
    whole = qa.score("squad", qpreds, qrows, [], "en")
    assert units.mean(0) == pytest.approx([whole["exact_match"], whole["f1"]])

    samples = bootstrap.resampled_scores(get_format("tagging"), "tagging_f1",
                                         preds, rows, labels, "en", resamples=300)
    lo, hi = bootstrap.interval(samples)
    assert lo < metrics.tagging_f1(gold, preds)["f1"] < hi
    assert bootstrap.resampled_scores(get_format("retrieval"), "bucc_f1", [], [{}], [],
                                      "en") is None


def test_provenance_says_unpinned_when_the_commit_cannot_be_known():
    from adapterxl.data.download import is_commit, provenance
    from adapterxl.tasks import get_task

    [src] = provenance(get_task("udpos"), "test", "de")
    assert (src["path"], src["name"]) == ("google/xtreme", "udpos.German")
    assert src["commit"] == "unpinned" and src["pinned"] is False  # offline in tests
    [sick] = provenance(get_task("sickr"), "train", "en")
    assert sick["revision"] == "refs/convert/parquet" and not sick["pinned"]
    assert is_commit("0123456789abcdef0123456789abcdef01234567") and not is_commit("main")


def test_report_exports_csv_json_and_prints_dates(tmp_path):
    from adapterxl.experiments import report
    from test_report import make_store

    run = make_store(tmp_path / "run", [{"score": 0.5}, {"intermediate": "mnli",
                                                          "composition": "stack", "score": 0.6}],
                     [("cell0", "xnli", "en", "accuracy", 0.9)])
    import sqlite3

    con = sqlite3.connect(run / "store.sqlite")
    con.execute("UPDATE run SET value='1767225600.0' WHERE key='created'")
    con.commit()
    con.close()
    out = report.build_report(run, export=("csv", "json"))
    md = (run / "report" / "report.md").read_text()
    assert "created: 2026-01-01 00:00:00 UTC" in md and "1970-01-01 00:00:01 UTC" in md
    data = json.loads((run / "report" / "report.json").read_text())
    assert data["run"]["created"] == "2026-01-01 00:00:00 UTC"
    assert data["gains"][0]["gain"] == pytest.approx(0.1)
    assert "Cost per cell" in data["tables"]
    with open(run / "report" / "tables" / "Cost_per_cell.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["cell", "backbone"] and len(rows) == 4  # head, 2 cells, total
    assert str(run / "report" / "report.json") in out["exported"]
    with pytest.raises(Exception, match="unknown export format 'xml'"):
        report.build_report(run, export=("xml",))
