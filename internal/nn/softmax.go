package nn

import (
	"math"

	"github.com/foldkit/foldkit/internal/num"
)

// SoftmaxRows replaces each of the rows rows of x [rows, n] by its softmax,
// y_j = exp(x_j − max x) / Σ_k exp(x_k − max x), the normalisation of every
// AF2 attention (supplement Algorithms 7, 8, 13, 14, 19, 22).
//
// Subtracting the row maximum first makes it overflow-free for any finite
// logits. Entries masked with AF2's additive −1e9 (refcases §3) come out as
// exactly 0 beside any unmasked entry, and a row whose entries are all masked
// comes out uniform, 1/n each, as in AF2. A row whose entries are all −Inf is
// also made uniform rather than NaN.
//
// In float32 the exponentials are num.Exp32's (within one ulp of math.Exp,
// about twice as fast; the exponentials are most of the cost), in float64
// math.Exp's.
//
// SoftmaxRows panics with an error wrapping num.ErrShape if len(x) is not
// rows·n.
func SoftmaxRows[T num.Float](x []T, rows, n int) {
	const fn = "SoftmaxRows"
	mustDims(fn, rows, n)
	mustLen(fn, "x", len(x), rows*n, "[rows,n]")
	if n == 0 {
		return
	}
	forRows(rows, n, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(x[r*n : (r+1)*n])
		}
	})
}

// softmaxRow is SoftmaxRows on one non-empty row.
func softmaxRow[T num.Float](x []T) {
	mx := x[0]
	for _, v := range x[1:] {
		if v > mx {
			mx = v
		}
	}
	if math.IsInf(float64(mx), -1) {
		u := 1 / T(len(x))
		for i := range x {
			x[i] = u
		}
		return
	}
	var s T
	for i, v := range x {
		e := num.FastExp(v - mx)
		x[i] = e
		s += e
	}
	inv := 1 / s
	for i := range x {
		x[i] *= inv
	}
}

// SoftmaxRowsBackward accumulates the gradient of SoftmaxRows: with y the
// softmax output [rows, n] and dy = ∂L/∂y it adds, row by row,
//
//	dx_j += y_j · (dy_j − Σ_k y_k·dy_k).
//
// A nil dx makes it a no-op. SoftmaxRowsBackward panics with an error
// wrapping num.ErrShape if a length is not rows·n.
func SoftmaxRowsBackward[T num.Float](dx, y, dy []T, rows, n int) {
	const fn = "SoftmaxRowsBackward"
	mustDims(fn, rows, n)
	mustOptLen(fn, "dx", dx, rows*n, "[rows,n]")
	mustLen(fn, "y", len(y), rows*n, "[rows,n]")
	mustLen(fn, "dy", len(dy), rows*n, "[rows,n]")
	if dx == nil || n == 0 {
		return
	}
	forRows(rows, n, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			yr := y[r*n : (r+1)*n]
			dyr := dy[r*n : (r+1)*n]
			dyr = dyr[:len(yr)]
			dxr := dx[r*n : (r+1)*n]
			dxr = dxr[:len(yr)]
			s := dot(yr, dyr)
			for j, yv := range yr {
				dxr[j] += yv * (dyr[j] - s)
			}
		}
	})
}
