package recycle

import (
	"fmt"
	"hash"
	"hash/fnv"
	"slices"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// ParamNames returns the AF2 names of the embedder's parameters, relative
// to alphafold/alphafold_iteration/evoformer/, in the order Apply takes
// their nodes: prev_pos_linear's weights and bias, then the scale and
// offset of prev_msa_first_row_norm and of prev_pair_norm.
func ParamNames(cfg Config) []string {
	p := &Params[float64]{Config: cfg}
	var names []string
	for _, t := range p.tensors() {
		names = append(names, t.name)
	}
	return names
}

// ParamNodes adds to g one node per parameter of p, in ParamNames order,
// each named by its AF2 name and holding a copy of p's values, ready for
// Apply and gorgonia's solvers.
func (p *Params[T]) ParamNodes(g *gorgonia.ExprGraph) ([]*gorgonia.Node, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	ts := p.tensors()
	nodes := make([]*gorgonia.Node, len(ts))
	for k, t := range ts {
		v := tensor.New(tensor.WithShape(t.shape...), tensor.WithBacking(slices.Clone(*t.data)))
		nodes[k] = gorgonia.NodeFromAny(g, v, gorgonia.WithName(t.name))
	}
	return nodes, nil
}

// Apply adds the recycling embedder (Algorithm 32) to a gorgonia graph:
// prevMSAFirstRow [N, c_m], prevPair [N, N, c_z], prevPseudoBeta [N, 3] and
// the parameter nodes in ParamNames order, all of one element type, float32
// or float64. It returns the nodes of the two updates, [N, c_m] and
// [N, N, c_z]. Both are parts of one op whose gradient runs Backward; the
// positions get no gradient (the distogram is piecewise constant), so they
// are not differentiable inputs. Shapes and values are checked when the
// graph runs, with Forward's errors.
//
// Feed the previous pass's outputs through StopGradient, as AF2 does, when
// a graph unrolls several passes.
func Apply(cfg Config, prevMSAFirstRow, prevPair, prevPseudoBeta *gorgonia.Node, params []*gorgonia.Node) (msaOut, pairOut *gorgonia.Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if want := len(ParamNames(cfg)); len(params) != want {
		return nil, nil, fmt.Errorf("recycle: Apply: %d parameter nodes, want %d: %w", len(params), want, num.ErrShape)
	}
	data := []*gorgonia.Node{prevMSAFirstRow, prevPair, prevPseudoBeta}
	dims := []int{2, 3, 2}
	for k, x := range append(slices.Clone(data), params...) {
		if x == nil {
			return nil, nil, fmt.Errorf("recycle: Apply: input %d is nil: %w", k, ErrConfig)
		}
	}
	for k, x := range data {
		if x.Dims() != dims[k] {
			return nil, nil, fmt.Errorf("recycle: Apply: input %d (%s) has %d dimensions, want %d: %w", k, x.Name(), x.Dims(), dims[k], num.ErrShape)
		}
	}
	in := append(data, params...)
	ms, ps := prevMSAFirstRow.Shape().Clone(), prevPair.Shape().Clone()
	var all *gorgonia.Node
	var pick func(off int, shape tensor.Shape) (*gorgonia.Node, error)
	switch dt := prevMSAFirstRow.Dtype(); dt {
	case tensor.Float64:
		all, err = gorgonia.ApplyOp(&embedOp[float64]{cfg: cfg}, in...)
		pick = func(off int, shape tensor.Shape) (*gorgonia.Node, error) {
			return gorgonia.ApplyOp(&pickOp[float64]{off: off, shape: shape}, all)
		}
	case tensor.Float32:
		all, err = gorgonia.ApplyOp(&embedOp[float32]{cfg: cfg}, in...)
		pick = func(off int, shape tensor.Shape) (*gorgonia.Node, error) {
			return gorgonia.ApplyOp(&pickOp[float32]{off: off, shape: shape}, all)
		}
	default:
		return nil, nil, fmt.Errorf("recycle: Apply: element type %v, want float32 or float64: %w", dt, ErrConfig)
	}
	if err != nil {
		return nil, nil, err
	}
	if msaOut, err = pick(0, ms); err != nil {
		return nil, nil, err
	}
	if pairOut, err = pick(ms.TotalSize(), ps); err != nil {
		return nil, nil, err
	}
	return msaOut, pairOut, nil
}

// StopGradient returns a node with x's value through which no gradient
// flows: AF2's stop_gradient between recycling passes, for graphs that
// unroll them. gorgonia.Grad treats the op as not differentiable, so
// parameters reach the loss only through the paths that do not cross it
// (and asking for the gradient of a node that reaches the loss only through
// it is an error, as the gradient is structurally 0).
func StopGradient(x *gorgonia.Node) (*gorgonia.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("recycle: StopGradient of a nil node: %w", ErrConfig)
	}
	return gorgonia.ApplyOp(stopOp{dims: x.Dims()}, x)
}

// stopOp is the identity, declared not differentiable.
type stopOp struct{ dims int }

func (o stopOp) Arity() int { return 1 }
func (o stopOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := gorgonia.TensorType{Dims: o.dims, Of: a}
	if o.dims == 0 {
		return hm.NewFnType(a, a)
	}
	return hm.NewFnType(t, t)
}
func (o stopOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(ds) != 1 {
		return nil, fmt.Errorf("recycle: StopGradient takes one input: %w", num.ErrShape)
	}
	sh, ok := ds[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("recycle: StopGradient input has no shape: %w", num.ErrShape)
	}
	return sh.Clone(), nil
}
func (o stopOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if t, ok := vals[0].(tensor.Tensor); ok {
		return t.Clone().(gorgonia.Value), nil
	}
	return vals[0], nil
}
func (o stopOp) ReturnsPtr() bool      { return false }
func (o stopOp) CallsExtern() bool     { return false }
func (o stopOp) OverwritesInput() int  { return -1 }
func (o stopOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "recycle.StopGradient(%d)", o.dims) }
func (o stopOp) Hashcode() uint32      { return hashOf(o) }
func (o stopOp) String() string        { return "StopGradient" }

// DiffWRT reports that nothing flows back through the op.
func (o stopOp) DiffWRT(inputs int) []bool { return make([]bool, inputs) }

// SymDiff is never called for a non-differentiable input; it returns no
// gradient.
func (o stopOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	return make(gorgonia.Nodes, len(inputs)), nil
}

// embedOp runs Forward and returns both updates concatenated into one
// vector, which Apply splits with pickOp.
type embedOp[T num.Float] struct{ cfg Config }

func (o *embedOp[T]) Arity() int { return 3 + len(ParamNames(o.cfg)) }

func (o *embedOp[T]) types(a hm.TypeVariable) []hm.Type {
	ts := []hm.Type{gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 3, Of: a}, gorgonia.TensorType{Dims: 2, Of: a}}
	p := &Params[float64]{Config: o.cfg}
	for _, t := range p.tensors() {
		ts = append(ts, gorgonia.TensorType{Dims: len(t.shape), Of: a})
	}
	return ts
}

func (o *embedOp[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(append(o.types(a), gorgonia.TensorType{Dims: 1, Of: a})...)
}

func (o *embedOp[T]) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(ds) < 2 {
		return nil, fmt.Errorf("recycle: embedder op: %d input shapes: %w", len(ds), num.ErrShape)
	}
	total := 0
	for k := range 2 {
		sh, ok := ds[k].(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("recycle: input %d has no shape: %w", k, num.ErrShape)
		}
		total += sh.TotalSize()
	}
	return tensor.Shape{total}, nil
}

// unpack binds the op's values to Forward's arguments (sharing storage).
func (o *embedOp[T]) unpack(vals []gorgonia.Value) (p *Params[T], row, pair, pb []T, err error) {
	if len(vals) != o.Arity() {
		return nil, nil, nil, nil, fmt.Errorf("recycle: embedder op got %d inputs, want %d: %w", len(vals), o.Arity(), num.ErrShape)
	}
	data := make([][]T, len(vals))
	for k, v := range vals {
		if data[k], err = valueData[T](v, fmt.Sprintf("input %d", k)); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	p = &Params[T]{Config: o.cfg}
	for k, t := range p.tensors() {
		*t.data = data[3+k]
	}
	return p, data[0], data[1], data[2], nil
}

func (o *embedOp[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	p, row, pair, pb, err := o.unpack(vals)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(row)+len(pair))
	if err := Forward(p, row, pair, pb, out[:len(row)], out[len(row):], nil); err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(len(out)), tensor.WithBacking(out)), nil
}

func (o *embedOp[T]) ReturnsPtr() bool     { return false }
func (o *embedOp[T]) CallsExtern() bool    { return false }
func (o *embedOp[T]) OverwritesInput() int { return -1 }
func (o *embedOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "recycle.Forward[%T]%+v", T(0), o.cfg)
}
func (o *embedOp[T]) Hashcode() uint32 { return hashOf(o) }
func (o *embedOp[T]) String() string   { return "RecyclingEmbedder" }

// DiffWRT reports every input differentiable but the positions.
func (o *embedOp[T]) DiffWRT(inputs int) []bool {
	d := make([]bool, inputs)
	for k := range d {
		d[k] = k != 2
	}
	return d
}

// SymDiff returns one gradOp node computing every gradient and one pickOp
// node per differentiable input reading its part.
func (o *embedOp[T]) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	all, err := gorgonia.ApplyOp(&gradOp[T]{cfg: o.cfg}, append(slices.Clone(inputs), grad)...)
	if err != nil {
		return nil, err
	}
	res := make(gorgonia.Nodes, len(inputs))
	off := 0
	for k, in := range inputs {
		if k == 2 {
			continue
		}
		shape := in.Shape().Clone()
		if res[k], err = gorgonia.ApplyOp(&pickOp[T]{off: off, shape: shape}, all); err != nil {
			return nil, err
		}
		off += shape.TotalSize()
	}
	return res, nil
}

// gradOp runs Forward and Backward and returns the gradients of the first
// MSA row, the pair and the parameters (ParamNames order) in one vector;
// its last input is ∂L/∂(embedOp's output).
type gradOp[T num.Float] struct{ cfg Config }

func (o *gradOp[T]) Arity() int { return 4 + len(ParamNames(o.cfg)) }
func (o *gradOp[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	e := &embedOp[T]{cfg: o.cfg}
	return hm.NewFnType(append(e.types(a), gorgonia.TensorType{Dims: 1, Of: a}, gorgonia.TensorType{Dims: 1, Of: a})...)
}
func (o *gradOp[T]) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	total := 0
	for k, d := range ds[:len(ds)-1] {
		if k == 2 {
			continue
		}
		sh, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("recycle: input %d has no shape: %w", k, num.ErrShape)
		}
		total += sh.TotalSize()
	}
	return tensor.Shape{total}, nil
}
func (o *gradOp[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != o.Arity() {
		return nil, fmt.Errorf("recycle: gradient op got %d inputs, want %d: %w", len(vals), o.Arity(), num.ErrShape)
	}
	e := &embedOp[T]{cfg: o.cfg}
	p, row, pair, pb, err := e.unpack(vals[:len(vals)-1])
	if err != nil {
		return nil, err
	}
	dout, err := valueData[T](vals[len(vals)-1], "output gradient")
	if err != nil {
		return nil, err
	}
	if len(dout) != len(row)+len(pair) {
		return nil, fmt.Errorf("recycle: output gradient has %d elements, want %d: %w", len(dout), len(row)+len(pair), num.ErrShape)
	}
	var c Cache[T]
	if err := Forward(p, row, pair, pb, make([]T, len(row)), make([]T, len(pair)), &c); err != nil {
		return nil, err
	}
	dRow, dPair := make([]T, len(row)), make([]T, len(pair))
	g := p.ZerosLike()
	if err := Backward(p, &c, dout[:len(row)], dout[len(row):], dRow, dPair, g); err != nil {
		return nil, err
	}
	flat := append(dRow, dPair...)
	for _, t := range g.tensors() {
		flat = append(flat, *t.data...)
	}
	return tensor.New(tensor.WithShape(len(flat)), tensor.WithBacking(flat)), nil
}
func (o *gradOp[T]) ReturnsPtr() bool     { return false }
func (o *gradOp[T]) CallsExtern() bool    { return false }
func (o *gradOp[T]) OverwritesInput() int { return -1 }
func (o *gradOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "recycle.Backward[%T]%+v", T(0), o.cfg)
}
func (o *gradOp[T]) Hashcode() uint32 { return hashOf(o) }
func (o *gradOp[T]) String() string   { return "RecyclingEmbedderGrad" }

// pickOp reads the elements [off, off+size) of a vector as a tensor of the
// given shape. Its gradient scatters back into a zero vector (scatterOp),
// so that the embedder's two outputs can feed separate consumers.
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
	x, err := valueData[T](vals[0], "vector")
	if err != nil {
		return nil, err
	}
	size := o.shape.TotalSize()
	if o.off+size > len(x) {
		return nil, fmt.Errorf("recycle: vector has %d elements, want ≥ %d: %w", len(x), o.off+size, num.ErrShape)
	}
	return tensor.New(tensor.WithShape(o.shape.Clone()...), tensor.WithBacking(slices.Clone(x[o.off:o.off+size]))), nil
}
func (o *pickOp[T]) ReturnsPtr() bool     { return false }
func (o *pickOp[T]) CallsExtern() bool    { return false }
func (o *pickOp[T]) OverwritesInput() int { return -1 }
func (o *pickOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "recycle.pick[%T](%d,%v)", T(0), o.off, o.shape)
}
func (o *pickOp[T]) Hashcode() uint32          { return hashOf(o) }
func (o *pickOp[T]) String() string            { return fmt.Sprintf("Pick(%d,%v)", o.off, o.shape) }
func (o *pickOp[T]) DiffWRT(inputs int) []bool { return []bool{true} }
func (o *pickOp[T]) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := gorgonia.ApplyOp(&scatterOp[T]{off: o.off, n: inputs[0].Shape().TotalSize(), rank: len(o.shape)}, grad)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// scatterOp writes its input (a tensor of the given rank) into a zero
// vector of length n at offset off: the gradient of pickOp.
type scatterOp[T num.Float] struct{ off, n, rank int }

func (o *scatterOp[T]) Arity() int { return 1 }
func (o *scatterOp[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(gorgonia.TensorType{Dims: o.rank, Of: a}, gorgonia.TensorType{Dims: 1, Of: a})
}
func (o *scatterOp[T]) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{o.n}, nil
}
func (o *scatterOp[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	x, err := valueData[T](vals[0], "gradient part")
	if err != nil {
		return nil, err
	}
	if o.off+len(x) > o.n {
		return nil, fmt.Errorf("recycle: gradient part of %d elements at %d overflows %d: %w", len(x), o.off, o.n, num.ErrShape)
	}
	out := make([]T, o.n)
	copy(out[o.off:], x)
	return tensor.New(tensor.WithShape(o.n), tensor.WithBacking(out)), nil
}
func (o *scatterOp[T]) ReturnsPtr() bool     { return false }
func (o *scatterOp[T]) CallsExtern() bool    { return false }
func (o *scatterOp[T]) OverwritesInput() int { return -1 }
func (o *scatterOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "recycle.scatter[%T](%d,%d,%d)", T(0), o.off, o.n, o.rank)
}
func (o *scatterOp[T]) Hashcode() uint32 { return hashOf(o) }
func (o *scatterOp[T]) String() string   { return fmt.Sprintf("Scatter(%d,%d)", o.off, o.n) }

// hashOf hashes an op through its WriteHash.
func hashOf(o interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// valueData returns the elements of a gorgonia value holding a dense
// tensor of element type T.
func valueData[T num.Float](v gorgonia.Value, what string) ([]T, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, fmt.Errorf("recycle: %s is a %T, want a tensor: %w", what, v, ErrConfig)
	}
	if vw, ok := t.(tensor.View); ok && vw.IsMaterializable() {
		t = vw.Materialize()
	}
	x, ok := t.Data().([]T)
	if !ok {
		return nil, fmt.Errorf("recycle: %s holds %T, want []%T: %w", what, t.Data(), T(0), ErrConfig)
	}
	return x, nil
}
