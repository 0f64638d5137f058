package msaattn

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// GlobalColumnTape records on the backend what GlobalColumn.Backward
// needs from one GlobalColumn.ForwardTape call: the training counterpart
// of GlobalColumnCache for global column attention on a backend
// (supplement Algorithm 19). A zero GlobalColumnTape is ready to use; a
// later ForwardTape call replaces what it holds, and Free releases it.
//
// On the CPU dispatch path (CPU tensors, see GlobalColumn.Forward) the
// tape holds a GlobalColumnCache filled by GlobalColumnAttention.Forward.
// On the composed path it holds backend tensors, the O(S·N·c) values the
// CPU cache holds: the statistics of query_norm [S·N], the keys and
// values [S, N, c], the mean queries q̄ [N, c_e] with the counts of
// present sequences Σ_s mask [N], the queries [N, H·c], the key mask
// maskᵀ [N, S], and the attention output [N, H·c] with its log-sum-exp
// [N, H]. Backward recomputes the layer-normed MSA and the gates.
//
// Either way the tape refers to (does not copy) the msa and mask passed
// to ForwardTape, which must not change or be freed until the last
// Backward call that uses the tape.
type GlobalColumnTape[T num.Float] struct {
	m     *GlobalColumn[T] // the module that filled the tape
	s, n  int
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds GlobalColumnAttention.Forward's cache

	cache     GlobalColumnCache[T]
	msa, mask backend.Tensor[T]

	mean, rstd   backend.Tensor[T] // query_norm statistics [S·N]
	keys, values backend.Tensor[T] // [S, N, c]
	qbar, count  backend.Tensor[T] // mean queries [N, c_e] and Σ_s mask [N]
	q, maskT     backend.Tensor[T] // queries [N, H·c] (scaled) and key mask [N, S]
	o, lse       backend.Tensor[T] // attention output [N, H·c] and log-sum-exp [N, H]
	own          *backend.Arena[T] // the tensors above, freed by Free
}

// Free releases the tape's tensors and its CPU cache; the tape is then
// empty, ready for another ForwardTape call. Free of a zero tape does
// nothing.
func (t *GlobalColumnTape[T]) Free() {
	if t.own != nil {
		t.own.Free()
	}
	*t = GlobalColumnTape[T]{}
}

// ForwardTape computes what Forward computes (the same kernels in the
// same order, so out is bit for bit Forward's) and records in tape what
// Backward needs to differentiate it: supplement Algorithm 19 for
// training on a backend. msa [S, N, c_e], mask [S, N] and out [S, N, c_e]
// are as for Forward, and tape must not be nil; what tape held before is
// released. See GlobalColumnTape for what is kept (the tape refers to msa
// and mask).
//
// On CPU tensors (and outside the package's tests of the composed path)
// ForwardTape runs GlobalColumnAttention.Forward with the tape's
// GlobalColumnCache.
//
// Errors are Forward's, and an error for a closed module or a nil tape;
// after an error the tape is empty.
func (m *GlobalColumn[T]) ForwardTape(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T], tape *GlobalColumnTape[T]) error {
	const mod = "global column attention"
	if m == nil || m.k == nil {
		return fmt.Errorf("msaattn: %s: ForwardTape on a closed or nil GlobalColumn", mod)
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

// Backward computes the gradients of a scalar loss L through the global
// column attention (supplement Algorithm 19) whose ForwardTape call
// filled tape, on the backend. dout is ∂L/∂out [S, N, c_e]. Backward
// accumulates (+=) ∂L/∂msa into dmsa [S, N, c_e] on the backend (nil: not
// computed) and, when grad is not nil, ∂L/∂θ into the host parameters
// grad (AF2 layouts, as GlobalColumnAttention.Backward's
// GlobalColumnGrad.Params: start from p.ZerosLike()). The mask gets no
// gradient. The tape is left intact, so Backward may be called again
// (each call accumulates once more).
//
// On a tape filled by the CPU dispatch path Backward runs
// GlobalColumnAttention.Backward and adds its gradients (dout and dmsa
// must then be CPU tensors). Otherwise it composes the backend's kernels
// in two passes over chunks of sequences, as the CPU backward does. Pass 1
// recomputes the layer norm and the gates, back-propagates the output
// projection and the gate (GateBackward), sums the attention output's
// gradient over each column's sequences (a product with a vector of
// ones) and the gate's part of ∂L/∂LayerNorm(msa). Then the attention
// core (AttentionBackward) gives the gradients of the queries, keys and
// values, and q = c^-1/2·q̄·query_w that of q̄. Pass 2 adds the keys' and
// values' part and that of the mean query, mask_s·∂L/∂q̄/(Σ_s mask +
// GlobalMaskEps) (one outer product per column, N in a batch), and
// back-propagates query_norm (LayerNormBackward, into dmsa). Besides the
// tape it holds ∂L/∂LayerNorm(msa) [S, N, c_e], the keys' and values'
// gradients [S, N, c] and the buffers of one chunk, within about 2²⁵
// elements. The parameter gradients are summed on the backend and added
// to grad once, at the end.
//
// Errors wrap num.ErrShape for a dout, dmsa or grad array whose length
// does not match the tape's sizes and the configuration, and
// backend.ErrForeign for backend tensors given with a tape of the CPU
// path; a closed module and a nil, empty or foreign tape are errors too.
func (m *GlobalColumn[T]) Backward(tape *GlobalColumnTape[T], dout, dmsa backend.Tensor[T], grad *GlobalColumnParams[T]) error {
	const mod = "global column attention"
	if m == nil || m.k == nil {
		return fmt.Errorf("msaattn: %s: Backward on a closed or nil GlobalColumn", mod)
	}
	if err := checkTape(mod, tape == nil || !tape.valid, tape != nil && tape.m != m); err != nil {
		return err
	}
	s, n, ce := tape.s, tape.n, m.cfg.MSAChannels
	if err := checkLens(mod, tensorArg[T]{"dout", dout, []int{s, n, ce}}); err != nil {
		return err
	}
	if err := checkOptLens(mod, tensorArg[T]{"dmsa", dmsa, []int{s, n, ce}}); err != nil {
		return err
	}
	var gts []param[T]
	if grad != nil {
		g := *grad // list a copy: listing sets the sizes recorded in the struct
		gts = g.tensors(m.cfg)
		if err := checkGradLens(mod, GlobalColumnPrefix, gts); err != nil {
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
func (m *GlobalColumn[T]) backward(t *GlobalColumnTape[T], dout, dmsa backend.Tensor[T], gts []param[T]) error {
	if dmsa == nil && gts == nil {
		return nil
	}
	k, cfg := m.k, m.cfg
	ce, h, c := cfg.MSAChannels, cfg.Heads, cfg.HeadChannels
	s, n := t.s, t.n
	hc, rows := h*c, s*n
	// Sequences per chunk: LayerNorm(m), the gate, the broadcast attention
	// output, the gated output (then its gradient) and the gradients of
	// the output projection and of the gate of each of the sequence's N
	// positions; at most onesLen, the length of the ones that sum over
	// sequences.
	sc := min(onesLen, chunkOf(m.scratch, s, n*(ce+5*hc)))

	sp := backend.NewArena(k)
	defer sp.Free()
	pg := newParamGrads(sp, gts)
	gw := gatedFrom(pg.accs())
	dm := sp.Alloc(rows * ce) // ∂L/∂LayerNorm(msa)
	dkeys, dvalues := sp.Alloc(rows*c), sp.Alloc(rows*c)
	do, dq, dqbar := sp.Alloc(n*hc), sp.Alloc(n*hc), sp.Alloc(n*ce)
	x := sp.Alloc(sc * n * ce)
	g, y, dy, dg, ot := sp.Alloc(sc*n*hc), sp.Alloc(sc*n*hc), sp.Alloc(sc*n*hc), sp.Alloc(sc*n*hc), sp.Alloc(sc*n*hc)
	if sp.Err() != nil {
		return sp.Err()
	}
	// Every sequence's row is gated with its column's output o [N, H·c].
	if err := backend.Fill(k, ot, t.o); err != nil {
		return err
	}
	vw := backend.NewArena(k)

	// Pass 1: out = w·output_w + output_b with w = o ⊙ σ(x·gating_w +
	// gating_b).
	for s0 := 0; s0 < s; s0 += sc {
		ns := min(sc, s-s0)
		r0, nr := s0*n, ns*n
		mc, dc, dmc, onesc := vw.View(t.msa, r0*ce, nr*ce), vw.View(dout, r0*ce, nr*ce), vw.View(dm, r0*ce, nr*ce), vw.View(m.ones, 0, ns)
		if vw.Err() != nil {
			return vw.Err()
		}
		xv := head(k, x, nr*ce)
		gv, yv, dyv, dgv, otv := head(k, g, nr*hc), head(k, y, nr*hc), head(k, dy, nr*hc), head(k, dg, nr*hc), head(k, ot, nr*hc)
		if err := k.LayerNorm(xv, mc, nr, ce, m.queryNormScale, m.queryNorm0, nn.LayerNormEps, nil, nil); err != nil {
			return err
		}
		if err := k.Linear(gv, xv, nr, ce, hc, m.att.gating, m.att.gatingB); err != nil {
			return err
		}
		if err := k.Gate(yv, gv, otv); err != nil {
			return err
		}
		if err := k.Zero(dyv); err != nil {
			return err
		}
		if err := k.Zero(dgv); err != nil {
			return err
		}
		if err := k.LinearBackward(dyv, gw.output, gw.outputB, yv, m.att.output, dc, nr, hc, ce); err != nil {
			return err
		}
		dot := yv // the gated output is spent: ∂L/∂o of every row
		if err := k.Zero(dot); err != nil {
			return err
		}
		if err := k.GateBackward(dgv, dot, gv, otv, dyv); err != nil {
			return err
		}
		// do_j += Σ_s dot[s, j, :]: ones [1, ns] times dot as [ns, N·H·c].
		if err := k.Gemm(false, false, 1, n*hc, ns, 1, onesc, ns, dot, n*hc, 1, do, n*hc); err != nil {
			return err
		}
		if err := k.LinearBackward(dmc, gw.gating, gw.gatingB, xv, m.att.gating, dgv, nr, ce, hc); err != nil {
			return err
		}
	}

	// The attention core, then q = c^-1/2·q̄·query_w: the scale is the
	// products' alpha.
	a := m.attention(s, n, t.q, t.keys, t.values, t.maskT)
	if err := k.AttentionBackward(a, t.o, attn.Layout{Batch: hc, Row: hc}, t.lse, do, dq, dkeys, dvalues, nil); err != nil {
		return err
	}
	scale := T(1 / math.Sqrt(float64(c)))
	if err := k.Gemm(false, true, n, ce, hc, scale, dq, hc, m.att.query, hc, 0, dqbar, ce); err != nil {
		return err
	}
	if gw.query != nil {
		if err := k.Gemm(true, false, ce, hc, n, scale, t.qbar, ce, dq, hc, 1, gw.query, hc); err != nil {
			return err
		}
	}
	// q̄_j = Σ_s mask_sj·x_sj / (Σ_s mask_sj + eps): ∂L/∂x_sj gets
	// mask_sj·dqbar_j with dqbar_j = ∂L/∂q̄_j / (Σ_s mask_sj + eps).
	if err := k.DivRows(dqbar, dqbar, t.count, T(GlobalMaskEps), n, ce); err != nil {
		return err
	}

	// Pass 2: the keys and values, the mean query and query_norm.
	dQNS, dQNO := pg.get("query_norm//scale"), pg.get("query_norm//offset")
	for s0 := 0; s0 < s; s0 += sc {
		ns := min(sc, s-s0)
		r0, nr := s0*n, ns*n
		mc, dmc, maskc := vw.View(t.msa, r0*ce, nr*ce), vw.View(dm, r0*ce, nr*ce), vw.View(t.mask, r0, nr)
		kc, vc, ms, rs := vw.View(dkeys, r0*c, nr*c), vw.View(dvalues, r0*c, nr*c), vw.View(t.mean, r0, nr), vw.View(t.rstd, r0, nr)
		var dmsac backend.Tensor[T]
		if dmsa != nil {
			dmsac = vw.View(dmsa, r0*ce, nr*ce)
		}
		if vw.Err() != nil {
			return vw.Err()
		}
		xv := head(k, x, nr*ce)
		if gw.key != nil { // key_w's and value_w's gradients need x
			if err := k.LayerNorm(xv, mc, nr, ce, m.queryNormScale, m.queryNorm0, nn.LayerNormEps, nil, nil); err != nil {
				return err
			}
		}
		if err := k.LinearBackward(dmc, gw.key, nil, xv, m.att.key, kc, nr, ce, c); err != nil {
			return err
		}
		if err := k.LinearBackward(dmc, gw.value, nil, xv, m.att.value, vc, nr, ce, c); err != nil {
			return err
		}
		// Column j: dm[:, j, :] += mask[:, j]·dqbar_j, an outer product of
		// the mask column (stride N) and one row; N in a batch, each
		// writing its column of rows of stride N·c_e.
		if err := k.GemmStridedBatched(false, false, ns, ce, 1, 1, maskc, n, 1, dqbar, ce, ce, 1, dmc, n*ce, ce, n); err != nil {
			return err
		}
		if err := k.LayerNormBackward(dmsac, dQNS, dQNO, mc, m.queryNormScale, ms, rs, dmc, nr, ce); err != nil {
			return err
		}
	}
	return pg.flush()
}
