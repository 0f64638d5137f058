package attn

import (
	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
)

// packer runs the per-tile products of one worker. When gemm.Tile has its
// own micro-kernel for T (float32 with AVX2 and FMA) it gives the kernel
// row-major operands: the keys and values of a whole (batch, head)
// transposed once (wholeT), and a probability tile transposed into its
// scratch (tn), and calls gemm.Tile, so that the workers never call the
// BLAS and run on every core; otherwise it calls gemm.Gemm with the
// transposes, as the BLAS does them in place.
type packer[T num.Float] struct {
	native bool
	buf    []T
	// Whole-sequence transposes kept across the query tiles of one
	// (batch, head): slot 0 the keys, slot 1 the values.
	whole [2]transposed[T]
}

// transposed is the transpose [width, L] of one head's [L, width] rows,
// for the (batch, head) in key (valid when ok).
type transposed[T num.Float] struct {
	key [2]int
	ok  bool
	t   []T
}

func newPacker[T num.Float]() *packer[T] { return &packer[T]{native: gemm.TileNative[T]()} }

func (pk *packer[T]) scratch(n int) []T {
	if cap(pk.buf) < n {
		pk.buf = make([]T, n)
	}
	return pk.buf[:n]
}

func beta[T num.Float](acc bool) T {
	if acc {
		return 1
	}
	return 0
}

// nn sets C = alpha·A·B (+ C when acc): A m×k, B k×n.
func (pk *packer[T]) nn(acc bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	if !pk.native {
		gemm.Gemm(false, false, m, n, k, alpha, a, lda, b, ldb, beta[T](acc), c, ldc)
		return
	}
	gemm.Tile(acc, m, n, k, alpha, a, lda, b, ldb, c, ldc)
}

// nt sets C = alpha·A·Bᵀ (+ C when acc), A m×k, B n×k, through the BLAS,
// which transposes in place. It is the path without the micro-kernel: with
// it, the callers multiply by the transpose of the whole (batch, head)
// that wholeT keeps, through nn.
func (pk *packer[T]) nt(acc bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	gemm.Gemm(false, true, m, n, k, alpha, a, lda, b, ldb, beta[T](acc), c, ldc)
}

// tn sets C = alpha·Aᵀ·B (+ C when acc): A k×m, B k×n.
func (pk *packer[T]) tn(acc bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	if !pk.native || k == 0 {
		gemm.Gemm(true, false, m, n, k, alpha, a, lda, b, ldb, beta[T](acc), c, ldc)
		return
	}
	at := pk.scratch(m * k)
	for p := 0; p < k; p++ {
		for i, x := range a[p*lda : p*lda+m] {
			at[i*k+p] = x
		}
	}
	gemm.Tile(acc, m, n, k, alpha, at, k, b, ldb, c, ldc)
}

// wholeT returns the transpose [width, l] of the l rows of width elements
// at x[off:], row stride ldx, caching it in slot under key (batch, head):
// the query tiles of one (batch, head) share it. Call only when native.
func (pk *packer[T]) wholeT(slot int, key [2]int, x []T, off, ldx, l, width int) []T {
	w := &pk.whole[slot]
	if w.ok && w.key == key {
		return w.t
	}
	if cap(w.t) < l*width {
		w.t = make([]T, l*width)
	}
	t := w.t[:l*width]
	for j := 0; j < l; j++ {
		for c, v := range x[off+j*ldx : off+j*ldx+width] {
			t[c*l+j] = v
		}
	}
	w.t, w.key, w.ok = t, key, true
	return t
}
