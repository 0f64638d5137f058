package alphafold

import (
	"fmt"
	"slices"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/graphop"
	"github.com/foldkit/foldkit/internal/num"
)

// evoGraphModule is an Evoformer part seen by the gorgonia adapters: data
// inputs (some not differentiable, such as masks) and parameter arrays in
// the order of its tensor listing.
type evoGraphModule[T num.Float] interface {
	// label names the module in graph printouts, errors and hashes (with
	// its configuration).
	label() string
	// data describes the data inputs.
	data() []graphop.Input
	// tensors lists the parameter arrays, bound to a fresh parameter
	// struct, under their AF2 names.
	tensors() []evoTensor[T]
	// outShapes returns the outputs' shapes for the data inputs' shapes.
	outShapes(shapes []tensor.Shape) ([]tensor.Shape, error)
	// forward runs the module on the data (parameters bound through
	// tensors) and returns the outputs.
	forward(data [][]T, shapes []tensor.Shape) ([][]T, error)
	// backward runs the module with a cache and returns the gradients of
	// the data inputs (nil for a non-differentiable one) and of the
	// parameters, in listing order, given ∂L/∂outputs.
	backward(data [][]T, shapes []tensor.Shape, dout [][]T) ([][]T, [][]T, error)
}

// evoParams returns ts as graphop parameters.
func evoParams[T num.Float](ts []evoTensor[T]) []graphop.Param[T] {
	ps := make([]graphop.Param[T], len(ts))
	for k, t := range ts {
		ps[k] = graphop.Param[T]{Name: t.name, Shape: t.shape, Data: t.data}
	}
	return ps
}

// evoParamNodes adds one node per array of ts to g, named by its AF2 name
// and holding a copy of its values.
func evoParamNodes[T num.Float](g *gorgonia.ExprGraph, ts []evoTensor[T]) ([]*gorgonia.Node, error) {
	nodes, err := graphop.ParamNodes(g, evoParams(ts))
	if err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	return nodes, nil
}

// evoNames returns the names of ts.
func evoNames[T num.Float](ts []evoTensor[T]) []string {
	names := make([]string, len(ts))
	for k, t := range ts {
		names[k] = t.name
	}
	return names
}

// evoArrays returns the arrays of ts in order.
func evoArrays[T num.Float](ts []evoTensor[T]) [][]T {
	a := make([][]T, len(ts))
	for k, t := range ts {
		a[k] = *t.data
	}
	return a
}

// evoModule returns the graph module of the modules newMod makes: its
// inputs are the data and then the parameters. newMod is called for every
// evaluation, and the parameters bound to the op's values then.
func evoModule[T num.Float](newMod func() evoGraphModule[T]) *graphop.Module[T] {
	m := newMod()
	nd := len(m.data())
	bind := func(in [][]T) (evoGraphModule[T], error) {
		m := newMod()
		if err := graphop.Bind(evoParams(m.tensors()), in[nd:]); err != nil {
			return nil, fmt.Errorf("alphafold: %s: %w", m.label(), err)
		}
		return m, nil
	}
	return &graphop.Module[T]{
		Package: "alphafold", Name: m.label(), Key: m.label(), ErrConfig: ErrConfig,
		Inputs: append(m.data(), graphop.ParamInputs(evoParams(m.tensors()))...),
		Outputs: func(in []tensor.Shape) ([]tensor.Shape, error) {
			return m.outShapes(in[:nd])
		},
		Forward: func(in [][]T, sh []tensor.Shape) ([][]T, error) {
			m, err := bind(in)
			if err != nil {
				return nil, err
			}
			return m.forward(in[:nd], sh[:nd])
		},
		Backward: func(in [][]T, sh []tensor.Shape, _, dOut [][]T) ([][]T, error) {
			m, err := bind(in)
			if err != nil {
				return nil, err
			}
			dData, dParams, err := m.backward(in[:nd], sh[:nd], dOut)
			if err != nil {
				return nil, err
			}
			return append(dData, dParams...), nil
		},
	}
}

// The three modules.

// evoOPMGraph adapts the outer product mean: data msa [S, N, c_m] and mask
// [S, N]; output [N, N, c_z].
type evoOPMGraph[T num.Float] struct {
	p OuterProductMeanParams[T]
}

func (m *evoOPMGraph[T]) label() string {
	return fmt.Sprintf("OuterProductMean%+v", m.p.Config)
}
func (m *evoOPMGraph[T]) data() []graphop.Input {
	return []graphop.Input{{Name: "msa", Dims: 3}, {Name: "mask", Dims: 2, NoGrad: true}}
}
func (m *evoOPMGraph[T]) tensors() []evoTensor[T] { return m.p.tensors() }
func (m *evoOPMGraph[T]) outShapes(sh []tensor.Shape) ([]tensor.Shape, error) {
	return []tensor.Shape{{sh[0][1], sh[0][1], m.p.Config.CZ}}, nil
}
func (m *evoOPMGraph[T]) forward(data [][]T, sh []tensor.Shape) ([][]T, error) {
	s, n := sh[0][0], sh[0][1]
	out := make([]T, n*n*m.p.Config.CZ)
	return [][]T{out}, m.p.Forward(data[0], data[1], s, n, out, nil)
}
func (m *evoOPMGraph[T]) backward(data [][]T, sh []tensor.Shape, dout [][]T) ([][]T, [][]T, error) {
	s, n := sh[0][0], sh[0][1]
	var c OuterProductMeanCache[T]
	if err := m.p.Forward(data[0], data[1], s, n, make([]T, n*n*m.p.Config.CZ), &c); err != nil {
		return nil, nil, err
	}
	dmsa := make([]T, len(data[0]))
	g := m.p.ZerosLike()
	if err := m.p.Backward(&c, dout[0], dmsa, g); err != nil {
		return nil, nil, err
	}
	return [][]T{dmsa, nil}, evoArrays(g.tensors()), nil
}

// evoTransitionGraph adapts a transition: data x [A, B, C]; output of the
// same shape (AF2's unmasked transition).
type evoTransitionGraph[T num.Float] struct {
	p    TransitionParams[T]
	name string
}

func (m *evoTransitionGraph[T]) label() string {
	return fmt.Sprintf("Transition(%s)%+v", m.name, m.p.Config)
}
func (m *evoTransitionGraph[T]) data() []graphop.Input   { return []graphop.Input{{Name: "x", Dims: 3}} }
func (m *evoTransitionGraph[T]) tensors() []evoTensor[T] { return m.p.tensors(m.name) }
func (m *evoTransitionGraph[T]) outShapes(sh []tensor.Shape) ([]tensor.Shape, error) {
	return []tensor.Shape{sh[0]}, nil
}
func (m *evoTransitionGraph[T]) forward(data [][]T, sh []tensor.Shape) ([][]T, error) {
	rows := sh[0][0] * sh[0][1]
	out := make([]T, len(data[0]))
	return [][]T{out}, m.p.Forward(data[0], rows, nil, out, nil)
}
func (m *evoTransitionGraph[T]) backward(data [][]T, sh []tensor.Shape, dout [][]T) ([][]T, [][]T, error) {
	rows := sh[0][0] * sh[0][1]
	var c TransitionCache[T]
	if err := m.p.Forward(data[0], rows, nil, make([]T, len(data[0])), &c); err != nil {
		return nil, nil, err
	}
	dx := make([]T, len(data[0]))
	g := m.p.ZerosLike()
	if err := m.p.Backward(&c, dout[0], dx, g); err != nil {
		return nil, nil, err
	}
	return [][]T{dx}, evoArrays(g.tensors(m.name)), nil
}

// evoBlockGraph adapts an Evoformer block: data msa [S, N, c_m], pair
// [N, N, c_z], msaMask [S, N], pairMask [N, N]; outputs the updated msa and
// pair.
type evoBlockGraph[T num.Float] struct {
	p EvoformerBlockParams[T]
}

func (m *evoBlockGraph[T]) label() string {
	return fmt.Sprintf("EvoformerBlock%+v", m.p.Config)
}
func (m *evoBlockGraph[T]) data() []graphop.Input {
	return []graphop.Input{{Name: "msa", Dims: 3}, {Name: "pair", Dims: 3},
		{Name: "msaMask", Dims: 2, NoGrad: true}, {Name: "pairMask", Dims: 2, NoGrad: true}}
}
func (m *evoBlockGraph[T]) tensors() []evoTensor[T] { return m.p.tensors() }
func (m *evoBlockGraph[T]) outShapes(sh []tensor.Shape) ([]tensor.Shape, error) {
	return []tensor.Shape{sh[0], sh[1]}, nil
}
func (m *evoBlockGraph[T]) forward(data [][]T, sh []tensor.Shape) ([][]T, error) {
	s, n := sh[0][0], sh[0][1]
	msa, pair := slices.Clone(data[0]), slices.Clone(data[1])
	if err := m.p.Forward(msa, pair, data[2], data[3], s, n, nil, nil); err != nil {
		return nil, err
	}
	return [][]T{msa, pair}, nil
}
func (m *evoBlockGraph[T]) backward(data [][]T, sh []tensor.Shape, dout [][]T) ([][]T, [][]T, error) {
	s, n := sh[0][0], sh[0][1]
	msa, pair := slices.Clone(data[0]), slices.Clone(data[1])
	var c EvoformerBlockCache[T]
	if err := m.p.Forward(msa, pair, data[2], data[3], s, n, nil, &c); err != nil {
		return nil, nil, err
	}
	dmsa, dpair := slices.Clone(dout[0]), slices.Clone(dout[1])
	g := m.p.ZerosLike()
	if err := m.p.Backward(&c, dmsa, dpair, g); err != nil {
		return nil, nil, err
	}
	return [][]T{dmsa, dpair, nil, nil}, evoArrays(g.tensors()), nil
}

// The exported adapters.

// OuterProductMeanParamNames returns the AF2 names (relative to the
// Evoformer block) of the outer product mean's parameters for cfg, in the
// order ApplyOuterProductMean takes their nodes.
func OuterProductMeanParamNames(cfg OuterProductMeanConfig) []string {
	p := &OuterProductMeanParams[float64]{Config: cfg}
	return evoNames(p.tensors())
}

// ParamNodes adds to g one node per parameter of p, in
// OuterProductMeanParamNames order, each named by its AF2 name and holding
// a copy of p's values, ready for ApplyOuterProductMean and gorgonia's
// solvers.
func (p *OuterProductMeanParams[T]) ParamNodes(g *gorgonia.ExprGraph) ([]*gorgonia.Node, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return evoParamNodes(g, p.tensors())
}

// ApplyOuterProductMean adds the outer product mean (Algorithm 10) to a
// gorgonia graph: msa [S, N, c_m], mask [S, N] and the parameter nodes in
// OuterProductMeanParamNames order (see ParamNodes), all of one element
// type, float32 or float64. It returns the update node [N, N, c_z]. The
// op's gradient runs Backward (the mask is not differentiable); shapes and
// values are checked when the graph runs, with Forward's errors.
func ApplyOuterProductMean(cfg OuterProductMeanConfig, msa, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out, err := graphop.ApplyFloat(
		evoModule(func() evoGraphModule[float32] {
			return &evoOPMGraph[float32]{p: OuterProductMeanParams[float32]{Config: cfg}}
		}),
		evoModule(func() evoGraphModule[float64] {
			return &evoOPMGraph[float64]{p: OuterProductMeanParams[float64]{Config: cfg}}
		}),
		append([]*gorgonia.Node{msa, mask}, params...)...)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// TransitionParamNames returns the AF2 names of the transition called name
// (MSATransitionName or PairTransitionName) for cfg, in the order
// ApplyTransition takes their nodes.
func TransitionParamNames(cfg TransitionConfig, name string) []string {
	p := &TransitionParams[float64]{Config: cfg}
	return evoNames(p.tensors(name))
}

// ParamNodes adds to g one node per parameter of p, named as the
// transition called name and in TransitionParamNames order.
func (p *TransitionParams[T]) ParamNodes(g *gorgonia.ExprGraph, name string) ([]*gorgonia.Node, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return evoParamNodes(g, p.tensors(name))
}

// ApplyTransition adds AF2's (unmasked) transition (Algorithms 9 and 15)
// to a gorgonia graph: x [A, B, C] (the MSA [S, N, c_m] or the pair
// [N, N, c_z]) and the parameter nodes in TransitionParamNames(cfg, name)
// order. It returns the update node, shaped as x; its gradient runs
// Backward.
func ApplyTransition(cfg TransitionConfig, name string, x *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out, err := graphop.ApplyFloat(
		evoModule(func() evoGraphModule[float32] {
			return &evoTransitionGraph[float32]{p: TransitionParams[float32]{Config: cfg}, name: name}
		}),
		evoModule(func() evoGraphModule[float64] {
			return &evoTransitionGraph[float64]{p: TransitionParams[float64]{Config: cfg}, name: name}
		}),
		append([]*gorgonia.Node{x}, params...)...)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// EvoformerBlockParamNames returns the AF2 names (relative to the block) of
// a block's parameters for cfg, in the order ApplyEvoformerBlock takes
// their nodes: module by module in the block's order.
func EvoformerBlockParamNames(cfg EvoformerConfig) []string {
	p := &EvoformerBlockParams[float64]{Config: cfg}
	return evoNames(p.tensors())
}

// ParamNodes adds to g one node per parameter of p, in
// EvoformerBlockParamNames order, each named by its AF2 name and holding a
// copy of p's values.
func (p *EvoformerBlockParams[T]) ParamNodes(g *gorgonia.ExprGraph) ([]*gorgonia.Node, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return evoParamNodes(g, p.tensors())
}

// ApplyEvoformerBlock adds one Evoformer block (Algorithm 6, or 18 with
// cfg.GlobalColumn) to a gorgonia graph in inference mode (no dropout):
// msa [S, N, c_m], pair [N, N, c_z], msaMask [S, N], pairMask [N, N] and
// the parameter nodes in EvoformerBlockParamNames order, all of one element
// type. It returns the nodes of the updated msa and pair. Both outputs are
// parts of one op whose gradient runs the block's Backward; the masks are
// not differentiable.
func ApplyEvoformerBlock(cfg EvoformerConfig, msa, pair, msaMask, pairMask *gorgonia.Node, params []*gorgonia.Node) (msaOut, pairOut *gorgonia.Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	out, err := graphop.ApplyFloat(
		evoModule(func() evoGraphModule[float32] {
			return &evoBlockGraph[float32]{p: EvoformerBlockParams[float32]{Config: cfg}}
		}),
		evoModule(func() evoGraphModule[float64] {
			return &evoBlockGraph[float64]{p: EvoformerBlockParams[float64]{Config: cfg}}
		}),
		append([]*gorgonia.Node{msa, pair, msaMask, pairMask}, params...)...)
	if err != nil {
		return nil, nil, err
	}
	return out[0], out[1], nil
}
