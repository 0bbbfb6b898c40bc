#!/usr/bin/env bash
# Fill benchmarks/RESULTS.md's GPU tables: run from the repository root on a one-GPU machine
# (H100 80 GB or H200) with the project installed:   bash benchmarks/gpu.sh [OUT_DIR]
# Writes JSON per run and the markdown tables to OUT_DIR (default runs/gpu-bench); paste the
# tables with the device line and versions each JSON row carries. ~20-30 min on an H100
# (random weights are built on the GPU: no download). Nothing here asserts a timing.
set -u
OUT=${1:-runs/gpu-bench}
mkdir -p "$OUT"
py=${PYTHON:-python}
run() { name=$1; shift; echo "## $*" | tee "$OUT/$name.md"; "$py" "$@" --output "$OUT/$name.json" 2>"$OUT/$name.err" | tee -a "$OUT/$name.md"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
# (1) + (4): module vs full fine-tuning vs naive baseline
run train_large benchmarks/train_speed.py --size large --steps 50
# (2) precision on XLM-R large; (3) size sweep; planner prediction vs max_memory_allocated
run precision_large benchmarks/scale_speed.py --shapes large --precisions fp32,bf16,8bit,4bit --seq-len 256 --batch 32 --steps 20
run sizes_bf16 benchmarks/scale_speed.py --shapes base,large,xl,xxl,mt5-xxl,llama-13b --precisions bf16 --seq-len 256 --batch 32 --micro-batch 16 --steps 10
run sizes_4bit benchmarks/scale_speed.py --shapes xl,xxl,mt5-xxl,llama-13b --precisions 8bit,4bit --seq-len 256 --batch 32 --micro-batch 16 --steps 10
# the memory goals (XXL and the 13B decoder at micro-batch 16) with gradient checkpointing,
# which the planner says they need
run goals_ckpt benchmarks/scale_speed.py --shapes xxl,llama-13b --precisions bf16,8bit,4bit --seq-len 256 --batch 16 --micro-batch 16 --steps 5 --checkpointing
# planner check at other micro-batches (the "within 15%" question)
run plan_check benchmarks/scale_speed.py --shapes large,xxl --precisions bf16,4bit --seq-len 128 --batch 16 --micro-batch 16 --steps 3
# (5) zero-shot XNLI-sized pass; (6) BUCC-sized mining (400k per side, encoding included)
run eval_large benchmarks/eval_speed.py --shape large --languages 15 --per-language 5010 --bucc-size 400000 --batch 256
run mine_only benchmarks/eval_speed.py --shape large --only retrieval --mine-only --bucc-size 400000
echo "done: $OUT"
