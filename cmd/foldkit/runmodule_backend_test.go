package main

import (
	"bytes"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// TestRunModuleBackend runs every reference case whose modules have a
// backend path with the forward pass on a backend, in float64 and float32,
// and compares the outputs with the case's with its own tolerances
// (refcases README §5): in float64 abs 1e-9 + rel 1e-7 (the looser abs of
// positions whose mask is 0, where the case gives one), in float32 the
// meta's float32 bounds (abs 1e-4 + rel 1e-3 by default). In foldkit_cuda
// and foldkit_cudaemu builds the backend is cuda (run-module -backend
// cuda); in the default build it is backend.CPUPair(), which checks the
// plumbing (the modules dispatch to their CPU code).
func TestRunModuleBackend(t *testing.T) {
	dir, err := refcase.Dir()
	if err != nil {
		t.Skip(err)
	}
	ran := 0
	for _, kind := range backendCases() {
		f := filepath.Join(dir, kind+".npz")
		cs, err := params.Open(f)
		if err != nil {
			t.Logf("%s: %v", kind, err)
			continue
		}
		meta, err := refcase.ReadMeta(cs)
		if err != nil {
			t.Fatal(err)
		}
		for _, dtype := range []string{"float64", "float32"} {
			ran++
			t.Run(kind+"/"+dtype, func(t *testing.T) {
				var res *params.Set
				if name := testBackend; name != "" {
					out := filepath.Join(t.TempDir(), "out.npz")
					var stdout bytes.Buffer
					if code := run([]string{"run-module", "-backend", name, "-dtype", dtype, f, out}, &stdout, &stdout); code != 0 {
						t.Fatalf("run-module exited %d: %s", code, stdout.String())
					}
					if res, err = params.Open(out); err != nil {
						t.Fatal(err)
					}
				} else {
					cs, err := params.Open(f)
					if err != nil {
						t.Fatal(err)
					}
					if res, _, err = runCase(cs, dtype, false, backend.CPUPair()); err != nil {
						t.Fatal(err)
					}
				}
				abs := math.Max(meta.Tol(1e-9, dtype, "abs"), meta.Tol(0, dtype+"_positions_with_mask_0", "abs"))
				rel := meta.Tol(1e-7, dtype, "rel")
				if dtype == "float32" {
					abs = math.Max(abs, meta.Tol(1e-4, "float32", "abs"))
					rel = math.Max(rel, meta.Tol(1e-3, "float32", "rel"))
				}
				outs := 0
				for _, k := range cs.Keys() {
					if !strings.HasPrefix(k, "out/") {
						continue
					}
					want, _ := params.Get[float64](cs, k)
					got, err := params.Get[float64](res, k)
					if err != nil {
						t.Errorf("%s: %v", k, err)
						continue
					}
					outs++
					if e := refcase.Measure(got, want, abs, rel, nil); e.Bad > 0 {
						t.Errorf("%s: %d values outside abs %.2g rel %.2g (max abs err %.3g)", k, e.Bad, abs, rel, e.MaxAbs)
					} else {
						t.Logf("%s: max abs err %.3g", k, e.MaxAbs)
					}
				}
				if outs == 0 {
					t.Error("the case has no outputs")
				}
			})
		}
	}
	if ran == 0 {
		t.Skip("no reference cases with a backend path")
	}
}

// TestRunModuleBackendErrors checks that gradients on a backend and cases
// without a backend path are refused with clear errors.
func TestRunModuleBackendErrors(t *testing.T) {
	dir, err := refcase.Dir()
	if err != nil {
		t.Skip(err)
	}
	open := func(name string) *params.Set {
		cs, err := params.Open(filepath.Join(dir, name))
		if err != nil {
			t.Skip(err)
		}
		return cs
	}
	if _, _, err := runCase(open("tri_att_starting.npz"), "float64", true, backend.CPUPair()); !errors.Is(err, casekit.ErrGradBackend) {
		t.Errorf("gradients on a backend: error %v, want casekit.ErrGradBackend", err)
	}
	if _, _, err := runCase(open("structure_module.npz"), "float64", false, backend.CPUPair()); err == nil || !strings.Contains(err.Error(), "no backend path") {
		t.Errorf("structure_module on a backend: error %v, want one saying it has no backend path", err)
	}
	if testBackend == "" {
		var out bytes.Buffer
		if code := run([]string{"run-module", "-backend", "cuda", "a.npz", "b.npz"}, &out, &out); code == 0 || !strings.Contains(out.String(), "no CUDA backend") {
			t.Errorf("-backend cuda in the default build: exit %d, output %q", code, out.String())
		}
	}
}
