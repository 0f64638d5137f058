package alphafold

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// OuterProductMeanTape records on the backend what
// OuterProductMean.Backward needs from one OuterProductMean.ForwardTape
// call: the training counterpart of OuterProductMeanCache for a module on a
// backend. A zero OuterProductMeanTape is ready to use; a later
// ForwardTape call replaces what it holds, and Free releases it.
//
// On the CPU dispatch path (CPU tensors, see OuterProductMean.Forward) the
// tape holds an OuterProductMeanCache filled by
// OuterProductMeanParams.Forward. On the composed path it holds backend
// tensors, as that cache does: the layer-norm statistics [S·N], the masked
// projections a and b [S, N, c] and the mask counts Σ_s m_si m_sj [N, N]
// (without eps); Backward recomputes the outer products chunk by chunk, so
// nothing of size N²·c² is kept. Either way the tape refers to (does not
// copy) the msa and mask passed to ForwardTape, which must not change or be
// freed until the last Backward call that uses the tape.
type OuterProductMeanTape[T num.Float] struct {
	m     *OuterProductMean[T] // the module that filled the tape
	s, n  int
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds the CPU cache

	cache     OuterProductMeanCache[T]
	msa, mask backend.Tensor[T]

	mean, rstd  backend.Tensor[T] // layer_norm_input's statistics [S·N]
	left, right backend.Tensor[T] // masked projections a, b [S·N, c]
	count       backend.Tensor[T] // Σ_s m_si m_sj [N, N]
	own         *backend.Arena[T] // the tensors above, freed by Free
}

// Free releases the tape's tensors and its CPU cache; the tape is then
// empty, ready for another ForwardTape call. Free of a zero tape does
// nothing.
func (t *OuterProductMeanTape[T]) Free() {
	if t.own != nil {
		t.own.Free()
	}
	*t = OuterProductMeanTape[T]{}
}

// ForwardTape computes what Forward computes (the same kernels in the same
// order, so out is bit for bit Forward's) and records in tape what
// Backward needs to differentiate it: supplement Algorithm 10 for training
// on a backend. msa [S, N, c_m], mask [S, N] and out [N, N, c_z] are as for
// Forward, and tape must not be nil; what tape held before is released.
// See OuterProductMeanTape for what is kept (the tape refers to msa and
// mask).
//
// On CPU tensors ForwardTape runs OuterProductMeanParams.Forward with the
// tape's OuterProductMeanCache.
//
// The error wraps ErrConfig for a closed module or a nil tape, num.ErrShape
// for a length that does not match S, N and the configuration, num.ErrNaN
// on the CPU path for a non-finite msa or mask, and the backend's errors;
// the tape is then empty.
func (m *OuterProductMean[T]) ForwardTape(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T], tape *OuterProductMeanTape[T]) error {
	if m.p == nil {
		return fmt.Errorf("alphafold: OuterProductMean.ForwardTape on a closed module: %w", ErrConfig)
	}
	if tape == nil {
		return fmt.Errorf("alphafold: OuterProductMean.ForwardTape: nil tape: %w", ErrConfig)
	}
	tape.Free()
	if err := m.checkTensors(msa, mask, s, n, out); err != nil {
		return err
	}
	tape.m, tape.s, tape.n, tape.msa, tape.mask = m, s, n, msa, mask
	if h, ok := backend.HostSlices(msa, mask, out); ok && !m.composed {
		tape.host = true
		if err := m.p.Forward(h[0], h[1], s, n, h[2], &tape.cache); err != nil {
			tape.Free()
			return err
		}
		tape.valid = true
		return nil
	}
	if err := m.forwardTape(msa, mask, s, n, out, tape); err != nil {
		tape.Free()
		return fmt.Errorf("alphafold: OuterProductMean.ForwardTape: %w", err)
	}
	tape.valid = true
	return nil
}

// checkTensors checks the tensors of Forward and ForwardTape: msa
// [S, N, c_m], mask [S, N] and out [N, N, c_z], with S, N ≥ 1.
func (m *OuterProductMean[T]) checkTensors(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	cfg := m.cfg
	const mod = "outer product mean"
	if s < 1 || n < 1 {
		return fmt.Errorf("alphafold: %s: %d sequences and %d residues, want at least 1 of each: %w", mod, s, n, num.ErrShape)
	}
	if err := bkCheck(mod, "msa", msa, s*n*cfg.CM, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, cfg.CM)); err != nil {
		return err
	}
	if err := bkCheck(mod, "mask", mask, s*n, fmt.Sprintf("[S N] = [%d %d]", s, n)); err != nil {
		return err
	}
	return bkCheck(mod, "output", out, n*n*cfg.CZ, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cfg.CZ))
}

// lnRows returns the number of MSA rows layer-normed and projected at once.
func (m *OuterProductMean[T]) lnRows(rows int) int {
	return max(1, min(rows, bkHiddenBudget/m.cfg.CM))
}

// forwardTape is the composed path of Forward (t nil) and ForwardTape on
// checked arguments. With a tape it keeps the statistics of
// layer_norm_input, the masked projections and the mask counts in t.
func (m *OuterProductMean[T]) forwardTape(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T], t *OuterProductMeanTape[T]) error {
	k := m.k
	cm, c, cz := m.cfg.CM, m.cfg.C, m.cfg.CZ
	rows, nc, cc := s*n, n*c, c*c
	ci, lnRows := m.chunk(n), m.lnRows(rows)
	sc := backend.NewArena(k)
	defer sc.Free()
	keep := sc // the tape's tensors, handed to t at the end
	var mean, rstd backend.Tensor[T]
	if t != nil {
		keep = backend.NewArena(k)
		defer func() {
			if t.own != keep {
				keep.Free()
			}
		}()
		mean, rstd = keep.Alloc(rows), keep.Alloc(rows)
	}
	left, right, count := keep.Alloc(rows*c), keep.Alloc(rows*c), keep.Alloc(n*n)
	if keep.Err() != nil {
		return keep.Err()
	}
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
		var mu, rsd backend.Tensor[T]
		if t != nil {
			mu, rsd = v.View(mean, r0, nr), v.View(rstd, r0, nr)
		}
		if v.Err() != nil {
			return v.Err()
		}
		if err := k.LayerNorm(lns, xs, nr, cm, m.lnScale, m.lnOffset, T(nn.LayerNormEps), mu, rsd); err != nil {
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
	if err := k.Gemm(true, false, n, n, s, 1, mask, n, mask, n, 0, count, n); err != nil {
		return err
	}

	for i0 := 0; i0 < n; i0 += ci {
		mi := min(ci, n-i0)
		as := v.View(left, i0*c, (s-1)*nc+mi*c)
		os, ps := v.View(o, 0, mi*c*nc), v.View(pp, 0, mi*n*cc)
		zs, ns := v.View(out, i0*n*cz, mi*n*cz), v.View(count, i0*n, mi*n)
		if v.Err() != nil {
			return v.Err()
		}
		if err := m.outer(s, n, mi, as, right, os, ps); err != nil {
			return err
		}
		if err := k.Linear(zs, ps, mi*n, cc, cz, m.wo, m.bo); err != nil {
			return err
		}
		if err := k.DivRows(zs, zs, ns, T(m.cfg.Eps), mi*n, cz); err != nil {
			return err
		}
	}
	if t != nil {
		t.mean, t.rstd, t.left, t.right, t.count, t.own = mean, rstd, left, right, count, keep
	}
	return nil
}

// outer computes the outer products of the mi residues i of a chunk:
// o[(ii,c),(j,e)] = Σ_s a[s,i0+ii,c] b[s,j,e] into o [mi·c, N·c], with as
// the chunk's columns of a viewed as [S, mi·c] with row stride N·c, and
// their reordering pp[(ii,j),(c,e)] [mi·N, c²].
func (m *OuterProductMean[T]) outer(s, n, mi int, as, right, o, pp backend.Tensor[T]) error {
	c := m.cfg.C
	nc := n * c
	if err := m.k.Gemm(true, false, mi*c, nc, s, 1, as, nc, right, nc, 0, o, nc); err != nil {
		return err
	}
	// [ii, c, j, e] → [ii, j, c, e].
	return m.k.Transpose(pp, o, mi, c, n, c)
}

// Backward computes the gradients of a scalar loss L through the outer
// product mean (supplement Algorithm 10) whose ForwardTape call filled
// tape, on the backend. dout is ∂L/∂out [N, N, c_z]. Backward accumulates
// (+=) ∂L/∂msa into dmsa [S, N, c_m] on the backend (dmsa nil: not
// computed) and, when grad is not nil, ∂L/∂θ into the host parameters grad
// (AF2 layouts, as OuterProductMeanParams.Backward fills them: start from
// p.ZerosLike()). The mask gets no gradient. The tape is left intact, so
// Backward may be called again (each call accumulates once more).
//
// On a tape filled by the CPU dispatch path Backward is
// OuterProductMeanParams.Backward (dout and dmsa must then be CPU
// tensors). Otherwise it composes the backend's kernels as the CPU
// backward does, a chunk of residues i at a time (the chunks of Forward):
// g = dout/(count + eps) (DivRows), the chunk's outer products recomputed
// and back-propagated through output_w (LinearBackward for the weights, a
// Gemm for ∂L/∂o, reordered by Transpose), then ∂L/∂a of the chunk's
// columns and ∂L/∂b (+=) as two matrix products over the projections
// viewed as [S, N·c]; after the chunks the mask, and by row chunks the two
// projections (LinearBackward) and layer_norm_input (LayerNormBackward,
// with the saved statistics, into dmsa). Beside the tape it holds ∂L/∂a
// and ∂L/∂b [S, N, c], one chunk's outer products twice and its [mi·N,
// c_z] output gradient, and two [rows, c_m] buffers of a row chunk;
// nothing of size N²·c² beyond a chunk. The parameter gradients are summed
// on the backend and added to grad once, at the end.
//
// The error wraps ErrConfig for a closed module, a grad of another
// configuration, or a nil or empty tape or one filled by another module,
// num.ErrShape for a dout or dmsa whose length does not match the tape's S
// and N, backend.ErrForeign for backend tensors given with a tape of the
// CPU path, num.ErrNaN for a non-finite dout on the CPU path, and the
// backend's errors.
func (m *OuterProductMean[T]) Backward(tape *OuterProductMeanTape[T], dout, dmsa backend.Tensor[T], grad *OuterProductMeanParams[T]) error {
	if m.p == nil {
		return fmt.Errorf("alphafold: OuterProductMean.Backward on a closed module: %w", ErrConfig)
	}
	if tape == nil || !tape.valid {
		return fmt.Errorf("alphafold: OuterProductMean.Backward without a ForwardTape pass in the tape: %w", ErrConfig)
	}
	if tape.m != m {
		return fmt.Errorf("alphafold: OuterProductMean.Backward: tape filled by another module: %w", ErrConfig)
	}
	cfg := m.cfg
	s, n := tape.s, tape.n
	const mod = "outer product mean"
	if err := bkCheck(mod, "dout", dout, n*n*cfg.CZ, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cfg.CZ)); err != nil {
		return err
	}
	if !backend.Absent(dmsa) {
		if err := bkCheck(mod, "dmsa", dmsa, s*n*cfg.CM, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, cfg.CM)); err != nil {
			return err
		}
	}
	if grad != nil {
		if grad.Config.CM != cfg.CM || grad.Config.C != cfg.C || grad.Config.CZ != cfg.CZ {
			return fmt.Errorf("alphafold: OuterProductMean.Backward: gradient has config %+v, want %+v: %w", grad.Config, cfg, ErrConfig)
		}
		if err := grad.check(); err != nil {
			return err
		}
	}
	if tape.host {
		h, err := bkHostGrads("OuterProductMean.Backward", dout, dmsa)
		if err != nil {
			return err
		}
		return m.p.Backward(&tape.cache, h[0], h[1], grad)
	}
	if err := m.backward(tape, dout, bkOptional(dmsa), grad); err != nil {
		return fmt.Errorf("alphafold: OuterProductMean.Backward: %w", err)
	}
	return nil
}

// backward is the composed path of Backward on checked arguments; dmsa is
// nil when not wanted.
func (m *OuterProductMean[T]) backward(t *OuterProductMeanTape[T], dout, dmsa backend.Tensor[T], grad *OuterProductMeanParams[T]) error {
	if dmsa == nil && grad == nil {
		return nil
	}
	k := m.k
	cm, c, cz := m.cfg.CM, m.cfg.C, m.cfg.CZ
	s, n := t.s, t.n
	rows, nc, cc := s*n, n*c, c*c
	ci, lnRows := m.chunk(n), m.lnRows(rows)
	sc := backend.NewArena(k)
	defer sc.Free()
	var gs *backend.Grads[T]
	if grad != nil {
		gs = backend.NewGrads(sc)
	}
	var dLS, dLO, dWL, dBL, dWR, dBR, dWO, dBO backend.Tensor[T]
	if grad != nil {
		dLS, dLO = gs.Acc(grad.LayerNormInput.Scale), gs.Acc(grad.LayerNormInput.Offset)
		dWL, dBL = gs.Acc(grad.LeftProjection.W), gs.Acc(grad.LeftProjection.B)
		dWR, dBR = gs.Acc(grad.RightProjection.W), gs.Acc(grad.RightProjection.B)
		dWO, dBO = gs.Acc(grad.OutputW), gs.Acc(grad.OutputB)
	}
	dleft, dright := sc.Alloc(rows*c), sc.Alloc(rows*c)
	o, pp, gz := sc.Alloc(ci*c*nc), sc.Alloc(ci*n*cc), sc.Alloc(ci*n*cz)
	if sc.Err() != nil {
		return sc.Err()
	}
	v := backend.NewArena(k)
	for i0 := 0; i0 < n; i0 += ci {
		mi := min(ci, n-i0)
		as, das := v.View(t.left, i0*c, (s-1)*nc+mi*c), v.View(dleft, i0*c, (s-1)*nc+mi*c)
		os, ps, gv := v.View(o, 0, mi*c*nc), v.View(pp, 0, mi*n*cc), v.View(gz, 0, mi*n*cz)
		ds, ns := v.View(dout, i0*n*cz, mi*n*cz), v.View(t.count, i0*n, mi*n)
		if v.Err() != nil {
			return v.Err()
		}
		// out = (P·output_w + output_b)/(count + eps).
		if err := k.DivRows(gv, ds, ns, T(m.cfg.Eps), mi*n, cz); err != nil {
			return err
		}
		if err := m.outer(s, n, mi, as, t.right, os, ps); err != nil {
			return err
		}
		if err := k.LinearBackward(nil, dWO, dBO, ps, m.wo, gv, mi*n, cc, cz); err != nil {
			return err
		}
		// ∂L/∂P = g·output_wᵀ over P, reordered into ∂L/∂o over o:
		// [ii, j, c, e] → [ii, c, j, e].
		if err := k.Gemm(false, true, mi*n, cc, cz, 1, gv, cz, m.wo, cz, 0, ps, cc); err != nil {
			return err
		}
		if err := k.Transpose(os, ps, mi, n, c, c); err != nil {
			return err
		}
		// With a and b viewed as [S, N·c]: ∂L/∂a of the chunk's columns is
		// b·(∂L/∂o)ᵀ and ∂L/∂b += a_chunk·∂L/∂o.
		if err := k.Gemm(false, true, s, mi*c, nc, 1, t.right, nc, os, nc, 0, das, nc); err != nil {
			return err
		}
		if err := k.Gemm(false, false, s, nc, mi*c, 1, as, nc, os, nc, 1, dright, nc); err != nil {
			return err
		}
	}
	// a = mask ⊙ a', b = mask ⊙ b'.
	if err := k.ScaleRows(dleft, dleft, t.mask, rows, c); err != nil {
		return err
	}
	if err := k.ScaleRows(dright, dright, t.mask, rows, c); err != nil {
		return err
	}

	// The projections and layer_norm_input, by row chunks.
	ln, dln := sc.Alloc(lnRows*cm), sc.Alloc(lnRows*cm)
	if sc.Err() != nil {
		return sc.Err()
	}
	for r0 := 0; r0 < rows; r0 += lnRows {
		nr := min(lnRows, rows-r0)
		xs, lns, dlns := v.View(t.msa, r0*cm, nr*cm), v.View(ln, 0, nr*cm), v.View(dln, 0, nr*cm)
		dls, drs := v.View(dleft, r0*c, nr*c), v.View(dright, r0*c, nr*c)
		mu, rsd := v.View(t.mean, r0, nr), v.View(t.rstd, r0, nr)
		var dxs backend.Tensor[T]
		if dmsa != nil {
			dxs = v.View(dmsa, r0*cm, nr*cm)
		}
		if v.Err() != nil {
			return v.Err()
		}
		if err := k.LayerNorm(lns, xs, nr, cm, m.lnScale, m.lnOffset, T(nn.LayerNormEps), nil, nil); err != nil {
			return err
		}
		if err := k.Zero(dlns); err != nil {
			return err
		}
		if err := k.LinearBackward(dlns, dWL, dBL, lns, m.wl, dls, nr, cm, c); err != nil {
			return err
		}
		if err := k.LinearBackward(dlns, dWR, dBR, lns, m.wr, drs, nr, cm, c); err != nil {
			return err
		}
		if err := k.LayerNormBackward(dxs, dLS, dLO, xs, m.lnScale, mu, rsd, dlns, nr, cm); err != nil {
			return err
		}
	}
	return gs.Flush()
}
