package alphafold

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// smallEvoConfig has every module and several heads at a cost of
// milliseconds per block, with AF2's dropout rates.
func smallEvoConfig(global bool) EvoformerConfig {
	return EvoformerConfig{
		MSAChannels: 8, PairChannels: 6,
		MSAHeads: 2, MSAHeadChannels: 3,
		PairHeads: 2, PairHeadChannels: 3,
		TriMulChannels: 5, OuterChannels: 3, TransitionFactor: 2,
		GlobalColumn: global,
		RowDropout:   0.15, PairDropout: 0.25,
	}
}

// randomizeEvo overwrites every array of ts with non-degenerate random
// values, as the reference cases do (refcases README §1): weights ~
// N(0, 1/fan_in), biases ~ N(0, 0.1²), layer-norm scales ~ 1 + N(0, 0.2²).
// AF2's initialisers zero every final projection, which would make a fresh
// block the identity and every property test trivially true.
func randomizeEvo[T num.Float](rng *rand.Rand, ts []evoTensor[T]) {
	for _, t := range ts {
		x := *t.data
		sd, mean := 1/math.Sqrt(float64(t.shape[0])), 0.0
		switch {
		case strings.HasSuffix(t.name, "//scale"):
			sd, mean = 0.2, 1
		case len(t.shape) == 1 || strings.HasSuffix(t.name, "gating_b"):
			sd = 0.1
		}
		for i := range x {
			x[i] = T(mean + sd*rng.NormFloat64())
		}
	}
}

// randomBlock returns a block for cfg with random non-degenerate parameters.
func randomBlock[T num.Float](t testing.TB, cfg EvoformerConfig, seed uint64) *EvoformerBlockParams[T] {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	p, err := NewEvoformerBlockParams[T](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	randomizeEvo(rng, p.tensors())
	return p
}

// evoInputs are a block's inputs in float64 (float32-exact values).
type evoInputs struct {
	s, n                         int
	msa, pair, msaMask, pairMask []float64
	cotMSA, cotPair              []float64
}

// randomEvoInputs draws inputs with holes in the masks: sequence s−1 is
// absent except at residue 0, a few other MSA positions and pair entries are
// 0, and residue 0 is present in every sequence.
func randomEvoInputs(cfg EvoformerConfig, s, n int, seed uint64) evoInputs {
	rng := rand.New(rand.NewPCG(seed, 2))
	in := evoInputs{s: s, n: n}
	randv := func(k int) []float64 {
		x := make([]float64, k)
		for i := range x {
			x[i] = float64(float32(rng.NormFloat64()))
		}
		return x
	}
	in.msa = randv(s * n * cfg.MSAChannels)
	in.pair = randv(n * n * cfg.PairChannels)
	in.cotMSA = randv(s * n * cfg.MSAChannels)
	in.cotPair = randv(n * n * cfg.PairChannels)
	in.msaMask = make([]float64, s*n)
	for i := range in.msaMask {
		si, ri := i/n, i%n
		switch {
		case ri == 0:
			in.msaMask[i] = 1
		case si == s-1:
		case rng.Float64() > 0.15:
			in.msaMask[i] = 1
		}
	}
	in.pairMask = make([]float64, n*n)
	for i := range in.pairMask {
		if i%(n+1) == 0 || rng.Float64() > 0.1 {
			in.pairMask[i] = 1
		}
	}
	return in
}

func convertEvo[T num.Float](x []float64) []T {
	y := make([]T, len(x))
	for i, v := range x {
		y[i] = T(v)
	}
	return y
}

// runBlock runs a block on copies of the inputs and returns its outputs.
func runBlock[T num.Float](t testing.TB, p *EvoformerBlockParams[T], in evoInputs, rng *rand.Rand) (msa, pair []T) {
	t.Helper()
	msa, pair = convertEvo[T](in.msa), convertEvo[T](in.pair)
	if err := p.Forward(msa, pair, convertEvo[T](in.msaMask), convertEvo[T](in.pairMask), in.s, in.n, rng, nil); err != nil {
		t.Fatal(err)
	}
	return msa, pair
}

// TestEvoformerPermutation checks that a whole block (and an extra-MSA
// block) is equivariant in float64: permuting the residues (the N axis of
// the MSA, both axes of the pair tensor and of the pair mask) permutes the
// outputs, and permuting the MSA sequences permutes the MSA output and
// leaves the pair output unchanged. Every operation of the block is
// equivariant; only the order of floating-point sums changes, so the
// results agree to round-off, ≤ 1e-11 on outputs of size O(1–10).
func TestEvoformerPermutation(t *testing.T) {
	for _, global := range []bool{false, true} {
		name := "evoformer"
		if global {
			name = "extra_msa"
		}
		t.Run(name, func(t *testing.T) {
			cfg := smallEvoConfig(global)
			const s, n = 5, 9
			p := randomBlock[float64](t, cfg, 11)
			in := randomEvoInputs(cfg, s, n, 12)
			msa, pair := runBlock(t, p, in, nil)
			cm, cz := cfg.MSAChannels, cfg.PairChannels
			rng := rand.New(rand.NewPCG(13, 3))

			// Residues: new residue i is old residue perm[i].
			perm := rng.Perm(n)
			pi := in
			pi.msa, pi.msaMask = make([]float64, len(in.msa)), make([]float64, len(in.msaMask))
			pi.pair, pi.pairMask = make([]float64, len(in.pair)), make([]float64, len(in.pairMask))
			for si := range s {
				for i := range n {
					copy(pi.msa[(si*n+i)*cm:(si*n+i+1)*cm], in.msa[(si*n+perm[i])*cm:(si*n+perm[i]+1)*cm])
					pi.msaMask[si*n+i] = in.msaMask[si*n+perm[i]]
				}
			}
			for i := range n {
				for j := range n {
					a, b := i*n+j, perm[i]*n+perm[j]
					copy(pi.pair[a*cz:(a+1)*cz], in.pair[b*cz:(b+1)*cz])
					pi.pairMask[a] = in.pairMask[b]
				}
			}
			msaP, pairP := runBlock(t, p, pi, nil)
			var worst float64
			for si := range s {
				for i := range n {
					for c := range cm {
						worst = math.Max(worst, math.Abs(msaP[(si*n+i)*cm+c]-msa[(si*n+perm[i])*cm+c]))
					}
				}
			}
			for i := range n {
				for j := range n {
					for c := range cz {
						worst = math.Max(worst, math.Abs(pairP[(i*n+j)*cz+c]-pair[(perm[i]*n+perm[j])*cz+c]))
					}
				}
			}
			t.Logf("residue permutation: max |error| %.3g", worst)
			if worst > 1e-11 {
				t.Errorf("residue permutation: max |error| %.3g > 1e-11", worst)
			}

			// Sequences: new sequence k is old sequence sp[k].
			sp := rng.Perm(s)
			ps := in
			ps.msa, ps.msaMask = make([]float64, len(in.msa)), make([]float64, len(in.msaMask))
			for k := range s {
				copy(ps.msa[k*n*cm:(k+1)*n*cm], in.msa[sp[k]*n*cm:(sp[k]+1)*n*cm])
				copy(ps.msaMask[k*n:(k+1)*n], in.msaMask[sp[k]*n:(sp[k]+1)*n])
			}
			msaS, pairS := runBlock(t, p, ps, nil)
			worst = 0
			for k := range s {
				for x := range n * cm {
					worst = math.Max(worst, math.Abs(msaS[k*n*cm+x]-msa[sp[k]*n*cm+x]))
				}
			}
			for x := range pair {
				worst = math.Max(worst, math.Abs(pairS[x]-pair[x]))
			}
			t.Logf("sequence permutation: max |error| %.3g", worst)
			if worst > 1e-11 {
				t.Errorf("sequence permutation: max |error| %.3g > 1e-11", worst)
			}
		})
	}
}

// blockLoss returns Σ cot·out of a block run on in with dropout drawn from
// a fresh generator seeded with seed (the same masks every call), or no
// dropout for seed 0.
func blockLoss(t testing.TB, p *EvoformerBlockParams[float64], in evoInputs, seed uint64) float64 {
	var rng *rand.Rand
	if seed != 0 {
		rng = rand.New(rand.NewPCG(seed, 4))
	}
	msa, pair := runBlock(t, p, in, rng)
	var l float64
	for i, v := range msa {
		l += in.cotMSA[i] * v
	}
	for i, v := range pair {
		l += in.cotPair[i] * v
	}
	return l
}

// fdCheck compares the analytic derivative grad[i] of loss with a central
// difference for the listed indices of x, perturbing x in place.
//
// The step h = 1e-5 leaves a truncation error h²·|f⁽³⁾|/6 and a
// cancellation error of about 1e-16·|L|/h ≈ 1e-10 for losses of order 10;
// through the layer norms and gates the third derivatives are large enough
// that the measured scaled errors reach about 1e-7. The tolerance
// 1e-6·(1 + |fd|) is above that and far below the O(0.1–1) error of a
// wrong formula.
func fdCheck(t *testing.T, what string, x, grad []float64, idx []int, loss func() float64) {
	t.Helper()
	const h, tol = 1e-5, 1e-6
	worst := 0.0
	for _, i := range idx {
		x0 := x[i]
		x[i] = x0 + h
		lp := loss()
		x[i] = x0 - h
		lm := loss()
		x[i] = x0
		fd := (lp - lm) / (2 * h)
		e := math.Abs(grad[i]-fd) / (1 + math.Abs(fd))
		worst = math.Max(worst, e)
		if e > tol {
			t.Errorf("%s[%d]: analytic %.10g, finite difference %.10g", what, i, grad[i], fd)
		}
	}
	t.Logf("%s: %d entries, max scaled error %.2g", what, len(idx), worst)
}

// sample returns up to k indices spread over [0, n).
func sample(n, k int) []int {
	if n <= k {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i * n / k
	}
	return idx
}

// TestEvoformerBlockGradient checks Backward against central differences in
// float64 for a block and an extra-MSA block, in training mode (AF2's
// dropout, the same masks in every evaluation) and in inference mode: the
// gradients with respect to msa, pair and a sample of every parameter array.
func TestEvoformerBlockGradient(t *testing.T) {
	for _, tc := range []struct {
		name   string
		global bool
		seed   uint64
	}{{"evoformer/train", false, 7}, {"evoformer/inference", false, 0}, {"extra_msa/train", true, 8}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallEvoConfig(tc.global)
			const s, n = 3, 5
			p := randomBlock[float64](t, cfg, 21)
			in := randomEvoInputs(cfg, s, n, 22)
			var rng *rand.Rand
			if tc.seed != 0 {
				rng = rand.New(rand.NewPCG(tc.seed, 4))
			}
			msa, pair := convertEvo[float64](in.msa), convertEvo[float64](in.pair)
			var c EvoformerBlockCache[float64]
			if err := p.Forward(msa, pair, in.msaMask, in.pairMask, s, n, rng, &c); err != nil {
				t.Fatal(err)
			}
			dmsa, dpair := append([]float64(nil), in.cotMSA...), append([]float64(nil), in.cotPair...)
			g := p.ZerosLike()
			if err := p.Backward(&c, dmsa, dpair, g); err != nil {
				t.Fatal(err)
			}
			loss := func() float64 { return blockLoss(t, p, in, tc.seed) }
			fdCheck(t, "msa", in.msa, dmsa, sample(len(in.msa), 40), loss)
			fdCheck(t, "pair", in.pair, dpair, sample(len(in.pair), 40), loss)
			gt := g.tensors()
			for k, pt := range p.tensors() {
				fdCheck(t, pt.name, *pt.data, *gt[k].data, sample(len(*pt.data), 3), loss)
			}
		})
	}
}

// TestEvoformerDropout checks AF2's dropout: rates 0 with a random source
// give exactly the inference result; masks keep about 1 − rate of their
// entries at 1/(1 − rate) and zero the rest; and evoApplyDropout shares one
// mask over rows or over columns as asked.
func TestEvoformerDropout(t *testing.T) {
	cfg := smallEvoConfig(false)
	const s, n = 3, 6
	in := randomEvoInputs(cfg, s, n, 31)
	p := randomBlock[float64](t, cfg, 32)
	m0, z0 := runBlock(t, p, in, nil)

	off := cfg
	off.RowDropout, off.PairDropout = 0, 0
	q := randomBlock[float64](t, off, 32)
	m1, z1 := runBlock(t, q, in, rand.New(rand.NewPCG(1, 1)))
	for i := range m0 {
		if m0[i] != m1[i] {
			t.Fatalf("rate 0 with a random source changed msa[%d]: %v, want %v", i, m1[i], m0[i])
		}
	}
	for i := range z0 {
		if z0[i] != z1[i] {
			t.Fatalf("rate 0 with a random source changed pair[%d]: %v, want %v", i, z1[i], z0[i])
		}
	}
	m2, _ := runBlock(t, p, in, rand.New(rand.NewPCG(1, 1)))
	same := true
	for i := range m0 {
		same = same && m0[i] == m2[i]
	}
	if same {
		t.Error("dropout at AF2's rates left the MSA output unchanged")
	}

	// Mask statistics: 10⁵ draws at rate 0.25; the kept fraction has
	// standard deviation √(0.25·0.75/10⁵) ≈ 0.0014, so 0.01 is 7σ.
	rng := rand.New(rand.NewPCG(2, 2))
	mask := evoDropMask[float64](rng, 0.25, 100000)
	kept := 0
	for _, v := range mask {
		switch v {
		case 0:
		case 1 / 0.75:
			kept++
		default:
			t.Fatalf("mask value %v, want 0 or 1/0.75", v)
		}
	}
	if f := float64(kept) / float64(len(mask)); math.Abs(f-0.75) > 0.01 {
		t.Errorf("kept fraction %.4f, want 0.75 ± 0.01", f)
	}
	if evoDropMask[float64](rng, 0, 10) != nil {
		t.Error("rate 0 gave a mask")
	}

	// Shared dimensions on a [2, 3, 2] tensor of ones.
	m := []float64{1, 2, 3, 4, 5, 6}
	x := []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	evoApplyDropout(x, m, 2, 3, 2, true) // per_row: x[a,b,c] *= m[b,c]
	for a := range 2 {
		for b := range 3 {
			for c := range 2 {
				if got := x[(a*3+b)*2+c]; got != m[b*2+c] {
					t.Errorf("per_row x[%d,%d,%d] = %v, want %v", a, b, c, got, m[b*2+c])
				}
			}
		}
	}
	x = []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	evoApplyDropout(x, m[:4], 2, 3, 2, false) // per_column: x[a,b,c] *= m[a,c]
	for a := range 2 {
		for b := range 3 {
			for c := range 2 {
				if got := x[(a*3+b)*2+c]; got != m[a*2+c] {
					t.Errorf("per_column x[%d,%d,%d] = %v, want %v", a, b, c, got, m[a*2+c])
				}
			}
		}
	}
}

// TestEvoformerStack checks that a stack runs its blocks in order, that its
// Backward (which recomputes each block from its saved input) gives exactly
// the gradients of the blocks' own Backward chained by hand, with the same
// dropout masks, and that Save and LoadEvoformerStack round-trip the
// stacked arrays with their leading layer axis.
func TestEvoformerStack(t *testing.T) {
	cfg := smallEvoConfig(false)
	const s, n = 3, 5
	in := randomEvoInputs(cfg, s, n, 41)
	st := &EvoformerStack[float64]{Config: cfg}
	for k := range 3 {
		st.Blocks = append(st.Blocks, randomBlock[float64](t, cfg, 42+uint64(k)))
	}
	msa, pair := convertEvo[float64](in.msa), convertEvo[float64](in.pair)
	var sc EvoformerStackCache[float64]
	if err := st.Forward(msa, pair, in.msaMask, in.pairMask, s, n, rand.New(rand.NewPCG(5, 5)), &sc); err != nil {
		t.Fatal(err)
	}
	dmsa, dpair := append([]float64(nil), in.cotMSA...), append([]float64(nil), in.cotPair...)
	g := st.ZerosLike()
	if err := st.Backward(&sc, dmsa, dpair, g); err != nil {
		t.Fatal(err)
	}

	// By hand, drawing the dropout masks in the same order.
	rng := rand.New(rand.NewPCG(5, 5))
	m, z := convertEvo[float64](in.msa), convertEvo[float64](in.pair)
	caches := make([]EvoformerBlockCache[float64], len(st.Blocks))
	for k, b := range st.Blocks {
		if err := b.Forward(m, z, in.msaMask, in.pairMask, s, n, rng, &caches[k]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range m {
		if m[i] != msa[i] {
			t.Fatalf("stack msa[%d] = %v, blocks by hand %v", i, msa[i], m[i])
		}
	}
	for i := range z {
		if z[i] != pair[i] {
			t.Fatalf("stack pair[%d] = %v, blocks by hand %v", i, pair[i], z[i])
		}
	}
	dm, dz := append([]float64(nil), in.cotMSA...), append([]float64(nil), in.cotPair...)
	for k := len(st.Blocks) - 1; k >= 0; k-- {
		gk := st.Blocks[k].ZerosLike()
		if err := st.Blocks[k].Backward(&caches[k], dm, dz, gk); err != nil {
			t.Fatal(err)
		}
		want, got := gk.tensors(), g.Blocks[k].tensors()
		for i := range want {
			for j, v := range *want[i].data {
				if (*got[i].data)[j] != v {
					t.Fatalf("block %d %s[%d]: stack gradient %v, by hand %v", k, want[i].name, j, (*got[i].data)[j], v)
				}
			}
		}
	}
	for i := range dm {
		if dm[i] != dmsa[i] {
			t.Fatalf("dmsa[%d]: stack %v, by hand %v", i, dmsa[i], dm[i])
		}
	}
	for i := range dz {
		if dz[i] != dpair[i] {
			t.Fatalf("dpair[%d]: stack %v, by hand %v", i, dpair[i], dz[i])
		}
	}

	// Save and load back.
	set := params.New()
	if err := st.Save(set, "evo/"); err != nil {
		t.Fatal(err)
	}
	shape, err := set.Shape("evo/evoformer_iteration/outer_product_mean//output_w")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, cfg.OuterChannels, cfg.OuterChannels, cfg.PairChannels}; !equalInts(shape, want) {
		t.Errorf("saved output_w has shape %v, want %v", shape, want)
	}
	back, err := LoadEvoformerStack[float64](set.Sub("evo/"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Blocks) != 3 {
		t.Fatalf("loaded %d blocks, want 3", len(back.Blocks))
	}
	for k := range back.Blocks {
		want, got := st.Blocks[k].tensors(), back.Blocks[k].tensors()
		for i := range want {
			for j, v := range *want[i].data {
				if (*got[i].data)[j] != v {
					t.Fatalf("block %d %s[%d]: loaded %v, saved %v", k, want[i].name, j, (*got[i].data)[j], v)
				}
			}
		}
	}
	if u := set.Unused(); len(u) != 0 {
		t.Errorf("LoadEvoformerStack left %d arrays unread, first %s", len(u), u[0])
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEvoformerStacksFromFullModel loads the main and extra-MSA stacks from
// the full-model reference case, whose parameters carry AF2's full names
// and layer axes of length 2 and 1, and checks that every array under
// evoformer_iteration/ and extra_msa_stack/ is read.
func TestEvoformerStacksFromFullModel(t *testing.T) {
	cs := refcase.Open(t, "full_model.npz")
	evo := cs.Sub("params/alphafold/alphafold_iteration/evoformer/")
	main, err := LoadEvoformerStack[float32](evo, DefaultEvoformerConfig())
	if err != nil {
		t.Fatal(err)
	}
	extra, err := LoadEvoformerStack[float32](evo, DefaultExtraMSAConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(main.Blocks) != 2 || len(extra.Blocks) != 1 {
		t.Errorf("loaded %d Evoformer and %d extra-MSA blocks, want 2 and 1", len(main.Blocks), len(extra.Blocks))
	}
	for _, k := range evo.Unused() {
		if strings.HasPrefix(k, EvoformerStackName+"/") || strings.HasPrefix(k, ExtraMSAStackName+"/") {
			t.Errorf("stack parameter %s not read", k)
		}
	}
}

// TestEvoformerErrors checks that bad sizes, non-finite inputs, invalid
// configurations and mismatched caches give the documented errors.
func TestEvoformerErrors(t *testing.T) {
	cfg := smallEvoConfig(false)
	const s, n = 2, 4
	p := randomBlock[float64](t, cfg, 51)
	in := randomEvoInputs(cfg, s, n, 52)
	nan := append([]float64(nil), in.msa...)
	nan[3] = math.NaN()
	bad := cfg
	bad.PairDropout = 1
	q := *p
	q.Config = bad
	for _, tc := range []struct {
		name string
		err  error
		run  func() error
	}{
		{"short msa", num.ErrShape, func() error {
			return p.Forward(in.msa[1:], in.pair, in.msaMask, in.pairMask, s, n, nil, nil)
		}},
		{"short pair mask", num.ErrShape, func() error {
			return p.Forward(in.msa, in.pair, in.msaMask, in.pairMask[:n], s, n, nil, nil)
		}},
		{"no residues", num.ErrShape, func() error {
			return p.Forward(nil, nil, nil, nil, s, 0, nil, nil)
		}},
		{"NaN msa", num.ErrNaN, func() error {
			return p.Forward(nan, in.pair, in.msaMask, in.pairMask, s, n, nil, nil)
		}},
		{"dropout rate 1", ErrConfig, func() error {
			return q.Forward(in.msa, in.pair, in.msaMask, in.pairMask, s, n, nil, nil)
		}},
		{"backward without forward", ErrConfig, func() error {
			return p.Backward(new(EvoformerBlockCache[float64]), in.cotMSA, in.cotPair, nil)
		}},
		{"transition factor 0", ErrConfig, func() error {
			_, err := NewTransitionParams[float64](TransitionConfig{C: 4}, rand.New(rand.NewPCG(1, 1)))
			return err
		}},
		{"outer product mean eps NaN", ErrConfig, func() error {
			return OuterProductMeanConfig{CM: 4, C: 2, CZ: 3, Eps: math.NaN()}.Validate()
		}},
		{"outer product mean short mask", num.ErrShape, func() error {
			o, err := NewOuterProductMeanParams[float64](cfg.outerConfig(), rand.New(rand.NewPCG(1, 1)))
			if err != nil {
				return err
			}
			return o.Forward(in.msa, in.msaMask[1:], s, n, make([]float64, n*n*cfg.PairChannels), nil)
		}},
		{"transition NaN", num.ErrNaN, func() error {
			return p.MSATransition.Forward(nan, s*n, nil, make([]float64, len(nan)), nil)
		}},
		{"empty stack", ErrConfig, func() error {
			st := &EvoformerStack[float64]{Config: cfg}
			return st.Forward(in.msa, in.pair, in.msaMask, in.pairMask, s, n, nil, nil)
		}},
	} {
		err := tc.run()
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: error %v, want one wrapping %v", tc.name, err, tc.err)
		}
	}
}

// TestEvoformerMaskedFinite checks that a block keeps every output finite
// when whole sequences, whole residues of the MSA and whole rows of the
// pair mask are 0 (queries with every key masked attend uniformly).
func TestEvoformerMaskedFinite(t *testing.T) {
	for _, global := range []bool{false, true} {
		cfg := smallEvoConfig(global)
		const s, n = 4, 6
		p := randomBlock[float32](t, cfg, 61)
		in := randomEvoInputs(cfg, s, n, 62)
		for i := range n {
			in.msaMask[1*n+i] = 0  // a whole sequence
			in.pairMask[3*n+i] = 0 // a whole row of the pair mask
			in.pairMask[i*n+3] = 0 // and column
		}
		for si := range s {
			in.msaMask[si*n+2] = 0 // a whole residue column of the MSA
		}
		msa, pair := runBlock(t, p, in, nil)
		if err := num.CheckFinite("msa", msa); err != nil {
			t.Error(err)
		}
		if err := num.CheckFinite("pair", pair); err != nil {
			t.Error(err)
		}
	}
}
