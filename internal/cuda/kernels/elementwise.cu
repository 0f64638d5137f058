// Elementwise kernels: activations, gating products, bias broadcast,
// accumulation and column sums. Each mirrors a CPU kernel of package nn
// (activation.go, linear.go) and computes each element the same way, so the
// results differ from the CPU's only where the CPU sums (column sums).
#include "common.cuh"

// y = sigmoid(x)  (nn.Sigmoid)
template <typename T>
__device__ void fk_sigmoid_impl(T *y, const T *x, i64 n) {
	GRID_LOOP(i, n) y[i] = sigmoid(x[i]);
}
#define P_UNARY(T) (T * y, const T *x, i64 n)
KERNEL_F32_F64(fk_sigmoid, P_UNARY, (y, x, n))

// dx += dy·y·(1 − y)  (nn.SigmoidBackward, from the output y)
template <typename T>
__device__ void fk_sigmoid_bwd_impl(T *dx, const T *y, const T *dy, i64 n) {
	GRID_LOOP(i, n) {
		T v = y[i];
		dx[i] += dy[i] * (v * (1 - v));
	}
}
#define P_BWD(T) (T * dx, const T *y, const T *dy, i64 n)
KERNEL_F32_F64(fk_sigmoid_bwd, P_BWD, (dx, y, dy, n))

// y = max(x, 0), NaN propagating  (nn.ReLU)
template <typename T>
__device__ void fk_relu_impl(T *y, const T *x, i64 n) {
	GRID_LOOP(i, n) {
		T v = x[i];
		y[i] = v <= 0 ? (T)0 : v;
	}
}
KERNEL_F32_F64(fk_relu, P_UNARY, (y, x, n))

// dx += dy·step(x), step = 1 where x > 0, 0 where x ≤ 0 and NaN where x is
// NaN (nn.ReLUBackward, from the input or the output x)
template <typename T>
__device__ void fk_relu_bwd_impl(T *dx, const T *x, const T *dy, i64 n) {
	GRID_LOOP(i, n) {
		T v = x[i];
		T step = v > 0 ? (T)1 : (v != v ? v : (T)0);
		dx[i] += dy[i] * step;
	}
}
#define P_RELU_BWD(T) (T * dx, const T *x, const T *dy, i64 n)
KERNEL_F32_F64(fk_relu_bwd, P_RELU_BWD, (dx, x, dy, n))

// y = a·b  (nn.Mul)
template <typename T>
__device__ void fk_mul_impl(T *y, const T *a, const T *b, i64 n) {
	GRID_LOOP(i, n) y[i] = a[i] * b[i];
}
#define P_BINARY(T) (T * y, const T *a, const T *b, i64 n)
KERNEL_F32_F64(fk_mul, P_BINARY, (y, a, b, n))

// y += a·b  (nn.MulAdd)
template <typename T>
__device__ void fk_mul_add_impl(T *y, const T *a, const T *b, i64 n) {
	GRID_LOOP(i, n) y[i] += a[i] * b[i];
}
KERNEL_F32_F64(fk_mul_add, P_BINARY, (y, a, b, n))

// y = alpha·y + x  (residual accumulation; alpha = 1 for y += x)
template <typename T>
__device__ void fk_axpby_impl(T *y, const T *x, double alpha, i64 n) {
	T a = (T)alpha;
	if (a == (T)1) {
		GRID_LOOP(i, n) y[i] += x[i];
	} else {
		GRID_LOOP(i, n) y[i] = a * y[i] + x[i];
	}
}
#define P_AXPBY(T) (T * y, const T *x, double alpha, i64 n)
KERNEL_F32_F64(fk_axpby, P_AXPBY, (y, x, alpha, n))

// y = sigmoid(g)·x, the gate of AF2's gated attention and triangle updates;
// the same two roundings as nn.Sigmoid followed by nn.Mul.
template <typename T>
__device__ void fk_gate_impl(T *y, const T *g, const T *x, i64 n) {
	GRID_LOOP(i, n) y[i] = sigmoid(g[i]) * x[i];
}
#define P_GATE(T) (T * y, const T *g, const T *x, i64 n)
KERNEL_F32_F64(fk_gate, P_GATE, (y, g, x, n))

// The gradient of fk_gate: with s = sigmoid(g),
// dx += dy·s and dg += (dy·x)·(s·(1 − s)); either output may be null.
template <typename T>
__device__ void fk_gate_bwd_impl(T *dg, T *dx, const T *g, const T *x, const T *dy, i64 n) {
	GRID_LOOP(i, n) {
		T s = sigmoid(g[i]);
		T d = dy[i];
		if (dx) dx[i] += d * s;
		if (dg) dg[i] += (d * x[i]) * (s * (1 - s));
	}
}
#define P_GATE_BWD(T) (T * dg, T * dx, const T *g, const T *x, const T *dy, i64 n)
KERNEL_F32_F64(fk_gate_bwd, P_GATE_BWD, (dg, dx, g, x, dy, n))

// y[r, j] = b[j] for r < rows, j < n: the bias that nn.Linear copies into y
// before the product accumulates onto it.
template <typename T>
__device__ void fk_bias_rows_impl(T *y, const T *b, i64 rows, i64 n) {
	GRID_LOOP(i, rows * n) y[i] = b[i % n];
}
#define P_BIAS_ROWS(T) (T * y, const T *b, i64 rows, i64 n)
KERNEL_F32_F64(fk_bias_rows, P_BIAS_ROWS, (y, b, rows, n))

// Column sums in two deterministic passes. Pass 1: block (blockIdx.x,
// blockIdx.y) sums rows [y·chunk, (y+1)·chunk) of 32 columns: thread
// (tx, ty) sums rows ty, ty+8, ... of column 32·blockIdx.x + tx, then the 8
// partial sums are added in order. part[blockIdx.y, j] receives
//   mode 0: Σ_r a[r, j]                                  (bias gradient)
//   mode 1: Σ_r a[r, j]·(x[r, j] − mean[r])·rstd[r]      (layer-norm scale gradient)
template <typename T>
__device__ void fk_colsum_part_impl(T *part, const T *a, const T *x, const T *mean, const T *rstd, i64 rows, i64 n, i64 chunk, i64 mode) {
	__shared__ T s[8][33];
	i64 j = (i64)blockIdx.x * 32 + threadIdx.x;
	i64 r0 = (i64)blockIdx.y * chunk;
	i64 r1 = min(r0 + chunk, rows);
	T acc = 0;
	if (j < n) {
		for (i64 r = r0 + threadIdx.y; r < r1; r += 8) {
			T v = a[r * n + j];
			if (mode == 1) v *= (x[r * n + j] - mean[r]) * rstd[r];
			acc += v;
		}
	}
	s[threadIdx.y][threadIdx.x] = acc;
	__syncthreads();
	if (threadIdx.y == 0 && j < n) {
		T t = 0;
#pragma unroll
		for (int k = 0; k < 8; k++) t += s[k][threadIdx.x];
		part[(i64)blockIdx.y * n + j] = t;
	}
}
#define P_COLSUM_PART(T) (T * part, const T *a, const T *x, const T *mean, const T *rstd, i64 rows, i64 n, i64 chunk, i64 mode)
KERNEL_F32_F64(fk_colsum_part, P_COLSUM_PART, (part, a, x, mean, rstd, rows, n, chunk, mode))

// Pass 2: dst[j] += Σ_c part[c, j], summed in chunk order.
template <typename T>
__device__ void fk_colsum_finish_impl(T *dst, const T *part, i64 chunks, i64 n) {
	GRID_LOOP(j, n) {
		T t = 0;
		for (i64 c = 0; c < chunks; c++) t += part[c * n + j];
		dst[j] += t;
	}
}
#define P_COLSUM_FINISH(T) (T * dst, const T *part, i64 chunks, i64 n)
KERNEL_F32_F64(fk_colsum_finish, P_COLSUM_FINISH, (dst, part, chunks, n))

// Counts the elements of a strided [batch, rows, width] tensor (element
// (b, r, w) at b·sb + r·sr + w) that are NaN or infinite, adding the count
// to counts[slot]. Used to give attention the CPU's input checks.
template <typename T>
__device__ void fk_count_nonfinite_impl(const T *x, i64 batch, i64 rows, i64 width, i64 sb, i64 sr, unsigned long long *counts, i64 slot) {
	unsigned long long c = 0;
	GRID_LOOP(i, batch * rows * width) {
		i64 w = i % width;
		i64 r = (i / width) % rows;
		i64 b = i / (width * rows);
		if (!isfinite(x[b * sb + r * sr + w])) c++;
	}
	if (c) atomicAdd(counts + slot, c);
}
#define P_COUNT(T) (const T *x, i64 batch, i64 rows, i64 width, i64 sb, i64 sr, unsigned long long *counts, i64 slot)
KERNEL_F32_F64(fk_count_nonfinite, P_COUNT, (x, batch, rows, width, sb, sr, counts, slot))

// dst[b, j, i, e] = src[b, i, j, e] for [batch, rows, cols, block] src
// of n elements (backend Transpose). Each thread writes one element of dst, so writes are
// contiguous; reads are contiguous within a block of block elements.
template <typename T>
__device__ void fk_transpose_impl(T *dst, const T *src, i64 rows, i64 cols, i64 block, i64 n) {
	GRID_LOOP(o, n) {
		i64 e = o % block;
		i64 t = o / block;
		i64 i = t % rows;
		t /= rows;
		i64 j = t % cols;
		i64 b = t / cols;
		dst[o] = src[((b * rows + i) * cols + j) * block + e];
	}
}
#define P_TRANSPOSE(T) (T * dst, const T *src, i64 rows, i64 cols, i64 block, i64 n)
KERNEL_F32_F64(fk_transpose, P_TRANSPOSE, (dst, src, rows, cols, block, n))

// y[r, :] = x[r, :]·s[r] (div = 0) or x[r, :]/(s[r] + eps) (div = 1) over
// [rows, c] of n elements (backend ScaleRows and DivRows), rounding as the CPU: the
// denominator is formed in T, then one division.
template <typename T>
__device__ void fk_scale_rows_impl(T *y, const T *x, const T *s, double eps, i64 div, i64 c, i64 n) {
	T ep = (T)eps;
	GRID_LOOP(i, n) {
		T v = s[i / c];
		y[i] = div ? x[i] / (v + ep) : x[i] * v;
	}
}
#define P_SCALE_ROWS(T) (T * y, const T *x, const T *s, double eps, i64 div, i64 c, i64 n)
KERNEL_F32_F64(fk_scale_rows, P_SCALE_ROWS, (y, x, s, eps, div, c, n))
