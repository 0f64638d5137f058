#!/usr/bin/env bash
# Runs foldkit's CUDA benchmarks and PyTorch's on the same GPU and prints
# the ratios. On the build machine first:
#   ../shared/gpu/build.sh ./backend
#   go build -tags foldkit_cuda -ldflags='-s -w' -o .gpu/bin/foldkit ./cmd/foldkit   # module timings
# then with the device tool: command "bash benchmarks/cuda/run.sh", carry [".gpu"].
# Writes torch.json, go_bench.txt, modules.jsonl and compare.json under
# $OUT (or /tmp).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
# cuBLAS is loaded at run time: put whichever libcublas is installed on the path.
for f in $(find / -xdev \( -name 'libcublas.so.1[0-9]*' -o -name 'libcublasLt.so.1[0-9]*' \) 2>/dev/null | sort -u); do
  export LD_LIBRARY_PATH="$(dirname "$f")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
bin="$root/.gpu/bin/backend.test"
[ -e "$bin.gz" ] && gunzip -f "$bin.gz"
chmod +x "$bin"
python3 "$root/benchmarks/cuda/torch_bench.py" > "$out/torch.json"
"$bin" -test.run '^$' -test.bench 'CUDA' -test.benchtime 10x | tee "$out/go_bench.txt"
: > "$out/modules.jsonl"
if [ -x "$root/.gpu/bin/foldkit" ]; then
  fk="$root/.gpu/bin/foldkit"
  for n in 256 512; do
    for m in tri_att_starting tri_att_ending tri_mul_outgoing tri_mul_incoming; do
      "$fk" bench -backend cuda -module "$m" -n "$n" -repeats 10 | tee -a "$out/modules.jsonl"
    done
  done
  "$fk" bench -backend cuda -module msa_row_attention -n 256 -s 128 -repeats 10 | tee -a "$out/modules.jsonl"
  "$fk" bench -backend cuda -module msa_row_attention -n 384 -s 512 -repeats 10 | tee -a "$out/modules.jsonl"
  "$fk" bench -backend cuda -module evoformer_block -n 256 -s 128 -repeats 5 | tee -a "$out/modules.jsonl"
  "$fk" bench -backend cuda -module model_full -n 256 -s 128 -repeats 3 | tee -a "$out/modules.jsonl"
  "$fk" bench -module model_full -n 256 -s 128 -repeats 1 | tee -a "$out/modules.jsonl"   # the same on the CPU cores
fi
python3 "$root/benchmarks/cuda/compare.py" "$out/torch.json" "$out/go_bench.txt" "$out/modules.jsonl" | tee "$out/compare.json"
