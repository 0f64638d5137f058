package msaattn

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
)

// Flop counts. Only the matrix products are counted, at 2·m·n·k each
// (gemm.Flops); layer norms, softmax exponentials, sigmoids and gating
// products are O(S·N·c) or O(S·N²·H) elementwise work and are left out.
// With R = S·N MSA positions, H heads of c channels:
//
//	                       row (Alg. 7)      column (Alg. 8)   global (Alg. 19)
//	projections            2·R·c_m·4Hc       2·R·c_m·4Hc       2·R·c_e·(Hc + 2c) + 2·N·c_e·Hc
//	logits and a·v         4·S·H·N²·c        4·N·H·S²·c        4·N·H·S·c
//	pair bias              2·N²·c_z·H        —                 —
//	output projection      2·R·Hc·c_m        2·R·Hc·c_m        2·R·Hc·c_e
//
// The backward pass does two products for each forward product (one per
// operand); the streaming attention core also recomputes the logits, so its
// backward costs 5/2 of its forward; global attention recomputes its gates
// (one more 2·R·c_e·Hc). Forward plus backward is therefore 3× the
// projections and 3.5× the attention products.

// rowFlops returns the products of row attention on S sequences and N
// residues: Forward, or Forward and Backward.
func rowFlops(cfg RowConfig, s, n int, backward bool) float64 {
	hc := cfg.Heads * cfg.HeadChannels
	proj := gemm.Flops(s*n, 4*hc, cfg.MSAChannels) + gemm.Flops(s*n, cfg.MSAChannels, hc) + gemm.Flops(n*n, cfg.Heads, cfg.PairChannels)
	att := float64(s*cfg.Heads) * 2 * gemm.Flops(n, n, cfg.HeadChannels)
	if backward {
		return 3*proj + 3.5*att
	}
	return proj + att
}

// columnFlops returns the products of column attention (see rowFlops).
func columnFlops(cfg ColumnConfig, s, n int, backward bool) float64 {
	hc := cfg.Heads * cfg.HeadChannels
	proj := gemm.Flops(s*n, 4*hc, cfg.MSAChannels) + gemm.Flops(s*n, cfg.MSAChannels, hc)
	att := float64(n*cfg.Heads) * 2 * gemm.Flops(s, s, cfg.HeadChannels)
	if backward {
		return 3*proj + 3.5*att
	}
	return proj + att
}

// globalColumnFlops returns the products of global column attention (see
// rowFlops).
func globalColumnFlops(cfg GlobalColumnConfig, s, n int, backward bool) float64 {
	ce, c := cfg.MSAChannels, cfg.HeadChannels
	hc := cfg.Heads * c
	gate := gemm.Flops(s*n, hc, ce)
	proj := gemm.Flops(s*n, 2*c, ce) + gate + gemm.Flops(n, hc, ce) + gemm.Flops(s*n, ce, hc)
	att := float64(n*cfg.Heads) * 2 * gemm.Flops(1, s, c)
	if backward {
		return 3*proj + gate + 3.5*att
	}
	return proj + att
}

// Bench module names accepted by NewBench (the reference-case names).
var benchModules = []string{CaseRow, CaseColumn, CaseGlobalColumn}

// NewBench returns a closure that runs one MSA attention at AF2's default
// configuration (DefaultRowConfig, DefaultColumnConfig or
// DefaultGlobalColumnConfig) on s sequences and n residues, with standard
// normal inputs, every position present, and random parameters (AF2's
// initialisers, with the output weights made non-zero so that the backward
// pass works on non-zero numbers), in dtype "float32" or "float64": Forward
// without a cache, or Forward with a cache then Backward when backward is
// true. module is CaseRow, CaseColumn or CaseGlobalColumn. flops is the
// count of matrix-product operations of one run (see the table above).
// It is what `foldkit bench` runs for these modules.
func NewBench(module string, n, s int, dtype string, backward bool) (run func() error, flops float64, err error) {
	if n < 1 || s < 1 {
		return nil, 0, fmt.Errorf("msaattn: NewBench: n = %d and s = %d, want both positive: %w", n, s, num.ErrShape)
	}
	switch dtype {
	case "float32":
		return newBench[float32](module, n, s, backward)
	case "float64":
		return newBench[float64](module, n, s, backward)
	}
	return nil, 0, fmt.Errorf("msaattn: NewBench: dtype %q, want float32 or float64", dtype)
}

func newBench[T num.Float](module string, n, s int, backward bool) (func() error, float64, error) {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(s)))
	normal := func(k int) []T {
		x := make([]T, k)
		for i := range x {
			x[i] = T(rng.NormFloat64())
		}
		return x
	}
	mask := make([]T, s*n)
	for i := range mask {
		mask[i] = 1
	}
	switch module {
	case CaseRow:
		cfg := DefaultRowConfig()
		p, err := NewRowParams[T](cfg, rng)
		if err != nil {
			return nil, 0, err
		}
		copy(p.Attention.OutputW, normal(len(p.Attention.OutputW)))
		m := &RowAttention[T]{Config: cfg, Params: p}
		msa, z, dout := normal(s*n*cfg.MSAChannels), normal(n*n*cfg.PairChannels), normal(s*n*cfg.MSAChannels)
		return func() error {
			if !backward {
				_, err := m.Forward(msa, z, mask, s, n, nil)
				return err
			}
			var c RowCache[T]
			if _, err := m.Forward(msa, z, mask, s, n, &c); err != nil {
				return err
			}
			_, err := m.Backward(&c, dout)
			return err
		}, rowFlops(cfg, s, n, backward), nil
	case CaseColumn:
		cfg := DefaultColumnConfig()
		p, err := NewColumnParams[T](cfg, rng)
		if err != nil {
			return nil, 0, err
		}
		copy(p.Attention.OutputW, normal(len(p.Attention.OutputW)))
		m := &ColumnAttention[T]{Config: cfg, Params: p}
		msa, dout := normal(s*n*cfg.MSAChannels), normal(s*n*cfg.MSAChannels)
		return func() error {
			if !backward {
				_, err := m.Forward(msa, mask, s, n, nil)
				return err
			}
			var c ColumnCache[T]
			if _, err := m.Forward(msa, mask, s, n, &c); err != nil {
				return err
			}
			_, err := m.Backward(&c, dout)
			return err
		}, columnFlops(cfg, s, n, backward), nil
	case CaseGlobalColumn:
		cfg := DefaultGlobalColumnConfig()
		p, err := NewGlobalColumnParams[T](cfg, rng)
		if err != nil {
			return nil, 0, err
		}
		copy(p.OutputW, normal(len(p.OutputW)))
		m := &GlobalColumnAttention[T]{Config: cfg, Params: p}
		msa, dout := normal(s*n*cfg.MSAChannels), normal(s*n*cfg.MSAChannels)
		return func() error {
			if !backward {
				_, err := m.Forward(msa, mask, s, n, nil)
				return err
			}
			var c GlobalColumnCache[T]
			if _, err := m.Forward(msa, mask, s, n, &c); err != nil {
				return err
			}
			_, err := m.Backward(&c, dout)
			return err
		}, globalColumnFlops(cfg, s, n, backward), nil
	}
	return nil, 0, fmt.Errorf("msaattn: NewBench: module %q, want one of %q", module, benchModules)
}
