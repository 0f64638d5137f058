package triangle

import (
	"errors"
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// MulTape records on the backend what Mul.Backward needs from one
// Mul.ForwardTape call: the training counterpart of MulCache for a module
// on a backend. A zero MulTape is ready to use; a later ForwardTape call
// replaces what it holds, and Free releases it.
//
// On the CPU dispatch path (CPU tensors, see Mul.Forward) the tape holds a
// MulCache filled by MulForward. On the composed path it holds backend
// tensors: the normalised input x [N², c_z] with the statistics of
// layer_norm_input [N²], and the contracted edges after center_layer_norm's
// normalisation (before its affine map) û [N², c] with their 1/σ [N²];
// Backward recomputes the output gate, the output projection and the
// gated projections a and b (block by block of pairs, chunk by chunk of
// hidden channels). That is two N×N×c_z-sized arrays, as MulCache, and
// nothing of size N³.
//
// Either way the tape refers to (does not copy) the z and mask passed to
// ForwardTape, which must not change or be freed until the last Backward
// call that uses the tape.
type MulTape[T num.Float] struct {
	m     *Mul[T] // the module that filled the tape
	k     backend.Kernels[T]
	n     int
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds MulForward's cache

	cache   MulCache[T]
	z, mask backend.Tensor[T]

	x, mean, rstd backend.Tensor[T] // layer_norm_input: output [N², c_z] and statistics [N²]
	uhat, urstd   backend.Tensor[T] // normalised edges [N², c] and their 1/σ [N²]
	own           *backend.Arena[T] // the tensors above, freed by release
}

// Free releases the tape's tensors (and its CPU cache); the tape is then
// empty, ready for another ForwardTape call. Free of a zero tape does
// nothing.
func (t *MulTape[T]) Free() {
	t.release()
	t.cache = MulCache[T]{}
}

// release frees the backend tensors of t and marks it empty, keeping the
// CPU cache's buffers for reuse.
func (t *MulTape[T]) release() {
	if t.own != nil {
		t.own.Free()
	}
	c := t.cache
	c.valid, c.z, c.mask = false, nil, nil
	*t = MulTape[T]{cache: c}
}

// ForwardTape computes what Forward computes (the same kernels in the same
// order, so out is bit for bit Forward's) and records in tape what
// Backward needs to differentiate it: supplement Algorithm 11 (outgoing
// edges) or 12 (incoming edges) for training on a backend. z [N, N, c_z],
// mask [N, N] and out [N, N, c_z] are as for Forward, and tape must not be
// nil; what tape held before is released. See MulTape for what is kept
// (the tape refers to z and mask).
//
// On CPU tensors (and outside the package's tests of the composed path)
// ForwardTape runs MulForward with the tape's MulCache.
//
// The error wraps ErrConfig for a closed module or a nil tape, num.ErrShape
// for a length that does not match n and the configuration, num.ErrNaN for
// a non-finite z or mask on the CPU path, and the backend's errors; the
// tape is then empty.
func (m *Mul[T]) ForwardTape(z, mask backend.Tensor[T], n int, out backend.Tensor[T], tape *MulTape[T]) error {
	if m.p == nil {
		return fmt.Errorf("triangle: Mul.ForwardTape on a closed module: %w", ErrConfig)
	}
	if tape == nil {
		return fmt.Errorf("triangle: Mul.ForwardTape: nil tape: %w", ErrConfig)
	}
	tape.release()
	if err := checkPairTensors("Mul.ForwardTape", z, mask, out, n, m.p.Config.PairChannels); err != nil {
		return err
	}
	tape.m, tape.k, tape.n, tape.z, tape.mask = m, m.k, n, z, mask
	if h, ok := backend.HostSlices(z, mask, out); ok && !m.composed {
		tape.host = true
		if err := MulForward(m.p, h[0], h[1], n, h[2], &tape.cache); err != nil {
			tape.release()
			return err
		}
		tape.valid = true
		return nil
	}
	if err := m.forwardTape(z, mask, n, out, tape); err != nil {
		tape.release()
		return fmt.Errorf("triangle: Mul.ForwardTape: %w", err)
	}
	tape.valid = true
	return nil
}

// forwardTape is the composed path of Forward (t nil) and ForwardTape on
// checked arguments. With a tape it keeps the normalised input with its
// statistics and the normalised edges with their 1/σ in t; without one the
// normalised input is freed before the edges are transposed, so that
// Forward holds at most two N×N×c_z-sized tensors beside its output.
func (m *Mul[T]) forwardTape(z, mask backend.Tensor[T], n int, out backend.Tensor[T], t *MulTape[T]) error {
	if n == 0 {
		return nil
	}
	k, cfg := m.k, m.p.Config
	cz, ch := cfg.PairChannels, cfg.HiddenChannels
	n2 := n * n
	v := backend.NewArena(k)
	var keep *backend.Arena[T] // the tape's tensors, handed to t at the end
	if t != nil {
		keep = backend.NewArena(k)
		defer func() {
			if t.own != keep {
				keep.Free()
			}
		}()
	}

	// The contracted edges u [c, N, N], channel-major; ut [N², c] is their
	// transpose.
	edges := backend.NewArena(k)
	defer edges.Free()
	u := edges.Alloc(ch * n2)
	// Normalised input x and the output gate's logits (in out).
	work := backend.NewArena(k)
	defer work.Free()
	var x, mean, rstd backend.Tensor[T]
	if t != nil {
		x, mean, rstd = keep.Alloc(n2*cz), keep.Alloc(n2), keep.Alloc(n2)
	} else {
		x = work.Alloc(n2 * cz)
	}
	if err := errors.Join(edges.Err(), work.Err(), arenaErr(keep)); err != nil {
		return err
	}
	if err := k.LayerNorm(x, z, n2, cz, m.lnScale, m.lnOffset, T(nn.LayerNormEps), mean, rstd); err != nil {
		return err
	}
	if err := k.Linear(out, x, n2, cz, cz, m.gW, m.gB); err != nil {
		return err
	}

	// Projections and contraction, a chunk of hidden channels at a time:
	// pr and gt hold one side's projection and gate [N², chunk]; a
	// (channel-major) the left side, and gt, once free, the right side.
	w := cfg.chunk(n, sizeOf[T]())
	pr, gt, a, wc := work.Alloc(w*n2), work.Alloc(w*n2), work.Alloc(w*n2), work.Alloc(cz*w)
	if work.Err() != nil {
		return work.Err()
	}
	for c0 := 0; c0 < ch; c0 += w {
		cw := min(w, ch-c0)
		pv, gv, av, wv := v.View(pr, 0, n2*cw), v.View(gt, 0, n2*cw), v.View(a, 0, n2*cw), v.View(wc, 0, cz*cw)
		uv := v.View(u, c0*n2, cw*n2)
		if v.Err() != nil {
			return v.Err()
		}
		for side, dst := range []backend.Tensor[T]{av, gv} {
			if err := m.project(side, c0, cw, x, mask, n2, pv, gv, wv, v); err != nil {
				return err
			}
			if err := k.Transpose(dst, pv, 1, n2, cw, 1); err != nil {
				return err
			}
		}
		// av holds a [cw, N, N], gv holds b.
		if err := m.contract(n, cw, av, gv, uv); err != nil {
			return err
		}
	}
	work.Free()

	// Centre layer norm over the channels of each pair, on [N², c].
	tail := backend.NewArena(k)
	defer tail.Free()
	owner := tail
	if t != nil {
		owner = keep
	}
	ut := owner.Alloc(n2 * ch)
	var urstd backend.Tensor[T]
	if t != nil {
		urstd = keep.Alloc(n2)
	}
	if owner.Err() != nil {
		return owner.Err()
	}
	if err := k.Transpose(ut, u, 1, ch, n2, 1); err != nil {
		return err
	}
	edges.Free()
	if err := k.LayerNorm(ut, ut, n2, ch, m.ones, m.zeros, T(nn.LayerNormEps), nil, urstd); err != nil {
		return err
	}

	// Output projection (centre affine map folded in) and gate, in blocks
	// of pairs.
	np := mulBlockPairs[T](n2, cz)
	o := tail.Alloc(np * cz)
	if tail.Err() != nil {
		return tail.Err()
	}
	for p0 := 0; p0 < n2; p0 += np {
		nq := min(np, n2-p0)
		us, os, ov := v.View(ut, p0*ch, nq*ch), v.View(out, p0*cz, nq*cz), v.View(o, 0, nq*cz)
		if v.Err() != nil {
			return v.Err()
		}
		if err := k.Linear(ov, us, nq, ch, cz, m.outW, m.outB); err != nil {
			return err
		}
		if err := k.Gate(os, os, ov); err != nil {
			return err
		}
	}
	if t != nil {
		t.x, t.mean, t.rstd, t.uhat, t.urstd = x, mean, rstd, ut, urstd
		t.own = keep
	}
	return nil
}

// arenaErr returns a's error, or nil for a nil arena.
func arenaErr[T num.Float](a *backend.Arena[T]) error {
	if a == nil {
		return nil
	}
	return a.Err()
}

// mulBlockPairs is the number of pairs whose output projection forward
// computes at once.
func mulBlockPairs[T num.Float](n2, cz int) int {
	return max(1, min(n2, chunkBytes/(cz*sizeOf[T]())))
}

// contract computes the edges u [cw, N, N] of one chunk of hidden channels
// from a and b [cw, N, N] (channel-major), as forward does: u = a·bᵀ per
// channel (outgoing), u = bᵀ·a (incoming).
func (m *Mul[T]) contract(n, cw int, a, b, u backend.Tensor[T]) error {
	n2 := n * n
	if m.p.Config.Incoming {
		return m.k.GemmStridedBatched(true, false, n, n, n, 1, b, n, n2, a, n, n2, 0, u, n, n2, cw)
	}
	return m.k.GemmStridedBatched(false, true, n, n, n, 1, a, n, n2, b, n, n2, 0, u, n, n2, cw)
}

// linearChunk computes y [N², cw] = x·W + b for the hidden channels
// [c0, c0+cw) of projection l (0 left_projection, 1 left_gate,
// 2 right_projection, 3 right_gate), leaving the chunk's weights [c_z, cw]
// in wv, as project does.
func (m *Mul[T]) linearChunk(l, c0, cw int, x backend.Tensor[T], n2 int, y, wv backend.Tensor[T], v *backend.Arena[T]) error {
	k, cz := m.k, m.p.Config.PairChannels
	wt, b := v.View(m.projWT[l], c0*cz, cw*cz), v.View(m.projB[l], c0, cw)
	if v.Err() != nil {
		return v.Err()
	}
	if err := k.Transpose(wv, wt, 1, cw, cz, 1); err != nil {
		return err
	}
	return k.Linear(y, x, n2, cz, cw, wv, b)
}

// Backward computes the gradients of a scalar loss L through the triangle
// multiplicative update (supplement Algorithm 11 or 12) whose ForwardTape
// call filled tape, on the backend. dout is ∂L/∂out [N, N, c_z]. Backward
// accumulates (+=) ∂L/∂z into dz [N, N, c_z] on the backend (dz nil: not
// computed) and, when grad is not nil, ∂L/∂θ into the host parameters grad
// (AF2 layouts, as MulBackward fills them: start from p.ZerosLike()). The
// mask gets no gradient. The tape is left intact, so Backward may be called
// again (each call accumulates once more).
//
// On a tape filled by the CPU dispatch path Backward is MulBackward (dout
// and dz must then be CPU tensors). Otherwise it composes the backend's
// kernels in two passes, as MulBackward does:
//
//   - block by block of pairs, it recomputes the output gate's logits and
//     the output projection (centre affine map folded in), back-propagates
//     the gate (GateBackward) and gating_linear (LinearBackward), sums
//     M = ûᵀ·∂L/∂y and Σ∂L/∂y for the output projection's gradient
//     (∂W_o = diag(scale)·M + offset⊗Σ∂L/∂y, formed on the host), and
//     back-propagates center_layer_norm (LayerNormBackward on û with unit
//     statistics, then ScaleRows by 1/σ) into ∂L/∂u, transposed to
//     channel-major [c, N, N];
//   - chunk by chunk of hidden channels, it recomputes a and b, takes the
//     contraction's gradients as batched N×N×N products
//     (GemmStridedBatched: outgoing ∂A = ∂U·B and ∂B = ∂Uᵀ·A, incoming
//     ∂A = B·∂U and ∂B = A·∂Uᵀ), and back-propagates the mask
//     (ScaleRows), the gates (GateBackward, on recomputed projections and
//     gate logits) and the four projections (LinearBackward);
//
// then layer_norm_input (LayerNormBackward, into dz). Beside the tape it
// holds ∂L/∂x [N², c_z], ∂L/∂u [c, N²] (and its transpose while it is
// formed) and six [chunk, N, N] buffers (MulConfig.ChunkChannels); nothing
// of size N³. The parameter gradients are summed on the backend and added
// to grad once, at the end.
//
// The error wraps ErrConfig for a closed module or a grad of another
// configuration, ErrNoForward for a nil or empty tape or one filled by
// another module, num.ErrShape for a dout or dz whose length does not
// match the tape's N, backend.ErrForeign for backend tensors given with a
// tape of the CPU path, num.ErrNaN for a non-finite dout on the CPU path,
// and the backend's errors.
func (m *Mul[T]) Backward(tape *MulTape[T], dout, dz backend.Tensor[T], grad *MulParams[T]) error {
	if m.p == nil {
		return fmt.Errorf("triangle: Mul.Backward on a closed module: %w", ErrConfig)
	}
	if tape == nil || !tape.valid {
		return fmt.Errorf("triangle: Mul.Backward: %w", ErrNoForward)
	}
	if tape.m != m {
		return fmt.Errorf("triangle: Mul.Backward: tape filled by another module: %w", ErrNoForward)
	}
	if err := checkGradTensors("Mul.Backward", dout, dz, tape.n, m.p.Config.PairChannels); err != nil {
		return err
	}
	if grad != nil {
		if grad.Config != m.p.Config {
			return fmt.Errorf("triangle: Mul.Backward: gradient config %+v, want %+v: %w", grad.Config, m.p.Config, ErrConfig)
		}
		if err := grad.check(); err != nil {
			return fmt.Errorf("triangle: Mul.Backward: gradient: %w", err)
		}
	}
	if tape.host {
		d, dzh, err := hostGradSlices("Mul.Backward", dout, dz)
		if err != nil {
			return err
		}
		return MulBackward(m.p, &tape.cache, d, dzh, grad)
	}
	if err := m.backward(tape, dout, optional(dz), grad); err != nil {
		return fmt.Errorf("triangle: Mul.Backward: %w", err)
	}
	return nil
}

// backward is the composed path of Backward on checked arguments; dz is
// nil when not wanted.
func (m *Mul[T]) backward(t *MulTape[T], dout, dz backend.Tensor[T], grad *MulParams[T]) error {
	n := t.n
	if n == 0 || (dz == nil && grad == nil) {
		return nil
	}
	k, p := m.k, m.p
	cfg := p.Config
	cz, ch := cfg.PairChannels, cfg.HiddenChannels
	n2 := n * n
	v := backend.NewArena(k)
	sc := backend.NewArena(k)
	defer sc.Free()

	// The parameter gradients, summed on the backend (nil when grad is nil).
	// The projections' weights are summed transposed, [c, c_z], a chunk of
	// channels being a block of rows; the output projection's as M and
	// Σ∂L/∂y (see Backward).
	var gs *backend.Grads[T]
	if grad != nil {
		gs = backend.NewGrads(sc)
	}
	var dLS, dLO, dCS, dCO, dM, dOB, dGW, dGB backend.Tensor[T]
	var dPW, dPB [4]backend.Tensor[T]
	if grad != nil {
		dLS, dLO = gs.Acc(grad.LayerNormInput.Scale), gs.Acc(grad.LayerNormInput.Offset)
		dCS, dCO = gs.Acc(grad.CenterLayerNorm.Scale), gs.Acc(grad.CenterLayerNorm.Offset)
		dGW, dGB = gs.Acc(grad.GatingLinear.W), gs.Acc(grad.GatingLinear.B)
		var sumDy []T
		dOB = gs.AccFunc(cz, func(h []T) {
			sumDy = h
			addTo(grad.OutputProjection.B, h)
		})
		dM = gs.AccFunc(ch*cz, func(h []T) {
			// flush runs the updates in order: sumDy is set.
			s, off, w := p.CenterLayerNorm.Scale, p.CenterLayerNorm.Offset, grad.OutputProjection.W
			for c := range ch {
				for j := range cz {
					w[c*cz+j] += s[c]*h[c*cz+j] + off[c]*sumDy[j]
				}
			}
		})
		for l, lp := range [4]*nn.LinearParams[T]{&grad.LeftProjection, &grad.LeftGate, &grad.RightProjection, &grad.RightGate} {
			dPW[l] = gs.AccFunc(ch*cz, func(h []T) {
				for c := range ch {
					for r := range cz {
						lp.W[r*ch+c] += h[c*cz+r]
					}
				}
			})
			dPB[l] = gs.Acc(lp.B)
		}
	}
	wo, cScale := sc.FromHost(p.OutputProjection.W), sc.FromHost(p.CenterLayerNorm.Scale)
	dx, dut := sc.Alloc(n2*cz), sc.Alloc(n2*ch)
	if sc.Err() != nil {
		return sc.Err()
	}

	// Pass 1: output gate, output projection and centre layer norm, block
	// by block of pairs.
	blk := backend.NewArena(k)
	defer blk.Free()
	np := mulBlockPairs[T](n2, cz)
	ones := make([]T, np)
	for i := range ones {
		ones[i] = 1
	}
	ob, gb, dob, dgb, dtb, zb := blk.Alloc(np*cz), blk.Alloc(np*cz), blk.Alloc(np*cz), blk.Alloc(np*cz), blk.Alloc(np*ch), blk.Alloc(np)
	onesb := blk.FromHost(ones)
	if blk.Err() != nil {
		return blk.Err()
	}
	for p0 := 0; p0 < n2; p0 += np {
		nq := min(np, n2-p0)
		xs, us, ds := v.View(t.x, p0*cz, nq*cz), v.View(t.uhat, p0*ch, nq*ch), v.View(dout, p0*cz, nq*cz)
		dxs, duts, rs := v.View(dx, p0*cz, nq*cz), v.View(dut, p0*ch, nq*ch), v.View(t.urstd, p0, nq)
		o, g, do, dg := v.View(ob, 0, nq*cz), v.View(gb, 0, nq*cz), v.View(dob, 0, nq*cz), v.View(dgb, 0, nq*cz)
		dt, z0, z1 := v.View(dtb, 0, nq*ch), v.View(zb, 0, nq), v.View(onesb, 0, nq)
		if v.Err() != nil {
			return v.Err()
		}
		// out = σ(g) ⊙ y, g = x·W_g + b_g, y = û·W' + b'.
		if err := k.Linear(o, us, nq, ch, cz, m.outW, m.outB); err != nil {
			return err
		}
		if err := k.Linear(g, xs, nq, cz, cz, m.gW, m.gB); err != nil {
			return err
		}
		if err := zero(k, do, dg, dt); err != nil {
			return err
		}
		if err := k.GateBackward(dg, do, g, o, ds); err != nil {
			return err
		}
		if err := k.LinearBackward(dxs, dGW, dGB, xs, m.gW, dg, nq, cz, cz); err != nil {
			return err
		}
		if grad != nil {
			if err := k.LinearBackward(nil, dM, dOB, us, nil, do, nq, ch, cz); err != nil {
				return err
			}
		}
		// With t = û⊙scale + offset and y = t·W_o + b_o: ∂L/∂t = ∂L/∂y·W_oᵀ,
		// and center_layer_norm's backward is LayerNormBackward on
		// x̂ = û (mean 0, 1/σ 1) scaled by the forward pass's 1/σ.
		if err := k.LinearBackward(dt, nil, nil, nil, wo, do, nq, ch, cz); err != nil {
			return err
		}
		if err := k.LayerNormBackward(duts, dCS, dCO, us, cScale, z0, z1, dt, nq, ch); err != nil {
			return err
		}
		if err := k.ScaleRows(duts, duts, rs, nq, ch); err != nil {
			return err
		}
	}
	blk.Free()
	edges := backend.NewArena(k)
	defer edges.Free()
	du := edges.Alloc(ch * n2)
	if edges.Err() != nil {
		return edges.Err()
	}
	if err := k.Transpose(du, dut, 1, n2, ch, 1); err != nil {
		return err
	}

	// Pass 2: the contraction and the projections, a chunk of hidden
	// channels at a time.
	work := backend.NewArena(k)
	defer work.Free()
	w := cfg.chunk(n, sizeOf[T]())
	var buf [6]backend.Tensor[T]
	for i := range buf {
		buf[i] = work.Alloc(w * n2)
	}
	wpb, wgb, dwb := work.Alloc(cz*w), work.Alloc(cz*w), work.Alloc(cz*w)
	if work.Err() != nil {
		return work.Err()
	}
	for c0 := 0; c0 < ch; c0 += w {
		cw := min(w, ch-c0)
		var b [6]backend.Tensor[T]
		for i := range b {
			b[i] = v.View(buf[i], 0, cw*n2)
		}
		av, bv, da, db, pv, gv := b[0], b[1], b[2], b[3], b[4], b[5]
		wp, wg, dw, duv := v.View(wpb, 0, cz*cw), v.View(wgb, 0, cz*cw), v.View(dwb, 0, cz*cw), v.View(du, c0*n2, cw*n2)
		if v.Err() != nil {
			return v.Err()
		}
		// a and b [cw, N, N], as forward computes them.
		for side, dst := range []backend.Tensor[T]{av, bv} {
			if err := m.project(side, c0, cw, t.x, t.mask, n2, pv, gv, wp, v); err != nil {
				return err
			}
			if err := k.Transpose(dst, pv, 1, n2, cw, 1); err != nil {
				return err
			}
		}
		if err := m.uncontract(n, cw, av, bv, duv, da, db); err != nil {
			return err
		}
		// ∂L/∂a and ∂L/∂b back to [N², cw], into a's and b's buffers.
		if err := k.Transpose(av, da, 1, cw, n2, 1); err != nil {
			return err
		}
		if err := k.Transpose(bv, db, 1, cw, n2, 1); err != nil {
			return err
		}
		for side, dside := range []backend.Tensor[T]{av, bv} {
			// a = mask ⊙ σ(g) ⊙ p: ∂L/∂(σ(g)⊙p) = mask ⊙ ∂L/∂a.
			if err := k.ScaleRows(dside, dside, t.mask, n2, cw); err != nil {
				return err
			}
			lp, lg := 2*side, 2*side+1
			if err := m.linearChunk(lp, c0, cw, t.x, n2, pv, wp, v); err != nil {
				return err
			}
			if err := m.linearChunk(lg, c0, cw, t.x, n2, gv, wg, v); err != nil {
				return err
			}
			dp, dg := da, db
			if err := zero(k, dp, dg); err != nil {
				return err
			}
			if err := k.GateBackward(dg, dp, gv, pv, dside); err != nil {
				return err
			}
			for _, q := range []struct {
				l     int
				w, dy backend.Tensor[T]
			}{{lp, wp, dp}, {lg, wg, dg}} {
				if grad == nil {
					if err := k.LinearBackward(dx, nil, nil, nil, q.w, q.dy, n2, cz, cw); err != nil {
						return err
					}
					continue
				}
				if err := k.Zero(dw); err != nil {
					return err
				}
				dbv := v.View(dPB[q.l], c0, cw)
				dwt := v.View(dPW[q.l], c0*cz, cw*cz)
				if v.Err() != nil {
					return v.Err()
				}
				if err := k.LinearBackward(dx, dw, dbv, t.x, q.w, q.dy, n2, cz, cw); err != nil {
					return err
				}
				// The chunk's rows [c0, c0+cw) of the transposed gradient.
				if err := k.Transpose(dwt, dw, 1, cz, cw, 1); err != nil {
					return err
				}
			}
		}
	}
	work.Free()
	edges.Free()

	if err := k.LayerNormBackward(dz, dLS, dLO, t.z, m.lnScale, t.mean, t.rstd, dx, n2, cz); err != nil {
		return err
	}
	return gs.Flush()
}

// uncontract computes the gradients of contract for one chunk, overwriting
// da and db [cw, N, N]: outgoing (U = A·Bᵀ) ∂A = ∂U·B and ∂B = ∂Uᵀ·A;
// incoming (U = Bᵀ·A) ∂A = B·∂U and ∂B = A·∂Uᵀ.
func (m *Mul[T]) uncontract(n, cw int, a, b, du, da, db backend.Tensor[T]) error {
	k, n2 := m.k, n*n
	if m.p.Config.Incoming {
		if err := k.GemmStridedBatched(false, false, n, n, n, 1, b, n, n2, du, n, n2, 0, da, n, n2, cw); err != nil {
			return err
		}
		return k.GemmStridedBatched(false, true, n, n, n, 1, a, n, n2, du, n, n2, 0, db, n, n2, cw)
	}
	if err := k.GemmStridedBatched(false, false, n, n, n, 1, du, n, n2, b, n, n2, 0, da, n, n2, cw); err != nil {
		return err
	}
	return k.GemmStridedBatched(true, false, n, n, n, 1, du, n, n2, a, n, n2, 0, db, n, n2, cw)
}
