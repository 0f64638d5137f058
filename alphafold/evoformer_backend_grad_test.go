package alphafold

import (
	"errors"
	"fmt"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// blockGradCases are the block configurations of the gradient tests: both
// block kinds, with the modules' own chunking and with small chunks.
var blockGradCases = []struct {
	name            string
	global, chunked bool
}{
	{"Evoformer", false, false},
	{"Evoformer chunked", false, true},
	{"extra-MSA", true, false},
	{"extra-MSA chunked", true, true},
}

// blockReference runs EvoformerBlockParams.Forward (rng = nil) and Backward
// on in, returning the outputs, ∂L/∂ of the inputs for the cotangents
// in.cotMSA and in.cotPair, and the parameter gradients.
func blockReference[T num.Float](t *testing.T, p *EvoformerBlockParams[T], in evoInputs) (msa, pair, dm, dz []T, g *EvoformerBlockParams[T]) {
	t.Helper()
	msa, pair = convertEvo[T](in.msa), convertEvo[T](in.pair)
	var c EvoformerBlockCache[T]
	if err := p.Forward(msa, pair, convertEvo[T](in.msaMask), convertEvo[T](in.pairMask), in.s, in.n, nil, &c); err != nil {
		t.Fatal(err)
	}
	dm, dz, g = convertEvo[T](in.cotMSA), convertEvo[T](in.cotPair), p.ZerosLike()
	if err := p.Backward(&c, dm, dz, g); err != nil {
		t.Fatal(err)
	}
	return msa, pair, dm, dz, g
}

// TestEvoformerBlockBackendBackward checks EvoformerBlock.ForwardTape and
// Backward on the composed path against EvoformerBlockParams.Forward
// (rng = nil) and Backward, for both block kinds, on every backend of the
// build: ForwardTape's outputs are Forward's bit for bit (and so are
// forwardTape's without a tape, the path Forward can share), and ∂L/∂msa,
// ∂L/∂pair and every parameter gradient agree with the CPU backward. On
// the CPU backend with CPU tensors the msaattn and triangle modules take
// their own dispatch path (their composed paths are tested in their
// packages), so this checks the block's composition, its transitions and
// outer product mean; on the CUDA backend every module runs composed.
func TestEvoformerBlockBackendBackward(t *testing.T) {
	// The composed path differentiates the same function as the CPU
	// backward: nine modules, each differentiated by its own Backward,
	// whose tolerances (tested in their packages and here) are ~1e-15
	// (float64) and ~5e-7 (float32) of each array's max. Through the
	// block these compound: each update's gradient passes back through
	// the later ones and layer norms that rescale errors by 1/σ of a row.
	// float64 (ulp 1.1e-16): measured ≤ 3.9e-15 of each array's max on
	// the CPU backend and ≤ 6.3e-15 on the emulated CUDA one; 1e-11 leaves
	// room for a GPU's summation orders and exp. float32 (ulp 6e-8):
	// measured ≤ 2.7e-6 (CPU) and ≤ 8e-6 (emulated CUDA, the outer product
	// mean's bias gradients, whose pairs without a shared sequence are
	// divided by eps = 1e-3); 1e-4 leaves a margin of 12× for cuBLAS's
	// summation orders and a GPU's exp.
	t.Run("float64", func(t *testing.T) { testEvoformerBlockBackward[float64](t, 1e-11) })
	t.Run("float32", func(t *testing.T) { testEvoformerBlockBackward[float32](t, 1e-4) })
}

func testEvoformerBlockBackward[T num.Float](t *testing.T, tol float64) {
	const s, n = 4, 5
	for _, be := range backendtest.Backends[T](t) {
		for _, tc := range blockGradCases {
			t.Run(be.Name+"/"+tc.name, func(t *testing.T) {
				k := be.K
				cfg := bkBlockConfig(tc.global, tc.chunked)
				p := randomBlock[T](t, cfg, 101)
				in := bkBlockInputs(cfg, s, n, 102)
				wantM, wantZ, wantDm, wantDz, wantG := blockReference(t, p, in)

				b, err := NewEvoformerBlock(k, p)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				b.compose()
				msaMask, pairMask := backendtest.Put(t, k, convertEvo[T](in.msaMask)), backendtest.Put(t, k, convertEvo[T](in.pairMask))
				fm, fz := backendtest.Put(t, k, convertEvo[T](in.msa)), backendtest.Put(t, k, convertEvo[T](in.pair))
				if err := b.Forward(fm, fz, msaMask, pairMask, s, n); err != nil {
					t.Fatal(err)
				}
				msa, pair := backendtest.Put(t, k, convertEvo[T](in.msa)), backendtest.Put(t, k, convertEvo[T](in.pair))
				var tape EvoformerBlockTape[T]
				defer tape.Free()
				if err := b.ForwardTape(msa, pair, msaMask, pairMask, s, n, &tape); err != nil {
					t.Fatal(err)
				}
				gotM, gotZ := backendtest.Get(t, k, msa), backendtest.Get(t, k, pair)
				bkExact(t, "ForwardTape's msa vs Forward's", gotM, backendtest.Get(t, k, fm))
				bkExact(t, "ForwardTape's pair vs Forward's", gotZ, backendtest.Get(t, k, fz))
				// forwardTape without a tape is Forward's composed path too.
				nm, nz := backendtest.Put(t, k, convertEvo[T](in.msa)), backendtest.Put(t, k, convertEvo[T](in.pair))
				mu, zu := backendtest.Alloc(t, k, len(in.msa)), backendtest.Alloc(t, k, len(in.pair))
				if err := b.forwardTape(nm, nz, msaMask, pairMask, s, n, mu, zu, nil); err != nil {
					t.Fatal(err)
				}
				bkExact(t, "forwardTape's msa without a tape vs Forward's", backendtest.Get(t, k, nm), gotM)
				bkExact(t, "forwardTape's pair without a tape vs Forward's", backendtest.Get(t, k, nz), gotZ)
				if em, ez := bkRelErr(gotM, wantM), bkRelErr(gotZ, wantZ); em > tol || ez > tol {
					t.Errorf("outputs differ from the CPU forward by %.3g (msa), %.3g (pair)", em, ez)
				}
				// The forward pass may change msa and pair afterwards (a
				// stack's next block does): the tape must not depend on them.
				if err := k.Zero(msa); err != nil {
					t.Fatal(err)
				}
				if err := k.Zero(pair); err != nil {
					t.Fatal(err)
				}

				dm, dz := backendtest.Put(t, k, convertEvo[T](in.cotMSA)), backendtest.Put(t, k, convertEvo[T](in.cotPair))
				g := p.ZerosLike()
				if err := b.Backward(&tape, dm, dz, g); err != nil {
					t.Fatal(err)
				}
				eDm := bkRelErr(backendtest.Get(t, k, dm), wantDm)
				eDz := bkRelErr(backendtest.Get(t, k, dz), wantDz)
				eG, worst := bkGradErrors(t, bkArrays(g.tensors()), bkArrays(wantG.tensors()))
				t.Logf("dmsa error %.2e, dpair error %.2e; parameter gradients %.2e (%s)", eDm, eDz, eG, worst)
				if eDm > tol || eDz > tol {
					t.Errorf("dmsa, dpair: relative errors %.3g, %.3g vs EvoformerBlockParams.Backward > %.0e", eDm, eDz, tol)
				}
				if eG > tol {
					t.Errorf("gradient %s: relative error %.3g vs EvoformerBlockParams.Backward > %.0e", worst, eG, tol)
				}
			})
		}
	}
}

// TestEvoformerBlockBackendBackwardDispatch checks that ForwardTape and
// Backward on CPU tensors are EvoformerBlockParams.Forward (rng = nil) and
// Backward, bit for bit.
func TestEvoformerBlockBackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testEvoformerBlockBackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testEvoformerBlockBackwardDispatch[float32](t) })
}

func testEvoformerBlockBackwardDispatch[T num.Float](t *testing.T) {
	const s, n = 4, 5
	k := backend.CPU[T]()
	for _, tc := range blockGradCases {
		cfg := bkBlockConfig(tc.global, tc.chunked)
		p := randomBlock[T](t, cfg, 111)
		in := bkBlockInputs(cfg, s, n, 112)
		wantM, wantZ, wantDm, wantDz, wantG := blockReference(t, p, in)
		b, err := NewEvoformerBlock(k, p)
		if err != nil {
			t.Fatal(err)
		}
		msa, pair := convertEvo[T](in.msa), convertEvo[T](in.pair)
		var tape EvoformerBlockTape[T]
		if err := b.ForwardTape(backend.Host[T](msa), backend.Host[T](pair), backend.Host[T](convertEvo[T](in.msaMask)),
			backend.Host[T](convertEvo[T](in.pairMask)), s, n, &tape); err != nil {
			t.Fatal(err)
		}
		dm, dz, g := convertEvo[T](in.cotMSA), convertEvo[T](in.cotPair), p.ZerosLike()
		if err := b.Backward(&tape, backend.Host[T](dm), backend.Host[T](dz), g); err != nil {
			t.Fatal(err)
		}
		if !tape.host {
			t.Errorf("%s: the tape is not of the CPU path", tc.name)
		}
		bkExact(t, tc.name+" msa", msa, wantM)
		bkExact(t, tc.name+" pair", pair, wantZ)
		bkExact(t, tc.name+" dmsa", dm, wantDm)
		bkExact(t, tc.name+" dpair", dz, wantDz)
		want := bkArrays(wantG.tensors())
		for name, got := range bkArrays(g.tensors()) {
			bkExact(t, tc.name+" gradient "+name, got, want[name])
		}
		tape.Free()
		b.Close()
	}
}

// TestEvoformerBlockBackendBackwardAccumulates checks that Backward
// replaces dmsa and dpair by the inputs' gradients (the same on every
// call) and adds to grad: two calls on the same tape give twice one call's
// parameter gradients; grad is optional.
func TestEvoformerBlockBackendBackwardAccumulates(t *testing.T) {
	// Both calls compute the same values in the same order and x + x is
	// exact, so the CPU backend (both paths) doubles exactly; 1e-15 of the
	// array's max allows a GPU backend an order-dependent last bit.
	const s, n, tol = 3, 4, 1e-15
	for _, be := range backendtest.Backends[float64](t) {
		for _, composed := range []bool{false, true} {
			if !composed && be.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			for _, global := range []bool{false, true} {
				if global && be.Name != "cpu" {
					continue // the block's accumulation is the same for both kinds; spare the emulation's time
				}
				t.Run(fmt.Sprintf("%s/composed=%v/global=%v", be.Name, composed, global), func(t *testing.T) {
					k := be.K
					cfg := bkBlockConfig(global, true)
					p := randomBlock[float64](t, cfg, 121)
					in := bkBlockInputs(cfg, s, n, 122)
					b, err := NewEvoformerBlock(k, p)
					if err != nil {
						t.Fatal(err)
					}
					defer b.Close()
					if composed {
						b.compose()
					}
					var tape EvoformerBlockTape[float64]
					defer tape.Free()
					if err := b.ForwardTape(backendtest.Put(t, k, in.msa), backendtest.Put(t, k, in.pair),
						backendtest.Put(t, k, in.msaMask), backendtest.Put(t, k, in.pairMask), s, n, &tape); err != nil {
						t.Fatal(err)
					}
					run := func(g *EvoformerBlockParams[float64]) (dm, dz []float64) {
						t.Helper()
						dmt, dzt := backendtest.Put(t, k, in.cotMSA), backendtest.Put(t, k, in.cotPair)
						if err := b.Backward(&tape, dmt, dzt, g); err != nil {
							t.Fatal(err)
						}
						return backendtest.Get(t, k, dmt), backendtest.Get(t, k, dzt)
					}
					g1, g2 := p.ZerosLike(), p.ZerosLike()
					dm1, dz1 := run(g1)
					run(g2)
					dm2, dz2 := run(g2)
					bkExact(t, "dmsa of a second call", dm2, dm1)
					bkExact(t, "dpair of a second call", dz2, dz1)
					two := bkArrays(g2.tensors())
					for name, one := range bkArrays(g1.tensors()) {
						bkCheckDoubled(t, name, two[name], one, tol)
					}
					dm3, dz3 := run(nil)
					bkExact(t, "dmsa without grad", dm3, dm1)
					bkExact(t, "dpair without grad", dz3, dz1)
				})
			}
		}
	}
}

// TestEvoformerBlockBackendBackwardErrors checks the errors of
// ForwardTape and Backward on both paths.
func TestEvoformerBlockBackendBackwardErrors(t *testing.T) {
	cfg := smallEvoConfig(false)
	p := randomBlock[float64](t, cfg, 131)
	k := backend.CPU[float64]()
	const s, n = 2, 3
	cm, cz := cfg.MSAChannels, cfg.PairChannels
	h := func(l int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, l)) }
	in := bkBlockInputs(cfg, s, n, 132)
	mm, pm := backend.Host[float64](in.msaMask), backend.Host[float64](in.pairMask)
	fresh := func() (msa, pair backend.Tensor[float64]) {
		return backend.Host[float64](append([]float64(nil), in.msa...)), backend.Host[float64](append([]float64(nil), in.pair...))
	}
	wrong := randomBlock[float64](t, smallEvoConfig(true), 133)
	for _, composed := range []bool{false, true} {
		name := fmt.Sprintf("composed=%v/", composed)
		b, err := NewEvoformerBlock(k, p)
		if err != nil {
			t.Fatal(err)
		}
		other, err := NewEvoformerBlock(k, p)
		if err != nil {
			t.Fatal(err)
		}
		if composed {
			b.compose()
			other.compose()
		}
		var tape, otherTape EvoformerBlockTape[float64]
		msa, pair := fresh()
		if err := b.ForwardTape(msa, pair, mm, pm, s, n, &tape); err != nil {
			t.Fatal(err)
		}
		msa, pair = fresh()
		if err := other.ForwardTape(msa, pair, mm, pm, s, n, &otherTape); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			want error
			run  func() error
		}{
			{"nil tape", ErrConfig, func() error { return b.Backward(nil, h(s*n*cm), h(n*n*cz), nil) }},
			{"empty tape", ErrConfig, func() error { return b.Backward(new(EvoformerBlockTape[float64]), h(s*n*cm), h(n*n*cz), nil) }},
			{"tape of another block", ErrConfig, func() error { return b.Backward(&otherTape, h(s*n*cm), h(n*n*cz), nil) }},
			{"missing dmsa", num.ErrShape, func() error { return b.Backward(&tape, nil, h(n*n*cz), nil) }},
			{"short dmsa", num.ErrShape, func() error { return b.Backward(&tape, h(s*n*cm-1), h(n*n*cz), nil) }},
			{"missing dpair", num.ErrShape, func() error { return b.Backward(&tape, h(s*n*cm), nil, nil) }},
			{"long dpair", num.ErrShape, func() error { return b.Backward(&tape, h(s*n*cm), h(n*n*cz+1), nil) }},
			{"grad of another config", ErrConfig, func() error { return b.Backward(&tape, h(s*n*cm), h(n*n*cz), wrong) }},
			{"ForwardTape/nil tape", ErrConfig, func() error {
				msa, pair := fresh()
				return b.ForwardTape(msa, pair, mm, pm, s, n, nil)
			}},
			{"ForwardTape/short pair", num.ErrShape, func() error {
				var tp EvoformerBlockTape[float64]
				msa, _ := fresh()
				return b.ForwardTape(msa, h(n*n*cz-1), mm, pm, s, n, &tp)
			}},
			{"ForwardTape/missing msa mask", num.ErrShape, func() error {
				var tp EvoformerBlockTape[float64]
				msa, pair := fresh()
				return b.ForwardTape(msa, pair, nil, pm, s, n, &tp)
			}},
			{"ForwardTape/no sequences", num.ErrShape, func() error {
				var tp EvoformerBlockTape[float64]
				return b.ForwardTape(h(0), h(n*n*cz), h(0), pm, 0, n, &tp)
			}},
		} {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Errorf("%s%s: error %v, want one wrapping %v", name, tc.name, err, tc.want)
			}
		}
		// A failed ForwardTape leaves the tape empty.
		msa, _ = fresh()
		if err := b.ForwardTape(msa, h(1), mm, pm, s, n, &tape); !errors.Is(err, num.ErrShape) {
			t.Errorf("%sForwardTape with a short pair: error %v", name, err)
		}
		if err := b.Backward(&tape, h(s*n*cm), h(n*n*cz), nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after a failed ForwardTape: error %v, want ErrConfig", name, err)
		}
		// A freed tape holds nothing.
		msa, pair = fresh()
		if err := b.ForwardTape(msa, pair, mm, pm, s, n, &tape); err != nil {
			t.Fatal(err)
		}
		tape.Free()
		if err := b.Backward(&tape, h(s*n*cm), h(n*n*cz), nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after Free: error %v, want ErrConfig", name, err)
		}
		b.Close()
		if err := b.Backward(&otherTape, h(s*n*cm), h(n*n*cz), nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward on a closed block: error %v, want ErrConfig", name, err)
		}
		msa, pair = fresh()
		if err := b.ForwardTape(msa, pair, mm, pm, s, n, &tape); !errors.Is(err, ErrConfig) {
			t.Errorf("%sForwardTape on a closed block: error %v, want ErrConfig", name, err)
		}
		otherTape.Free()
		other.Close()
	}
	var zero EvoformerBlockTape[float64]
	zero.Free() // a zero tape may be freed
}

// TestEvoformerBlocksBackendBackward checks EvoformerBlocks.ForwardTape and
// Backward, a two-block stack of each kind, against EvoformerStack.Forward
// (rng = nil) and Backward on every backend of the build. The tolerances
// are TestEvoformerBlockBackendBackward's doubled (two blocks compound the
// round-off of one).
func TestEvoformerBlocksBackendBackward(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testEvoformerBlocksBackward[float64](t, 2e-11) })
	t.Run("float32", func(t *testing.T) { testEvoformerBlocksBackward[float32](t, 2e-4) })
}

func testEvoformerBlocksBackward[T num.Float](t *testing.T, tol float64) {
	const s, n = 4, 5
	for _, global := range []bool{false, true} {
		cfg := bkBlockConfig(global, false)
		st := &EvoformerStack[T]{Config: cfg}
		for i := range 2 {
			st.Blocks = append(st.Blocks, randomBlock[T](t, cfg, 111+uint64(i)))
		}
		in := bkBlockInputs(cfg, s, n, 113)
		msaMask, pairMask := convertEvo[T](in.msaMask), convertEvo[T](in.pairMask)
		wantM, wantZ := convertEvo[T](in.msa), convertEvo[T](in.pair)
		var c EvoformerStackCache[T]
		if err := st.Forward(wantM, wantZ, msaMask, pairMask, s, n, nil, &c); err != nil {
			t.Fatal(err)
		}
		wantDm, wantDz, wantG := convertEvo[T](in.cotMSA), convertEvo[T](in.cotPair), st.ZerosLike()
		if err := st.Backward(&c, wantDm, wantDz, wantG); err != nil {
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
			var tape EvoformerBlocksTape[T]
			if err := bs.ForwardTape(msa, pair, backendtest.Put(t, k, msaMask), backendtest.Put(t, k, pairMask), s, n, &tape); err != nil {
				t.Fatalf("%s global=%v: %v", be.Name, global, err)
			}
			if em, ez := bkRelErr(backendtest.Get(t, k, msa), wantM), bkRelErr(backendtest.Get(t, k, pair), wantZ); em > tol || ez > tol {
				t.Errorf("%s global=%v: outputs differ from EvoformerStack.Forward by %.3g (msa), %.3g (pair)", be.Name, global, em, ez)
			}
			dm, dz := backendtest.Put(t, k, convertEvo[T](in.cotMSA)), backendtest.Put(t, k, convertEvo[T](in.cotPair))
			g := st.ZerosLike()
			if err := bs.Backward(&tape, dm, dz, g); err != nil {
				t.Fatal(err)
			}
			eDm, eDz := bkRelErr(backendtest.Get(t, k, dm), wantDm), bkRelErr(backendtest.Get(t, k, dz), wantDz)
			eG, worst := 0.0, ""
			for i := range st.Blocks {
				if e, w := bkGradErrors(t, bkArrays(g.Blocks[i].tensors()), bkArrays(wantG.Blocks[i].tensors())); e > eG {
					eG, worst = e, w
				}
			}
			t.Logf("%s global=%v: dmsa %.2e, dpair %.2e, parameters %.2e (%s)", be.Name, global, eDm, eDz, eG, worst)
			if eDm > tol || eDz > tol || eG > tol {
				t.Errorf("%s global=%v: gradients differ from EvoformerStack.Backward: dmsa %.3g, dpair %.3g, %s %.3g (> %g)", be.Name, global, eDm, eDz, worst, eG, tol)
			}
			if err := bs.Backward(&EvoformerBlocksTape[T]{}, dm, dz, nil); !errors.Is(err, ErrConfig) {
				t.Errorf("Backward with an empty tape: error %v, want ErrConfig", err)
			}
			tape.Free()
			bs.Close()
		}
	}
}
