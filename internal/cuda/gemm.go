//go:build foldkit_cuda || foldkit_cudaemu

package cuda

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
)

// Gemm queues C = alpha·op(A)·op(B) + beta·C for row-major matrices, with
// the argument convention of package gemm: op(A) is m×k, op(B) is k×n, C is
// m×n, and lda, ldb, ldc are the row strides of A, B and C as stored. math
// selects the float32 arithmetic (ignored for float64).
//
// The buffers must belong to d. Gemm checks that each buffer is long enough
// for its matrix and returns an error wrapping num.ErrShape otherwise; the
// caller (package backend) checks the leading dimensions.
func Gemm[T num.Float](d *Device, math Math, tA, tB bool, m, n, k int, alpha T, a *Buffer[T], lda int, b *Buffer[T], ldb int, beta T, c *Buffer[T], ldc int) error {
	return GemmStridedBatched(d, math, tA, tB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
}

// GemmStridedBatched queues C_i = alpha·op(A_i)·op(B_i) + beta·C_i for
// i < batch, where X_i starts strideX elements after X_{i−1} (row-major, as
// Gemm). A stride of 0 reuses one matrix for every product.
func GemmStridedBatched[T num.Float](d *Device, math Math, tA, tB bool, m, n, k int, alpha T, a *Buffer[T], lda, strideA int, b *Buffer[T], ldb, strideB int, beta T, c *Buffer[T], ldc, strideC int, batch int) error {
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	ar, ac := m, k
	if tA {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB {
		br, bc = n, k
	}
	for _, x := range []struct {
		what         string
		buf          *Buffer[T]
		rows, cols   int
		ld, stride   int
		needsContent bool
	}{
		{"A", a, ar, ac, lda, strideA, k > 0},
		{"B", b, br, bc, ldb, strideB, k > 0},
		{"C", c, m, n, ldc, strideC, true},
	} {
		if !x.needsContent {
			continue
		}
		if x.buf == nil {
			return fmt.Errorf("cuda: gemm: %s is nil: %w", x.what, num.ErrShape)
		}
		if x.buf.d != d {
			return fmt.Errorf("cuda: gemm: %s is on another device", x.what)
		}
		need := (batch-1)*x.stride + (x.rows-1)*x.ld + x.cols
		if x.rows == 0 || x.cols == 0 {
			need = 0
		}
		if x.buf.n < need {
			return fmt.Errorf("cuda: gemm: %s has %d elements, a batch of %d %d×%d matrices with row stride %d and batch stride %d needs %d: %w",
				x.what, x.buf.n, batch, x.rows, x.cols, x.ld, x.stride, need, num.ErrShape)
		}
	}
	// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a
	// row-major matrix read column-major is its transpose: swap the operands.
	var ap, bp = c.ptr, c.ptr // unused when k == 0
	if k > 0 {
		ap, bp = a.ptr, b.ptr
	} else {
		lda, ldb = max(lda, 1), max(ldb, 1)
	}
	return d.do("gemm", func() error {
		return gemmRaw(d, math, tB, tA, n, m, k, alpha, bp, ldb, int64(strideB), ap, lda, int64(strideA), beta, c.ptr, ldc, int64(strideC), batch)
	}, false)
}
