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

// op is the gorgonia op that runs a module's Forward. in and out are the
// input and output shapes fixed when the op was added; with several outputs
// the op's value is their concatenation.
type op[T num.Float] struct {
	m       *Module[T]
	in, out []tensor.Shape
}

// outSize returns the total number of output elements.
func (o *op[T]) outSize() int {
	n := 0
	for _, sh := range o.out {
		n += sh.TotalSize()
	}
	return n
}

// outShape returns the shape of the op's value.
func (o *op[T]) outShape() tensor.Shape {
	if len(o.out) == 1 {
		return o.out[0].Clone()
	}
	return tensor.Shape{o.outSize()}
}

// types returns the hm types of the inputs and then of the op's value.
func (o *op[T]) types(a hm.TypeVariable) []hm.Type {
	ts := make([]hm.Type, 0, len(o.in)+1)
	for _, sh := range o.in {
		ts = append(ts, gorgonia.TensorType{Dims: len(sh), Of: a})
	}
	return append(ts, gorgonia.TensorType{Dims: len(o.outShape()), Of: a})
}

// diff reports whether input k is differentiable.
func (o *op[T]) diff(k int) bool { return o.m.Backward != nil && !o.m.Inputs[k].NoGrad }

// writeHash writes the identity of the op, with what naming the op kind.
func (o *op[T]) writeHash(h hash.Hash, what string) {
	key := o.m.Key
	if key == "" {
		key = fmt.Sprintf("%p", o.m)
	}
	fmt.Fprintf(h, "graphop.%s[%T](%s.%s %q)%v", what, T(0), o.m.Package, o.m.Name, key, o.in)
}

// data returns the data of the input values after checking their element
// type and number of elements.
func (o *op[T]) data(vals []gorgonia.Value) ([][]T, error) {
	if len(vals) != len(o.in) {
		return nil, o.m.errorf(num.ErrShape, "op got %d inputs, want %d", len(vals), len(o.in))
	}
	data := make([][]T, len(vals))
	for k, v := range vals {
		x, err := valueData[T](v)
		if err != nil {
			return nil, o.m.errorf(o.m.errConfig(), "input %d (%s): %v", k, o.m.Inputs[k].Name, err)
		}
		if want := o.in[k].TotalSize(); len(x) != want {
			return nil, o.m.errorf(num.ErrShape, "input %d (%s) has %d elements, want %v = %d", k, o.m.Inputs[k].Name, len(x), o.in[k], want)
		}
		data[k] = x
	}
	return data, nil
}

// split cuts a value holding the outputs (or their gradients), concatenated,
// into one slice per output.
func (o *op[T]) split(v gorgonia.Value, what string) ([][]T, error) {
	x, err := valueData[T](v)
	if err != nil {
		return nil, o.m.errorf(o.m.errConfig(), "%s: %v", what, err)
	}
	if len(x) != o.outSize() {
		return nil, o.m.errorf(num.ErrShape, "%s has %d elements, want %d", what, len(x), o.outSize())
	}
	parts := make([][]T, len(o.out))
	off := 0
	for k, sh := range o.out {
		n := sh.TotalSize()
		parts[k] = x[off : off+n : off+n]
		off += n
	}
	return parts, nil
}

func (o *op[T]) Arity() int { return len(o.in) }

func (o *op[T]) Type() hm.Type { return hm.NewFnType(o.types(hm.TypeVariable('a'))...) }

func (o *op[T]) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) { return o.outShape(), nil }

func (o *op[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	in, err := o.data(vals)
	if err != nil {
		return nil, err
	}
	outs, err := o.m.Forward(in, o.in)
	if err != nil {
		return nil, err
	}
	if len(outs) != len(o.out) {
		return nil, o.m.errorf(num.ErrShape, "Forward returned %d outputs, want %d", len(outs), len(o.out))
	}
	for k, x := range outs {
		if want := o.out[k].TotalSize(); len(x) != want {
			return nil, o.m.errorf(num.ErrShape, "Forward returned output %d of %d elements, want %v = %d", k, len(x), o.out[k], want)
		}
	}
	flat := outs[0]
	if len(outs) > 1 {
		flat = slices.Concat(outs...)
	}
	return tensor.New(tensor.WithShape(o.outShape()...), tensor.WithBacking(flat)), nil
}

func (o *op[T]) ReturnsPtr() bool      { return false }
func (o *op[T]) CallsExtern() bool     { return false }
func (o *op[T]) OverwritesInput() int  { return -1 }
func (o *op[T]) WriteHash(h hash.Hash) { o.writeHash(h, "op") }
func (o *op[T]) Hashcode() uint32      { return hashOf(o) }
func (o *op[T]) String() string        { return o.m.Name }

// DiffWRT reports the inputs a gradient flows to: all but the NoGrad ones,
// none without Backward.
func (o *op[T]) DiffWRT(inputs int) []bool {
	d := make([]bool, inputs)
	for k := range d {
		d[k] = k < len(o.in) && o.diff(k)
	}
	return d
}

// SymDiff returns the gradient nodes: one gradOp node computing every
// gradient at once, and one pickOp node per differentiable input reading
// its part (nil for the others).
func (o *op[T]) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != len(o.in) {
		return nil, o.m.errorf(num.ErrShape, "SymDiff of %d inputs, want %d", len(inputs), len(o.in))
	}
	g := &gradOp[T]{o}
	all, err := gorgonia.ApplyOp(g, append(slices.Clone(inputs), output, grad)...)
	if err != nil {
		return nil, err
	}
	total := g.size()
	res := make(gorgonia.Nodes, len(inputs))
	off := 0
	for k, sh := range o.in {
		if !o.diff(k) {
			continue
		}
		if res[k], err = gorgonia.ApplyOp(&pickOp[T]{off: off, n: total, shape: sh.Clone()}, all); err != nil {
			return nil, err
		}
		off += sh.TotalSize()
	}
	return res, nil
}

// gradOp runs a module's Backward and returns the gradients of its
// differentiable inputs, concatenated in input order. Its inputs are the
// module's inputs, the forward op's value and the gradient with respect to
// that value.
type gradOp[T num.Float] struct{ f *op[T] }

// size returns the number of elements of the gradients.
func (o *gradOp[T]) size() int {
	n := 0
	for k, sh := range o.f.in {
		if o.f.diff(k) {
			n += sh.TotalSize()
		}
	}
	return n
}

func (o *gradOp[T]) Arity() int { return len(o.f.in) + 2 }

func (o *gradOp[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	ts := o.f.types(a)
	ts = append(ts, ts[len(ts)-1], gorgonia.TensorType{Dims: 1, Of: a})
	return hm.NewFnType(ts...)
}

func (o *gradOp[T]) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{o.size()}, nil
}

func (o *gradOp[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	m, n := o.f.m, len(o.f.in)
	if len(vals) != n+2 {
		return nil, m.errorf(num.ErrShape, "gradient op got %d inputs, want %d", len(vals), n+2)
	}
	in, err := o.f.data(vals[:n])
	if err != nil {
		return nil, err
	}
	out, err := o.f.split(vals[n], "output")
	if err != nil {
		return nil, err
	}
	dOut, err := o.f.split(vals[n+1], "output gradient")
	if err != nil {
		return nil, err
	}
	dIn, err := m.Backward(in, o.f.in, out, dOut)
	if err != nil {
		return nil, err
	}
	if len(dIn) != n {
		return nil, m.errorf(num.ErrShape, "Backward returned %d gradients, want %d", len(dIn), n)
	}
	flat := make([]T, 0, o.size())
	for k, d := range dIn {
		if !o.f.diff(k) {
			continue
		}
		if want := o.f.in[k].TotalSize(); len(d) != want {
			return nil, m.errorf(num.ErrShape, "Backward returned a gradient of %d elements for input %d (%s), want %d", len(d), k, m.Inputs[k].Name, want)
		}
		flat = append(flat, d...)
	}
	return tensor.New(tensor.WithShape(len(flat)), tensor.WithBacking(flat)), nil
}

func (o *gradOp[T]) ReturnsPtr() bool      { return false }
func (o *gradOp[T]) CallsExtern() bool     { return false }
func (o *gradOp[T]) OverwritesInput() int  { return -1 }
func (o *gradOp[T]) WriteHash(h hash.Hash) { o.f.writeHash(h, "grad") }
func (o *gradOp[T]) Hashcode() uint32      { return hashOf(o) }
func (o *gradOp[T]) String() string        { return o.f.m.Name + "Grad" }
