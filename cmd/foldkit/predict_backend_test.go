package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPredictBackend runs `predict` on the built-in data with the
// Evoformer stacks on the build's backend (-backend cuda in foldkit_cuda
// and foldkit_cudaemu builds) and compares the per-residue pLDDT with the
// CPU run. Two recycling passes of the reduced demo model in float32
// amplify the stacks' round-off (≤ 1e-6 relative, see the backend tests):
// measured 3.8e-6 pLDDT points on the emulated CUDA backend; the bound,
// 0.011, is the resolution a user reads (pLDDT is printed with two
// decimals in the PDB B factors). In the default build it checks that
// -backend cuda is refused with a clear message.
func TestPredictBackend(t *testing.T) {
	dir := t.TempDir()
	pfile := writeDemoParams(t, dir)
	fasta, a3m := filepath.Join(dir, "query.fasta"), filepath.Join(dir, "query.a3m")
	seq := strings.Split(demoA3M, "\n")[2]
	os.WriteFile(fasta, []byte(">query\n"+seq+"\n"), 0o644)
	os.WriteFile(a3m, []byte(demoA3M), 0o644)
	predict := func(backendName string) scores {
		t.Helper()
		out := filepath.Join(dir, backendName)
		var stdout, stderr bytes.Buffer
		args := []string{"predict", "-params", pfile, "-msa", a3m, "-recycles", "1", "-quiet", "-out", out, "-backend", backendName, fasta}
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("predict -backend %s exited %d:\n%s\n%s", backendName, code, stdout.String(), stderr.String())
		}
		var sc scores
		b, err := os.ReadFile(filepath.Join(out, "query_scores.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &sc); err != nil {
			t.Fatal(err)
		}
		return sc
	}
	if testBackend == "" {
		var out bytes.Buffer
		code := run([]string{"predict", "-params", pfile, "-backend", "cuda", "-quiet", "-out", dir, fasta}, &out, &out)
		if code == 0 || !strings.Contains(out.String(), "no CUDA backend") {
			t.Errorf("predict -backend cuda in the default build: exit %d, output %q", code, out.String())
		}
		return
	}
	want, got := predict("cpu"), predict(testBackend)
	if len(got.PLDDT) != len(want.PLDDT) {
		t.Fatalf("%d pLDDT values, want %d", len(got.PLDDT), len(want.PLDDT))
	}
	worst := 0.0
	for i := range want.PLDDT {
		worst = math.Max(worst, math.Abs(got.PLDDT[i]-want.PLDDT[i]))
	}
	t.Logf("pLDDT: max |Δ| = %.3g between -backend %s and cpu", worst, testBackend)
	if worst > 0.011 {
		t.Errorf("pLDDT differs by %.3g between -backend %s and cpu, want ≤ 0.011 (two decimals)", worst, testBackend)
	}
}
