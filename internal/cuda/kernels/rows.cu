// Row kernels: layer normalisation and the row softmax, forward and
// backward (package nn's layernorm.go and softmax.go). One warp owns one
// row; a block of 8 warps owns 8 rows (grid = ceil(rows/8)). The warp's
// lanes stride over the row and combine with shuffles, so sums are taken in
// a different order from the CPU's (round-off differs, results do not).
#include "common.cuh"

#define ROWS_PER_BLOCK 8

__device__ __forceinline__ i64 warp_row() { return (i64)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32; }
__device__ __forceinline__ int lane() { return threadIdx.x % 32; }

// Mean and 1/√(σ² + eps) of row xr (two passes, biased variance), as
// nn.LayerNorm computes them.
template <typename T>
__device__ __forceinline__ void ln_stats(const T *xr, i64 c, T eps, T *m, T *rs) {
	T s = 0;
	for (i64 j = lane(); j < c; j += 32) s += xr[j];
	T mean = warp_sum(s) / (T)c;
	T v = 0;
	for (i64 j = lane(); j < c; j += 32) {
		T d = xr[j] - mean;
		v += d * d;
	}
	v = warp_sum(v) / (T)c;
	*m = mean;
	*rs = (T)1 / sqrt(v + eps);
}

// y = rstd·scale·(x − μ) + offset per row (nn.LayerNorm); mean and rstd, if
// not null, receive the statistics. y may be x.
template <typename T>
__device__ void fk_layernorm_impl(T *y, const T *x, const T *scale, const T *offset, double eps, T *mean, T *rstd, i64 rows, i64 c) {
	i64 r = warp_row();
	if (r >= rows) return;
	const T *xr = x + r * c;
	T m, rs;
	ln_stats(xr, c, (T)eps, &m, &rs);
	if (lane() == 0) {
		if (mean) mean[r] = m;
		if (rstd) rstd[r] = rs;
	}
	T *yr = y + r * c;
	for (i64 j = lane(); j < c; j += 32) yr[j] = rs * scale[j] * (xr[j] - m) + offset[j];
}
#define P_LN(T) (T * y, const T *x, const T *scale, const T *offset, double eps, T *mean, T *rstd, i64 rows, i64 c)
KERNEL_F32_F64(fk_layernorm, P_LN, (y, x, scale, offset, eps, mean, rstd, rows, c))

// The statistics alone (for a backward pass given no saved statistics).
template <typename T>
__device__ void fk_layernorm_stats_impl(const T *x, double eps, T *mean, T *rstd, i64 rows, i64 c) {
	i64 r = warp_row();
	if (r >= rows) return;
	T m, rs;
	ln_stats(x + r * c, c, (T)eps, &m, &rs);
	if (lane() == 0) {
		mean[r] = m;
		rstd[r] = rs;
	}
}
#define P_LN_STATS(T) (const T *x, double eps, T *mean, T *rstd, i64 rows, i64 c)
KERNEL_F32_F64(fk_layernorm_stats, P_LN_STATS, (x, eps, mean, rstd, rows, c))

// dx += rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·scale, x̂ = (x − μ)·rstd
// (the dx part of nn.LayerNormBackward; the parameter gradients are column
// sums, fk_colsum_part/fk_colsum_finish).
template <typename T>
__device__ void fk_layernorm_bwd_impl(T *dx, const T *x, const T *scale, const T *mean, const T *rstd, const T *dy, i64 rows, i64 c) {
	i64 r = warp_row();
	if (r >= rows) return;
	const T *xr = x + r * c;
	const T *dyr = dy + r * c;
	T m = mean[r], rs = rstd[r];
	T sg = 0, sgx = 0;
	for (i64 j = lane(); j < c; j += 32) {
		T g = dyr[j] * scale[j];
		sg += g;
		sgx += g * ((xr[j] - m) * rs);
	}
	T mg = warp_sum(sg) / (T)c;
	T mgx = warp_sum(sgx) / (T)c;
	T *dxr = dx + r * c;
	for (i64 j = lane(); j < c; j += 32) dxr[j] += rs * (dyr[j] * scale[j] - mg - ((xr[j] - m) * rs) * mgx);
}
#define P_LN_BWD(T) (T * dx, const T *x, const T *scale, const T *mean, const T *rstd, const T *dy, i64 rows, i64 c)
KERNEL_F32_F64(fk_layernorm_bwd, P_LN_BWD, (dx, x, scale, mean, rstd, dy, rows, c))

// In-place row softmax (nn.SoftmaxRows): subtract the row maximum, exp in
// double, normalise by the reciprocal of the sum; a row whose maximum is
// −Inf becomes uniform.
template <typename T>
__device__ void fk_softmax_impl(T *x, i64 rows, i64 n) {
	i64 r = warp_row();
	if (r >= rows) return;
	T *xr = x + r * n;
	T mx = neg_inf<T>();
	for (i64 j = lane(); j < n; j += 32) mx = fmax(mx, xr[j]);
	mx = warp_max(mx);
	if (mx == neg_inf<T>()) {
		T u = (T)1 / (T)n;
		for (i64 j = lane(); j < n; j += 32) xr[j] = u;
		return;
	}
	T s = 0;
	for (i64 j = lane(); j < n; j += 32) {
		T e = dexp(xr[j] - mx);
		xr[j] = e;
		s += e;
	}
	T inv = (T)1 / warp_sum(s);
	for (i64 j = lane(); j < n; j += 32) xr[j] *= inv;
}
#define P_SOFTMAX(T) (T * x, i64 rows, i64 n)
KERNEL_F32_F64(fk_softmax, P_SOFTMAX, (x, rows, n))

// dx += y·(dy − Σ y·dy) per row (nn.SoftmaxRowsBackward).
template <typename T>
__device__ void fk_softmax_bwd_impl(T *dx, const T *y, const T *dy, i64 rows, i64 n) {
	i64 r = warp_row();
	if (r >= rows) return;
	const T *yr = y + r * n;
	const T *dyr = dy + r * n;
	T s = 0;
	for (i64 j = lane(); j < n; j += 32) s += yr[j] * dyr[j];
	s = warp_sum(s);
	T *dxr = dx + r * n;
	for (i64 j = lane(); j < n; j += 32) dxr[j] += yr[j] * (dyr[j] - s);
}
#define P_SOFTMAX_BWD(T) (T * dx, const T *y, const T *dy, i64 rows, i64 n)
KERNEL_F32_F64(fk_softmax_bwd, P_SOFTMAX_BWD, (dx, y, dy, rows, n))
