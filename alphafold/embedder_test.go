package alphafold

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/internal/num"
)

// TestInputEmbedderNaive compares the embedder with a direct evaluation of
// Algorithms 3–5 on explicit one-hot tensors: the [N, N, 65] relative
// position one-hot of features.RelPos times pair_activiations, and the
// 25-channel extra-MSA feature times extra_msa_activations. float64 sums
// of at most 65 products in another order: 1e-12.
func TestInputEmbedderNaive(t *testing.T) {
	cfg := EmbedderConfig{TargetFeatChannels: 22, MSAFeatChannels: 49, MSAClasses: 23,
		MSAChannels: 6, ExtraMSAChannels: 5, PairChannels: 4, MaxRelativeFeature: 32}
	rng := rand.New(rand.NewPCG(1, 2))
	p, err := NewInputEmbedderParams[float64](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*[]float64{&p.Preprocess1D.B, &p.PreprocessMSA.B, &p.LeftSingle.B, &p.RightSingle.B, &p.PairActiviations.B, &p.ExtraMSAActivations.B} {
		for i := range *l {
			(*l)[i] = rng.NormFloat64()
		}
	}
	const n, s, se = 7, 3, 4
	ri := []int{0, 1, 2, 40, 41, 42, 90}
	normals := func(k int) []float64 {
		x := make([]float64, k)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		return x
	}
	tf, mf := normals(n*22), normals(s*n*49)
	ex := make([]int, se*n)
	for i := range ex {
		ex[i] = rng.IntN(23)
	}
	hd, dv := normals(se*n), normals(se*n)
	naive := func(x []float64, rows, in, out int, w, b []float64) []float64 {
		y := make([]float64, rows*out)
		for r := range rows {
			for o := range out {
				v := b[o]
				for k := range in {
					v += x[r*in+k] * w[k*out+o]
				}
				y[r*out+o] = v
			}
		}
		return y
	}
	check := func(what string, got, want []float64) {
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-12 {
				t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
			}
		}
	}

	msa := make([]float64, s*n*cfg.MSAChannels)
	if err := p.EmbedMSA(tf, mf, s, n, msa); err != nil {
		t.Fatal(err)
	}
	oneD := naive(tf, n, 22, cfg.MSAChannels, p.Preprocess1D.W, p.Preprocess1D.B)
	want := naive(mf, s*n, 49, cfg.MSAChannels, p.PreprocessMSA.W, p.PreprocessMSA.B)
	for i := range want {
		want[i] += oneD[i%(n*cfg.MSAChannels)]
	}
	check("msa", msa, want)

	cz := cfg.PairChannels
	pair := normals(n * n * cz) // AddPairEmbedding adds to what is there
	base := append([]float64(nil), pair...)
	if err := p.AddPairEmbedding(tf, ri, n, pair); err != nil {
		t.Fatal(err)
	}
	left := naive(tf, n, 22, cz, p.LeftSingle.W, p.LeftSingle.B)
	right := naive(tf, n, 22, cz, p.RightSingle.W, p.RightSingle.B)
	rel := naive(features.RelPos(ri), n*n, features.RelPosBins, cz, p.PairActiviations.W, p.PairActiviations.B)
	want = make([]float64, n*n*cz)
	for i := range n {
		for j := range n {
			for c := range cz {
				k := (i*n+j)*cz + c
				want[k] = base[k] + left[i*cz+c] + right[j*cz+c] + rel[k]
			}
		}
	}
	check("pair", pair, want)

	feat := make([]float64, se*n*25)
	for r := range se * n {
		feat[r*25+ex[r]] = 1
		feat[r*25+23], feat[r*25+24] = hd[r], dv[r]
	}
	extra := make([]float64, se*n*cfg.ExtraMSAChannels)
	if err := p.EmbedExtraMSA(ex, hd, dv, se, n, extra); err != nil {
		t.Fatal(err)
	}
	check("extra msa", extra, naive(feat, se*n, 25, cfg.ExtraMSAChannels, p.ExtraMSAActivations.W, p.ExtraMSAActivations.B))

	// Bad inputs.
	if err := p.EmbedMSA(tf, mf[1:], s, n, msa); !errors.Is(err, num.ErrShape) {
		t.Errorf("short msa_feat: %v", err)
	}
	mf[3] = math.NaN()
	if err := p.EmbedMSA(tf, mf, s, n, msa); !errors.Is(err, num.ErrNaN) {
		t.Errorf("NaN msa_feat: %v", err)
	}
	if err := p.AddPairEmbedding(tf, ri[1:], n, pair); !errors.Is(err, num.ErrShape) {
		t.Errorf("short residue_index: %v", err)
	}
	ex[2] = 23
	if err := p.EmbedExtraMSA(ex, hd, dv, se, n, extra); !errors.Is(err, num.ErrShape) {
		t.Errorf("token 23: %v", err)
	}
	if _, err := NewInputEmbedderParams[float32](EmbedderConfig{}, rng); !errors.Is(err, ErrConfig) {
		t.Errorf("zero config: %v", err)
	}
}
