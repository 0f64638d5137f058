// The attention core of package attn on the GPU, forward and backward,
// flash-attention style: the logits are made one key tile at a time in
// registers and shared memory and folded into an online softmax, so that no
// Lq×Lk matrix is ever stored in device memory.
//
//   logits[b,h,q,k] = Scale·(q·k) + MaskBias·(KeyMask[b,k] − 1) + PairBias[h,q,k]
//   o[b,q,h,:]      = Σ_k softmax_k(logits[b,h,q,:])·v[b,k,h,:]
//
// (the three terms added in that order, AF2's, as attn.Forward does). Tensors are
// strided as attn.Layout says: element (b, l, h, c) of Q is at
// b·qsb + l·qsr + h·C + c; K and V use head kh = h, or 0 when one key/value
// head is shared (kvShared). PairBias is [H, Lq, Lk], KeyMask [B, Lk] and
// lse [B, H, Lq], all contiguous; any of PairBias, KeyMask, lse may be null.
//
// Each kernel is a template over the element type T and D, the padded head
// width (16, 32 or 64 ≥ max(C, Cv); AF2's attentions use 8 to 32); the tile
// sizes for each (T, D) are in Cfg and mirrored in attention.go, which
// launches with them.
//
// Forward: one thread per query row; a block of BQ queries of one (b, h)
// walks the keys in tiles of BK, staging K, V, the bias tile and the mask
// terms in shared memory. The thread keeps q and the output accumulator in
// registers and the tile's logits in its row of the bias tile, updates its
// running maximum and sum once per tile (rescaling the accumulator only when
// the maximum grows, exactly as attn.Forward does) and divides by the sum at
// the end.
//
// Backward (as attn.Backward, with D = rowsum(dO⊙O), P = exp(S − lse),
// dS = P⊙(dP − D), dP = dO·Vᵀ): four kernels, each recomputing the logits
// it needs, none holding more than a tile:
//   fk_attn_bwd_prep   per query row: D, and the shift and scale that make
//                      P; rows with |lse| > 512 (all keys masked, where a
//                      float32 lse keeps no digits) get their maximum and
//                      sum recomputed, as attn.Backward's renorm does;
//   fk_attn_bwd_dq     one thread per query: dQ += Scale·dS·K;
//   fk_attn_bwd_dkdv   one thread per key, looping over the query tiles and
//                      the heads that share it: dV += Pᵀ·dO, dK += Scale·dSᵀ·Q;
//   fk_attn_bwd_dbias  one thread per (q, k) of a tile, looping over the
//                      batch: dPairBias += Σ_b dS (the bias is shared over
//                      the batch); no atomics, so results are deterministic.
#include "common.cuh"

// Tile sizes per element type and head width. Shared memory stays under the
// 48 KiB a block may use without opting in.
template <typename T, int D>
struct Cfg;
#define CFG(T, D_, BQ_, BK_, BKK_, BQQ_, TS_)                          \
	template <>                                                         \
	struct Cfg<T, D_> {                                                 \
		static const int BQ = BQ_;   /* queries (threads) per block: fwd, dq */ \
		static const int BK = BK_;   /* keys per tile: fwd, dq */               \
		static const int BKK = BKK_; /* keys (threads) per block: dkdv */       \
		static const int BQQ = BQQ_; /* queries per tile: dkdv */               \
		static const int TS = TS_;   /* tile edge: dbias */                     \
	};
CFG(float, 16, 128, 32, 128, 32, 32)
CFG(float, 32, 128, 32, 128, 32, 32)
CFG(float, 64, 128, 32, 128, 32, 32)
CFG(double, 16, 64, 32, 64, 32, 32)
CFG(double, 32, 64, 32, 64, 32, 32)
CFG(double, 64, 64, 16, 64, 16, 16)

// The logit of query row q (its values in qv, padded with zeros to D)
// against key row j of a shared-memory tile.
template <typename T, int D>
__device__ __forceinline__ T dot(const T *a, const T *b) {
	T s = 0;
#pragma unroll
	for (int c = 0; c < D; c++) s += a[c] * b[c];
	return s;
}

// Loads a tile of n rows (rows r0.., valid below rmax) of a strided matrix
// (row stride sr, width w ≤ D) into sh[n][D], zero-padded, with nthreads
// threads of id t.
template <typename T, int D>
__device__ __forceinline__ void load_tile(T (*sh)[D], int n, const T *base, i64 sr, i64 r0, i64 rmax, i64 w, int t, int nthreads) {
	for (int i = t; i < n * D; i += nthreads) {
		int j = i / D, c = i % D;
		i64 r = r0 + j;
		sh[j][c] = (r < rmax && c < w) ? base[r * sr + c] : (T)0;
	}
}

#define ATTN_IN_PARAMS(T)                                                          \
	const T *Q, i64 qsb, i64 qsr, const T *K, i64 ksb, i64 ksr, const T *V, i64 vsb, \
	    i64 vsr, const T *bias, const T *mask, double scale_, double maskBias_
#define ATTN_DIMS i64 B, i64 H, i64 Lq, i64 Lk, i64 C, i64 Cv, i64 kvShared
#define ATTN_IN_ARGS Q, qsb, qsr, K, ksb, ksr, V, vsb, vsr, bias, mask, scale_, maskBias_
#define ATTN_DIM_ARGS B, H, Lq, Lk, C, Cv, kvShared

template <typename T, int D>
__device__ void attn_fwd(ATTN_IN_PARAMS(T), T *O, i64 osb, i64 osr, T *lse, ATTN_DIMS) {
	const int BQ = Cfg<T, D>::BQ, BK = Cfg<T, D>::BK;
	__shared__ __align__(16) T sK[BK][D];
	__shared__ __align__(16) T sV[BK][D];
	__shared__ T sB[BQ][BK + 1];
	__shared__ T sM[BK];
	if (blockDim.x != BQ) __trap();
	const i64 nqt = (Lq + BQ - 1) / BQ;
	const i64 qt = blockIdx.x % nqt, bh = blockIdx.x / nqt;
	const i64 h = bh % H, b = bh / H, kh = kvShared ? 0 : h;
	const int t = threadIdx.x;
	const i64 q = qt * BQ + t;
	const bool qok = q < Lq;
	const T scale = (T)scale_, mb = (T)maskBias_;

	T qv[D], acc[D];
	const T *qrow = Q + b * qsb + (qok ? q : 0) * qsr + h * C;
#pragma unroll
	for (int c = 0; c < D; c++) {
		qv[c] = (qok && c < C) ? qrow[c] : (T)0;
		acc[c] = 0;
	}
	T m = neg_inf<T>(), l = 0;
	const T *Kb = K + b * ksb + kh * C;
	const T *Vb = V + b * vsb + kh * Cv;
	for (i64 k0 = 0; k0 < Lk; k0 += BK) {
		load_tile<T, D>(sK, BK, Kb, ksr, k0, Lk, C, t, BQ);
		load_tile<T, D>(sV, BK, Vb, vsr, k0, Lk, Cv, t, BQ);
		if (bias) {
			for (int i = t; i < BQ * BK; i += BQ) {
				int qi = i / BK, j = i % BK;
				i64 qq = qt * BQ + qi, kk = k0 + j;
				sB[qi][j] = (qq < Lq && kk < Lk) ? bias[(h * Lq + qq) * Lk + kk] : (T)0;
			}
		}
		if (t < BK) {
			i64 kk = k0 + t;
			sM[t] = (mask && kk < Lk) ? mb * (mask[b * Lk + kk] - 1) : (T)0;
		}
		__syncthreads();

		// Logits into this thread's row of sB (over its bias), and their maximum.
		T mx = neg_inf<T>();
#pragma unroll 2
		for (int j = 0; j < BK; j++) {
			T v = scale * dot<T, D>(qv, sK[j]);
			if (mask) v += sM[j];
			if (bias) v += sB[t][j];
			if (k0 + j >= Lk) v = neg_inf<T>();
			sB[t][j] = v;
			mx = fmax(mx, v);
		}
		T mNew = fmax(m, mx);
		if (m != mNew && k0 > 0) {
			T corr = fexp(m - mNew);
			l *= corr;
#pragma unroll
			for (int c = 0; c < D; c++) acc[c] *= corr;
		}
		m = mNew;
		T sum = 0;
#pragma unroll 2
		for (int j = 0; j < BK; j++) {
			T p = fexp(sB[t][j] - mNew);
			sum += p;
#pragma unroll
			for (int c = 0; c < D; c++) acc[c] += p * sV[j][c];
		}
		l += sum;
		__syncthreads();
	}
	if (!qok) return;
	T inv = (T)1 / l;
	T *orow = O + b * osb + q * osr + h * Cv;
#pragma unroll
	for (int c = 0; c < D; c++)
		if (c < Cv) orow[c] = acc[c] * inv;
	if (lse) lse[(b * H + h) * Lq + q] = m + (T)log((double)l);
}

// The logit of (b, h, q, k) read straight from global memory (the slow path
// of fk_attn_bwd_prep, for fully masked rows only).
template <typename T>
__device__ T logit_global(ATTN_IN_PARAMS(T), i64 b, i64 h, i64 q, i64 k, i64 Lq, i64 Lk, i64 C, i64 kh) {
	const T *qr = Q + b * qsb + q * qsr + h * C;
	const T *kr = K + b * ksb + k * ksr + kh * C;
	T s = 0;
	for (i64 c = 0; c < C; c++) s += qr[c] * kr[c];
	T v = (T)scale_ * s;
	if (mask) v += (T)maskBias_ * (mask[b * Lk + k] - 1);
	if (bias) v += bias[(h * Lq + q) * Lk + k];
	return v;
}

// Per query row (b, h, q): delta = Σ_c dO·O, and shift, rs such that
// P = exp(S − shift)·rs; shift = lse and rs = 1 unless |lse| > renormAbove.
template <typename T>
__device__ void attn_bwd_prep(ATTN_IN_PARAMS(T), const T *O, const T *dO, i64 osb, i64 osr, const T *lse, T *delta, T *shift, T *rs, double renormAbove, ATTN_DIMS) {
	GRID_LOOP(idx, B * H * Lq) {
		i64 q = idx % Lq, h = (idx / Lq) % H, b = idx / (Lq * H);
		const T *orow = O + b * osb + q * osr + h * Cv;
		const T *drow = dO + b * osb + q * osr + h * Cv;
		T d = 0;
		for (i64 c = 0; c < Cv; c++) d += drow[c] * orow[c];
		delta[idx] = d;
		T sh = lse[idx], r = 1;
		if (fabs((double)sh) > renormAbove) {
			i64 kh = kvShared ? 0 : h;
			T m = neg_inf<T>(), l = 0;
			for (i64 k = 0; k < Lk; k++) {
				T s = logit_global<T>(ATTN_IN_ARGS, b, h, q, k, Lq, Lk, C, kh);
				if (s > m) {
					l *= fexp(m - s);
					m = s;
				}
				l += fexp(s - m);
			}
			sh = m;
			r = (T)1 / l;
		}
		shift[idx] = sh;
		rs[idx] = r;
	}
}

// dQ += Scale·Σ_k dS·k, one thread per query (layout of Q).
template <typename T, int D>
__device__ void attn_bwd_dq(ATTN_IN_PARAMS(T), const T *dO, i64 osb, i64 osr, const T *delta, const T *shift, const T *rs, T *dQ, ATTN_DIMS) {
	const int BQ = Cfg<T, D>::BQ, BK = Cfg<T, D>::BK;
	__shared__ __align__(16) T sK[BK][D];
	__shared__ __align__(16) T sV[BK][D];
	__shared__ T sB[BQ][BK + 1];
	__shared__ T sM[BK];
	if (blockDim.x != BQ) __trap();
	const i64 nqt = (Lq + BQ - 1) / BQ;
	const i64 qt = blockIdx.x % nqt, bh = blockIdx.x / nqt;
	const i64 h = bh % H, b = bh / H, kh = kvShared ? 0 : h;
	const int t = threadIdx.x;
	const i64 q = qt * BQ + t;
	const bool qok = q < Lq;
	const T scale = (T)scale_, mb = (T)maskBias_;
	const i64 row = (b * H + h) * Lq + (qok ? q : 0);
	const T sh = shift[row], r = rs[row], dl = delta[row];

	T qv[D], dov[D], dq[D];
	const T *qrow = Q + b * qsb + (qok ? q : 0) * qsr + h * C;
	const T *drow = dO + b * osb + (qok ? q : 0) * osr + h * Cv;
#pragma unroll
	for (int c = 0; c < D; c++) {
		qv[c] = (qok && c < C) ? qrow[c] : (T)0;
		dov[c] = (qok && c < Cv) ? drow[c] : (T)0;
		dq[c] = 0;
	}
	const T *Kb = K + b * ksb + kh * C;
	const T *Vb = V + b * vsb + kh * Cv;
	for (i64 k0 = 0; k0 < Lk; k0 += BK) {
		load_tile<T, D>(sK, BK, Kb, ksr, k0, Lk, C, t, BQ);
		load_tile<T, D>(sV, BK, Vb, vsr, k0, Lk, Cv, t, BQ);
		if (bias) {
			for (int i = t; i < BQ * BK; i += BQ) {
				int qi = i / BK, j = i % BK;
				i64 qq = qt * BQ + qi, kk = k0 + j;
				sB[qi][j] = (qq < Lq && kk < Lk) ? bias[(h * Lq + qq) * Lk + kk] : (T)0;
			}
		}
		if (t < BK) {
			i64 kk = k0 + t;
			sM[t] = (mask && kk < Lk) ? mb * (mask[b * Lk + kk] - 1) : (T)0;
		}
		__syncthreads();
#pragma unroll 2
		for (int j = 0; j < BK; j++) {
			if (k0 + j >= Lk) break;
			T v = scale * dot<T, D>(qv, sK[j]);
			if (mask) v += sM[j];
			if (bias) v += sB[t][j];
			T p = fexp(v - sh) * r;
			T ds = p * (dot<T, D>(dov, sV[j]) - dl);
#pragma unroll
			for (int c = 0; c < D; c++) dq[c] += ds * sK[j][c];
		}
		__syncthreads();
	}
	if (!qok) return;
	T *out = dQ + b * qsb + q * qsr + h * C;
#pragma unroll
	for (int c = 0; c < D; c++)
		if (c < C) out[c] += scale * dq[c];
}

// dV += Σ_q P·dO and dK += Scale·Σ_q dS·q, one thread per key (layouts of K
// and V), summing over the query tiles and over every head that shares the
// key's head. dK or dV may be null.
template <typename T, int D>
__device__ void attn_bwd_dkdv(ATTN_IN_PARAMS(T), const T *dO, i64 osb, i64 osr, const T *delta, const T *shift, const T *rs, T *dK, T *dV, ATTN_DIMS) {
	const int BKK = Cfg<T, D>::BKK, BQQ = Cfg<T, D>::BQQ;
	__shared__ __align__(16) T sQ[BQQ][D];
	__shared__ __align__(16) T sD[BQQ][D];
	__shared__ T sSh[BQQ], sR[BQQ], sDl[BQQ];
	if (blockDim.x != BKK) __trap();
	const i64 KH = kvShared ? 1 : H;
	const i64 nkt = (Lk + BKK - 1) / BKK;
	const i64 kt = blockIdx.x % nkt, bh = blockIdx.x / nkt;
	const i64 kh = bh % KH, b = bh / KH;
	const int t = threadIdx.x;
	const i64 k = kt * BKK + t;
	const bool kok = k < Lk;
	const T scale = (T)scale_;
	const T mterm = (mask && kok) ? (T)maskBias_ * (mask[b * Lk + k] - 1) : (T)0;

	T kv[D], vv[D], dk[D], dv[D];
	const T *krow = K + b * ksb + (kok ? k : 0) * ksr + kh * C;
	const T *vrow = V + b * vsb + (kok ? k : 0) * vsr + kh * Cv;
#pragma unroll
	for (int c = 0; c < D; c++) {
		kv[c] = (kok && c < C) ? krow[c] : (T)0;
		vv[c] = (kok && c < Cv) ? vrow[c] : (T)0;
		dk[c] = 0;
		dv[c] = 0;
	}
	const i64 h0 = kvShared ? 0 : kh, h1 = kvShared ? H : kh + 1;
	for (i64 h = h0; h < h1; h++) {
		const T *Qb = Q + b * qsb + h * C;
		const T *Db = dO + b * osb + h * Cv;
		for (i64 q0 = 0; q0 < Lq; q0 += BQQ) {
			load_tile<T, D>(sQ, BQQ, Qb, qsr, q0, Lq, C, t, BKK);
			load_tile<T, D>(sD, BQQ, Db, osr, q0, Lq, Cv, t, BKK);
			if (t < BQQ) {
				i64 row = (b * H + h) * Lq + min(q0 + t, Lq - 1);
				sSh[t] = shift[row];
				sR[t] = rs[row];
				sDl[t] = delta[row];
			}
			__syncthreads();
			const int nq = (int)min((i64)BQQ, Lq - q0);
			for (int i = 0; i < nq; i++) {
				T v = scale * dot<T, D>(sQ[i], kv);
				if (mask) v += mterm;
				if (bias && kok) v += bias[(h * Lq + q0 + i) * Lk + k];
				T p = fexp(v - sSh[i]) * sR[i];
				T ds = p * (dot<T, D>(sD[i], vv) - sDl[i]);
#pragma unroll
				for (int c = 0; c < D; c++) {
					dv[c] += p * sD[i][c];
					dk[c] += ds * sQ[i][c];
				}
			}
			__syncthreads();
		}
	}
	if (!kok) return;
	if (dK) {
		T *out = dK + b * ksb + k * ksr + kh * C;
#pragma unroll
		for (int c = 0; c < D; c++)
			if (c < C) out[c] += scale * dk[c];
	}
	if (dV) {
		T *out = dV + b * vsb + k * vsr + kh * Cv;
#pragma unroll
		for (int c = 0; c < D; c++)
			if (c < Cv) out[c] += dv[c];
	}
}

// dPairBias[h, q, k] += Σ_b dS[b, h, q, k]. Block (TS, 8) owns a TS×TS tile
// of (q, k) for one head (grid: k tiles, q tiles, heads); thread (tx, ty)
// owns key k0 + tx and queries q0 + ty + 8u. It loops over the batch,
// staging the tile's query, dO, key and value rows in shared memory.
template <typename T, int D>
__device__ void attn_bwd_dbias(ATTN_IN_PARAMS(T), const T *dO, i64 osb, i64 osr, const T *delta, const T *shift, const T *rs, T *dBias, ATTN_DIMS) {
	const int TS = Cfg<T, D>::TS, U = TS / 8;
	__shared__ T sQ[TS][D + 1], sD[TS][D + 1], sK[TS][D + 1], sV[TS][D + 1];
	__shared__ T sSh[TS], sR[TS], sDl[TS], sM[TS];
	if (blockDim.x != TS || blockDim.y != 8) __trap();
	const i64 k0 = (i64)blockIdx.x * TS, q0 = (i64)blockIdx.y * TS, h = blockIdx.z;
	const i64 kh = kvShared ? 0 : h;
	const int tx = threadIdx.x, ty = threadIdx.y, t = ty * TS + tx, nt = TS * 8;
	const T scale = (T)scale_, mb = (T)maskBias_;
	const i64 k = k0 + tx;
	T acc[U], bv[U];
#pragma unroll
	for (int u = 0; u < U; u++) {
		i64 q = q0 + ty + 8 * u;
		acc[u] = 0;
		bv[u] = (bias && q < Lq && k < Lk) ? bias[(h * Lq + q) * Lk + k] : (T)0;
	}
	for (i64 b = 0; b < B; b++) {
		for (int i = t; i < TS * D; i += nt) {
			int j = i / D, c = i % D;
			i64 q = q0 + j, kk = k0 + j;
			sQ[j][c] = (q < Lq && c < C) ? Q[b * qsb + q * qsr + h * C + c] : (T)0;
			sD[j][c] = (q < Lq && c < Cv) ? dO[b * osb + q * osr + h * Cv + c] : (T)0;
			sK[j][c] = (kk < Lk && c < C) ? K[b * ksb + kk * ksr + kh * C + c] : (T)0;
			sV[j][c] = (kk < Lk && c < Cv) ? V[b * vsb + kk * vsr + kh * Cv + c] : (T)0;
		}
		if (t < TS) {
			i64 row = (b * H + h) * Lq + min(q0 + t, Lq - 1);
			sSh[t] = shift[row];
			sR[t] = rs[row];
			sDl[t] = delta[row];
			i64 kk = k0 + t;
			sM[t] = (mask && kk < Lk) ? mb * (mask[b * Lk + kk] - 1) : (T)0;
		}
		__syncthreads();
#pragma unroll
		for (int u = 0; u < U; u++) {
			int qi = ty + 8 * u;
			T v = scale * dot<T, D>(sQ[qi], sK[tx]);
			if (mask) v += sM[tx];
			if (bias) v += bv[u];
			T p = fexp(v - sSh[qi]) * sR[qi];
			acc[u] += p * (dot<T, D>(sD[qi], sV[tx]) - sDl[qi]);
		}
		__syncthreads();
	}
#pragma unroll
	for (int u = 0; u < U; u++) {
		i64 q = q0 + ty + 8 * u;
		if (q < Lq && k < Lk) dBias[(h * Lq + q) * Lk + k] += acc[u];
	}
}

// extern "C" instantiations: NAME_f32_dD and NAME_f64_dD.
#define FWD_PARAMS(T) (ATTN_IN_PARAMS(T), T * O, i64 osb, i64 osr, T * lse, ATTN_DIMS)
#define DQ_PARAMS(T) (ATTN_IN_PARAMS(T), const T *dO, i64 osb, i64 osr, const T *delta, const T *shift, const T *rs, T *dQ, ATTN_DIMS)
#define DKDV_PARAMS(T) (ATTN_IN_PARAMS(T), const T *dO, i64 osb, i64 osr, const T *delta, const T *shift, const T *rs, T *dK, T *dV, ATTN_DIMS)
#define DBIAS_PARAMS(T) (ATTN_IN_PARAMS(T), const T *dO, i64 osb, i64 osr, const T *delta, const T *shift, const T *rs, T *dBias, ATTN_DIMS)

#define ATTN_KERNELS(T, tn, D)                                                                                   \
	extern "C" __global__ void __launch_bounds__(Cfg<T, D>::BQ) fk_attn_fwd_##tn##_d##D FWD_PARAMS(T) {            \
		attn_fwd<T, D>(ATTN_IN_ARGS, O, osb, osr, lse, ATTN_DIM_ARGS);                                            \
	}                                                                                                             \
	extern "C" __global__ void __launch_bounds__(Cfg<T, D>::BQ) fk_attn_bwd_dq_##tn##_d##D DQ_PARAMS(T) {          \
		attn_bwd_dq<T, D>(ATTN_IN_ARGS, dO, osb, osr, delta, shift, rs, dQ, ATTN_DIM_ARGS);                       \
	}                                                                                                             \
	extern "C" __global__ void __launch_bounds__(Cfg<T, D>::BKK) fk_attn_bwd_dkdv_##tn##_d##D DKDV_PARAMS(T) {     \
		attn_bwd_dkdv<T, D>(ATTN_IN_ARGS, dO, osb, osr, delta, shift, rs, dK, dV, ATTN_DIM_ARGS);                 \
	}                                                                                                             \
	extern "C" __global__ void __launch_bounds__(Cfg<T, D>::TS * 8) fk_attn_bwd_dbias_##tn##_d##D DBIAS_PARAMS(T) { \
		attn_bwd_dbias<T, D>(ATTN_IN_ARGS, dO, osb, osr, delta, shift, rs, dBias, ATTN_DIM_ARGS);                 \
	}

ATTN_KERNELS(float, f32, 16)
ATTN_KERNELS(float, f32, 32)
ATTN_KERNELS(float, f32, 64)
ATTN_KERNELS(double, f64, 16)
ATTN_KERNELS(double, f64, 32)
ATTN_KERNELS(double, f64, 64)

#define PREP_PARAMS(T) (ATTN_IN_PARAMS(T), const T *O, const T *dO, i64 osb, i64 osr, const T *lse, T *delta, T *shift, T *rs, double renormAbove, ATTN_DIMS)
template <typename T>
__device__ void fk_attn_bwd_prep_impl PREP_PARAMS(T) {
	attn_bwd_prep<T>(ATTN_IN_ARGS, O, dO, osb, osr, lse, delta, shift, rs, renormAbove, ATTN_DIM_ARGS);
}
KERNEL_F32_F64(fk_attn_bwd_prep, PREP_PARAMS, (ATTN_IN_ARGS, O, dO, osb, osr, lse, delta, shift, rs, renormAbove, ATTN_DIM_ARGS))
