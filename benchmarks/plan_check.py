"""The memory planner against an exact count, on the CPU: for each architecture family and
module method, one real training step of a random-weight backbone, with every tensor counted.

- saved: the bytes of the distinct tensors autograd saves for backward in the forward pass
  (parameters excluded), against the planner's "activations" for the same shape;
- peak: the most tensor memory alive at once over two optimizer steps (parameters, gradients,
  AdamW states, activations and transients: `adapterxl.memory.LiveTensors`), against the
  planner's "allocated" (what it predicts for `torch.cuda.max_memory_allocated`).

The planner is asked with `device="cpu"`: the CPU saves the same tensors as CUDA except that
its dropout masks are in the activation dtype (CUDA: 1-byte bool) and its autocast does not
run LayerNorm in fp32 (CUDA's does). SDPA backbones run with attention dropout 0, since the
CPU's SDPA falls back to the math kernel (s² tensors) under dropout where CUDA's flash kernel
does not. So this checks the planner's structure, not the GPU allocator: that check is
`benchmarks/gpu.sh`. Prints JSON lines and a markdown table; nothing here asserts.

    python benchmarks/plan_check.py              # all families x methods, fp32 and bf16
    python benchmarks/plan_check.py --quick      # CI: two cases
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, table  # noqa: E402

# CPU-sized shapes of each family (4 layers, d=256), random weights.
_COMMON = dict(vocab_size=2000, pad_token_id=1, bos_token_id=0, eos_token_id=2)
FAMILIES = {
    "xlm-roberta": dict(model_type="xlm-roberta", hidden_size=256, num_hidden_layers=4,
                        num_attention_heads=4, intermediate_size=1024, type_vocab_size=1,
                        max_position_embeddings=514, attention_probs_dropout_prob=0.0,
                        **_COMMON),
    "xlm-roberta-xl": dict(model_type="xlm-roberta-xl", hidden_size=256, num_hidden_layers=4,
                           num_attention_heads=4, intermediate_size=1024, type_vocab_size=1,
                           max_position_embeddings=514, attention_probs_dropout_prob=0.0,
                           **_COMMON),
    "llama": dict(model_type="llama", hidden_size=256, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, intermediate_size=688,
                  max_position_embeddings=512, tie_word_embeddings=False, **_COMMON),
    "mt5": dict(model_type="mt5", d_model=256, d_kv=64, d_ff=640, num_layers=4, num_heads=4,
                relative_attention_num_buckets=32, feed_forward_proj="gated-gelu",
                tie_word_embeddings=False, decoder_start_token_id=1, **_COMMON),
}
METHODS = ["seq_bn", "double_seq_bn", "par_bn", "lora", "dora", "ia3"]


def check(family: str, method: str, precision: str, seq_len: int, batch: int) -> dict:
    from adapterxl.configs import config_from_spec
    from adapterxl.planning import measure, plan

    spec = FAMILIES[family]
    got = measure(spec, method, precision, seq_len, batch)
    m = plan(family, method=method, precision=precision, seq_len=seq_len, batch=batch,
             config=config_from_spec(spec), device="cpu")["memory_at_batch"]
    predicted_peak = m["frozen_weights"] + m["module_and_head_states"] + m["activations"] + \
        m["activation_transient"]
    mib = 2 ** 20
    return {"family": family, "method": method, "precision": precision, "seq_len": seq_len,
            "batch": batch, "saved_mib": round(got["saved"] / mib, 2),
            "planned_saved_mib": round(m["activations"] / mib, 2),
            "saved_ratio": round(m["activations"] / got["saved"], 3),
            "peak_mib": round(got["peak"] / mib, 2),
            "planned_peak_mib": round(predicted_peak / mib, 2),
            "peak_ratio": round(predicted_peak / got["peak"], 3),
            "weights_mib": round(got["weights"] / mib, 2), **environment()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--precisions", default="bf16,fp32")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="CI-sized: two cases")
    ap.add_argument("--output", help="also write the results as JSON here")
    a = ap.parse_args(argv)
    if a.quick:
        a.families, a.methods, a.precisions, a.seq_len, a.batch = \
            "xlm-roberta,llama", "seq_bn", "bf16", 32, 2
    rows = []
    for family in a.families.split(","):
        for method in a.methods.split(","):
            for precision in a.precisions.split(","):
                try:
                    r = check(family, method, precision, a.seq_len, a.batch)
                except Exception as e:  # noqa: BLE001 - a refused combination is reported
                    r = {"family": family, "method": method, "precision": precision,
                         "error": str(e).splitlines()[0][:160]}
                rows.append(r)
                print(json.dumps(r), flush=True)
    print()
    print(table(rows, [("family", "family"), ("method", "method"), ("precision", "precision"),
                       ("saved_mib", "saved MiB"), ("planned_saved_mib", "planner MiB"),
                       ("saved_ratio", "planner/saved"), ("peak_mib", "peak MiB"),
                       ("planned_peak_mib", "planner peak MiB"), ("peak_ratio", "planner/peak"),
                       ("error", "error")]))
    if a.output:
        Path(a.output).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
