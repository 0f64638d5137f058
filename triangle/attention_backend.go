package triangle

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// Att is a triangle self-attention (supplement Algorithm 13 around the
// starting node, Algorithm 14 around the ending node) on a backend chosen by
// the caller, with its parameters uploaded once: the forward pass
// (inference) of AttForward on backend tensors, so that a chain of modules
// keeps the pair representation on the backend. ForwardTape and Backward
// (attention_backend_grad.go) give its gradients on the same backend.
type Att[T num.Float] struct {
	k backend.Kernels[T]
	// p is the CPU module the dispatch path runs; its arrays are the
	// caller's.
	p *AttParams[T]

	lnScale, lnOffset backend.Tensor[T] // query_norm [c_z]
	feat2D            backend.Tensor[T] // feat_2d_weights [c_z, H]
	qW, kW, vW, gW    backend.Tensor[T] // query_w, key_w, value_w, gating_w [c_z, H·c]
	gB                backend.Tensor[T] // gating_b [H·c]
	oW, oB            backend.Tensor[T] // output_w [H·c, c_z], output_b [c_z]

	// composed makes Forward compose backend kernels even when every
	// tensor is a CPU tensor (for tests of that path on the CPU backend).
	composed bool
}

// NewAtt checks p and uploads it to k, returning the module that runs
// p.Config's attention (starting or ending node) on k. p's arrays are
// referenced by the CPU dispatch path of Forward and must not change while
// the module is in use.
//
// The error wraps ErrConfig for a nil k or p or an invalid p.Config,
// num.ErrShape for an array whose length does not match p.Config, and the
// backend's error if an upload fails.
func NewAtt[T num.Float](k backend.Kernels[T], p *AttParams[T]) (*Att[T], error) {
	if k == nil || p == nil {
		return nil, fmt.Errorf("triangle: NewAtt: nil backend or parameters: %w", ErrConfig)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	q := *p
	m := &Att[T]{k: k, p: &q}
	up := backend.NewArena(k)
	a := &q.Attention
	m.lnScale, m.lnOffset = up.FromHost(q.QueryNorm.Scale), up.FromHost(q.QueryNorm.Offset)
	m.feat2D = up.FromHost(q.FeatTwoDWeights)
	m.qW, m.kW, m.vW, m.gW = up.FromHost(a.QueryW), up.FromHost(a.KeyW), up.FromHost(a.ValueW), up.FromHost(a.GatingW)
	m.gB, m.oW, m.oB = up.FromHost(a.GatingB), up.FromHost(a.OutputW), up.FromHost(a.OutputB)
	if up.Err() != nil {
		up.Free()
		return nil, fmt.Errorf("triangle: NewAtt: %w", up.Err())
	}
	return m, nil
}

// Close frees the uploaded parameters; m must not be used afterwards.
func (m *Att[T]) Close() {
	for _, t := range []*backend.Tensor[T]{&m.lnScale, &m.lnOffset, &m.feat2D, &m.qW, &m.kW, &m.vW, &m.gW, &m.gB, &m.oW, &m.oB} {
		if *t != nil {
			m.k.Free(*t)
			*t = nil
		}
	}
	m.p = nil
}

// Forward computes the triangle self-attention of the module's
// configuration on z [N, N, c_z] with the pair mask [N, N] (1 present,
// 0 padding) and writes the update of the pair representation to out
// [N, N, c_z] (no residual), as AttForward does; n is N. out must not
// overlap z.
//
// When every tensor is a CPU tensor, Forward runs AttForward on the
// slices (no copies). Otherwise it composes the backend's kernels:
//
//	x     = LN(z)                      (LayerNorm; of zᵀ for the ending node)
//	bias  = x·feat_2d_weights          (Linear [N², H], Transpose to [H, N, N])
//	q, k, v, g = x·query_w·c^-1/2, x·key_w, x·value_w, x·gating_w + gating_b
//	o     = attention(q, k, v; bias, key mask)   (Attention, one row of x per batch element)
//	out   = (o ⊙ σ(g))·output_w + output_b       (Gate, Linear)
//
// The ending node runs the same computation on zᵀ and maskᵀ, as AF2 does,
// and transposes the result back; the transposed input is the one copy of
// the pair tensor the path makes (the layer norm is taken in place on it),
// and it receives the transposed result row by row, so the ending node
// needs no more memory than the starting node. The rows are processed
// AttConfig.ChunkRows at a time (the same chunks as AttForward), so the
// projections of only one chunk (five [rows·N, H·c] tensors) are live beside
// the normalised input and the pair bias [H, N, N]; no N³ tensor is formed.
// Scratch is freed before Forward returns.
//
// The error wraps num.ErrShape for a tensor whose length does not match n
// and the configuration, num.ErrNaN for a non-finite input where the backend
// checks attention inputs (always on the CPU path), and the backend's
// errors.
func (m *Att[T]) Forward(z, mask backend.Tensor[T], n int, out backend.Tensor[T]) error {
	if m.p == nil {
		return fmt.Errorf("triangle: Att.Forward on a closed module: %w", ErrConfig)
	}
	if err := checkPairTensors("Att.Forward", z, mask, out, n, m.p.Config.PairChannels); err != nil {
		return err
	}
	if h, ok := backend.HostSlices(z, mask, out); ok && !m.composed {
		return AttForward(m.p, h[0], h[1], n, h[2], nil)
	}
	if err := m.forward(z, mask, n, out); err != nil {
		return fmt.Errorf("triangle: Att.Forward: %w", err)
	}
	return nil
}

// forward is the composed backend path of Forward on checked arguments.
func (m *Att[T]) forward(z, mask backend.Tensor[T], n int, out backend.Tensor[T]) error {
	return m.forwardTape(z, mask, n, out, nil)
}

// checkPairTensors checks the tensors of a module's Forward (fn names it):
// z and out [n, n, cz] and mask [n, n].
func checkPairTensors[T num.Float](fn string, z, mask, out backend.Tensor[T], n, cz int) error {
	if n < 0 {
		return fmt.Errorf("triangle: %s: N = %d, want ≥ 0: %w", fn, n, num.ErrShape)
	}
	if err := backend.CheckArgs(
		backend.Arg[T]{Name: "z", T: z, Shape: []int{n, n, cz}},
		backend.Arg[T]{Name: "mask", T: mask, Shape: []int{n, n}},
		backend.Arg[T]{Name: "out", T: out, Shape: []int{n, n, cz}},
	); err != nil {
		return fmt.Errorf("triangle: %s: %w", fn, err)
	}
	return nil
}
