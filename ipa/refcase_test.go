package ipa

import (
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// TestRefcase reproduces ipa.npz (computed by OpenFold in float64, checked
// against a numpy AF2 implementation) through RunCase, outputs and every
// gradient, in float64 and float32, within the tolerances the case states
// in meta.tolerance.
func TestRefcase(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			cs := refcase.Open(t, "ipa.npz")
			meta, err := refcase.ReadMeta(cs)
			if err != nil {
				t.Fatal(err)
			}
			res, err := RunCase(cs, dtype, true)
			if err != nil {
				t.Fatal(err)
			}
			ref := func(name string) []float64 {
				t.Helper()
				x, err := params.Get[float64](cs, name)
				if err != nil {
					t.Fatal(err)
				}
				return x
			}
			got := func(name string) []float64 {
				t.Helper()
				x, err := params.Get[float64](res, name)
				if err != nil {
					t.Fatal(err)
				}
				return x
			}
			mask := ref("in/mask")
			n := len(mask)
			c := len(ref("in/s")) / n
			// Rows i whose own mask is 0 attend with every key masked: their
			// logits are −1e5 + x, so the case states a separate tolerance.
			maskedRow := func(k int) bool { return mask[k/c] == 0 }
			unmaskedRow := func(k int) bool { return mask[k/c] != 0 }
			abs := meta.Tol(0, dtype, "abs")
			rel := meta.Tol(0, dtype, "rel")
			absMasked := meta.Tol(0, dtype+"_positions_with_mask_0", "abs")
			if abs == 0 || rel == 0 || absMasked == 0 {
				t.Fatalf("tolerances missing from meta: %v", meta.Tolerance)
			}
			want, have := ref("out/s_update"), got("out/s_update")
			refcase.CompareSkip(t, "out/s_update (present rows)", have, want, abs, rel, maskedRow)
			refcase.CompareSkip(t, "out/s_update (masked rows)", have, want, absMasked, 0, unmaskedRow)

			for _, k := range cs.Keys() {
				if !strings.HasPrefix(k, "grad/") {
					continue
				}
				want := ref(k)
				have := got(k)
				var a, r float64
				switch {
				case dtype == "float32":
					// A float32 implementation: 1e-3 × the array's max abs (meta).
					a = meta.Tol(0, "grad", "float32 implementations", "rel_to_max_abs") * refcase.MaxAbs(want)
				case strings.HasPrefix(k, "grad/in/"):
					a, r = meta.Tol(0, "grad", "grad/in (float64)", "abs"), meta.Tol(0, "grad", "grad/in (float64)", "rel")
				default:
					// Stored rounded to float32: 1e-6 × max abs (meta).
					a = meta.Tol(0, "grad", "grad/params (stored float32)", "rel_to_max_abs") * refcase.MaxAbs(want)
				}
				if a == 0 {
					t.Fatalf("%s: gradient tolerance missing from meta", k)
				}
				if strings.HasSuffix(k, "attention_2d//bias") {
					// Softmax is invariant to a per-head constant: this
					// gradient is 0 up to round-off, so compare with the
					// scale of the pair-bias weights' gradient.
					a = max(a, meta.Tol(0, "grad", "grad/params (stored float32)", "rel_to_max_abs")*
						refcase.MaxAbs(ref("grad/params/invariant_point_attention/attention_2d//weights")))
					if dtype == "float32" {
						a = max(a, meta.Tol(0, "grad", "float32 implementations", "rel_to_max_abs")*
							refcase.MaxAbs(ref("grad/params/invariant_point_attention/attention_2d//weights")))
					}
				}
				refcase.Compare(t, k, have, want, a, r)
			}
		})
	}
}
