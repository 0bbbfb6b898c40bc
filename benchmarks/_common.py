"""Shared by the benchmark scripts: real model shapes (random weights, no download), child
processes (so each run's peak memory is its own), environment facts and markdown tables."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapterxl.configs import BUILTIN, PUBLISHED  # noqa: E402

PEAK_BF16 = 989e12  # H100/H200 SXM dense BF16 FLOP/s (see shared/reference/performance.md)

# The shapes random-weight backbones are built from (adapterxl.configs): "tiny" is
# builtin:tiny-xlmr's with room for 512 positions, "small" a CPU-sized XLM-R between it and
# base; the others are the published configs' shapes, with the special-token ids of the
# builtin tokenizer that random backbones use (pad 1, bos 0, eos 2).
_TOKENS = dict(pad_token_id=1, bos_token_id=0, eos_token_id=2)
_TINY = {**BUILTIN["tiny-xlmr"], "max_position_embeddings": 514}
SHAPES = {
    "tiny": _TINY,
    "small": {**_TINY, "hidden_size": 256, "num_hidden_layers": 4, "intermediate_size": 1024},
    "base": PUBLISHED["xlm-roberta-base"],
    "large": PUBLISHED["xlm-roberta-large"],
    "xl": PUBLISHED["facebook/xlm-roberta-xl"],
    "xxl": PUBLISHED["facebook/xlm-roberta-xxl"],
    "mt5-xxl": {**PUBLISHED["google/mt5-xxl"], **_TOKENS, "decoder_start_token_id": 1},
    "llama-13b": {**PUBLISHED["meta-llama/Llama-2-13b-hf"], **_TOKENS},
}


def environment() -> dict:
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "torch_threads": torch.get_num_threads()}
    for name in ("transformers", "adapters", "peft", "bitsandbytes", "accelerate"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is just not listed
            pass
    if torch.cuda.is_available():
        out["device"] = torch.cuda.get_device_name()
    else:
        out["device"] = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return out


def peak_memory(device) -> dict:
    import torch

    if device.type == "cuda":
        return {"peak_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 3)}
    return {"peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 3)}


def non_embedding_params(model) -> int:
    from torch import nn

    emb = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in emb)


def child(script: str, args: list[str]) -> dict:
    """Run `script --child ...` in a fresh process; its last stdout line is a JSON result."""
    proc = subprocess.run([sys.executable, script, "--child", *args], capture_output=True,
                          text=True, env={**os.environ})
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": err[-300:], "args": args}
    return json.loads(lines[-1])


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    out = ["| " + " | ".join(t for _, t in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key, "-")
            cells.append(f"{v:,.1f}" if isinstance(v, float) and abs(v) >= 100 else
                         f"{v:,}" if isinstance(v, int) else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
