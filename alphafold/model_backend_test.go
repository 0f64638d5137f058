package alphafold

import (
	"context"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// pairOf returns a Pair holding k for its element type.
func pairOf[T num.Float](k backend.Kernels[T]) backend.Pair {
	var p backend.Pair
	switch kk := any(k).(type) {
	case backend.Kernels[float32]:
		p.F32 = kk
	case backend.Kernels[float64]:
		p.F64 = kk
	}
	return p
}

// TestPredictBackend runs Predict with the stacks on every backend of the
// build (PredictOptions.Backend) and compares it with Predict on the CPU.
// On the CPU backend the stacks run the CPU code on the tensors' slices, so
// the results must be identical. On any other backend they differ by the
// round-off of the composed kernels (≤ 1e-15 relative per step in float64,
// ≤ 1e-6 in float32; see the backend tests), carried through three blocks,
// the structure module and two recycling passes of the tiny model: 1e-9 in
// float64 and 1e-3 (Å, logits) in float32, the bounds of the MSA
// permutation test, which meets the same amplification.
func TestPredictBackend(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testPredictBackend[float64](t, 1e-9) })
	t.Run("float32", func(t *testing.T) { testPredictBackend[float32](t, 1e-3) })
}

func testPredictBackend[T num.Float](t *testing.T, tol float64) {
	cfg := mdlTinyConfig()
	m := mdlRandomModel[T](t, cfg, 3)
	f := mdlFeatures(t, 12, 16, 5, 4)
	f.MSAMask[(f.S-1)*f.L+2] = 0
	opt := PredictOptions{Iterations: 2}
	want, err := m.Predict(context.Background(), f, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backendtest.Backends[T](t) {
		t.Run(b.Name, func(t *testing.T) {
			o := opt
			o.Backend = pairOf(b.K)
			got, err := m.Predict(context.Background(), f, o)
			if err != nil {
				t.Fatal(err)
			}
			limit := tol
			if b.Name == "cpu" {
				limit = 0 // the CPU code itself
			}
			for _, c := range []struct {
				what string
				x, y []T
			}{
				{"final_atom_positions", got.FinalAtomPositions, want.FinalAtomPositions},
				{"plddt", got.PLDDT, want.PLDDT},
				{"pair", got.Pair, want.Pair},
				{"single", got.Single, want.Single},
				{"msa_first_row", got.MSAFirstRow, want.MSAFirstRow},
				{"masked_msa_logits", got.MaskedMSALogits, want.MaskedMSALogits},
			} {
				d := mdlMaxDiff(t, c.what, c.x, c.y)
				t.Logf("%s: max |Δ| %.3g", c.what, d)
				if d > limit {
					t.Errorf("%s differs from the CPU's by %.3g, want ≤ %g", c.what, d, limit)
				}
			}
		})
	}
}
