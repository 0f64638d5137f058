// Package refcase finds and reads foldkit's reference cases (the .npz files of
// ../shared/refcases, computed by an independent AlphaFold2 implementation)
// and compares results with them under stated tolerances.
//
// Tests find the cases in $FOLDKIT_REFCASES when it is set (the GPU scripts
// set it), else in ../shared/refcases next to the module's root.
package refcase

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// Dir returns the directory holding the reference cases.
func Dir() (string, error) {
	if d := os.Getenv("FOLDKIT_REFCASES"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared", "refcases"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("refcase: no go.mod above " + wd)
		}
	}
}

// Path returns the path of the named case file, skipping the test when the
// reference cases are not present.
func Path(t testing.TB, name string) string {
	t.Helper()
	d, err := Dir()
	if err != nil {
		t.Skipf("reference cases not found: %v", err)
	}
	p := filepath.Join(d, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("reference case %s not found (set FOLDKIT_REFCASES): %v", name, err)
	}
	return p
}

// Open reads the named case file, skipping the test when it is absent and
// failing it when it cannot be read.
func Open(t testing.TB, name string) *params.Set {
	t.Helper()
	s, err := params.Open(Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Meta is the JSON "meta" record of a case.
type Meta struct {
	Case      string         `json:"case"`
	AF2Prefix string         `json:"af2_prefix"`
	Config    map[string]any `json:"config"`
	Tolerance map[string]any `json:"tolerance"`
	Raw       map[string]any `json:"-"`
}

// ReadMeta decodes the case's meta string (and marks it used).
func ReadMeta(s *params.Set) (Meta, error) {
	str, err := s.String("meta")
	if err != nil {
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		return Meta{}, fmt.Errorf("refcase: meta: %w", err)
	}
	if err := json.Unmarshal([]byte(str), &m.Raw); err != nil {
		return Meta{}, fmt.Errorf("refcase: meta: %w", err)
	}
	return m, nil
}

// Tol returns meta.tolerance[path...] as a number, or def when it is absent.
// For example m.Tol(1e-9, "float64", "abs").
func (m Meta) Tol(def float64, path ...string) float64 {
	var cur any = m.Tolerance
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return def
		}
		cur = mm[p]
	}
	if f, ok := cur.(float64); ok {
		return f
	}
	return def
}

// Errors summarises a comparison.
type Errors struct {
	MaxAbs, MaxRel float64 // largest |got−want| and |got−want|/|want|
	Worst          int     // index of the element closest to violating the bound
	Bad            int     // number of elements outside abs + rel·|want|
}

// Measure compares got with want elementwise under |got−want| ≤ abs + rel·|want|.
// skip, if non-nil, excludes element i when skip(i) is true.
func Measure[T num.Float](got []T, want []float64, abs, rel float64, skip func(int) bool) Errors {
	var e Errors
	worst := -1.0
	for i, w := range want {
		if skip != nil && skip(i) {
			continue
		}
		g := float64(got[i])
		d := math.Abs(g - w)
		if math.IsNaN(g) {
			d = math.Inf(1)
		}
		e.MaxAbs = math.Max(e.MaxAbs, d)
		if w != 0 {
			e.MaxRel = math.Max(e.MaxRel, d/math.Abs(w))
		}
		bound := abs + rel*math.Abs(w)
		if d > bound {
			e.Bad++
		}
		if r := d / bound; r > worst {
			worst, e.Worst = r, i
		}
	}
	return e
}

// Compare fails t unless got and want have the same length and agree
// elementwise to |got−want| ≤ abs + rel·|want|; it logs the errors found.
func Compare[T num.Float](t testing.TB, what string, got []T, want []float64, abs, rel float64) Errors {
	t.Helper()
	return CompareSkip(t, what, got, want, abs, rel, nil)
}

// CompareSkip is Compare with the elements i for which skip(i) is true left out.
func CompareSkip[T num.Float](t testing.TB, what string, got []T, want []float64, abs, rel float64, skip func(int) bool) Errors {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return Errors{Bad: len(want)}
	}
	e := Measure(got, want, abs, rel, skip)
	if e.Bad > 0 {
		t.Errorf("%s: %d of %d values outside abs %.3g + rel %.3g: max abs err %.3g, max rel err %.3g (worst [%d]: got %v want %v)",
			what, e.Bad, len(want), abs, rel, e.MaxAbs, e.MaxRel, e.Worst, got[e.Worst], want[e.Worst])
	} else {
		t.Logf("%s: max abs err %.3g, max rel err %.3g (tolerance abs %.3g rel %.3g)", what, e.MaxAbs, e.MaxRel, abs, rel)
	}
	return e
}

// MaxAbs returns the largest absolute value of x (for tolerances relative to
// the largest entry, as the cases state for parameter gradients).
func MaxAbs(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}
