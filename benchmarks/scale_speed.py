"""Module training throughput and memory across precisions and backbone sizes, with the
memory planner's prediction next to the measurement (the planner's GPU check).

Random-weight backbones built from the real configs' shapes (benchmarks/_common.py SHAPES:
XLM-R base, large, XL, XXL; the mT5-XXL encoder; a Llama-2-13B-shaped decoder) directly in
the target precision (`adapterxl.backbone.random_backbone`), a seq_bn module (or --method) and
a classification head, fixed-length random batches (so the planner's sequence length is
exact), AdamW. Each (shape, precision) runs in its own process. Prints JSON lines and a
markdown table; timings are reported, never asserted.

    python benchmarks/scale_speed.py --quick                       # CI: tiny shape, seconds
    python benchmarks/scale_speed.py --shapes small --precisions fp32,bf16,8bit,4bit   # CPU
    python benchmarks/scale_speed.py --shapes base,large,xl,xxl,mt5-xxl,llama-13b \
        --precisions bf16,8bit,4bit --seq-len 256 --batch 32 --steps 20      # one GPU

precision: fp32 / bf16 are the frozen weights' dtype (bf16 autocast with bf16); 8bit / 4bit
are bitsandbytes LLM.int8 / NF4 with double quantization (embeddings bf16). MFU (GPU only):
(4·N + 12·L·d·T) FLOPs per token over 989 TFLOP/s, N the non-embedding parameters.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PEAK_BF16, SHAPES, child, environment, non_embedding_params, peak_memory, table  # noqa: E402


def run(shape: str, precision: str, method: str, seq_len: int, micro: int, batch: int,
        steps: int, warmup: int, checkpointing: bool) -> dict:
    import torch

    from adapterxl.backbone import default_device, random_backbone
    from adapterxl.heads import head_config
    from adapterxl.modules import assemble
    from adapterxl.configs import config_from_spec
    from adapterxl.planning import plan

    device = default_device()
    quantize = precision if precision in ("8bit", "4bit") else "none"
    weights = "bf16" if quantize != "none" else precision
    if device.type == "cpu" and quantize != "none":
        weights = "fp32"  # bitsandbytes' CPU kernels compute in fp32 (as load_backbone does)
    spec = SHAPES[shape]
    t0 = time.perf_counter()
    bb = random_backbone(spec, precision=weights, device=device, quantize=quantize)
    build_s = time.perf_counter() - t0
    if checkpointing:
        bb.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    net, _ = assemble(bb, [], method=method, head=head_config("classification",
                                                              bb.hidden_size, 3))
    net.train()
    params = net.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(0)
    accum = batch // micro
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            sync()
            start = time.perf_counter()
        for _ in range(accum):
            ids = torch.randint(5, 1999, (micro, seq_len), generator=g)
            ids[:, 0] = 0
            b = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
                 "labels": torch.randint(0, 3, (micro,), generator=g).to(device)}
            (net(**b)["loss"] / accum).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    seconds = time.perf_counter() - start
    tokens = steps * batch * seq_len
    cfg = bb.model.config
    n = non_embedding_params(bb.model) if quantize == "none" else None
    out = {"shape": shape, "precision": precision, "weights": weights, "method": method,
           "seq_len": seq_len, "micro_batch": micro, "batch": batch, "steps": steps,
           "checkpointing": checkpointing, "build_s": round(build_s, 1),
           "tokens_per_s": round(tokens / seconds, 1),
           "samples_per_s": round(steps * batch / seconds, 2),
           "trainable_params": sum(p.numel() for p in params), **peak_memory(device),
           **environment()}
    try:  # the planner's prediction for the same settings (GPU: compare with peak_gib)
        p = plan(shape, method=method, quantize=quantize, precision=weights, seq_len=seq_len,
                 batch=micro, config=config_from_spec(spec))
        out["predicted_gib"] = round(p["memory_at_batch"]["allocated"] / 2 ** 30, 3)
        if "peak_gib" in out:
            out["predicted_vs_measured"] = round(out["predicted_gib"] / out["peak_gib"], 3)
        n = n or p["params"]["non_embedding"]
    except Exception as e:  # noqa: BLE001 - the benchmark still reports its timing
        out["plan_error"] = str(e)[:200]
    if device.type == "cuda" and n:
        L = getattr(cfg, "num_hidden_layers", None) or cfg.num_layers
        per_tok = 4 * n + 12 * L * cfg.hidden_size * seq_len
        out["mfu"] = round(per_tok * tokens / seconds / PEAK_BF16, 4)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="small")
    p.add_argument("--precisions", default="fp32,bf16,8bit,4bit")
    p.add_argument("--method", default="seq_bn")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--micro-batch", type=int, default=None, help="default: the batch")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--checkpointing", action="store_true")
    p.add_argument("--quick", action="store_true", help="CI-sized: tiny shape, 2 steps")
    p.add_argument("--output", help="also write the results as JSON here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.shapes, a.seq_len, a.batch, a.steps, a.warmup = "tiny", 32, 4, 2, 1
    micro = a.micro_batch or a.batch
    if a.child:
        print(json.dumps(run(a.shapes, a.precisions, a.method, a.seq_len, micro, a.batch,
                             a.steps, a.warmup, a.checkpointing)))
        return 0
    rows = []
    for shape in a.shapes.split(","):
        for prec in a.precisions.split(","):
            r = child(__file__, ["--shapes", shape, "--precisions", prec, "--method", a.method,
                                 "--seq-len", str(a.seq_len), "--batch", str(a.batch),
                                 "--micro-batch", str(micro), "--steps", str(a.steps),
                                 "--warmup", str(a.warmup)]
                      + (["--checkpointing"] if a.checkpointing else []))
            r.setdefault("shape", shape)
            r.setdefault("precision", prec)
            rows.append(r)
            print(json.dumps(r), flush=True)
    mem = "peak_gib" if any("peak_gib" in r for r in rows) else "peak_rss_gib"
    cols = [("shape", "shape"), ("precision", "precision"), ("tokens_per_s", "tokens/s"),
            ("samples_per_s", "samples/s"), ("trainable_params", "trainable params"),
            (mem, mem.replace("_", " ")), ("predicted_gib", "planner GiB")]
    if mem == "peak_gib":
        cols += [("predicted_vs_measured", "planner/measured"), ("mfu", "MFU")]
    cols.append(("error", "error"))
    print()
    print(table(rows, cols))
    if a.output:
        Path(a.output).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
