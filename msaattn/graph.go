package msaattn

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

// The gorgonia adapters make each module a node of a gorgonia expression
// graph. The node's inputs are the data (msa, z for row attention, the
// mask) followed by one node per parameter, in the order the module's
// ParamNames function gives, so that gorgonia's solvers can train the
// parameters. Its symbolic gradient is one node that runs the module's
// Forward and Backward and returns every gradient concatenated, and one
// node per differentiable input reading its part: the module's Backward is
// called once per graph run. The mask is not differentiable.

// RowParamNames returns the AF2 names of row attention's parameters,
// relative to the parent of msa_row_attention_with_pair_bias/, in the order
// in which ApplyRow takes their nodes.
func RowParamNames() []string {
	var p RowParams[float64]
	return paramNames(RowPrefix, p.tensors(DefaultRowConfig()))
}

// ColumnParamNames returns the AF2 names of column attention's parameters,
// relative to the parent of msa_column_attention/, in the order in which
// ApplyColumn takes their nodes.
func ColumnParamNames() []string {
	var p ColumnParams[float64]
	return paramNames(ColumnPrefix, p.tensors(DefaultColumnConfig()))
}

// GlobalColumnParamNames returns the AF2 names of global column attention's
// parameters, relative to the parent of msa_column_global_attention/, in the
// order in which ApplyGlobalColumn takes their nodes.
func GlobalColumnParamNames() []string {
	var p GlobalColumnParams[float64]
	return paramNames(GlobalColumnPrefix, p.tensors(DefaultGlobalColumnConfig()))
}

func paramNames[T num.Float](prefix string, ts []param[T]) []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = prefix + t.name
	}
	return names
}

// RowParamNodes adds to g one node per parameter of p, in RowParamNames
// order, each named by its AF2 name and holding a copy of p's values, ready
// for ApplyRow and gorgonia's solvers. The error wraps num.ErrShape or
// num.ErrNaN if p does not match cfg.
func RowParamNodes[T num.Float](g *gorgonia.ExprGraph, cfg RowConfig, p *RowParams[T]) ([]*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return paramNodes(g, "row attention", RowPrefix, p.tensors(cfg))
}

// ColumnParamNodes adds to g one node per parameter of p, in
// ColumnParamNames order (see RowParamNodes).
func ColumnParamNodes[T num.Float](g *gorgonia.ExprGraph, cfg ColumnConfig, p *ColumnParams[T]) ([]*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return paramNodes(g, "column attention", ColumnPrefix, p.tensors(cfg))
}

// GlobalColumnParamNodes adds to g one node per parameter of p, in
// GlobalColumnParamNames order (see RowParamNodes).
func GlobalColumnParamNodes[T num.Float](g *gorgonia.ExprGraph, cfg GlobalColumnConfig, p *GlobalColumnParams[T]) ([]*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return paramNodes(g, "global column attention", GlobalColumnPrefix, p.tensors(cfg))
}

func paramNodes[T num.Float](g *gorgonia.ExprGraph, mod, prefix string, ts []param[T]) ([]*gorgonia.Node, error) {
	if err := checkTensors(mod, prefix, ts); err != nil {
		return nil, err
	}
	nodes := make([]*gorgonia.Node, len(ts))
	for i, t := range ts {
		v := tensor.New(tensor.WithShape(t.shape...), tensor.WithBacking(slices.Clone(*t.data)))
		nodes[i] = gorgonia.NodeFromAny(g, v, gorgonia.WithName(prefix+t.name))
	}
	return nodes, nil
}

// ApplyRow adds MSA row attention with pair bias (Algorithm 7) to a gorgonia
// graph and returns the node of its update [S, N, c_m]. msa is [S, N, c_m],
// z [N, N, c_z], mask [S, N], and params the parameter nodes in
// RowParamNames order (see RowParamNodes); all must have the same element
// type, float32 or float64. gorgonia.Grad gives the gradients of msa, z and
// every parameter through RowAttention.Backward. Shapes and values are
// checked when the graph runs, with Forward's errors.
func ApplyRow(cfg RowConfig, msa, z, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return apply(msa.Dtype(), []*gorgonia.Node{msa, z, mask}, params, rowGraph[float32]{cfg}, rowGraph[float64]{cfg})
}

// ApplyColumn adds MSA column attention (Algorithm 8) to a gorgonia graph
// and returns the node of its update [S, N, c_m]; msa is [S, N, c_m], mask
// [S, N] and params the parameter nodes in ColumnParamNames order (see
// ApplyRow).
func ApplyColumn(cfg ColumnConfig, msa, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return apply(msa.Dtype(), []*gorgonia.Node{msa, mask}, params, columnGraph[float32]{cfg}, columnGraph[float64]{cfg})
}

// ApplyGlobalColumn adds MSA global column attention (Algorithm 19) to a
// gorgonia graph and returns the node of its update [S, N, c_e]; msa is
// [S, N, c_e], mask [S, N] and params the parameter nodes in
// GlobalColumnParamNames order (see ApplyRow).
func ApplyGlobalColumn(cfg GlobalColumnConfig, msa, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return apply(msa.Dtype(), []*gorgonia.Node{msa, mask}, params, globalGraph[float32]{cfg}, globalGraph[float64]{cfg})
}

// graphModule describes one module to the gorgonia ops: its data inputs
// (the last one is the mask), its parameters, and how to run it on the
// values of all inputs (data, then parameters, sharing storage).
type graphModule[T num.Float] interface {
	name() string
	dataDims() []int
	params() []param[T] // fresh Params' tensors: shapes, and fields to fill
	forward(vals [][]T, s, n int) ([]T, error)
	// grads returns the gradients of the differentiable inputs, in order
	// (every input but the mask).
	grads(vals [][]T, s, n int, dout []T) ([][]T, error)
	outChannels() int
}

func apply(dt tensor.Dtype, data, params []*gorgonia.Node, m32 graphModule[float32], m64 graphModule[float64]) (*gorgonia.Node, error) {
	switch dt {
	case tensor.Float32:
		return applyT(data, params, m32)
	case tensor.Float64:
		return applyT(data, params, m64)
	}
	return nil, fmt.Errorf("msaattn: %s: element type %v, want float32 or float64", m64.name(), dt)
}

func applyT[T num.Float](data, params []*gorgonia.Node, m graphModule[T]) (*gorgonia.Node, error) {
	ts := m.params()
	if len(params) != len(ts) {
		return nil, fmt.Errorf("msaattn: %s: %d parameter nodes, want %d: %w", m.name(), len(params), len(ts), num.ErrShape)
	}
	in := append(slices.Clone(data), params...)
	dims := inputDims(m)
	for k, x := range in {
		if x == nil {
			return nil, fmt.Errorf("msaattn: %s: input node %d is nil", m.name(), k)
		}
		if x.Dims() != dims[k] {
			return nil, fmt.Errorf("msaattn: %s: input node %d (%s) has %d dimensions, want %d: %w", m.name(), k, x.Name(), x.Dims(), dims[k], num.ErrShape)
		}
	}
	return gorgonia.ApplyOp(&fwdOp[T]{m}, in...)
}

// inputDims returns the number of dimensions of every input of m's op.
func inputDims[T num.Float](m graphModule[T]) []int {
	d := slices.Clone(m.dataDims())
	for _, t := range m.params() {
		d = append(d, len(t.shape))
	}
	return d
}

// unpackValues returns the data of the op's values after checking their
// element type, and S and N from the msa value's shape.
func unpackValues[T num.Float](m graphModule[T], vals []gorgonia.Value) (data [][]T, s, n int, err error) {
	if want := len(inputDims(m)); len(vals) != want {
		return nil, 0, 0, fmt.Errorf("msaattn: %s: op got %d inputs, want %d: %w", m.name(), len(vals), want, num.ErrShape)
	}
	data = make([][]T, len(vals))
	for k, v := range vals {
		if data[k], err = valueData[T](m.name(), v, k); err != nil {
			return nil, 0, 0, err
		}
	}
	sh := vals[0].Shape()
	if len(sh) != 3 {
		return nil, 0, 0, fmt.Errorf("msaattn: %s: msa has shape %v, want [S N c]: %w", m.name(), sh, num.ErrShape)
	}
	return data, sh[0], sh[1], nil
}

// valueData returns the elements of a value holding a dense tensor of T.
func valueData[T num.Float](mod string, v gorgonia.Value, k int) ([]T, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, fmt.Errorf("msaattn: %s: input %d is a %T, want a tensor", mod, k, v)
	}
	if vw, ok := t.(tensor.View); ok && vw.IsMaterializable() {
		t = vw.Materialize()
	}
	x, ok := t.Data().([]T)
	if !ok {
		return nil, fmt.Errorf("msaattn: %s: input %d holds %T, want []%T", mod, k, t.Data(), T(0))
	}
	return x, nil
}

// setParams points the fields of ts at the parameter values vals (no copy).
func setParams[T num.Float](ts []param[T], vals [][]T) {
	for i, t := range ts {
		*t.data = vals[i]
	}
}

// flatten concatenates the gradients into one vector.
func flatten[T num.Float](gs [][]T) []T {
	n := 0
	for _, g := range gs {
		n += len(g)
	}
	flat := make([]T, 0, n)
	for _, g := range gs {
		flat = append(flat, g...)
	}
	return flat
}

// fwdOp runs a module's Forward.
type fwdOp[T num.Float] struct{ m graphModule[T] }

func (o *fwdOp[T]) Arity() int { return len(inputDims(o.m)) }

func (o *fwdOp[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	var ts []hm.Type
	for _, d := range inputDims(o.m) {
		ts = append(ts, gorgonia.TensorType{Dims: d, Of: a})
	}
	return hm.NewFnType(append(ts, gorgonia.TensorType{Dims: 3, Of: a})...)
}

func (o *fwdOp[T]) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(ds) == 0 {
		return nil, fmt.Errorf("msaattn: %s: no input shapes: %w", o.m.name(), num.ErrShape)
	}
	s, err := ds[0].DimSize(0)
	if err != nil {
		return nil, err
	}
	n, err := ds[0].DimSize(1)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s, n, o.m.outChannels()}, nil
}

func (o *fwdOp[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	data, s, n, err := unpackValues(o.m, vals)
	if err != nil {
		return nil, err
	}
	out, err := o.m.forward(data, s, n)
	if err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(s, n, o.m.outChannels()), tensor.WithBacking(out)), nil
}

func (o *fwdOp[T]) ReturnsPtr() bool      { return false }
func (o *fwdOp[T]) CallsExtern() bool     { return false }
func (o *fwdOp[T]) OverwritesInput() int  { return -1 }
func (o *fwdOp[T]) WriteHash(h hash.Hash) { fmt.Fprintf(h, "msaattn.%s[%T]", o.m, T(0)) }
func (o *fwdOp[T]) Hashcode() uint32      { return hashOf(o) }
func (o *fwdOp[T]) String() string        { return o.m.name() }

// maskIndex is the input index of the mask: the last data input.
func (o *fwdOp[T]) maskIndex() int { return len(o.m.dataDims()) - 1 }

// DiffWRT reports that the op is differentiable with respect to every input
// but the mask.
func (o *fwdOp[T]) DiffWRT(inputs int) []bool {
	d := make([]bool, inputs)
	for k := range d {
		d[k] = k != o.maskIndex()
	}
	return d
}

// SymDiff returns one gradOp node computing every gradient and one pickOp
// node per differentiable input reading its part.
func (o *fwdOp[T]) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	all, err := gorgonia.ApplyOp(&gradOp[T]{o.m}, append(slices.Clone(inputs), grad)...)
	if err != nil {
		return nil, err
	}
	res := make(gorgonia.Nodes, len(inputs))
	off := 0
	for k, in := range inputs {
		if k == o.maskIndex() {
			continue
		}
		shape := in.Shape()
		if res[k], err = gorgonia.ApplyOp(&pickOp[T]{off: off, shape: shape.Clone()}, all); err != nil {
			return nil, err
		}
		off += shape.TotalSize()
	}
	return res, nil
}

// gradOp runs a module's Forward and Backward and returns the gradients of
// every input but the mask, concatenated in input order; its last input is
// ∂L/∂update.
type gradOp[T num.Float] struct{ m graphModule[T] }

func (o *gradOp[T]) Arity() int { return len(inputDims(o.m)) + 1 }

func (o *gradOp[T]) Type() hm.Type {
	a := hm.TypeVariable('a')
	var ts []hm.Type
	for _, d := range inputDims(o.m) {
		ts = append(ts, gorgonia.TensorType{Dims: d, Of: a})
	}
	ts = append(ts, gorgonia.TensorType{Dims: 3, Of: a}, gorgonia.TensorType{Dims: 1, Of: a})
	return hm.NewFnType(ts...)
}

func (o *gradOp[T]) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	mask := len(o.m.dataDims()) - 1
	total := 0
	for k, d := range ds[:len(ds)-1] {
		if k == mask {
			continue
		}
		sh, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("msaattn: %s: input %d has no shape: %w", o.m.name(), k, num.ErrShape)
		}
		total += sh.TotalSize()
	}
	return tensor.Shape{total}, nil
}

func (o *gradOp[T]) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != o.Arity() {
		return nil, fmt.Errorf("msaattn: %s: gradient op got %d inputs, want %d: %w", o.m.name(), len(vals), o.Arity(), num.ErrShape)
	}
	data, s, n, err := unpackValues(o.m, vals[:len(vals)-1])
	if err != nil {
		return nil, err
	}
	dout, err := valueData[T](o.m.name(), vals[len(vals)-1], len(vals)-1)
	if err != nil {
		return nil, err
	}
	gs, err := o.m.grads(data, s, n, dout)
	if err != nil {
		return nil, err
	}
	flat := flatten(gs)
	return tensor.New(tensor.WithShape(len(flat)), tensor.WithBacking(flat)), nil
}

func (o *gradOp[T]) ReturnsPtr() bool      { return false }
func (o *gradOp[T]) CallsExtern() bool     { return false }
func (o *gradOp[T]) OverwritesInput() int  { return -1 }
func (o *gradOp[T]) WriteHash(h hash.Hash) { fmt.Fprintf(h, "msaattn.%s.grad[%T]", o.m, T(0)) }
func (o *gradOp[T]) Hashcode() uint32      { return hashOf(o) }
func (o *gradOp[T]) String() string        { return o.m.name() + "Grad" }

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
	x, err := valueData[T]("gradient", vals[0], 0)
	if err != nil {
		return nil, err
	}
	size := o.shape.TotalSize()
	if o.off+size > len(x) {
		return nil, fmt.Errorf("msaattn: gradient vector has %d elements, want ≥ %d: %w", len(x), o.off+size, num.ErrShape)
	}
	return tensor.New(tensor.WithShape(o.shape.Clone()...), tensor.WithBacking(slices.Clone(x[o.off:o.off+size]))), nil
}

func (o *pickOp[T]) ReturnsPtr() bool     { return false }
func (o *pickOp[T]) CallsExtern() bool    { return false }
func (o *pickOp[T]) OverwritesInput() int { return -1 }
func (o *pickOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "msaattn.pick[%T](%d,%v)", T(0), o.off, o.shape)
}
func (o *pickOp[T]) Hashcode() uint32 { return hashOf(o) }
func (o *pickOp[T]) String() string {
	return fmt.Sprintf("MSAAttentionGradPart(%d,%v)", o.off, o.shape)
}

// hashOf hashes an op through its WriteHash.
func hashOf(o interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// rowGraph is row attention as a graphModule: inputs msa, z, mask.
type rowGraph[T num.Float] struct{ cfg RowConfig }

func (g rowGraph[T]) name() string       { return "RowAttention" }
func (g rowGraph[T]) dataDims() []int    { return []int{3, 3, 2} }
func (g rowGraph[T]) outChannels() int   { return g.cfg.MSAChannels }
func (g rowGraph[T]) String() string     { return fmt.Sprintf("RowAttention%+v", g.cfg) }
func (g rowGraph[T]) params() []param[T] { return new(RowParams[T]).tensors(g.cfg) }

func (g rowGraph[T]) module(vals [][]T) *RowAttention[T] {
	p := new(RowParams[T])
	setParams(p.tensors(g.cfg), vals[3:])
	return &RowAttention[T]{Config: g.cfg, Params: p}
}

func (g rowGraph[T]) forward(vals [][]T, s, n int) ([]T, error) {
	return g.module(vals).Forward(vals[0], vals[1], vals[2], s, n, nil)
}

func (g rowGraph[T]) grads(vals [][]T, s, n int, dout []T) ([][]T, error) {
	m := g.module(vals)
	var c RowCache[T]
	if _, err := m.Forward(vals[0], vals[1], vals[2], s, n, &c); err != nil {
		return nil, err
	}
	gr, err := m.Backward(&c, dout)
	if err != nil {
		return nil, err
	}
	return append([][]T{gr.MSA, gr.Z}, tensorData(gr.Params.tensors(g.cfg))...), nil
}

// columnGraph is column attention as a graphModule: inputs msa, mask.
type columnGraph[T num.Float] struct{ cfg ColumnConfig }

func (g columnGraph[T]) name() string       { return "ColumnAttention" }
func (g columnGraph[T]) dataDims() []int    { return []int{3, 2} }
func (g columnGraph[T]) outChannels() int   { return g.cfg.MSAChannels }
func (g columnGraph[T]) String() string     { return fmt.Sprintf("ColumnAttention%+v", g.cfg) }
func (g columnGraph[T]) params() []param[T] { return new(ColumnParams[T]).tensors(g.cfg) }

func (g columnGraph[T]) module(vals [][]T) *ColumnAttention[T] {
	p := new(ColumnParams[T])
	setParams(p.tensors(g.cfg), vals[2:])
	return &ColumnAttention[T]{Config: g.cfg, Params: p}
}

func (g columnGraph[T]) forward(vals [][]T, s, n int) ([]T, error) {
	return g.module(vals).Forward(vals[0], vals[1], s, n, nil)
}

func (g columnGraph[T]) grads(vals [][]T, s, n int, dout []T) ([][]T, error) {
	m := g.module(vals)
	var c ColumnCache[T]
	if _, err := m.Forward(vals[0], vals[1], s, n, &c); err != nil {
		return nil, err
	}
	gr, err := m.Backward(&c, dout)
	if err != nil {
		return nil, err
	}
	return append([][]T{gr.MSA}, tensorData(gr.Params.tensors(g.cfg))...), nil
}

// globalGraph is global column attention as a graphModule: inputs msa, mask.
type globalGraph[T num.Float] struct{ cfg GlobalColumnConfig }

func (g globalGraph[T]) name() string       { return "GlobalColumnAttention" }
func (g globalGraph[T]) dataDims() []int    { return []int{3, 2} }
func (g globalGraph[T]) outChannels() int   { return g.cfg.MSAChannels }
func (g globalGraph[T]) String() string     { return fmt.Sprintf("GlobalColumnAttention%+v", g.cfg) }
func (g globalGraph[T]) params() []param[T] { return new(GlobalColumnParams[T]).tensors(g.cfg) }

func (g globalGraph[T]) module(vals [][]T) *GlobalColumnAttention[T] {
	p := new(GlobalColumnParams[T])
	setParams(p.tensors(g.cfg), vals[2:])
	return &GlobalColumnAttention[T]{Config: g.cfg, Params: p}
}

func (g globalGraph[T]) forward(vals [][]T, s, n int) ([]T, error) {
	return g.module(vals).Forward(vals[0], vals[1], s, n, nil)
}

func (g globalGraph[T]) grads(vals [][]T, s, n int, dout []T) ([][]T, error) {
	m := g.module(vals)
	var c GlobalColumnCache[T]
	if _, err := m.Forward(vals[0], vals[1], s, n, &c); err != nil {
		return nil, err
	}
	gr, err := m.Backward(&c, dout)
	if err != nil {
		return nil, err
	}
	return append([][]T{gr.MSA}, tensorData(gr.Params.tensors(g.cfg))...), nil
}

// tensorData returns the arrays of ts in order.
func tensorData[T num.Float](ts []param[T]) [][]T {
	d := make([][]T, len(ts))
	for i, t := range ts {
		d[i] = *t.data
	}
	return d
}
