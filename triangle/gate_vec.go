package triangle

import "github.com/foldkit/foldkit/internal/simd"

// vecLayerNorm32 is a layer norm of rows rows of c channels (the forward
// pass of nn.LayerNorm, same two-pass statistics) through simd's AVX2 row
// kernel, split across goroutines. It reports false, doing nothing, when
// the kernel cannot run (no AVX2, or c not a positive multiple of 8).
func vecLayerNorm32(y, x []float32, rows, c int, scale, offset []float32, eps float32, mean, rstd []float32) bool {
	if !simd.Available || c%8 != 0 || c == 0 {
		return false
	}
	if rows == 0 {
		return true
	}
	_, _ = x[rows*c-1], y[rows*c-1]
	_, _ = scale[c-1], offset[c-1]
	_, _ = mean[rows-1], rstd[rows-1]
	parallelFor(rows, rows*c, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			mean[r], rstd[r], _ = simd.LayerNormRow(y[r*c:(r+1)*c], x[r*c:(r+1)*c], scale, offset, eps)
		}
	})
	return true
}
