package recycle

import (
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// TestRefcase reproduces recycling_embedder.npz in float64 and float32,
// outputs and gradients, under the case's tolerances (refcases README §5):
// outputs |got − want| ≤ abs + rel·|want| with meta's abs and rel; grad/in
// in float64 abs 1e-8, rel 1e-6; grad/params in float64 1e-6 × the array's
// largest |value| (they are stored rounded to float32); every gradient in
// float32 1e-3 × the array's largest |value|.
func TestRefcase(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			cs := refcase.Open(t, "recycling_embedder.npz")
			meta, err := refcase.ReadMeta(cs)
			if err != nil {
				t.Fatal(err)
			}
			res, err := RunCase(cs, dtype, true)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, k := range cs.Keys() {
				isOut, isGrad := strings.HasPrefix(k, "out/"), strings.HasPrefix(k, "grad/")
				if !isOut && !isGrad {
					continue
				}
				want, err := params.Get[float64](cs, k)
				if err != nil {
					t.Fatal(err)
				}
				got, err := params.Get[float64](res, k)
				if err != nil {
					t.Fatalf("%s: %v", k, err)
				}
				var abs, rel float64
				switch {
				case isOut:
					abs, rel = meta.Tol(1e-9, dtype, "abs"), meta.Tol(1e-7, dtype, "rel")
				case dtype == "float32":
					abs = 1e-3 * refcase.MaxAbs(want)
				case strings.HasPrefix(k, "grad/in/"):
					abs, rel = 1e-8, 1e-6
				default:
					abs = 1e-6 * refcase.MaxAbs(want)
				}
				refcase.Compare(t, dtype+" "+k, got, want, abs, rel)
				n++
			}
			if n != 11 {
				t.Errorf("compared %d arrays, want 11 (2 outputs, 3 input and 6 parameter gradients)", n)
			}
		})
	}
}
