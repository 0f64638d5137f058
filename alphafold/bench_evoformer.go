package alphafold

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
)

// EvoformerBenchModules returns the module names NewEvoformerBench accepts.
func EvoformerBenchModules() []string {
	return []string{"outer_product_mean", "msa_transition", "pair_transition", "evoformer_block", "extra_msa_block"}
}

// NewEvoformerBench builds one Evoformer part with AF2's default
// configuration (DefaultEvoformerConfig; DefaultExtraMSAConfig for
// "extra_msa_block") and AF2's initialisers, and random inputs for n
// residues and s sequences with every mask 1, and returns a closure that
// runs one forward pass (inference: no dropout, no cache) or, with
// backward, one forward pass with a cache and one backward pass, in dtype
// "float32" or "float64". module is one of EvoformerBenchModules.
//
// flops is the floating-point operation count of one call: the forward
// count of OuterProductMeanFlops, EvoformerFlops or 2·2·rows·C·n·C for a
// transition (matrix products only, a multiply-add counted as two), tripled
// with backward (the backward pass does about twice the forward's products;
// recomputation inside the backward passes is not counted).
//
// The block closures update their msa and pair in place, so repeated runs
// see changing (but statistically alike) inputs.
func NewEvoformerBench(module string, n, s int, dtype string, backward bool) (run func() error, flops float64, err error) {
	switch dtype {
	case "float32":
		return newEvoBench[float32](module, n, s, backward)
	case "float64":
		return newEvoBench[float64](module, n, s, backward)
	}
	return nil, 0, fmt.Errorf("alphafold: bench dtype %q, want float32 or float64: %w", dtype, ErrConfig)
}

func newEvoBench[T num.Float](module string, n, s int, backward bool) (func() error, float64, error) {
	if n < 1 || s < 1 {
		return nil, 0, fmt.Errorf("alphafold: bench sizes n = %d, s = %d, want ≥ 1: %w", n, s, num.ErrShape)
	}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(s)))
	randv := func(k int) []T {
		x := make([]T, k)
		for i := range x {
			x[i] = T(rng.NormFloat64())
		}
		return x
	}
	ones := func(k int) []T {
		x := make([]T, k)
		for i := range x {
			x[i] = 1
		}
		return x
	}
	mul := 1.0
	if backward {
		mul = 3
	}
	cfg := DefaultEvoformerConfig()
	switch module {
	case "outer_product_mean":
		p, err := NewOuterProductMeanParams[T](cfg.outerConfig(), rng)
		if err != nil {
			return nil, 0, err
		}
		msa, mask := randv(s*n*cfg.MSAChannels), ones(s*n)
		out := make([]T, n*n*cfg.PairChannels)
		run := func() error {
			if !backward {
				return p.Forward(msa, mask, s, n, out, nil)
			}
			var c OuterProductMeanCache[T]
			if err := p.Forward(msa, mask, s, n, out, &c); err != nil {
				return err
			}
			return p.Backward(&c, out, make([]T, len(msa)), p.ZerosLike())
		}
		return run, mul * OuterProductMeanFlops(p.Config, s, n), nil
	case "msa_transition", "pair_transition":
		tc, rows := cfg.msaTransitionConfig(), s*n
		if module == "pair_transition" {
			tc, rows = cfg.pairTransitionConfig(), n*n
		}
		p, err := NewTransitionParams[T](tc, rng)
		if err != nil {
			return nil, 0, err
		}
		x, out := randv(rows*tc.C), make([]T, rows*tc.C)
		run := func() error {
			if !backward {
				return p.Forward(x, rows, nil, out, nil)
			}
			var c TransitionCache[T]
			if err := p.Forward(x, rows, nil, out, &c); err != nil {
				return err
			}
			return p.Backward(&c, out, make([]T, len(x)), p.ZerosLike())
		}
		return run, mul * 2 * 2 * float64(rows) * float64(tc.C) * float64(tc.Factor*tc.C), nil
	case "evoformer_block", "extra_msa_block":
		if module == "extra_msa_block" {
			cfg = DefaultExtraMSAConfig()
		}
		p, err := NewEvoformerBlockParams[T](cfg, rng)
		if err != nil {
			return nil, 0, err
		}
		msa, pair := randv(s*n*cfg.MSAChannels), randv(n*n*cfg.PairChannels)
		msaMask, pairMask := ones(s*n), ones(n*n)
		run := func() error {
			if !backward {
				return p.Forward(msa, pair, msaMask, pairMask, s, n, nil, nil)
			}
			var c EvoformerBlockCache[T]
			if err := p.Forward(msa, pair, msaMask, pairMask, s, n, nil, &c); err != nil {
				return err
			}
			dm, dz := make([]T, len(msa)), make([]T, len(pair))
			copy(dm, msa)
			copy(dz, pair)
			return p.Backward(&c, dm, dz, p.ZerosLike())
		}
		return run, mul * EvoformerFlops(cfg, s, n), nil
	}
	return nil, 0, fmt.Errorf("alphafold: bench module %q, want one of %s: %w", module, strings.Join(EvoformerBenchModules(), ", "), ErrConfig)
}
