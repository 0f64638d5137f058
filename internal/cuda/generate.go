package cuda

// The kernels are compiled to PTX for compute capability 8.0 with CUDA 11.8's
// nvcc (Debian bookworm's nvidia-cuda-toolkit); the driver JIT-compiles the
// PTX for newer GPUs. The .ptx files are committed: run go generate only
// after editing a .cu file. No fast-math flags: expf, logf and division keep
// their IEEE accuracy, which the tolerances of the conformance tests assume.
// rigid.cu is compiled without fused multiply-adds (-fmad=false) so that the
// frame arithmetic rounds as package rigid's Go code does.
//
// kernels/emu runs the same .cu sources on the CPU (a small emulation of
// blocks, threads, shared memory and warp shuffles) against naive
// references, so that their indexing is tested where there is no GPU:
//
//	bash internal/cuda/kernels/emu/run.sh

//go:generate nvcc -ptx -arch=compute_80 -O3 -o kernels/elementwise.ptx kernels/elementwise.cu
//go:generate nvcc -ptx -arch=compute_80 -O3 -o kernels/rows.ptx kernels/rows.cu
//go:generate nvcc -ptx -arch=compute_80 -O3 -o kernels/attention.ptx kernels/attention.cu
//go:generate nvcc -ptx -arch=compute_80 -O3 -fmad=false -o kernels/rigid.ptx kernels/rigid.cu
//go:generate sh -c "grep -ho '\\.entry [A-Za-z0-9_]*' kernels/*.ptx | sed 's/\\.entry \\(.*\\)/K(\\1)/' > kernels/emu/registry.inc"
