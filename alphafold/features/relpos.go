package features

// RelPosBins is the number of relative-position classes (2·32 + 1) of AF2's
// input embedder (Alg. 4, relpos with v_bins −32..32).
const RelPosBins = 65

// RelPos returns AF2's relative-position one-hot [L, L, 65] (Alg. 4): bin
// clip(ri_i − ri_j, −32, 32) + 32.
func RelPos(residueIndex []int) []float64 {
	l := len(residueIndex)
	out := make([]float64, l*l*RelPosBins)
	for i := 0; i < l; i++ {
		for j := 0; j < l; j++ {
			d := min(max(residueIndex[i]-residueIndex[j], -32), 32)
			out[(i*l+j)*RelPosBins+d+32] = 1
		}
	}
	return out
}
