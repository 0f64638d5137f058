// A small CPU emulation of the CUDA execution model, enough to run
// foldkit's kernels (../*.cu) unchanged as C++: each block runs as
// blockDim OS threads; __shared__ variables become function statics (blocks
// run one after another, so the threads of one block share them);
// __syncthreads is a block barrier and warp shuffles exchange through
// memory between per-warp barriers. It checks the kernels' indexing and
// arithmetic, not their speed or their memory model beyond that.
#pragma once

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

using std::max;
using std::min;
using namespace std;

struct dim3 {
	unsigned x = 1, y = 1, z = 1;
};

inline dim3 gridDim, blockDim, blockIdx;
inline thread_local dim3 threadIdx;

struct EmuBlock {
	std::barrier<> bar;
	std::vector<std::unique_ptr<std::barrier<>>> warps;
	std::vector<uint64_t> xchg;
	explicit EmuBlock(int n) : bar(n), xchg(n) {
		for (int w = 0; w * 32 < n; w++) warps.emplace_back(new std::barrier<>(std::min(32, n - 32 * w)));
	}
};
inline thread_local EmuBlock *emu_block;
inline thread_local int emu_tid;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __restrict__

inline void __trap() {
	fprintf(stderr, "__trap: launch configuration does not match the kernel\n");
	abort();
}
inline void __syncthreads() { emu_block->bar.arrive_and_wait(); }

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int o) {
	static_assert(sizeof(T) <= 8, "shuffle of a wide type");
	auto &wb = *emu_block->warps[emu_tid / 32];
	uint64_t bits = 0;
	memcpy(&bits, &v, sizeof(T));
	emu_block->xchg[emu_tid] = bits;
	wb.arrive_and_wait();
	int src = (emu_tid & ~31) | ((emu_tid & 31) ^ o);
	bits = emu_block->xchg[src];
	wb.arrive_and_wait();
	T r;
	memcpy(&r, &bits, sizeof(T));
	return r;
}

inline float __int_as_float(int i) {
	float f;
	memcpy(&f, &i, 4);
	return f;
}
inline double __longlong_as_double(long long i) {
	double d;
	memcpy(&d, &i, 8);
	return d;
}
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {
	return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

// emu_launch runs kernel k on grid × block with the given arguments. One
// OS thread per CUDA thread of a block is started per launch; the threads
// run the blocks one after another, in lockstep.
template <typename... P, typename... A>
void emu_launch(void (*k)(P...), dim3 grid, dim3 block, A... args) {
	gridDim = grid;
	blockDim = block;
	const int n = block.x * block.y * block.z;
	const long long nb = (long long)grid.x * grid.y * grid.z;
	std::barrier<> start(n), done(n);
	std::unique_ptr<EmuBlock> cur;
	std::vector<std::thread> ts;
	ts.reserve(n);
	for (int t = 0; t < n; t++) {
		ts.emplace_back([&, t] {
			for (long long bi = 0; bi < nb; bi++) {
				if (t == 0) {
					cur.reset(new EmuBlock(n));
					blockIdx = dim3{unsigned(bi % grid.x), unsigned(bi / grid.x % grid.y), unsigned(bi / ((long long)grid.x * grid.y))};
				}
				start.arrive_and_wait();
				EmuBlock *b = cur.get();
				emu_block = b;
				emu_tid = t;
				threadIdx = dim3{unsigned(t % block.x), unsigned(t / block.x % block.y), unsigned(t / (block.x * block.y))};
				k(P(args)...);
				// A finished thread no longer takes part in barriers.
				b->bar.arrive_and_drop();
				b->warps[t / 32]->arrive_and_drop();
				done.arrive_and_wait();
			}
		});
	}
	for (auto &th : ts) th.join();
}
