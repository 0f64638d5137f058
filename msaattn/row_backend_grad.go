package msaattn

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// RowTape records on the backend what Row.Backward needs from one
// Row.ForwardTape call: the training counterpart of RowCache for row
// attention on a backend (supplement Algorithm 7). A zero RowTape is
// ready to use; a later ForwardTape call replaces what it holds, and Free
// releases it.
//
// On the CPU dispatch path (CPU tensors, see Row.Forward) the tape holds
// a RowCache filled by RowAttention.Forward. On the composed path it holds
// backend tensors: the statistics of query_norm [S·N] and of feat_2d_norm
// [N²], the pair bias [H, N, N], and the attention output before gating
// [S·N, H·c] with its log-sum-exp [S, H, N]. Backward recomputes the
// layer-normed MSA, the queries, keys, values and gates a chunk of
// sequences at a time (four products of size S·N·c_m·H·c, small beside
// the attention itself), so the tape holds about one projection's worth
// of values besides the pair bias.
//
// Either way the tape refers to (does not copy) the msa, z and mask
// passed to ForwardTape, which must not change or be freed until the last
// Backward call that uses the tape.
type RowTape[T num.Float] struct {
	m     *Row[T] // the module that filled the tape
	s, n  int
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds RowAttention.Forward's cache

	cache        RowCache[T]
	msa, z, mask backend.Tensor[T]

	mean, rstd   backend.Tensor[T] // query_norm statistics [S·N]
	zmean, zrstd backend.Tensor[T] // feat_2d_norm statistics [N²]
	bias         backend.Tensor[T] // pair bias [H, N, N]
	o, lse       backend.Tensor[T] // attention output [S·N, H·c] and log-sum-exp [S, H, N]
	own          *backend.Arena[T] // the tensors above, freed by Free
}

// Free releases the tape's tensors and its CPU cache; the tape is then
// empty, ready for another ForwardTape call. Free of a zero tape does
// nothing.
func (t *RowTape[T]) Free() {
	if t.own != nil {
		t.own.Free()
	}
	*t = RowTape[T]{}
}

// ForwardTape computes what Forward computes (the same kernels in the
// same order, so out is bit for bit Forward's) and records in tape what
// Backward needs to differentiate it: supplement Algorithm 7 for training
// on a backend. msa [S, N, c_m], z [N, N, c_z], mask [S, N] and out
// [S, N, c_m] are as for Forward, and tape must not be nil; what tape
// held before is released. See RowTape for what is kept (the tape refers
// to msa, z and mask).
//
// On CPU tensors (and outside the package's tests of the composed path)
// ForwardTape runs RowAttention.Forward with the tape's RowCache.
//
// Errors are Forward's, and an error for a closed module or a nil tape;
// after an error the tape is empty.
func (r *Row[T]) ForwardTape(msa, z, mask backend.Tensor[T], s, n int, out backend.Tensor[T], tape *RowTape[T]) error {
	const mod = "row attention"
	if r == nil || r.k == nil {
		return fmt.Errorf("msaattn: %s: ForwardTape on a closed or nil Row", mod)
	}
	if tape == nil {
		return fmt.Errorf("msaattn: %s: ForwardTape: nil tape", mod)
	}
	tape.Free()
	if err := r.checkArgs(msa, z, mask, s, n, out); err != nil {
		return err
	}
	if r.host != nil && !r.composed {
		if h, ok := backend.HostSlices(msa, z, mask, out); ok {
			u, err := r.host.Forward(h[0], h[1], h[2], s, n, &tape.cache)
			if err != nil {
				tape.Free()
				return err
			}
			copy(h[3], u)
			tape.m, tape.s, tape.n, tape.host, tape.valid = r, s, n, true, true
			return nil
		}
	}
	if err := r.forwardTape(msa, z, mask, s, n, out, tape); err != nil {
		tape.Free()
		return fmt.Errorf("msaattn: %s: %w", mod, err)
	}
	tape.m, tape.s, tape.n, tape.valid = r, s, n, true
	tape.msa, tape.z, tape.mask = msa, z, mask
	return nil
}

// Backward computes the gradients of a scalar loss L through the row
// attention (supplement Algorithm 7) whose ForwardTape call filled tape,
// on the backend. dout is ∂L/∂out [S, N, c_m]. Backward accumulates (+=)
// ∂L/∂msa into dmsa [S, N, c_m] and ∂L/∂z into dz [N, N, c_z] on the
// backend (either may be nil: not computed) and, when grad is not nil,
// ∂L/∂θ into the host parameters grad (AF2 layouts, as
// RowAttention.Backward's RowGrad.Params: start from p.ZerosLike()). The
// mask gets no gradient. The tape is left intact, so Backward may be
// called again (each call accumulates once more).
//
// On a tape filled by the CPU dispatch path Backward runs
// RowAttention.Backward and adds its gradients (dout, dmsa and dz must
// then be CPU tensors). Otherwise it composes the backend's kernels, a
// chunk of sequences at a time: it recomputes the chunk's layer-normed
// MSA, queries, keys, values and gates, back-propagates the output
// projection (LinearBackward), the gate (GateBackward), the attention core
// from the saved output and log-sum-exp (AttentionBackward, which also
// sums the pair bias's gradient over the sequences), the four projections
// and query_norm (LayerNormBackward, into dmsa); then, a chunk of residue
// pairs at a time, the pair bias's transpose, feat_2d_weights and
// feat_2d_norm (into dz). Besides the tape it holds ∂L/∂bias [H, N, N] and
// the buffers of one chunk, within about 2²⁵ elements as Forward's. The
// parameter gradients are summed on the backend and added to grad once,
// at the end.
//
// Errors wrap num.ErrShape for a dout, dmsa, dz or grad array whose
// length does not match the tape's sizes and the configuration, and
// backend.ErrForeign for backend tensors given with a tape of the CPU
// path; a closed module and a nil, empty or foreign tape are errors too.
func (r *Row[T]) Backward(tape *RowTape[T], dout, dmsa, dz backend.Tensor[T], grad *RowParams[T]) error {
	const mod = "row attention"
	if r == nil || r.k == nil {
		return fmt.Errorf("msaattn: %s: Backward on a closed or nil Row", mod)
	}
	if err := checkTape(mod, tape == nil || !tape.valid, tape != nil && tape.m != r); err != nil {
		return err
	}
	s, n := tape.s, tape.n
	cm, cz := r.cfg.MSAChannels, r.cfg.PairChannels
	if err := checkLens(mod, tensorArg[T]{"dout", dout, []int{s, n, cm}}); err != nil {
		return err
	}
	if err := checkOptLens(mod,
		tensorArg[T]{"dmsa", dmsa, []int{s, n, cm}},
		tensorArg[T]{"dz", dz, []int{n, n, cz}}); err != nil {
		return err
	}
	var gts []param[T]
	if grad != nil {
		g := *grad // list a copy: listing sets the sizes recorded in the struct
		gts = g.tensors(r.cfg)
		if err := checkGradLens(mod, RowPrefix, gts); err != nil {
			return err
		}
	}
	if tape.host {
		h, err := hostGrads(mod, dout, dmsa, dz)
		if err != nil {
			return err
		}
		g, err := r.host.Backward(&tape.cache, h[0])
		if err != nil {
			return err
		}
		addHost(h[1], g.MSA)
		addHost(h[2], g.Z)
		if grad != nil {
			addParams(gts, g.Params.tensors(r.cfg))
		}
		return nil
	}
	if err := r.backward(tape, dout, orNil(dmsa), orNil(dz), gts); err != nil {
		return fmt.Errorf("msaattn: %s: %w", mod, err)
	}
	return nil
}

// backward is the composed path of Backward on checked arguments; dmsa
// and dz are nil when not wanted, and gts lists the host gradient's
// arrays (nil: no parameter gradient).
func (r *Row[T]) backward(t *RowTape[T], dout, dmsa, dz backend.Tensor[T], gts []param[T]) error {
	if dmsa == nil && dz == nil && gts == nil {
		return nil
	}
	k, cfg := r.k, r.cfg
	cm, cz, h, c := cfg.MSAChannels, cfg.PairChannels, cfg.Heads, cfg.HeadChannels
	s, n := t.s, t.n
	hc, pairs := h*c, n*n
	// Sequences per chunk: the layer-normed MSA and its gradient, the four
	// projections, the broadcast gating bias and the five buffers of
	// gatedWeights.backward of each; residue pairs per chunk:
	// LayerNorm(z), its gradient, and the bias's gradient before and after
	// its transpose.
	sc := chunkOf(r.scratch, s, n*(2*cm+10*hc))
	pc := chunkOf(r.scratch, pairs, 2*cz+2*h)
	wantX := dmsa != nil || gts != nil // ∂L/∂LayerNorm(msa) is needed
	wantBias := dz != nil || gts != nil

	sp := backend.NewArena(k)
	defer sp.Free()
	pg := newParamGrads(sp, gts)
	gw := gatedFrom(pg.accs())
	var dbias, dx backend.Tensor[T]
	if wantBias {
		dbias = sp.Alloc(h * pairs)
	}
	if wantX {
		dx = sp.Alloc(sc * n * cm)
	}
	x := sp.Alloc(sc * n * cm)
	pr := newProjections(sp, sc*n, hc, false)
	gb := sp.Alloc(sc * n * hc)
	buf := newGatedScratch(sp, sc*n*hc)
	if sp.Err() != nil {
		return sp.Err()
	}
	if err := backend.Fill(k, gb, r.att.gatingB); err != nil {
		return err
	}
	vw := backend.NewArena(k)
	lay := attn.Layout{Batch: n * hc, Row: hc}
	for s0 := 0; s0 < s; s0 += sc {
		ns := min(sc, s-s0)
		r0, nr := s0*n, ns*n
		mc, maskc, dc := vw.View(t.msa, r0*cm, nr*cm), vw.View(t.mask, r0, nr), vw.View(dout, r0*cm, nr*cm)
		oc, lc := vw.View(t.o, r0*hc, nr*hc), vw.View(t.lse, s0*h*n, ns*h*n)
		ms, rs := vw.View(t.mean, r0, nr), vw.View(t.rstd, r0, nr)
		var dxc, dmc backend.Tensor[T]
		if wantX {
			dxc = head(k, dx, nr*cm)
		}
		if dmsa != nil {
			dmc = vw.View(dmsa, r0*cm, nr*cm)
		}
		if vw.Err() != nil {
			return vw.Err()
		}
		xc := head(k, x, nr*cm)
		if err := k.LayerNorm(xc, mc, nr, cm, r.queryNormScale, r.queryNorm0, nn.LayerNormEps, nil, nil); err != nil {
			return err
		}
		p := pr.head(k, nr*hc)
		p.o = oc
		if err := r.att.project(k, p, head(k, gb, nr*hc), xc, 1, nr, cm, 0, cm, h, c); err != nil {
			return err
		}
		a := selfAttention(ns, n, h, c, p, lay, t.bias, maskc)
		if dxc != nil {
			if err := k.Zero(dxc); err != nil {
				return err
			}
		}
		if err := r.att.backward(k, a, p, lc, xc, dc, dxc, &gw, dbias, buf.head(k, nr*hc), nr, cm, h, c, cm); err != nil {
			return err
		}
		if wantX {
			dQNS, dQNO := pg.get("query_norm//scale"), pg.get("query_norm//offset")
			if err := k.LayerNormBackward(dmc, dQNS, dQNO, mc, r.queryNormScale, ms, rs, dxc, nr, cm); err != nil {
				return err
			}
		}
	}
	if wantBias {
		if err := r.pairBiasBackward(t, dbias, dz, pg, pc); err != nil {
			return err
		}
	}
	return pg.flush()
}

// pairBiasBackward accumulates into dz (nil: skipped) and the
// accumulators of pg the gradients of the pair bias
// (LayerNorm(z)·feat_2d_weights)ᵀ given db [H, N, N], pc residue pairs
// at a time, recomputing the layer norm where feat_2d_weights' gradient
// needs it.
func (r *Row[T]) pairBiasBackward(t *RowTape[T], db, dz backend.Tensor[T], pg *paramGrads[T], pc int) error {
	k, cz, h := r.k, r.cfg.PairChannels, r.cfg.Heads
	pairs := t.n * t.n
	dFeat := pg.get("/feat_2d_weights")
	dPNS, dPNO := pg.get("feat_2d_norm//scale"), pg.get("feat_2d_norm//offset")
	sp := backend.NewArena(k)
	defer sp.Free()
	zx, dzx, dbt := sp.Alloc(pc*cz), sp.Alloc(pc*cz), sp.Alloc(pc*h)
	var dtt backend.Tensor[T]
	if pc < pairs {
		dtt = sp.Alloc(pc * h)
	}
	if sp.Err() != nil {
		return sp.Err()
	}
	vw := backend.NewArena(k)
	for p0 := 0; p0 < pairs; p0 += pc {
		np := min(pc, pairs-p0)
		zc, zm, zs := vw.View(t.z, p0*cz, np*cz), vw.View(t.zmean, p0, np), vw.View(t.zrstd, p0, np)
		var dzc backend.Tensor[T]
		if dz != nil {
			dzc = vw.View(dz, p0*cz, np*cz)
		}
		if vw.Err() != nil {
			return vw.Err()
		}
		// The chunk's bias gradient [np, H] from db [H, N²], as Forward
		// moved the bias: one transpose, or a copy per head then one.
		dbv := head(k, dbt, np*h)
		if np == pairs {
			if err := k.Transpose(dbv, db, 1, h, pairs, 1); err != nil {
				return err
			}
		} else {
			dtv := head(k, dtt, np*h)
			for hh := range h {
				dst, src := vw.View(dtv, hh*np, np), vw.View(db, hh*pairs+p0, np)
				if vw.Err() != nil {
					return vw.Err()
				}
				if err := k.Copy(dst, src); err != nil {
					return err
				}
			}
			if err := k.Transpose(dbv, dtv, 1, h, np, 1); err != nil {
				return err
			}
		}
		zxv, dzxv := head(k, zx, np*cz), head(k, dzx, np*cz)
		if dFeat != nil {
			if err := k.LayerNorm(zxv, zc, np, cz, r.pairNormScale, r.pairNorm0, nn.LayerNormEps, nil, nil); err != nil {
				return err
			}
		}
		if err := k.Zero(dzxv); err != nil {
			return err
		}
		if err := k.LinearBackward(dzxv, dFeat, nil, zxv, r.pairW, dbv, np, cz, h); err != nil {
			return err
		}
		if err := k.LayerNormBackward(dzc, dPNS, dPNO, zc, r.pairNormScale, zm, zs, dzxv, np, cz); err != nil {
			return err
		}
	}
	return nil
}

// gatedScratch are the buffers of one chunk of gatedWeights.backward,
// each [rows, H·c].
type gatedScratch[T num.Float] struct{ y, dy, dg, dk, dv backend.Tensor[T] }

// newGatedScratch allocates the buffers for n elements each.
func newGatedScratch[T num.Float](a *backend.Arena[T], n int) gatedScratch[T] {
	return gatedScratch[T]{a.Alloc(n), a.Alloc(n), a.Alloc(n), a.Alloc(n), a.Alloc(n)}
}

// head returns the first n elements of each buffer.
func (b gatedScratch[T]) head(k backend.Kernels[T], n int) gatedScratch[T] {
	return gatedScratch[T]{head(k, b.y, n), head(k, b.dy, n), head(k, b.dg, n), head(k, b.dk, n), head(k, b.dv, n)}
}

// backward back-propagates one chunk of AF2's gated attention whose
// forward pass project and attend ran: rows rows of x [rows, c_in], the
// recomputed projections p (queries scaled, the gate's pre-activation in
// p.g) and the saved attention output p.o with its log-sum-exp lse, all
// in the contiguous layout of a (a.QL), given dout [rows, c_out]. It
// accumulates ∂L/∂x into dx, the parameter gradients into the
// accumulators gw and, when a has a pair bias, its gradient into dbias;
// each may be nil. b holds the scratch; its buffers are overwritten.
func (w *gatedWeights[T]) backward(k backend.Kernels[T], a *backend.Attention[T], p projections[T], lse, x, dout, dx backend.Tensor[T], gw *gatedWeights[T], dbias backend.Tensor[T], b gatedScratch[T], rows, cin, h, c, cout int) error {
	hc := h * c
	// out = y·output_w + output_b with y = o ⊙ σ(g).
	if err := k.Gate(b.y, p.g, p.o); err != nil {
		return err
	}
	for _, t := range []backend.Tensor[T]{b.dy, b.dg, b.dk, b.dv} {
		if err := k.Zero(t); err != nil {
			return err
		}
	}
	if err := k.LinearBackward(b.dy, gw.output, gw.outputB, b.y, w.output, dout, rows, hc, cout); err != nil {
		return err
	}
	do, dq := b.y, b.dy // y is free once output_w's gradient has it, dy once do and dg have it
	if err := k.Zero(do); err != nil {
		return err
	}
	if err := k.GateBackward(b.dg, do, p.g, p.o, b.dy); err != nil {
		return err
	}
	if err := k.Zero(dq); err != nil {
		return err
	}
	if err := k.AttentionBackward(a, p.o, a.QL, lse, do, dq, b.dk, b.dv, dbias); err != nil {
		return err
	}
	return w.projectBackward(k, x, dx, projections[T]{q: dq, k: b.dk, v: b.dv, g: b.dg}, gw, rows, cin, h, c)
}

// projectBackward accumulates the gradients of project for rows rows of x
// [rows, c_in] given the gradients d [rows, H·c] of the scaled queries,
// the keys, the values and the gate's pre-activation: dx += Σ d·wᵀ (the
// queries' with c^-1/2), and the weights' and gating_b's gradients into
// gw. dx and the tensors of gw may be nil (not computed).
func (w *gatedWeights[T]) projectBackward(k backend.Kernels[T], x, dx backend.Tensor[T], d projections[T], gw *gatedWeights[T], rows, cin, h, c int) error {
	hc := h * c
	// q = (x·query_w)·c^-1/2: the scale is the products' alpha.
	scale := T(1 / math.Sqrt(float64(c)))
	if dx != nil {
		if err := k.Gemm(false, true, rows, cin, hc, scale, d.q, hc, w.query, hc, 1, dx, cin); err != nil {
			return err
		}
	}
	if gw.query != nil {
		if err := k.Gemm(true, false, cin, hc, rows, scale, x, cin, d.q, hc, 1, gw.query, hc); err != nil {
			return err
		}
	}
	for _, q := range []struct{ dy, w, dw, db backend.Tensor[T] }{
		{d.k, w.key, gw.key, nil}, {d.v, w.value, gw.value, nil}, {d.g, w.gating, gw.gating, gw.gatingB},
	} {
		if err := k.LinearBackward(dx, q.dw, q.db, x, q.w, q.dy, rows, cin, hc); err != nil {
			return err
		}
	}
	return nil
}

// paramGrads sums a module's parameter gradients on the backend: one zero
// accumulator per array of the host gradient, by AF2 name, added to the
// host arrays once, by flush, so that a Backward call copies each
// parameter gradient to the host once. A nil *paramGrads (no gradient
// wanted) gives nil accumulators and flushes nothing.
type paramGrads[T num.Float] struct {
	acc map[string]backend.Tensor[T]
	g   *backend.Grads[T]
}

// newParamGrads allocates on a an accumulator for each array of ts; it
// returns nil when ts is nil. Allocation errors are a's.
func newParamGrads[T num.Float](a *backend.Arena[T], ts []param[T]) *paramGrads[T] {
	if ts == nil {
		return nil
	}
	g := &paramGrads[T]{acc: make(map[string]backend.Tensor[T], len(ts)), g: backend.NewGrads(a)}
	for _, t := range ts {
		g.acc[t.name] = g.g.Acc(*t.data)
	}
	return g
}

// accs returns the accumulators by AF2 name (nil: none).
func (g *paramGrads[T]) accs() map[string]backend.Tensor[T] {
	if g == nil {
		return nil
	}
	return g.acc
}

// get returns the accumulator of the array called name, or nil.
func (g *paramGrads[T]) get(name string) backend.Tensor[T] {
	if g == nil {
		return nil
	}
	return g.acc[name]
}

// flush downloads every accumulator and adds it to its host array; it
// changes no host array unless every download succeeds.
func (g *paramGrads[T]) flush() error {
	if g == nil {
		return nil
	}
	return g.g.Flush()
}

// checkTape reports a missing or empty tape (none) or one filled by
// another module (foreign), for module's Backward.
func checkTape(module string, none, foreign bool) error {
	switch {
	case none:
		return fmt.Errorf("msaattn: %s: Backward needs a tape filled by ForwardTape", module)
	case foreign:
		return fmt.Errorf("msaattn: %s: Backward: the tape was filled by another module", module)
	}
	return nil
}

// checkOptLens is checkLens for optional tensors: absent ones are
// skipped.
func checkOptLens[T num.Float](module string, args ...tensorArg[T]) error {
	for _, a := range args {
		if err := backend.CheckArgs(backend.Arg[T]{Name: a.what, T: a.t, Shape: a.shape, Optional: true}); err != nil {
			return fmt.Errorf("msaattn: %s: %w", module, err)
		}
	}
	return nil
}

// checkGradLens reports an array of a parameter gradient whose length
// does not match its shape (num.ErrShape). Unlike checkTensors it accepts
// any values: a gradient being accumulated may hold anything.
func checkGradLens[T num.Float](module, prefix string, ts []param[T]) error {
	for _, t := range ts {
		if len(*t.data) != t.size() {
			return fmt.Errorf("msaattn: %s: gradient %s has %d elements, want %v = %d: %w",
				module, prefix+t.name, len(*t.data), t.shape, t.size(), num.ErrShape)
		}
	}
	return nil
}

// hostGrads returns the slices of Backward's tensors (dout first, then
// the optional input gradients, nil when absent) for a tape of the CPU
// path: they must be CPU tensors.
func hostGrads[T num.Float](module string, dout backend.Tensor[T], ds ...backend.Tensor[T]) ([][]T, error) {
	h, ok := backend.HostSlices(append([]backend.Tensor[T]{dout}, ds...)...)
	if !ok {
		return nil, fmt.Errorf("msaattn: %s: Backward: a gradient tensor is not a CPU tensor but the tape is of the CPU path: %w", module, backend.ErrForeign)
	}
	return h, nil
}

// addHost sets dst += src when dst is not nil (an absent gradient).
func addHost[T num.Float](dst, src []T) {
	if dst != nil {
		axpy(dst, 1, src)
	}
}

// addParams adds every array of src to the same array of dst (two
// listings of one module's parameters).
func addParams[T num.Float](dst, src []param[T]) {
	for i, t := range dst {
		axpy(*t.data, 1, *src[i].data)
	}
}

// orNil returns t, or nil when it is absent (a nil slice or pointer in
// the interface), so that the composed paths can test for nil.
func orNil[T num.Float](t backend.Tensor[T]) backend.Tensor[T] {
	if backend.Absent(t) {
		return nil
	}
	return t
}
