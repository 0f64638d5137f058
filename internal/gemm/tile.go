package gemm

import (
	"fmt"
	"runtime"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/simd"
)

// Tile computes C = alpha·A·B, or C += alpha·A·B when accumulate is set,
// for row-major A (m×k, row stride lda), B (k×n, ldb) and C (m×n, ldc), on
// the calling goroutine. It is for the small products of tiled kernels
// (the streamed attention core's q·kᵀ and p·v tiles, a few hundred rows
// and columns at most), where a BLAS call costs more than it saves and
// where callers run many tiles concurrently.
//
// For float32 on amd64 with AVX2 and FMA it runs an assembly micro-kernel
// on 4×16 blocks of C (TileNative reports whether it does); elsewhere it
// calls Gemm. Results differ from Gemm's only by the order of the sums'
// roundings.
//
// Like Gemm, Tile panics on negative sizes, leading dimensions below the
// row widths or slices too short for the dimensions: callers check shapes
// first. It never reads or writes outside the slices it is given.
func Tile[T num.Float](accumulate bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: Tile: negative size m=%d n=%d k=%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	if lda < max(k, 1) || ldb < n || ldc < n {
		panic(fmt.Sprintf("gemm: Tile: leading dimensions lda=%d ldb=%d ldc=%d below k=%d, n=%d", lda, ldb, ldc, k, n))
	}
	if len(c) < (m-1)*ldc+n || (k > 0 && (len(a) < (m-1)*lda+k || len(b) < (k-1)*ldb+n)) {
		panic(fmt.Sprintf("gemm: Tile: slices too short for m=%d n=%d k=%d", m, n, k))
	}
	a32, ok := any(a).([]float32)
	if !ok || !simd.Available || k == 0 {
		beta := T(0)
		if accumulate {
			beta = 1
		}
		Gemm(false, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	tile32(accumulate, m, n, k, float32(alpha), a32, lda, any(b).([]float32), ldb, any(c).([]float32), ldc)
}

// tile32 runs the micro-kernels over C: 4×16 blocks, then a 4×8 block
// where 8 or more columns remain, one-row 1×16 and 1×8 kernels for the
// last m mod 4 rows, and plain loops over the last n mod 8 columns. k > 0
// and the slices are long enough (checked by Tile).
func tile32(accumulate bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	acc := 0
	if accumulate {
		acc = 1
	}
	m4, n16 := m&^3, n&^15
	n8 := n16
	if n-n16 >= 8 {
		n8 = n16 + 8
	}
	for i := 0; i < m4; i += 4 {
		for j := 0; j < n16; j += 16 {
			simd.Sgemm4x16(k, &a[i*lda], lda, &b[j], ldb, &c[i*ldc+j], ldc, alpha, acc)
		}
		if n8 > n16 {
			simd.Sgemm4x8(k, &a[i*lda], lda, &b[n16], ldb, &c[i*ldc+n16], ldc, alpha, acc)
		}
	}
	for i := m4; i < m; i++ {
		for j := 0; j < n16; j += 16 {
			simd.Sgemm1x16(k, &a[i*lda], &b[j], ldb, &c[i*ldc+j], alpha, acc)
		}
		if n8 > n16 {
			simd.Sgemm1x8(k, &a[i*lda], &b[n16], ldb, &c[i*ldc+n16], alpha, acc)
		}
	}
	for i := 0; i < m; i++ {
		for j := n8; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				s += a[i*lda+p] * b[p*ldb+j]
			}
			if accumulate {
				c[i*ldc+j] += alpha * s
			} else {
				c[i*ldc+j] = alpha * s
			}
		}
	}
}

// TileNative reports whether Tile runs its own micro-kernel for element
// type T (float32 on amd64 with AVX2 and FMA) rather than calling Gemm.
func TileNative[T num.Float]() bool {
	var z T
	_, ok := any(z).(float32)
	return ok && simd.Available
}

// TileWorkers returns how many goroutines should run Tile products for
// element type T concurrently: GOMAXPROCS when Tile runs its own kernel
// (it never calls the BLAS), else Workers().
func TileWorkers[T num.Float]() int {
	if TileNative[T]() {
		return runtime.GOMAXPROCS(0)
	}
	return Workers()
}
