package alphafold

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/ipa"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/protein"
	"github.com/foldkit/foldkit/residue"
)

// TestFullModelCase reproduces full_model.npz (2 Evoformer blocks, 1
// extra-MSA block at AF2's widths, parameters under the full names of a
// released file, loaded by LoadModel) through RunModelCase: every output
// after one pass (out_recycle1/) and after two (out/), in float64 and
// float32, within the case's tolerances: float64 1e-6 + 1e-6·|ref| (a deep
// composition of ~40 modules and 16 structure-module iterations; the
// reference implementations agree to 5e-14) and float32 1e-3 + 1e-2·|ref|
// (ten times the measured float32 error of the reference, meta
// f32_vs_f64_maxabs).
//
// The masked-MSA logits of the sequence whose mask is 0 are compared only
// in float64: their row attention has every key masked, so the logits are
// −1e9 + x, and in float32 the −1e9 swallows x (README §3); AF2 itself
// gives the uniform average there in float32.
func TestFullModelCase(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			cs := refcase.Open(t, "full_model.npz")
			meta, err := refcase.ReadMeta(cs)
			if err != nil {
				t.Fatal(err)
			}
			abs, rel := meta.Tol(0, dtype, "abs"), meta.Tol(0, dtype, "rel")
			if abs == 0 || rel == 0 {
				t.Fatal("tolerance missing from meta")
			}
			res, err := RunModelCase(cs, dtype, false)
			if err != nil {
				t.Fatal(err)
			}
			msaMask, err := params.Get[float64](cs, "in/msa_mask")
			if err != nil {
				t.Fatal(err)
			}
			compared := 0
			for _, k := range cs.Keys() {
				if !strings.HasPrefix(k, "out/") && !strings.HasPrefix(k, "out_recycle1/") {
					continue
				}
				want, err := params.Get[float64](cs, k)
				if err != nil {
					t.Fatal(err)
				}
				got, err := params.Get[float64](res, k)
				if err != nil {
					t.Fatalf("result lacks %s: %v", k, err)
				}
				var skip func(int) bool
				if dtype == "float32" && strings.HasSuffix(k, "masked_msa_logits") {
					skip = func(i int) bool { return msaMask[i/23] == 0 }
				}
				refcase.CompareSkip(t, k, got, want, abs, rel, skip)
				compared++
			}
			if compared < 18 {
				t.Errorf("compared %d outputs, want every out/ and out_recycle1/ key", compared)
			}
		})
	}
}

// mdlTinyConfig is a model with AF2's structure and reduced widths (c_m 16,
// c_e 8, c_z 8, c_s 24), 2 Evoformer and 1 extra-MSA block, 3
// structure-module iterations and 3 passes, small enough for property
// tests.
func mdlTinyConfig() Config {
	cfg := DefaultConfig()
	cfg.Name = "tiny"
	cfg.Embedder.MSAChannels, cfg.Embedder.ExtraMSAChannels, cfg.Embedder.PairChannels = 16, 8, 8
	cfg.Evoformer = EvoformerConfig{MSAChannels: 16, PairChannels: 8, MSAHeads: 2, MSAHeadChannels: 4,
		PairHeads: 2, PairHeadChannels: 4, TriMulChannels: 8, OuterChannels: 4, TransitionFactor: 2}
	cfg.ExtraMSA = cfg.Evoformer
	cfg.ExtraMSA.MSAChannels, cfg.ExtraMSA.GlobalColumn = 8, true
	cfg.EvoformerBlocks, cfg.ExtraMSABlocks = 2, 1
	cfg.Recycle.CM, cfg.Recycle.CZ = 16, 8
	cfg.StructureModule.IPA = ipa.Config{CS: 24, CZ: 8, Heads: 2, Channels: 4, QueryPoints: 2, ValuePoints: 2, Eps: 1e-8, Inf: 1e5}
	cfg.StructureModule.Layers, cfg.StructureModule.ResnetChannels = 3, 8
	cfg.Heads.CS, cfg.Heads.CZ, cfg.Heads.CM, cfg.Heads.PLDDTChannels = 24, 8, 16, 8
	cfg.Iterations = 3
	return cfg
}

// mdlRandomSet returns the parameter file of a model for cfg with every
// array random and non-degenerate, as the reference cases draw them
// (weights ~ N(0, 1/fan_in) with fan_in the second-to-last axis, biases and
// offsets ~ N(0, 0.1²), scales ~ 1 + N(0, 0.2²)), written by Model.Save.
func mdlRandomSet(t testing.TB, cfg Config, seed uint64) *params.Set {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	m, err := NewModel[float32](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	s := params.New()
	if err := m.Save(s); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.Keys() {
		shape, _ := s.Shape(k)
		x, err := params.Get[float32](s, k)
		if err != nil {
			t.Fatal(err)
		}
		sd, mean := 0.1, 0.0
		switch {
		case strings.HasSuffix(k, "//scale"):
			sd, mean = 0.2, 1
		case strings.HasSuffix(k, "trainable_point_weights"):
			sd, mean = 0.3, 0.5
		case len(shape) >= 2 && !strings.HasSuffix(k, "gating_b"):
			sd = 1 / math.Sqrt(float64(shape[len(shape)-2]))
		}
		if strings.Contains(k, "affine_update") {
			sd *= 0.1
		}
		for i := range x {
			x[i] = float32(mean + sd*rng.NormFloat64())
		}
		if err := params.Put(s, k, shape, x); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// mdlRandomModel loads mdlRandomSet through LoadModel.
func mdlRandomModel[T num.Float](t testing.TB, cfg Config, seed uint64) *Model[T] {
	t.Helper()
	m, _, err := LoadModel[T](mdlRandomSet(t, cfg, seed), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mdlFeatures builds features with features.Build for a random query of
// n residues and an alignment of rows mutated copies (some with gaps and
// deletions), s cluster centres and the rest as the extra MSA.
func mdlFeatures(t testing.TB, n, rows, s int, seed uint64) *features.Features {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	q := make([]byte, n)
	for i := range q {
		q[i] = residue.Restypes[rng.IntN(20)]
	}
	aln := &protein.Alignment{}
	for r := range rows {
		row := append([]byte(nil), q...)
		del := make([]int, n)
		if r > 0 {
			for i := range row {
				switch u := rng.Float64(); {
				case u < 0.3:
					row[i] = residue.Restypes[rng.IntN(20)]
				case u < 0.4:
					row[i] = '-'
				case u < 0.45:
					del[i] = 1 + rng.IntN(5)
				}
			}
		}
		aln.Descriptions = append(aln.Descriptions, fmt.Sprintf("seq%d", r))
		aln.Sequences = append(aln.Sequences, string(row))
		aln.Deletions = append(aln.Deletions, del)
	}
	cfg := features.DefaultConfig()
	cfg.MaxMSAClusters, cfg.MaxExtraMSA, cfg.Sample = s, rows, false
	f, err := features.Build(string(q), aln, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// mdlMaxDiff returns max |a−b| and fails if the lengths differ.
func mdlMaxDiff[T num.Float](t testing.TB, what string, a, b []T) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: lengths %d and %d", what, len(a), len(b))
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		if math.IsNaN(float64(a[i])) || math.IsNaN(float64(b[i])) {
			return math.Inf(1)
		}
	}
	return d
}

// mdlPermuteRows returns a copy of f with MSA rows 1..S−1 reordered: row
// perm[k] of the copy is row k of f.
func mdlPermuteRows(f *features.Features, perm []int) *features.Features {
	g := *f
	l := f.L
	pf := func(x []float64, w int) []float64 {
		y := make([]float64, len(x))
		for k, p := range perm {
			copy(y[p*l*w:(p+1)*l*w], x[k*l*w:(k+1)*l*w])
		}
		return y
	}
	g.MSAFeat = pf(f.MSAFeat, features.MSAFeatChannels)
	g.MSAMask = pf(f.MSAMask, 1)
	g.DeletionMatrix = pf(f.DeletionMatrix, 1)
	g.ClusterProfile = pf(f.ClusterProfile, features.NumMSAClasses)
	return &g
}

// TestPredictMSAPermutation checks that reordering MSA rows 1..S−1 changes
// the prediction only by round-off (the MSA is a set apart from the query
// row; column attention and the outer product mean sum over it), and that
// the masked-MSA logits follow the rows. A change of one row's content, by
// contrast, must move the structure, so the comparison can fail. The
// tolerances allow round-off from the summation order amplified through two
// passes of the model: 1e-9 in float64 (~1e7 ulp) and 1e-3 in float32.
func TestPredictMSAPermutation(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testPredictMSAPermutation[float64](t, 1e-9) })
	t.Run("float32", func(t *testing.T) { testPredictMSAPermutation[float32](t, 1e-3) })
}

func testPredictMSAPermutation[T num.Float](t *testing.T, tol float64) {
	cfg := mdlTinyConfig()
	m := mdlRandomModel[T](t, cfg, 1)
	f := mdlFeatures(t, 14, 20, 6, 2)
	f.MSAMask[(f.S-1)*f.L+3] = 0 // a hole, so that masks travel with the rows
	perm := []int{0, 3, 5, 1, 4, 2}
	g := mdlPermuteRows(f, perm)
	opt := PredictOptions{Iterations: 2}
	a, err := m.Predict(context.Background(), f, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Predict(context.Background(), g, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		x, y []T
	}{
		{"final_atom_positions", a.FinalAtomPositions, b.FinalAtomPositions},
		{"plddt", a.PLDDT, b.PLDDT},
		{"distogram_logits", a.DistogramLogits, b.DistogramLogits},
		{"pair", a.Pair, b.Pair},
		{"single", a.Single, b.Single},
		{"experimentally_resolved_logits", a.ExperimentallyResolvedLogits, b.ExperimentallyResolvedLogits},
	} {
		d := mdlMaxDiff(t, c.what, c.x, c.y)
		t.Logf("%s: max |Δ| %.3g", c.what, d)
		if d > tol {
			t.Errorf("%s changes by %.3g under an MSA row permutation, want ≤ %g", c.what, d, tol)
		}
	}
	w := len(a.MaskedMSALogits) / f.S
	for k, p := range perm {
		d := mdlMaxDiff(t, "masked_msa_logits", a.MaskedMSALogits[k*w:(k+1)*w], b.MaskedMSALogits[p*w:(p+1)*w])
		if d > tol {
			t.Errorf("masked_msa_logits row %d (now %d) differs by %.3g, want ≤ %g", k, p, d, tol)
		}
	}
	// Changing a row's content is not a permutation: the structure moves.
	h := mdlPermuteRows(f, []int{0, 1, 2, 3, 4, 5})
	for j := range h.L {
		o := (1*h.L + j) * features.MSAFeatChannels
		clear(h.MSAFeat[o : o+features.NumMSAClasses])
		h.MSAFeat[o+features.Gap] = 1
	}
	c, err := m.Predict(context.Background(), h, opt)
	if err != nil {
		t.Fatal(err)
	}
	if d := mdlMaxDiff(t, "positions", a.FinalAtomPositions, c.FinalAtomPositions); d < 100*tol {
		t.Errorf("replacing MSA row 1 by gaps moves the atoms by only %.3g Å; the permutation check would be empty", d)
	}
}

// TestPredictProgressAndEarlyStop checks the recycling loop as Predict
// drives it: one progress report per pass with the pass index, NaN change
// after the first pass and Last on the final one; an early stop with a
// tolerance (a huge one converges at the second pass, the first pass having
// nothing to compare with); and cancellation through the context, both
// before the call and from the progress callback between passes.
func TestPredictProgressAndEarlyStop(t *testing.T) {
	cfg := mdlTinyConfig()
	m := mdlRandomModel[float64](t, cfg, 7)
	f := mdlFeatures(t, 11, 12, 4, 8)
	var reps []Progress
	res, err := m.Predict(context.Background(), f, PredictOptions{Progress: func(p Progress) { reps = append(reps, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passes != cfg.Iterations || len(reps) != cfg.Iterations || res.Converged || len(res.Timings.Passes) != cfg.Iterations {
		t.Fatalf("%d passes, %d reports, converged %v; want %d, %d, false", res.Passes, len(reps), res.Converged, cfg.Iterations, cfg.Iterations)
	}
	for k, p := range reps {
		if p.Pass != k || p.Passes != cfg.Iterations || p.Last != (k == cfg.Iterations-1) || (k == 0) != math.IsNaN(p.Change) ||
			!(p.MeanPLDDT > 0 && p.MeanPLDDT < 100) || p.Elapsed <= 0 {
			t.Errorf("report %d: %+v", k, p)
		}
	}
	var mean float64
	for _, v := range res.PLDDT {
		mean += v / float64(f.L)
	}
	if math.Abs(mean-reps[len(reps)-1].MeanPLDDT) > 1e-9 {
		t.Errorf("last report's mean pLDDT %v, result's %v", reps[len(reps)-1].MeanPLDDT, mean)
	}

	reps = nil
	res, err = m.Predict(context.Background(), f, PredictOptions{Iterations: 5, Tolerance: 1e9, Progress: func(p Progress) { reps = append(reps, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passes != 2 || !res.Converged || len(reps) != 2 || !reps[1].Converged || !reps[1].Last {
		t.Errorf("tolerance 1e9: %d passes, converged %v, reports %+v; want to stop after 2", res.Passes, res.Converged, reps)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Predict(ctx, f, PredictOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	passes := 0
	_, err = m.Predict(ctx, f, PredictOptions{Progress: func(Progress) { passes++; cancel() }})
	if !errors.Is(err, context.Canceled) || passes != 1 {
		t.Errorf("canceled after the first pass: %v after %d passes", err, passes)
	}
}

// TestPredictEmptyExtraMSA checks a prediction without extra sequences
// (single-sequence features): it runs, and it equals the prediction with
// one extra sequence whose mask is 0 everywhere, which is how AF2's stack
// treats an empty extra MSA (the outer product mean of masked rows adds
// only its bias over ε). Both run the same operations on the pair up to
// the masked projections, which are exactly zero: 1e-12.
func TestPredictEmptyExtraMSA(t *testing.T) {
	cfg := mdlTinyConfig()
	m := mdlRandomModel[float64](t, cfg, 9)
	f := mdlFeatures(t, 10, 1, 1, 10)
	if f.Se != 0 || f.S != 1 {
		t.Fatalf("single-sequence features have S = %d, Se = %d", f.S, f.Se)
	}
	a, err := m.Predict(context.Background(), f, PredictOptions{Iterations: 2})
	if err != nil {
		t.Fatal(err)
	}
	g := *f
	g.Se = 1
	g.ExtraMSA = make([]int, f.L)
	for i := range g.ExtraMSA {
		g.ExtraMSA[i] = i % 22
	}
	g.ExtraHasDeletion, g.ExtraDeletionValue, g.ExtraMSAMask = make([]float64, f.L), make([]float64, f.L), make([]float64, f.L)
	g.ExtraDeletionValue[2] = 0.5
	b, err := m.Predict(context.Background(), &g, PredictOptions{Iterations: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		x, y []float64
	}{{"positions", a.FinalAtomPositions, b.FinalAtomPositions}, {"pair", a.Pair, b.Pair}, {"plddt", a.PLDDT, b.PLDDT}} {
		if d := mdlMaxDiff(t, c.what, c.x, c.y); d > 1e-12 {
			t.Errorf("%s: empty extra MSA and a masked one differ by %.3g", c.what, d)
		}
	}
	for _, v := range a.FinalAtomPositions {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatal("non-finite position")
		}
	}
}

// TestPredictErrors checks that bad features and a broken model are
// refused with the documented errors rather than a panic.
func TestPredictErrors(t *testing.T) {
	cfg := mdlTinyConfig()
	m := mdlRandomModel[float32](t, cfg, 12)
	good := mdlFeatures(t, 8, 6, 3, 13)
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		change func(f *features.Features)
		want   error
	}{
		{"short msa_feat", func(f *features.Features) { f.MSAFeat = f.MSAFeat[1:] }, num.ErrShape},
		{"NaN msa_feat", func(f *features.Features) {
			f.MSAFeat = append([]float64(nil), f.MSAFeat...)
			f.MSAFeat[5] = math.NaN()
		}, num.ErrNaN},
		{"short msa_mask", func(f *features.Features) { f.MSAMask = f.MSAMask[1:] }, num.ErrShape},
		{"aatype 21", func(f *features.Features) { f.AAType = append([]int(nil), f.AAType...); f.AAType[0] = 21 }, num.ErrShape},
		{"S = 0", func(f *features.Features) { f.S = 0 }, num.ErrShape},
		{"short residue_index", func(f *features.Features) { f.ResidueIndex = f.ResidueIndex[1:] }, num.ErrShape},
		{"extra token 23", func(f *features.Features) { f.ExtraMSA = append([]int(nil), f.ExtraMSA...); f.ExtraMSA[0] = 23 }, num.ErrShape},
		{"Inf seq_mask", func(f *features.Features) {
			f.SeqMask = append([]float64(nil), f.SeqMask...)
			f.SeqMask[0] = math.Inf(1)
		}, num.ErrNaN},
	} {
		f := *good
		c.change(&f)
		if _, err := m.Predict(ctx, &f, PredictOptions{Iterations: 1}); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := m.Predict(ctx, nil, PredictOptions{}); !errors.Is(err, num.ErrShape) {
		t.Errorf("nil features: %v", err)
	}
	broken := *m
	broken.Heads = nil
	if _, err := broken.Predict(ctx, good, PredictOptions{}); !errors.Is(err, ErrConfig) {
		t.Errorf("model without heads: %v", err)
	}
	bad := cfg
	bad.Heads.CZ = 7
	if _, err := NewModel[float32](bad, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, ErrConfig) {
		t.Errorf("mismatched widths: %v", err)
	}
}

// TestProgressString checks the progress line the CLI prints.
func TestProgressString(t *testing.T) {
	for _, c := range []struct {
		p    Progress
		want string
	}{
		{Progress{Pass: 0, Passes: 4, Change: math.NaN(), MeanPLDDT: 50, Elapsed: 1500 * time.Millisecond},
			"recycle 1/4 [#####---------------] ΔCα –  pLDDT 50.0  1.5 s"},
		{Progress{Pass: 1, Passes: 4, Change: 0.25, Converged: true, Last: true, MeanPLDDT: 71.26, Elapsed: time.Second},
			"recycle 2/4 [####################] ΔCα 0.250 Å  pLDDT 71.3  1.0 s  converged"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

// TestPredictPaddingRows checks that MSA and extra-MSA rows with mask 0,
// as AF2's pipeline adds to reach 512 and max_extra_msa rows, change
// nothing but the padding rows' masked-MSA logits: masked keys get a −1e9
// logit bias (their softmax weight underflows to 0) and masked rows add
// nothing to the outer product mean. Round-off only: 1e-12.
func TestPredictPaddingRows(t *testing.T) {
	cfg := mdlTinyConfig()
	m := mdlRandomModel[float64](t, cfg, 14)
	f := mdlFeatures(t, 9, 10, 4, 15)
	const padS, padSe = 3, 2
	g := *f
	g.S, g.Se = f.S+padS, f.Se+padSe
	g.MSAFeat = append(append([]float64(nil), f.MSAFeat...), make([]float64, padS*f.L*features.MSAFeatChannels)...)
	g.MSAMask = append(append([]float64(nil), f.MSAMask...), make([]float64, padS*f.L)...)
	g.ExtraMSA = append(append([]int(nil), f.ExtraMSA...), make([]int, padSe*f.L)...)
	g.ExtraHasDeletion = append(append([]float64(nil), f.ExtraHasDeletion...), make([]float64, padSe*f.L)...)
	g.ExtraDeletionValue = append(append([]float64(nil), f.ExtraDeletionValue...), make([]float64, padSe*f.L)...)
	g.ExtraMSAMask = append(append([]float64(nil), f.ExtraMSAMask...), make([]float64, padSe*f.L)...)
	opt := PredictOptions{Iterations: 2}
	a, err := m.Predict(context.Background(), f, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Predict(context.Background(), &g, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		x, y []float64
	}{
		{"positions", a.FinalAtomPositions, b.FinalAtomPositions},
		{"pair", a.Pair, b.Pair},
		{"plddt", a.PLDDT, b.PLDDT},
		{"masked_msa_logits (unpadded rows)", a.MaskedMSALogits, b.MaskedMSALogits[:len(a.MaskedMSALogits)]},
	} {
		if d := mdlMaxDiff(t, c.what, c.x, c.y); d > 1e-12 {
			t.Errorf("%s: padding changes the prediction by %.3g", c.what, d)
		}
	}
}
