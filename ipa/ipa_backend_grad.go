package ipa

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// IPATape records on the backend what IPA.Backward needs from one
// IPA.ForwardTape call: the training counterpart of Cache for invariant
// point attention (Algorithm 22) on a backend. A zero IPATape is ready to
// use; a later ForwardTape call replaces what it holds, and Free releases
// it.
//
// On the CPU dispatch path (CPU tensors, see IPA.Forward) the tape holds a
// Cache filled by Forward. On the composed path it holds backend tensors:
// the frames relative to the mean translation [N, 12], the attention
// weights [H, N, N] (chunk by chunk of query rows, as ForwardTape computed
// them), the attention's output points before and after the inverse frame
// map [N, H·P_v, 3] each, their norms [N, H·P_v] and the output
// projection's input [N, F]; Backward recomputes the projections of s (six
// products of size N·c_s·H·(C + 3·P), small beside the attention). The
// largest array is the weights, N² per head (beside z's N²·c_z), and
// nothing is of size N³.
//
// Either way the tape refers to (does not copy) the s and z passed to
// ForwardTape, which must not change or be freed until the last Backward
// call that uses the tape.
type IPATape[T num.Float] struct {
	m     *IPA[T] // the module that filled the tape
	n     int
	rows  int // query rows of a chunk of the attention
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds Forward's cache

	cache Cache[T]
	s, z  backend.Tensor[T]

	fc, a   backend.Tensor[T] // centred frames [N, 12]; weights, chunks of [H, rows, N]
	og, ogl backend.Tensor[T] // output points, global (centred) and local [N, H·P_v, 3]
	norm    backend.Tensor[T] // √(ε + |ogl|²) [N, H·P_v]
	feat    backend.Tensor[T] // output_projection's input [N, F]
	own     *backend.Arena[T] // the tensors above, freed by release
}

// Free releases the tape's tensors (and its CPU cache); the tape is then
// empty, ready for another ForwardTape call. Free of a zero tape does
// nothing.
func (t *IPATape[T]) Free() {
	t.release()
	t.cache = Cache[T]{}
}

// release frees the backend tensors of t and marks it empty, keeping the
// CPU cache's buffers for reuse.
func (t *IPATape[T]) release() {
	if t.own != nil {
		t.own.Free()
	}
	c := t.cache
	c.hasForward, c.s, c.z = false, nil, nil
	*t = IPATape[T]{cache: c}
}

// ForwardTape computes what Forward computes (the same kernels in the same
// order, so out is bit for bit Forward's) and records in tape what
// Backward needs to differentiate it: invariant point attention (supplement
// Algorithm 22) for training on a backend. s, z, frames, mask, n and out
// are as for Forward, and tape must not be nil; what tape held before is
// released. See IPATape for what is kept (the tape refers to s and z).
//
// On CPU tensors (and outside the package's tests of the composed path)
// ForwardTape runs the package's Forward with the tape's Cache, checking
// the values as Forward does.
//
// The error wraps ErrConfig for a closed module or a nil tape,
// num.ErrShape for N < 1 or a length that does not match N and the
// configuration, the errors of the package's Forward on the CPU path, and
// the backend's errors; the tape is then empty.
func (m *IPA[T]) ForwardTape(s, z, frames, mask backend.Tensor[T], n int, out backend.Tensor[T], tape *IPATape[T]) error {
	if m == nil || m.k == nil {
		return fmt.Errorf("ipa: IPA.ForwardTape on a closed or nil module: %w", ErrConfig)
	}
	if tape == nil {
		return fmt.Errorf("ipa: IPA.ForwardTape: nil tape: %w", ErrConfig)
	}
	tape.release()
	if err := m.checkForward("IPA.ForwardTape", s, z, frames, mask, n, out); err != nil {
		return err
	}
	tape.m, tape.n, tape.s, tape.z = m, n, s, z
	if m.host != nil && !m.composed {
		if h, ok := backend.HostSlices(s, z, frames, mask, out); ok {
			tape.host = true
			if err := Forward(m.host, h[0], h[1], backend.AsFrames(h[2]), h[3], h[4], &tape.cache); err != nil {
				tape.release()
				return err
			}
			tape.valid = true
			return nil
		}
	}
	if err := m.forwardTape(s, z, frames, mask, n, out, tape); err != nil {
		tape.release()
		return fmt.Errorf("ipa: IPA.ForwardTape: %w", err)
	}
	tape.valid = true
	return nil
}

// tinyNorm is added to the output points' norms before the points are
// divided by them in Backward: a norm is at least √ε (1e-4 for AF2's ε),
// which the addition leaves unchanged in float32 and float64, and a zero
// point of a zero norm (only with ε = 0) gets the subgradient 0, as in
// the package's Backward, instead of 0/0.
const tinyNorm = 1e-30

// Backward computes the gradients of a scalar loss L through the invariant
// point attention (supplement Algorithm 22) whose ForwardTape call filled
// tape, on the backend. dout is ∂L/∂out [N, c_s]. Backward accumulates (+=)
// on the backend ∂L/∂s into ds [N, c_s], ∂L/∂z into dz [N, N, c_z] and
// ∂L/∂frames into dframes [N, 12] (the frames' memory layout, as the
// package's Backward gives them: the nine rotation entries taken as
// independent, then the translation), each skipped when nil, and, when
// grad is not nil, ∂L/∂θ into the host parameters grad (AF2's layouts, as
// the package's Backward fills them: start from p.ZerosLike(); the point
// weights' gradient is with respect to the raw trainable_point_weights).
// The mask gets no gradient. The tape is left intact, so Backward may be
// called again (each call accumulates once more).
//
// On a tape filled by the CPU dispatch path Backward is the package's
// Backward (dout and the gradients must then be CPU tensors). Otherwise it
// composes the backend's kernels: the output projection (LinearBackward),
// the features' split (Transpose), the norms' gradient ∂|p|/∂p = p/|p|
// (DivRows, ScaleRows), the inverse frame map of the output points
// (RigidMapBackward), then a chunk of query rows at a time the weighted
// sums and the pair output (batched Gemm), the softmax (SoftmaxBackward)
// and the logits' terms (batched Gemm); then the head weights ω_h (their
// per-head sums on the backend, the softplus's chain rule on the host),
// the point maps (RigidMapBackward) and the six projections of s
// (LinearBackward). Two terms of AF2's logits are left out as in the
// forward pass, w_L·attention_2d's bias and −ω_h/2·|q_g,i|², constant
// along each softmax row: their gradients are zero in exact arithmetic, so
// Backward adds nothing to attention_2d's bias (the package's Backward
// adds the round-off of a row sum of the softmax's gradient there). The
// frames' gradient does not go through the mean translation, which cancels
// exactly, as in the package's Backward. Beside the tape it holds one
// chunk's two [H, rows, N] gradients and O(N·F) buffers; the parameter
// gradients are summed on the backend and added to grad once, at the end.
//
// The error wraps ErrConfig for a closed module, a nil or empty tape or one
// filled by another module, or a grad of another configuration,
// num.ErrShape for a tensor whose length does not match the tape's N (or
// a grad array of the wrong length), backend.ErrForeign for backend tensors
// given with a tape of the CPU path, num.ErrNaN for a non-finite dout on
// the CPU path, and the backend's errors.
func (m *IPA[T]) Backward(tape *IPATape[T], dout, ds, dz, dframes backend.Tensor[T], grad *Params[T]) error {
	if m == nil || m.k == nil {
		return fmt.Errorf("ipa: IPA.Backward on a closed or nil module: %w", ErrConfig)
	}
	if tape == nil || !tape.valid {
		return fmt.Errorf("ipa: IPA.Backward: no ForwardTape pass in the tape: %w", ErrConfig)
	}
	if tape.m != m {
		return fmt.Errorf("ipa: IPA.Backward: tape filled by another module: %w", ErrConfig)
	}
	n, cs, cz := tape.n, m.cfg.CS, m.cfg.CZ
	for _, a := range []struct {
		what     string
		t        backend.Tensor[T]
		shape    []int
		optional bool
	}{
		{"dout", dout, []int{n, cs}, false},
		{"ds", ds, []int{n, cs}, true},
		{"dz", dz, []int{n, n, cz}, true},
		{"dframes", dframes, []int{n, 12}, true},
	} {
		want := 1
		for _, d := range a.shape {
			want *= d
		}
		if backend.Absent(a.t) {
			if a.optional {
				continue
			}
			return fmt.Errorf("ipa: IPA.Backward: %s is missing, want %v = %d elements: %w", a.what, a.shape, want, num.ErrShape)
		}
		if got := a.t.Len(); got != want {
			return fmt.Errorf("ipa: IPA.Backward: %s has %d elements, want %v = %d: %w", a.what, got, a.shape, want, num.ErrShape)
		}
	}
	if grad != nil {
		if grad.Config != m.cfg {
			return fmt.Errorf("ipa: IPA.Backward: gradient config %+v, want %+v: %w", grad.Config, m.cfg, ErrConfig)
		}
		if err := grad.check(); err != nil {
			return fmt.Errorf("ipa: IPA.Backward: gradient: %w", err)
		}
	}
	if tape.host {
		h, ok := backend.HostSlices(dout, ds, dz, dframes)
		if !ok {
			return fmt.Errorf("ipa: IPA.Backward: a gradient tensor is not a CPU tensor but the tape is of the CPU path: %w", backend.ErrForeign)
		}
		var df []rigid.Rigid[T]
		if h[3] != nil {
			df = backend.AsFrames(h[3])
		}
		return Backward(m.host, &tape.cache, h[0], h[1], h[2], df, grad)
	}
	if err := m.backward(tape, dout, optional(ds), optional(dz), optional(dframes), grad); err != nil {
		return fmt.Errorf("ipa: IPA.Backward: %w", err)
	}
	return nil
}

// optional returns t, or nil when it is absent.
func optional[T num.Float](t backend.Tensor[T]) backend.Tensor[T] {
	if backend.Absent(t) {
		return nil
	}
	return t
}

// accCols returns an accumulator on gs of the gradient of a kernel's
// matrix [rows, len(cols)] whose column j is column cols[j] of AF2's
// row-major dst (see kernelColumns), which Flush adds there.
func accCols[T num.Float](gs *backend.Grads[T], dst []T, rows int, cols []int) backend.Tensor[T] {
	w, nc := len(dst)/rows, len(cols)
	return gs.AccFunc(rows*nc, func(h []T) {
		for r := range rows {
			for j, c := range cols {
				dst[r*w+c] += h[r*nc+j]
			}
		}
	})
}

// backward is the composed path of Backward on checked arguments; ds, dz
// and dframes are nil when not wanted.
func (m *IPA[T]) backward(t *IPATape[T], dout, ds, dz, dframes backend.Tensor[T], grad *Params[T]) error {
	if ds == nil && dz == nil && dframes == nil && grad == nil {
		return nil
	}
	k, cfg, n := m.k, m.cfg, t.n
	cs, cz, h, c, pq, pv := cfg.CS, cfg.CZ, cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints
	hc, hq3, hv3, hpv, fw := h*c, h*pq*3, h*pv*3, h*pv, cfg.outputWidth()
	sw, wl := T(cfg.scalarWeight()), T(pairWeight())
	sc := backend.NewArena(k)
	defer sc.Free()
	v := backend.NewArena(k)

	// The parameter gradients, summed on the backend (nil when grad is
	// nil), in the kernels' layouts; Flush adds them to AF2's.
	var gs *backend.Grads[T]
	var dQW, dQB, dKW, dKB, dVW, dVB, dQPW, dQPB, dKPW, dKPB, dVPW, dVPB, dPairW, dOW, dOB, dOmega backend.Tensor[T]
	if grad != nil {
		gs = backend.NewGrads(sc)
		cols := kernelColumns(cfg)
		dQW, dQB = gs.Acc(grad.QScalar.W), gs.Acc(grad.QScalar.B)
		dKW, dKB = accCols(gs, grad.KVScalar.W, cs, cols.key), accCols(gs, grad.KVScalar.B, 1, cols.key)
		dVW, dVB = accCols(gs, grad.KVScalar.W, cs, cols.val), accCols(gs, grad.KVScalar.B, 1, cols.val)
		dQPW, dQPB = accCols(gs, grad.QPointLocal.W, cs, cols.qp), accCols(gs, grad.QPointLocal.B, 1, cols.qp)
		dKPW, dKPB = accCols(gs, grad.KVPointLocal.W, cs, cols.kp), accCols(gs, grad.KVPointLocal.B, 1, cols.kp)
		dVPW, dVPB = accCols(gs, grad.KVPointLocal.W, cs, cols.vp), accCols(gs, grad.KVPointLocal.B, 1, cols.vp)
		dPairW = gs.Acc(grad.Attention2D.W)
		dOW, dOB = gs.Acc(grad.OutputProjection.W), gs.Acc(grad.OutputProjection.B)
		// ∂L/∂ω_h, and on the host ω_h = pw·softplus(raw_h), softplus' = sigmoid.
		pw := T(cfg.pointWeight())
		dOmega = gs.AccFunc(h, func(d []T) {
			for hh, raw := range m.raw {
				grad.TrainablePointWeights[hh] += d[hh] * pw * num.Sigmoid(raw)
			}
		})
	}

	// Constants: ones [max(N, 3·P_q)] and ω_h for every residue [N, H].
	ones, omegaRep := sc.Alloc(max(n, 3*pq)), sc.Alloc(n*h)
	if sc.Err() != nil {
		return sc.Err()
	}
	if err := backend.Fill(k, ones, m.one); err != nil {
		return err
	}
	if err := backend.Fill(k, omegaRep, m.omega); err != nil {
		return err
	}

	// Output projection (line 12), and its input's gradient split into
	// its parts as forward assembled them (transposed to [F, N], each
	// part a block of rows, transposed back).
	dfeat, dfeatT := sc.Alloc(n*fw), sc.Alloc(fw*n)
	do, dptsT, dnorm, dpair := sc.Alloc(n*hc), sc.Alloc(n*3*hpv), sc.Alloc(n*hpv), sc.Alloc(n*h*cz)
	if sc.Err() != nil {
		return sc.Err()
	}
	if err := k.LinearBackward(dfeat, dOW, dOB, t.feat, m.outW, dout, n, fw, cs); err != nil {
		return err
	}
	if err := k.Transpose(dfeatT, dfeat, 1, n, fw, 1); err != nil {
		return err
	}
	off := 0
	for _, part := range []struct {
		x backend.Tensor[T]
		w int
	}{{do, hc}, {dptsT, 3 * hpv}, {dnorm, hpv}, {dpair, h * cz}} {
		src := v.View(dfeatT, off*n, part.w*n)
		if v.Err() != nil {
			return v.Err()
		}
		if err := k.Transpose(part.x, src, 1, part.w, n, 1); err != nil {
			return err
		}
		off += part.w
	}

	// The local output points [N, H·P_v, 3]: their coordinates' gradient,
	// plus the norms' dn·p/|p|; then back through p = T'⁻¹∘o_g.
	dpl, tmp, dog := sc.Alloc(n*hv3), sc.Alloc(n*hv3), sc.Alloc(n*hv3)
	if sc.Err() != nil {
		return sc.Err()
	}
	if err := k.Transpose(dpl, dptsT, n, 3, hpv, 1); err != nil {
		return err
	}
	if err := k.DivRows(tmp, t.ogl, t.norm, T(tinyNorm), n*hpv, 3); err != nil {
		return err
	}
	if err := k.ScaleRows(tmp, tmp, dnorm, n*hpv, 3); err != nil {
		return err
	}
	if err := k.Add(dpl, tmp); err != nil {
		return err
	}
	if err := k.RigidMapBackward(backend.InvertApply, dframes, dog, t.fc, t.og, dpl, n, hpv); err != nil {
		return err
	}

	// The projections again (the same kernels as forward), keeping the
	// local points, and ω_h·q_g as the logits used it.
	q, kk, vv := sc.Alloc(n*hc), sc.Alloc(n*hc), sc.Alloc(n*hc)
	ql, kl, vl := sc.Alloc(n*hq3), sc.Alloc(n*hq3), sc.Alloc(n*hv3)
	qg, kg, vg, qgs := sc.Alloc(n*hq3), sc.Alloc(n*hq3), sc.Alloc(n*hv3), sc.Alloc(n*hq3)
	if sc.Err() != nil {
		return sc.Err()
	}
	if err := m.project(t.s, t.fc, n, q, kk, vv, qg, kg, vg, &[3]backend.Tensor[T]{ql, kl, vl}); err != nil {
		return err
	}
	if err := k.ScaleRows(qgs, qg, omegaRep, n*h, 3*pq); err != nil {
		return err
	}

	// The attention, a chunk of query rows at a time (ForwardTape's
	// chunks): the weights' gradient da [H, r, N] from o = a·v, o_g =
	// a·v_g and pair = a·z, the values' and z's gradients, the softmax's
	// dl, and from the logits l = w_L·z·W_2d + sw·q·k + (ω·q_g)·k_g −
	// ½·ω·|k_g|² − Inf·m_i·(1 − m_j) the gradients of q, k, ω·q_g, k_g,
	// z and W_2d, with ncs [N, H] = −Σ_i dl for the |k_g|² term.
	rows := t.rows
	da, dl := sc.Alloc(h*rows*n), sc.Alloc(h*rows*n)
	dq, dk, dv := sc.Alloc(n*hc), sc.Alloc(n*hc), sc.Alloc(n*hc)
	dqgs, dkg, dvg, ncs := sc.Alloc(n*hq3), sc.Alloc(n*hq3), sc.Alloc(n*hv3), sc.Alloc(n*h)
	if sc.Err() != nil {
		return sc.Err()
	}
	// run runs batched products; one marked skip is left out.
	type product struct {
		tA, tB  bool
		m, n, k int
		alpha   T
		a       backend.Tensor[T]
		lda, sA int
		b       backend.Tensor[T]
		ldb, sB int
		beta    T
		c       backend.Tensor[T]
		ldc, sC int
		batch   int
		skip    bool
	}
	run := func(ps []product) error {
		for _, p := range ps {
			if p.skip {
				continue
			}
			if err := k.GemmStridedBatched(p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.sA, p.b, p.ldb, p.sB, p.beta, p.c, p.ldc, p.sC, p.batch); err != nil {
				return err
			}
		}
		return nil
	}
	for i0 := 0; i0 < n; i0 += rows {
		r := min(rows, n-i0)
		rn := r * n
		ac, dav, dlv := v.View(t.a, i0*h*n, h*rn), v.View(da, 0, h*rn), v.View(dl, 0, h*rn)
		zc, doc, dogc, dpc := v.View(t.z, i0*n*cz, rn*cz), v.View(do, i0*hc, r*hc), v.View(dog, i0*hv3, r*hv3), v.View(dpair, i0*h*cz, r*h*cz)
		qc, qgsc, dqc, dqgsc := v.View(q, i0*hc, r*hc), v.View(qgs, i0*hq3, r*hq3), v.View(dq, i0*hc, r*hc), v.View(dqgs, i0*hq3, r*hq3)
		var dzc backend.Tensor[T]
		if dz != nil {
			dzc = v.View(dz, i0*n*cz, rn*cz)
		}
		if v.Err() != nil {
			return v.Err()
		}
		// da = do·vᵀ + do_g·v_gᵀ per head, + dpair_i·z_iᵀ per query row;
		// dv += aᵀ·do, dv_g += aᵀ·do_g per head; dz_i += a_iᵀ·dpair_i.
		if err := run([]product{
			{false, true, r, n, c, 1, doc, hc, c, vv, hc, c, 0, dav, n, rn, h, false},
			{false, true, r, n, 3 * pv, 1, dogc, hv3, 3 * pv, vg, hv3, 3 * pv, 1, dav, n, rn, h, false},
			{false, true, h, n, cz, 1, dpc, cz, h * cz, zc, cz, n * cz, 1, dav, rn, n, r, false},
			{true, false, n, c, r, 1, ac, n, rn, doc, hc, c, 1, dv, hc, c, h, false},
			{true, false, n, 3 * pv, r, 1, ac, n, rn, dogc, hv3, 3 * pv, 1, dvg, hv3, 3 * pv, h, false},
			{true, false, n, cz, h, 1, ac, rn, n, dpc, cz, h * cz, 1, dzc, cz, n * cz, r, dzc == nil},
		}); err != nil {
			return err
		}
		if err := k.Zero(dlv); err != nil {
			return err
		}
		if err := k.SoftmaxBackward(dlv, ac, dav, h*r, n); err != nil {
			return err
		}
		// The logits' terms, per head: dq += sw·dl·k, dk += sw·dlᵀ·q,
		// d(ω·q_g) += dl·k_g, dk_g += dlᵀ·(ω·q_g), ncs −= Σ_i dl.
		if err := run([]product{
			{false, false, r, c, n, sw, dlv, n, rn, kk, hc, c, 1, dqc, hc, c, h, false},
			{true, false, n, c, r, sw, dlv, n, rn, qc, hc, c, 1, dk, hc, c, h, false},
			{false, false, r, 3 * pq, n, 1, dlv, n, rn, kg, hq3, 3 * pq, 1, dqgsc, hq3, 3 * pq, h, false},
			{true, false, n, 3 * pq, r, 1, dlv, n, rn, qgsc, hq3, 3 * pq, 1, dkg, hq3, 3 * pq, h, false},
			{true, false, n, 1, r, -1, dlv, n, rn, ones, 1, 0, 1, ncs, h, 1, h, false},
		}); err != nil {
			return err
		}
		// The pair bias w_L·z_ij·W_2d, dl being [H, r·N]: dz += w_L·dlᵀ·W_2dᵀ,
		// dW_2d += w_L·zᵀ·dlᵀ.
		if dzc != nil {
			if err := k.Gemm(true, true, rn, cz, h, wl, dlv, rn, m.pairW, h, 1, dzc, cz); err != nil {
				return err
			}
		}
		if dPairW != nil {
			if err := k.Gemm(true, true, cz, h, rn, wl, zc, cz, dlv, rn, 1, dPairW, h); err != nil {
				return err
			}
		}
	}

	// The head weights: ∂L/∂ω_h = Σ d(ω·q_g)·q_g + ½·Σ_j ncs·|k_g|² over
	// residues and points; the point gradients dq_g = ω·d(ω·q_g) and
	// dk_g += ω·ncs·k_g (from −½·ω·|k_g|²).
	sq, kn, t1 := sc.Alloc(n*hq3), sc.Alloc(n*h), sc.Alloc(n*h)
	if sc.Err() != nil {
		return sc.Err()
	}
	if dOmega != nil {
		if err := k.Mul(sq, dqgs, qg); err != nil {
			return err
		}
		if err := k.Gemm(false, false, n*h, 1, 3*pq, 1, sq, 3*pq, ones, 1, 0, t1, 1); err != nil {
			return err
		}
		if err := k.Gemm(true, false, h, 1, n, 1, t1, h, ones, 1, 1, dOmega, 1); err != nil {
			return err
		}
		if err := k.Mul(sq, kg, kg); err != nil {
			return err
		}
		if err := k.Gemm(false, false, n*h, 1, 3*pq, 1, sq, 3*pq, ones, 1, 0, kn, 1); err != nil {
			return err
		}
		if err := k.Mul(t1, ncs, kn); err != nil {
			return err
		}
		if err := k.Gemm(true, false, h, 1, n, 0.5, t1, h, ones, 1, 1, dOmega, 1); err != nil {
			return err
		}
	}
	if err := k.ScaleRows(dqgs, dqgs, omegaRep, n*h, 3*pq); err != nil {
		return err
	}
	if err := k.Mul(t1, ncs, omegaRep); err != nil {
		return err
	}
	if err := k.ScaleRows(sq, kg, t1, n*h, 3*pq); err != nil {
		return err
	}
	if err := k.Add(dkg, sq); err != nil {
		return err
	}

	// The point maps g = T'∘l (lines 1–3): frames and local points.
	dql, dkl, dvl := sc.Alloc(n*hq3), sc.Alloc(n*hq3), sc.Alloc(n*hv3)
	if sc.Err() != nil {
		return sc.Err()
	}
	for _, p := range []struct {
		dl, l, dg backend.Tensor[T]
		pts       int
	}{{dql, ql, dqgs, h * pq}, {dkl, kl, dkg, h * pq}, {dvl, vl, dvg, hpv}} {
		if err := k.RigidMapBackward(backend.Apply, dframes, p.dl, t.fc, p.l, p.dg, n, p.pts); err != nil {
			return err
		}
	}

	// The six projections of s.
	if ds != nil || grad != nil {
		for _, p := range []struct {
			w, dw, db, dy backend.Tensor[T]
			out           int
		}{
			{m.qW, dQW, dQB, dq, hc}, {m.kW, dKW, dKB, dk, hc}, {m.vW, dVW, dVB, dv, hc},
			{m.qpW, dQPW, dQPB, dql, hq3}, {m.kpW, dKPW, dKPB, dkl, hq3}, {m.vpW, dVPW, dVPB, dvl, hv3},
		} {
			if err := k.LinearBackward(ds, p.dw, p.db, t.s, p.w, p.dy, n, cs, p.out); err != nil {
				return err
			}
		}
	}
	return gs.Flush()
}
