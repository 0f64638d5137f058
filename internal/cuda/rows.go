//go:build foldkit_cuda || foldkit_cudaemu

package cuda

import (
	"github.com/foldkit/foldkit/internal/num"
)

// LayerNorm queues the layer normalisation of the rows rows of x [rows, c]
// into y (nn.LayerNorm): y = rstd·scale·(x − μ) + offset with the biased
// variance and eps inside the square root. mean and rstd [rows] receive the
// statistics when not nil. y may be x.
func LayerNorm[T num.Float](d *Device, y, x, scale, offset *Buffer[T], eps T, mean, rstd *Buffer[T], rows, c int) error {
	for _, a := range []struct {
		what     string
		b        *Buffer[T]
		n        int
		optional bool
	}{{"x", x, rows * c, false}, {"y", y, rows * c, false}, {"scale", scale, c, false}, {"offset", offset, c, false}, {"mean", mean, rows, true}, {"rstd", rstd, rows, true}} {
		if err := need(d, a.what, a.b, a.n, a.optional); err != nil {
			return err
		}
	}
	if rows == 0 || c == 0 {
		return nil
	}
	k := "fk_layernorm" + suffix[T]()
	grid, block := rowsGrid(rows)
	return d.do(k, func() error {
		return d.launch(k, grid, block, 0, y.ptr, x.ptr, scale.ptr, offset.ptr, float64(eps), ptr(mean), ptr(rstd), rows, c)
	}, false)
}

// LayerNormBackward queues the gradients of LayerNorm
// (nn.LayerNormBackward), accumulating into dx [rows, c], dscale and
// doffset [c], each skipped when nil. mean and rstd are the statistics the
// forward call saved; when either is nil they are recomputed with
// eps = nn.LayerNormEps (1e-5), as the CPU kernel does.
func LayerNormBackward[T num.Float](d *Device, dx, dscale, doffset, x, scale, mean, rstd, dy *Buffer[T], rows, c int) error {
	for _, a := range []struct {
		what     string
		b        *Buffer[T]
		n        int
		optional bool
	}{{"x", x, rows * c, false}, {"dy", dy, rows * c, false}, {"scale", scale, c, false}, {"mean", mean, rows, true}, {"rstd", rstd, rows, true},
		{"dx", dx, rows * c, true}, {"dscale", dscale, c, true}, {"doffset", doffset, c, true}} {
		if err := need(d, a.what, a.b, a.n, a.optional); err != nil {
			return err
		}
	}
	if rows == 0 || c == 0 || (dx == nil && dscale == nil && doffset == nil) {
		return nil
	}
	sfx := suffix[T]()
	grid, block := rowsGrid(rows)
	return d.do("fk_layernorm_bwd"+sfx, func() error {
		mp, rp := ptr(mean), ptr(rstd)
		if mean == nil || rstd == nil {
			// 1e-5 is nn.LayerNormEps (not imported: package nn is CPU code).
			mc, mcl, err := scratch[T](d, rows)
			if err != nil {
				return err
			}
			defer d.alloc.put(mc, mcl)
			rc, rcl, err := scratch[T](d, rows)
			if err != nil {
				return err
			}
			defer d.alloc.put(rc, rcl)
			if err := d.launch("fk_layernorm_stats"+sfx, grid, block, 0, x.ptr, 1e-5, mc, rc, rows, c); err != nil {
				return err
			}
			mp, rp = mc, rc
		}
		if dx != nil {
			if err := d.launch("fk_layernorm_bwd"+sfx, grid, block, 0, dx.ptr, x.ptr, scale.ptr, mp, rp, dy.ptr, rows, c); err != nil {
				return err
			}
		}
		if dscale != nil {
			if err := colSum[T](d, dscale.ptr, dy.ptr, x.ptr, mp, rp, rows, c, 1); err != nil {
				return err
			}
		}
		if doffset != nil {
			if err := colSum[T](d, doffset.ptr, dy.ptr, 0, 0, 0, rows, c, 0); err != nil {
				return err
			}
		}
		return nil
	}, false)
}

// Softmax queues the in-place softmax of each of the rows rows of x
// [rows, n] (nn.SoftmaxRows): a row whose maximum is −Inf becomes uniform.
func Softmax[T num.Float](d *Device, x *Buffer[T], rows, n int) error {
	if err := need(d, "x", x, rows*n, false); err != nil {
		return err
	}
	if rows == 0 || n == 0 {
		return nil
	}
	k := "fk_softmax" + suffix[T]()
	grid, block := rowsGrid(rows)
	return d.do(k, func() error { return d.launch(k, grid, block, 0, x.ptr, rows, n) }, false)
}

// SoftmaxBackward queues dx += y·(dy − Σ y·dy) row by row
// (nn.SoftmaxRowsBackward).
func SoftmaxBackward[T num.Float](d *Device, dx, y, dy *Buffer[T], rows, n int) error {
	if err := same[T](d, rows*n, "dx", dx, "y", y, "dy", dy); err != nil {
		return err
	}
	if rows == 0 || n == 0 {
		return nil
	}
	k := "fk_softmax_bwd" + suffix[T]()
	grid, block := rowsGrid(rows)
	return d.do(k, func() error { return d.launch(k, grid, block, 0, dx.ptr, y.ptr, dy.ptr, rows, n) }, false)
}
