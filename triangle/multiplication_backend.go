package triangle

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// Mul is a triangle multiplicative update (supplement Algorithm 11 for
// outgoing edges, Algorithm 12 for incoming edges) on a backend chosen by
// the caller, with its parameters uploaded once: the forward pass
// (inference) of MulForward on backend tensors, so that a chain of modules
// keeps the pair representation on the backend. ForwardTape and Backward
// (multiplication_backend_grad.go) give its gradients on the same backend.
type Mul[T num.Float] struct {
	k backend.Kernels[T]
	// p is the CPU module the dispatch path runs; its arrays are the
	// caller's.
	p *MulParams[T]

	lnScale, lnOffset backend.Tensor[T] // layer_norm_input [c_z]
	// The four projections in the order left_projection, left_gate,
	// right_projection, right_gate: weights transposed to [c, c_z], so that
	// a chunk of hidden channels is a contiguous block of rows, and biases
	// [c].
	projWT, projB [4]backend.Tensor[T]
	// ones and zeros [c] are the unit affine map of the centre layer norm,
	// whose scale and offset are folded into outW and outB as MulForward
	// does: outW = diag(scale)·W_o [c, c_z], outB = offset·W_o + b_o [c_z].
	ones, zeros backend.Tensor[T]
	outW, outB  backend.Tensor[T]
	gW, gB      backend.Tensor[T] // gating_linear [c_z, c_z] and [c_z]

	// composed makes Forward compose backend kernels even when every
	// tensor is a CPU tensor (for tests of that path on the CPU backend).
	composed bool
}

// NewMul checks p and uploads it to k, returning the module that runs
// p.Config's update (outgoing or incoming edges) on k. p's arrays are
// referenced by the CPU dispatch path of Forward and must not change while
// the module is in use.
//
// The error wraps ErrConfig for a nil k or p or an invalid p.Config,
// num.ErrShape for an array whose length does not match p.Config, and the
// backend's error if an upload fails.
func NewMul[T num.Float](k backend.Kernels[T], p *MulParams[T]) (*Mul[T], error) {
	if k == nil || p == nil {
		return nil, fmt.Errorf("triangle: NewMul: nil backend or parameters: %w", ErrConfig)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	q := *p
	cz, ch := q.Config.PairChannels, q.Config.HiddenChannels
	m := &Mul[T]{k: k, p: &q}
	up := backend.NewArena(k)
	m.lnScale, m.lnOffset = up.FromHost(q.LayerNormInput.Scale), up.FromHost(q.LayerNormInput.Offset)
	for i, l := range [4]*nn.LinearParams[T]{&q.LeftProjection, &q.LeftGate, &q.RightProjection, &q.RightGate} {
		m.projWT[i], m.projB[i] = up.FromHost(transposeMatrix(l.W, cz, ch)), up.FromHost(l.B)
	}
	ones, zeros := make([]T, ch), make([]T, ch)
	for i := range ones {
		ones[i] = 1
	}
	m.ones, m.zeros = up.FromHost(ones), up.FromHost(zeros)
	w, b := foldCenter(&q)
	m.outW, m.outB = up.FromHost(w), up.FromHost(b)
	m.gW, m.gB = up.FromHost(q.GatingLinear.W), up.FromHost(q.GatingLinear.B)
	if up.Err() != nil {
		up.Free()
		return nil, fmt.Errorf("triangle: NewMul: %w", up.Err())
	}
	return m, nil
}

// transposeMatrix returns the transpose [cols, rows] of a [rows, cols].
func transposeMatrix[T num.Float](a []T, rows, cols int) []T {
	t := make([]T, len(a))
	for i := range rows {
		for j := range cols {
			t[j*rows+i] = a[i*cols+j]
		}
	}
	return t
}

// Close frees the uploaded parameters; m must not be used afterwards.
func (m *Mul[T]) Close() {
	ts := []*backend.Tensor[T]{&m.lnScale, &m.lnOffset, &m.ones, &m.zeros, &m.outW, &m.outB, &m.gW, &m.gB}
	for i := range m.projWT {
		ts = append(ts, &m.projWT[i], &m.projB[i])
	}
	for _, t := range ts {
		if *t != nil {
			m.k.Free(*t)
			*t = nil
		}
	}
	m.p = nil
}

// Forward computes the triangle multiplicative update of the module's
// configuration on z [N, N, c_z] with the pair mask [N, N] (1 present,
// 0 padding) and writes the update of the pair representation to out
// [N, N, c_z] (no residual), as MulForward does; n is N. out must not
// overlap z.
//
// When every tensor is a CPU tensor, Forward runs MulForward on the slices
// (no copies). Otherwise it composes the backend's kernels, with x = LN(z)
// (LayerNorm) and AF2's names (see MulParams for the incoming update's
// swap):
//
//	a = mask ⊙ (x·W_lp + b_lp) ⊙ σ(x·W_lg + b_lg)   (Linear, Gate, ScaleRows)
//	b = mask ⊙ (x·W_rp + b_rp) ⊙ σ(x·W_rg + b_rg)
//	u_ij = Σ_k a_ik b_jk (outgoing), Σ_k b_ki a_kj (incoming)
//	out = (LN_c(u)·W_o + b_o) ⊙ σ(x·W_g + b_g)      (LayerNorm, Linear, Gate)
//
// a and b are transposed to channel-major [c, N, N] (Transpose) and the
// contraction is one batched product over the channels (GemmStridedBatched,
// N×N×N per channel); the channels are taken MulConfig.ChunkChannels at a
// time (the same chunks as MulForward), so that three [chunk, N, N]
// buffers are live beside the normalised input and the contracted edges
// [c, N, N], which are then transposed back to [N, N, c] for the centre
// layer norm. The output gate's logits are computed first, into out, so
// that the normalised input is freed before that transposition; the output
// projection then runs in blocks of pairs. No N³ tensor is formed, and
// scratch is freed before Forward returns.
//
// The error wraps num.ErrShape for a tensor whose length does not match n
// and the configuration, num.ErrNaN for a non-finite z or mask on the CPU
// path (the composed path propagates NaN, as the backend's kernels do), and
// the backend's errors.
func (m *Mul[T]) Forward(z, mask backend.Tensor[T], n int, out backend.Tensor[T]) error {
	if m.p == nil {
		return fmt.Errorf("triangle: Mul.Forward on a closed module: %w", ErrConfig)
	}
	if err := checkPairTensors("Mul.Forward", z, mask, out, n, m.p.Config.PairChannels); err != nil {
		return err
	}
	if h, ok := backend.HostSlices(z, mask, out); ok && !m.composed {
		return MulForward(m.p, h[0], h[1], n, h[2], nil)
	}
	if err := m.forward(z, mask, n, out); err != nil {
		return fmt.Errorf("triangle: Mul.Forward: %w", err)
	}
	return nil
}

// forward is the composed backend path of Forward on checked arguments.
func (m *Mul[T]) forward(z, mask backend.Tensor[T], n int, out backend.Tensor[T]) error {
	return m.forwardTape(z, mask, n, out, nil)
}

// project computes into pv [N², cw] one side's masked, gated projection
// for the hidden channels [c0, c0+cw): side 0 is left_projection gated by
// left_gate, side 1 right_projection gated by right_gate. gv [N², cw] and
// wv [c_z, cw] are scratch.
func (m *Mul[T]) project(side, c0, cw int, x, mask backend.Tensor[T], n2 int, pv, gv, wv backend.Tensor[T], v *backend.Arena[T]) error {
	k, cz := m.k, m.p.Config.PairChannels
	for i, y := range []backend.Tensor[T]{pv, gv} {
		l := 2*side + i
		wt, b := v.View(m.projWT[l], c0*cz, cw*cz), v.View(m.projB[l], c0, cw)
		if v.Err() != nil {
			return v.Err()
		}
		// The chunk's weights [c_z, cw], from the rows [c0, c0+cw) of Wᵀ.
		if err := k.Transpose(wv, wt, 1, cw, cz, 1); err != nil {
			return err
		}
		if err := k.Linear(y, x, n2, cz, cw, wv, b); err != nil {
			return err
		}
	}
	if err := k.Gate(pv, gv, pv); err != nil {
		return err
	}
	return k.ScaleRows(pv, pv, mask, n2, cw)
}
