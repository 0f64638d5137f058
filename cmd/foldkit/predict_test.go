package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/foldkit/foldkit/internal/gemmitest"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/params"
)

// writeDemoParams writes the built-in parameter file as
// params_model_1_ptm.npz in dir and returns its path.
func writeDemoParams(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := demoModelConfig()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := demoBuiltinParams(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "params_model_1_ptm.npz")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPredict runs `foldkit predict` end to end on the built-in parameters
// and alignment and checks every output it promises.
func TestPredict(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole model")
	}
	dir := t.TempDir()
	pfile := writeDemoParams(t, dir)
	fasta := filepath.Join(dir, "query.fasta")
	a3m := filepath.Join(dir, "query.a3m")
	seq := strings.Split(demoA3M, "\n")[2]
	os.WriteFile(fasta, []byte(">query\n"+seq+"\n"), 0o644)
	os.WriteFile(a3m, []byte(demoA3M), 0o644)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := run([]string{"predict", "-params", pfile, "-msa", a3m, "-recycles", "1", "-out", out, fasta}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("predict exited %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "recycle 2/2 [####################]") {
		t.Errorf("no progress bar in:\n%s", stderr.String())
	}
	for _, f := range []string{"query.pdb", "query.cif", "query_scores.json", "query_plddt.png", "query_pae.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	var sc scores
	b, _ := os.ReadFile(filepath.Join(out, "query_scores.json"))
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	n := len(seq)
	if len(sc.PLDDT) != n || len(sc.PAE) != n || sc.PTM == nil || sc.Recycles != 1 || sc.TimingsS["total"] <= 0 {
		t.Errorf("scores: %d pLDDT, %d PAE rows, pTM %v, recycles %d, timings %v", len(sc.PLDDT), len(sc.PAE), sc.PTM, sc.Recycles, sc.TimingsS)
	}
	for _, p := range sc.PLDDT {
		if p < 0 || p > 100 {
			t.Errorf("pLDDT %v outside [0, 100]", p)
		}
	}
	f, _ := os.Open(filepath.Join(out, "query_pae.png"))
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("PAE plot: %v", err)
	}
	// gemmi, a real parser, reads both structure files: one model, one
	// chain, every residue, pLDDT in the B factors.
	py := gemmitest.Python(t)
	for _, f := range []string{"query.pdb", "query.cif"} {
		got, err := exec.Command(py, "-c", gemmiSummary, filepath.Join(out, f)).CombinedOutput()
		if err != nil {
			t.Fatalf("gemmi on %s: %v\n%s", f, err, got)
		}
		var models, chains, residues int
		var bmin, bmax float64
		if _, err := fmt.Sscan(string(got), &models, &chains, &residues, &bmin, &bmax); err != nil {
			t.Fatalf("gemmi on %s printed %q: %v", f, got, err)
		}
		lo, hi := minMax(sc.PLDDT)
		// B factors are written with two decimals.
		if models != 1 || chains != 1 || residues != n || math.Abs(bmin-lo) > 0.006 || math.Abs(bmax-hi) > 0.006 {
			t.Errorf("gemmi read %s as %d models, %d chains, %d residues, B %v..%v; want 1, 1, %d, pLDDT %v..%v",
				f, models, chains, residues, bmin, bmax, n, lo, hi)
		}
	}
	pdb, _ := os.ReadFile(filepath.Join(out, "query.pdb"))
	if !strings.Contains(string(pdb), "TER") || !strings.HasSuffix(strings.TrimSpace(string(pdb)), "END") {
		t.Errorf("PDB lacks TER/END")
	}
}

// gemmiSummary prints the model, chain and residue counts and the B-factor
// range of a structure file as gemmi reads it.
const gemmiSummary = `
import sys, gemmi
st = gemmi.read_structure(sys.argv[1])
bs = [a.b_iso for ch in st[0] for r in ch for a in r]
print(len(st), len(st[0]), sum(len(ch) for ch in st[0]), min(bs), max(bs))
`

func minMax(x []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range x {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

func TestPredictErrors(t *testing.T) {
	dir := t.TempDir()
	fasta := filepath.Join(dir, "two.fasta")
	os.WriteFile(fasta, []byte(">a\nMKV\n>b\nGGA\n"), 0o644)
	one := filepath.Join(dir, "one.fasta")
	os.WriteFile(one, []byte(">a\nMKVLA\n"), 0o644)
	// The built-in parameter file with one array left out is refused, and
	// the error names that array.
	full, err := params.Open(writeDemoParams(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	const dropped = "alphafold/alphafold_iteration/evoformer/preprocess_msa//weights"
	broken := params.New()
	for _, k := range full.Keys() {
		if k != dropped {
			a, _ := full.Array(k)
			broken.PutArray(k, a)
		}
	}
	bpath := filepath.Join(dir, "broken.npz")
	if err := broken.Write(bpath); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"predict", one}, "-params is required"},
		{[]string{"predict", "-params", bpath, fasta}, "2 sequences"},
		{[]string{"predict", "-params", bpath, "-recycles", "-1", one}, "-recycles"},
		{[]string{"predict", "-params", bpath, one}, "1 missing: " + dropped},
		{[]string{"predict", "-params", filepath.Join(dir, "absent.npz"), one}, "no such file"},
		{[]string{"predict", "-params", writeDemoParams(t, dir), "-backend", "tpu", "-quiet", "-out", dir, one}, "unknown backend"},
	} {
		var out bytes.Buffer
		if code := run(tc.args, &out, &out); code == 0 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want failure mentioning %q", tc.args, code, out.String(), tc.want)
		}
	}
}
