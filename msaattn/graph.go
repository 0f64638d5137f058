package msaattn

import (
	"fmt"
	"slices"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/graphop"
	"github.com/foldkit/foldkit/internal/num"
)

// The gorgonia adapters make each module a node of a gorgonia expression
// graph (through internal/graphop). The node's inputs are the data (msa, z
// for row attention, the mask) followed by one node per parameter, in the
// order the module's ParamNames function gives, so that gorgonia's solvers
// can train the parameters. Its symbolic gradient is one node that runs the
// module's Forward and Backward and returns every gradient concatenated,
// and one node per differentiable input reading its part: the module's
// Backward is called once per graph run. The mask is not differentiable.

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

// graphParams returns ts as graphop parameters named prefix+name.
func graphParams[T num.Float](prefix string, ts []param[T]) []graphop.Param[T] {
	ps := make([]graphop.Param[T], len(ts))
	for i, t := range ts {
		ps[i] = graphop.Param[T]{Name: prefix + t.name, Shape: t.shape, Data: t.data}
	}
	return ps
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
	nodes, err := graphop.ParamNodes(g, graphParams(prefix, ts))
	if err != nil {
		return nil, fmt.Errorf("msaattn: %s: %w", mod, err)
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
	return apply(append([]*gorgonia.Node{msa, z, mask}, params...), rowGraph[float32]{cfg}, rowGraph[float64]{cfg})
}

// ApplyColumn adds MSA column attention (Algorithm 8) to a gorgonia graph
// and returns the node of its update [S, N, c_m]; msa is [S, N, c_m], mask
// [S, N] and params the parameter nodes in ColumnParamNames order (see
// ApplyRow).
func ApplyColumn(cfg ColumnConfig, msa, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return apply(append([]*gorgonia.Node{msa, mask}, params...), columnGraph[float32]{cfg}, columnGraph[float64]{cfg})
}

// ApplyGlobalColumn adds MSA global column attention (Algorithm 19) to a
// gorgonia graph and returns the node of its update [S, N, c_e]; msa is
// [S, N, c_e], mask [S, N] and params the parameter nodes in
// GlobalColumnParamNames order (see ApplyRow).
func ApplyGlobalColumn(cfg GlobalColumnConfig, msa, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return apply(append([]*gorgonia.Node{msa, mask}, params...), globalGraph[float32]{cfg}, globalGraph[float64]{cfg})
}

// graphModule describes one attention module to graphop: its data inputs
// (the last one is the mask), its parameters, and how to run it on the
// values of all inputs (data, then parameters, sharing storage).
type graphModule[T num.Float] interface {
	fmt.Stringer // the name and configuration
	name() string
	data() []graphop.Input
	params() []param[T] // fresh Params' tensors: shapes, and fields to fill
	forward(vals [][]T, s, n int) ([]T, error)
	// grads returns the gradients of the differentiable inputs, in order
	// (every input but the mask).
	grads(vals [][]T, s, n int, dout []T) ([][]T, error)
	outChannels() int
}

func apply(in []*gorgonia.Node, m32 graphModule[float32], m64 graphModule[float64]) (*gorgonia.Node, error) {
	out, err := graphop.ApplyFloat(module(m32), module(m64), in...)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// module returns m as a graphop module with one output, [S, N, c].
func module[T num.Float](m graphModule[T]) *graphop.Module[T] {
	data := m.data()
	mask := len(data) - 1
	return &graphop.Module[T]{
		Package: "msaattn", Name: m.name(), Key: m.String(),
		Inputs: append(data, graphop.ParamInputs(graphParams("", m.params()))...),
		Outputs: func(in []tensor.Shape) ([]tensor.Shape, error) {
			return []tensor.Shape{{in[0][0], in[0][1], m.outChannels()}}, nil
		},
		Forward: func(in [][]T, sh []tensor.Shape) ([][]T, error) {
			out, err := m.forward(in, sh[0][0], sh[0][1])
			return [][]T{out}, err
		},
		Backward: func(in [][]T, sh []tensor.Shape, _, dOut [][]T) ([][]T, error) {
			gs, err := m.grads(in, sh[0][0], sh[0][1], dOut[0])
			if err != nil {
				return nil, err
			}
			return slices.Insert(gs, mask, nil), nil // no gradient for the mask
		},
	}
}

// setParams points the fields of ts at the parameter values vals (no copy).
func setParams[T num.Float](ts []param[T], vals [][]T) {
	for i, t := range ts {
		*t.data = vals[i]
	}
}

// rowGraph is row attention as a graphModule: inputs msa, z, mask.
type rowGraph[T num.Float] struct{ cfg RowConfig }

func (g rowGraph[T]) name() string       { return "RowAttention" }
func (g rowGraph[T]) outChannels() int   { return g.cfg.MSAChannels }
func (g rowGraph[T]) String() string     { return fmt.Sprintf("RowAttention%+v", g.cfg) }
func (g rowGraph[T]) params() []param[T] { return new(RowParams[T]).tensors(g.cfg) }
func (g rowGraph[T]) data() []graphop.Input {
	return []graphop.Input{{Name: "msa", Dims: 3}, {Name: "z", Dims: 3}, {Name: "mask", Dims: 2, NoGrad: true}}
}

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

func (g columnGraph[T]) name() string          { return "ColumnAttention" }
func (g columnGraph[T]) data() []graphop.Input { return msaMaskInputs() }
func (g columnGraph[T]) outChannels() int      { return g.cfg.MSAChannels }
func (g columnGraph[T]) String() string        { return fmt.Sprintf("ColumnAttention%+v", g.cfg) }
func (g columnGraph[T]) params() []param[T]    { return new(ColumnParams[T]).tensors(g.cfg) }

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

func (g globalGraph[T]) name() string          { return "GlobalColumnAttention" }
func (g globalGraph[T]) data() []graphop.Input { return msaMaskInputs() }
func (g globalGraph[T]) outChannels() int      { return g.cfg.MSAChannels }
func (g globalGraph[T]) String() string        { return fmt.Sprintf("GlobalColumnAttention%+v", g.cfg) }
func (g globalGraph[T]) params() []param[T]    { return new(GlobalColumnParams[T]).tensors(g.cfg) }

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

// msaMaskInputs returns the data inputs msa [S, N, c] and mask [S, N].
func msaMaskInputs() []graphop.Input {
	return []graphop.Input{{Name: "msa", Dims: 3}, {Name: "mask", Dims: 2, NoGrad: true}}
}

// tensorData returns the arrays of ts in order.
func tensorData[T num.Float](ts []param[T]) [][]T {
	d := make([][]T, len(ts))
	for i, t := range ts {
		d[i] = *t.data
	}
	return d
}
