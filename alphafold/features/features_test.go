package features

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/protein"
)

// refConfig reproduces the reference case's pipeline: every de-duplicated
// sequence is a cluster centre, in file order, and there is no extra MSA.
func refConfig() Config {
	c := DefaultConfig()
	c.Sample = false
	c.MaxMSAClusters = 1 << 20
	return c
}

// TestReferenceFeatures reproduces msa_features_a.npz (README §10): integer
// arrays exactly, float features to 1e-12 absolute (its stated float64
// tolerance; the computations here are the same divisions and atan, so the
// measured error is ~1e-16).
func TestReferenceFeatures(t *testing.T) {
	cs := refcase.Open(t, "msa_features_a.npz")
	text, _ := cs.String("in/a3m_text")
	query, _ := cs.String("in/query_sequence")
	aln, err := protein.ParseA3M(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Build(query, aln, refConfig())
	if err != nil {
		t.Fatal(err)
	}
	l, n := f.L, f.S
	ints := func(key string, got []int, shape ...int) {
		t.Helper()
		want, err := params.Ints(cs, key, shape...)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	floats := func(key string, got []float64, shape ...int) {
		t.Helper()
		want, err := params.Get[float64](cs, key, shape...)
		if err != nil {
			t.Fatal(err)
		}
		refcase.Compare(t, key, got, want, 1e-12, 0)
	}
	ints("out/aatype", f.AAType, l)
	ints("out/residue_index", f.ResidueIndex, l)
	ints("out/msa", f.MSA, n, l)
	floats("out/deletion_matrix", f.DeletionMatrix, n, l)
	floats("out/seq_mask", f.SeqMask, l)
	floats("out/msa_mask", f.MSAMask, n, l)
	floats("out/hhblits_profile", f.HHblitsProfile, l, 22)
	floats("out/cluster_profile", f.ClusterProfile, n, l, 23)
	floats("out/cluster_deletion_mean", f.ClusterDeletionMean, n, l)
	floats("out/target_feat", f.TargetFeat, l, 22)
	floats("out/msa_feat", f.MSAFeat, n, l, 49)
	floats("out/relpos_onehot", RelPos(f.ResidueIndex), l, l, 65)
	if f.Se != 0 {
		t.Errorf("extra MSA has %d rows, want 0", f.Se)
	}
}

// TestHandComputed checks every feature of a three-row alignment against
// values worked out by hand.
func TestHandComputed(t *testing.T) {
	// Query ACD; hit1 "A-D" with 2 insertions before column 1 (deletion 2);
	// hit2 duplicates the query once insertions are removed (dropped);
	// hit3 "BCX" maps B→D (3) and X→20.
	a3m := ">q\nACD\n>hit1\nAkk-D\n>hit2\nAcCD\n>hit3\nBCX\n"
	aln, err := protein.ParseA3M(strings.NewReader(a3m))
	if err != nil {
		t.Fatal(err)
	}
	cfg := refConfig()
	cfg.MaxMSAClusters = 2 // q and hit1 are centres; hit3 is extra
	f, err := Build("ACD", aln, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 4, 3}; !slices.Equal(f.AAType, want) {
		t.Errorf("aatype = %v, want %v", f.AAType, want)
	}
	if want := []int{0, 4, 3, 0, Gap, 3}; !slices.Equal(f.MSA, want) {
		t.Errorf("msa = %v, want %v", f.MSA, want)
	}
	if want := []float64{0, 0, 0, 0, 2, 0}; !slices.Equal(f.DeletionMatrix, want) {
		t.Errorf("deletion_matrix = %v, want %v", f.DeletionMatrix, want)
	}
	if want := []int{3, 4, 20}; !slices.Equal(f.ExtraMSA, want) {
		t.Errorf("extra_msa = %v, want %v", f.ExtraMSA, want)
	}
	// hit3 (D C X) agrees with q (A C D) at 1 column (C) and with hit1
	// (A - D) at none: it joins cluster 0. Cluster 0's profile at column 0
	// is (A + D)/(2 + 1e-6); column 2 is (D + X)/(2+1e-6).
	den := 2 + 1e-6
	cp := func(row, col, class int) float64 { return f.ClusterProfile[(row*3+col)*23+class] }
	checks := []struct {
		name      string
		got, want float64
	}{
		{"profile q col0 A", cp(0, 0, 0), 1 / den},
		{"profile q col0 D", cp(0, 0, 3), 1 / den},
		{"profile q col2 X", cp(0, 2, 20), 1 / den},
		{"profile hit1 col1 gap", cp(1, 1, Gap), 1 / (1 + 1e-6)},
		{"deletion mean hit1 col1", f.ClusterDeletionMean[4], 2 / (1 + 1e-6)},
		{"msa_feat has_deletion", f.MSAFeat[4*49+23], 1},
		{"msa_feat deletion_value", f.MSAFeat[4*49+24], 2 / math.Pi * math.Atan(2.0/3)},
		{"hhblits profile col1 gap", f.HHblitsProfile[1*22+Gap], 1.0 / 3},
		{"hhblits profile col0 D (from B)", f.HHblitsProfile[0*22+3], 1.0 / 3},
		{"target_feat D at col2", f.TargetFeat[2*22+1+3], 1},
	}
	for _, c := range checks {
		// Exact arithmetic on small integers and one division: 1e-15 is a few ulp.
		if math.Abs(c.got-c.want) > 1e-15 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestSamplingDeterministic(t *testing.T) {
	var b strings.Builder
	b.WriteString(">q\nACDEFGHIK\n")
	letters := "ACDEFGHIKLMNPQRSTVWY"
	for i := 0; i < 30; i++ {
		b.WriteString(">h\n")
		for j := 0; j < 9; j++ {
			b.WriteByte(letters[(i*7+j*3)%20])
		}
		b.WriteByte('\n')
	}
	aln, _ := protein.ParseA3M(strings.NewReader(b.String()))
	cfg := DefaultConfig()
	cfg.MaxMSAClusters, cfg.MaxExtraMSA, cfg.Seed = 8, 10, 42
	f1, err := Build("ACDEFGHIK", aln, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := Build("ACDEFGHIK", aln, cfg)
	if !slices.Equal(f1.MSA, f2.MSA) || !slices.Equal(f1.ExtraMSA, f2.ExtraMSA) {
		t.Error("same seed gave different samples")
	}
	if f1.S != 8 || f1.Se != 10 || !slices.Equal(f1.MSA[:9], f1.TrueMSA[:9]) || f1.MSA[0] != 0 {
		t.Errorf("S=%d Se=%d, query row %v", f1.S, f1.Se, f1.MSA[:9])
	}
	cfg.Seed = 43
	f3, _ := Build("ACDEFGHIK", aln, cfg)
	if slices.Equal(f1.MSA, f3.MSA) {
		t.Error("different seeds gave the same sample")
	}
	// Masked MSA: about 15% of positions chosen; bert_mask marks them.
	cfg.MaskedMSA = true
	fm, _ := Build("ACDEFGHIK", aln, cfg)
	chosen := 0.0
	for _, m := range fm.BertMask {
		chosen += m
	}
	frac := chosen / float64(len(fm.BertMask))
	// 72 positions, p = 0.15: the standard deviation is 0.042; 4σ bounds.
	if frac < 0.15-0.17 || frac > 0.15+0.17 {
		t.Errorf("masked fraction %v far from 0.15", frac)
	}
}

func TestBadInput(t *testing.T) {
	aln, _ := protein.ParseA3M(strings.NewReader(">q\nACD\n"))
	for _, tc := range []struct {
		name string
		seq  string
		aln  *protein.Alignment
		cfg  Config
	}{
		{"lower-case query", "acd", nil, DefaultConfig()},
		{"empty query", "", nil, DefaultConfig()},
		{"alignment of another query", "ACE", aln, DefaultConfig()},
		{"no clusters", "ACD", nil, Config{MaxMSAClusters: 0}},
	} {
		if _, err := Build(tc.seq, tc.aln, tc.cfg); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", tc.name, err)
		}
	}
	// Single-sequence mode works.
	f, err := Build("MKV", nil, DefaultConfig())
	if err != nil || f.S != 1 || f.Se != 0 {
		t.Errorf("single sequence: %v, S=%d", err, f.S)
	}
}
