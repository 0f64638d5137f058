package recycle

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// CaseName is the meta.case of the reference cases RunCase runs.
const CaseName = "recycling_embedder"

// RunCase runs a recycling_embedder reference case (cs as params.Open reads
// the file: meta, params/ with AF2 names relative to
// alphafold/alphafold_iteration/evoformer/, in/) in dtype "float32" or
// "float64" and returns out/msa_first_row_update and out/pair_update and,
// with grad, the gradients of Σ out·cot over both outputs:
// grad/in/prev_msa_first_row, grad/in/prev_pair, grad/in/prev_pseudo_beta
// (zero: the distogram is piecewise constant) and grad/params/<AF2 name>.
//
// The sizes and bins come from meta.config (c_m, c_z, min_bin, max_bin,
// no_bins, upper_last; AF2's values where a bin key is absent). The error
// names a missing or mis-shaped key, another case kind, or any params/ or
// in/ key the case did not use (in/cot_ keys are used only with grad).
func RunCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	return RunCaseOn(cs, dtype, grad, backend.Pair{})
}

// RunCaseOn is RunCase with the forward pass on the backend of k for dtype
// (Embedder on that backend, the positions' distogram on the host); with no
// backend for dtype in k it is RunCase. Gradients are computed on the CPU
// only: grad with a backend gives an error wrapping casekit.ErrGradBackend.
func RunCaseOn(cs *params.Set, dtype string, grad bool, k backend.Pair) (*params.Set, error) {
	c := casekit.New(cs, "recycle", ErrConfig)
	m, err := c.Meta()
	if err != nil {
		return nil, err
	}
	if err := c.CheckCase(m.Case, CaseName); err != nil {
		return nil, err
	}
	cfg := DefaultConfig()
	cfg.CM, cfg.CZ, cfg.NumBins = m.Int("c_m"), m.Int("c_z"), m.IntOr("no_bins", cfg.NumBins)
	cfg.MinBin, cfg.MaxBin = m.FloatOr("min_bin", cfg.MinBin), m.FloatOr("max_bin", cfg.MaxBin)
	cfg.UpperLast = m.FloatOr("upper_last", cfg.UpperLast)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	type runner func(*casekit.Case, Config, bool) error
	run, err := casekit.ByDType[runner](c, dtype,
		func(c *casekit.Case, cfg Config, grad bool) error {
			return runCase(c, cfg, grad, backend.For[float32](k))
		},
		func(c *casekit.Case, cfg Config, grad bool) error {
			return runCase(c, cfg, grad, backend.For[float64](k))
		})
	if err != nil {
		return nil, err
	}
	if err := run(c, cfg, grad); err != nil {
		return nil, err
	}
	if err := c.CheckUsed(grad); err != nil {
		return nil, err
	}
	return c.Result()
}

// runCase runs the case in T, writing its results to c.Out; the forward
// pass runs on k unless it is nil.
func runCase[T num.Float](c *casekit.Case, cfg Config, grad bool, k backend.Kernels[T]) error {
	if grad && k != nil {
		return fmt.Errorf("recycle: RunCase on %s: %w", k.Name(), casekit.ErrGradBackend)
	}
	p, err := LoadParams[T](c.In.Sub("params/"), cfg)
	if err != nil {
		return err
	}
	shape, err := c.Dims("in/prev_pseudo_beta", casekit.Any, 3)
	if err != nil {
		return err
	}
	n, cm, cz := shape[0], cfg.CM, cfg.CZ
	pb := casekit.Get[T](c, "in/prev_pseudo_beta", n, 3)
	row := casekit.Get[T](c, "in/prev_msa_first_row", n, cm)
	pair := casekit.Get[T](c, "in/prev_pair", n, n, cz)
	if err := c.Err(); err != nil {
		return err
	}
	msaOut, pairOut := make([]T, n*cm), make([]T, n*n*cz)
	var cache *Cache[T]
	if grad {
		cache = new(Cache[T])
	}
	if k != nil {
		err = forwardOn(k, p, row, pair, pb, n, msaOut, pairOut)
	} else {
		err = Forward(p, row, pair, pb, msaOut, pairOut, cache)
	}
	if err != nil {
		return err
	}
	casekit.Put(c, "out/msa_first_row_update", []int{n, cm}, msaOut)
	casekit.Put(c, "out/pair_update", []int{n, n, cz}, pairOut)
	if !grad {
		return c.Err()
	}
	cotRow := casekit.Get[T](c, "in/cot_msa_first_row_update", n, cm)
	cotPair := casekit.Get[T](c, "in/cot_pair_update", n, n, cz)
	if err := c.Err(); err != nil {
		return err
	}
	dRow, dPair := make([]T, n*cm), make([]T, n*n*cz)
	g := p.ZerosLike()
	if err := Backward(p, cache, cotRow, cotPair, dRow, dPair, g); err != nil {
		return err
	}
	casekit.Put(c, "grad/in/prev_msa_first_row", []int{n, cm}, dRow)
	casekit.Put(c, "grad/in/prev_pair", []int{n, n, cz}, dPair)
	casekit.Put(c, "grad/in/prev_pseudo_beta", []int{n, 3}, make([]T, n*3))
	if err := g.Save(c.Out, "grad/params/"); err != nil {
		return err
	}
	return c.Err()
}

// forwardOn runs the embedder p on backend k for host inputs, writing the
// host outputs msaOut and pairOut.
func forwardOn[T num.Float](k backend.Kernels[T], p *Params[T], row, pair, pb []T, n int, msaOut, pairOut []T) error {
	m, err := NewEmbedder(k, p)
	if err != nil {
		return err
	}
	defer m.Close()
	res, err := backend.Run(k, [][]T{row, pair}, []int{len(msaOut), len(pairOut)}, func(in, out []backend.Tensor[T]) error {
		return m.Forward(in[0], in[1], pb, n, out[0], out[1])
	})
	if err != nil {
		return err
	}
	copy(msaOut, res[0])
	copy(pairOut, res[1])
	return nil
}
