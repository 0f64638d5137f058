package alphafold

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// OuterProductMean is the outer product mean (supplement Algorithm 10) on
// a backend chosen by the caller, with its parameters uploaded once: the
// forward pass (inference) of OuterProductMeanParams.Forward on backend
// tensors, so that a chain of modules keeps its activations on the backend.
// It has no backward pass; train with OuterProductMeanParams.
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
	cfg := m.cfg
	if s < 1 || n < 1 {
		return fmt.Errorf("alphafold: outer product mean: %d sequences and %d residues, want at least 1 of each: %w", s, n, num.ErrShape)
	}
	const mod = "outer product mean"
	if err := bkCheck(mod, "msa", msa, s*n*cfg.CM, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, cfg.CM)); err != nil {
		return err
	}
	if err := bkCheck(mod, "mask", mask, s*n, fmt.Sprintf("[S N] = [%d %d]", s, n)); err != nil {
		return err
	}
	if err := bkCheck(mod, "output", out, n*n*cfg.CZ, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cfg.CZ)); err != nil {
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
	k := m.k
	cm, c, cz := m.cfg.CM, m.cfg.C, m.cfg.CZ
	rows, nc, cc := s*n, n*c, c*c
	ci := m.chunk(n)
	lnRows := max(1, min(rows, bkHiddenBudget/cm))
	sc := backend.NewArena(k)
	defer sc.Free()
	left, right, norm := sc.Alloc(rows*c), sc.Alloc(rows*c), sc.Alloc(n*n)
	ln := sc.Alloc(lnRows * cm)
	o, pp := sc.Alloc(ci*c*nc), sc.Alloc(ci*n*cc)
	if sc.Err() != nil {
		return sc.Err()
	}
	v := backend.NewArena(k)

	// a and b [S·N, c]: layer norm and the two projections by row chunks,
	// then the mask.
	for r0 := 0; r0 < rows; r0 += lnRows {
		nr := min(lnRows, rows-r0)
		xs, lns := v.View(msa, r0*cm, nr*cm), v.View(ln, 0, nr*cm)
		ls, rs := v.View(left, r0*c, nr*c), v.View(right, r0*c, nr*c)
		if v.Err() != nil {
			return v.Err()
		}
		if err := k.LayerNorm(lns, xs, nr, cm, m.lnScale, m.lnOffset, T(nn.LayerNormEps), nil, nil); err != nil {
			return err
		}
		if err := k.Linear(ls, lns, nr, cm, c, m.wl, m.bl); err != nil {
			return err
		}
		if err := k.Linear(rs, lns, nr, cm, c, m.wr, m.br); err != nil {
			return err
		}
	}
	if err := k.ScaleRows(left, left, mask, rows, c); err != nil {
		return err
	}
	if err := k.ScaleRows(right, right, mask, rows, c); err != nil {
		return err
	}
	// The number of sequences in which both residues are present,
	// Σ_s m_si m_sj [N, N]; eps is added by DivRows.
	if err := k.Gemm(true, false, n, n, s, 1, mask, n, mask, n, 0, norm, n); err != nil {
		return err
	}

	for i0 := 0; i0 < n; i0 += ci {
		mi := min(ci, n-i0)
		// o[(ii,c),(j,e)] = Σ_s a[s,i0+ii,c] b[s,j,e]: a's columns of the
		// chunk viewed as [S, mi·c] with row stride N·c.
		as := v.View(left, i0*c, (s-1)*nc+mi*c)
		os, ps := v.View(o, 0, mi*c*nc), v.View(pp, 0, mi*n*cc)
		zs, ns := v.View(out, i0*n*cz, mi*n*cz), v.View(norm, i0*n, mi*n)
		if v.Err() != nil {
			return v.Err()
		}
		if err := k.Gemm(true, false, mi*c, nc, s, 1, as, nc, right, nc, 0, os, nc); err != nil {
			return err
		}
		// [ii, c, j, e] → [ii, j, c, e].
		if err := k.Transpose(ps, os, mi, c, n, c); err != nil {
			return err
		}
		if err := k.Linear(zs, ps, mi*n, cc, cz, m.wo, m.bo); err != nil {
			return err
		}
		if err := k.DivRows(zs, zs, ns, T(m.cfg.Eps), mi*n, cz); err != nil {
			return err
		}
	}
	return nil
}
