package alphafold

import (
	"strings"

	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
	"github.com/foldkit/foldkit/rigid"
)

// RunStructureModuleCase runs the structure-module reference case cs (a
// whole case file: meta with case "structure_module" and its configuration
// in OpenFold's names, AF2-named parameters under params/ relative to
// alphafold/alphafold_iteration/, inputs in/single [N, c_s], in/pair
// [N, N, c_z], in/aatype [N] and in/seq_mask [N]) in dtype "float32" or
// "float64", and returns a new set with out/frames [L, N, 7],
// out/sidechain_frames [L, N, 8, 4, 4] (homogeneous matrices, Å),
// out/unnormalized_angles and out/angles [L, N, 7, 2], out/positions
// [L, N, 14, 3], out/states [L, N, c_s] and out/single [N, c_s]. With grad
// it also reads the cotangents in/cot_<output> and returns the gradients of
// Σ out·cot: grad/in/single, grad/in/pair and grad/params/<name> for every
// parameter (the bottom rows of the 4×4 side-chain frames are constant and
// take no gradient).
//
// The error names a missing or mis-shaped key, and the call fails if any
// params/ or in/ key is left unread (cotangents may stay unread without
// grad).
func RunStructureModuleCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	c := casekit.New(cs, "alphafold: structure_module case", ErrConfig)
	m, err := c.Meta()
	if err != nil {
		return nil, err
	}
	c.CheckCase(m.Case, "structure_module")
	// OpenFold's configuration names.
	cfg := DefaultStructureModuleConfig()
	ipa := &cfg.IPA
	ipa.CS, ipa.CZ, ipa.Channels = m.IntOr("c_s", ipa.CS), m.IntOr("c_z", ipa.CZ), m.IntOr("c_ipa", ipa.Channels)
	ipa.Heads, ipa.QueryPoints, ipa.ValuePoints = m.IntOr("no_heads_ipa", ipa.Heads), m.IntOr("no_qk_points", ipa.QueryPoints), m.IntOr("no_v_points", ipa.ValuePoints)
	ipa.Eps, ipa.Inf = m.FloatOr("epsilon", ipa.Eps), m.FloatOr("inf", ipa.Inf)
	cfg.ResnetChannels, cfg.ResnetBlocks = m.IntOr("c_resnet", cfg.ResnetChannels), m.IntOr("no_resnet_blocks", cfg.ResnetBlocks)
	cfg.Layers, cfg.TransitionLayers = m.IntOr("no_blocks", cfg.Layers), m.IntOr("num_layer_in_transition", cfg.TransitionLayers)
	cfg.PositionScale = m.FloatOr("trans_scale_factor", cfg.PositionScale)
	m.Want("no_angles", float64(residue.NumTorsions))
	// OpenFold's no_transition_layers counts transition blocks of three
	// linear layers each; AF2 has one such block.
	m.Want("no_transition_layers", 1.0)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	run, err := casekit.ByDType(c, dtype, runStructureModuleCase[float32], runStructureModuleCase[float64])
	if err != nil {
		return nil, err
	}
	return run(c, cfg, grad)
}

// smOutputNames are the case's outputs in the order of their keys.
var smOutputNames = [...]string{"frames", "sidechain_frames", "unnormalized_angles", "angles", "positions", "states", "single"}

func runStructureModuleCase[T num.Float](c *casekit.Case, cfg StructureModuleConfig, grad bool) (*params.Set, error) {
	p, err := LoadStructureModuleParams[T](c.In.Sub("params/"), cfg)
	if err != nil {
		return nil, err
	}
	shape, err := c.Dims("in/aatype", casekit.Any)
	if err != nil {
		return nil, err
	}
	if shape[0] < 1 {
		return nil, c.Errorf("in/aatype has shape %v, want [N] with N ≥ 1: %w", shape, num.ErrShape)
	}
	n := shape[0]
	L, cs := cfg.Layers, cfg.IPA.CS
	x := StructureModuleInput[T]{
		AAType:  c.Ints("in/aatype", n),
		Single:  casekit.Get[T](c, "in/single", n, cs),
		Pair:    casekit.Get[T](c, "in/pair", n, n, cfg.IPA.CZ),
		SeqMask: casekit.Get[T](c, "in/seq_mask", n),
	}
	shapes := map[string][]int{
		"frames": {L, n, 7}, "sidechain_frames": {L, n, residue.NumGroups, 4, 4},
		"unnormalized_angles": {L, n, residue.NumTorsions, 2}, "angles": {L, n, residue.NumTorsions, 2},
		"positions": {L, n, residue.NumAtom14, 3}, "states": {L, n, cs}, "single": {n, cs},
	}
	cots := map[string][]T{}
	for _, k := range c.In.Keys() {
		name, ok := strings.CutPrefix(k, "in/cot_")
		if !ok || !grad {
			continue
		}
		shape, ok := shapes[name]
		if !ok {
			return nil, c.ConfigErrorf("cotangent %s for an unknown output", k)
		}
		cots[name] = casekit.Get[T](c, k, shape...)
	}
	if err := c.CheckUsed(grad); err != nil {
		return nil, err
	}

	var cache StructureModuleCache[T]
	out, err := p.Forward(&x, &cache)
	if err != nil {
		return nil, err
	}
	data := map[string][]T{
		"frames": out.Frames, "sidechain_frames": smFramesTo4x4(out.SidechainFrames),
		"unnormalized_angles": out.UnnormalizedAngles, "angles": out.Angles,
		"positions": out.Positions, "states": out.States, "single": out.Single,
	}
	for _, name := range smOutputNames {
		casekit.Put(c, "out/"+name, shapes[name], data[name])
	}
	if !grad {
		return c.Result()
	}
	d := &StructureModuleOutput[T]{
		Frames: cots["frames"], UnnormalizedAngles: cots["unnormalized_angles"], Angles: cots["angles"],
		Positions: cots["positions"], States: cots["states"], Single: cots["single"],
	}
	if x := cots["sidechain_frames"]; x != nil {
		d.SidechainFrames = smFramesFrom4x4(x)
	}
	dSingle := make([]T, len(x.Single))
	dPair := make([]T, len(x.Pair))
	g := p.ZerosLike()
	if err := p.Backward(&cache, d, dSingle, dPair, nil, g); err != nil {
		return nil, err
	}
	casekit.Put(c, "grad/in/single", []int{n, cs}, dSingle)
	casekit.Put(c, "grad/in/pair", []int{n, n, cfg.IPA.CZ}, dPair)
	if err := g.Save(c.Out, "grad/params/"); err != nil {
		return nil, err
	}
	return c.Result()
}

// smFramesTo4x4 writes frames as homogeneous 4×4 matrices [[R, t], [0 0 0 1]].
func smFramesTo4x4[T num.Float](f []rigid.Rigid[T]) []T {
	out := make([]T, 16*len(f))
	for i, r := range f {
		m := out[16*i : 16*i+16]
		for a := range 3 {
			copy(m[4*a:4*a+3], r.Rot[3*a:3*a+3])
			m[4*a+3] = r.Trans[a]
		}
		m[15] = 1
	}
	return out
}

// smFramesFrom4x4 reads the gradient of homogeneous 4×4 frames: the
// rotation block and the translation column (the constant bottom row takes
// no gradient).
func smFramesFrom4x4[T num.Float](x []T) []rigid.Rigid[T] {
	f := make([]rigid.Rigid[T], len(x)/16)
	for i := range f {
		m := x[16*i : 16*i+16]
		for a := range 3 {
			copy(f[i].Rot[3*a:3*a+3], m[4*a:4*a+3])
			f[i].Trans[a] = m[4*a+3]
		}
	}
	return f
}
