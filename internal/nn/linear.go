package nn

import (
	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
)

// Linear computes y[r,:] = x[r,:]·w + b for each of the rows rows of x, the
// linear layer of AF2 (supplement §1.11.4; haiku's Linear in AF2's code).
//
// x is [rows, in], w is [in, out] (AF2's layout), b is [out] or nil for a
// layer without bias, and y is [rows, out]; y is overwritten and must not
// overlap x or w. The product goes through gemm.Gemm.
//
// Linear panics with an error wrapping num.ErrShape if a length does not
// match the dimensions.
func Linear[T num.Float](y, x []T, rows, in, out int, w, b []T) {
	const fn = "Linear"
	mustDims(fn, rows, in, out)
	mustLen(fn, "x", len(x), rows*in, "[rows,in]")
	mustLen(fn, "w", len(w), in*out, "[in,out]")
	mustOptLen(fn, "b", b, out, "[out]")
	mustLen(fn, "y", len(y), rows*out, "[rows,out]")
	if rows == 0 || out == 0 {
		return
	}
	var beta T
	if b != nil {
		// Broadcast b to every row by doubling copies (few large memmoves),
		// then accumulate the product onto it.
		copy(y, b)
		for n := out; n < len(y); n *= 2 {
			copy(y[n:], y[:n])
		}
		beta = 1
	} else if in == 0 {
		clear(y)
	}
	if in == 0 {
		return
	}
	gemm.Gemm(false, false, rows, out, in, 1, x, in, w, out, beta, y, out)
}

// LinearBackward accumulates the gradients of Linear: given dy = ∂L/∂y
// [rows, out], it adds
//
//	dx += dy·wᵀ        [rows, in]
//	dw += xᵀ·dy        [in, out]
//	db += Σ_r dy[r,:]  [out]
//
// Any of dx, dw and db may be nil and is then skipped. x and w are the
// arguments of the forward call. The two products go through gemm.Gemm; the
// bias gradient is summed in blocks of rows to keep its round-off small
// when rows is large.
//
// LinearBackward panics with an error wrapping num.ErrShape if a length does
// not match the dimensions.
func LinearBackward[T num.Float](dx, dw, db, x, w, dy []T, rows, in, out int) {
	const fn = "LinearBackward"
	mustDims(fn, rows, in, out)
	mustLen(fn, "dy", len(dy), rows*out, "[rows,out]")
	mustOptLen(fn, "dx", dx, rows*in, "[rows,in]")
	mustOptLen(fn, "dw", dw, in*out, "[in,out]")
	mustOptLen(fn, "db", db, out, "[out]")
	if dx != nil {
		mustLen(fn, "w", len(w), in*out, "[in,out]")
	}
	if dw != nil {
		mustLen(fn, "x", len(x), rows*in, "[rows,in]")
	}
	if rows == 0 || out == 0 {
		return
	}
	if dx != nil && in > 0 {
		gemm.Gemm(false, true, rows, in, out, 1, dy, out, w, out, 1, dx, in)
	}
	if dw != nil && in > 0 {
		gemm.Gemm(true, false, in, out, rows, 1, x, in, dy, out, 1, dw, out)
	}
	if db != nil {
		colSum(db, dy, rows, out)
	}
}

// colSum adds the column sums of the [rows, n] matrix a to dst [n], summing
// blockRows rows at a time into a partial before adding it to dst.
func colSum[T num.Float](dst, a []T, rows, n int) {
	if rows <= blockRows {
		for r := range rows {
			addTo(dst, a[r*n:(r+1)*n])
		}
		return
	}
	part := make([]T, n)
	for lo := 0; lo < rows; lo += blockRows {
		hi := min(lo+blockRows, rows)
		clear(part)
		for r := lo; r < hi; r++ {
			addTo(part, a[r*n:(r+1)*n])
		}
		addTo(dst, part)
	}
}

// addTo adds x to dst elementwise; len(x) ≥ len(dst).
func addTo[T num.Float](dst, x []T) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] += v
	}
}

// LinearParams holds the parameters of one AF2 linear layer: W is [In, Out]
// (AF2's layout, y = x·W + B) and B is [Out], or nil when the layer has no
// bias.
type LinearParams[T num.Float] struct {
	W, B    []T
	In, Out int
}

// Forward applies the layer to x [rows, In], writing y [rows, Out]; it is
// Linear(y, x, rows, p.In, p.Out, p.W, p.B).
func (p LinearParams[T]) Forward(y, x []T, rows int) {
	Linear(y, x, rows, p.In, p.Out, p.W, p.B)
}

// Backward accumulates the gradients of Forward: dx [rows, In] (nil to skip)
// and, when grad is not nil, grad.W and grad.B (each skipped when nil). x is
// the forward input and dy = ∂L/∂y [rows, Out]. It is LinearBackward.
func (p LinearParams[T]) Backward(dx []T, grad *LinearParams[T], x, dy []T, rows int) {
	var dw, db []T
	if grad != nil {
		dw, db = grad.W, grad.B
	}
	LinearBackward(dx, dw, db, x, p.W, dy, rows, p.In, p.Out)
}

// ZerosLike returns parameters of p's shape filled with zeros (B nil when
// p.B is nil), the usual starting point of a gradient accumulator.
func (p LinearParams[T]) ZerosLike() LinearParams[T] {
	q := LinearParams[T]{W: make([]T, len(p.W)), In: p.In, Out: p.Out}
	if p.B != nil {
		q.B = make([]T, len(p.B))
	}
	return q
}
