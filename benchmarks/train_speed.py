"""Training throughput: adapterxl defaults vs a naive baseline vs full fine-tuning.

Random-weight XLM-R-architecture backbones built from a config (no download), random token
ids with an XNLI-like length distribution (premise + hypothesis: log-normal, median ~48
tokens, long tail, clipped to 8..256). Each variant runs in its own process so peak memory is
its own. Prints JSON lines and a markdown table; timings are reported, never asserted.

    python benchmarks/train_speed.py                 # size small, 30 measured steps
    python benchmarks/train_speed.py --quick         # CI-sized: tiny, a few steps
    python benchmarks/train_speed.py --size large --steps 50   # on a GPU
    # --module-layers (AdapterDrop-style) against all layers, on the real e5-small backbone,
    # single-threaded, the two variants interleaved over 5 rounds (medians):
    OMP_NUM_THREADS=1 python benchmarks/train_speed.py --model builtin:e5-small \
        --variants module,module-layers --module-layers top:6 --rounds 5 --max-length 128

Variants (same data, same effective batch):
  module   adapterxl defaults: seq_bn module on the frozen backbone, dynamic padding with
           length-grouped batches, bf16 autocast and SDPA on GPU
  naive    the same module, but padded to max length, random batches, fp32
  module-nogroup  dynamic padding without length grouping (what grouping adds)
  full     full fine-tuning with adapterxl's batching (what freezing saves)
  module-layers   `module` with the module only in --module-layers (backward stops at the
           lowest module)
  module-compile  `module` under torch.compile (inductor, dynamic shapes); its compilation
           falls in the warm-up steps, reported as warmup_seconds
With --model (e.g. builtin:e5-small) the backbone is that checkpoint instead of a random one.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {  # shapes from the real configs; vocabulary of the bundled tokenizer for CPU sizes
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=1024),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096),
}
VARIANTS = ("module", "naive", "module-nogroup", "full")  # and module-layers, on request


def lengths(n: int, seed: int, max_length: int) -> list[int]:
    import random

    rng = random.Random(seed)
    return [min(max_length, max(8, int(rng.lognormvariate(math.log(48), 0.45))))
            for _ in range(n)]


def run_variant(variant: str, size: str, steps: int, batch: int, max_length: int, warmup: int,
                model_id: str | None = None, module_layers: str | None = None) -> dict:
    import torch
    from transformers import AutoConfig, AutoModel, DataCollatorWithPadding

    from adapterxl.backbone import TOKENIZER_FILE, Backbone, default_device, default_precision
    from adapterxl.data.preprocess import loader
    from adapterxl.heads import head_config
    from adapterxl.modules import assemble, with_module_layers
    from transformers import XLMRobertaTokenizerFast

    torch.manual_seed(0)
    device = default_device()
    precision = "fp32" if variant == "naive" else default_precision(device)
    attn = "eager" if variant == "naive" else "sdpa"
    if model_id is not None:
        from adapterxl.backbone import load_backbone

        bb = load_backbone(model_id, precision, device=device)
        tok, config = bb.tokenizer, bb.model.config
        size = model_id
    else:
        tok = XLMRobertaTokenizerFast(tokenizer_file=str(TOKENIZER_FILE))
        config = AutoConfig.for_model("xlm-roberta", vocab_size=len(tok),
                                      max_position_embeddings=max_length + 2, pad_token_id=1,
                                      **SIZES[size])
        model = AutoModel.from_config(config, add_pooling_layer=False, attn_implementation=attn,
                                      dtype=torch.float32 if precision == "fp32"
                                      else torch.bfloat16)
        model.to(device)
        model.requires_grad_(False)
        bb = Backbone(model=model, tokenizer=tok, id=f"random:{size}", fingerprint="random",
                      model_type="xlm-roberta", hidden_size=config.hidden_size,
                      precision=precision, quantize="none", device=device)
    method_config = with_module_layers("seq_bn", {}, module_layers, config.num_hidden_layers) \
        if variant == "module-layers" else {}
    net, _ = assemble(bb, [], method="seq_bn", config=method_config,
                      head=head_config("classification", config.hidden_size, 3))
    if variant == "full":
        # Full fine-tuning trains fp32 master weights.
        net.encoder.float()
        bb.precision = "bf16" if precision == "bf16" else "fp32"
        net.encoder.requires_grad_(True)
    n = (steps + warmup) * batch
    lens = lengths(n, 0, max_length)
    g = torch.Generator().manual_seed(0)
    features = [{"input_ids": [0] + torch.randint(5, len(tok) - 1, (L - 2,), generator=g).tolist() + [2],
                 "attention_mask": [1] * L, "labels": i % 3} for i, L in enumerate(lens)]
    if variant == "naive":
        collate = DataCollatorWithPadding(tok, padding="max_length", max_length=max_length)
        dl = torch.utils.data.DataLoader(features, batch_size=batch, shuffle=True, collate_fn=collate)
    else:
        dl = loader(features, tok, batch, shuffle=True, seed=0, device=device)
        if variant == "module-nogroup":
            dl.batch_sampler.group = 1
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    net.train()
    step_net = torch.compile(net, dynamic=True) if variant == "module-compile" else net
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    tokens = padded = samples = 0
    start, began = None, time.perf_counter()
    for i, b in enumerate(dl):
        if i == warmup:
            sync()
            start = time.perf_counter()
        b = {k: v.to(device) for k, v in b.items()}
        loss = step_net(**b)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            tokens += int(b["attention_mask"].sum())
            padded += b["input_ids"].numel()
            samples += b["input_ids"].shape[0]
    sync()
    seconds = time.perf_counter() - start
    non_emb = sum(p.numel() for n_, p in net.encoder.named_parameters()
                  if "embeddings" not in n_ and "axl" not in n_)
    out = {
        "variant": variant, "size": size, "device": str(device),
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "precision": precision, "attention": attn, "steps": steps, "batch": batch,
        "module_layers": module_layers if variant == "module-layers" else None,
        "tokens_per_s": round(tokens / seconds, 1), "samples_per_s": round(samples / seconds, 2),
        "padding_fraction": round(1 - tokens / padded, 3),
        "trainable_params": sum(p.numel() for p in params), "non_embedding_params": non_emb,
        "torch_threads": torch.get_num_threads(),
        "warmup_seconds": round(start - began, 1),
    }
    if device.type == "cuda":
        out["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        # ≈4N per token for a frozen backbone, 6N for full fine-tuning, + 12·L·d·T attention,
        # counted on the tokens actually computed (padding included).
        L, d = config.num_hidden_layers, config.hidden_size
        T = padded / samples
        per_tok = (6 if variant == "full" else 4) * non_emb + 12 * L * d * T
        out["mfu"] = round(per_tok * padded / seconds / 989e12, 4)
    else:
        out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    return out


def _median(results: list[dict]) -> dict:
    """The round with the median tokens/s (the lower middle one for an even count), with the
    range over all rounds."""
    ranked = sorted(results, key=lambda r: r["tokens_per_s"])
    out = dict(ranked[(len(ranked) - 1) // 2])
    if len(ranked) > 1:
        out["tokens_per_s_range"] = [ranked[0]["tokens_per_s"], ranked[-1]["tokens_per_s"]]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=SIZES, default="small")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--model", help="a backbone to load (e.g. builtin:e5-small) instead of a "
                                   "random --size one")
    p.add_argument("--module-layers", default="top:6",
                   help="the module-layers variant's layers [default: top:6]")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the variants interleaved this many times; report medians")
    p.add_argument("--quick", action="store_true", help="CI-sized: tiny config, 4 steps")
    p.add_argument("--output", help="also write the results as JSON here")
    p.add_argument("--variant", help=argparse.SUPPRESS)  # child process
    a = p.parse_args(argv)
    if a.quick:
        a.size, a.steps, a.warmup, a.batch = "tiny", 4, 1, 16
    if a.variant:
        print(json.dumps(run_variant(a.variant, a.size, a.steps, a.batch, a.max_length, a.warmup,
                                     a.model, a.module_layers)))
        return 0
    runs: dict[str, list[dict]] = {}
    for _ in range(a.rounds):  # interleaved, so that a slow spell of the machine hits all
        for v in a.variants.split(","):
            cmd = [sys.executable, __file__, "--variant", v, "--size", a.size,
                   "--steps", str(a.steps), "--warmup", str(a.warmup), "--batch", str(a.batch),
                   "--max-length", str(a.max_length), "--module-layers", a.module_layers]
            cmd += ["--model", a.model] if a.model else []
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            runs.setdefault(v, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[v][-1]), flush=True)
    results = [_median(rs) for rs in runs.values()]
    base = {r["variant"]: r["tokens_per_s"] for r in results}
    mem = "peak_gib" if "peak_gib" in results[0] else "peak_rss_gib"
    if a.rounds > 1:
        print("\ntokens/s per round: " + "; ".join(
            f"{v}: {', '.join(str(r['tokens_per_s']) for r in rs)}" for v, rs in runs.items()))
    print(f"\n| variant | tokens/s | samples/s | padding | trainable params | {mem} | vs naive | vs full | vs module |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rel = lambda k: f"{r['tokens_per_s'] / base[k]:.2f}x" if k in base else "-"
        print(f"| {r['variant']} | {r['tokens_per_s']:.0f} | {r['samples_per_s']:.1f} | "
              f"{r['padding_fraction']:.0%} | {r['trainable_params']:,} | {r[mem]} | "
              f"{rel('naive')} | {rel('full')} | {rel('module')} |")
    if a.output:
        Path(a.output).write_text(json.dumps(
            {"medians": results, "rounds": runs} if a.rounds > 1 else results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
