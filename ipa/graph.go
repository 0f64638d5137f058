package ipa

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/graphop"
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
	names, shapes, arrays := ParamNames(), paramShapes(p.Config), p.arrays()
	ps := make([]graphop.Param[T], len(names))
	for k := range ps {
		ps[k] = graphop.Param[T]{Name: names[k], Shape: shapes[k], Data: &arrays[k]}
	}
	nodes, err := graphop.ParamNodes(g, ps)
	if err != nil {
		return nil, fmt.Errorf("ipa: %w", err)
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
	in := append([]*gorgonia.Node{s, z, rot, trans, mask}, params...)
	out, err := graphop.ApplyFloat(module[float32](cfg), module[float64](cfg), in...)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// module returns IPA as a graph module: inputs s, z, rot, trans, mask and
// the parameters in ParamNames order; one output, [N, c_s].
func module[T num.Float](cfg Config) *graphop.Module[T] {
	inputs := []graphop.Input{{Name: "s", Dims: 2}, {Name: "z", Dims: 3}, {Name: "rot", Dims: 3}, {Name: "trans", Dims: 2},
		{Name: "mask", Dims: 1, NoGrad: true}}
	shapes := paramShapes(cfg)
	for k, name := range ParamNames() {
		inputs = append(inputs, graphop.Input{Name: name, Dims: len(shapes[k])})
	}
	return &graphop.Module[T]{
		Package: "ipa", Name: "IPA", Key: fmt.Sprintf("%+v", cfg), ErrConfig: ErrConfig,
		Inputs: inputs,
		Outputs: func(in []tensor.Shape) ([]tensor.Shape, error) {
			return []tensor.Shape{{in[0][0], cfg.CS}}, nil
		},
		Forward: func(in [][]T, _ []tensor.Shape) ([][]T, error) {
			p, s, z, frames, mask, err := unpack(cfg, in)
			if err != nil {
				return nil, err
			}
			out := make([]T, len(frames)*cfg.CS)
			if err := Forward(p, s, z, frames, mask, out, nil); err != nil {
				return nil, err
			}
			return [][]T{out}, nil
		},
		Backward: func(in [][]T, _ []tensor.Shape, _, dOut [][]T) ([][]T, error) {
			p, s, z, frames, mask, err := unpack(cfg, in)
			if err != nil {
				return nil, err
			}
			n := len(frames)
			var c Cache[T]
			if err := Forward(p, s, z, frames, mask, make([]T, n*cfg.CS), &c); err != nil {
				return nil, err
			}
			ds, dz := make([]T, len(s)), make([]T, len(z))
			dframes := make([]rigid.Rigid[T], n)
			g := p.ZerosLike()
			if err := Backward(p, &c, dOut[0], ds, dz, dframes, g); err != nil {
				return nil, err
			}
			drot, dtrans := make([]T, 9*n), make([]T, 3*n)
			for i, f := range dframes {
				copy(drot[9*i:], f.Rot[:])
				copy(dtrans[3*i:], f.Trans[:])
			}
			return append([][]T{ds, dz, drot, dtrans, nil}, g.arrays()...), nil
		},
	}
}

// unpack turns the op's data into Forward's arguments (sharing storage).
func unpack[T num.Float](cfg Config, data [][]T) (p *Params[T], s, z []T, frames []rigid.Rigid[T], mask []T, err error) {
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
	return paramsFrom(cfg, data[numDataInputs:]), data[0], data[1], frames, data[4], nil
}
