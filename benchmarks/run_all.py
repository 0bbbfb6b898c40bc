"""Every benchmark in one go. `--quick` is CI-sized (tiny shapes, about a minute on 2 CPU
cores) and only checks that the harness runs; timings are printed, never asserted.

    python benchmarks/run_all.py --quick
    python benchmarks/run_all.py --quick --output-dir runs/bench   # also JSON per benchmark
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["train_speed.py", "scale_speed.py", "eval_speed.py", "plan_check.py"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--output-dir", default=None)
    a = p.parse_args(argv)
    failed = []
    for script in SCRIPTS:
        cmd = [sys.executable, str(HERE / script)] + (["--quick"] if a.quick else [])
        if a.output_dir:
            Path(a.output_dir).mkdir(parents=True, exist_ok=True)
            cmd += ["--output", str(Path(a.output_dir) / script.replace(".py", ".json"))]
        print(f"## {' '.join(cmd[1:])}", flush=True)
        if subprocess.run(cmd).returncode:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
