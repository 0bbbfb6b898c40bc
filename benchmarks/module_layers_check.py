"""A SMALL accuracy check of --module-layers (AdapterDrop-style: the module only in the upper
layers) against modules in every layer, on builtin:e5-small and the real files of
real_transfer.py: UD-POS (English -> German, Hindi) and STS-B (English -> German), no
intermediate module, the quick profile's subsets and steps, the given seeds (XNLI from SICK is
left out: at 60 steps it stays at chance, RESULTS.md). It is a sanity check (one or two seeds,
200 test examples), not the real-transfer benchmark.

    OMP_NUM_THREADS=1 python benchmarks/module_layers_check.py --module-layers top:6 \
        --module-layers top:9 --seeds 1,2

With --epochs N the modules train N epochs of the quick profile's 960 examples instead of its
60 steps, and --cache adds, for each --module-layers, the same run with
--cache-frozen-layers (the frozen lower layers computed in epoch 1 only): the "3-epoch
target training run" of issue 19's goal, timed per module.

    OMP_NUM_THREADS=1 python benchmarks/module_layers_check.py --module-layers top:9 \
        --epochs 3 --cache --seeds 1

Prints one line per cell and a markdown table (score and training seconds per module)."""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402  (its data preparation and zero-shot scoring)


def train(task: str, data: Path, out: Path, p: dict, seed: int, layers: str | None,
          epochs: float | None = None, cache: bool = False) -> tuple:
    from adapterxl.training import TrainConfig, train_module

    cfg = TrainConfig(task=task, model=rt.MODEL, data_dir=str(data / task), output=str(out),
                      method="seq_bn", max_steps=None if epochs else p["steps"],
                      epochs=epochs, batch_size=p["batch_size"],
                      max_length=p["max_length"], lr=p["lr"], seed=seed, evals=1,
                      module_layers=layers, cache_frozen_layers=cache, overwrite=True)
    start = time.perf_counter()
    module = train_module(cfg, progress=False)["module"]
    return module, time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module-layers", action="append",
                    help="repeatable; each is compared with all layers [default: top:6]")
    ap.add_argument("--seeds", default="1", help="comma list [default: 1]")
    ap.add_argument("--epochs", type=float, help="train N epochs instead of the profile's steps")
    ap.add_argument("--cache", action="store_true",
                    help="also each --module-layers with --cache-frozen-layers")
    ap.add_argument("--output", default="runs/module_layers_check")
    a = ap.parse_args(argv)
    if not rt.REAL.is_dir():
        print(f"error: {rt.REAL} not found (the real files this check reads)", file=sys.stderr)
        return 2
    p = rt.PROFILES["quick"]
    layer_choices = a.module_layers or ["top:6"]
    choices = [(None, False)] + [(c, False) for c in layer_choices] + (
        [(c, True) for c in layer_choices] if a.cache else [])
    scores: dict[tuple, list[float]] = {}
    seconds: dict[tuple, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        rt.prepare(data, p)
        for seed in (int(s) for s in a.seeds.split(",")):
            for task, langs in (("udpos", "de,hi"), ("stsb_multi", "de")):
                for layers, cache in choices:  # interleaved
                    name = (layers or "all") + ("+cache" if cache else "")
                    mod, secs = train(task, data, Path(a.output) / f"s{seed}-{task}-{name}", p,
                                      seed, layers, a.epochs, cache)
                    for lang, v in rt.zero_shot(task, mod, data, langs, p).items():
                        scores.setdefault((task, lang, name), []).append(v)
                        seconds.setdefault((task, lang, name), []).append(secs)
                        print(f"seed {seed} {task} {lang} layers={name}: {v:.1f} "
                              f"(trained in {secs:.0f} s)", flush=True)
    length = f"{a.epochs:g} epochs of {p['train']}" if a.epochs else f"{p['steps']} steps"
    print(f"\nSMALL check: quick profile ({length}, batch {p['batch_size']}, "
          f"{p['test']} test examples), seeds {a.seeds}")
    print("| cell | module layers | score | training s |")
    print("|---|---|---|---|")
    for (task, lang, name), v in scores.items():
        print(f"| {task} {lang} | {name} | {statistics.mean(v):.1f} | "
              f"{statistics.mean(seconds[(task, lang, name)]):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
