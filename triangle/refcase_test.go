package triangle

import (
	"errors"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// TestRefcases reproduces tri_mul_outgoing.npz, tri_mul_incoming.npz,
// tri_att_starting.npz and tri_att_ending.npz through RunCase, in float64
// and float32, outputs and gradients, with the tolerances of each case's
// meta (refcases README §5):
//   - float64 outputs: abs 1e-9 + rel 1e-7; at positions whose own pair mask
//     is 0 the attention cases allow abs 1e-6 (rows whose keys are all
//     masked keep only ~1e-7 of resolution under the 1e9 mask constant);
//   - float32 outputs: abs 1e-4 + rel 1e-3, and the meta's looser bound at
//     positions whose mask is 0 (there float32 keeps nothing of the logits);
//   - float64 input gradients: abs 1e-8 + rel 1e-6;
//   - parameter gradients, stored rounded to float32: 1e-6 × the largest
//     entry of the array in float64, 1e-3 × in float32 (the meta's bound for
//     float32 implementations), which is also used for float32 input
//     gradients;
//   - float32 attention gradients: see compareAtt32.
func TestRefcases(t *testing.T) {
	for _, name := range Cases() {
		for _, dtype := range []string{"float64", "float32"} {
			t.Run(name+"/"+dtype, func(t *testing.T) {
				cs := refcase.Open(t, name+".npz")
				meta, err := refcase.ReadMeta(cs)
				if err != nil {
					t.Fatal(err)
				}
				res, err := RunCase(cs, dtype, true)
				if err != nil {
					t.Fatal(err)
				}
				mask, err := params.Get[float64](cs, "in/pair_mask")
				if err != nil {
					t.Fatal(err)
				}
				want := func(key string) []float64 {
					t.Helper()
					x, err := params.Get[float64](cs, key)
					if err != nil {
						t.Fatal(err)
					}
					return x
				}
				got := func(key string) []float64 {
					t.Helper()
					x, err := params.Get[float64](res, key)
					if err != nil {
						t.Fatal(err)
					}
					return x
				}
				out, ref := got("out/z_update"), want("out/z_update")
				cz := len(ref) / len(mask)
				masked := func(i int) bool { return mask[i/cz] == 0 }
				unmasked := func(i int) bool { return !masked(i) }
				abs, rel := meta.Tol(1e-9, dtype, "abs"), meta.Tol(1e-7, dtype, "rel")
				refcase.CompareSkip(t, "out/z_update", out, ref, abs, rel, masked)
				mabs := meta.Tol(abs, dtype+"_positions_with_mask_0", "abs")
				if mabs > abs {
					mrel := meta.Tol(0, dtype+"_positions_with_mask_0", "rel")
					refcase.CompareSkip(t, "out/z_update (mask 0)", out, ref, mabs, mrel, unmasked)
				} else {
					refcase.CompareSkip(t, "out/z_update (mask 0)", out, ref, abs, rel, unmasked)
				}

				if dtype == "float32" && strings.HasPrefix(name, "tri_att") {
					compareAtt32(t, cs, name == CaseAttEnding, mask, cz)
					return
				}
				gin, gref := got("grad/in/z"), want("grad/in/z")
				if dtype == "float64" {
					refcase.Compare(t, "grad/in/z", gin, gref, meta.Tol(1e-8, "grad", "grad/in (float64)", "abs"), meta.Tol(1e-6, "grad", "grad/in (float64)", "rel"))
				} else {
					f := meta.Tol(1e-3, "grad", "float32 implementations", "rel_to_max_abs")
					refcase.Compare(t, "grad/in/z", gin, gref, f*refcase.MaxAbs(gref), 0)
				}
				f := meta.Tol(1e-6, "grad", "grad/params (stored float32)", "rel_to_max_abs")
				if dtype == "float32" {
					f = meta.Tol(1e-3, "grad", "float32 implementations", "rel_to_max_abs")
				}
				var nparams int
				for _, k := range cs.Keys() {
					if !strings.HasPrefix(k, "grad/params/") {
						continue
					}
					nparams++
					ref := want(k)
					refcase.Compare(t, k, got(k), ref, f*refcase.MaxAbs(ref), 0)
				}
				if nparams == 0 {
					t.Fatal("no parameter gradients in the case")
				}
				for _, k := range res.Keys() {
					if !cs.Has(k) {
						t.Errorf("RunCase returned %s, which the case does not hold", k)
					}
				}
			})
		}
	}
}

// compareAtt32 checks the float32 gradients of a triangle attention case.
// A query row whose keys are all masked is the uniform average of the values
// in float32 (the 1e9 mask constant swallows the logits) but softmax of the
// logits in float64, so z_update differs by up to 0.9 there (as in the
// case's own out32/), and through the shared pair bias such rows reach every
// gradient: no float32 computation can match grad/ for the case's cotangent.
// So the cotangent is zeroed on those rows, and the float32 gradients are
// compared with this package's float64 gradients for it (checked against
// the case in float64) to 1e-3 × the largest entry of each array (the meta's
// bound for float32 implementations). The masked rows themselves are
// covered by TestMaskedRowsFinite.
func compareAtt32(t *testing.T, cs *params.Set, ending bool, mask []float64, cz int) {
	t.Helper()
	cot, err := params.Get[float64](cs, "in/cot_z_update")
	if err != nil {
		t.Fatal(err)
	}
	n := isqrt(len(mask))
	for i := range n {
		for j := range n {
			var keys float64 // keys of query (i, j): row i, or column j when ending
			for k := range n {
				if ending {
					keys += mask[k*n+j]
				} else {
					keys += mask[i*n+k]
				}
			}
			if keys == 0 {
				clear(cot[(i*n+j)*cz : (i*n+j+1)*cz])
			}
		}
	}
	shape, _ := cs.Shape("in/cot_z_update")
	if err := params.Put(cs, "in/cot_z_update", shape, cot); err != nil {
		t.Fatal(err)
	}
	r64, err := RunCase(cs, "float64", true)
	if err != nil {
		t.Fatal(err)
	}
	r32, err := RunCase(cs, "float32", true)
	if err != nil {
		t.Fatal(err)
	}
	var nkeys int
	for _, k := range r64.Keys() {
		if !strings.HasPrefix(k, "grad/") {
			continue
		}
		nkeys++
		want, err1 := params.Get[float64](r64, k)
		got, err2 := params.Get[float64](r32, k)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		refcase.Compare(t, k+" (vs float64)", got, want, 1e-3*refcase.MaxAbs(want), 0)
	}
	if nkeys < 2 {
		t.Fatalf("only %d gradients compared", nkeys)
	}
}

// TestRunCaseErrors checks that RunCase refuses a case with a key it does
// not use, a missing key, a mis-shaped key and an unknown case name.
func TestRunCaseErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(cs *params.Set) error
		target error
	}{
		{"extra params key", func(cs *params.Set) error {
			return params.Put(cs, "params/triangle_multiplication_outgoing/extra//bias", []int{1}, []float64{0})
		}, ErrConfig},
		{"extra in key", func(cs *params.Set) error { return params.Put(cs, "in/seq_mask", []int{13}, make([]float64, 13)) }, ErrConfig},
		{"mis-shaped mask", func(cs *params.Set) error {
			return params.Put(cs, "in/pair_mask", []int{13, 12}, make([]float64, 13*12))
		}, num.ErrShape},
		{"mis-shaped weights", func(cs *params.Set) error {
			return params.Put(cs, "params/triangle_multiplication_outgoing/left_gate//weights", []int{128, 127}, make([]float64, 128*127))
		}, num.ErrShape},
		{"unknown case", func(cs *params.Set) error {
			return params.PutString(cs, "meta", `{"case": "tri_mul_sideways", "config": {}}`)
		}, ErrConfig},
		{"other epsilon", func(cs *params.Set) error {
			return params.PutString(cs, "meta", `{"case": "tri_mul_outgoing", "config": {"layer_norm_eps": 1e-3}}`)
		}, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := refcase.Open(t, CaseMulOutgoing+".npz")
			if err := tc.edit(cs); err != nil {
				t.Fatal(err)
			}
			_, err := RunCase(cs, "float64", true)
			if !errors.Is(err, tc.target) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.target)
			}
			t.Log(err)
		})
	}
	t.Run("missing key", func(t *testing.T) {
		cs := refcase.Open(t, CaseMulOutgoing+".npz")
		sub := params.New()
		for _, k := range cs.Keys() {
			if k == "in/cot_z_update" {
				continue
			}
			a, err := cs.Array(k)
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.PutArray(k, a); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := RunCase(sub, "float32", true); !errors.Is(err, params.ErrMissing) {
			t.Fatalf("got %v, want an error wrapping params.ErrMissing", err)
		}
		if _, err := RunCase(sub, "float32", false); err != nil {
			t.Fatalf("without grad the cotangent is not needed: %v", err)
		}
	})
}
