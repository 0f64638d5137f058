// Batched rigid-frame operations of package rigid (rigid.go, quat.go,
// update.go, rigid_vjp.go), one thread per frame or per point. A frame is
// 12 consecutive values, the rotation row-major then the translation — the
// memory layout of rigid.Rigid[T] — so a []rigid.Rigid[T] uploads as is. A
// quaternion is (w, x, y, z). Every formula is written with the operations
// in the order the Go code uses, and this file is compiled with
// -fmad=false (no fused multiply-adds), so that the results match the CPU's
// to the last bit wherever the Go compiler does not fuse either (amd64).
// The backward kernels accumulate (+=) into their gradient outputs, any of
// which may be null.
#include "common.cuh"

template <typename T>
struct M3 {
	T a[9];
};
template <typename T>
struct V3 {
	T v[3];
};
template <typename T>
struct Q4 {
	T q[4];
};

template <typename T>
__device__ __forceinline__ M3<T> load_rot(const T *f) {
	M3<T> m;
#pragma unroll
	for (int i = 0; i < 9; i++) m.a[i] = f[i];
	return m;
}
template <typename T>
__device__ __forceinline__ V3<T> load3(const T *p) { return V3<T>{{p[0], p[1], p[2]}}; }
template <typename T>
__device__ __forceinline__ Q4<T> load4(const T *p) { return Q4<T>{{p[0], p[1], p[2], p[3]}}; }
template <typename T>
__device__ __forceinline__ void store3(T *p, V3<T> v) { p[0] = v.v[0], p[1] = v.v[1], p[2] = v.v[2]; }
template <typename T>
__device__ __forceinline__ void add3(T *p, V3<T> v) { p[0] += v.v[0], p[1] += v.v[1], p[2] += v.v[2]; }

template <typename T>
__device__ __forceinline__ M3<T> mat_mul(const M3<T> &a, const M3<T> &b) {
	M3<T> c;
#pragma unroll
	for (int i = 0; i < 3; i++)
#pragma unroll
		for (int j = 0; j < 3; j++) c.a[3 * i + j] = a.a[3 * i] * b.a[j] + a.a[3 * i + 1] * b.a[3 + j] + a.a[3 * i + 2] * b.a[6 + j];
	return c;
}
template <typename T>
__device__ __forceinline__ V3<T> mat_vec(const M3<T> &a, V3<T> v) {
	return V3<T>{{a.a[0] * v.v[0] + a.a[1] * v.v[1] + a.a[2] * v.v[2],
	              a.a[3] * v.v[0] + a.a[4] * v.v[1] + a.a[5] * v.v[2],
	              a.a[6] * v.v[0] + a.a[7] * v.v[1] + a.a[8] * v.v[2]}};
}
template <typename T>
__device__ __forceinline__ V3<T> mat_t_vec(const M3<T> &a, V3<T> v) {
	return V3<T>{{a.a[0] * v.v[0] + a.a[3] * v.v[1] + a.a[6] * v.v[2],
	              a.a[1] * v.v[0] + a.a[4] * v.v[1] + a.a[7] * v.v[2],
	              a.a[2] * v.v[0] + a.a[5] * v.v[1] + a.a[8] * v.v[2]}};
}
template <typename T>
__device__ __forceinline__ M3<T> transpose(const M3<T> &a) {
	return M3<T>{{a.a[0], a.a[3], a.a[6], a.a[1], a.a[4], a.a[7], a.a[2], a.a[5], a.a[8]}};
}
template <typename T>
__device__ __forceinline__ M3<T> outer(V3<T> a, V3<T> b) {
	M3<T> c;
#pragma unroll
	for (int i = 0; i < 3; i++)
#pragma unroll
		for (int j = 0; j < 3; j++) c.a[3 * i + j] = a.v[i] * b.v[j];
	return c;
}
template <typename T>
__device__ __forceinline__ V3<T> add(V3<T> a, V3<T> b) { return V3<T>{{a.v[0] + b.v[0], a.v[1] + b.v[1], a.v[2] + b.v[2]}}; }
template <typename T>
__device__ __forceinline__ V3<T> sub(V3<T> a, V3<T> b) { return V3<T>{{a.v[0] - b.v[0], a.v[1] - b.v[1], a.v[2] - b.v[2]}}; }

// Quaternions, as quat.go.
template <typename T>
__device__ __forceinline__ M3<T> quat_to_rot(Q4<T> q) {
	T w = q.q[0], x = q.q[1], y = q.q[2], z = q.q[3];
	return M3<T>{{w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y),
	              2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x),
	              2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z}};
}
template <typename T>
__device__ __forceinline__ Q4<T> quat_to_rot_vjp(Q4<T> q, const M3<T> &dR) {
	T w = q.q[0], x = q.q[1], y = q.q[2], z = q.q[3];
	const T *g = dR.a;
	return Q4<T>{{2 * (w * (g[0] + g[4] + g[8]) + z * (g[3] - g[1]) + y * (g[2] - g[6]) + x * (g[7] - g[5])),
	              2 * (x * (g[0] - g[4] - g[8]) + y * (g[1] + g[3]) + z * (g[2] + g[6]) + w * (g[7] - g[5])),
	              2 * (y * (-g[0] + g[4] - g[8]) + x * (g[1] + g[3]) + w * (g[2] - g[6]) + z * (g[5] + g[7])),
	              2 * (z * (-g[0] - g[4] + g[8]) + w * (g[3] - g[1]) + x * (g[2] + g[6]) + y * (g[5] + g[7]))}};
}
template <typename T>
__device__ __forceinline__ Q4<T> quat_mul(Q4<T> a, Q4<T> b) {
	return Q4<T>{{a.q[0] * b.q[0] - a.q[1] * b.q[1] - a.q[2] * b.q[2] - a.q[3] * b.q[3],
	              a.q[0] * b.q[1] + a.q[1] * b.q[0] + a.q[2] * b.q[3] - a.q[3] * b.q[2],
	              a.q[0] * b.q[2] - a.q[1] * b.q[3] + a.q[2] * b.q[0] + a.q[3] * b.q[1],
	              a.q[0] * b.q[3] + a.q[1] * b.q[2] - a.q[2] * b.q[1] + a.q[3] * b.q[0]}};
}
template <typename T>
__device__ __forceinline__ Q4<T> conj(Q4<T> q) { return Q4<T>{{q.q[0], -q.q[1], -q.q[2], -q.q[3]}}; }
template <typename T>
__device__ __forceinline__ T qnorm(Q4<T> q) {
	return (T)sqrt((double)(q.q[0] * q.q[0] + q.q[1] * q.q[1] + q.q[2] * q.q[2] + q.q[3] * q.q[3]));
}
template <typename T>
__device__ __forceinline__ Q4<T> normalize(Q4<T> q) {
	T n = qnorm(q);
	return Q4<T>{{q.q[0] / n, q.q[1] / n, q.q[2] / n, q.q[3] / n}};
}
template <typename T>
__device__ __forceinline__ Q4<T> normalize_vjp(Q4<T> q, Q4<T> dn) {
	T s = qnorm(q);
	Q4<T> n;
	T nd = 0;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		n.q[i] = q.q[i] / s;
		nd += n.q[i] * dn.q[i];
	}
	Q4<T> g;
#pragma unroll
	for (int i = 0; i < 4; i++) g.q[i] = (dn.q[i] - n.q[i] * nd) / s;
	return g;
}

// dst[i] = a[i]∘b[i] = (Ra·Rb, Ra·tb + ta). dst may be a or b.
template <typename T>
__device__ void fk_rigid_compose_impl(T *dst, const T *a, const T *b, i64 n) {
	GRID_LOOP(i, n) {
		const T *fa = a + 12 * i, *fb = b + 12 * i;
		M3<T> ra = load_rot(fa), rb = load_rot(fb);
		V3<T> t = add(mat_vec(ra, load3(fb + 9)), load3(fa + 9));
		M3<T> r = mat_mul(ra, rb);
		T *fd = dst + 12 * i;
#pragma unroll
		for (int k = 0; k < 9; k++) fd[k] = r.a[k];
		store3(fd + 9, t);
	}
}
#define P_COMPOSE(T) (T * dst, const T *a, const T *b, i64 n)
KERNEL_F32_F64(fk_rigid_compose, P_COMPOSE, (dst, a, b, n))

// dst[i] = (Rᵀ, −Rᵀ·t). dst may be src.
template <typename T>
__device__ void fk_rigid_invert_impl(T *dst, const T *src, i64 n) {
	GRID_LOOP(i, n) {
		const T *f = src + 12 * i;
		M3<T> rt = transpose(load_rot(f));
		V3<T> t = mat_vec(rt, load3(f + 9));
		T *fd = dst + 12 * i;
#pragma unroll
		for (int k = 0; k < 9; k++) fd[k] = rt.a[k];
		store3(fd + 9, V3<T>{{-t.v[0], -t.v[1], -t.v[2]}});
	}
}
#define P_INVERT(T) (T * dst, const T *src, i64 n)
KERNEL_F32_F64(fk_rigid_invert, P_INVERT, (dst, src, n))

// Maps the m points of each of the n frames (points [n, m, 3], one thread
// per point). mode 0: R·p + t (Apply), 1: R·p (ApplyVec),
// 2: Rᵀ·(p − t) (InvertApply), 3: Rᵀ·p (InvertApplyVec). dst may be p.
template <typename T>
__device__ void fk_rigid_map_impl(T *dst, const T *frames, const T *p, i64 n, i64 m, i64 mode) {
	GRID_LOOP(i, n * m) {
		const T *f = frames + 12 * (i / m);
		M3<T> r = load_rot(f);
		V3<T> x = load3(p + 3 * i), y;
		switch (mode) {
		case 0: y = add(mat_vec(r, x), load3(f + 9)); break;
		case 1: y = mat_vec(r, x); break;
		case 2: y = mat_t_vec(r, sub(x, load3(f + 9))); break;
		default: y = mat_t_vec(r, x); break;
		}
		store3(dst + 3 * i, y);
	}
}
#define P_MAP(T) (T * dst, const T *frames, const T *p, i64 n, i64 m, i64 mode)
KERNEL_F32_F64(fk_rigid_map, P_MAP, (dst, frames, p, n, m, mode))

// Gradients of fk_rigid_map (rigid_vjp.go), one thread per frame summing
// over its m points in order: dFrames[i] += Σ_k frame part, dp[i,k] += point
// part.
template <typename T>
__device__ void fk_rigid_map_bwd_impl(T *dframes, T *dp, const T *frames, const T *p, const T *dy, i64 n, i64 m, i64 mode) {
	GRID_LOOP(i, n) {
		const T *f = frames + 12 * i;
		M3<T> r = load_rot(f);
		V3<T> t = load3(f + 9);
		M3<T> gr = {};
		V3<T> gt = {};
		for (i64 k = 0; k < m; k++) {
			i64 o = 3 * (i * m + k);
			V3<T> x = load3(p + o), d = load3(dy + o);
			M3<T> fr;
			V3<T> ft = {}, px;
			switch (mode) {
			case 0: fr = outer(d, x), ft = d, px = mat_t_vec(r, d); break;
			case 1: fr = outer(d, x), px = mat_t_vec(r, d); break;
			case 2: {
				V3<T> dpp = mat_vec(r, d);
				fr = outer(sub(x, t), d), ft = V3<T>{{-dpp.v[0], -dpp.v[1], -dpp.v[2]}}, px = dpp;
				break;
			}
			default: fr = outer(x, d), px = mat_vec(r, d); break;
			}
#pragma unroll
			for (int c = 0; c < 9; c++) gr.a[c] += fr.a[c];
			gt = add(gt, ft);
			if (dp) add3(dp + o, px);
		}
		if (dframes) {
			T *g = dframes + 12 * i;
#pragma unroll
			for (int c = 0; c < 9; c++) g[c] += gr.a[c];
			add3(g + 9, gt);
		}
	}
}
#define P_MAP_BWD(T) (T * dframes, T * dp, const T *frames, const T *p, const T *dy, i64 n, i64 m, i64 mode)
KERNEL_F32_F64(fk_rigid_map_bwd, P_MAP_BWD, (dframes, dp, frames, p, dy, n, m, mode))

// Gradients of compose (rigid.ComposeVJP): with d the gradient of a∘b,
// da += (dR·Rbᵀ + dt·tbᵀ, dt) and db += (Raᵀ·dR, Raᵀ·dt).
template <typename T>
__device__ void fk_rigid_compose_bwd_impl(T *da, T *db, const T *a, const T *b, const T *d, i64 n) {
	GRID_LOOP(i, n) {
		const T *fa = a + 12 * i, *fb = b + 12 * i, *fd = d + 12 * i;
		M3<T> ra = load_rot(fa), rb = load_rot(fb), dr = load_rot(fd);
		V3<T> dt = load3(fd + 9);
		if (da) {
			M3<T> g = mat_mul(dr, transpose(rb));
			M3<T> o = outer(dt, load3(fb + 9));
			T *ga = da + 12 * i;
#pragma unroll
			for (int k = 0; k < 9; k++) ga[k] += g.a[k] + o.a[k];
			add3(ga + 9, dt);
		}
		if (db) {
			M3<T> g = mat_mul(transpose(ra), dr);
			T *gb = db + 12 * i;
#pragma unroll
			for (int k = 0; k < 9; k++) gb[k] += g.a[k];
			add3(gb + 9, mat_t_vec(ra, dt));
		}
	}
}
#define P_COMPOSE_BWD(T) (T * da, T * db, const T *a, const T *b, const T *d, i64 n)
KERNEL_F32_F64(fk_rigid_compose_bwd, P_COMPOSE_BWD, (da, db, a, b, d, n))

// Gradient of invert (rigid.InvertVJP): dsrc += (dRinvᵀ − t·dtinvᵀ, −R·dtinv).
template <typename T>
__device__ void fk_rigid_invert_bwd_impl(T *dsrc, const T *src, const T *d, i64 n) {
	GRID_LOOP(i, n) {
		const T *f = src + 12 * i, *fd = d + 12 * i;
		M3<T> g = transpose(load_rot(fd));
		M3<T> o = outer(load3(f + 9), load3(fd + 9));
		V3<T> t = mat_vec(load_rot(f), load3(fd + 9));
		T *gs = dsrc + 12 * i;
#pragma unroll
		for (int k = 0; k < 9; k++) gs[k] += g.a[k] - o.a[k];
		add3(gs + 9, V3<T>{{-t.v[0], -t.v[1], -t.v[2]}});
	}
}
#define P_INVERT_BWD(T) (T * dsrc, const T *src, const T *d, i64 n)
KERNEL_F32_F64(fk_rigid_invert_bwd, P_INVERT_BWD, (dsrc, src, d, n))

// rot[i] = QuatToRot(q[i]) (rot [n, 9], q [n, 4]).
template <typename T>
__device__ void fk_quat_to_rot_impl(T *rot, const T *q, i64 n) {
	GRID_LOOP(i, n) {
		M3<T> r = quat_to_rot(load4(q + 4 * i));
#pragma unroll
		for (int k = 0; k < 9; k++) rot[9 * i + k] = r.a[k];
	}
}
#define P_Q2R(T) (T * rot, const T *q, i64 n)
KERNEL_F32_F64(fk_quat_to_rot, P_Q2R, (rot, q, n))

// dq[i] += QuatToRotVJP(q[i], dRot[i]).
template <typename T>
__device__ void fk_quat_to_rot_bwd_impl(T *dq, const T *q, const T *drot, i64 n) {
	GRID_LOOP(i, n) {
		Q4<T> g = quat_to_rot_vjp(load4(q + 4 * i), load_rot(drot + 9 * i));
#pragma unroll
		for (int k = 0; k < 4; k++) dq[4 * i + k] += g.q[k];
	}
}
#define P_Q2R_BWD(T) (T * dq, const T *q, const T *drot, i64 n)
KERNEL_F32_F64(fk_quat_to_rot_bwd, P_Q2R_BWD, (dq, q, drot, n))

// The backbone update of Algorithm 23 (rigid.ComposeQUpdate): with
// u = (b, c, d, tx, ty, tz), qOut = normalise(q + q⊗(0, b, c, d)) and
// tOut = t + R(q)·(tx, ty, tz). q [n,4], t [n,3], u [n,6]; qOut and tOut may
// be q and t.
template <typename T>
__device__ void fk_compose_q_update_impl(T *qout, T *tout, const T *q, const T *t, const T *u, i64 n) {
	GRID_LOOP(i, n) {
		Q4<T> qq = load4(q + 4 * i);
		const T *ui = u + 6 * i;
		Q4<T> p = quat_mul(qq, Q4<T>{{0, ui[0], ui[1], ui[2]}});
		Q4<T> qn = normalize(Q4<T>{{qq.q[0] + p.q[0], qq.q[1] + p.q[1], qq.q[2] + p.q[2], qq.q[3] + p.q[3]}});
		V3<T> tn = add(load3(t + 3 * i), mat_vec(quat_to_rot(qq), V3<T>{{ui[3], ui[4], ui[5]}}));
#pragma unroll
		for (int k = 0; k < 4; k++) qout[4 * i + k] = qn.q[k];
		store3(tout + 3 * i, tn);
	}
}
#define P_QUPD(T) (T * qout, T * tout, const T *q, const T *t, const T *u, i64 n)
KERNEL_F32_F64(fk_compose_q_update, P_QUPD, (qout, tout, q, t, u, n))

// Gradients of fk_compose_q_update (rigid.ComposeQUpdateVJP): dqNew [n,4]
// (may be null: zero) is the gradient of the new quaternion and dFrame
// [n,12] that of the new frame (FromQuat(qNew, tNew)); dq, dt, du += the
// gradients of q, t, u.
template <typename T>
__device__ void fk_compose_q_update_bwd_impl(T *dq, T *dt, T *du, const T *q, const T *t, const T *u, const T *dqnew, const T *dframe, i64 n) {
	GRID_LOOP(i, n) {
		Q4<T> qq = load4(q + 4 * i);
		const T *ui = u + 6 * i;
		Q4<T> v = {{1, ui[0], ui[1], ui[2]}};
		Q4<T> p = quat_mul(qq, Q4<T>{{0, ui[0], ui[1], ui[2]}});
		Q4<T> qu = {{qq.q[0] + p.q[0], qq.q[1] + p.q[1], qq.q[2] + p.q[2], qq.q[3] + p.q[3]}};
		Q4<T> qn = normalize(qu);
		const T *fd = dframe + 12 * i;
		Q4<T> gn = quat_to_rot_vjp(qn, load_rot(fd));
		if (dqnew) {
#pragma unroll
			for (int k = 0; k < 4; k++) gn.q[k] += dqnew[4 * i + k];
		}
		Q4<T> gqu = normalize_vjp(qu, gn);
		Q4<T> gq = quat_mul(gqu, conj(v));  // QuatMultiplyVJP: da = d⊗b̄
		Q4<T> gv = quat_mul(conj(qq), gqu); //                  db = ā⊗d
		V3<T> dtn = load3(fd + 9);
		V3<T> tu = {{ui[3], ui[4], ui[5]}};
		M3<T> r = quat_to_rot(qq);
		V3<T> gtu = mat_t_vec(r, dtn);
		Q4<T> gr = quat_to_rot_vjp(qq, outer(dtn, tu));
		if (dq) {
#pragma unroll
			for (int k = 0; k < 4; k++) dq[4 * i + k] += gq.q[k] + gr.q[k];
		}
		if (dt) add3(dt + 3 * i, dtn);
		if (du) {
			T *g = du + 6 * i;
			g[0] += gv.q[1], g[1] += gv.q[2], g[2] += gv.q[3];
			g[3] += gtu.v[0], g[4] += gtu.v[1], g[5] += gtu.v[2];
		}
	}
}
#define P_QUPD_BWD(T) (T * dq, T * dt, T * du, const T *q, const T *t, const T *u, const T *dqnew, const T *dframe, i64 n)
KERNEL_F32_F64(fk_compose_q_update_bwd, P_QUPD_BWD, (dq, dt, du, q, t, u, dqnew, dframe, n))
