package graphop

import (
	"fmt"
	"hash"
	"slices"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// pickOp reads the elements [off, off+size) of a vector of n elements as a
// tensor of the given shape: one output of a module with several, or one
// input's gradient out of gradOp's vector. Its gradient is scatterOp, which
// puts the gradient back at the same place in a zero vector, so that picks
// of one vector can feed separate consumers.
type pickOp[T num.Float] struct {
	off, n int
	shape  tensor.Shape
}

func (o *pickOp[T]) Arity() int { return 1 }

func (o *pickOp[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(gorgonia.TensorType{Dims: 1, Of: a}, gorgonia.TensorType{Dims: len(o.shape), Of: a})
}

func (o *pickOp[T]) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return o.shape.Clone(), nil
}

func (o *pickOp[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("graphop: pick of %d values: %w", len(vals), num.ErrShape)
	}
	x, err := valueData[T](vals[0])
	if err != nil {
		return nil, fmt.Errorf("graphop: pick: %w", err)
	}
	size := o.shape.TotalSize()
	if len(x) != o.n || o.off+size > len(x) {
		return nil, fmt.Errorf("graphop: pick of [%d, %d) from a vector of %d elements, want %d: %w", o.off, o.off+size, len(x), o.n, num.ErrShape)
	}
	return tensor.New(tensor.WithShape(o.shape.Clone()...), tensor.WithBacking(slices.Clone(x[o.off:o.off+size]))), nil
}

func (o *pickOp[T]) ReturnsPtr() bool     { return false }
func (o *pickOp[T]) CallsExtern() bool    { return false }
func (o *pickOp[T]) OverwritesInput() int { return -1 }
func (o *pickOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "graphop.pick[%T](%d,%d,%v)", T(0), o.off, o.n, o.shape)
}
func (o *pickOp[T]) Hashcode() uint32 { return hashOf(o) }
func (o *pickOp[T]) String() string   { return fmt.Sprintf("Pick(%d,%v)", o.off, o.shape) }

// DiffWRT reports that a pick is differentiable in its input.
func (o *pickOp[T]) DiffWRT(int) []bool { return []bool{true} }

// SymDiff places the gradient back into a zero vector.
func (o *pickOp[T]) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := gorgonia.ApplyOp(&scatterOp[T]{off: o.off, n: o.n, dims: len(o.shape)}, grad)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// scatterOp writes its input, a tensor of dims dimensions, at offset off of
// a zero vector of n elements: the adjoint of pickOp.
type scatterOp[T num.Float] struct{ off, n, dims int }

func (o *scatterOp[T]) Arity() int { return 1 }

func (o *scatterOp[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(gorgonia.TensorType{Dims: o.dims, Of: a}, gorgonia.TensorType{Dims: 1, Of: a})
}

func (o *scatterOp[T]) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{o.n}, nil
}

func (o *scatterOp[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("graphop: scatter of %d values: %w", len(vals), num.ErrShape)
	}
	x, err := valueData[T](vals[0])
	if err != nil {
		return nil, fmt.Errorf("graphop: scatter: %w", err)
	}
	if o.off+len(x) > o.n {
		return nil, fmt.Errorf("graphop: scatter of %d elements at %d into %d: %w", len(x), o.off, o.n, num.ErrShape)
	}
	out := make([]T, o.n)
	copy(out[o.off:], x)
	return tensor.New(tensor.WithShape(o.n), tensor.WithBacking(out)), nil
}

func (o *scatterOp[T]) ReturnsPtr() bool     { return false }
func (o *scatterOp[T]) CallsExtern() bool    { return false }
func (o *scatterOp[T]) OverwritesInput() int { return -1 }
func (o *scatterOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "graphop.scatter[%T](%d,%d,%d)", T(0), o.off, o.n, o.dims)
}
func (o *scatterOp[T]) Hashcode() uint32 { return hashOf(o) }
func (o *scatterOp[T]) String() string   { return fmt.Sprintf("Scatter(%d,%d)", o.off, o.n) }
