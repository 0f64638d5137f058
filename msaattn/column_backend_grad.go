package msaattn

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// ColumnTape records on the backend what Column.Backward needs from one
// Column.ForwardTape call: the training counterpart of ColumnCache for
// column attention on a backend (supplement Algorithm 8). A zero
// ColumnTape is ready to use; a later ForwardTape call replaces what it
// holds, and Free releases it.
//
// On the CPU dispatch path (CPU tensors, see Column.Forward) the tape
// holds a ColumnCache filled by ColumnAttention.Forward. On the composed
// path it holds backend tensors: the statistics of query_norm [S·N], the
// key mask maskᵀ [N, S], and the attention output before gating with its
// log-sum-exp, column by column ([N, S, H·c] and [N, H, S]). Backward
// recomputes the layer-normed MSA and the projections, so the tape holds
// about one projection's worth of values.
//
// Either way the tape refers to (does not copy) the msa and mask passed
// to ForwardTape, which must not change or be freed until the last
// Backward call that uses the tape.
type ColumnTape[T num.Float] struct {
	m     *Column[T] // the module that filled the tape
	s, n  int
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds ColumnAttention.Forward's cache

	cache     ColumnCache[T]
	msa, mask backend.Tensor[T]

	mean, rstd backend.Tensor[T] // query_norm statistics [S·N]
	maskT      backend.Tensor[T] // key mask [N, S]
	o, lse     backend.Tensor[T] // attention output [N, S, H·c] and log-sum-exp [N, H, S]
	own        *backend.Arena[T] // the tensors above, freed by Free
}

// Free releases the tape's tensors and its CPU cache; the tape is then
// empty, ready for another ForwardTape call. Free of a zero tape does
// nothing.
func (t *ColumnTape[T]) Free() {
	if t.own != nil {
		t.own.Free()
	}
	*t = ColumnTape[T]{}
}

// ForwardTape computes what Forward computes (the same kernels in the
// same order, so out is bit for bit Forward's) and records in tape what
// Backward needs to differentiate it: supplement Algorithm 8 for training
// on a backend. msa [S, N, c_m], mask [S, N] and out [S, N, c_m] are as
// for Forward, and tape must not be nil; what tape held before is
// released. See ColumnTape for what is kept (the tape refers to msa and
// mask); besides Forward's work, the composed path copies each chunk's
// attention output to the tape, transposed to column order.
//
// On CPU tensors (and outside the package's tests of the composed path)
// ForwardTape runs ColumnAttention.Forward with the tape's ColumnCache.
//
// Errors are Forward's, and an error for a closed module or a nil tape;
// after an error the tape is empty.
func (m *Column[T]) ForwardTape(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T], tape *ColumnTape[T]) error {
	const mod = "column attention"
	if m == nil || m.k == nil {
		return fmt.Errorf("msaattn: %s: ForwardTape on a closed or nil Column", mod)
	}
	if tape == nil {
		return fmt.Errorf("msaattn: %s: ForwardTape: nil tape", mod)
	}
	tape.Free()
	if err := m.checkArgs(msa, mask, s, n, out); err != nil {
		return err
	}
	if m.host != nil && !m.composed {
		if h, ok := backend.HostSlices(msa, mask, out); ok {
			u, err := m.host.Forward(h[0], h[1], s, n, &tape.cache)
			if err != nil {
				tape.Free()
				return err
			}
			copy(h[2], u)
			tape.m, tape.s, tape.n, tape.host, tape.valid = m, s, n, true, true
			return nil
		}
	}
	if err := m.forwardTape(msa, mask, s, n, out, tape); err != nil {
		tape.Free()
		return fmt.Errorf("msaattn: %s: %w", mod, err)
	}
	tape.m, tape.s, tape.n, tape.valid = m, s, n, true
	tape.msa, tape.mask = msa, mask
	return nil
}

// Backward computes the gradients of a scalar loss L through the column
// attention (supplement Algorithm 8) whose ForwardTape call filled tape,
// on the backend. dout is ∂L/∂out [S, N, c_m]. Backward accumulates (+=)
// ∂L/∂msa into dmsa [S, N, c_m] on the backend (nil: not computed) and,
// when grad is not nil, ∂L/∂θ into the host parameters grad (AF2 layouts,
// as ColumnAttention.Backward's ColumnGrad.Params: start from
// p.ZerosLike()). The mask gets no gradient. The tape is left intact, so
// Backward may be called again (each call accumulates once more).
//
// On a tape filled by the CPU dispatch path Backward runs
// ColumnAttention.Backward and adds its gradients (dout and dmsa must then
// be CPU tensors). Otherwise it composes the backend's kernels in column
// order: it transposes the MSA (then layer-normalises it in place) and
// dout to [N, S, c_m], so that a chunk of residue columns is contiguous,
// and for each chunk recomputes the projections and back-propagates the
// output projection, the gate, the attention core from the saved output
// and log-sum-exp and the projections, as Row.Backward does; ∂L/∂x is
// transposed back and query_norm's backward pass (LayerNormBackward)
// gives dmsa. Besides the tape it holds three [S, N, c_m] tensors (the
// transposed inputs and ∂L/∂x) and the buffers of one chunk, within about
// 2²⁵ elements. The parameter gradients are summed on the backend and
// added to grad once, at the end.
//
// Errors wrap num.ErrShape for a dout, dmsa or grad array whose length
// does not match the tape's sizes and the configuration, and
// backend.ErrForeign for backend tensors given with a tape of the CPU
// path; a closed module and a nil, empty or foreign tape are errors too.
func (m *Column[T]) Backward(tape *ColumnTape[T], dout, dmsa backend.Tensor[T], grad *ColumnParams[T]) error {
	const mod = "column attention"
	if m == nil || m.k == nil {
		return fmt.Errorf("msaattn: %s: Backward on a closed or nil Column", mod)
	}
	if err := checkTape(mod, tape == nil || !tape.valid, tape != nil && tape.m != m); err != nil {
		return err
	}
	s, n, cm := tape.s, tape.n, m.cfg.MSAChannels
	if err := checkLens(mod, tensorArg[T]{"dout", dout, []int{s, n, cm}}); err != nil {
		return err
	}
	if err := checkOptLens(mod, tensorArg[T]{"dmsa", dmsa, []int{s, n, cm}}); err != nil {
		return err
	}
	var gts []param[T]
	if grad != nil {
		g := *grad // list a copy: listing sets the sizes recorded in the struct
		gts = g.tensors(m.cfg)
		if err := checkGradLens(mod, ColumnPrefix, gts); err != nil {
			return err
		}
	}
	if tape.host {
		h, err := hostGrads(mod, dout, dmsa)
		if err != nil {
			return err
		}
		g, err := m.host.Backward(&tape.cache, h[0])
		if err != nil {
			return err
		}
		addHost(h[1], g.MSA)
		if grad != nil {
			addParams(gts, g.Params.tensors(m.cfg))
		}
		return nil
	}
	if err := m.backward(tape, dout, orNil(dmsa), gts); err != nil {
		return fmt.Errorf("msaattn: %s: %w", mod, err)
	}
	return nil
}

// backward is the composed path of Backward on checked arguments; dmsa is
// nil when not wanted, and gts lists the host gradient's arrays (nil: no
// parameter gradient).
func (m *Column[T]) backward(t *ColumnTape[T], dout, dmsa backend.Tensor[T], gts []param[T]) error {
	if dmsa == nil && gts == nil {
		return nil
	}
	k, cfg := m.k, m.cfg
	cm, h, c := cfg.MSAChannels, cfg.Heads, cfg.HeadChannels
	s, n := t.s, t.n
	hc, rows := h*c, s*n
	// Residue columns per chunk: the four projections, the broadcast
	// gating bias and the five buffers of gatedWeights.backward of each of
	// the column's S positions.
	nc := chunkOf(m.scratch, n, 10*s*hc)

	sp := backend.NewArena(k)
	defer sp.Free()
	pg := newParamGrads(sp, gts)
	gw := gatedFrom(pg.accs())
	xT, dT, dxT := sp.Alloc(rows*cm), sp.Alloc(rows*cm), sp.Alloc(rows*cm)
	pr := newProjections(sp, nc*s, hc, false)
	gb := sp.Alloc(nc * s * hc)
	buf := newGatedScratch(sp, nc*s*hc)
	if sp.Err() != nil {
		return sp.Err()
	}
	// The MSA and dout in column order [N, S, c_m]: LN(msaᵀ) = LN(msa)ᵀ,
	// as the layer norm acts on rows of c_m.
	if err := k.Transpose(xT, t.msa, 1, s, n, cm); err != nil {
		return err
	}
	if err := k.LayerNorm(xT, xT, rows, cm, m.queryNormScale, m.queryNorm0, nn.LayerNormEps, nil, nil); err != nil {
		return err
	}
	if err := k.Transpose(dT, dout, 1, s, n, cm); err != nil {
		return err
	}
	if err := backend.Fill(k, gb, m.att.gatingB); err != nil {
		return err
	}
	vw := backend.NewArena(k)
	lay := attn.Layout{Batch: s * hc, Row: hc}
	for n0 := 0; n0 < n; n0 += nc {
		w := min(nc, n-n0)
		r0, nr := n0*s, w*s // the chunk's rows in column order
		xc, dxc, dc := vw.View(xT, r0*cm, nr*cm), vw.View(dxT, r0*cm, nr*cm), vw.View(dT, r0*cm, nr*cm)
		oc, lc, maskc := vw.View(t.o, r0*hc, nr*hc), vw.View(t.lse, n0*h*s, w*h*s), vw.View(t.maskT, r0, nr)
		if vw.Err() != nil {
			return vw.Err()
		}
		p := pr.head(k, nr*hc)
		p.o = oc
		if err := m.att.project(k, p, head(k, gb, nr*hc), xc, 1, nr, cm, 0, cm, h, c); err != nil {
			return err
		}
		a := selfAttention(w, s, h, c, p, lay, nil, maskc)
		if err := m.att.backward(k, a, p, lc, xc, dc, dxc, &gw, nil, buf.head(k, nr*hc), nr, cm, h, c, cm); err != nil {
			return err
		}
	}
	// ∂L/∂x back to [S, N, c_m] (into dT, whose values are spent), then
	// query_norm.
	if err := k.Transpose(dT, dxT, 1, n, s, cm); err != nil {
		return err
	}
	dQNS, dQNO := pg.get("query_norm//scale"), pg.get("query_norm//offset")
	if err := k.LayerNormBackward(dmsa, dQNS, dQNO, t.msa, m.queryNormScale, t.mean, t.rstd, dT, rows, cm); err != nil {
		return err
	}
	return pg.flush()
}
