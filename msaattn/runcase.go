package msaattn

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
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
	return RunCaseOn(cs, dtype, grad, backend.Pair{})
}

// RunCaseOn is RunCase with the forward pass on the backend of k for dtype
// (Row, Column or GlobalColumn on that backend); with no backend for dtype
// in k it is RunCase. Gradients are computed on the CPU only: grad with a
// backend gives an error wrapping casekit.ErrGradBackend.
func RunCaseOn(cs *params.Set, dtype string, grad bool, k backend.Pair) (*params.Set, error) {
	c := casekit.New(cs, "msaattn", nil)
	meta, err := c.Meta()
	if err != nil {
		return nil, err
	}
	c.Prefix = "msaattn: case " + meta.Case
	type runner func(*casekit.Case, *casekit.Meta, bool) (*params.Set, error)
	run, err := casekit.ByDType[runner](c, dtype,
		func(c *casekit.Case, m *casekit.Meta, grad bool) (*params.Set, error) {
			return runCase(c, m, grad, backend.For[float32](k))
		},
		func(c *casekit.Case, m *casekit.Meta, grad bool) (*params.Set, error) {
			return runCase(c, m, grad, backend.For[float64](k))
		})
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

func runCase[T num.Float](c *casekit.Case, meta *casekit.Meta, grad bool, k backend.Kernels[T]) (*params.Set, error) {
	if grad && k != nil {
		return nil, c.Fail(fmt.Errorf("on %s: %w", k.Name(), casekit.ErrGradBackend))
	}
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
		var y []T
		if k != nil {
			y, err = runOn(k, NewRow[T], m, [][]T{msa, z, mask}, len(msa), func(d *Row[T], in []backend.Tensor[T], out backend.Tensor[T]) error {
				return d.Forward(in[0], in[1], in[2], s, n, out)
			})
		} else {
			y, err = m.Forward(msa, z, mask, s, n, &cache)
		}
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
		var y []T
		if k != nil {
			y, err = runOn(k, NewColumn[T], m, [][]T{msa, mask}, len(msa), func(d *Column[T], in []backend.Tensor[T], out backend.Tensor[T]) error {
				return d.Forward(in[0], in[1], s, n, out)
			})
		} else {
			y, err = m.Forward(msa, mask, s, n, &cache)
		}
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
		var y []T
		if k != nil {
			y, err = runOn(k, NewGlobalColumn[T], m, [][]T{msa, mask}, len(msa), func(d *GlobalColumn[T], in []backend.Tensor[T], out backend.Tensor[T]) error {
				return d.Forward(in[0], in[1], s, n, out)
			})
		} else {
			y, err = m.Forward(msa, mask, s, n, &cache)
		}
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

// closer is a module on a backend.
type closer interface{ Close() }

// runOn builds module m on backend k with build, runs fwd on the host
// inputs in and returns its output of outLen elements, freeing everything.
func runOn[T num.Float, M any, D closer](k backend.Kernels[T], build func(backend.Kernels[T], M) (D, error), m M, in [][]T, outLen int, fwd func(d D, in []backend.Tensor[T], out backend.Tensor[T]) error) ([]T, error) {
	d, err := build(k, m)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	res, err := backend.Run(k, in, []int{outLen}, func(din, dout []backend.Tensor[T]) error { return fwd(d, din, dout[0]) })
	if err != nil {
		return nil, err
	}
	return res[0], nil
}
