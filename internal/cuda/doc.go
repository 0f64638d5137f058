// Package cuda is foldkit's CUDA runtime: a device with its context and
// stream, device memory through a caching allocator, the kernels compiled
// from the CUDA C sources in kernels/, and cuBLAS loaded at run time.
//
// Everything but this file and a few pure-Go helpers (errors, size classes,
// Math) is built only with the foldkit_cuda tag:
//
//	go test -tags foldkit_cuda ./internal/cuda
//
// The tag is foldkit's own, not gorgonia's cuda tag, because
// gorgonia.org/cu's package init calls cuInit and exits the process when no
// GPU is present, and gorgonia's cuda engine needs cuDNN, which the build
// machines cannot install (see DESIGN.md, "Facts measured"). Without the tag
// this package is empty and the default build has no CUDA dependency.
//
// # Devices and streams
//
// Open(ordinal, opts) retains the device's primary context (the one the CUDA
// runtime and cuBLAS use), creates one stream, loads the PTX modules and
// cuBLAS, and returns a *Device. Every call on a Device locks its OS thread,
// makes the context current, queues its work on the Device's stream and
// returns; work on one Device runs in the order it was queued. A Device is
// safe for concurrent use (calls are serialised by a mutex). Errors from
// asynchronous work (a kernel that faulted) surface at the next call that
// waits for the stream — Sync, Download — naming the last operation queued;
// Options.SyncEachCall makes every call wait, so that an error names the
// kernel that caused it.
//
// # Memory
//
// Buffer[T] is a typed span of device memory. Buffers are allocated through
// a caching allocator: freed blocks go to free lists by size class (four
// classes per power of two, so at most 25% is wasted) and are reused by later
// allocations of the same class, so a model that allocates and frees the same
// activations on every step does not call cuMemAlloc after its first step.
// Because all work runs on one stream, a block freed while kernels that use
// it are still queued can be handed out again at once: the stream orders
// the old uses before the new ones. When cuMemAlloc runs out of memory the
// allocator returns its cached blocks to the driver and tries once more.
// Buffers are freed explicitly (Free); nothing is freed by finalizers.
// Copies between host and device are explicit (Upload, Download, CopyFrom):
// nothing moves to the host unless asked.
//
// # Kernels
//
// The kernels are written in CUDA C in kernels/*.cu and compiled to PTX for
// compute capability 8.0 by nvcc (go generate; the generated .ptx files are
// committed, so building never needs nvcc). The driver JIT-compiles the PTX
// for the GPU at hand (Ampere, Hopper and newer). Each kernel exists for
// float32 and float64 and mirrors the CPU kernel of packages nn, attn and
// rigid; package backend's conformance suite checks each against the CPU.
// Every kernel argument is 8 bytes wide (pointers, int64 sizes, float64
// scalars), as gorgonia.org/cu's Launch requires.
//
// # Emulation
//
// With the build tag foldkit_cudaemu instead of foldkit_cuda, the driver
// layer (driver_emu.go) is replaced by a CPU emulation: device memory is
// host memory, a launch runs the kernel's CUDA C source compiled as C++
// against kernels/emu/emu.h (one OS thread per CUDA thread, shared memory
// as statics, barriers for __syncthreads and warp shuffles), and cuBLAS is
// a loop that rounds its inputs as TF32 or BF16 arithmetic would. All the
// code above the driver — buffers, allocator, launchers, package backend —
// is the code that runs on a GPU, so
//
//	go test -tags foldkit_cudaemu ./internal/cuda/... ./backend/...
//
// checks it, slowly, on a machine without a GPU (CI does, in .ci/cuda.sh).
// It checks indexing, launch arguments and arithmetic, not speed, memory
// coalescing or races the emulation's lockstep cannot show.
//
// # cuBLAS
//
// cuBLAS is not linked: Open dlopens libcublas.so.13, .12 or .11 (the first
// found; Options.CUBLAS names another), so that one binary runs against CUDA
// 11, 12 or 13. Matrix products (Gemm, GemmStridedBatched) are row-major, as
// in package gemm, and map onto cuBLAS's column-major routines by swapping
// the operands. Math selects plain float32 arithmetic (the default), or
// TF32 or BF16 tensor-core arithmetic with float32 inputs, outputs and
// accumulation, which trades precision (about 2⁻¹¹ and 2⁻⁸ relative per
// input) for speed.
package cuda
