"""A battery of bad inputs, each run through the real `adapterxl` command and classified.

    PYTHONPATH=. python benchmarks/bad_input_battery.py [--jobs 2] [-k SUBSTRING] [--keep DIR]

CLEAN     exit 2, stderr is exactly one line starting `error:`, no traceback, every input file
          unchanged (sha256 before/after) and nothing left at the output path (no staging
          folders beside it either).
DEGRADED  a non-zero exit that is not clean (exit 1 "unexpected ...", usage text, a partial
          output, a changed input).
SILENT    exit 0: the bad input was accepted, or replaced by a default.

The cases are different from those issue 16 lists and from the ones tests/reliability/ runs.
Training cases use builtin:tiny-xlmr, the bundled samples and --max-steps 1, so a case that
is wrongly accepted still finishes in seconds. Needs root for the tmpfs cases (skipped
otherwise). Exit status: 0 when every case is CLEAN, else 1.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "adapterxl" / "resources" / "samples"
TINY = ["--model", "builtin:tiny-xlmr"]
QUICK = TINY + ["--max-steps", "1", "--batch-size", "4", "--max-length", "32"]


@dataclass
class Case:
    name: str
    kind: str  # the class: flags, outputs, data, recipes, modules, faults
    argv: Callable[[Path], list[str]]  # given the case's own folder
    setup: Callable[[Path], None] | None = None
    out: str | None = None  # the output path (relative to the case folder) that must not appear
    needs_root: bool = False
    skip: str | None = field(default=None, init=False)


# ---- helpers that build inputs ----------------------------------------------------------------
def data_dir(task: str, edit: Callable[[list[dict]], list], name: str = "train.jsonl",
             raw: bytes | None = None):
    """A --data-dir copy of `task`'s samples whose `name` file is edited (rows -> rows or
    lines of text) or replaced by `raw` bytes."""
    def setup(case: Path):
        d = case / "data"
        shutil.copytree(SAMPLES / task, d)
        if raw is not None:
            (d / name).write_bytes(raw)
            return
        rows = [json.loads(line) for line in (d / name).read_text().splitlines() if line]
        lines = [r if isinstance(r, str) else json.dumps(r) for r in edit(rows)]
        (d / name).write_text("\n".join(lines) + "\n")
    return setup


def first(edit_row: Callable[[dict], object]):
    """Edit the third row (so that the error must name line 3)."""
    def edit(rows):
        rows[2] = edit_row(dict(rows[2]))
        return rows
    return edit


def put(**changes):
    return first(lambda r: {**r, **changes})


def module_copy(which: str, edit: Callable[[Path], None] | None = None, name: str = "m"):
    def setup(case: Path):
        shutil.copytree(MODULES[which], case / name, symlinks=True)
        if edit:
            edit(case / name)
    return setup


def manifest_edit(**changes):
    def edit(m: Path):
        data = json.loads((m / "manifest.json").read_text())
        data.update(changes)
        (m / "manifest.json").write_text(json.dumps(data))
    return edit


def both(*setups):
    def setup(case: Path):
        for s in setups:
            s(case)
    return setup


def write(name: str, text: str | bytes):
    def setup(case: Path):
        p = case / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return setup


def tmpfs(name: str, size: str, ro: bool = False, fill: bool = False, free: int = 8192):
    """A real small filesystem at case/name (root only)."""
    def setup(case: Path):
        d = case / name
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                       check=True)
        MOUNTS.append(d)
        if fill:  # fill it, then free `free` bytes: room for a folder and a manifest at most
            fd = os.open(d / "ballast", os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError:
                pass
            finally:
                os.close(fd)
            os.truncate(d / "ballast", max(0, (d / "ballast").stat().st_size - free))
        if ro:
            subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True)
    return setup


MOUNTS: list[Path] = []
MODULES: dict[str, Path] = {}


def train(task, *extra):
    return lambda c: ["train-intermediate", "--task", task, *QUICK, "-o", str(c / "out"),
                      *extra]


def train_dd(task, *extra):
    return lambda c: ["train-intermediate", "--task", task, *QUICK, "--data-dir",
                      str(c / "data"), "-o", str(c / "out"), *extra]


def samples(task, *extra):
    return train(task, "--data", "samples", *extra)


def evaluate(*extra, module="m"):
    return lambda c: ["evaluate", "--task", "xnli", "--module", str(c / module), "--data",
                      "samples", "--languages", "de", "--max-examples", "4", "--bootstrap",
                      "0", *extra]


def recipe(text, *overrides, dry=True):
    return lambda c: ["run", str(c / "r.yaml"), *overrides, "--run-dir", str(c / "out"),
                      "--cache-dir", str(c / "cache"), *(["--dry-run"] if dry else [])]


RECIPE = """name: b
data: samples
grid: {backbones: [builtin:tiny-xlmr], intermediates: [mnli], compositions: [stack],
       targets: [xnli], methods: [lora], seeds: [1]}
train: {max_steps: 1, batch_size: 4, max_length: 32}
evaluate: {languages: [de], max_length: 32}
"""


def cases() -> list[Case]:
    C = Case
    return [
        # ---- flags: out of range / wrong type, every command --------------------------------
        C("ti --warmup-ratio 1.5", "flags", samples("mnli", "--warmup-ratio", "1.5")),
        C("ti --warmup-ratio nan", "flags", samples("mnli", "--warmup-ratio", "nan")),
        C("ti --weight-decay -0.1", "flags", samples("mnli", "--weight-decay", "-0.1")),
        C("ti --evals 0", "flags", samples("mnli", "--evals", "0")),
        C("ti --max-train-examples 0", "flags", samples("mnli", "--max-train-examples", "0")),
        C("ti --max-eval-examples -2", "flags", samples("mnli", "--max-eval-examples", "-2")),
        C("ti --evals 20000", "flags", samples("mnli", "--evals", "20000")),
        C("ti --logging-steps 0", "flags", samples("mnli", "--logging-steps", "0")),
        C("ti --lr inf", "flags", samples("mnli", "--lr", "inf")),
        C("ti --max-steps 1.5", "flags", samples("mnli", "--max-steps", "1.5")),
        C("ti --max-length 4", "flags", samples("mnli", "--max-length", "4")),
        C("ti --method-config r=-4 (lora)", "flags",
          samples("mnli", "--method", "lora", "--method-config", "r=-4")),
        C("ti --method-config reduction_factor=0", "flags",
          samples("mnli", "--method-config", "reduction_factor=0")),
        C("ti --method-config dropout=2", "flags",
          samples("mnli", "--method", "lora", "--method-config", "dropout=2")),
        C("tt --micro-batch-size -1", "flags",
          lambda c: ["train-target", "--task", "xnli", *QUICK, "--data", "samples",
                     "--micro-batch-size", "-1", "-o", str(c / "out")]),
        C("tt --sampling-temperature -2", "flags",
          lambda c: ["train-target", "--task", "mnli,qqp", *QUICK, "--data", "samples",
                     "--sampling", "temperature", "--sampling-temperature", "-2",
                     "-o", str(c / "out")]),
        C("tl --epochs inf", "flags",
          lambda c: ["train-language", "--language", "sw", "--data", "samples", *TINY,
                     "--epochs", "inf", "-o", str(c / "out")]),
        C("tl --seed abc", "flags",
          lambda c: ["train-language", "--language", "sw", "--data", "samples", *TINY,
                     "--seed", "abc", "-o", str(c / "out")]),
        C("evaluate --max-examples 0", "flags",
          evaluate("--max-examples", "0"), module_copy("bn")),
        C("evaluate --max-length 3", "flags", evaluate("--max-length", "3"),
          module_copy("bn")),
        C("evaluate --batch-size 1.5", "flags", evaluate("--batch-size", "1.5"),
          module_copy("bn")),
        C("evaluate --bootstrap -1", "flags", evaluate("--bootstrap", "-1"), module_copy("bn")),
        C("evaluate --split dev", "flags", evaluate("--split", "dev"), module_copy("bn")),
        C("evaluate --languages ''", "flags", evaluate("--languages", ""), module_copy("bn")),
        C("merge --weights 1,nan", "flags",
          lambda c: ["merge", "--merge", f"{c / 'm'},{c / 'n'}", "--weights", "1,nan",
                     "-o", str(c / "out")],
          both(module_copy("lora"), module_copy("lora", name="n")), "out"),
        C("merge --weights 1 (2 modules)", "flags",
          lambda c: ["merge", "--merge", f"{c / 'm'},{c / 'n'}", "--weights", "1",
                     "-o", str(c / "out")],
          both(module_copy("lora"), module_copy("lora", name="n")), "out"),
        C("merge one module", "flags",
          lambda c: ["merge", "--merge", str(c / "m"), "-o", str(c / "out")],
          module_copy("lora"), "out"),
        C("export --format onnx", "flags",
          lambda c: ["export", str(c / "m"), "--format", "onnx", "-o", str(c / "out")],
          module_copy("lora"), "out"),
        C("import missing dir", "flags",
          lambda c: ["import", str(c / "nothing"), "-o", str(c / "out")], None, "out"),
        C("plan --seq-len 0", "flags", lambda c: ["plan", *TINY, "--seq-len", "0"]),
        C("plan --batch -4", "flags", lambda c: ["plan", *TINY, "--batch", "-4"]),
        C("plan --labels 0", "flags", lambda c: ["plan", *TINY, "--labels", "0"]),
        C("plan --gpu-memory banana", "flags",
          lambda c: ["plan", *TINY, "--gpu-memory", "banana"]),
        C("run --max-cells 0", "flags", lambda c: recipe(RECIPE)(c) + ["--max-cells", "0"],
          write("r.yaml", RECIPE), "out"),
        C("run --shard 3/2", "flags", lambda c: recipe(RECIPE)(c) + ["--shard", "3/2"],
          write("r.yaml", RECIPE), "out"),
        C("run --budget -5h", "flags", lambda c: recipe(RECIPE)(c) + ["--budget", "-5h"],
          write("r.yaml", RECIPE), "out"),
        C("report missing run", "flags", lambda c: ["report", str(c / "nothing")]),
        C("inspect --max-examples 0", "flags",
          lambda c: ["inspect", str(c / "m"), "--max-examples", "0"], module_copy("bn")),
        C("push --registry DIR, no module", "flags",
          lambda c: ["push", str(c / "nothing"), "--repo", "a/b", "--registry", str(c / "reg")]),
        C("push --repo without org", "flags",
          lambda c: ["push", str(c / "m"), "--repo", "justname", "--registry", str(c / "reg")],
          module_copy("lora")),
        C("pull missing from --registry DIR", "flags",
          lambda c: ["pull", "org/none@main", "--registry", str(c / "reg")],
          lambda c: (c / "reg").mkdir()),
        C("analyze similarity --max-examples 0", "flags",
          lambda c: ["analyze", "similarity", str(c / "run"), "--max-examples", "0"],
          lambda c: (c / "run").mkdir()),
        # ---- outputs that would destroy inputs ------------------------------------------------
        C("merge -o = first input", "outputs",
          lambda c: ["merge", "--merge", f"{c / 'm'},{c / 'n'}", "-o", str(c / "m")],
          both(module_copy("lora"), module_copy("lora", name="n"))),
        C("merge -o inside an input", "outputs",
          lambda c: ["merge", "--merge", f"{c / 'm'},{c / 'n'}", "-o", str(c / "n" / "sub")],
          both(module_copy("lora"), module_copy("lora", name="n")), "n/sub"),
        C("merge -o an existing file", "outputs",
          lambda c: ["merge", "--merge", f"{c / 'm'},{c / 'n'}", "-o", str(c / "f.txt")],
          both(module_copy("lora"), module_copy("lora", name="n"), write("f.txt", "keep"))),
        C("merge -o an existing module", "outputs",
          lambda c: ["merge", "--merge", f"{c / 'm'},{c / 'n'}", "-o", str(c / "o")],
          both(module_copy("lora"), module_copy("lora", name="n"),
               module_copy("bn", name="o"))),
        C("merge -o ''", "outputs",
          lambda c: ["merge", "--merge", f"{c / 'm'},{c / 'n'}", "-o", ""],
          both(module_copy("lora"), module_copy("lora", name="n"))),
        C("export -o = the module", "outputs",
          lambda c: ["export", str(c / "m"), "--format", "peft", "-o", str(c / "m")],
          module_copy("lora")),
        C("export -o an existing file", "outputs",
          lambda c: ["export", str(c / "m"), "--format", "peft", "-o", str(c / "f.txt")],
          both(module_copy("lora"), write("f.txt", "keep"))),
        C("export -o another module", "outputs",
          lambda c: ["export", str(c / "m"), "--format", "peft", "-o", str(c / "o")],
          both(module_copy("lora"), module_copy("bn", name="o"))),
        C("import -o an existing file", "outputs",
          lambda c: ["import", str(c / "peft"), *TINY, "-o", str(c / "f.txt")],
          both(lambda c: shutil.copytree(MODULES["peft"], c / "peft"), write("f.txt", "keep"))),
        C("import -o = the source folder", "outputs",
          lambda c: ["import", str(c / "peft"), *TINY, "-o", str(c / "peft")],
          lambda c: shutil.copytree(MODULES["peft"], c / "peft")),
        C("import -o an existing module", "outputs",
          lambda c: ["import", str(c / "peft"), *TINY, "-o", str(c / "o")],
          both(lambda c: shutil.copytree(MODULES["peft"], c / "peft"),
               module_copy("bn", name="o"))),
        C("tt -o inside --stack module", "outputs",
          lambda c: ["train-target", "--task", "xnli", *QUICK, "--data", "samples", "--method",
                     "lora", "--stack", str(c / "m"), "-o", str(c / "m" / "inner")],
          module_copy("lora"), "m/inner"),
        C("evaluate -o an existing file", "outputs", evaluate("-o", "f.txt"),
          both(module_copy("bn"), write("f.txt", "keep"))),
        C("report -o an existing file", "outputs",
          lambda c: ["report", str(c / "run"), "-o", str(c / "f.txt")],
          both(lambda c: (c / "run").mkdir(), write("f.txt", "keep"))),
        # ---- data files -----------------------------------------------------------------------
        C("stsb label '3.5' (string)", "data", train_dd("stsb"),
          data_dir("stsb", put(label="3.5")), "out"),
        C("stsb label 7.5 (above 5)", "data", train_dd("stsb"),
          data_dir("stsb", put(label=7.5)), "out"),
        C("mnli label 1.5", "data", train_dd("mnli"), data_dir("mnli", put(label=1.5)), "out"),
        C("mnli label true", "data", train_dd("mnli"), data_dir("mnli", put(label=True)), "out"),
        C("mnli premise a list", "data", train_dd("mnli"),
          data_dir("mnli", put(premise=[1, 2])), "out"),
        C("mnli hypothesis missing", "data", train_dd("mnli"),
          data_dir("mnli", first(lambda r: {k: v for k, v in r.items() if k != "hypothesis"})),
          "out"),
        C("mnli row is a JSON array", "data", train_dd("mnli"),
          data_dir("mnli", first(lambda r: "[1, 2, 3]")), "out"),
        C("mnli label NaN literal", "data", train_dd("mnli"),
          data_dir("mnli", first(lambda r: json.dumps(r).replace(
              f'"label": {r["label"]}', '"label": NaN'))), "out"),
        C("mnli BOM before the first row", "data", train_dd("mnli"),
          data_dir("mnli", lambda rows: ["\ufeff" + json.dumps(rows[0]), "{bad"]), "out"),
        C("squad answer start -1", "data", train_dd("squad"),
          data_dir("squad", first(lambda r: {**r, "answers": [{**r["answers"][0],
                                                                "start": -1}]})), "out"),
        C("squad answer text ''", "data", train_dd("squad"),
          data_dir("squad", first(lambda r: {**r, "answers": [{"text": "", "start": 0}]})),
          "out"),
        C("squad answers a string", "data", train_dd("squad"),
          data_dir("squad", put(answers="Meridian")), "out"),
        C("squad SQuAD json answer_start '12'", "data", train_dd("squad"),
          data_dir("squad", None, name="train.json", raw=json.dumps({"data": [{"title": "t",
                   "paragraphs": [{"context": "The driver works for Meridian Group.",
                                   "qas": [{"id": "q1", "question": "Who?", "answers": [
                                       {"text": "Meridian Group", "answer_start": "21"}]}]}]}]
                   }).encode()), "out"),
        C("udpos tokens/tags length differ", "data", train_dd("udpos"),
          data_dir("udpos", first(lambda r: {**r, "tags": r["tags"][:-1]}), "train.en.jsonl"),
          "out"),
        C("udpos unknown tag", "data", train_dd("udpos"),
          data_dir("udpos", first(lambda r: {**r, "tags": ["XYZ"] * len(r["tags"])}),
                   "train.en.jsonl"), "out"),
        C("udpos conll row without tag", "data",
          lambda c: train_dd("udpos")(c),
          both(data_dir("udpos", lambda rows: rows, "train.en.jsonl"),
               lambda c: (c / "data" / "train.en.jsonl").unlink(),
               write("data/train.en.conll", "The\tDET\ndog\nbarks\tVERB\n\n")), "out"),
        C("mnli tsv label 'yes'", "data", train_dd("mnli"),
          both(data_dir("mnli", lambda rows: rows),
               lambda c: (c / "data" / "train.jsonl").unlink(),
               write("data/train.tsv", "premise\thypothesis\tlabel\na\tb\t0\nc\td\tyes\n")),
          "out"),
        # ---- recipes --------------------------------------------------------------------------
        C("recipe train.max_steps 0", "recipes", recipe(RECIPE),
          write("r.yaml", RECIPE.replace("max_steps: 1", "max_steps: 0")), "out"),
        C("recipe train.warmup_ratio 2", "recipes", recipe(RECIPE),
          write("r.yaml", RECIPE.replace("max_steps: 1", "max_steps: 1, warmup_ratio: 2")),
          "out"),
        C("recipe is a list", "recipes", recipe(RECIPE), write("r.yaml", "- a\n- b\n"), "out"),
        C("recipe key typo trian", "recipes", recipe(RECIPE),
          write("r.yaml", RECIPE.replace("train:", "trian:")), "out"),
        C("recipe override train.lr=abc", "recipes", recipe(RECIPE, "train.lr=abc"),
          write("r.yaml", RECIPE), "out"),
        C("recipe override without =", "recipes", recipe(RECIPE, "train.lr"),
          write("r.yaml", RECIPE), "out"),
        C("recipe tab-indented", "recipes", recipe(RECIPE),
          write("r.yaml", RECIPE.replace("train:", "\ttrain:")), "out"),
        C("recipe grid.seeds a string", "recipes", recipe(RECIPE),
          write("r.yaml", RECIPE.replace("seeds: [1]", "seeds: one")), "out"),
        # ---- damaged module folders -----------------------------------------------------------
        C("manifest is a JSON list", "modules", evaluate(),
          module_copy("bn", lambda m: (m / "manifest.json").write_text("[1, 2]"))),
        C("manifest files is a string", "modules", evaluate(),
          module_copy("bn", manifest_edit(files="abc"))),
        C("manifest method is 42", "modules", evaluate(),
          module_copy("bn", manifest_edit(method=42))),
        C("manifest labels a dict", "modules", evaluate(),
          module_copy("bn", manifest_edit(labels={"a": 1}))),
        C("head.safetensors is a directory", "modules", evaluate(),
          module_copy("bn", lambda m: ((m / "head.safetensors").unlink(),
                                       (m / "head.safetensors").mkdir()))),
        C("weights symlink out of the module", "modules", evaluate(),
          module_copy("bn", lambda m: (shutil.move(m / "module.safetensors", m.parent / "w"),
                                       (m / "module.safetensors").symlink_to(m.parent / "w")))),
        C("empty module folder", "modules", evaluate(), lambda c: (c / "m").mkdir()),
        C("truncated weights, stacked on", "modules",
          lambda c: ["train-target", "--task", "xnli", *QUICK, "--data", "samples", "--method",
                     "lora", "--stack", str(c / "m"), "-o", str(c / "out")],
          module_copy("lora", lambda m: (m / "module.safetensors").write_bytes(
              (m / "module.safetensors").read_bytes()[:100])), "out"),
        C("merge a damaged head", "modules",
          lambda c: ["merge", "--merge", f"{c / 'm'},{c / 'n'}", "-o", str(c / "out")],
          both(module_copy("lora"), module_copy("lora", lambda m: (m / "head.safetensors")
                                                .write_bytes(b"\0" * 64), name="n")), "out"),
        C("export a module without manifest", "modules",
          lambda c: ["export", str(c / "m"), "--format", "peft", "-o", str(c / "out")],
          module_copy("lora", lambda m: (m / "manifest.json").unlink()), "out"),
        # ---- locks and real faults -------------------------------------------------------------
        C("train -o on a full tmpfs", "faults", samples("mnli", "-o", "fs/mod"),
          tmpfs("fs", "96k", fill=True), "fs/mod", needs_root=True),
        C("train -o on a read-only tmpfs", "faults", samples("mnli", "-o", "fs/mod"),
          tmpfs("fs", "64k", ro=True), "fs/mod", needs_root=True),
        C("evaluate -o on a full tmpfs", "faults", evaluate("-o", "fs/e"),
          both(module_copy("bn"), tmpfs("fs", "32k", fill=True, free=0)), "fs/e",
          needs_root=True),
        C("export -o on a full tmpfs", "faults",
          lambda c: ["export", str(c / "m"), "--format", "peft", "-o", str(c / "fs" / "x")],
          both(module_copy("lora"), tmpfs("fs", "32k", fill=True)), "fs/x", needs_root=True),
        C("merge -o on a read-only tmpfs", "faults",
          lambda c: ["merge", "--merge", f"{c / 'm'},{c / 'n'}", "-o", str(c / "fs" / "x")],
          both(module_copy("lora"), module_copy("lora", name="n"), tmpfs("fs", "32k", ro=True)),
          "fs/x", needs_root=True),
    ]


# ---- running and classifying ------------------------------------------------------------------
def command(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "adapterxl.cli", *argv]


def env(home: Path) -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), ADAPTERXL_HOME=str(home),
                HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
                TOKENIZERS_PARALLELISM="false")


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (symlinks by their target), every folder by name."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in files:
            p = Path(dirpath, f)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "special"
    return out


def run_case(case: Case, work: Path, home: Path, timeout: float) -> dict:
    folder = work / re.sub(r"[^A-Za-z0-9.-]+", "_", case.name)  # no commas: --merge A,B
    folder.mkdir(parents=True)
    if case.setup:
        case.setup(folder)
    before = snapshot(folder)
    started = time.monotonic()
    try:
        p = subprocess.run(command(case.argv(folder)), cwd=folder, env=env(home),
                           capture_output=True, text=True, timeout=timeout)
        rc, stderr = p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, stderr = "timeout", (e.stderr or b"").decode(errors="replace")
    seconds = time.monotonic() - started
    after = snapshot(folder)
    changed = sorted(k for k in before if after.get(k) != before[k])
    added = sorted(k for k in after if k not in before)
    if case.out:  # the declared output and its staging folders must not appear
        left = [k for k in added if k == case.out or k.startswith(case.out + "/")
                or Path(k).name.startswith("." + Path(case.out).name + ".")]
    else:
        left = [k for k in added if not k.startswith(("cache", "out/", "home"))
                and k not in ("out",)]
    lines = [line for line in stderr.splitlines() if line.strip()]
    problems = []
    if rc == 0:
        verdict = "SILENT"
    else:
        if rc != 2:
            problems.append(f"exit {rc}")
        if len(lines) != 1 or not lines[0].startswith("error:"):
            problems.append(f"{len(lines)} stderr lines")
        if "Traceback" in stderr:
            problems.append("traceback")
        if " unexpected " in stderr:
            problems.append("unexpected")
        if changed:
            problems.append(f"changed {changed[:2]}")
        if left:
            problems.append(f"left {left[:2]}")
        verdict = "DEGRADED" if problems else "CLEAN"
    message = lines[-1] if lines else ""
    if rc == 0 and case.out and any(k == case.out or k.startswith(case.out + "/")
                                    for k in added):
        problems.append("output written")
    return {"name": case.name, "kind": case.kind, "verdict": verdict, "rc": rc,
            "seconds": round(seconds, 1), "problems": problems, "message": message[:160]}


def build_modules(work: Path, home: Path) -> None:
    """The modules the cases read: LoRA and seq_bn MNLI modules, and a PEFT export."""
    for key, method in (("lora", "lora"), ("bn", "seq_bn")):
        MODULES[key] = work / "_modules" / key
        subprocess.run(command(["train-intermediate", "--task", "mnli", *QUICK, "--data",
                                "samples", "--method", method, "-o", str(MODULES[key])]),
                       env=env(home), check=True, capture_output=True)
    MODULES["peft"] = work / "_modules" / "peft"
    subprocess.run(command(["export", str(MODULES["lora"]), "--format", "peft", "-o",
                            str(MODULES["peft"])]), env=env(home), check=True,
                   capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-k", action="append", default=None,
                        help="Only cases whose name contains this (repeatable).")
    parser.add_argument("--keep", default=None, help="Work here and keep it (else a tmp dir).")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="Seconds per case (a loaded machine needs the margin).")
    parser.add_argument("--json", default=None, help="Also write the results here.")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="battery-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    home = work / "_home"
    started = time.monotonic()
    todo = [c for c in cases() if args.k is None or any(k in c.name for k in args.k)]
    for c in todo:
        if c.needs_root and os.geteuid() != 0:
            c.skip = "needs root (tmpfs)"
    build_modules(work, home)
    width = max(len(c.name) for c in todo)

    def one(case):
        r = run_case(case, work / "cases", home, args.timeout)
        note = "; ".join(r["problems"])
        print(f"{r['verdict']:<9} {r['kind']:<8} {r['name']:<{width}} rc={r['rc']!s:<7} "
              f"{r['seconds']:>5}s  {note + ' | ' if note else ''}{r['message']}", flush=True)
        return r

    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(one, [c for c in todo if not c.skip]))
    finally:
        for m in reversed(MOUNTS):
            subprocess.run(["umount", "-l", str(m)], check=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for c in todo:
        if c.skip:
            print(f"{'SKIPPED':<9} {c.kind:<8} {c.name:<{width}} {c.skip}")
    totals = {v: sum(r["verdict"] == v for r in results) for v in ("CLEAN", "DEGRADED",
                                                                    "SILENT")}
    print(f"\n{len(results)} cases: " + ", ".join(f"{v} {n}" for v, n in totals.items())
          + f" ({100 * totals['CLEAN'] / max(1, len(results)):.0f}% clean), "
          f"{time.monotonic() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"totals": totals, "cases": results}, indent=1))
    return 0 if totals["CLEAN"] == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
