package alphafold

import (
	"errors"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// smInner is the number of elements per residue of each output with a
// residue axis (0: c_s).
var smInner = map[string]int{
	"frames": 7, "sidechain_frames": 8 * 16, "unnormalized_angles": 14, "angles": 14,
	"positions": 42, "states": 0, "single": 0,
}

// TestStructureModuleRefcase reproduces structure_module.npz (OpenFold's
// structure module, reduced widths, 8 iterations) in float64 and float32:
// every output, and the gradients with respect to the inputs and every
// parameter.
func TestStructureModuleRefcase(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			cs := refcase.Open(t, "structure_module.npz")
			meta, err := refcase.ReadMeta(cs)
			if err != nil {
				t.Fatal(err)
			}
			res, err := RunStructureModuleCase(cs, dtype, true)
			if err != nil {
				t.Fatal(err)
			}
			compareStructureModule(t, cs, res, meta, dtype)
		})
	}
}

func compareStructureModule(t *testing.T, cs, res *params.Set, meta refcase.Meta, dtype string) {
	mask, err := params.Get[float64](cs, "in/seq_mask")
	if err != nil {
		t.Fatal(err)
	}
	n := len(mask)
	c := int(meta.Config["c_s"].(float64))
	// Tolerances from meta.tolerance: float64 1e-8 + 1e-7·|ref| (OpenFold
	// and numpy agree to ~5e-14). float32 1e-4 + 1e-3·|ref|, ten times the
	// measured float32-vs-float64 error where the sequence mask is 1; the
	// residue whose mask is 0 has every IPA key masked (logits −1e5 + x),
	// which a float32 run resolves only to ~1e-2, hence its own bound.
	abs, rel := meta.Tol(0, "float64", "abs"), meta.Tol(0, "float64", "rel")
	if dtype == "float32" {
		abs, rel = meta.Tol(0, "float32", "abs"), meta.Tol(0, "float32", "rel")
	}
	masked := meta.Tol(0, "float32_residues_with_seq_mask_0", "abs")
	if abs == 0 || rel == 0 || masked == 0 {
		t.Fatal("tolerances missing from meta")
	}
	for _, name := range smOutputNames {
		want, err := params.Get[float64](cs, "out/"+name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := params.Get[float64](res, "out/"+name)
		if err != nil {
			t.Fatal(err)
		}
		inner := smInner[name]
		if inner == 0 {
			inner = c
		}
		residueOf := func(i int) int { return (i / inner) % n }
		if dtype == "float64" {
			refcase.Compare(t, "out/"+name, got, want, abs, rel)
			continue
		}
		refcase.CompareSkip(t, "out/"+name+" (seq_mask 1)", got, want, abs, rel, func(i int) bool { return mask[residueOf(i)] == 0 })
		refcase.CompareSkip(t, "out/"+name+" (seq_mask 0)", got, want, masked, 0, func(i int) bool { return mask[residueOf(i)] != 0 })
	}
	for _, k := range cs.Keys() {
		if !strings.HasPrefix(k, "grad/") {
			continue
		}
		want, err := params.Get[float64](cs, k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := params.Get[float64](res, k)
		if err != nil {
			t.Errorf("result lacks %s: %v", k, err)
			continue
		}
		var a, r float64
		switch {
		case dtype == "float32":
			// A float32 implementation: 1e-3 × the array's largest entry.
			a = meta.Tol(0, "grad", "float32 implementations", "rel_to_max_abs") * refcase.MaxAbs(want)
		case strings.HasPrefix(k, "grad/in/"):
			a, r = meta.Tol(0, "grad", "grad/in (float64)", "abs"), meta.Tol(0, "grad", "grad/in (float64)", "rel")
		default:
			// Stored rounded to float32: 1e-6 × the array's largest entry.
			a = meta.Tol(0, "grad", "grad/params (stored float32)", "rel_to_max_abs") * refcase.MaxAbs(want)
		}
		if a == 0 {
			t.Fatalf("%s: gradient tolerance missing from meta", k)
		}
		if strings.HasSuffix(k, "attention_2d//bias") {
			// Softmax is invariant to a per-head constant: this gradient
			// is 0 up to round-off (the reference holds ~1e-15), so it is
			// compared on the scale of the pair-bias weights' gradient.
			w, err := params.Get[float64](cs, strings.TrimSuffix(k, "bias")+"weights")
			if err != nil {
				t.Fatal(err)
			}
			a = max(a, a/refcase.MaxAbs(want)*refcase.MaxAbs(w))
		}
		refcase.Compare(t, k, got, want, a, r)
	}
}

// TestStructureModuleCaseErrors checks that RunStructureModuleCase names a
// missing key, refuses an unused one, another case and an unknown dtype.
func TestStructureModuleCaseErrors(t *testing.T) {
	cs := refcase.Open(t, "structure_module.npz")
	// copyWithout returns a fresh set holding cs's arrays except skip.
	copyWithout := func(skip string) *params.Set {
		s := params.New()
		for _, k := range cs.Keys() {
			if k == skip {
				continue
			}
			a, err := cs.Array(k)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.PutArray(k, a); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	const key = "params/structure_module/fold_iteration/affine_update//bias"
	if _, err := RunStructureModuleCase(copyWithout(key), "float64", false); !errors.Is(err, params.ErrMissing) || !strings.Contains(err.Error(), "affine_update//bias") {
		t.Errorf("missing %s: error %v", key, err)
	}
	extra := copyWithout("")
	if err := params.Put(extra, "in/template_mask", []int{2}, []float64{1, 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := RunStructureModuleCase(extra, "float64", false); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "in/template_mask") {
		t.Errorf("unused key: error %v", err)
	}
	if _, err := RunStructureModuleCase(copyWithout(""), "float16", false); !errors.Is(err, ErrConfig) {
		t.Errorf("dtype float16: error %v", err)
	}
	other := copyWithout("meta")
	if err := params.PutString(other, "meta", `{"case": "ipa", "config": {}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := RunStructureModuleCase(other, "float64", false); !errors.Is(err, ErrConfig) {
		t.Errorf("case ipa: error %v", err)
	}
	short := copyWithout("in/seq_mask")
	if err := params.Put(short, "in/seq_mask", []int{3}, []float64{1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := RunStructureModuleCase(short, "float64", false); !errors.Is(err, num.ErrShape) {
		t.Errorf("short seq_mask: error %v", err)
	}
}
