package alphafold

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// OuterProductMean is the outer product mean (supplement Algorithm 10) on
// a backend chosen by the caller, with its parameters uploaded once: the
// forward pass (inference) of OuterProductMeanParams.Forward on backend
// tensors, so that a chain of modules keeps its activations on the backend.
// ForwardTape and Backward (outer_product_mean_backend_grad.go) give its
// gradients on the same backend.
type OuterProductMean[T num.Float] struct {
	k   backend.Kernels[T]
	cfg OuterProductMeanConfig
	// p is the CPU module the dispatch path runs: the caller's parameters
	// with Config = cfg.
	p *OuterProductMeanParams[T]

	lnScale, lnOffset, wl, bl, wr, br, wo, bo backend.Tensor[T]

	// composed makes Forward compose backend kernels even when every
	// tensor is a CPU tensor (for tests of that path on the CPU backend).
	composed bool
}

// NewOuterProductMean uploads the outer product mean p to k and returns the
// module for cfg, which is the configuration it runs with (p.Config is not
// used): cfg's widths give the sizes of p's arrays, cfg.Eps the epsilon of
// the normalisation and cfg.Chunk the residues i whose outer products exist
// at a time (0: as many as keep them near 2²⁴ values on the backend path,
// as OuterProductMeanConfig says on the CPU path). p's arrays are
// referenced by the CPU dispatch path and must not change while the module
// is in use.
//
// The error wraps ErrConfig for an invalid cfg or a nil p, num.ErrShape for
// an array whose length does not match cfg, and the backend's error if an
// upload fails.
func NewOuterProductMean[T num.Float](k backend.Kernels[T], cfg OuterProductMeanConfig, p *OuterProductMeanParams[T]) (*OuterProductMean[T], error) {
	if k == nil || p == nil {
		return nil, fmt.Errorf("alphafold: NewOuterProductMean: nil backend or parameters: %w", ErrConfig)
	}
	q := *p
	q.Config = cfg
	if err := q.check(); err != nil {
		return nil, err
	}
	m := &OuterProductMean[T]{k: k, cfg: cfg, p: &q}
	up := backend.NewArena(k)
	m.lnScale, m.lnOffset = up.FromHost(q.LayerNormInput.Scale), up.FromHost(q.LayerNormInput.Offset)
	m.wl, m.bl = up.FromHost(q.LeftProjection.W), up.FromHost(q.LeftProjection.B)
	m.wr, m.br = up.FromHost(q.RightProjection.W), up.FromHost(q.RightProjection.B)
	m.wo, m.bo = up.FromHost(q.OutputW), up.FromHost(q.OutputB)
	if up.Err() != nil {
		up.Free()
		return nil, fmt.Errorf("alphafold: NewOuterProductMean: %w", up.Err())
	}
	return m, nil
}

// Close frees the uploaded parameters; m must not be used afterwards.
func (m *OuterProductMean[T]) Close() {
	for _, t := range []*backend.Tensor[T]{&m.lnScale, &m.lnOffset, &m.wl, &m.bl, &m.wr, &m.br, &m.wo, &m.bo} {
		m.k.Free(*t)
		*t = nil
	}
	m.p = nil
}

// chunk returns the number of residues i whose outer products the backend
// path forms at once.
func (m *OuterProductMean[T]) chunk(n int) int {
	ch := m.cfg.Chunk
	if ch == 0 {
		ch = bkHiddenBudget / max(1, n*m.cfg.C*m.cfg.C)
	}
	return max(1, min(ch, n))
}

// Forward computes the outer product mean (supplement Algorithm 10) of msa
// [S, N, c_m] with mask [S, N] (1 present, 0 padding) and writes the update
// of the pair representation to out [N, N, c_z] (no residual), as
// OuterProductMeanParams.Forward does:
//
//	a_si = m_si·(LN(msa_si)·W_left + b_left),  b_sj = m_sj·(LN(msa_sj)·W_right + b_right)
//	out_ij = (Σ_s Σ_{c,e} a_sic b_sje output_w[c,e,:] + output_b) / (eps + Σ_s m_si m_sj)
//
// with the bias added before the division, as in AF2. out must not overlap
// the inputs.
//
// When every tensor is a CPU tensor, Forward runs
// OuterProductMeanParams.Forward on the slices (no copies). Otherwise it
// composes the backend's kernels: the outer products of a chunk of
// residues i are one matrix product of the projections viewed as
// [S, N·c], rearranged by Transpose, so no [N, N, c, c] tensor exists.
// The projections a and b [S, N, c] are held whole, as on the CPU. Its
// scratch is freed before Forward returns. The error wraps num.ErrShape
// for a length that does not match S, N and the configuration, num.ErrNaN
// on the CPU path for a non-finite msa or mask, ErrConfig after Close, and
// the backend's errors.
func (m *OuterProductMean[T]) Forward(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	if m.p == nil {
		return fmt.Errorf("alphafold: OuterProductMean.Forward on a closed module: %w", ErrConfig)
	}
	if err := m.checkTensors(msa, mask, s, n, out); err != nil {
		return err
	}
	if h, ok := backend.HostSlices(msa, mask, out); ok && !m.composed {
		return m.p.Forward(h[0], h[1], s, n, h[2], nil)
	}
	if err := m.forward(msa, mask, s, n, out); err != nil {
		return fmt.Errorf("alphafold: outer product mean: %w", err)
	}
	return nil
}

// forward is the composed backend path of Forward on checked arguments.
func (m *OuterProductMean[T]) forward(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	return m.forwardTape(msa, mask, s, n, out, nil)
}
