"""Where a training run's time goes: one contender of benchmarks/peers.py (same backbone, data
and settings) under cProfile (Python functions, cumulative: the loop's own costs such as dev
evaluation, checkpoints, clipping, the optimizer) and torch.profiler (CPU ops, self time).
Writes a small text summary to benchmarks/profiles/<contender>-<tag>.txt.

    python benchmarks/profile_step.py axl-seq_bn --tag before --steps 10
    python benchmarks/profile_step.py peft-lora --steps 10

Contenders: axl-seq_bn, axl-lora, peft-lora, peft-lora-rand (this interpreter; the AdapterTrainer
ones need the other environment: run this script with that interpreter and an at-* name).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402

OUT = Path(__file__).resolve().parent / "profiles"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("contender", choices=peers.CONTENDERS)
    p.add_argument("--tag", default="now")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args(argv)
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(a.threads)
    model_id, model_dir, what = peers.backbone("cpu")
    rows, data_what = peers.pairs(a.steps * 32 + peers.DEV, seed=0)
    spec = {"model_id": model_id, "model_dir": model_dir, "train": rows[peers.DEV:],
            "dev": rows[:peers.DEV], "steps": a.steps, "batch": 32, "max_length": 128,
            "threads": a.threads, "device": "cpu"}
    name = a.contender
    run = ((lambda: peers.run_adapterxl(spec, name.split("-", 1)[1])) if name.startswith("axl-")
           else (lambda: peers.run_trainer(spec, name.split("-")[0], not name.endswith("-rand"))))
    prof = cProfile.Profile()
    with profile(activities=[ProfilerActivity.CPU]) as tp:
        prof.enable()
        result = run()
        prof.disable()
    s = io.StringIO()
    stats = pstats.Stats(prof, stream=s)
    stats.sort_stats("cumulative").print_stats(a.top * 2)
    py = "\n".join(line[:160] for line in s.getvalue().splitlines() if line.strip())
    ops = tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.top,
                                  max_name_column_width=48)
    OUT.mkdir(exist_ok=True)
    target = OUT / f"{name}-{a.tag}.txt"
    target.write_text(
        f"# {name} ({a.tag}): {what}, {data_what}, {a.steps} steps of 32, max length 128, "
        f"fp32, {a.threads} threads, load average {os.getloadavg()}\n"
        f"# command: python benchmarks/profile_step.py {' '.join(argv or sys.argv[1:])}\n"
        f"# result (profiled, so slower than unprofiled): {json.dumps(result)}\n\n"
        f"## Python functions by cumulative time (cProfile)\n{py}\n\n"
        f"## torch ops by self CPU time (torch.profiler)\n{ops}\n")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
