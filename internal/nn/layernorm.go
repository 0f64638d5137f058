package nn

import "github.com/foldkit/foldkit/internal/num"

// LayerNormEps is the epsilon AF2 adds to the variance inside the square
// root of every layer normalisation (haiku's default, 1e-5).
const LayerNormEps = 1e-5

// LayerNorm normalises each of the rows rows of x [rows, c] over its c
// channels and applies the per-channel affine map of AF2's layer norm
// (haiku's LayerNorm with scale and offset, used by every AF2 module):
//
//	μ = Σ_j x_j / c,  σ² = Σ_j (x_j − μ)² / c   (biased variance)
//	y_j = scale_j · (x_j − μ) / √(σ² + eps) + offset_j
//
// scale and offset are [c]; eps is normally LayerNormEps. The mean and
// variance are computed in T by two passes over the row (mean first, then
// the squared deviations), which is exact to a few ulp and does not cancel
// as the one-pass Σx² − (Σx)²/c formula does. When mean and rstd are not
// nil they receive μ and 1/√(σ² + eps) of each row [rows], which
// LayerNormBackward reuses. y [rows, c] may be x itself (in place) but must
// not otherwise overlap it.
//
// LayerNorm panics with an error wrapping num.ErrShape if a length does not
// match the dimensions.
func LayerNorm[T num.Float](y, x []T, rows, c int, scale, offset []T, eps T, mean, rstd []T) {
	const fn = "LayerNorm"
	mustDims(fn, rows, c)
	mustLen(fn, "x", len(x), rows*c, "[rows,c]")
	mustLen(fn, "y", len(y), rows*c, "[rows,c]")
	mustLen(fn, "scale", len(scale), c, "[c]")
	mustLen(fn, "offset", len(offset), c, "[c]")
	mustOptLen(fn, "mean", mean, rows, "[rows]")
	mustOptLen(fn, "rstd", rstd, rows, "[rows]")
	if c == 0 {
		return
	}
	forRows(rows, c, func(_, lo, hi int) {
		layerNormRows(y, x, lo, hi, c, scale, offset, eps, mean, rstd)
	})
}

// layerNormRows is LayerNorm on rows [lo, hi); c > 0.
func layerNormRows[T num.Float](y, x []T, lo, hi, c int, scale, offset []T, eps T, mean, rstd []T) {
	scale, offset = scale[:c], offset[:c]
	fc := T(c)
	for r := lo; r < hi; r++ {
		xr := x[r*c : (r+1)*c]
		m := sum(xr) / fc
		v := sumSqDev(xr, m) / fc
		rs := 1 / num.Sqrt(v+eps)
		if mean != nil {
			mean[r] = m
		}
		if rstd != nil {
			rstd[r] = rs
		}
		yr := y[r*c : (r+1)*c]
		yr = yr[:len(xr)]
		for j, xv := range xr {
			yr[j] = rs*scale[j]*(xv-m) + offset[j]
		}
	}
}

// LayerNormBackward accumulates the gradients of LayerNorm. With
// x̂ = (x − μ)·rstd and dy = ∂L/∂y [rows, c] it adds
//
//	dx_j      += rstd · (g_j − mean_k g_k − x̂_j · mean_k g_k x̂_k),  g = dy ⊙ scale
//	dscale_j  += Σ_r dy_rj x̂_rj
//	doffset_j += Σ_r dy_rj
//
// Any of dx, dscale and doffset may be nil and is then skipped. x and scale
// are the forward arguments; mean and rstd [rows] are the statistics the
// forward call saved. If mean or rstd is nil the statistics are recomputed
// from x with eps = LayerNormEps, which is right only for a forward call with
// that eps. The parameter gradients are summed in blocks of rows (and
// per goroutine) to keep their round-off small when rows is large.
//
// LayerNormBackward panics with an error wrapping num.ErrShape if a length
// does not match the dimensions.
func LayerNormBackward[T num.Float](dx, dscale, doffset, x, scale, mean, rstd, dy []T, rows, c int) {
	const fn = "LayerNormBackward"
	mustDims(fn, rows, c)
	mustLen(fn, "x", len(x), rows*c, "[rows,c]")
	mustLen(fn, "dy", len(dy), rows*c, "[rows,c]")
	mustLen(fn, "scale", len(scale), c, "[c]")
	mustOptLen(fn, "mean", mean, rows, "[rows]")
	mustOptLen(fn, "rstd", rstd, rows, "[rows]")
	mustOptLen(fn, "dx", dx, rows*c, "[rows,c]")
	mustOptLen(fn, "dscale", dscale, c, "[c]")
	mustOptLen(fn, "doffset", doffset, c, "[c]")
	if c == 0 || rows == 0 || (dx == nil && dscale == nil && doffset == nil) {
		return
	}
	if mean == nil || rstd == nil {
		mean, rstd = make([]T, rows), make([]T, rows)
		forRows(rows, c, func(_, lo, hi int) {
			layerNormStats(x, lo, hi, c, LayerNormEps, mean, rstd)
		})
	}
	// Per worker: block partials and totals of dscale and doffset.
	nw := workers(rows, c)
	var acc [][4][]T
	if dscale != nil || doffset != nil {
		acc = make([][4][]T, nw)
		for w := range acc {
			for k := range acc[w] {
				acc[w][k] = make([]T, c)
			}
		}
	}
	forRows(rows, c, func(w, lo, hi int) {
		var a [4][]T
		if acc != nil {
			a = acc[w]
		}
		layerNormBackwardRows(dx, x, scale, mean, rstd, dy, lo, hi, c, dscale != nil, doffset != nil, a)
	})
	for w := range acc {
		if dscale != nil {
			addTo(dscale, acc[w][2])
		}
		if doffset != nil {
			addTo(doffset, acc[w][3])
		}
	}
}

// layerNormStats fills mean and rstd for rows [lo, hi) as LayerNorm does.
func layerNormStats[T num.Float](x []T, lo, hi, c int, eps T, mean, rstd []T) {
	fc := T(c)
	for r := lo; r < hi; r++ {
		xr := x[r*c : (r+1)*c]
		m := sum(xr) / fc
		mean[r] = m
		rstd[r] = 1 / num.Sqrt(sumSqDev(xr, m)/fc+eps)
	}
}

// layerNormBackwardRows is LayerNormBackward on rows [lo, hi); c > 0.
// acc holds, when the parameter gradients are wanted, the block partials of
// dscale and doffset (acc[0], acc[1]) and their totals (acc[2], acc[3]).
func layerNormBackwardRows[T num.Float](dx, x, scale, mean, rstd, dy []T, lo, hi, c int, wantScale, wantOffset bool, acc [4][]T) {
	scale = scale[:c]
	fc := T(c)
	ps, po := acc[0], acc[1]
	if wantScale {
		ps = ps[:c]
	}
	if wantOffset {
		po = po[:c]
	}
	for r := lo; r < hi; r++ {
		xr := x[r*c : (r+1)*c]
		dyr := dy[r*c : (r+1)*c]
		dyr = dyr[:len(xr)]
		m, rs := mean[r], rstd[r]
		// One pass for the parameter gradients and, for dx, Σ g and Σ g·x̂
		// with g = dy ⊙ scale and x̂ = (x − μ)·rstd, in two interleaved
		// partial sums (to halve the add-latency chain).
		var sg0, sg1, sgx0, sgx1 T
		j := 0
		for ; j+2 <= c; j += 2 {
			d0, d1 := dyr[j], dyr[j+1]
			xh0, xh1 := (xr[j]-m)*rs, (xr[j+1]-m)*rs
			if wantScale {
				ps[j] += d0 * xh0
				ps[j+1] += d1 * xh1
			}
			if wantOffset {
				po[j] += d0
				po[j+1] += d1
			}
			g0, g1 := d0*scale[j], d1*scale[j+1]
			sg0 += g0
			sg1 += g1
			sgx0 += g0 * xh0
			sgx1 += g1 * xh1
		}
		if j < c {
			d, xh := dyr[j], (xr[j]-m)*rs
			if wantScale {
				ps[j] += d * xh
			}
			if wantOffset {
				po[j] += d
			}
			g := d * scale[j]
			sg0 += g
			sgx0 += g * xh
		}
		if dx != nil {
			mg, mgx := (sg0+sg1)/fc, (sgx0+sgx1)/fc
			dxr := dx[r*c : (r+1)*c]
			dxr = dxr[:len(xr)]
			for j, xv := range xr {
				dxr[j] += rs * (dyr[j]*scale[j] - mg - ((xv-m)*rs)*mgx)
			}
		}
		if (r-lo)%blockRows == blockRows-1 || r == hi-1 {
			if wantScale {
				addTo(acc[2], ps)
				clear(ps)
			}
			if wantOffset {
				addTo(acc[3], po)
				clear(po)
			}
		}
	}
}

// LayerNormParams holds the parameters of one AF2 layer norm over C
// channels: Scale and Offset, each [C].
type LayerNormParams[T num.Float] struct {
	Scale, Offset []T
	C             int
}

// Forward normalises the rows rows of x [rows, C] into y with eps =
// LayerNormEps, saving the statistics in mean and rstd [rows] when they are
// not nil; it is LayerNorm.
func (p LayerNormParams[T]) Forward(y, x []T, rows int, mean, rstd []T) {
	LayerNorm(y, x, rows, p.C, p.Scale, p.Offset, LayerNormEps, mean, rstd)
}

// Backward accumulates the gradients of Forward: dx [rows, C] (nil to skip)
// and, when grad is not nil, grad.Scale and grad.Offset (each skipped when
// nil). It is LayerNormBackward.
func (p LayerNormParams[T]) Backward(dx []T, grad *LayerNormParams[T], x, mean, rstd, dy []T, rows int) {
	var ds, do []T
	if grad != nil {
		ds, do = grad.Scale, grad.Offset
	}
	LayerNormBackward(dx, ds, do, x, p.Scale, mean, rstd, dy, rows, p.C)
}

// ZerosLike returns parameters of p's shape filled with zeros, the usual
// starting point of a gradient accumulator.
func (p LayerNormParams[T]) ZerosLike() LayerNormParams[T] {
	return LayerNormParams[T]{Scale: make([]T, len(p.Scale)), Offset: make([]T, len(p.Offset)), C: p.C}
}
