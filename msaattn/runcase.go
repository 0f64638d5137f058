package msaattn

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// Case names (meta.case of a reference case) that RunCase runs; NewBench
// takes the same names.
const (
	CaseRow          = "msa_row_attention"
	CaseColumn       = "msa_column_attention"
	CaseGlobalColumn = "msa_column_global_attention"
)

// RunCase runs the module a reference case names (meta.case is one of
// CaseRow, CaseColumn, CaseGlobalColumn) on the case's parameters
// (params/<module>/...) and inputs (in/msa, in/msa_mask and, for row
// attention, in/z) in dtype "float32" or "float64", and returns a new set
// with out/msa_update. With grad it also returns the gradients of
// Σ out/msa_update ⊙ in/cot_msa_update: grad/in/msa (and grad/in/z) and
// grad/params/<module>/<name> for every parameter, under the case's names.
//
// The module's sizes come from meta.config (c_m, c_z, c_e, heads, c_hidden)
// and from the shape of in/msa. RunCase fails on a missing or mis-shaped
// key, on a configuration it cannot honour (a mask bias other than 1e9 or a
// mask-mean epsilon other than 1e-10), and on any params/ or in/ key it did
// not use (in/cot_* is only used with grad).
func RunCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	c := casekit.New(cs, "msaattn", nil)
	meta, err := c.Meta()
	if err != nil {
		return nil, err
	}
	c.Prefix = "msaattn: case " + meta.Case
	run, err := casekit.ByDType(c, dtype, runCase[float32], runCase[float64])
	if err != nil {
		return nil, err
	}
	if _, err := run(c, meta, grad); err != nil {
		return nil, err
	}
	if err := c.CheckUsed(grad); err != nil {
		return nil, err
	}
	return c.Result()
}

// checkChannels records an error in c unless in/msa has the channels
// meta.config[key] names.
func checkChannels(c *casekit.Case, got, want int, key string) {
	if got != want {
		c.Errorf("in/msa has %d channels, meta.config.%s = %d: %w", got, key, want, num.ErrShape)
	}
}

func runCase[T num.Float](c *casekit.Case, meta *casekit.Meta, grad bool) (*params.Set, error) {
	meta.Want("inf", maskBias)
	sh, err := c.Dims("in/msa", casekit.Any, casekit.Any, casekit.Any)
	if err != nil {
		return nil, err
	}
	s, n, ch := sh[0], sh[1], sh[2]
	msa := casekit.Get[T](c, "in/msa", s, n, ch)
	mask := casekit.Get[T](c, "in/msa_mask", s, n)
	var cot []T
	if grad {
		cot = casekit.Get[T](c, "in/cot_msa_update", s, n, ch)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	msaShape := []int{s, n, ch}

	switch meta.Case {
	case CaseRow:
		cfg := RowConfig{MSAChannels: meta.Int("c_m"), PairChannels: meta.Int("c_z"), Heads: meta.Int("heads"), HeadChannels: meta.Int("c_hidden")}
		checkChannels(c, ch, cfg.MSAChannels, "c_m")
		if err := c.Err(); err != nil {
			return nil, err
		}
		p, err := LoadRowParams[T](c.In.Sub("params/"+RowPrefix), cfg)
		if err != nil {
			return nil, err
		}
		z := casekit.Get[T](c, "in/z", n, n, cfg.PairChannels)
		if err := c.Err(); err != nil {
			return nil, err
		}
		m := &RowAttention[T]{Config: cfg, Params: p}
		var cache RowCache[T]
		y, err := m.Forward(msa, z, mask, s, n, &cache)
		if err != nil {
			return nil, err
		}
		casekit.Put(c, "out/msa_update", msaShape, y)
		if grad {
			g, err := m.Backward(&cache, cot)
			if err != nil {
				return nil, err
			}
			casekit.Put(c, "grad/in/msa", msaShape, g.MSA)
			casekit.Put(c, "grad/in/z", []int{n, n, cfg.PairChannels}, g.Z)
			if err := g.Params.Save(c.Out, "grad/params/"); err != nil {
				return nil, err
			}
		}

	case CaseColumn:
		cfg := ColumnConfig{MSAChannels: meta.Int("c_m"), Heads: meta.Int("heads"), HeadChannels: meta.Int("c_hidden")}
		checkChannels(c, ch, cfg.MSAChannels, "c_m")
		if err := c.Err(); err != nil {
			return nil, err
		}
		p, err := LoadColumnParams[T](c.In.Sub("params/"+ColumnPrefix), cfg)
		if err != nil {
			return nil, err
		}
		m := &ColumnAttention[T]{Config: cfg, Params: p}
		var cache ColumnCache[T]
		y, err := m.Forward(msa, mask, s, n, &cache)
		if err != nil {
			return nil, err
		}
		casekit.Put(c, "out/msa_update", msaShape, y)
		if grad {
			g, err := m.Backward(&cache, cot)
			if err != nil {
				return nil, err
			}
			casekit.Put(c, "grad/in/msa", msaShape, g.MSA)
			if err := g.Params.Save(c.Out, "grad/params/"); err != nil {
				return nil, err
			}
		}

	case CaseGlobalColumn:
		meta.Want("mask_mean_eps", GlobalMaskEps)
		cfg := GlobalColumnConfig{MSAChannels: meta.Int("c_e"), Heads: meta.Int("heads"), HeadChannels: meta.Int("c_hidden")}
		checkChannels(c, ch, cfg.MSAChannels, "c_e")
		if err := c.Err(); err != nil {
			return nil, err
		}
		p, err := LoadGlobalColumnParams[T](c.In.Sub("params/"+GlobalColumnPrefix), cfg)
		if err != nil {
			return nil, err
		}
		m := &GlobalColumnAttention[T]{Config: cfg, Params: p}
		var cache GlobalColumnCache[T]
		y, err := m.Forward(msa, mask, s, n, &cache)
		if err != nil {
			return nil, err
		}
		casekit.Put(c, "out/msa_update", msaShape, y)
		if grad {
			g, err := m.Backward(&cache, cot)
			if err != nil {
				return nil, err
			}
			casekit.Put(c, "grad/in/msa", msaShape, g.MSA)
			if err := g.Params.Save(c.Out, "grad/params/"); err != nil {
				return nil, err
			}
		}

	default:
		return nil, fmt.Errorf("msaattn: case %q is not an MSA attention case (want %s, %s or %s)", meta.Case, CaseRow, CaseColumn, CaseGlobalColumn)
	}
	return c.Result()
}
