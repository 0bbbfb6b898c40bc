"""Evaluation throughput: zero-shot classification (an XNLI-sized pass) and BUCC-sized
retrieval (encoding + ratio-margin mining with adapterxl.scoring.neighbours.bucc_mine).

Random-weight backbone from a real shape (benchmarks/_common.py), a seq_bn module and a
classification head; inputs are random token ids with XNLI-like lengths (log-normal, median
48) for classification and BUCC-like sentence lengths (median 30) for retrieval, batched with
adapterxl's length-grouped loader exactly as evaluation does. Prints JSON lines and a markdown
table; timings are reported, never asserted.

    python benchmarks/eval_speed.py --quick                  # CI: tiny, a few hundred sentences
    python benchmarks/eval_speed.py --shape small --languages 15 --per-language 500 \
        --bucc-size 4000                                     # CPU, scaled down
    python benchmarks/eval_speed.py --shape large --languages 15 --per-language 5010 \
        --bucc-size 400000                                   # one GPU: XNLI test, BUCC de-en

`--bucc-size` sentences per side are encoded (mean of hidden layer 14/24 of the depth) and
mined both directions with k=4; with --mine-only the encoding is skipped and random unit
vectors of the model's width are mined (the search part alone).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAPES, child, environment, peak_memory, table  # noqa: E402


def _features(n: int, median: int, seed: int, max_length: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        L = min(max_length, max(4, int(rng.lognormvariate(math.log(median), 0.45))))
        out.append({"input_ids": [0] + [rng.randrange(5, 1999) for _ in range(L - 2)] + [2]})
    return out


def _model(shape: str, precision: str | None):
    from adapterxl.backbone import default_device, default_precision, random_backbone
    from adapterxl.heads import head_config
    from adapterxl.modules import assemble

    device = default_device()
    bb = random_backbone(SHAPES[shape], precision=precision or default_precision(device),
                         device=device)
    net, _ = assemble(bb, [], method="seq_bn",
                      head=head_config("classification", bb.hidden_size, 3))
    net.eval()
    return net, bb, device


def zero_shot(shape, languages, per_language, batch, precision, max_length) -> dict:
    import torch

    from adapterxl.data.preprocess import loader

    net, bb, device = _model(shape, precision)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n = tokens = 0
    data = [_features(per_language, 48, lang, max_length) for lang in range(languages)]
    start = time.perf_counter()
    with torch.no_grad():
        for feats in data:
            dl = loader(feats, bb.tokenizer, batch, shuffle=False, device=device)
            for b in dl:
                b = {k: v.to(device) for k, v in b.items()}
                net(**b)["logits"].argmax(-1).cpu()
                n += b["input_ids"].shape[0]
                tokens += int(b["attention_mask"].sum())
    sync()
    s = time.perf_counter() - start
    return {"benchmark": "zero-shot", "shape": shape, "examples": n,
            "seconds": round(s, 2), "examples_per_s": round(n / s, 1),
            "tokens_per_s": round(tokens / s, 1),
            "xnli_full_s": round(15 * 5010 / (n / s), 1), "precision": bb.precision,
            **peak_memory(device), **environment()}


def retrieval(shape, size, batch, precision, max_length, mine_only, block_size) -> dict:
    import torch

    from adapterxl.data.preprocess import loader
    from adapterxl.scoring.neighbours import bucc_mine
    from adapterxl.formats.retrieval import default_layer

    net, bb, device = _model(shape, precision)
    layer = default_layer(net.num_layers)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    sides = []
    if mine_only:
        g = torch.Generator().manual_seed(0)
        sides = [torch.randn(size, bb.hidden_size, generator=g).to(device) for _ in range(2)]
    else:
        data = [_features(size, 30, 100 + side, max_length) for side in range(2)]
        start = time.perf_counter()
        for feats in data:
            dl = loader(feats, bb.tokenizer, batch, shuffle=False, device=device)
            order = [i for idx in dl.batch_sampler for i in idx]
            with torch.no_grad():
                chunks = [net.embed(layer, **{k: v.to(device) for k, v in b.items()})
                          for b in dl]
            emb = torch.empty(size, bb.hidden_size, device=device)
            emb[order] = torch.cat(chunks)
            sides.append(emb)
    sync()
    encode_s = time.perf_counter() - start
    t = time.perf_counter()
    mined = bucc_mine(sides[0], sides[1], k=4, block_size=block_size)
    sync()
    mine_s = time.perf_counter() - t
    return {"benchmark": "retrieval" + (" (mine only)" if mine_only else ""), "shape": shape,
            "examples": 2 * size, "sentences_per_side": size,
            "encode_s": round(encode_s, 2), "mine_s": round(mine_s, 2),
            "seconds": round(encode_s + mine_s, 2),
            "examples_per_s": round(2 * size / (encode_s + mine_s), 1),
            "pairs": len(mined), "precision": bb.precision, **peak_memory(device),
            **environment()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="small", choices=SHAPES)
    p.add_argument("--languages", type=int, default=15)
    p.add_argument("--per-language", type=int, default=5010)
    p.add_argument("--bucc-size", type=int, default=400_000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--block-size", type=int, default=8192)
    p.add_argument("--precision", default=None, help="default: bf16 on a GPU, else fp32")
    p.add_argument("--mine-only", action="store_true")
    p.add_argument("--only", choices=["zero-shot", "retrieval"], default=None)
    p.add_argument("--quick", action="store_true", help="CI-sized: tiny, seconds")
    p.add_argument("--output")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.shape, a.languages, a.per_language, a.bucc_size, a.batch = "tiny", 2, 64, 256, 32
    common = ["--shape", a.shape, "--batch", str(a.batch), "--max-length", str(a.max_length)] \
        + (["--precision", a.precision] if a.precision else [])
    if a.child:
        if a.only == "zero-shot":
            r = zero_shot(a.shape, a.languages, a.per_language, a.batch, a.precision,
                          a.max_length)
        else:
            r = retrieval(a.shape, a.bucc_size, a.batch, a.precision, a.max_length,
                          a.mine_only, a.block_size)
        print(json.dumps(r))
        return 0
    rows = []
    for which in ([a.only] if a.only else ["zero-shot", "retrieval"]):
        extra = (["--languages", str(a.languages), "--per-language", str(a.per_language)]
                 if which == "zero-shot" else
                 ["--bucc-size", str(a.bucc_size), "--block-size", str(a.block_size)]
                 + (["--mine-only"] if a.mine_only else []))
        r = child(__file__, [*common, "--only", which, *extra])
        r.setdefault("benchmark", which)
        rows.append(r)
        print(json.dumps(r), flush=True)
    mem = "peak_gib" if any("peak_gib" in r for r in rows) else "peak_rss_gib"
    print()
    print(table(rows, [("benchmark", "benchmark"), ("shape", "shape"), ("examples", "sentences"),
                       ("seconds", "seconds"), ("examples_per_s", "sentences/s"),
                       ("tokens_per_s", "tokens/s"), ("encode_s", "encode s"),
                       ("mine_s", "mine s"), ("xnli_full_s", "full XNLI s (projected)"),
                       (mem, mem.replace("_", " ")), ("error", "error")]))
    if a.output:
        Path(a.output).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
