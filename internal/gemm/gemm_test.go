package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naive is the textbook triple loop in float64.
func naive(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				var x, y float64
				if tA {
					x = a[p*lda+i]
				} else {
					x = a[i*lda+p]
				}
				if tB {
					y = b[j*ldb+p]
				} else {
					y = b[p*ldb+j]
				}
				s += x * y
			}
			c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
		}
	}
}

type myFloat32 float32

func TestGemmMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		m, n, k int
		tA, tB  bool
		pad     int // extra row stride, as strided attention tiles use
	}{
		{1, 1, 1, false, false, 0},
		{7, 5, 3, false, true, 0},
		{16, 33, 9, true, false, 2},
		{65, 17, 130, true, true, 5},
		{3, 4, 0, false, false, 0},
	} {
		t.Run(fmt.Sprintf("%dx%dx%d_%v%v", tc.m, tc.n, tc.k, tc.tA, tc.tB), func(t *testing.T) {
			ar, ac := tc.m, tc.k
			if tc.tA {
				ar, ac = tc.k, tc.m
			}
			br, bc := tc.k, tc.n
			if tc.tB {
				br, bc = tc.n, tc.k
			}
			lda, ldb, ldc := ac+tc.pad, bc+tc.pad, tc.n+tc.pad
			a := make([]float64, max(ar*lda, 1))
			b := make([]float64, max(br*ldb, 1))
			c := make([]float64, tc.m*ldc)
			for i := range a {
				a[i] = rng.NormFloat64()
			}
			for i := range b {
				b[i] = rng.NormFloat64()
			}
			for i := range c {
				c[i] = rng.NormFloat64()
			}
			want := append([]float64(nil), c...)
			naive(tc.tA, tc.tB, tc.m, tc.n, tc.k, 0.5, a, lda, b, ldb, 2, want, ldc)

			got64 := append([]float64(nil), c...)
			Gemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 0.5, a, lda, b, ldb, 2, got64, ldc)
			a32, b32, c32 := to32(a), to32(b), to32(c)
			Gemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 0.5, a32, lda, b32, ldb, 2, c32, ldc)
			cn := make([]myFloat32, len(c))
			for i, v := range c {
				cn[i] = myFloat32(v)
			}
			an, bn := named(a), named(b)
			Gemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 0.5, an, lda, bn, ldb, 2, cn, ldc)
			for i := range want {
				// float64: k ≤ 130 products of N(0,1) values, round-off ≲ k·eps·|terms| ≈ 130·1e-16·10: 1e-12 is safe.
				if d := math.Abs(got64[i] - want[i]); d > 1e-12 {
					t.Fatalf("float64 [%d]: got %v want %v", i, got64[i], want[i])
				}
				// float32: inputs rounded to float32 (rel 6e-8) and k·eps32 accumulation: ~130·6e-8·10 ≈ 1e-4.
				tol := 1e-4 * (1 + math.Abs(want[i]))
				if d := math.Abs(float64(c32[i]) - want[i]); d > tol {
					t.Fatalf("float32 [%d]: got %v want %v", i, c32[i], want[i])
				}
				if cn[i] != myFloat32(c32[i]) {
					t.Fatalf("named float32 [%d]: got %v, float32 path gave %v", i, cn[i], c32[i])
				}
			}
		})
	}
}

func to32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func named(x []float64) []myFloat32 {
	y := make([]myFloat32, len(x))
	for i, v := range x {
		y[i] = myFloat32(float32(v))
	}
	return y
}

func TestName(t *testing.T) {
	if n := Name(); n != "gonum" && n != "openblas" {
		t.Errorf("Name() = %q", n)
	}
}

// BenchmarkSgemm reports the single-precision GEMM throughput of the BLAS
// compiled in (run with and without -tags openblas to compare).
func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{256, 1024} {
		b.Run(fmt.Sprintf("%s/%d", Name(), n), func(b *testing.B) {
			x := make([]float32, n*n)
			y := make([]float32, n*n)
			z := make([]float32, n*n)
			for i := range x {
				x[i] = float32(i%7) * 0.1
				y[i] = float32(i%5) * 0.1
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Gemm(false, false, n, n, n, 1, x, n, y, n, 0, z, n)
			}
			b.ReportMetric(Flops(n, n, n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(float64(3*n*n*4), "bytes")
		})
	}
}

func BenchmarkDgemm(b *testing.B) {
	n := 512
	x := make([]float64, n*n)
	y := make([]float64, n*n)
	z := make([]float64, n*n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Gemm(false, false, n, n, n, 1, x, n, y, n, 0, z, n)
	}
	b.ReportMetric(Flops(n, n, n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
