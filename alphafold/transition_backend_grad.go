package alphafold

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// TransitionTape records on the backend what Transition.Backward needs
// from one Transition.ForwardTape call: the training counterpart of
// TransitionCache for a module on a backend. A zero TransitionTape is
// ready to use; a later ForwardTape call replaces what it holds, and Free
// releases it.
//
// On the CPU dispatch path (CPU tensors, see Transition.Forward) the tape
// holds a TransitionCache filled by TransitionParams.Forward. On the
// composed path it holds the layer-norm statistics [rows] on the backend;
// Backward recomputes the hidden layer chunk by chunk, as the CPU backward
// does, so the tape holds O(rows) values. Either way the tape refers to
// (does not copy) the x and mask passed to ForwardTape, which must not
// change or be freed until the last Backward call that uses the tape.
type TransitionTape[T num.Float] struct {
	m     *Transition[T] // the module that filled the tape
	rows  int
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds the CPU cache

	cache   TransitionCache[T]
	x, mask backend.Tensor[T]

	mean, rstd backend.Tensor[T] // input_layer_norm's statistics [rows]
	own        *backend.Arena[T] // the tensors above, freed by Free
}

// Free releases the tape's tensors and its CPU cache; the tape is then
// empty, ready for another ForwardTape call. Free of a zero tape does
// nothing.
func (t *TransitionTape[T]) Free() {
	if t.own != nil {
		t.own.Free()
	}
	*t = TransitionTape[T]{}
}

// ForwardTape computes what Forward computes (the same kernels in the same
// order, so out is bit for bit Forward's) and records in tape what
// Backward needs to differentiate it: supplement Algorithms 9 and 15 for
// training on a backend. x [rows, C], mask ([rows] or nil) and out
// [rows, C] are as for Forward, and tape must not be nil; what tape held
// before is released. See TransitionTape for what is kept (the tape refers
// to x and mask).
//
// On CPU tensors ForwardTape runs TransitionParams.Forward with the tape's
// TransitionCache.
//
// The error wraps ErrConfig for a closed module or a nil tape, num.ErrShape
// for a length that does not match rows and C, num.ErrNaN on the CPU path
// for a non-finite x or mask, and the backend's errors; the tape is then
// empty.
func (m *Transition[T]) ForwardTape(x, mask backend.Tensor[T], rows int, out backend.Tensor[T], tape *TransitionTape[T]) error {
	if m.p == nil {
		return fmt.Errorf("alphafold: Transition.ForwardTape on a closed module: %w", ErrConfig)
	}
	if tape == nil {
		return fmt.Errorf("alphafold: Transition.ForwardTape: nil tape: %w", ErrConfig)
	}
	tape.Free()
	if err := m.checkTensors(x, mask, rows, out); err != nil {
		return err
	}
	mask = bkOptional(mask)
	tape.m, tape.rows, tape.x, tape.mask = m, rows, x, mask
	if h, ok := backend.HostSlices(x, mask, out); ok && !m.composed {
		tape.host = true
		if err := m.p.Forward(h[0], rows, h[1], h[2], &tape.cache); err != nil {
			tape.Free()
			return err
		}
		tape.valid = true
		return nil
	}
	if err := m.forwardTape(x, mask, rows, out, tape); err != nil {
		tape.Free()
		return fmt.Errorf("alphafold: Transition.ForwardTape: %w", err)
	}
	tape.valid = true
	return nil
}

// checkTensors checks the tensors of Forward and ForwardTape: x and out
// [rows, C], and mask [rows] unless it is absent.
func (m *Transition[T]) checkTensors(x, mask backend.Tensor[T], rows int, out backend.Tensor[T]) error {
	c := m.cfg.C
	if rows < 0 {
		return fmt.Errorf("alphafold: transition: %d rows: %w", rows, num.ErrShape)
	}
	shp := fmt.Sprintf("[rows C] = [%d %d]", rows, c)
	if err := bkCheck("transition", "input", x, rows*c, shp); err != nil {
		return err
	}
	if !backend.Absent(mask) {
		if err := bkCheck("transition", "mask", mask, rows, fmt.Sprintf("[rows] = [%d]", rows)); err != nil {
			return err
		}
	}
	return bkCheck("transition", "output", out, rows*c, shp)
}

// forwardTape is the composed path of Forward (t nil) and ForwardTape on
// checked arguments (mask nil when absent). With a tape it keeps the
// statistics of input_layer_norm in t.
func (m *Transition[T]) forwardTape(x, mask backend.Tensor[T], rows int, out backend.Tensor[T], t *TransitionTape[T]) error {
	if rows == 0 {
		return nil
	}
	k := m.k
	c, h := m.cfg.C, m.cfg.Factor*m.cfg.C
	ch := m.chunk(rows)
	sc := backend.NewArena(k)
	defer sc.Free()
	var mean, rstd backend.Tensor[T]
	var keep *backend.Arena[T]
	if t != nil {
		keep = backend.NewArena(k)
		defer func() {
			if t.own != keep {
				keep.Free()
			}
		}()
		mean, rstd = keep.Alloc(rows), keep.Alloc(rows)
		if keep.Err() != nil {
			return keep.Err()
		}
	}
	ln, hid := sc.Alloc(ch*c), sc.Alloc(ch*h)
	if sc.Err() != nil {
		return sc.Err()
	}
	v := backend.NewArena(k)
	for r0 := 0; r0 < rows; r0 += ch {
		nr := min(ch, rows-r0)
		xs, os := v.View(x, r0*c, nr*c), v.View(out, r0*c, nr*c)
		lns, hs := v.View(ln, 0, nr*c), v.View(hid, 0, nr*h)
		var ms, mu, rs backend.Tensor[T]
		if mask != nil {
			ms = v.View(mask, r0, nr)
		}
		if t != nil {
			mu, rs = v.View(mean, r0, nr), v.View(rstd, r0, nr)
		}
		if v.Err() != nil {
			return v.Err()
		}
		if err := k.LayerNorm(lns, xs, nr, c, m.lnScale, m.lnOffset, T(nn.LayerNormEps), mu, rs); err != nil {
			return err
		}
		if err := k.Linear(hs, lns, nr, c, h, m.w1, m.b1); err != nil {
			return err
		}
		if err := k.ReLU(hs, hs); err != nil {
			return err
		}
		if err := k.Linear(os, hs, nr, h, c, m.w2, m.b2); err != nil {
			return err
		}
		if ms != nil {
			if err := k.ScaleRows(os, os, ms, nr, c); err != nil {
				return err
			}
		}
	}
	if t != nil {
		t.mean, t.rstd, t.own = mean, rstd, keep
	}
	return nil
}

// Backward computes the gradients of a scalar loss L through the
// transition (supplement Algorithms 9 and 15) whose ForwardTape call filled
// tape, on the backend. dout is ∂L/∂out [rows, C]. Backward accumulates
// (+=) ∂L/∂x into dx [rows, C] on the backend (dx nil: not computed) and,
// when grad is not nil, ∂L/∂θ into the host parameters grad (AF2 layouts,
// as TransitionParams.Backward fills them: start from p.ZerosLike()). The
// mask gets no gradient. The tape is left intact, so Backward may be
// called again (each call accumulates once more).
//
// On a tape filled by the CPU dispatch path Backward is
// TransitionParams.Backward (dout and dx must then be CPU tensors).
// Otherwise it composes the backend's kernels a chunk of rows at a time
// (the chunks of Forward): it recomputes the chunk's layer norm and hidden
// layer, masks dout, and back-propagates transition2 (LinearBackward), the
// ReLU (ReLUBackward, from its output, which is positive exactly where its
// input is), transition1 and input_layer_norm (LayerNormBackward, with the
// saved statistics, into dx). Its scratch is three hidden-layer-sized
// buffers of one chunk and three [chunk, C] buffers. The parameter
// gradients are summed on the backend and added to grad once, at the end.
//
// The error wraps ErrConfig for a closed module, a grad of another
// configuration, or a nil or empty tape or one filled by another module,
// num.ErrShape for a dout or dx whose length does not match the tape's
// rows, backend.ErrForeign for backend tensors given with a tape of the CPU
// path, num.ErrNaN for a non-finite dout on the CPU path, and the backend's
// errors.
func (m *Transition[T]) Backward(tape *TransitionTape[T], dout, dx backend.Tensor[T], grad *TransitionParams[T]) error {
	if m.p == nil {
		return fmt.Errorf("alphafold: Transition.Backward on a closed module: %w", ErrConfig)
	}
	if tape == nil || !tape.valid {
		return fmt.Errorf("alphafold: Transition.Backward without a ForwardTape pass in the tape: %w", ErrConfig)
	}
	if tape.m != m {
		return fmt.Errorf("alphafold: Transition.Backward: tape filled by another module: %w", ErrConfig)
	}
	rows, c := tape.rows, m.cfg.C
	shp := fmt.Sprintf("[rows C] = [%d %d]", rows, c)
	if err := bkCheck("transition", "dout", dout, rows*c, shp); err != nil {
		return err
	}
	if !backend.Absent(dx) {
		if err := bkCheck("transition", "dx", dx, rows*c, shp); err != nil {
			return err
		}
	}
	if grad != nil {
		if grad.Config.C != m.cfg.C || grad.Config.Factor != m.cfg.Factor {
			return fmt.Errorf("alphafold: Transition.Backward: gradient has config %+v, want %+v: %w", grad.Config, m.cfg, ErrConfig)
		}
		if err := grad.check(); err != nil {
			return err
		}
	}
	if tape.host {
		h, err := bkHostGrads("Transition.Backward", dout, dx)
		if err != nil {
			return err
		}
		return m.p.Backward(&tape.cache, h[0], h[1], grad)
	}
	if err := m.backward(tape, dout, bkOptional(dx), grad); err != nil {
		return fmt.Errorf("alphafold: Transition.Backward: %w", err)
	}
	return nil
}

// backward is the composed path of Backward on checked arguments; dx is
// nil when not wanted.
func (m *Transition[T]) backward(t *TransitionTape[T], dout, dx backend.Tensor[T], grad *TransitionParams[T]) error {
	rows := t.rows
	if rows == 0 || (dx == nil && grad == nil) {
		return nil
	}
	k := m.k
	c, h := m.cfg.C, m.cfg.Factor*m.cfg.C
	ch := m.chunk(rows)
	sc := backend.NewArena(k)
	defer sc.Free()
	var gs *backend.Grads[T]
	if grad != nil {
		gs = backend.NewGrads(sc)
	}
	var dLS, dLO, dW1, dB1, dW2, dB2 backend.Tensor[T]
	if grad != nil {
		dLS, dLO = gs.Acc(grad.InputLayerNorm.Scale), gs.Acc(grad.InputLayerNorm.Offset)
		dW1, dB1 = gs.Acc(grad.Transition1.W), gs.Acc(grad.Transition1.B)
		dW2, dB2 = gs.Acc(grad.Transition2.W), gs.Acc(grad.Transition2.B)
	}
	ln, dln := sc.Alloc(ch*c), sc.Alloc(ch*c)
	hid, dact, dpre := sc.Alloc(ch*h), sc.Alloc(ch*h), sc.Alloc(ch*h)
	var dm backend.Tensor[T]
	if t.mask != nil {
		dm = sc.Alloc(ch * c)
	}
	if sc.Err() != nil {
		return sc.Err()
	}
	v := backend.NewArena(k)
	for r0 := 0; r0 < rows; r0 += ch {
		nr := min(ch, rows-r0)
		xs, ds := v.View(t.x, r0*c, nr*c), v.View(dout, r0*c, nr*c)
		lns, dlns := v.View(ln, 0, nr*c), v.View(dln, 0, nr*c)
		hs, dacts, dpres := v.View(hid, 0, nr*h), v.View(dact, 0, nr*h), v.View(dpre, 0, nr*h)
		mu, rs := v.View(t.mean, r0, nr), v.View(t.rstd, r0, nr)
		var dxs, ms, dms backend.Tensor[T]
		if dx != nil {
			dxs = v.View(dx, r0*c, nr*c)
		}
		if t.mask != nil {
			ms, dms = v.View(t.mask, r0, nr), v.View(dm, 0, nr*c)
		}
		if v.Err() != nil {
			return v.Err()
		}
		// out = mask ⊙ y: ∂L/∂y = mask ⊙ dout.
		if t.mask != nil {
			if err := k.ScaleRows(dms, ds, ms, nr, c); err != nil {
				return err
			}
			ds = dms
		}
		// The chunk's hidden layer, as forwardTape computes it.
		if err := k.LayerNorm(lns, xs, nr, c, m.lnScale, m.lnOffset, T(nn.LayerNormEps), nil, nil); err != nil {
			return err
		}
		if err := k.Linear(hs, lns, nr, c, h, m.w1, m.b1); err != nil {
			return err
		}
		if err := k.ReLU(hs, hs); err != nil {
			return err
		}
		if err := bkZero(k, dacts, dpres, dlns); err != nil {
			return err
		}
		if err := k.LinearBackward(dacts, dW2, dB2, hs, m.w2, ds, nr, h, c); err != nil {
			return err
		}
		if err := k.ReLUBackward(dpres, hs, dacts); err != nil {
			return err
		}
		if err := k.LinearBackward(dlns, dW1, dB1, lns, m.w1, dpres, nr, c, h); err != nil {
			return err
		}
		if err := k.LayerNormBackward(dxs, dLS, dLO, xs, m.lnScale, mu, rs, dlns, nr, c); err != nil {
			return err
		}
	}
	return gs.Flush()
}

// The helpers below are shared by the backward passes of this package's
// backend modules.

// bkOptional returns t, or nil when it is absent.
func bkOptional[T num.Float](t backend.Tensor[T]) backend.Tensor[T] {
	if backend.Absent(t) {
		return nil
	}
	return t
}

// bkZero sets every tensor of ts to zero.
func bkZero[T num.Float](k backend.Kernels[T], ts ...backend.Tensor[T]) error {
	for _, t := range ts {
		if err := k.Zero(t); err != nil {
			return err
		}
	}
	return nil
}

// bkHostGrads returns the slices of the tensors of a Backward whose tape
// is of the CPU path (fn names it): ts[0] is dout, the others optional
// input gradients (nil slices when absent). A tensor of another backend is
// an error wrapping backend.ErrForeign.
func bkHostGrads[T num.Float](fn string, ts ...backend.Tensor[T]) ([][]T, error) {
	h, ok := backend.HostSlices(ts...)
	if !ok {
		return nil, fmt.Errorf("alphafold: %s: a gradient is not a CPU tensor but the tape is of the CPU path: %w", fn, backend.ErrForeign)
	}
	return h, nil
}
