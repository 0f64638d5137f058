// Runs foldkit's CUDA kernels on the CPU emulation of emu.h and compares
// them with naive references computed in double precision here, or, for
// the rigid-frame gradients, with central differences of the emulated
// forward kernels. Tolerances (|got − want| ≤ abs + rel·|want|):
//   float64 kernels: 1e-11 relative: the sums have at most a few hundred
//     terms of size ≤ 10, each adding ~1e-16 relative error;
//   float32 kernels: 2e-5 relative with an absolute floor: float32 unit
//     round-off is 6e-8, and sums of ~100 terms with expf (≤ 2 ulp) give a
//     few 1e-6; 2e-5 leaves a margin of about 5 without hiding an indexing
//     error, which shows as O(0.1–1).
// The exit status is non-zero if any comparison fails.
#include "emu.h"

#include "../attention.cu"
#include "../elementwise.cu"
#include "../rigid.cu"
#include "../rows.cu"

#include <functional>
#include <random>
#include <string>

static int failures = 0;
static std::mt19937_64 rng(1);

static double uni(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }

template <typename T>
static std::vector<T> rand_vec(size_t n, double lo = -1, double hi = 1) {
	std::vector<T> v(n);
	for (auto &x : v) x = (T)uni(lo, hi);
	return v;
}

template <typename T>
static void compare(const std::string &what, const std::vector<T> &got, const std::vector<double> &want, double abs, double rel) {
	if (got.size() != want.size()) {
		printf("FAIL %s: %zu values, want %zu\n", what.c_str(), got.size(), want.size());
		failures++;
		return;
	}
	double worst = 0, werr = 0;
	size_t bad = 0, first = 0;
	for (size_t i = 0; i < got.size(); i++) {
		double e = fabs((double)got[i] - want[i]);
		double lim = abs + rel * fabs(want[i]);
		if (!(e <= lim)) {
			if (!bad) first = i;
			bad++;
		}
		werr = max(werr, e);
		worst = max(worst, e / lim);
	}
	if (bad) {
		printf("FAIL %s: %zu of %zu values out of tolerance; first [%zu] got %.10g want %.10g\n", what.c_str(), bad, got.size(), first, (double)got[first], want[first]);
		failures++;
	} else {
		printf("ok   %-44s max abs err %.3g (%.2g of tolerance)\n", what.c_str(), werr, worst);
	}
}

template <typename T>
static const char *tname() { return sizeof(T) == 4 ? "f32" : "f64"; }

// ---------------------------------------------------------------- attention

struct AttnCase {
	const char *name;
	int B, H, Lq, Lk, C, Cv;
	bool kvShared, bias, mask, fullMask;
	int qpad, kpad, vpad, opad; // extra elements per row
};

template <typename T, int D>
struct Kern;
#define KERN(T, tn, D)                                                                    \
	template <>                                                                           \
	struct Kern<T, D> {                                                                   \
		static constexpr auto fwd = fk_attn_fwd_##tn##_d##D;                              \
		static constexpr auto dq = fk_attn_bwd_dq_##tn##_d##D;                            \
		static constexpr auto dkdv = fk_attn_bwd_dkdv_##tn##_d##D;                        \
		static constexpr auto dbias = fk_attn_bwd_dbias_##tn##_d##D;                      \
		static constexpr auto prep = fk_attn_bwd_prep_##tn;                               \
	};
KERN(float, f32, 16)
KERN(float, f32, 32)
KERN(float, f32, 64)
KERN(double, f64, 16)
KERN(double, f64, 32)
KERN(double, f64, 64)

template <typename T, int D>
static void attn_case(const AttnCase &k) {
	using C = Cfg<T, D>;
	const i64 B = k.B, H = k.H, Lq = k.Lq, Lk = k.Lk, Cq = k.C, Cv = k.Cv;
	const i64 KH = k.kvShared ? 1 : H;
	// Layouts: rows of width heads·C plus padding, batches stacked.
	const i64 qsr = H * Cq + k.qpad, qsb = Lq * qsr;
	const i64 ksr = KH * Cq + k.kpad, ksb = Lk * ksr;
	const i64 vsr = KH * Cv + k.vpad, vsb = Lk * vsr;
	const i64 osr = H * Cv + k.opad, osb = Lq * osr;
	const double scale = 1 / sqrt((double)Cq), mb = 1e9;
	auto Q = rand_vec<T>(B * qsb), K = rand_vec<T>(B * ksb), V = rand_vec<T>(B * vsb);
	auto bias = rand_vec<T>(H * Lq * Lk, -2, 2);
	std::vector<T> mask(B * Lk, 1);
	if (k.mask)
		for (i64 i = 0; i < B * Lk; i++) mask[i] = uni(0, 1) < 0.3 ? 0 : 1;
	if (k.fullMask)
		for (i64 j = 0; j < Lk; j++) mask[(B - 1) * Lk + j] = 0; // last batch element: every key masked
	if (k.mask && !k.fullMask)
		for (i64 b = 0; b < B; b++) mask[b * Lk] = 1; // keep one key per row
	const T *pb = k.bias ? bias.data() : nullptr;
	const T *pm = k.mask || k.fullMask ? mask.data() : nullptr;

	// Reference, in double from the T inputs; logits rounded to T as the
	// kernel holds them (this is what makes a fully masked float32 row
	// uniform).
	auto qa = [&](i64 b, i64 l, i64 h, i64 c) { return (double)Q[b * qsb + l * qsr + h * Cq + c]; };
	auto ka = [&](i64 b, i64 l, i64 h, i64 c) { return (double)K[b * ksb + l * ksr + (k.kvShared ? 0 : h) * Cq + c]; };
	auto va = [&](i64 b, i64 l, i64 h, i64 c) { return (double)V[b * vsb + l * vsr + (k.kvShared ? 0 : h) * Cv + c]; };
	std::vector<double> P(B * H * Lq * Lk), O(B * osb, 0), lse(B * H * Lq);
	for (i64 b = 0; b < B; b++)
		for (i64 h = 0; h < H; h++)
			for (i64 q = 0; q < Lq; q++) {
				double *p = &P[((b * H + h) * Lq + q) * Lk], m = -INFINITY;
				for (i64 j = 0; j < Lk; j++) {
					double s = 0;
					for (i64 c = 0; c < Cq; c++) s += qa(b, q, h, c) * ka(b, j, h, c);
					// In T, in the kernel's (and AF2's) order: mask, then bias.
					T st = (T)(s * scale);
					if (pm) st += (T)mb * (mask[b * Lk + j] - 1);
					if (pb) st += bias[(h * Lq + q) * Lk + j];
					p[j] = (double)st;
					m = max(m, p[j]);
				}
				double sum = 0;
				for (i64 j = 0; j < Lk; j++) sum += (p[j] = exp(p[j] - m));
				for (i64 j = 0; j < Lk; j++) p[j] /= sum;
				lse[(b * H + h) * Lq + q] = m + log(sum);
				for (i64 c = 0; c < Cv; c++) {
					double o = 0;
					for (i64 j = 0; j < Lk; j++) o += p[j] * va(b, j, h, c);
					O[b * osb + q * osr + h * Cv + c] = o;
				}
			}

	// Forward.
	std::vector<T> o(B * osb, 0), l(B * H * Lq);
	emu_launch(Kern<T, D>::fwd, dim3{unsigned(B * H * ((Lq + C::BQ - 1) / C::BQ)), 1, 1}, dim3{C::BQ, 1, 1},
	           Q.data(), qsb, qsr, K.data(), ksb, ksr, V.data(), vsb, vsr, pb, pm, scale, mb,
	           o.data(), osb, osr, l.data(), B, H, Lq, Lk, Cq, Cv, (i64)k.kvShared);
	const bool f32 = sizeof(T) == 4;
	// A fully masked float64 row has logits −1e9 + s, quantised to 1.2e-7
	// (the spacing of doubles near 1e9) differently for different summation
	// orders of s: its probabilities agree to about 1e-7 relative.
	const double rel = f32 ? 2e-5 : (k.fullMask ? 1e-6 : 1e-11), abs = f32 ? 2e-6 : (k.fullMask ? 1e-7 : 1e-13);
	std::string tag = std::string(k.name) + " " + tname<T>() + " d" + std::to_string(D);
	// Padding elements of o are never written: compare them as 0.
	compare(tag + " o", o, O, abs, rel);
	// lse of a fully masked row is ≈ −1e9: compare it relatively.
	compare(tag + " lse", l, lse, abs, rel);

	// Backward: reference gradients of Σ dO·O.
	auto dO = rand_vec<T>(B * osb);
	std::vector<double> dQ(B * qsb, 0), dK(B * ksb, 0), dV(B * vsb, 0), dBias(H * Lq * Lk, 0);
	for (i64 b = 0; b < B; b++)
		for (i64 h = 0; h < H; h++) {
			i64 kh = k.kvShared ? 0 : h;
			for (i64 q = 0; q < Lq; q++) {
				const double *p = &P[((b * H + h) * Lq + q) * Lk];
				std::vector<double> dp(Lk);
				double Dq = 0;
				for (i64 c = 0; c < Cv; c++) Dq += (double)dO[b * osb + q * osr + h * Cv + c] * O[b * osb + q * osr + h * Cv + c];
				for (i64 j = 0; j < Lk; j++) {
					double s = 0;
					for (i64 c = 0; c < Cv; c++) {
						double g = dO[b * osb + q * osr + h * Cv + c];
						s += g * va(b, j, h, c);
						dV[b * vsb + j * vsr + kh * Cv + c] += p[j] * g;
					}
					dp[j] = s;
				}
				for (i64 j = 0; j < Lk; j++) {
					double ds = p[j] * (dp[j] - Dq);
					dBias[(h * Lq + q) * Lk + j] += ds;
					for (i64 c = 0; c < Cq; c++) {
						dQ[b * qsb + q * qsr + h * Cq + c] += scale * ds * ka(b, j, h, c);
						dK[b * ksb + j * ksr + kh * Cq + c] += scale * ds * qa(b, q, h, c);
					}
				}
			}
		}
	// The kernels accumulate: start from 1 and subtract it afterwards.
	std::vector<T> gq(B * qsb, 1), gk(B * ksb, 1), gv(B * vsb, 1), gb(H * Lq * Lk, 1);
	std::vector<T> delta(B * H * Lq), shift(B * H * Lq), rs(B * H * Lq);
	emu_launch(Kern<T, D>::prep, dim3{3, 1, 1}, dim3{64, 1, 1},
	           Q.data(), qsb, qsr, K.data(), ksb, ksr, V.data(), vsb, vsr, pb, pm, scale, mb,
	           (const T *)o.data(), (const T *)dO.data(), osb, osr, (const T *)l.data(), delta.data(), shift.data(), rs.data(), 512.0,
	           B, H, Lq, Lk, Cq, Cv, (i64)k.kvShared);
	emu_launch(Kern<T, D>::dq, dim3{unsigned(B * H * ((Lq + C::BQ - 1) / C::BQ)), 1, 1}, dim3{C::BQ, 1, 1},
	           Q.data(), qsb, qsr, K.data(), ksb, ksr, V.data(), vsb, vsr, pb, pm, scale, mb,
	           (const T *)dO.data(), osb, osr, (const T *)delta.data(), (const T *)shift.data(), (const T *)rs.data(), gq.data(),
	           B, H, Lq, Lk, Cq, Cv, (i64)k.kvShared);
	emu_launch(Kern<T, D>::dkdv, dim3{unsigned(B * KH * ((Lk + C::BKK - 1) / C::BKK)), 1, 1}, dim3{C::BKK, 1, 1},
	           Q.data(), qsb, qsr, K.data(), ksb, ksr, V.data(), vsb, vsr, pb, pm, scale, mb,
	           (const T *)dO.data(), osb, osr, (const T *)delta.data(), (const T *)shift.data(), (const T *)rs.data(), gk.data(), gv.data(),
	           B, H, Lq, Lk, Cq, Cv, (i64)k.kvShared);
	emu_launch(Kern<T, D>::dbias, dim3{unsigned((Lk + C::TS - 1) / C::TS), unsigned((Lq + C::TS - 1) / C::TS), unsigned(H)}, dim3{C::TS, 8, 1},
	           Q.data(), qsb, qsr, K.data(), ksb, ksr, V.data(), vsb, vsr, pb, pm, scale, mb,
	           (const T *)dO.data(), osb, osr, (const T *)delta.data(), (const T *)shift.data(), (const T *)rs.data(), gb.data(),
	           B, H, Lq, Lk, Cq, Cv, (i64)k.kvShared);
	for (auto *g : {&dQ, &dK, &dV, &dBias})
		for (auto &x : *g) x += 1;
	// Gradients are sums of up to B·H·Lq terms; allow a larger floor.
	compare(tag + " dq", gq, dQ, 10 * abs, 4 * rel);
	compare(tag + " dk", gk, dK, 10 * abs, 4 * rel);
	compare(tag + " dv", gv, dV, 10 * abs, 4 * rel);
	compare(tag + " dbias", gb, dBias, 10 * abs, 4 * rel);
}

// ---------------------------------------------------------------- rows

template <typename T>
static void rows_case() {
	const i64 rows = 21, c = 77; // 3 blocks of 8 warps, the last partly idle; c not a multiple of 32
	const bool f32 = sizeof(T) == 4;
	const double rel = f32 ? 2e-5 : 1e-12, abs = f32 ? 2e-6 : 1e-13;
	auto x = rand_vec<T>(rows * c, -3, 5), scale = rand_vec<T>(c, 0.5, 1.5), offset = rand_vec<T>(c), dy = rand_vec<T>(rows * c);
	std::vector<double> y(rows * c), mean(rows), rstd(rows), dx(rows * c), ds(c, 0), dof(c, 0);
	for (i64 r = 0; r < rows; r++) {
		double m = 0, v = 0;
		for (i64 j = 0; j < c; j++) m += x[r * c + j];
		m /= c;
		for (i64 j = 0; j < c; j++) v += (x[r * c + j] - m) * (x[r * c + j] - m);
		v /= c;
		double rs = 1 / sqrt(v + 1e-5);
		mean[r] = m, rstd[r] = rs;
		double sg = 0, sgx = 0;
		for (i64 j = 0; j < c; j++) {
			double xh = (x[r * c + j] - m) * rs;
			y[r * c + j] = xh * scale[j] + offset[j];
			double g = dy[r * c + j] * (double)scale[j];
			sg += g, sgx += g * xh;
			ds[j] += dy[r * c + j] * xh;
			dof[j] += dy[r * c + j];
		}
		for (i64 j = 0; j < c; j++) {
			double xh = (x[r * c + j] - m) * rs;
			dx[r * c + j] = 1 + rs * (dy[r * c + j] * (double)scale[j] - sg / c - xh * sgx / c);
		}
	}
	std::string t = tname<T>();
	std::vector<T> gy(rows * c), gm(rows), gr(rows);
	dim3 grid{unsigned((rows + 7) / 8), 1, 1}, block{256, 1, 1};
	auto ln = sizeof(T) == 4 ? (void (*)(T *, const T *, const T *, const T *, double, T *, T *, i64, i64))(void *)fk_layernorm_f32
	                         : (void (*)(T *, const T *, const T *, const T *, double, T *, T *, i64, i64))(void *)fk_layernorm_f64;
	emu_launch(ln, grid, block, gy.data(), x.data(), scale.data(), offset.data(), 1e-5, gm.data(), gr.data(), rows, c);
	compare("layernorm " + t + " y", gy, y, abs, rel);
	compare("layernorm " + t + " mean", gm, mean, abs, rel);
	compare("layernorm " + t + " rstd", gr, rstd, abs, rel);
	auto st = sizeof(T) == 4 ? (void (*)(const T *, double, T *, T *, i64, i64))(void *)fk_layernorm_stats_f32
	                         : (void (*)(const T *, double, T *, T *, i64, i64))(void *)fk_layernorm_stats_f64;
	std::vector<T> sm(rows), sr(rows);
	emu_launch(st, grid, block, x.data(), 1e-5, sm.data(), sr.data(), rows, c);
	compare("layernorm stats " + t + " rstd", sr, rstd, abs, rel);
	std::vector<T> gdx(rows * c, 1);
	auto lb = sizeof(T) == 4 ? (void (*)(T *, const T *, const T *, const T *, const T *, const T *, i64, i64))(void *)fk_layernorm_bwd_f32
	                         : (void (*)(T *, const T *, const T *, const T *, const T *, const T *, i64, i64))(void *)fk_layernorm_bwd_f64;
	emu_launch(lb, grid, block, gdx.data(), x.data(), scale.data(), gm.data(), gr.data(), dy.data(), rows, c);
	compare("layernorm bwd " + t + " dx", gdx, dx, 4 * abs, 4 * rel);

	// Column sums (bias and scale gradients), with chunks of 5 rows.
	const i64 chunk = 5, nch = (rows + chunk - 1) / chunk;
	std::vector<T> part(nch * c), gds(c, 1), gdo(c, 1);
	auto cp = sizeof(T) == 4 ? (void (*)(T *, const T *, const T *, const T *, const T *, i64, i64, i64, i64))(void *)fk_colsum_part_f32
	                         : (void (*)(T *, const T *, const T *, const T *, const T *, i64, i64, i64, i64))(void *)fk_colsum_part_f64;
	auto cf = sizeof(T) == 4 ? (void (*)(T *, const T *, i64, i64))(void *)fk_colsum_finish_f32
	                         : (void (*)(T *, const T *, i64, i64))(void *)fk_colsum_finish_f64;
	dim3 pg{unsigned((c + 31) / 32), unsigned(nch), 1}, pbk{32, 8, 1};
	emu_launch(cp, pg, pbk, part.data(), dy.data(), (const T *)nullptr, (const T *)nullptr, (const T *)nullptr, rows, c, chunk, (i64)0);
	emu_launch(cf, dim3{2, 1, 1}, dim3{64, 1, 1}, gdo.data(), (const T *)part.data(), nch, c);
	emu_launch(cp, pg, pbk, part.data(), dy.data(), x.data(), (const T *)gm.data(), (const T *)gr.data(), rows, c, chunk, (i64)1);
	emu_launch(cf, dim3{2, 1, 1}, dim3{64, 1, 1}, gds.data(), (const T *)part.data(), nch, c);
	for (auto &v : ds) v += 1;
	for (auto &v : dof) v += 1;
	compare("colsum " + t + " doffset", gdo, dof, 4 * abs, 4 * rel);
	compare("colsum " + t + " dscale", gds, ds, 4 * abs, 4 * rel);

	// Softmax, with a masked entry and a row of −Inf.
	auto s = rand_vec<T>(rows * c, -4, 4);
	s[3] = (T)-1e9;
	for (i64 j = 0; j < c; j++) s[5 * c + j] = -INFINITY;
	std::vector<double> sy(rows * c), sdx(rows * c);
	for (i64 r = 0; r < rows; r++) {
		double m = -INFINITY, sum = 0;
		for (i64 j = 0; j < c; j++) m = max(m, (double)s[r * c + j]);
		for (i64 j = 0; j < c; j++) sum += exp(s[r * c + j] - m);
		for (i64 j = 0; j < c; j++) sy[r * c + j] = std::isinf(m) ? 1.0 / c : exp(s[r * c + j] - m) / sum;
		double d = 0;
		for (i64 j = 0; j < c; j++) d += sy[r * c + j] * dy[r * c + j];
		for (i64 j = 0; j < c; j++) sdx[r * c + j] = 1 + sy[r * c + j] * (dy[r * c + j] - d);
	}
	auto sf = sizeof(T) == 4 ? (void (*)(T *, i64, i64))(void *)fk_softmax_f32 : (void (*)(T *, i64, i64))(void *)fk_softmax_f64;
	emu_launch(sf, grid, block, s.data(), rows, c);
	compare("softmax " + t, s, sy, abs, rel);
	std::vector<T> g(rows * c, 1);
	auto sb = sizeof(T) == 4 ? (void (*)(T *, const T *, const T *, i64, i64))(void *)fk_softmax_bwd_f32
	                         : (void (*)(T *, const T *, const T *, i64, i64))(void *)fk_softmax_bwd_f64;
	emu_launch(sb, grid, block, g.data(), (const T *)s.data(), (const T *)dy.data(), rows, c);
	compare("softmax bwd " + t, g, sdx, abs, rel);
}

// ---------------------------------------------------------------- elementwise

static void elementwise_case() {
	const i64 n = 1000;
	auto x = rand_vec<float>(n, -20, 20), g = rand_vec<float>(n, -20, 20), dy = rand_vec<float>(n);
	std::vector<double> y(n), dx(n), dg(n), bias(3 * 7);
	for (i64 i = 0; i < n; i++) {
		double s = 1 / (1 + exp(-(double)g[i]));
		y[i] = s * x[i];
		dx[i] = 1 + dy[i] * s;
		dg[i] = 1 + dy[i] * x[i] * s * (1 - s);
	}
	std::vector<float> gy(n), gdx(n, 1), gdg(n, 1);
	emu_launch(fk_gate_f32, dim3{2, 1, 1}, dim3{128, 1, 1}, gy.data(), (const float *)g.data(), (const float *)x.data(), n);
	compare("gate f32", gy, y, 1e-6, 1e-6);
	emu_launch(fk_gate_bwd_f32, dim3{2, 1, 1}, dim3{128, 1, 1}, gdg.data(), gdx.data(), (const float *)g.data(), (const float *)x.data(), (const float *)dy.data(), n);
	compare("gate bwd f32 dx", gdx, dx, 1e-6, 1e-6);
	compare("gate bwd f32 dg", gdg, dg, 1e-6, 1e-6);
	auto b = rand_vec<float>(7);
	std::vector<float> gbr(3 * 7);
	for (int i = 0; i < 21; i++) bias[i] = b[i % 7];
	emu_launch(fk_bias_rows_f32, dim3{1, 1, 1}, dim3{32, 1, 1}, gbr.data(), (const float *)b.data(), (i64)3, (i64)7);
	compare("bias rows f32", gbr, bias, 0, 0);
	std::vector<unsigned long long> counts(2, 0);
	std::vector<double> xs(4 * 5 * 6, 1.0);
	xs[2 * 30 + 3 * 6 + 1] = NAN;       // addressed by the layout below
	xs[1 * 30 + 4 * 6 + 3] = INFINITY; // addressed
	xs[0 * 30 + 0 * 6 + 5] = NAN;       // outside the width-4 view: ignored
	emu_launch(fk_count_nonfinite_f64, dim3{2, 1, 1}, dim3{32, 1, 1}, (const double *)xs.data(), (i64)4, (i64)5, (i64)4, (i64)30, (i64)6, counts.data(), (i64)1);
	if (counts[1] != 2 || counts[0] != 0) {
		printf("FAIL count_nonfinite: counted %llu, want 2\n", counts[1]);
		failures++;
	} else {
		printf("ok   count_nonfinite\n");
	}
}

// ---------------------------------------------------------------- rigid

// Random frames: a unit quaternion's rotation and a translation.
static std::vector<double> rand_frames(i64 n) {
	std::vector<double> f(12 * n);
	for (i64 i = 0; i < n; i++) {
		double q[4], s = 0;
		for (auto &v : q) {
			v = uni(-1, 1);
			s += v * v;
		}
		s = sqrt(s);
		Q4<double> u{{q[0] / s, q[1] / s, q[2] / s, q[3] / s}};
		M3<double> r = quat_to_rot(u);
		for (int k = 0; k < 9; k++) f[12 * i + k] = r.a[k];
		for (int k = 9; k < 12; k++) f[12 * i + k] = uni(-5, 5);
	}
	return f;
}

// Checks grad, the analytic gradient of L(x) = Σ cot·y(x) with respect to
// x, against central differences (step 1e-6: truncation ~1e-12, cancellation
// ~1e-10 for L = O(10)); tolerance 1e-7 relative to 1 + |numeric|.
static void fd_check(const std::string &what, std::vector<double> &x, const std::vector<double> &grad, const std::function<double()> &loss) {
	double worst = 0;
	for (size_t i = 0; i < x.size(); i++) {
		double x0 = x[i];
		x[i] = x0 + 1e-6;
		double lp = loss();
		x[i] = x0 - 1e-6;
		double lm = loss();
		x[i] = x0;
		double fd = (lp - lm) / 2e-6;
		worst = max(worst, fabs(grad[i] - fd) / (1 + fabs(fd)));
	}
	if (worst > 1e-7) {
		printf("FAIL %s: gradient differs from central differences by %.3g\n", what.c_str(), worst);
		failures++;
	} else {
		printf("ok   %-44s fd err %.2g\n", what.c_str(), worst);
	}
}

static double dotv(const std::vector<double> &a, const std::vector<double> &b) {
	double s = 0;
	for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
	return s;
}

static void rigid_case() {
	const i64 n = 5, m = 3;
	dim3 g1{1, 1, 1}, b1{32, 1, 1};
	auto a = rand_frames(n), b = rand_frames(n), p = rand_vec<double>(3 * n * m, -5, 5);
	// Compose against its definition, and compose(a, invert(a)) = identity.
	std::vector<double> c(12 * n), ia(12 * n), id(12 * n);
	emu_launch(fk_rigid_compose_f64, g1, b1, c.data(), (const double *)a.data(), (const double *)b.data(), n);
	emu_launch(fk_rigid_invert_f64, g1, b1, ia.data(), (const double *)a.data(), n);
	emu_launch(fk_rigid_compose_f64, g1, b1, id.data(), (const double *)a.data(), (const double *)ia.data(), n);
	std::vector<double> want(12 * n, 0);
	for (i64 i = 0; i < n; i++) want[12 * i] = want[12 * i + 4] = want[12 * i + 8] = 1;
	compare("rigid compose∘invert f64", id, want, 1e-14, 0);
	// Map modes: apply then invert-apply is the identity; apply = R·p + t.
	std::vector<double> y(3 * n * m), back(3 * n * m), ref(3 * n * m);
	emu_launch(fk_rigid_map_f64, g1, b1, y.data(), (const double *)a.data(), (const double *)p.data(), n, m, (i64)0);
	emu_launch(fk_rigid_map_f64, g1, b1, back.data(), (const double *)a.data(), (const double *)y.data(), n, m, (i64)2);
	compare("rigid apply/invert-apply f64", back, std::vector<double>(p.begin(), p.end()), 1e-13, 0);
	for (i64 i = 0; i < n; i++)
		for (i64 k = 0; k < m; k++)
			for (int r = 0; r < 3; r++) {
				double s = a[12 * i + 9 + r];
				for (int cc = 0; cc < 3; cc++) s += a[12 * i + 3 * r + cc] * p[3 * (i * m + k) + cc];
				ref[3 * (i * m + k) + r] = s;
			}
	compare("rigid apply f64", y, ref, 1e-14, 1e-14);
	// Gradients by central differences of the emulated forward kernels.
	for (i64 mode = 0; mode < 4; mode++) {
		auto cot = rand_vec<double>(3 * n * m);
		std::vector<double> df(12 * n, 0), dp(3 * n * m, 0), out(3 * n * m);
		emu_launch(fk_rigid_map_bwd_f64, g1, b1, df.data(), dp.data(), (const double *)a.data(), (const double *)p.data(), (const double *)cot.data(), n, m, mode);
		auto loss = [&] {
			emu_launch(fk_rigid_map_f64, g1, b1, out.data(), (const double *)a.data(), (const double *)p.data(), n, m, mode);
			return dotv(cot, out);
		};
		fd_check("rigid map bwd mode " + std::to_string(mode) + " frames", a, df, loss);
		fd_check("rigid map bwd mode " + std::to_string(mode) + " points", p, dp, loss);
	}
	{
		auto cot = rand_vec<double>(12 * n);
		std::vector<double> da(12 * n, 0), db(12 * n, 0), out(12 * n);
		emu_launch(fk_rigid_compose_bwd_f64, g1, b1, da.data(), db.data(), (const double *)a.data(), (const double *)b.data(), (const double *)cot.data(), n);
		auto loss = [&] {
			emu_launch(fk_rigid_compose_f64, g1, b1, out.data(), (const double *)a.data(), (const double *)b.data(), n);
			return dotv(cot, out);
		};
		fd_check("rigid compose bwd a", a, da, loss);
		fd_check("rigid compose bwd b", b, db, loss);
		std::vector<double> ds(12 * n, 0);
		emu_launch(fk_rigid_invert_bwd_f64, g1, b1, ds.data(), (const double *)a.data(), (const double *)cot.data(), n);
		auto iloss = [&] {
			emu_launch(fk_rigid_invert_f64, g1, b1, out.data(), (const double *)a.data(), n);
			return dotv(cot, out);
		};
		fd_check("rigid invert bwd", a, ds, iloss);
	}
	{
		auto q = rand_vec<double>(4 * n), t = rand_vec<double>(3 * n, -3, 3), u = rand_vec<double>(6 * n, -0.5, 0.5);
		// q need not be normalised for the gradient check.
		auto cq = rand_vec<double>(4 * n), cf = rand_vec<double>(12 * n);
		std::vector<double> qo(4 * n), to(3 * n), rot(9 * n);
		auto loss = [&] {
			emu_launch(fk_compose_q_update_f64, g1, b1, qo.data(), to.data(), (const double *)q.data(), (const double *)t.data(), (const double *)u.data(), n);
			emu_launch(fk_quat_to_rot_f64, g1, b1, rot.data(), (const double *)qo.data(), n);
			double s = dotv(cq, qo);
			for (i64 i = 0; i < n; i++) {
				for (int k = 0; k < 9; k++) s += cf[12 * i + k] * rot[9 * i + k];
				for (int k = 0; k < 3; k++) s += cf[12 * i + 9 + k] * to[3 * i + k];
			}
			return s;
		};
		std::vector<double> gq(4 * n, 0), gt(3 * n, 0), gu(6 * n, 0);
		emu_launch(fk_compose_q_update_bwd_f64, g1, b1, gq.data(), gt.data(), gu.data(), (const double *)q.data(), (const double *)t.data(), (const double *)u.data(), (const double *)cq.data(), (const double *)cf.data(), n);
		fd_check("compose q update bwd q", q, gq, loss);
		fd_check("compose q update bwd t", t, gt, loss);
		fd_check("compose q update bwd u", u, gu, loss);
		auto cr = rand_vec<double>(9 * n);
		std::vector<double> gq2(4 * n, 0);
		emu_launch(fk_quat_to_rot_bwd_f64, g1, b1, gq2.data(), (const double *)q.data(), (const double *)cr.data(), n);
		auto rloss = [&] {
			emu_launch(fk_quat_to_rot_f64, g1, b1, rot.data(), (const double *)q.data(), n);
			return dotv(cr, rot);
		};
		fd_check("quat to rot bwd", q, gq2, rloss);
	}
}

int main() {
	// name, B, H, Lq, Lk, C, Cv, kvShared, bias, mask, fullMask, pads
	AttnCase plain{"attn plain", 2, 2, 9, 45, 16, 16, false, false, false, false, 0, 0, 0, 0};
	AttnCase full{"attn bias+mask", 3, 3, 37, 70, 20, 12, false, true, true, false, 3, 1, 2, 5};
	AttnCase shared{"attn shared kv", 2, 4, 20, 33, 8, 8, true, true, true, false, 0, 0, 0, 1};
	AttnCase masked{"attn fully masked", 2, 2, 11, 40, 12, 12, false, true, true, true, 0, 0, 0, 0};
	AttnCase wide{"attn d64", 2, 2, 130, 50, 40, 64, false, true, true, false, 1, 0, 0, 0};
	attn_case<float, 16>(plain);
	attn_case<double, 16>(plain);
	attn_case<float, 32>(full);
	attn_case<double, 32>(full);
	attn_case<float, 16>(shared);
	attn_case<double, 16>(shared);
	attn_case<float, 16>(masked);
	attn_case<double, 16>(masked);
	attn_case<float, 64>(wide);
	attn_case<double, 64>(wide);
	rows_case<float>();
	rows_case<double>();
	elementwise_case();
	rigid_case();
	if (failures) {
		printf("%d FAILED\n", failures);
		return 1;
	}
	printf("all kernel emulation tests passed\n");
	return 0;
}
