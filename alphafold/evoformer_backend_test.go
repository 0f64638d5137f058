package alphafold

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// bkRandom returns n float32-exact standard normal values.
func bkRandom(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 3))
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(float32(rng.NormFloat64()))
	}
	return x
}

// bkMask returns an MSA mask [S, N] with random zeros, sequence 1 fully
// masked and residue N−1 absent from every sequence.
func bkMask(s, n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 4))
	m := make([]float64, s*n)
	for i := range m {
		si, ri := i/n, i%n
		if si != 1 && ri != n-1 && rng.Float64() > 0.2 {
			m[i] = 1
		}
	}
	return m
}

// bkRelErr returns max |got − want| / max |want| (or the absolute error
// when want is 0).
func bkRelErr[T num.Float](got, want []T) float64 {
	var e, w float64
	for i := range want {
		e = max(e, math.Abs(float64(got[i])-float64(want[i])))
		w = max(w, math.Abs(float64(want[i])))
	}
	if math.IsNaN(e) || len(got) != len(want) {
		return math.Inf(1)
	}
	if w == 0 {
		return e
	}
	return e / w
}

// bkExact fails the test unless got equals want bit for bit.
func bkExact[T num.Float](t *testing.T, what string, got, want []T) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: [%d] = %v, the CPU forward gives %v", what, i, got[i], want[i])
			return
		}
	}
}

// bkBlockInputs returns a block's inputs with masks that have zeros, a
// fully masked sequence (1), a residue absent from every sequence (N−1)
// and a fully masked row and column of the pair mask (2).
func bkBlockInputs(cfg EvoformerConfig, s, n int, seed uint64) evoInputs {
	in := randomEvoInputs(cfg, s, n, seed)
	for i := range n {
		in.msaMask[1*n+i] = 0
		in.pairMask[2*n+i] = 0
		in.pairMask[i*n+2] = 0
	}
	for si := range s {
		in.msaMask[si*n+n-1] = 0
	}
	return in
}

// bkBlockConfig is smallEvoConfig with small chunk sizes when chunked, so
// that every module of the backend path runs in several chunks.
func bkBlockConfig(global, chunked bool) EvoformerConfig {
	cfg := smallEvoConfig(global)
	if chunked {
		cfg.TransitionChunk, cfg.OuterChunk, cfg.TriMulChunk, cfg.TriAttChunk = 4, 3, 2, 3
	}
	return cfg
}

// TestEvoformerBlockBackend checks EvoformerBlock's composed path against
// EvoformerBlockParams.Forward (rng = nil) for both block kinds on every
// backend of the build, and that the CPU dispatch path returns the CPU
// forward's result exactly. On the CPU backend with CPU tensors the
// msaattn and triangle modules take their own dispatch path (their
// composed paths are tested in their packages), so this checks the
// block's composition, its transitions and outer product mean; on the CUDA
// backend every module runs composed.
func TestEvoformerBlockBackend(t *testing.T) {
	// Composed vs CPU: nine updates, each a few layer norms, products of
	// ≤ 18 terms and softmaxes, summed in another order on CUDA; the
	// layer norms rescale the inputs' round-off by up to ~10 here. float64:
	// ~1e-14 of the outputs' max, bounded by 1e-12; float32: ~1e-6,
	// bounded by 1e-5 (one ulp is 6e-8).
	t.Run("float64", func(t *testing.T) { testEvoformerBlockBackend[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testEvoformerBlockBackend[float32](t, 1e-5) })
}

func testEvoformerBlockBackend[T num.Float](t *testing.T, tol float64) {
	const s, n = 5, 7
	for _, tc := range []struct {
		name            string
		global, chunked bool
	}{
		{"Evoformer", false, false},
		{"Evoformer chunked", false, true},
		{"extra-MSA", true, false},
		{"extra-MSA chunked", true, true},
	} {
		cfg := bkBlockConfig(tc.global, tc.chunked)
		p := randomBlock[T](t, cfg, 71)
		in := bkBlockInputs(cfg, s, n, 72)
		wantM, wantZ := runBlock(t, p, in, nil)
		msaMask, pairMask := convertEvo[T](in.msaMask), convertEvo[T](in.pairMask)
		for _, be := range backendtest.Backends[T](t) {
			k := be.K
			b, err := NewEvoformerBlock(k, p)
			if err != nil {
				t.Fatal(err)
			}
			b.compose()
			msa, pair := backendtest.Put(t, k, convertEvo[T](in.msa)), backendtest.Put(t, k, convertEvo[T](in.pair))
			if err := b.Forward(msa, pair, backendtest.Put(t, k, msaMask), backendtest.Put(t, k, pairMask), s, n); err != nil {
				t.Fatalf("%s %s: %v", be.Name, tc.name, err)
			}
			em, ez := bkRelErr(backendtest.Get(t, k, msa), wantM), bkRelErr(backendtest.Get(t, k, pair), wantZ)
			if em > tol || ez > tol {
				t.Errorf("%s %s: composed path differs from the CPU forward by %.3g (msa) and %.3g (pair) of the outputs' max, want ≤ %g",
					be.Name, tc.name, em, ez, tol)
			} else {
				t.Logf("%s %s: max error %.3g (msa), %.3g (pair) of the outputs' max", be.Name, tc.name, em, ez)
			}
			b.Close()
		}

		b, err := NewEvoformerBlock(backend.CPU[T](), p)
		if err != nil {
			t.Fatal(err)
		}
		msa, pair := convertEvo[T](in.msa), convertEvo[T](in.pair)
		if err := b.Forward(backend.Host[T](msa), backend.Host[T](pair), backend.Host[T](msaMask), backend.Host[T](pairMask), s, n); err != nil {
			t.Fatal(err)
		}
		bkExact(t, tc.name+" dispatch msa", msa, wantM)
		bkExact(t, tc.name+" dispatch pair", pair, wantZ)
		b.Close()
	}
}

// TestEvoformerBlocksBackend checks a 2-block EvoformerBlocks (composed,
// and the dispatch path) against EvoformerStack.Forward with rng = nil, for
// both block kinds.
func TestEvoformerBlocksBackend(t *testing.T) {
	// Two blocks: twice the round-off of one (see TestEvoformerBlockBackend).
	t.Run("float64", func(t *testing.T) { testEvoformerBlocksBackend[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testEvoformerBlocksBackend[float32](t, 2e-5) })
}

func testEvoformerBlocksBackend[T num.Float](t *testing.T, tol float64) {
	const s, n = 5, 7
	for _, global := range []bool{false, true} {
		cfg := bkBlockConfig(global, false)
		st := &EvoformerStack[T]{Config: cfg}
		for i := range 2 {
			st.Blocks = append(st.Blocks, randomBlock[T](t, cfg, 81+uint64(i)))
		}
		in := bkBlockInputs(cfg, s, n, 83)
		wantM, wantZ := convertEvo[T](in.msa), convertEvo[T](in.pair)
		msaMask, pairMask := convertEvo[T](in.msaMask), convertEvo[T](in.pairMask)
		if err := st.Forward(wantM, wantZ, msaMask, pairMask, s, n, nil, nil); err != nil {
			t.Fatal(err)
		}
		for _, be := range backendtest.Backends[T](t) {
			k := be.K
			bs, err := NewEvoformerBlocks(k, st)
			if err != nil {
				t.Fatal(err)
			}
			bs.compose()
			msa, pair := backendtest.Put(t, k, convertEvo[T](in.msa)), backendtest.Put(t, k, convertEvo[T](in.pair))
			if err := bs.Forward(msa, pair, backendtest.Put(t, k, msaMask), backendtest.Put(t, k, pairMask), s, n); err != nil {
				t.Fatalf("%s global=%v: %v", be.Name, global, err)
			}
			em, ez := bkRelErr(backendtest.Get(t, k, msa), wantM), bkRelErr(backendtest.Get(t, k, pair), wantZ)
			if em > tol || ez > tol {
				t.Errorf("%s global=%v: composed stack differs from EvoformerStack.Forward by %.3g (msa) and %.3g (pair) of the outputs' max, want ≤ %g",
					be.Name, global, em, ez, tol)
			} else {
				t.Logf("%s global=%v: max error %.3g (msa), %.3g (pair) of the outputs' max", be.Name, global, em, ez)
			}
			bs.Close()
		}

		bs, err := NewEvoformerBlocks(backend.CPU[T](), st)
		if err != nil {
			t.Fatal(err)
		}
		msa, pair := convertEvo[T](in.msa), convertEvo[T](in.pair)
		if err := bs.Forward(backend.Host[T](msa), backend.Host[T](pair), backend.Host[T](msaMask), backend.Host[T](pairMask), s, n); err != nil {
			t.Fatal(err)
		}
		bkExact(t, "stack dispatch msa", msa, wantM)
		bkExact(t, "stack dispatch pair", pair, wantZ)
		bs.Close()
	}
}

// TestEvoformerBlockBackendErrors checks the constructors' and Forward's
// errors for bad parameters and lengths.
func TestEvoformerBlockBackendErrors(t *testing.T) {
	cfg := smallEvoConfig(false)
	p := randomBlock[float64](t, cfg, 91)
	k := backend.CPU[float64]()
	b, err := NewEvoformerBlock(k, p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bs, err := NewEvoformerBlocks(k, &EvoformerStack[float64]{Config: cfg, Blocks: []*EvoformerBlockParams[float64]{p}})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	const s, n = 2, 3
	h := func(l int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, l)) }
	msa, pair, mm, pm := h(s*n*cfg.MSAChannels), h(n*n*cfg.PairChannels), h(s*n), h(n*n)
	noOPM := *p
	noOPM.OuterProductMean = nil
	for _, tc := range []struct {
		name string
		err  error
		run  func() error
	}{
		{"nil block", ErrConfig, func() error { _, err := NewEvoformerBlock[float64](k, nil); return err }},
		{"block without outer product mean", ErrConfig, func() error { _, err := NewEvoformerBlock(k, &noOPM); return err }},
		{"empty stack", ErrConfig, func() error {
			_, err := NewEvoformerBlocks(k, &EvoformerStack[float64]{Config: cfg})
			return err
		}},
		{"short msa", num.ErrShape, func() error { return b.Forward(h(s*n*cfg.MSAChannels-1), pair, mm, pm, s, n) }},
		{"short pair", num.ErrShape, func() error { return b.Forward(msa, h(1), mm, pm, s, n) }},
		{"missing msa mask", num.ErrShape, func() error { return b.Forward(msa, pair, nil, pm, s, n) }},
		{"short pair mask", num.ErrShape, func() error { return b.Forward(msa, pair, mm, h(n), s, n) }},
		{"no residues", num.ErrShape, func() error { return b.Forward(msa, pair, mm, pm, s, 0) }},
		{"stack short pair mask", num.ErrShape, func() error { return bs.Forward(msa, pair, mm, h(n), s, n) }},
		{"closed block", ErrConfig, func() error {
			c, err := NewEvoformerBlock(k, p)
			if err != nil {
				return err
			}
			c.Close()
			return c.Forward(msa, pair, mm, pm, s, n)
		}},
		{"closed stack", ErrConfig, func() error {
			c, err := NewEvoformerBlocks(k, &EvoformerStack[float64]{Config: cfg, Blocks: []*EvoformerBlockParams[float64]{p}})
			if err != nil {
				return err
			}
			c.Close()
			return c.Forward(msa, pair, mm, pm, s, n)
		}},
	} {
		if err := tc.run(); !errors.Is(err, tc.err) {
			t.Errorf("%s: error %v, want one wrapping %v", tc.name, err, tc.err)
		}
	}
}
