package gemm

import (
	"runtime"

	"gonum.org/v1/gonum/blas"

	"github.com/foldkit/foldkit/internal/num"
)

// Name reports the BLAS implementation compiled into this binary:
// "gonum" (pure Go) or "openblas".
func Name() string { return implName }

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ as tA and tB say. op(A) is m×k, op(B) is k×n and C is m×n;
// lda, ldb and ldc are the row strides of A, B and C as stored.
//
// Gemm panics (as gonum's BLAS does) on inconsistent dimensions or slices that
// are too short: callers check shapes first and return errors.
func Gemm[T num.Float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		// An empty sum: BLAS rejects the leading dimensions, so scale here.
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				if beta == 0 {
					row[j] = 0
				} else {
					row[j] *= beta
				}
			}
		}
		return
	}
	switch aa := any(a).(type) {
	case []float32:
		impl32.Sgemm(trans(tA), trans(tB), m, n, k, float32(alpha), aa, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		impl64.Dgemm(trans(tA), trans(tB), m, n, k, float64(alpha), aa, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	default:
		// ~float32 or ~float64 named types: convert the slice headers.
		gemmNamed(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// Flops returns the floating-point operation count of one m×n×k product,
// 2·m·n·k, the convention used by every foldkit benchmark.
func Flops(m, n, k int) float64 { return 2 * float64(m) * float64(n) * float64(k) }

// Workers returns how many goroutines a caller should use to run independent
// matrix products concurrently. OpenBLAS threads each call itself and slows
// down badly (about 10× measured on the 2-core machine) when several
// goroutines call it at once, so with OpenBLAS this is 1; gonum's pure-Go
// BLAS splits only large products, so with it this is GOMAXPROCS.
func Workers() int {
	if implName == "openblas" {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}
