package main

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// TestRunModuleAllCases runs every reference case whose kind is registered
// through the CLI in float64 (and with -grad where the case has gradients)
// and compares each output the case stores with the tolerance of its meta.
// Masked positions get the case's looser float64 tolerance for rows whose keys
// are all masked (README §3); the modules' own tests check those exactly.
func TestRunModuleAllCases(t *testing.T) {
	dir, err := refcase.Dir()
	if err != nil {
		t.Skip(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.npz"))
	if len(files) == 0 {
		t.Skip("no reference cases")
	}
	ran := 0
	for _, f := range files {
		cs, err := params.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		meta, err := refcase.ReadMeta(cs)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := findRunner(meta.Case); !ok {
			t.Logf("%s: case %q has no runner yet", filepath.Base(f), meta.Case)
			continue
		}
		if testing.Short() && meta.Case == "full_model" {
			continue
		}
		ran++
		t.Run(meta.Case, func(t *testing.T) {
			grad := false
			for _, k := range cs.Keys() {
				if strings.HasPrefix(k, "grad/") {
					grad = true
				}
			}
			out := filepath.Join(t.TempDir(), "out.npz")
			var stdout bytes.Buffer
			args := []string{"run-module", "-dtype", "float64"}
			if grad {
				args = append(args, "-grad")
			}
			if code := run(append(args, f, out), &stdout, &stdout); code != 0 {
				t.Fatalf("run-module exited %d: %s", code, stdout.String())
			}
			res, err := params.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			abs := math.Max(meta.Tol(1e-9, "float64", "abs"), meta.Tol(0, "float64_positions_with_mask_0", "abs"))
			rel := meta.Tol(1e-7, "float64", "rel")
			for _, k := range cs.Keys() {
				if !(strings.HasPrefix(k, "out/") || strings.HasPrefix(k, "grad/")) {
					continue
				}
				a, _ := cs.Array(k)
				if a.DType() != params.Float64 && a.DType() != params.Float32 {
					continue
				}
				if !res.Has(k) {
					t.Errorf("result lacks %s", k)
					continue
				}
				want, _ := params.Get[float64](cs, k)
				got, err := params.Get[float64](res, k, a.Shape...)
				if err != nil {
					t.Errorf("%s: %v", k, err)
					continue
				}
				tabs, trel := abs, rel
				if strings.HasPrefix(k, "grad/params/") {
					// Stored rounded to float32: 1e-6 of the largest entry (README §5).
					// Gradients that are mathematically zero (per-head constant logit
					// biases, README §5) hold float64 round-off of ~1e-15 on either side,
					// so the bound has a floor of 1e-10.
					tabs, trel = math.Max(1e-6*refcase.MaxAbs(want), 1e-10), 0
				} else if strings.HasPrefix(k, "grad/") {
					tabs, trel = math.Max(meta.Tol(1e-8, "grad", "grad/in (float64)", "abs"), abs), 1e-6
				}
				e := refcase.Measure(got, want, tabs, trel, nil)
				if e.Bad > 0 {
					t.Errorf("%s: %d values outside abs %.2g rel %.2g (max abs err %.3g)", k, e.Bad, tabs, trel, e.MaxAbs)
				}
			}
		})
	}
	t.Logf("ran %d of %d cases through run-module", ran, len(files))
}

func TestRunModuleErrors(t *testing.T) {
	var out bytes.Buffer
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run-module", "only-one.npz"}, "want CASE.npz RESULT.npz"},
		{[]string{"run-module", "-dtype", "float16", "a", "b"}, "float16"},
		{[]string{"run-module", "/nonexistent.npz", "x.npz"}, "no such file"},
		{[]string{"bench", "-module", "nope"}, "unknown module"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		out.Reset()
		if code := run(tc.args, &out, &out); code == 0 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want failure mentioning %q", tc.args, code, out.String(), tc.want)
		}
	}
}

func TestBenchSgemm(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"bench", "-module", "sgemm", "-n", "64", "-repeats", "2"}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, field := range []string{`"module":"sgemm"`, `"median_ms"`, `"gflops"`, `"peak_heap_bytes"`, `"blas"`} {
		if !strings.Contains(out.String(), field) {
			t.Errorf("bench output %q lacks %s", out.String(), field)
		}
	}
}

// TestDemo runs the demo as a user would and checks that every step passed.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"demo"}, &out, &out); code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out.String())
	}
	if strings.Contains(out.String(), "FAILED") || !strings.Contains(out.String(), "released parameters") {
		t.Errorf("demo output:\n%s", out.String())
	}
}
