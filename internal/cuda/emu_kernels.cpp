//go:build foldkit_cudaemu

// The CPU emulation of foldkit's CUDA kernels and of the few driver and
// cuBLAS calls the package makes (see driver_emu.go). The kernels are the
// .cu sources themselves, compiled against kernels/emu/emu.h.
#include "kernels/emu/emu.h"

#include "kernels/attention.cu"
#include "kernels/elementwise.cu"
#include "kernels/rigid.cu"
#include "kernels/rows.cu"

#include <functional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace {

// from_bits turns an 8-byte kernel argument back into the parameter's type.
template <typename P>
P from_bits(uint64_t v) {
	if constexpr (std::is_pointer_v<P>) {
		return reinterpret_cast<P>(v);
	} else if constexpr (std::is_floating_point_v<P>) {
		double d;
		memcpy(&d, &v, 8);
		return (P)d;
	} else {
		return (P)v;
	}
}

template <typename... P, size_t... I>
void call_impl(void (*k)(P...), dim3 g, dim3 b, const uint64_t *a, std::index_sequence<I...>) {
	emu_launch(k, g, b, from_bits<P>(a[I])...);
}

template <typename... P>
bool call(void (*k)(P...), dim3 g, dim3 b, const uint64_t *a, int n) {
	if (n != (int)sizeof...(P)) return false;
	call_impl(k, g, b, a, std::index_sequence_for<P...>{});
	return true;
}

using Launcher = std::function<bool(dim3, dim3, const uint64_t *, int)>;

const std::unordered_map<std::string, Launcher> &registry() {
	static const std::unordered_map<std::string, Launcher> r = {
#define K(name) {#name, [](dim3 g, dim3 b, const uint64_t *a, int n) { return call(name, g, b, a, n); }},
#include "kernels/emu/registry.inc"
#undef K
	};
	return r;
}

float round_bits(float x, int drop) {
	uint32_t u;
	memcpy(&u, &x, 4);
	uint32_t lsb = (u >> drop) & 1;
	u += ((1u << (drop - 1)) - 1) + lsb; // round to nearest, ties to even
	u &= ~((1u << drop) - 1);
	memcpy(&x, &u, 4);
	return x;
}

template <typename T, typename Acc>
void gemm(int ta, int tb, int m, int n, int k, T alpha, const T *a, int lda, long long sa, const T *b, int ldb, long long sb,
          T beta, T *c, int ldc, long long sc, int batch, int drop) {
	for (int p = 0; p < batch; p++)
		for (int j = 0; j < n; j++)
			for (int i = 0; i < m; i++) {
				Acc s = 0;
				for (int l = 0; l < k; l++) {
					T x = ta ? a[p * sa + l + (long long)i * lda] : a[p * sa + i + (long long)l * lda];
					T y = tb ? b[p * sb + j + (long long)l * ldb] : b[p * sb + l + (long long)j * ldb];
					if (drop) {
						x = (T)round_bits((float)x, drop);
						y = (T)round_bits((float)y, drop);
					}
					s += (Acc)x * (Acc)y;
				}
				T *cij = c + p * sc + i + (long long)j * ldc;
				*cij = beta == 0 ? (T)(alpha * (T)s) : (T)(alpha * (T)s + beta * *cij);
			}
}

} // namespace

extern "C" {

int fk_emu_has(const char *name) { return registry().count(name) ? 1 : 0; }

int fk_emu_launch(const char *name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                  const unsigned long long *vals, int n) {
	auto it = registry().find(name);
	if (it == registry().end()) return 1;
	return it->second(dim3{gx, gy, gz}, dim3{bx, by, bz}, (const uint64_t *)vals, n) ? 0 : 2;
}

unsigned long long fk_emu_malloc(unsigned long long bytes) { return (unsigned long long)malloc(bytes); }
void fk_emu_free(unsigned long long p) { free((void *)p); }
void fk_emu_upload(unsigned long long dst, const void *src, unsigned long long bytes) { memcpy((void *)dst, src, bytes); }
void fk_emu_download(void *dst, unsigned long long src, unsigned long long bytes) { memcpy(dst, (const void *)src, bytes); }
void fk_emu_copy(unsigned long long dst, unsigned long long src, unsigned long long bytes) { memmove((void *)dst, (const void *)src, bytes); }
void fk_emu_zero(unsigned long long dst, unsigned long long bytes) { memset((void *)dst, 0, bytes); }

// math: 0 float32 (accumulated in double, within float32's bound), 1 TF32
// and 2 BF16 (inputs rounded to 10 and 7 mantissa bits, float accumulation).
void fk_emu_sgemm(int ta, int tb, int m, int n, int k, float alpha, unsigned long long a, int lda, long long sa,
                  unsigned long long b, int ldb, long long sb, float beta, unsigned long long c, int ldc, long long sc,
                  int batch, int math) {
	if (math == 0)
		gemm<float, double>(ta, tb, m, n, k, alpha, (const float *)a, lda, sa, (const float *)b, ldb, sb, beta, (float *)c, ldc, sc, batch, 0);
	else
		gemm<float, float>(ta, tb, m, n, k, alpha, (const float *)a, lda, sa, (const float *)b, ldb, sb, beta, (float *)c, ldc, sc, batch, math == 1 ? 13 : 16);
}

void fk_emu_dgemm(int ta, int tb, int m, int n, int k, double alpha, unsigned long long a, int lda, long long sa,
                  unsigned long long b, int ldb, long long sb, double beta, unsigned long long c, int ldc, long long sc,
                  int batch) {
	gemm<double, double>(ta, tb, m, n, k, alpha, (const double *)a, lda, sa, (const double *)b, ldb, sb, beta, (double *)c, ldc, sc, batch, 0);
}

} // extern "C"
