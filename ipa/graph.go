package ipa

import (
	"fmt"
	"hash"
	"hash/fnv"
	"slices"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// numDataInputs is the number of data inputs of the gorgonia op: s, z, rot,
// trans, mask.
const numDataInputs = 5

// ParamNames returns the AF2 names (relative to the parent of the IPA
// module, as LoadParams reads them) of IPA's parameters, in the order in
// which Apply takes their nodes: for each of q_scalar, kv_scalar,
// q_point_local, kv_point_local, attention_2d and output_projection its
// "//weights" then its "//bias", and last "//trainable_point_weights".
func ParamNames() []string {
	var p Params[float64]
	var names []string
	for _, l := range p.linears(DefaultConfig()) {
		names = append(names, Name+"/"+l.name+"//weights", Name+"/"+l.name+"//bias")
	}
	return append(names, pointWeightsName)
}

// paramShapes returns the shapes of the parameters in ParamNames order.
func paramShapes(cfg Config) [][]int {
	var p Params[float64]
	var shapes [][]int
	for _, l := range p.linears(cfg) {
		shapes = append(shapes, []int{l.in, l.out}, []int{l.out})
	}
	return append(shapes, []int{cfg.Heads})
}

// ParamNodes adds to g one node per parameter of p, in ParamNames order,
// each named by its AF2 name and holding a copy of p's values, ready to be
// passed to Apply and trained with gorgonia's solvers. The error wraps
// num.ErrShape if p's arrays do not match p.Config.
func ParamNodes[T num.Float](g *gorgonia.ExprGraph, p *Params[T]) ([]*gorgonia.Node, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	names := ParamNames()
	shapes := paramShapes(p.Config)
	arrays := p.arrays()
	nodes := make([]*gorgonia.Node, len(names))
	for k, name := range names {
		v := tensor.New(tensor.WithShape(shapes[k]...), tensor.WithBacking(slices.Clone(arrays[k])))
		nodes[k] = gorgonia.NodeFromAny(g, v, gorgonia.WithName(name))
	}
	return nodes, nil
}

// arrays returns p's arrays in ParamNames order (sharing storage).
func (p *Params[T]) arrays() [][]T {
	var a [][]T
	for _, l := range p.linears(p.Config) {
		a = append(a, l.p.W, l.p.B)
	}
	return append(a, p.TrainablePointWeights)
}

// paramsFrom returns Params for cfg whose arrays are arrays (in ParamNames
// order), without copying.
func paramsFrom[T num.Float](cfg Config, arrays [][]T) *Params[T] {
	p := &Params[T]{Config: cfg}
	for k, l := range p.linears(cfg) {
		*l.p = nn.LinearParams[T]{W: arrays[2*k], B: arrays[2*k+1], In: l.in, Out: l.out}
	}
	p.TrainablePointWeights = arrays[len(arrays)-1]
	return p
}

// Apply adds invariant point attention to a gorgonia graph and returns the
// node of its output, the update of s, [N, c_s]. s is [N, c_s], z
// [N, N, c_z], rot [N, 3, 3] and trans [N, 3] the frames, mask [N], and
// params the parameter nodes in ParamNames order (see ParamNodes); all must
// have the same element type, float32 or float64.
//
// The op's gradient is wired to Backward: gorgonia.Grad gives the
// gradients with respect to s, z, rot (nine unconstrained entries), trans and
// every parameter (the mask is not differentiable). The backward op runs
// Forward again and then Backward, and all gradients come out of one call.
// Shapes and values are checked when the graph runs, with Forward's errors.
func Apply(cfg Config, s, z, rot, trans, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if want := len(ParamNames()); len(params) != want {
		return nil, fmt.Errorf("ipa: Apply: %d parameter nodes, want %d: %w", len(params), want, num.ErrShape)
	}
	in := append(gorgonia.Nodes{s, z, rot, trans, mask}, params...)
	dims := inputDims()
	for k, x := range in {
		if x == nil {
			return nil, fmt.Errorf("ipa: Apply: input %d is nil: %w", k, ErrConfig)
		}
		if x.Dims() != dims[k] {
			return nil, fmt.Errorf("ipa: Apply: input %d (%s) has %d dimensions, want %d: %w", k, x.Name(), x.Dims(), dims[k], num.ErrShape)
		}
	}
	switch dt := s.Dtype(); dt {
	case tensor.Float64:
		return gorgonia.ApplyOp(&op[float64]{cfg: cfg}, in...)
	case tensor.Float32:
		return gorgonia.ApplyOp(&op[float32]{cfg: cfg}, in...)
	default:
		return nil, fmt.Errorf("ipa: Apply: element type %v, want float32 or float64: %w", dt, ErrConfig)
	}
}

// inputDims returns the number of dimensions of each input of the op.
func inputDims() []int {
	d := []int{2, 3, 3, 2, 1}
	for _, sh := range paramShapes(DefaultConfig()) {
		d = append(d, len(sh))
	}
	return d
}

// op is the gorgonia op running Forward.
type op[T num.Float] struct{ cfg Config }

func (o *op[T]) Arity() int { return numDataInputs + len(ParamNames()) }

func (o *op[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	var ts []hm.Type
	for _, d := range inputDims() {
		ts = append(ts, gorgonia.TensorType{Dims: d, Of: a})
	}
	return hm.NewFnType(append(ts, gorgonia.TensorType{Dims: 2, Of: a})...)
}

func (o *op[T]) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(ds) == 0 {
		return nil, fmt.Errorf("ipa: no input shapes: %w", num.ErrShape)
	}
	n, err := ds[0].DimSize(0)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{n, o.cfg.CS}, nil
}

func (o *op[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	p, s, z, frames, mask, err := unpack[T](o.cfg, vals)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(frames)*o.cfg.CS)
	if err := Forward(p, s, z, frames, mask, out, nil); err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(len(frames), o.cfg.CS), tensor.WithBacking(out)), nil
}

func (o *op[T]) ReturnsPtr() bool      { return false }
func (o *op[T]) CallsExtern() bool     { return false }
func (o *op[T]) OverwritesInput() int  { return -1 }
func (o *op[T]) WriteHash(h hash.Hash) { fmt.Fprintf(h, "ipa.Forward[%T]%+v", T(0), o.cfg) }
func (o *op[T]) Hashcode() uint32      { return hashOf(o) }
func (o *op[T]) String() string        { return "IPA" }

// DiffWRT reports that the op is differentiable with respect to every input
// but the mask.
func (o *op[T]) DiffWRT(inputs int) []bool {
	d := make([]bool, inputs)
	for k := range d {
		d[k] = k != 4
	}
	return d
}

// SymDiff returns the gradient nodes: one gradOp node computing every
// gradient at once, and one pickOp node per differentiable input reading its
// part.
func (o *op[T]) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	all, err := gorgonia.ApplyOp(&gradOp[T]{cfg: o.cfg}, append(slices.Clone(inputs), grad)...)
	if err != nil {
		return nil, err
	}
	res := make(gorgonia.Nodes, len(inputs))
	off := 0
	for k, in := range inputs {
		if k == 4 {
			continue
		}
		shape := in.Shape()
		if res[k], err = gorgonia.ApplyOp(&pickOp[T]{off: off, shape: slices.Clone(shape)}, all); err != nil {
			return nil, err
		}
		off += shape.TotalSize()
	}
	return res, nil
}

// gradOp runs Forward and Backward and returns every gradient (s, z, rot,
// trans, then the parameters in ParamNames order) concatenated into one
// vector; its last input is ∂L/∂out.
type gradOp[T num.Float] struct{ cfg Config }

func (o *gradOp[T]) Arity() int { return numDataInputs + len(ParamNames()) + 1 }

func (o *gradOp[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	var ts []hm.Type
	for _, d := range inputDims() {
		ts = append(ts, gorgonia.TensorType{Dims: d, Of: a})
	}
	ts = append(ts, gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: a})
	return hm.NewFnType(ts...)
}

func (o *gradOp[T]) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	total := 0
	for k, d := range ds[:len(ds)-1] {
		if k == 4 {
			continue
		}
		sh, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("ipa: input %d has no shape: %w", k, num.ErrShape)
		}
		total += sh.TotalSize()
	}
	return tensor.Shape{total}, nil
}

func (o *gradOp[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != o.Arity() {
		return nil, fmt.Errorf("ipa: gradient op got %d inputs, want %d: %w", len(vals), o.Arity(), num.ErrShape)
	}
	p, s, z, frames, mask, err := unpack[T](o.cfg, vals[:len(vals)-1])
	if err != nil {
		return nil, err
	}
	dout, err := valueData[T](vals[len(vals)-1], "output gradient")
	if err != nil {
		return nil, err
	}
	n := len(frames)
	var c Cache[T]
	if err := Forward(p, s, z, frames, mask, make([]T, n*o.cfg.CS), &c); err != nil {
		return nil, err
	}
	ds := make([]T, len(s))
	dz := make([]T, len(z))
	dframes := make([]rigid.Rigid[T], n)
	g := p.ZerosLike()
	if err := Backward(p, &c, dout, ds, dz, dframes, g); err != nil {
		return nil, err
	}
	flat := make([]T, 0, len(s)+len(z)+12*n)
	flat = append(flat, ds...)
	flat = append(flat, dz...)
	for _, f := range dframes {
		flat = append(flat, f.Rot[:]...)
	}
	for _, f := range dframes {
		flat = append(flat, f.Trans[:]...)
	}
	for _, a := range g.arrays() {
		flat = append(flat, a...)
	}
	return tensor.New(tensor.WithShape(len(flat)), tensor.WithBacking(flat)), nil
}

func (o *gradOp[T]) ReturnsPtr() bool     { return false }
func (o *gradOp[T]) CallsExtern() bool    { return false }
func (o *gradOp[T]) OverwritesInput() int { return -1 }
func (o *gradOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "ipa.Backward[%T]%+v", T(0), o.cfg)
}
func (o *gradOp[T]) Hashcode() uint32 { return hashOf(o) }
func (o *gradOp[T]) String() string   { return "IPAGrad" }

// pickOp reads the elements [off, off+size) of a vector as a tensor of the
// given shape: one input's gradient out of gradOp's result.
type pickOp[T num.Float] struct {
	off   int
	shape tensor.Shape
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
	x, err := valueData[T](vals[0], "gradient vector")
	if err != nil {
		return nil, err
	}
	size := o.shape.TotalSize()
	if o.off+size > len(x) {
		return nil, fmt.Errorf("ipa: gradient vector has %d elements, want ≥ %d: %w", len(x), o.off+size, num.ErrShape)
	}
	return tensor.New(tensor.WithShape(o.shape.Clone()...), tensor.WithBacking(slices.Clone(x[o.off:o.off+size]))), nil
}
func (o *pickOp[T]) ReturnsPtr() bool     { return false }
func (o *pickOp[T]) CallsExtern() bool    { return false }
func (o *pickOp[T]) OverwritesInput() int { return -1 }
func (o *pickOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "ipa.pick[%T](%d,%v)", T(0), o.off, o.shape)
}
func (o *pickOp[T]) Hashcode() uint32 { return hashOf(o) }
func (o *pickOp[T]) String() string   { return fmt.Sprintf("IPAGradPart(%d,%v)", o.off, o.shape) }

// hashOf hashes an op through its WriteHash.
func hashOf(o interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// valueData returns the elements of a gorgonia value holding a dense tensor
// of element type T.
func valueData[T num.Float](v gorgonia.Value, what string) ([]T, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, fmt.Errorf("ipa: %s is a %T, want a tensor: %w", what, v, ErrConfig)
	}
	if vw, ok := t.(tensor.View); ok && vw.IsMaterializable() {
		t = vw.Materialize()
	}
	x, ok := t.Data().([]T)
	if !ok {
		return nil, fmt.Errorf("ipa: %s holds %T, want []%T: %w", what, t.Data(), T(0), ErrConfig)
	}
	return x, nil
}

// unpack turns the op's values into Forward's arguments (sharing storage).
func unpack[T num.Float](cfg Config, vals []gorgonia.Value) (p *Params[T], s, z []T, frames []rigid.Rigid[T], mask []T, err error) {
	names := append([]string{"s", "z", "rot", "trans", "mask"}, ParamNames()...)
	if len(vals) != len(names) {
		return nil, nil, nil, nil, nil, fmt.Errorf("ipa: op got %d inputs, want %d: %w", len(vals), len(names), num.ErrShape)
	}
	data := make([][]T, len(vals))
	for k, v := range vals {
		if data[k], err = valueData[T](v, names[k]); err != nil {
			return nil, nil, nil, nil, nil, err
		}
	}
	rot, trans := data[2], data[3]
	n := len(data[4])
	if len(rot) != 9*n || len(trans) != 3*n {
		return nil, nil, nil, nil, nil, fmt.Errorf("ipa: rot has %d and trans %d elements, want [N 3 3] and [N 3] with N = %d (from mask): %w",
			len(rot), len(trans), n, num.ErrShape)
	}
	frames = make([]rigid.Rigid[T], n)
	for i := range frames {
		copy(frames[i].Rot[:], rot[9*i:])
		copy(frames[i].Trans[:], trans[3*i:])
	}
	p = paramsFrom(cfg, data[numDataInputs:])
	return p, data[0], data[1], frames, data[4], nil
}
