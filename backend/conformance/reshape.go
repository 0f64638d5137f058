package conformance

import (
	"errors"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// Reshape checks Transpose, ScaleRows and DivRows against loops over host
// slices written here. Transpose moves data and must be exact on every
// backend; ScaleRows rounds once and DivRows twice (the sum, then the
// quotient), in T, as the loops do, so they are held to the Elementwise
// tolerance (0 on the CPU backend; an accelerator that divides with IEEE
// rounding also meets 0).
func Reshape[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	rng := newRNG(21)
	for _, c := range []struct{ batch, rows, cols, block int }{
		{1, 7, 5, 1},      // a plain matrix transpose
		{3, 4, 6, 8},      // batched, blocks of channels (the outer product mean's shape)
		{1, 33, 4, 1},     // [N², H] pair-bias logits to [H, N²]
		{2, 1, 9, 3},      // one row: a copy
		{0, 3, 3, 3},      // empty
		{2, 300, 17, 2},   // more elements than one grid pass of a small GPU grid
		{1, 1000, 129, 1}, // a long, thin matrix
		{4, 16, 16, 32},   // square tiles with wide blocks
		{1, 64, 64, 1},    // square
		{5, 3, 2, 1},      // tiny batched
		{1, 2, 3, 4},      // tiny
		{2, 5, 1, 7},      // one column
		{1, 128, 3, 16},   // [N², c] → [c, N²]-like with blocks
		{3, 13, 11, 5},    // odd sizes
		{1, 4096, 2, 1},   // many rows
		{1, 2, 4096, 1},   // many columns
		{2, 20, 30, 9},    // mixed
	} {
		n := c.batch * c.rows * c.cols * c.block
		src := randVec[T](rng, n, -3, 3)
		want := make([]T, n)
		for b := 0; b < c.batch; b++ {
			for i := 0; i < c.rows; i++ {
				for j := 0; j < c.cols; j++ {
					for e := 0; e < c.block; e++ {
						want[((b*c.cols+j)*c.rows+i)*c.block+e] = src[((b*c.rows+i)*c.cols+j)*c.block+e]
					}
				}
			}
		}
		ds := put(t, k, src)
		dd := put(t, k, randVec[T](rng, n, -1, 1)) // overwritten
		must(t, "Transpose", k.Transpose(dd, ds, c.batch, c.rows, c.cols, c.block))
		compare(t, "Transpose", get(t, k, dd), want, 0)
		k.Free(ds)
		k.Free(dd)
	}

	const rows, c = 37, 13
	x := randVec[T](rng, rows*c, -2, 2)
	s := randVec[T](rng, rows, 0, 3)
	s[4], s[9] = 0, 1 // a masked row and an identity row
	const eps = 1e-3
	scaled, divided := make([]T, rows*c), make([]T, rows*c)
	for r := 0; r < rows; r++ {
		den := s[r] + T(eps)
		for j := 0; j < c; j++ {
			scaled[r*c+j] = x[r*c+j] * s[r]
			divided[r*c+j] = x[r*c+j] / den
		}
	}
	dx, dsc := put(t, k, x), put(t, k, s)
	defer k.Free(dx)
	defer k.Free(dsc)
	y, err := k.Alloc(rows * c)
	must(t, "Alloc", err)
	defer k.Free(y)
	must(t, "ScaleRows", k.ScaleRows(y, dx, dsc, rows, c))
	compare(t, "ScaleRows", get(t, k, y), scaled, tol.Elementwise)
	must(t, "DivRows", k.DivRows(y, dx, dsc, eps, rows, c))
	compare(t, "DivRows", get(t, k, y), divided, tol.Elementwise)
	// In place (y = x).
	must(t, "ScaleRows in place", k.ScaleRows(dx, dx, dsc, rows, c))
	compare(t, "ScaleRows in place", get(t, k, dx), scaled, tol.Elementwise)

	// Wrong lengths and overlapping transposes are errors.
	for _, e := range []struct {
		name string
		err  error
	}{
		{"Transpose short dst", k.Transpose(dsc, dx, 1, rows, c, 1)},
		{"Transpose negative", k.Transpose(y, dx, -1, rows, c, 1)},
		{"Transpose in place", k.Transpose(y, y, 1, rows, c, 1)},
		{"ScaleRows short s", k.ScaleRows(y, dx, dsc, rows, c+1)},
		{"DivRows missing s", k.DivRows(y, dx, nil, 1, rows, c)},
	} {
		if !errors.Is(e.err, num.ErrShape) {
			t.Errorf("%s: error %v, want one wrapping num.ErrShape", e.name, e.err)
		}
	}
}
