package alphafold

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/ipa"
	"github.com/foldkit/foldkit/residue"
)

// StructureModuleFlops returns the floating-point operations of one
// structure-module Forward (backward false) or Forward followed by Backward
// (backward true) for n residues, counting the matrix products only, at
// 2·m·n·k each (gemm.Flops): per iteration IPA (ipa.Flops), the transition
// (TransitionLayers products [N, c_s]·[c_s, c_s]), affine_update and the
// angle ResNet (two input projections, two products per block and the
// output layer), plus the initial projection once. The frame, torsion and
// atom arithmetic is O(N) and left out. The backward pass does two products
// for each forward product (IPA's count is ipa.Flops'), so forward plus
// backward is three times the forward count.
func StructureModuleFlops(cfg StructureModuleConfig, n int, backward bool) float64 {
	cs, c := cfg.IPA.CS, cfg.ResnetChannels
	dense := float64(cfg.TransitionLayers)*gemm.Flops(n, cs, cs) + gemm.Flops(n, 6, cs) +
		2*gemm.Flops(n, c, cs) + 2*float64(cfg.ResnetBlocks)*gemm.Flops(n, c, c) + gemm.Flops(n, NumAngleOutputs, c)
	perIter := dense + ipa.Flops(cfg.IPA, n, false)
	fwd := float64(cfg.Layers)*perIter + gemm.Flops(n, cs, cs)
	if !backward {
		return fwd
	}
	return 3 * fwd
}

// NewStructureModuleBench builds the structure module with AF2's default
// configuration and random parameters (the final layers that AF2
// initialises to zero get small random weights, so that every iteration
// moves the frames and does its full work) and random inputs for n residues
// (standard-normal single and pair, random residue types, every residue
// present), and returns a closure that runs one Forward (inference, no
// cache) or, with backward, one Forward with a cache and one Backward with
// random cotangents on the positions and the final single representation,
// in dtype "float32" or "float64". s is ignored (the structure module reads
// no MSA). flops is StructureModuleFlops. It is what `foldkit bench -module
// structure_module` runs.
func NewStructureModuleBench(n, s int, dtype string, backward bool) (run func() error, flops float64, err error) {
	if n < 1 {
		return nil, 0, fmt.Errorf("alphafold: structure module bench: n = %d, want ≥ 1: %w", n, num.ErrShape)
	}
	cfg := DefaultStructureModuleConfig()
	switch dtype {
	case "float32":
		run, err = newSMBench[float32](cfg, n, backward)
	case "float64":
		run, err = newSMBench[float64](cfg, n, backward)
	default:
		return nil, 0, fmt.Errorf("alphafold: structure module bench: dtype %q, want float32 or float64: %w", dtype, ErrConfig)
	}
	if err != nil {
		return nil, 0, err
	}
	return run, StructureModuleFlops(cfg, n, backward), nil
}

func newSMBench[T num.Float](cfg StructureModuleConfig, n int, backward bool) (func() error, error) {
	rng := rand.New(rand.NewPCG(uint64(n), 20))
	p, err := NewStructureModuleParams[T](cfg, rng)
	if err != nil {
		return nil, err
	}
	// Replace the zero-initialised layers by small random ones.
	for _, w := range [][]T{p.IPA.OutputProjection.W, p.Transition[len(p.Transition)-1].W, p.AffineUpdate.W} {
		for i := range w {
			w[i] = T(0.01 * rng.NormFloat64())
		}
	}
	for _, l := range p.Sidechain.Resblock2 {
		for i := range l.W {
			l.W[i] = T(rng.NormFloat64() / math.Sqrt(float64(l.In)))
		}
	}
	normal := func(k int) []T {
		x := make([]T, k)
		for i := range x {
			x[i] = T(rng.NormFloat64())
		}
		return x
	}
	in := &StructureModuleInput[T]{Single: normal(n * cfg.IPA.CS), Pair: normal(n * n * cfg.IPA.CZ),
		AAType: make([]int, n), SeqMask: make([]T, n)}
	for i := range n {
		in.AAType[i] = rng.IntN(residue.NumRestypes)
		in.SeqMask[i] = 1
	}
	d := &StructureModuleOutput[T]{Positions: normal(cfg.Layers * n * residue.NumAtom14 * 3), Single: normal(n * cfg.IPA.CS)}
	return func() error {
		if !backward {
			_, err := p.Forward(in, nil)
			return err
		}
		var c StructureModuleCache[T]
		if _, err := p.Forward(in, &c); err != nil {
			return err
		}
		return p.Backward(&c, d, make([]T, len(in.Single)), make([]T, len(in.Pair)), nil, p.ZerosLike())
	}, nil
}
