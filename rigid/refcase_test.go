package rigid_test

import (
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/rigid"
)

// TestRefCase runs every sub-operation of rigid.npz through RunCase and
// compares every out/ and grad/in/ array the case stores.
//
// Tolerances: float64 outputs use meta.tolerance.float64 (abs 1e-10, rel
// 1e-9: the same formulas in float64 agree to ~1e-15, and the torsion outputs
// use AF2's float32 tables exactly as the reference did). rot_to_quat uses
// meta.tolerance.rot_to_quat.abs (1e-7) up to an overall sign: the inputs are
// orthonormal only to ~1e-7, so the quaternion is defined only to that level.
// float64 gradients use README §5's grad/in tolerance (abs 1e-8, rel 1e-6).
// float32 outputs use meta.tolerance.float32 (abs 2e-5, rel 1e-4: at least
// ten times the stored out32-vs-out error, at most 1.6e-6); float32
// gradients use README §5's rule for a float32 implementation, 1e-3 × the
// array's largest magnitude.
func TestRefCase(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			cs := refcase.Open(t, "rigid.npz")
			meta, err := refcase.ReadMeta(cs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rigid.RunCase(cs, dtype, true)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, key := range cs.Keys() {
				isOut := strings.HasPrefix(key, "out/")
				isGrad := strings.HasPrefix(key, "grad/in/")
				if !isOut && !isGrad {
					continue
				}
				n++
				want, err := params.Get[float64](cs, key)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Has(key) {
					t.Errorf("%s: not produced", key)
					continue
				}
				g, err := params.Get[float64](got, key)
				if err != nil {
					t.Fatal(err)
				}
				var abs, rel float64
				switch {
				case isOut && key == "out/rot_to_quat/quat":
					abs, rel = meta.Tol(1e-7, "rot_to_quat", "abs"), 0
					alignSign(g, want)
				case isOut:
					abs, rel = meta.Tol(0, dtype, "abs"), meta.Tol(0, dtype, "rel")
				case dtype == "float64":
					abs, rel = 1e-8, 1e-6
				default:
					abs, rel = 1e-3*refcase.MaxAbs(want), 0
				}
				if abs == 0 && rel == 0 {
					t.Fatalf("no tolerance for %s in meta", dtype)
				}
				refcase.Compare(t, key, g, want, abs, rel)
			}
			if n != 43 {
				t.Errorf("compared %d arrays, want 43 (every out/ and grad/in/ key of the case)", n)
			}
			for _, k := range got.Keys() {
				if !cs.Has(k) {
					t.Errorf("RunCase produced %s, which the case does not hold", k)
				}
			}
		})
	}
}

// alignSign flips each quaternion of got (rows of 4) to the sign of want's
// row: q and −q are the same rotation, and where w ≈ 0 the w ≥ 0 rule does
// not fix the sign.
func alignSign(got, want []float64) {
	for i := 0; i+4 <= len(got); i += 4 {
		d := 0.0
		for k := 0; k < 4; k++ {
			d += got[i+k] * want[i+k]
		}
		if d < 0 {
			for k := 0; k < 4; k++ {
				got[i+k] = -got[i+k]
			}
		}
	}
}

// TestRunCaseUsesInputs checks that RunCase reads every in/ key of the case
// (the CLI rejects cases with keys it did not use) and writes nothing but
// out/ when grad is off.
func TestRunCaseUsesInputs(t *testing.T) {
	cs := refcase.Open(t, "rigid.npz")
	got, err := rigid.RunCase(cs, "float64", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range got.Keys() {
		if !strings.HasPrefix(k, "out/") {
			t.Errorf("grad off: produced %s", k)
		}
	}
	cs = refcase.Open(t, "rigid.npz")
	if _, err := rigid.RunCase(cs, "float32", true); err != nil {
		t.Fatal(err)
	}
	for _, k := range cs.Unused() {
		if strings.HasPrefix(k, "in/") {
			t.Errorf("RunCase with grad did not read %s", k)
		}
	}
}

func TestRunCaseErrors(t *testing.T) {
	mk := func(keys map[string][]int) *params.Set {
		s := params.New()
		for k, shape := range keys {
			n := 1
			for _, d := range shape {
				n *= d
			}
			if err := params.Put(s, k, shape, make([]float64, n)); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	q := mk(map[string][]int{"in/quat_to_rot/quat": {2, 4}})
	for _, c := range []struct {
		name  string
		s     *params.Set
		dtype string
	}{
		{"unknown op", mk(map[string][]int{"in/frobnicate/x": {2, 3}}), "float64"},
		{"bad key", mk(map[string][]int{"in/x": {2, 3}}), "float64"},
		{"no inputs", mk(map[string][]int{"out/compose/rot": {2, 3, 3}}), "float64"},
		{"dtype", q, "float16"},
		{"missing input", mk(map[string][]int{"in/compose/rot1": {2, 3, 3}, "in/compose/trans1": {2, 3}}), "float64"},
		{"mis-shaped input", mk(map[string][]int{"in/quat_to_rot/quat": {2, 3}}), "float64"},
		{"mis-shaped points", mk(map[string][]int{"in/apply/rot": {2, 3, 3}, "in/apply/trans": {2, 3}, "in/apply/points": {2, 5}}), "float64"},
		{"mis-shaped cotangent", mk(map[string][]int{"in/quat_to_rot/quat": {2, 4}, "in/quat_to_rot/cot_rot": {2, 9}}), "float32"},
	} {
		if _, err := rigid.RunCase(c.s, c.dtype, true); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if _, err := rigid.RunCase(q, "float32", true); err != nil {
		t.Errorf("valid minimal case: %v", err)
	}
}
