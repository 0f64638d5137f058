//go:build !amd64 || purego

package triangle

// Without the AVX2 kernels every gate runs in the portable Go loops of
// gate.go; these report that nothing was done.

const hasAVX2 = false

func vecGateMask32(dst, x, y, m []float32, bx, by float32) int { return 0 }
func vecGateVec32(dst, x, y, bx, by []float32) int             { return 0 }
func vecSigmoidVec32(dst, x, b []float32) int                  { return 0 }
func vecSigmoidScalar32(dst, x []float32, b float32) int       { return 0 }

func vecMoments32(s1, s2, x, k []float32) int                  { return 0 }
func vecNormAffine32(dst, x, m, r []float32, s, o float32) int { return 0 }

func vecAdd32(dst, x []float32) int { return 0 }

func vecLayerNorm32(y, x []float32, rows, c int, scale, offset []float32, eps float32, mean, rstd []float32) bool {
	return false
}
