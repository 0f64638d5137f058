#!/usr/bin/env bash
# Runs foldkit's CUDA kernels (../*.cu) on the CPU emulation of emu.h against
# naive references (emu_test.cpp). Needs only g++ (C++20) — no GPU, no nvcc —
# so CI runs it on every push. Usage: bash internal/cuda/kernels/emu/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -O1 -std=c++20 -pthread -Wall -Wno-unused-function -Wno-unknown-pragmas -o "$out/emu_test" "$here/emu_test.cpp"
"$out/emu_test"
