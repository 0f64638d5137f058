package alphafold

import (
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// checkEvoCase runs the named reference case through RunEvoformerCase in
// dtype, with gradients, and compares every out/ and grad/ array of the file
// with the result under the case's tolerances (meta.tolerance, refcases
// README §5):
//
//   - outputs: |got − want| ≤ abs + rel·|want| with meta's float64 or float32
//     abs and rel;
//   - grad/in in float64: abs 1e-8, rel 1e-6;
//   - grad/params in float64: 1e-6 × the largest |value| of the array (they
//     are stored rounded to float32, whose relative rounding is 6e-8);
//   - every gradient in float32: 1e-3 × the largest |value| of the array.
//
// Gradient tolerances have a floor (gradFloor) for arrays whose exact
// gradient is 0, such as a layer-norm offset that only shifts every logit
// of a softmax by the same amount (refcases README §5): both sides are then
// pure round-off (about 1e-15 in float64 and 1e-6 in float32 for these
// O(1–100) gradients), which no relative bound can compare.
func checkEvoCase(t *testing.T, file, dtype string) {
	t.Helper()
	cs := refcase.Open(t, file)
	meta, err := refcase.ReadMeta(cs)
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunEvoformerCase(cs, dtype, true)
	if err != nil {
		t.Fatal(err)
	}
	compareEvoResult(t, cs, res, meta, dtype)
}

// compareEvoResult compares res with the out/ and grad/ arrays of cs.
func compareEvoResult(t *testing.T, cs, res *params.Set, meta refcase.Meta, dtype string) {
	t.Helper()
	n := 0
	for _, k := range cs.Keys() {
		isOut := strings.HasPrefix(k, "out/")
		isGrad := strings.HasPrefix(k, "grad/")
		if !isOut && !isGrad {
			continue
		}
		want, err := params.Get[float64](cs, k)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Has(k) {
			t.Errorf("%s: missing from the result", k)
			continue
		}
		got, err := params.Get[float64](res, k)
		if err != nil {
			t.Fatal(err)
		}
		var abs, rel float64
		switch {
		case isOut:
			abs, rel = meta.Tol(1e-9, dtype, "abs"), meta.Tol(1e-7, dtype, "rel")
		case dtype == "float32":
			abs = max(1e-3*refcase.MaxAbs(want), gradFloor[dtype])
		case strings.HasPrefix(k, "grad/in/"):
			abs, rel = 1e-8, 1e-6
		default:
			abs = max(1e-6*refcase.MaxAbs(want), gradFloor[dtype])
		}
		refcase.Compare(t, dtype+" "+k, got, want, abs, rel)
		n++
	}
	if n == 0 {
		t.Fatal("no out/ or grad/ arrays compared")
	}
}

// gradFloor is the smallest absolute tolerance of a gradient array: about
// 1e5 (float64) and 100 (float32) times the round-off measured where the
// exact gradient is 0, and far below the gradients of these cases, whose
// arrays reach magnitudes of 1 to 100.
var gradFloor = map[string]float64{"float64": 1e-10, "float32": 1e-4}

func TestEvoformerRefcases(t *testing.T) {
	for _, file := range []string{"outer_product_mean.npz", "msa_transition.npz", "pair_transition.npz", "evoformer_block.npz"} {
		for _, dtype := range []string{"float64", "float32"} {
			t.Run(strings.TrimSuffix(file, ".npz")+"/"+dtype, func(t *testing.T) {
				checkEvoCase(t, file, dtype)
			})
		}
	}
}
