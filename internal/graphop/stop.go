package graphop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// StopGradient returns a node with x's value through which no gradient
// flows: AF2's stop_gradient. gorgonia.Grad treats the op as not
// differentiable, so a node reaches the loss only through the paths that
// do not cross it (and asking for the gradient of a node that reaches the
// loss only through it is an error, as that gradient is structurally 0).
// The error wraps num.ErrShape if x is nil.
func StopGradient(x *gorgonia.Node) (*gorgonia.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("graphop: StopGradient of a nil node: %w", num.ErrShape)
	}
	return gorgonia.ApplyOp(stopOp{dims: x.Dims()}, x)
}

// stopOp is the identity, declared not differentiable.
type stopOp struct{ dims int }

func (o stopOp) Arity() int { return 1 }

func (o stopOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	if o.dims == 0 {
		return hm.NewFnType(a, a)
	}
	t := gorgonia.TensorType{Dims: o.dims, Of: a}
	return hm.NewFnType(t, t)
}

func (o stopOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(ds) != 1 {
		return nil, fmt.Errorf("graphop: StopGradient takes one input: %w", num.ErrShape)
	}
	sh, ok := ds[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("graphop: StopGradient input has no shape: %w", num.ErrShape)
	}
	return sh.Clone(), nil
}

func (o stopOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("graphop: StopGradient of %d values: %w", len(vals), num.ErrShape)
	}
	if t, ok := vals[0].(tensor.Tensor); ok {
		return t.Clone().(gorgonia.Value), nil
	}
	return vals[0], nil
}

func (o stopOp) ReturnsPtr() bool      { return false }
func (o stopOp) CallsExtern() bool     { return false }
func (o stopOp) OverwritesInput() int  { return -1 }
func (o stopOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "graphop.StopGradient(%d)", o.dims) }
func (o stopOp) Hashcode() uint32      { return hashOf(o) }
func (o stopOp) String() string        { return "StopGradient" }

// DiffWRT reports that nothing flows back through the op.
func (o stopOp) DiffWRT(inputs int) []bool { return make([]bool, inputs) }

// SymDiff is never called for a non-differentiable input; it returns no
// gradient.
func (o stopOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return make(gorgonia.Nodes, len(inputs)), nil
}
