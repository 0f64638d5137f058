#!/usr/bin/env bash
# Times foldkit's modules and the same modules in PyTorch, written the way
# OpenFold writes them, on this machine's CPU cores, and prints the ratios
# (foldkit ms / PyTorch ms; below 1: foldkit is faster). Needs Go and a
# Python with torch. Usage, from the repository root:
#   bash benchmarks/pytorch_cpu.sh            # pure-Go BLAS
#   TAGS=openblas bash benchmarks/pytorch_cpu.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$(mktemp -d)}
go build -tags "${TAGS:-}" -o "$out/foldkit" "$root/cmd/foldkit"
python3 "$root/benchmarks/cuda/torch_bench.py" --cpu > "$out/torch_cpu.json"
: > "$out/modules_cpu.jsonl"
for n in 128 256; do
  for m in tri_att_starting tri_mul_outgoing; do
    "$out/foldkit" bench -module "$m" -n "$n" -repeats 5 | tee -a "$out/modules_cpu.jsonl"
  done
done
"$out/foldkit" bench -module msa_row_attention -n 256 -s 128 -repeats 5 | tee -a "$out/modules_cpu.jsonl"
python3 "$root/benchmarks/cuda/compare.py" "$out/torch_cpu.json" - "$out/modules_cpu.jsonl"
