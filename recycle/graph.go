package recycle

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/graphop"
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

// graphParams lists p's arrays for graphop.
func (p *Params[T]) graphParams() []graphop.Param[T] {
	ts := p.tensors()
	ps := make([]graphop.Param[T], len(ts))
	for k, t := range ts {
		ps[k] = graphop.Param[T]{Name: t.name, Shape: t.shape, Data: t.data}
	}
	return ps
}

// ParamNodes adds to g one node per parameter of p, in ParamNames order,
// each named by its AF2 name and holding a copy of p's values, ready for
// Apply and gorgonia's solvers.
func (p *Params[T]) ParamNodes(g *gorgonia.ExprGraph) ([]*gorgonia.Node, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	nodes, err := graphop.ParamNodes(g, p.graphParams())
	if err != nil {
		return nil, fmt.Errorf("recycle: %w", err)
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
	in := append([]*gorgonia.Node{prevMSAFirstRow, prevPair, prevPseudoBeta}, params...)
	out, err := graphop.ApplyFloat(module[float32](cfg), module[float64](cfg), in...)
	if err != nil {
		return nil, nil, err
	}
	return out[0], out[1], nil
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
	return graphop.StopGradient(x)
}

// module returns the embedder as a graph module: inputs the first MSA row,
// the pair, the positions (no gradient) and the parameters in ParamNames
// order; outputs the two updates.
func module[T num.Float](cfg Config) *graphop.Module[T] {
	bind := func(in [][]T) (*Params[T], error) {
		p := &Params[T]{Config: cfg}
		if err := graphop.Bind(p.graphParams(), in[3:]); err != nil {
			return nil, fmt.Errorf("recycle: %w", err)
		}
		return p, nil
	}
	inputs := []graphop.Input{{Name: "prevMSAFirstRow", Dims: 2}, {Name: "prevPair", Dims: 3},
		{Name: "prevPseudoBeta", Dims: 2, NoGrad: true}}
	return &graphop.Module[T]{
		Package: "recycle", Name: "RecyclingEmbedder", Key: fmt.Sprintf("%+v", cfg), ErrConfig: ErrConfig,
		Inputs: append(inputs, graphop.ParamInputs((&Params[T]{Config: cfg}).graphParams())...),
		Outputs: func(in []tensor.Shape) ([]tensor.Shape, error) {
			return []tensor.Shape{in[0], in[1]}, nil
		},
		Forward: func(in [][]T, _ []tensor.Shape) ([][]T, error) {
			p, err := bind(in)
			if err != nil {
				return nil, err
			}
			row, pair := make([]T, len(in[0])), make([]T, len(in[1]))
			if err := Forward(p, in[0], in[1], in[2], row, pair, nil); err != nil {
				return nil, err
			}
			return [][]T{row, pair}, nil
		},
		Backward: func(in [][]T, _ []tensor.Shape, _, dOut [][]T) ([][]T, error) {
			p, err := bind(in)
			if err != nil {
				return nil, err
			}
			var c Cache[T]
			if err := Forward(p, in[0], in[1], in[2], make([]T, len(in[0])), make([]T, len(in[1])), &c); err != nil {
				return nil, err
			}
			dRow, dPair := make([]T, len(in[0])), make([]T, len(in[1]))
			g := p.ZerosLike()
			if err := Backward(p, &c, dOut[0], dOut[1], dRow, dPair, g); err != nil {
				return nil, err
			}
			d := [][]T{dRow, dPair, nil}
			for _, t := range g.tensors() {
				d = append(d, *t.data)
			}
			return d, nil
		},
	}
}
