package alphafold

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// bkHiddenBudget is the number of hidden activations (or, in the outer
// product mean, outer-product values) a backend path keeps in one scratch
// tensor when the configuration leaves the chunk size to the module: 2²⁴
// values, 64 MiB in float32 and 128 MiB in float64. It is larger than the
// CPU forward's default because a GPU needs large matrix products to be
// efficient; chunking never changes the results.
const bkHiddenBudget = 1 << 24

// Transition is a transition layer (supplement Algorithms 9 and 15) on a
// backend chosen by the caller, with its parameters uploaded once: the
// forward pass (inference) of TransitionParams.Forward on backend tensors,
// so that a chain of modules keeps its activations on the backend.
// ForwardTape and Backward (transition_backend_grad.go) give its gradients
// on the same backend.
type Transition[T num.Float] struct {
	k   backend.Kernels[T]
	cfg TransitionConfig
	// p is the CPU module the dispatch path runs: the caller's parameters
	// with Config = cfg.
	p *TransitionParams[T]

	lnScale, lnOffset, w1, b1, w2, b2 backend.Tensor[T]

	// composed makes Forward compose backend kernels even when every
	// tensor is a CPU tensor (for tests of that path on the CPU backend).
	composed bool
}

// NewTransition uploads the transition p to k and returns the module for
// cfg, which is the configuration it runs with (p.Config is not used):
// cfg.C and cfg.Factor give the sizes of p's arrays and cfg.Chunk the rows
// evaluated at once (0: as many as keep the hidden layer near 2²⁴ values on
// the backend path, as TransitionConfig says on the CPU path). p's arrays
// are referenced by the CPU dispatch path and must not change while the
// module is in use.
//
// The error wraps ErrConfig for an invalid cfg or a nil p, num.ErrShape for
// an array whose length does not match cfg, and the backend's error if an
// upload fails.
func NewTransition[T num.Float](k backend.Kernels[T], cfg TransitionConfig, p *TransitionParams[T]) (*Transition[T], error) {
	if k == nil || p == nil {
		return nil, fmt.Errorf("alphafold: NewTransition: nil backend or parameters: %w", ErrConfig)
	}
	q := *p
	q.Config = cfg
	if err := q.check(); err != nil {
		return nil, err
	}
	m := &Transition[T]{k: k, cfg: cfg, p: &q}
	up := backend.NewArena(k)
	m.lnScale, m.lnOffset = up.FromHost(q.InputLayerNorm.Scale), up.FromHost(q.InputLayerNorm.Offset)
	m.w1, m.b1 = up.FromHost(q.Transition1.W), up.FromHost(q.Transition1.B)
	m.w2, m.b2 = up.FromHost(q.Transition2.W), up.FromHost(q.Transition2.B)
	if up.Err() != nil {
		up.Free()
		return nil, fmt.Errorf("alphafold: NewTransition: %w", up.Err())
	}
	return m, nil
}

// Close frees the uploaded parameters; m must not be used afterwards.
func (m *Transition[T]) Close() {
	for _, t := range []*backend.Tensor[T]{&m.lnScale, &m.lnOffset, &m.w1, &m.b1, &m.w2, &m.b2} {
		m.k.Free(*t)
		*t = nil
	}
	m.p = nil
}

// chunk returns the number of rows the backend path evaluates at once.
func (m *Transition[T]) chunk(rows int) int {
	ch := m.cfg.Chunk
	if ch == 0 {
		ch = bkHiddenBudget / (m.cfg.Factor * m.cfg.C)
	}
	return max(1, min(ch, rows))
}

// Forward computes the transition (supplement Algorithms 9 and 15),
//
//	out_r = relu(LN(x_r)·W1 + b1)·W2 + b2,
//
// for each of the rows rows of x [rows, C] and writes the update to out
// [rows, C] (no residual), as TransitionParams.Forward does. AF2 does not
// mask the transitions: pass mask = nil. A non-nil mask [rows] multiplies
// each output row by its entry. out must not overlap x.
//
// When every tensor is a CPU tensor, Forward runs TransitionParams.Forward
// on the slices (no copies). Otherwise it composes the backend's kernels,
// rows in chunks so the hidden layer never exists for more than a chunk;
// its scratch is freed before Forward returns. The error wraps num.ErrShape
// for a length that does not match rows and C, num.ErrNaN on the CPU path
// for a non-finite x or mask, ErrConfig after Close, and the backend's
// errors.
func (m *Transition[T]) Forward(x, mask backend.Tensor[T], rows int, out backend.Tensor[T]) error {
	if m.p == nil {
		return fmt.Errorf("alphafold: Transition.Forward on a closed module: %w", ErrConfig)
	}
	if err := m.checkTensors(x, mask, rows, out); err != nil {
		return err
	}
	if h, ok := backend.HostSlices(x, mask, out); ok && !m.composed {
		return m.p.Forward(h[0], rows, h[1], h[2], nil)
	}
	if err := m.forward(x, mask, rows, out); err != nil {
		return fmt.Errorf("alphafold: transition: %w", err)
	}
	return nil
}

// forward is the composed backend path of Forward on checked arguments.
func (m *Transition[T]) forward(x, mask backend.Tensor[T], rows int, out backend.Tensor[T]) error {
	return m.forwardTape(x, bkOptional(mask), rows, out, nil)
}
