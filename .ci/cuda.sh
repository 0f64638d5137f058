#!/usr/bin/env bash
# CUDA checks for CI (called by .ci/run). CI has no GPU, so nothing built
# with the foldkit_cuda tag runs here; instead this
#   1. installs Debian's CUDA 11.8 headers, libraries and nvcc if cuda.h is
#      absent (about 2 minutes; DESIGN.md, "Facts measured");
#   2. vets and compiles every package, tests included, with -tags foldkit_cuda;
#   3. checks that the committed PTX is what nvcc makes from the .cu sources;
#   4. runs the CUDA kernels on the CPU emulation: the kernel tests against
#      naive references (internal/cuda/kernels/emu), and package backend's
#      conformance suite and reference cases through the CUDA backend's Go
#      code (-tags foldkit_cudaemu), then the modules' backend paths
#      (triangle, msaattn, ipa, recycle, the Evoformer) and run-module -backend cuda
#      on the same emulation. Set FOLDKIT_SKIP_CUDA_EMU=1 to skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/include/cuda.h ] || ! command -v nvcc >/dev/null; then
  echo "== installing the CUDA 11.8 toolkit (Debian non-free)"
  export DEBIAN_FRONTEND=noninteractive
  sed -i 's/^Components: main$/Components: main contrib non-free/' /etc/apt/sources.list.d/debian.sources
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nvidia-cuda-dev nvidia-cuda-toolkit >/dev/null
fi

echo "== go vet -tags foldkit_cuda"
go vet -tags foldkit_cuda ./...
go vet -tags foldkit_cudaemu ./...

echo "== go test -tags foldkit_cuda -c (compile only)"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test -tags foldkit_cuda -c -o "$bin/" ./...

echo "== PTX is up to date"
for cu in internal/cuda/kernels/*.cu; do
  base=${cu%.cu}
  name=$(basename "$base")
  flags="-O3"
  grep -q -- "-fmad=false -o kernels/$name.ptx" internal/cuda/generate.go && flags="-O3 -fmad=false"
  nvcc -ptx -arch=compute_80 $flags -o "$bin/$name.ptx" "$cu"
  if ! cmp -s "$bin/$name.ptx" "$base.ptx"; then
    echo "$base.ptx is stale: run go generate ./internal/cuda"; exit 1
  fi
done

if [ -z "${FOLDKIT_SKIP_CUDA_EMU:-}" ]; then
  echo "== CUDA kernels on the CPU emulation"
  bash internal/cuda/kernels/emu/run.sh | tail -1
  go test -tags foldkit_cudaemu ./internal/cuda/... ./backend/...
  go test -tags foldkit_cudaemu -run 'Backend' ./triangle ./msaattn ./ipa ./recycle ./alphafold
  go test -tags foldkit_cudaemu -run 'RunModuleBackend|BenchBackend|PredictBackend' ./cmd/foldkit
  go test -tags foldkit_cudaemu ./examples/...
fi
