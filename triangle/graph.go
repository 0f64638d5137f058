package triangle

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// The gorgonia adapters make each triangle module one node of a gorgonia
// expression graph. The node's inputs are z [N, N, c_z], the mask [N, N] and
// one node per parameter array, in the order of MulParamNames or
// AttParamNames (the AF2 names); its output is the update [N, N, c_z]. Its
// gradient, for z and every parameter, is one node of a second op that runs
// the module's backward pass (after recomputing the forward pass, since
// gorgonia ops hold no state between calls); the mask gets no gradient. So a
// model built from these nodes trains with gorgonia's solvers, and the
// gradients are exactly those of MulBackward and AttBackward.

// paramRef names one parameter array of a module: its AF2 name relative to
// the module, its shape, and where it lives in a parameter struct.
type paramRef[T num.Float] struct {
	name  string
	shape []int
	ptr   *[]T
}

// refs lists p's arrays in the adapter's input order.
func (p *MulParams[T]) refs() []paramRef[T] {
	var r []paramRef[T]
	for _, l := range p.norms(p.Config) {
		r = append(r, paramRef[T]{l.name + "//scale", []int{l.c}, &l.p.Scale}, paramRef[T]{l.name + "//offset", []int{l.c}, &l.p.Offset})
	}
	for _, l := range p.linears(p.Config) {
		r = append(r, paramRef[T]{l.name + "//weights", []int{l.in, l.out}, &l.p.W}, paramRef[T]{l.name + "//bias", []int{l.out}, &l.p.B})
	}
	return r
}

// refs lists p's arrays in the adapter's input order.
func (p *AttParams[T]) refs() []paramRef[T] {
	cz, h, c := p.Config.PairChannels, p.Config.Heads, p.Config.HeadChannels
	a := &p.Attention
	return []paramRef[T]{
		{"query_norm//scale", []int{cz}, &p.QueryNorm.Scale},
		{"query_norm//offset", []int{cz}, &p.QueryNorm.Offset},
		{"/feat_2d_weights", []int{cz, h}, &p.FeatTwoDWeights},
		{"attention//query_w", []int{cz, h, c}, &a.QueryW},
		{"attention//key_w", []int{cz, h, c}, &a.KeyW},
		{"attention//value_w", []int{cz, h, c}, &a.ValueW},
		{"attention//gating_w", []int{cz, h, c}, &a.GatingW},
		{"attention//gating_b", []int{h, c}, &a.GatingB},
		{"attention//output_w", []int{h, c, cz}, &a.OutputW},
		{"attention//output_b", []int{cz}, &a.OutputB},
	}
}

// mulSkeleton returns MulParams for cfg with every size set and no arrays.
func mulSkeleton[T num.Float](cfg MulConfig) *MulParams[T] {
	p := &MulParams[T]{Config: cfg}
	for _, l := range p.linears(cfg) {
		*l.p = nn.LinearParams[T]{In: l.in, Out: l.out}
	}
	for _, l := range p.norms(cfg) {
		l.p.C = l.c
	}
	return p
}

// attSkeleton returns AttParams for cfg with every size set and no arrays.
func attSkeleton[T num.Float](cfg AttConfig) *AttParams[T] {
	cz := cfg.PairChannels
	return &AttParams[T]{
		Config:    cfg,
		QueryNorm: nn.LayerNormParams[T]{C: cz},
		Attention: attn.GatedParams[T]{CIn: cz, COut: cz, Heads: cfg.Heads, C: cfg.HeadChannels},
	}
}

// MulParamNames returns the AF2 names (relative to the module) of the
// parameter inputs of the multiplication's graph node, in input order.
func MulParamNames(cfg MulConfig) []string {
	return names(mulSkeleton[float64](cfg).refs())
}

// AttParamNames returns the AF2 names (relative to the module) of the
// parameter inputs of the attention's graph node, in input order.
func AttParamNames(cfg AttConfig) []string {
	return names(attSkeleton[float64](cfg).refs())
}

func names[T num.Float](refs []paramRef[T]) []string {
	s := make([]string, len(refs))
	for i, r := range refs {
		s[i] = r.name
	}
	return s
}

// MulParamNodes returns one graph node per array of p, in the order of
// MulParamNames, named by AF2's names under the module's, and holding p's
// arrays (shared, not copied: a solver that updates the nodes updates p).
func MulParamNodes[T num.Float](g *gorgonia.ExprGraph, p *MulParams[T]) ([]*gorgonia.Node, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return paramNodes(g, p.Config.Name()+"/", p.refs())
}

// AttParamNodes returns one graph node per array of p, in the order of
// AttParamNames, as MulParamNodes does.
func AttParamNodes[T num.Float](g *gorgonia.ExprGraph, p *AttParams[T]) ([]*gorgonia.Node, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return paramNodes(g, p.Config.Name()+"/", p.refs())
}

func paramNodes[T num.Float](g *gorgonia.ExprGraph, prefix string, refs []paramRef[T]) ([]*gorgonia.Node, error) {
	dt, err := dtypeOf[T]()
	if err != nil {
		return nil, err
	}
	nodes := make([]*gorgonia.Node, len(refs))
	for i, r := range refs {
		v := tensor.New(tensor.WithShape(r.shape...), tensor.WithBacking(*r.ptr))
		nodes[i] = gorgonia.NewTensor(g, dt, len(r.shape), gorgonia.WithShape(r.shape...), gorgonia.WithValue(v), gorgonia.WithName(prefix+r.name))
	}
	return nodes, nil
}

// dtypeOf returns gorgonia's dtype for T (float32 or float64 exactly).
func dtypeOf[T num.Float]() (tensor.Dtype, error) {
	var z T
	switch any(z).(type) {
	case float32:
		return tensor.Float32, nil
	case float64:
		return tensor.Float64, nil
	}
	return tensor.Dtype{}, fmt.Errorf("triangle: gorgonia needs float32 or float64, not %T: %w", z, ErrConfig)
}

// ApplyMul adds the triangle multiplicative update of cfg (Algorithm 11 or
// 12) to the graph of z: z [N, N, c_z] and mask [N, N] are nodes of dtype T,
// params the nodes of MulParamNodes (or any nodes of those shapes, in that
// order). The result is the update [N, N, c_z]; its gradient with respect
// to z and to every parameter node is MulBackward's.
func ApplyMul[T num.Float](cfg MulConfig, z, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k := &mulKernel[T]{cfg: cfg}
	return applyOp[T](k, z, mask, params)
}

// ApplyAtt adds the triangle self-attention of cfg (Algorithm 13 or 14) to
// the graph of z, as ApplyMul does, with params the nodes of AttParamNodes.
func ApplyAtt[T num.Float](cfg AttConfig, z, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k := &attKernel[T]{cfg: cfg}
	return applyOp[T](k, z, mask, params)
}

// applyOp checks the input shapes against k and applies a new op.
func applyOp[T num.Float](k kernel[T], z, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	zs := z.Shape()
	if len(zs) != 3 || zs[0] != zs[1] || zs[2] != k.pairChannels() {
		return nil, fmt.Errorf("triangle: %s: z has shape %v, want [N N %d]: %w", k.name(), zs, k.pairChannels(), num.ErrShape)
	}
	n := zs[0]
	if ms := mask.Shape(); len(ms) != 2 || ms[0] != n || ms[1] != n {
		return nil, fmt.Errorf("triangle: %s: mask has shape %v, want [%d %d]: %w", k.name(), ms, n, n, num.ErrShape)
	}
	refs := k.refs()
	if len(params) != len(refs) {
		return nil, fmt.Errorf("triangle: %s: %d parameter nodes, want %d: %w", k.name(), len(params), len(refs), num.ErrShape)
	}
	for i, r := range refs {
		if s := params[i].Shape(); !s.Eq(tensor.Shape(r.shape)) {
			return nil, fmt.Errorf("triangle: %s: parameter node %d (%s) has shape %v, want %v: %w", k.name(), i, r.name, s, r.shape, num.ErrShape)
		}
	}
	dt, err := dtypeOf[T]()
	if err != nil {
		return nil, err
	}
	op := &moduleOp[T]{k: k, n: n, dt: dt}
	return gorgonia.ApplyOp(op, append([]*gorgonia.Node{z, mask}, params...)...)
}

// kernel is one triangle module as the graph ops run it.
type kernel[T num.Float] interface {
	name() string
	pairChannels() int
	refs() []paramRef[T] // parameter arrays of a skeleton, for names and shapes
	// forward writes the update to out; backward recomputes the forward
	// pass and writes ∂L/∂z to dz and the parameter gradients to grads (one
	// zeroed array per ref).
	forward(params [][]T, z, mask []T, n int, out []T) error
	backward(params [][]T, z, mask []T, n int, dout, dz []T, grads [][]T) error
}

type mulKernel[T num.Float] struct{ cfg MulConfig }

func (k *mulKernel[T]) name() string        { return k.cfg.Name() }
func (k *mulKernel[T]) pairChannels() int   { return k.cfg.PairChannels }
func (k *mulKernel[T]) refs() []paramRef[T] { return mulSkeleton[T](k.cfg).refs() }

// bind returns parameters whose arrays are the given slices.
func (k *mulKernel[T]) bind(arrays [][]T) *MulParams[T] {
	p := mulSkeleton[T](k.cfg)
	for i, r := range p.refs() {
		*r.ptr = arrays[i]
	}
	return p
}

func (k *mulKernel[T]) forward(params [][]T, z, mask []T, n int, out []T) error {
	return MulForward(k.bind(params), z, mask, n, out, nil)
}

func (k *mulKernel[T]) backward(params [][]T, z, mask []T, n int, dout, dz []T, grads [][]T) error {
	p := k.bind(params)
	var c MulCache[T]
	if err := MulForward(p, z, mask, n, make([]T, len(z)), &c); err != nil {
		return err
	}
	return MulBackward(p, &c, dout, dz, k.bind(grads))
}

type attKernel[T num.Float] struct{ cfg AttConfig }

func (k *attKernel[T]) name() string        { return k.cfg.Name() }
func (k *attKernel[T]) pairChannels() int   { return k.cfg.PairChannels }
func (k *attKernel[T]) refs() []paramRef[T] { return attSkeleton[T](k.cfg).refs() }

// bind returns parameters whose arrays are the given slices.
func (k *attKernel[T]) bind(arrays [][]T) *AttParams[T] {
	p := attSkeleton[T](k.cfg)
	for i, r := range p.refs() {
		*r.ptr = arrays[i]
	}
	return p
}

func (k *attKernel[T]) forward(params [][]T, z, mask []T, n int, out []T) error {
	return AttForward(k.bind(params), z, mask, n, out, nil)
}

func (k *attKernel[T]) backward(params [][]T, z, mask []T, n int, dout, dz []T, grads [][]T) error {
	p := k.bind(params)
	var c AttCache[T]
	if err := AttForward(p, z, mask, n, make([]T, len(z)), &c); err != nil {
		return err
	}
	return AttBackward(p, &c, dout, dz, k.bind(grads))
}

// moduleOp is the gorgonia op of one module's forward pass.
type moduleOp[T num.Float] struct {
	k  kernel[T]
	n  int
	dt tensor.Dtype
}

func (op *moduleOp[T]) Arity() int { return 2 + len(op.k.refs()) }

// Type is z, mask, the parameters → a tensor like z, all of one dtype.
func (op *moduleOp[T]) Type() hm.Type {
	return hm.NewFnType(op.argTypes(gorgonia.TensorType{Dims: 3, Of: op.dt})...)
}

// argTypes returns the input types followed by ret.
func (op *moduleOp[T]) argTypes(ret ...hm.Type) []hm.Type {
	ts := []hm.Type{gorgonia.TensorType{Dims: 3, Of: op.dt}, gorgonia.TensorType{Dims: 2, Of: op.dt}}
	for _, r := range op.k.refs() {
		ts = append(ts, gorgonia.TensorType{Dims: len(r.shape), Of: op.dt})
	}
	return append(ts, ret...)
}

func (op *moduleOp[T]) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.n, op.n, op.k.pairChannels()}, nil
}

func (op *moduleOp[T]) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	z, mask, params, err := op.unpack(inputs)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(z))
	if err := op.k.forward(params, z, mask, op.n, out); err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(op.n, op.n, op.k.pairChannels()), tensor.WithBacking(out)), nil
}

// unpack returns the data of z, mask and the parameters.
func (op *moduleOp[T]) unpack(inputs []gorgonia.Value) (z, mask []T, params [][]T, err error) {
	if len(inputs) < op.Arity() {
		return nil, nil, nil, fmt.Errorf("triangle: %s: %d inputs, want %d: %w", op.k.name(), len(inputs), op.Arity(), num.ErrShape)
	}
	data := make([][]T, op.Arity())
	for i := range data {
		v := inputs[i]
		if t, ok := v.(tensor.View); ok && t.IsView() {
			v = t.Materialize() // a strided view: copy it out
		}
		d, ok := v.Data().([]T)
		if !ok {
			return nil, nil, nil, fmt.Errorf("triangle: %s: input %d holds %T, want %T: %w", op.k.name(), i, v.Data(), d, num.ErrShape)
		}
		data[i] = d[:v.Size()]
	}
	return data[0], data[1], data[2:], nil
}

func (op *moduleOp[T]) ReturnsPtr() bool     { return false }
func (op *moduleOp[T]) CallsExtern() bool    { return false }
func (op *moduleOp[T]) OverwritesInput() int { return -1 }
func (op *moduleOp[T]) String() string {
	return fmt.Sprintf("triangle.%s{N=%d,%v}", op.k.name(), op.n, op.dt)
}
func (op *moduleOp[T]) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s%#v", op.String(), op.k) }
func (op *moduleOp[T]) Hashcode() uint32      { return hashOf(op) }

// DiffWRT: z and every parameter, not the mask.
func (op *moduleOp[T]) DiffWRT(inputs int) []bool {
	d := make([]bool, inputs)
	for i := range d {
		d[i] = i != 1
	}
	return d
}

// SymDiff returns, for each input, a slice of one gradOp node that runs the
// backward pass once for all of them.
func (op *moduleOp[T]) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("triangle: %s: SymDiff with %d inputs, want %d: %w", op.k.name(), len(inputs), op.Arity(), num.ErrShape)
	}
	all, err := gorgonia.ApplyOp(&gradOp[T]{op}, append(append(gorgonia.Nodes(nil), inputs...), grad)...)
	if err != nil {
		return nil, err
	}
	shapes := op.shapes()
	res := make(gorgonia.Nodes, len(inputs))
	off := 0
	for i, s := range shapes {
		size := s.TotalSize()
		if i == 1 { // the mask: no gradient
			continue
		}
		part, err := gorgonia.Slice(all, gorgonia.S(off, off+size))
		if err != nil {
			return nil, err
		}
		if res[i], err = gorgonia.Reshape(part, s); err != nil {
			return nil, err
		}
		off += size
	}
	return res, nil
}

// shapes returns the shapes of the op's inputs.
func (op *moduleOp[T]) shapes() []tensor.Shape {
	s := []tensor.Shape{{op.n, op.n, op.k.pairChannels()}, {op.n, op.n}}
	for _, r := range op.k.refs() {
		s = append(s, tensor.Shape(r.shape))
	}
	return s
}

// gradOp runs the backward pass of a moduleOp: its inputs are the module's
// inputs followed by ∂L/∂out, and its output is one vector holding ∂L/∂z
// and then ∂L/∂θ for every parameter, in input order (the mask is skipped).
type gradOp[T num.Float] struct{ fwd *moduleOp[T] }

func (op *gradOp[T]) Arity() int { return op.fwd.Arity() + 1 }

func (op *gradOp[T]) Type() hm.Type {
	f := op.fwd
	return hm.NewFnType(f.argTypes(gorgonia.TensorType{Dims: 3, Of: f.dt}, gorgonia.TensorType{Dims: 1, Of: f.dt})...)
}

func (op *gradOp[T]) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.size()}, nil
}

// size returns the total number of gradient values.
func (op *gradOp[T]) size() int {
	total := 0
	for i, s := range op.fwd.shapes() {
		if i != 1 {
			total += s.TotalSize()
		}
	}
	return total
}

func (op *gradOp[T]) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	f := op.fwd
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("triangle: %s gradient: %d inputs, want %d: %w", f.k.name(), len(inputs), op.Arity(), num.ErrShape)
	}
	z, mask, params, err := f.unpack(inputs[:f.Arity()])
	if err != nil {
		return nil, err
	}
	dv := inputs[f.Arity()]
	if t, ok := dv.(tensor.View); ok && t.IsView() {
		dv = t.Materialize()
	}
	dout, ok := dv.Data().([]T)
	if !ok || dv.Size() != len(z) {
		return nil, fmt.Errorf("triangle: %s gradient: output gradient %v of %T, want %d %T values: %w", f.k.name(), dv.Shape(), dv.Data(), len(z), dout, num.ErrShape)
	}
	buf := make([]T, op.size())
	dz, rest := buf[:len(z)], buf[len(z):]
	grads := make([][]T, len(params))
	for i, p := range params {
		grads[i], rest = rest[:len(p)], rest[len(p):]
	}
	if err := f.k.backward(params, z, mask, f.n, dout[:len(z)], dz, grads); err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(len(buf)), tensor.WithBacking(buf)), nil
}

func (op *gradOp[T]) ReturnsPtr() bool     { return false }
func (op *gradOp[T]) CallsExtern() bool    { return false }
func (op *gradOp[T]) OverwritesInput() int { return -1 }
func (op *gradOp[T]) String() string       { return op.fwd.String() + "ᵀ" }
func (op *gradOp[T]) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "grad ")
	op.fwd.WriteHash(h)
}
func (op *gradOp[T]) Hashcode() uint32 { return hashOf(op) }

// hashOf returns the FNV-1a hash of what op writes with WriteHash.
func hashOf(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
