package alphafold

import (
	"fmt"
	"slices"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/graphop"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/residue"
)

// StructureModuleNodes holds the nodes of the structure module's outputs in
// a gorgonia graph, with the layouts of StructureModuleOutput (L iterations,
// N residues); SidechainFrames is [L, N, 8, 4, 4] homogeneous matrices in Å.
// Each is a differentiable view of one op's result: a loss may use any of
// them, and gorgonia.Grad sums their gradients into that op's backward pass.
type StructureModuleNodes struct {
	Frames, SidechainFrames, UnnormalizedAngles, Angles, Positions, States, Single *gorgonia.Node
}

// smParams returns p's arrays as graphop parameters.
func smParams[T num.Float](p *StructureModuleParams[T]) []graphop.Param[T] {
	ts := p.tensors()
	ps := make([]graphop.Param[T], len(ts))
	for k, t := range ts {
		ps[k] = graphop.Param[T]{Name: t.name, Shape: t.shape, Data: t.data}
	}
	return ps
}

// StructureModuleParamNodes adds to g one node per parameter of p, in the
// order of StructureModuleParamNames(p.Config), each named by its AF2 name
// and holding a copy of p's values, ready for ApplyStructureModule and
// gorgonia's solvers. The error wraps num.ErrShape if p's arrays do not
// match p.Config.
func StructureModuleParamNodes[T num.Float](g *gorgonia.ExprGraph, p *StructureModuleParams[T]) ([]*gorgonia.Node, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	q := *p
	nodes, err := graphop.ParamNodes(g, smParams(&q))
	if err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	return nodes, nil
}

// ApplyStructureModule adds the structure module (Algorithm 20) to a
// gorgonia graph: single [N, c_s], pair [N, N, c_z] and seqMask [N] nodes,
// the residue types aatype [N] (fixed for the graph, like a configuration)
// and the parameter nodes in StructureModuleParamNames(cfg) order (see
// StructureModuleParamNodes); all nodes must have one element type, float32
// or float64. The frames start at the identity.
//
// The op's gradient is wired to StructureModuleParams.Backward: gorgonia.Grad
// gives the gradients with respect to single, pair and every parameter (the
// mask is not differentiable), with AF2's stop-gradient on the rotations
// between iterations. The backward op runs Forward again and then Backward.
// Shapes and values are checked when the graph runs, with Forward's errors.
func ApplyStructureModule(cfg StructureModuleConfig, single, pair, seqMask *gorgonia.Node, aatype []int, params []*gorgonia.Node) (*StructureModuleNodes, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := smCheckAAType("ApplyStructureModule", aatype); err != nil {
		return nil, err
	}
	aatype = slices.Clone(aatype)
	parts, err := graphop.ApplyFloat(smModule[float32](cfg, aatype), smModule[float64](cfg, aatype),
		append([]*gorgonia.Node{single, pair, seqMask}, params...)...)
	if err != nil {
		return nil, err
	}
	return &StructureModuleNodes{Frames: parts[0], SidechainFrames: parts[1], UnnormalizedAngles: parts[2], Angles: parts[3],
		Positions: parts[4], States: parts[5], Single: parts[6]}, nil
}

// smModule returns the structure module for the residue types aatype as a
// graph module: inputs single, pair, seq_mask (no gradient) and the
// parameters; outputs in StructureModuleNodes order.
func smModule[T num.Float](cfg StructureModuleConfig, aatype []int) *graphop.Module[T] {
	unpack := func(in [][]T) (*StructureModuleParams[T], *StructureModuleInput[T], error) {
		p := &StructureModuleParams[T]{Config: cfg}
		if err := graphop.Bind(smParams(p), in[3:]); err != nil {
			return nil, nil, fmt.Errorf("alphafold: structure module: %w", err)
		}
		return p, &StructureModuleInput[T]{Single: in[0], Pair: in[1], SeqMask: in[2], AAType: aatype}, nil
	}
	inputs := []graphop.Input{{Name: "single", Dims: 2}, {Name: "pair", Dims: 3}, {Name: "seq_mask", Dims: 1, NoGrad: true}}
	return &graphop.Module[T]{
		Package: "alphafold", Name: "StructureModule", Key: fmt.Sprintf("%+v%v", cfg, aatype), ErrConfig: ErrConfig,
		Inputs: append(inputs, graphop.ParamInputs(smParams(&StructureModuleParams[T]{Config: cfg}))...),
		Outputs: func([]tensor.Shape) ([]tensor.Shape, error) {
			L, n, cs := cfg.Layers, len(aatype), cfg.IPA.CS
			return []tensor.Shape{{L, n, 7}, {L, n, residue.NumGroups, 4, 4}, {L, n, residue.NumTorsions, 2}, {L, n, residue.NumTorsions, 2},
				{L, n, residue.NumAtom14, 3}, {L, n, cs}, {n, cs}}, nil
		},
		Forward: func(in [][]T, _ []tensor.Shape) ([][]T, error) {
			p, x, err := unpack(in)
			if err != nil {
				return nil, err
			}
			out, err := p.Forward(x, nil)
			if err != nil {
				return nil, err
			}
			return [][]T{out.Frames, smFramesTo4x4(out.SidechainFrames), out.UnnormalizedAngles, out.Angles,
				out.Positions, out.States, out.Single}, nil
		},
		Backward: func(in [][]T, _ []tensor.Shape, _, d [][]T) ([][]T, error) {
			p, x, err := unpack(in)
			if err != nil {
				return nil, err
			}
			var c StructureModuleCache[T]
			if _, err := p.Forward(x, &c); err != nil {
				return nil, err
			}
			dOut := &StructureModuleOutput[T]{Frames: d[0], SidechainFrames: smFramesFrom4x4(d[1]), UnnormalizedAngles: d[2],
				Angles: d[3], Positions: d[4], States: d[5], Single: d[6]}
			dSingle, dPair := make([]T, len(x.Single)), make([]T, len(x.Pair))
			g := p.ZerosLike()
			if err := p.Backward(&c, dOut, dSingle, dPair, nil, g); err != nil {
				return nil, err
			}
			dIn := [][]T{dSingle, dPair, nil}
			for _, t := range g.tensors() {
				dIn = append(dIn, *t.data)
			}
			return dIn, nil
		},
	}
}
