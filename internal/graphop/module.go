package graphop

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// Input describes one input of a Module.
type Input struct {
	// Name names the input in error messages.
	Name string
	// Dims is the input's number of dimensions (at least 1).
	Dims int
	// NoGrad marks an input no gradient flows to, such as a mask.
	NoGrad bool
}

// Module is a computation on dense row-major arrays that Apply adds to a
// gorgonia graph as one op.
//
// Forward and Backward receive the inputs' data in Inputs order, sharing
// storage with the graph's values (they must not modify them), and the
// inputs' shapes as the input nodes had them when the op was added.
type Module[T num.Float] struct {
	// Package and Name begin the op's error messages ("ipa: IPA: ..."); Name
	// labels the op in graph printouts.
	Package, Name string
	// Key identifies the computation, for instance its configuration
	// printed with %+v. Gorgonia merges two nodes of equal ops on the same
	// input nodes, and two ops of modules with the same Package, Name, Key,
	// element type and input shapes are equal; an empty Key makes the
	// module's address the key, so that only nodes of one *Module merge.
	Key string
	// ErrConfig, if not nil, is wrapped by the errors for a nil input node
	// and for a value or node of the wrong element type; num.ErrShape is
	// wrapped otherwise.
	ErrConfig error
	// Inputs lists the inputs in the order of the op's input nodes.
	Inputs []Input
	// Outputs returns the shapes of the outputs for the shapes of the
	// inputs; there is at least one output, of rank at least 1.
	Outputs func(in []tensor.Shape) ([]tensor.Shape, error)
	// Forward returns the outputs, each of the length of its shape.
	Forward func(in [][]T, shapes []tensor.Shape) ([][]T, error)
	// Backward returns the gradients of a scalar loss with respect to the
	// inputs, given out, Forward's outputs, and dOut, the gradients with
	// respect to them: one slice per input, of the input's length, where
	// the entries of NoGrad inputs are ignored (nil is fine). A nil
	// Backward makes the op not differentiable.
	Backward func(in [][]T, shapes []tensor.Shape, out, dOut [][]T) ([][]T, error)
}

// errorf returns an error prefixed with the module's package and name that
// wraps sentinel.
func (m *Module[T]) errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %s: %w", m.Package, m.Name, fmt.Sprintf(format, args...), sentinel)
}

// errConfig returns the sentinel of errors about nodes and element types.
func (m *Module[T]) errConfig() error {
	if m.ErrConfig != nil {
		return m.ErrConfig
	}
	return num.ErrShape
}

// Apply adds m to the graph of the input nodes and returns one node per
// output, in order. The inputs must be as many as m.Inputs, none nil, each
// of the rank its Input gives and of element type T; the error wraps
// num.ErrShape (or m.ErrConfig, for a nil node or another element type)
// otherwise; the errors of m.Outputs are returned as they are. Values are
// checked against the nodes' sizes when the graph runs.
func Apply[T num.Float](m *Module[T], inputs ...*gorgonia.Node) ([]*gorgonia.Node, error) {
	if m == nil || m.Outputs == nil || m.Forward == nil {
		return nil, fmt.Errorf("graphop: Apply of a module without Outputs or Forward: %w", num.ErrShape)
	}
	dt, err := dtypeOf[T]()
	if err != nil {
		return nil, m.errorf(m.errConfig(), "%v", err)
	}
	if len(inputs) != len(m.Inputs) {
		return nil, m.errorf(num.ErrShape, "%d input nodes, want %d", len(inputs), len(m.Inputs))
	}
	shapes := make([]tensor.Shape, len(inputs))
	for k, x := range inputs {
		in := m.Inputs[k]
		switch {
		case x == nil:
			return nil, m.errorf(m.errConfig(), "input %d (%s) is nil", k, in.Name)
		case in.Dims < 1:
			return nil, m.errorf(num.ErrShape, "input %d (%s) is declared with %d dimensions, want ≥ 1", k, in.Name, in.Dims)
		case x.Dims() != in.Dims:
			return nil, m.errorf(num.ErrShape, "input %d (%s, node %s) has %d dimensions, want %d", k, in.Name, x.Name(), x.Dims(), in.Dims)
		case x.Dtype() != dt:
			return nil, m.errorf(m.errConfig(), "input %d (%s, node %s) has element type %v, want %v", k, in.Name, x.Name(), x.Dtype(), dt)
		}
		shapes[k] = x.Shape().Clone()
	}
	outs, err := m.Outputs(shapes)
	if err != nil {
		return nil, err
	}
	if len(outs) == 0 {
		return nil, m.errorf(num.ErrShape, "no outputs")
	}
	for k, sh := range outs {
		if len(sh) == 0 {
			return nil, m.errorf(num.ErrShape, "output %d has no dimensions", k)
		}
		for _, d := range sh {
			if d < 0 {
				return nil, m.errorf(num.ErrShape, "output %d has shape %v", k, sh)
			}
		}
		outs[k] = sh.Clone()
	}
	o := &op[T]{m: m, in: shapes, out: outs}
	node, err := gorgonia.ApplyOp(o, inputs...)
	if err != nil {
		return nil, err
	}
	if len(outs) == 1 {
		return []*gorgonia.Node{node}, nil
	}
	total := o.outSize()
	res := make([]*gorgonia.Node, len(outs))
	off := 0
	for k, sh := range outs {
		if res[k], err = gorgonia.ApplyOp(&pickOp[T]{off: off, n: total, shape: sh}, node); err != nil {
			return nil, err
		}
		off += sh.TotalSize()
	}
	return res, nil
}

// ApplyFloat adds m32 or m64, whichever matches the element type of the
// first input node, as Apply does; they are normally one module's float32
// and float64 instances.
func ApplyFloat(m32 *Module[float32], m64 *Module[float64], inputs ...*gorgonia.Node) ([]*gorgonia.Node, error) {
	if m32 == nil || m64 == nil {
		return nil, fmt.Errorf("graphop: ApplyFloat of a nil module: %w", num.ErrShape)
	}
	if len(inputs) == 0 || inputs[0] == nil {
		return Apply(m64, inputs...) // reports the missing input
	}
	switch dt := inputs[0].Dtype(); dt {
	case tensor.Float32:
		return Apply(m32, inputs...)
	case tensor.Float64:
		return Apply(m64, inputs...)
	default:
		return nil, m64.errorf(m64.errConfig(), "element type %v, want float32 or float64", dt)
	}
}
