package msaattn

import (
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// TestRefcases runs the three reference cases through RunCase in float64 and
// float32 and compares outputs and gradients with the reference under the
// tolerances the cases state (refcases README §5):
//   - float64 outputs: abs 1e-9 + rel 1e-7 (meta.tolerance.float64); the
//     reference agrees with a second implementation to ~5e-14, so this
//     leaves room only for summation order;
//   - float64 grad/in: abs 1e-8 + rel 1e-6 (meta.tolerance.grad);
//   - grad/params: 1e-6 × the array's max abs, because they are stored
//     rounded to float32 (relative rounding 6e-8);
//   - float32 outputs: abs 1e-4 + rel 1e-3 (meta.tolerance.float32), at least
//     ten times the measured float32-vs-float64 error of ~1e-6;
//   - float32 gradients: 1e-3 × the array's max abs (meta.tolerance.grad
//     "float32 implementations").
//
// A parameter gradient that is analytically zero (feat_2d_norm//offset of
// row attention: it shifts every logit of a head by the same constant, to
// which the softmax is blind; README §5, gradient notes) is stored as
// round-off (~1e-16), so a bound relative to its own max abs is meaningless.
// It is compared with abs = 100·eps(dtype) × the largest parameter gradient
// of the case: the round-off of sums of terms of that size.
//
// None of these cases has a query whose keys are all masked, so no separate
// tolerance for masked positions is needed.
func TestRefcases(t *testing.T) {
	for _, name := range []string{"msa_row_attention.npz", "msa_column_attention.npz", "msa_column_global_attention.npz"} {
		for _, dtype := range []string{"float64", "float32"} {
			t.Run(strings.TrimSuffix(name, ".npz")+"/"+dtype, func(t *testing.T) {
				cs := refcase.Open(t, name)
				meta, err := refcase.ReadMeta(cs)
				if err != nil {
					t.Fatal(err)
				}
				got, err := RunCase(cs, dtype, true)
				if err != nil {
					t.Fatal(err)
				}
				outAbs, outRel := meta.Tol(1e-9, "float64", "abs"), meta.Tol(1e-7, "float64", "rel")
				ginAbs, ginRel := meta.Tol(1e-8, "grad", "grad/in (float64)", "abs"), meta.Tol(1e-6, "grad", "grad/in (float64)", "rel")
				gpRel := meta.Tol(1e-6, "grad", "grad/params (stored float32)", "rel_to_max_abs")
				if dtype == "float32" {
					outAbs, outRel = meta.Tol(1e-4, "float32", "abs"), meta.Tol(1e-3, "float32", "rel")
					ginRel = meta.Tol(1e-3, "grad", "float32 implementations", "rel_to_max_abs")
					gpRel = ginRel
				}
				eps := 0x1p-52
				if dtype == "float32" {
					eps = 0x1p-23
				}
				gmax := 0.0
				for _, k := range cs.Keys() {
					if strings.HasPrefix(k, "grad/params/") {
						want, err := params.Get[float64](cs, k)
						if err != nil {
							t.Fatal(err)
						}
						gmax = max(gmax, refcase.MaxAbs(want))
					}
				}
				n := 0
				for _, k := range cs.Keys() {
					if !strings.HasPrefix(k, "out/") && !strings.HasPrefix(k, "grad/") {
						continue
					}
					want, err := params.Get[float64](cs, k)
					if err != nil {
						t.Fatal(err)
					}
					g, err := params.Get[float64](got, k)
					if err != nil {
						t.Errorf("result lacks %s: %v", k, err)
						continue
					}
					abs, rel := outAbs, outRel
					switch {
					case strings.HasPrefix(k, "grad/params/"):
						abs, rel = gpRel*refcase.MaxAbs(want), 0
						if refcase.MaxAbs(want) < 1e-10 {
							abs = 100 * eps * gmax
						}
					case strings.HasPrefix(k, "grad/in/"):
						abs, rel = ginAbs, ginRel
						if dtype == "float32" {
							abs, rel = ginRel*refcase.MaxAbs(want), 0
						}
					}
					refcase.Compare(t, k, g, want, abs, rel)
					n++
				}
				if len(got.Keys()) != n {
					t.Errorf("result has %d arrays, the case %d: %v", len(got.Keys()), n, got.Keys())
				}
			})
		}
	}
}

// TestRunCaseNoGrad checks that without grad RunCase returns the output
// only and does not need the cotangent.
func TestRunCaseNoGrad(t *testing.T) {
	cs := refcase.Open(t, "msa_row_attention.npz")
	got, err := RunCase(cs, "float64", false)
	if err != nil {
		t.Fatal(err)
	}
	if keys := got.Keys(); len(keys) != 1 || keys[0] != "out/msa_update" {
		t.Errorf("result keys %v, want [out/msa_update]", keys)
	}
}
