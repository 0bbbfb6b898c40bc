"""Training speed of a seq_bn module: adapterxl's native bottleneck engine against AdapterHub's
`adapters` library (only importable on the old stack), same backbone weights, same module
shape, same batches, the engines alternating step by step so machine load hits both alike.

    PYTHONPATH=. python benchmarks/engine_speed.py [--rounds 5] [--steps 10]

Prints tokens/s per engine (median and fastest step) and native / adapters.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

CONFIG = dict(vocab_size=2000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
              intermediate_size=1024, max_position_embeddings=258, pad_token_id=1)


def _native(base):
    from adapterxl.modules._bottleneck import Engine

    model = copy.deepcopy(base)
    engine = Engine(model, "xlm-roberta")
    engine.add("m", "seq_bn", {})
    engine.activate(["m"], None)
    for n, p in model.named_parameters():
        p.requires_grad_("m" in n.split("."))
    return model


def _adapters(base):
    import adapters

    model = copy.deepcopy(base)
    adapters.init(model)
    model.add_adapter("m", config="seq_bn")
    model.train_adapter("m")
    return model


def _step(model, opt, ids, mask) -> float:
    start = time.perf_counter()
    out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    out.float().pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
    return time.perf_counter() - start


def main() -> None:
    from transformers import AutoConfig, AutoModel

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=128)
    args = ap.parse_args()
    torch.manual_seed(0)
    base = AutoModel.from_config(AutoConfig.for_model("xlm-roberta", **CONFIG),
                                 add_pooling_layer=False)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randint(3, 2000, (args.batch, args.length), generator=g),
                torch.ones(args.batch, args.length, dtype=torch.long))
               for _ in range(args.steps)]
    engines = {"native": _native(base), "adapters": _adapters(base)}
    opts = {name: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
            for name, m in engines.items()}
    for name, model in engines.items():  # warm-up
        model.train()
        _step(model, opts[name], *batches[0])
    # Step by step, the engines alternate: on a shared machine other jobs slow down stretches
    # of time, which then hit both alike; the fastest and the median step are reported.
    times = {name: [] for name in engines}
    for _ in range(args.rounds):
        for ids, mask in batches:
            for name, model in engines.items():
                times[name].append(_step(model, opts[name], ids, mask))
    tokens = args.batch * args.length
    rate = {name: (tokens / statistics.median(v), tokens / min(v)) for name, v in times.items()}
    for name, (median, best) in rate.items():
        print(f"{name:9s} tokens/s: median step {median:8.1f}, fastest step {best:8.1f}")
    print(f"ratio native/adapters: median step {rate['native'][0] / rate['adapters'][0]:.3f}, "
          f"fastest step {rate['native'][1] / rate['adapters'][1]:.3f}  (torch threads "
          f"{torch.get_num_threads()}, batch {args.batch}x{args.length}, "
          f"{args.rounds * args.steps} steps per engine)")

if __name__ == "__main__":
    main()
