package recycle

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// EmbedderTape records on the backend what Embedder.Backward needs from one
// Embedder.ForwardTape call: the training counterpart of Cache for the
// embedder on a backend. A zero EmbedderTape is ready to use; a later
// ForwardTape call replaces what it holds, and Free releases it.
//
// On the CPU dispatch path (CPU tensors, see Embedder.Forward) the tape
// holds a Cache filled by Forward. On the composed path it holds backend
// tensors: the statistics of both layer norms ([N] and [N²]) and the
// uploaded one-hot distogram [N², NumBins] (N²·NumBins values, 60 MiB at
// N = 1024 in float32), the input of prev_pos_linear whose weight
// gradient Backward forms.
//
// Either way the tape refers to (does not copy) the prevMSAFirstRow and
// prevPair passed to ForwardTape, which must not change or be freed until
// the last Backward call that uses the tape.
type EmbedderTape[T num.Float] struct {
	m     *Embedder[T] // the module that filled the tape
	n     int
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds Forward's cache

	cache        Cache[T]
	msaRow, pair backend.Tensor[T]

	rowMean, rowRstd   backend.Tensor[T] // prev_msa_first_row_norm statistics [N]
	pairMean, pairRstd backend.Tensor[T] // prev_pair_norm statistics [N²]
	oneHot             backend.Tensor[T] // [N², NumBins]
	own                *backend.Arena[T] // the tensors above, freed by Free
}

// Free releases the tape's tensors (and its CPU cache); the tape is then
// empty, ready for another ForwardTape call. Free of a zero tape does
// nothing.
func (t *EmbedderTape[T]) Free() {
	if t.own != nil {
		t.own.Free()
	}
	*t = EmbedderTape[T]{}
}

// ForwardTape computes what Forward computes (the same kernels in the same
// order, so msaOut and pairOut are bit for bit Forward's, overwritten) and
// records in tape what Backward needs to differentiate it: supplement
// Algorithm 32 for training on a backend. The arguments are Forward's, and
// tape must not be nil; what tape held before is released. See
// EmbedderTape for what is kept (the tape refers to prevMSAFirstRow and
// prevPair).
//
// On CPU tensors (and outside the package's tests of the composed path)
// ForwardTape runs the package's Forward with the tape's Cache.
//
// The error wraps ErrConfig for a closed module or a nil tape, and
// otherwise is Forward's; the tape is then empty.
func (m *Embedder[T]) ForwardTape(prevMSAFirstRow, prevPair backend.Tensor[T], prevPseudoBeta []T, n int, msaOut, pairOut backend.Tensor[T], tape *EmbedderTape[T]) error {
	if m.p == nil {
		return fmt.Errorf("recycle: Embedder.ForwardTape on a closed module: %w", ErrConfig)
	}
	if tape == nil {
		return fmt.Errorf("recycle: Embedder.ForwardTape: nil tape: %w", ErrConfig)
	}
	tape.Free()
	if err := m.checkForward("Embedder.ForwardTape", prevMSAFirstRow, prevPair, prevPseudoBeta, n, msaOut, pairOut); err != nil {
		return err
	}
	tape.m, tape.n, tape.msaRow, tape.pair = m, n, prevMSAFirstRow, prevPair
	if h, ok := backend.HostSlices(prevMSAFirstRow, prevPair, msaOut, pairOut); ok && !m.composed {
		tape.host = true
		if err := Forward(m.p, h[0], h[1], prevPseudoBeta, h[2], h[3], &tape.cache); err != nil {
			tape.Free()
			return err
		}
		tape.valid = true
		return nil
	}
	if err := m.forwardTape(prevMSAFirstRow, prevPair, prevPseudoBeta, n, msaOut, pairOut, tape); err != nil {
		tape.Free()
		return fmt.Errorf("recycle: Embedder.ForwardTape: %w", err)
	}
	tape.valid = true
	return nil
}

// Backward computes the gradients of a scalar loss L through the recycling
// embedder (supplement Algorithm 32) whose ForwardTape call filled tape, on
// the backend, as the package's Backward does: given dMSA = ∂L/∂msaOut
// [N, c_m] and dPair = ∂L/∂pairOut [N, N, c_z], it accumulates (+=)
// ∂L/∂prevMSAFirstRow into dPrevMSAFirstRow [N, c_m] and ∂L/∂prevPair into
// dPrevPair [N, N, c_z] (each nil: not computed), back through the layer
// norms, and, when grad is not nil, ∂L/∂θ into the host parameters grad
// (AF2 layouts; start from p.ZerosLike()). Like the package's Backward it
// does not stop the gradient of the recycled inputs (AF2's stop_gradient
// between passes is the loop's business, see Run: pass nil to drop them).
// The positions get no gradient: the distogram is piecewise constant. The
// tape is left intact, so Backward may be called again (each call
// accumulates once more).
//
// On a tape filled by the CPU dispatch path Backward is the package's
// Backward (every tensor must then be a CPU tensor). Otherwise it composes
// the backend's kernels: prev_pos_linear's gradients from the saved
// one-hot (LinearBackward: dW += one_hotᵀ·dPair, db += Σ dPair), then the
// two layer norms (LayerNormBackward, from the saved statistics). It
// allocates only the parameter gradients' accumulators, which are summed
// on the backend and added to grad once, at the end.
//
// The error wraps ErrConfig for a closed module, a nil or empty tape, one
// filled by another module or a grad of another configuration,
// num.ErrShape for a tensor whose length does not match the tape's N,
// backend.ErrForeign for backend tensors given with a tape of the CPU
// path, num.ErrNaN for a non-finite dMSA or dPair on the CPU path, and the
// backend's errors.
func (m *Embedder[T]) Backward(tape *EmbedderTape[T], dMSA, dPair, dPrevMSAFirstRow, dPrevPair backend.Tensor[T], grad *Params[T]) error {
	if m.p == nil {
		return fmt.Errorf("recycle: Embedder.Backward on a closed module: %w", ErrConfig)
	}
	if tape == nil || !tape.valid {
		return fmt.Errorf("recycle: Embedder.Backward without a forward pass in the tape: %w", ErrConfig)
	}
	if tape.m != m {
		return fmt.Errorf("recycle: Embedder.Backward: tape filled by another module: %w", ErrConfig)
	}
	n, cm, cz := tape.n, m.p.Config.CM, m.p.Config.CZ
	rowShape := fmt.Sprintf("[N c_m] = [%d %d]", n, cm)
	pairShape := fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)
	if err := checkTensors("Embedder.Backward", []tensorArg[T]{
		{"dMSA", dMSA, n * cm, rowShape, false},
		{"dPair", dPair, n * n * cz, pairShape, false},
		{"dPrevMSAFirstRow", dPrevMSAFirstRow, n * cm, rowShape, true},
		{"dPrevPair", dPrevPair, n * n * cz, pairShape, true},
	}); err != nil {
		return err
	}
	if grad != nil {
		if grad.Config != m.p.Config {
			return fmt.Errorf("recycle: Embedder.Backward: gradient config %+v, want %+v: %w", grad.Config, m.p.Config, ErrConfig)
		}
		if err := grad.check(); err != nil {
			return fmt.Errorf("recycle: Embedder.Backward: gradient: %w", err)
		}
	}
	dPrevMSAFirstRow, dPrevPair = optional(dPrevMSAFirstRow), optional(dPrevPair)
	if tape.host {
		h, ok := backend.HostSlices(dMSA, dPair, dPrevMSAFirstRow, dPrevPair)
		if !ok {
			return fmt.Errorf("recycle: Embedder.Backward: a gradient is not a CPU tensor but the tape is of the CPU path: %w", backend.ErrForeign)
		}
		return Backward(m.p, &tape.cache, h[0], h[1], h[2], h[3], grad)
	}
	if err := m.backward(tape, dMSA, dPair, dPrevMSAFirstRow, dPrevPair, grad); err != nil {
		return fmt.Errorf("recycle: Embedder.Backward: %w", err)
	}
	return nil
}

// backward is the composed path of Backward on checked arguments; the
// input gradients are nil when not wanted.
func (m *Embedder[T]) backward(t *EmbedderTape[T], dMSA, dPair, dRow, dPrevPair backend.Tensor[T], grad *Params[T]) error {
	k, cfg, n := m.k, m.p.Config, t.n
	cm, cz, nb := cfg.CM, cfg.CZ, cfg.NumBins
	sc := backend.NewArena(k)
	defer sc.Free()

	// The parameter gradients, summed on the backend (nil when grad is nil).
	var gs *backend.Grads[T]
	var dW, dB, dRowS, dRowO, dPairS, dPairO backend.Tensor[T]
	if grad != nil {
		gs = backend.NewGrads(sc)
		dW, dB = gs.Acc(grad.PrevPosLinear.W), gs.Acc(grad.PrevPosLinear.B)
		dRowS, dRowO = gs.Acc(grad.PrevMSAFirstRowNorm.Scale), gs.Acc(grad.PrevMSAFirstRowNorm.Offset)
		dPairS, dPairO = gs.Acc(grad.PrevPairNorm.Scale), gs.Acc(grad.PrevPairNorm.Offset)
		if sc.Err() != nil {
			return sc.Err()
		}
		// pairOut += one_hot·W + b: the one-hot gets no gradient.
		if err := k.LinearBackward(nil, dW, dB, t.oneHot, m.w, dPair, n*n, nb, cz); err != nil {
			return err
		}
	}
	if dRow != nil || grad != nil {
		if err := k.LayerNormBackward(dRow, dRowS, dRowO, t.msaRow, m.rowScale, t.rowMean, t.rowRstd, dMSA, n, cm); err != nil {
			return err
		}
	}
	if dPrevPair != nil || grad != nil {
		if err := k.LayerNormBackward(dPrevPair, dPairS, dPairO, t.pair, m.pairScale, t.pairMean, t.pairRstd, dPair, n*n, cz); err != nil {
			return err
		}
	}
	return gs.Flush()
}

// optional returns t, or nil when it is absent.
func optional[T num.Float](t backend.Tensor[T]) backend.Tensor[T] {
	if backend.Absent(t) {
		return nil
	}
	return t
}
