package alphafold

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
	"github.com/foldkit/foldkit/rigid"
)

// smCaseMeta is the part of a structure-module case's meta that
// RunStructureModuleCase reads (OpenFold's configuration names).
type smCaseMeta struct {
	Case   string `json:"case"`
	Config struct {
		CS                 *int     `json:"c_s"`
		CZ                 *int     `json:"c_z"`
		CIPA               *int     `json:"c_ipa"`
		Heads              *int     `json:"no_heads_ipa"`
		QueryPoints        *int     `json:"no_qk_points"`
		ValuePoints        *int     `json:"no_v_points"`
		ResnetChannels     *int     `json:"c_resnet"`
		ResnetBlocks       *int     `json:"no_resnet_blocks"`
		Blocks             *int     `json:"no_blocks"`
		Angles             *int     `json:"no_angles"`
		TransitionLayers   *int     `json:"no_transition_layers"`
		TransScaleFactor   *float64 `json:"trans_scale_factor"`
		Epsilon            *float64 `json:"epsilon"`
		Inf                *float64 `json:"inf"`
		NumLayerTransition *int     `json:"num_layer_in_transition"`
	} `json:"config"`
}

// config returns the case's configuration, AF2's defaults for absent
// fields.
func (m *smCaseMeta) config() (StructureModuleConfig, error) {
	c := DefaultStructureModuleConfig()
	mc := m.Config
	for _, f := range []struct {
		dst *int
		v   *int
	}{
		{&c.IPA.CS, mc.CS}, {&c.IPA.CZ, mc.CZ}, {&c.IPA.Channels, mc.CIPA}, {&c.IPA.Heads, mc.Heads},
		{&c.IPA.QueryPoints, mc.QueryPoints}, {&c.IPA.ValuePoints, mc.ValuePoints},
		{&c.ResnetChannels, mc.ResnetChannels}, {&c.ResnetBlocks, mc.ResnetBlocks}, {&c.Layers, mc.Blocks},
		{&c.TransitionLayers, mc.NumLayerTransition},
	} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	for _, f := range []struct {
		dst *float64
		v   *float64
	}{{&c.PositionScale, mc.TransScaleFactor}, {&c.IPA.Eps, mc.Epsilon}, {&c.IPA.Inf, mc.Inf}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if mc.Angles != nil && *mc.Angles != residue.NumTorsions {
		return c, fmt.Errorf("alphafold: structure_module case: no_angles = %d, want %d: %w", *mc.Angles, residue.NumTorsions, ErrConfig)
	}
	// OpenFold's no_transition_layers counts transition blocks of three
	// linear layers each; AF2 has one such block.
	if mc.TransitionLayers != nil && *mc.TransitionLayers != 1 {
		return c, fmt.Errorf("alphafold: structure_module case: no_transition_layers = %d, want 1 (AF2's single 3-layer transition): %w",
			*mc.TransitionLayers, ErrConfig)
	}
	return c, c.Validate()
}

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
	str, err := cs.String("meta")
	if err != nil {
		return nil, fmt.Errorf("alphafold: structure_module case: %w", err)
	}
	var m smCaseMeta
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		return nil, fmt.Errorf("alphafold: structure_module case: meta: %v: %w", err, ErrConfig)
	}
	if m.Case != "structure_module" {
		return nil, fmt.Errorf("alphafold: case %q, want \"structure_module\": %w", m.Case, ErrConfig)
	}
	cfg, err := m.config()
	if err != nil {
		return nil, err
	}
	switch dtype {
	case "float32":
		return runStructureModuleCase[float32](cs, cfg, grad)
	case "float64":
		return runStructureModuleCase[float64](cs, cfg, grad)
	}
	return nil, fmt.Errorf("alphafold: structure_module case: dtype %q, want float32 or float64: %w", dtype, ErrConfig)
}

// smOutputNames are the case's outputs in the order of their keys.
var smOutputNames = [...]string{"frames", "sidechain_frames", "unnormalized_angles", "angles", "positions", "states", "single"}

func runStructureModuleCase[T num.Float](cs *params.Set, cfg StructureModuleConfig, grad bool) (*params.Set, error) {
	p, err := LoadStructureModuleParams[T](cs.Sub("params/"), cfg)
	if err != nil {
		return nil, err
	}
	in := cs.Sub("in/")
	shape, err := in.Shape("aatype")
	if err != nil {
		return nil, fmt.Errorf("alphafold: structure_module case: %w", err)
	}
	if len(shape) != 1 || shape[0] < 1 {
		return nil, fmt.Errorf("alphafold: structure_module case: in/aatype has shape %v, want [N]: %w", shape, num.ErrShape)
	}
	n := shape[0]
	aatype, err := params.Ints(in, "aatype", n)
	if err != nil {
		return nil, fmt.Errorf("alphafold: structure_module case: %w", err)
	}
	L, c := cfg.Layers, cfg.IPA.CS
	get := func(name string, shape ...int) ([]T, error) {
		x, err := params.Get[T](in, name, shape...)
		if err != nil {
			return nil, fmt.Errorf("alphafold: structure_module case: %w", err)
		}
		return x, nil
	}
	var x StructureModuleInput[T]
	x.AAType = aatype
	if x.Single, err = get("single", n, c); err != nil {
		return nil, err
	}
	if x.Pair, err = get("pair", n, n, cfg.IPA.CZ); err != nil {
		return nil, err
	}
	if x.SeqMask, err = get("seq_mask", n); err != nil {
		return nil, err
	}
	shapes := map[string][]int{
		"frames": {L, n, 7}, "sidechain_frames": {L, n, residue.NumGroups, 4, 4},
		"unnormalized_angles": {L, n, residue.NumTorsions, 2}, "angles": {L, n, residue.NumTorsions, 2},
		"positions": {L, n, residue.NumAtom14, 3}, "states": {L, n, c}, "single": {n, c},
	}
	cots := map[string][]T{}
	for _, k := range in.Keys() {
		if !strings.HasPrefix(k, "cot_") {
			continue
		}
		if !grad {
			in.MarkUsed(k)
			continue
		}
		name := strings.TrimPrefix(k, "cot_")
		shape, ok := shapes[name]
		if !ok {
			return nil, fmt.Errorf("alphafold: structure_module case: cotangent in/%s for an unknown output: %w", k, ErrConfig)
		}
		if cots[name], err = get(k, shape...); err != nil {
			return nil, err
		}
	}
	var unused []string
	for _, k := range cs.Unused() {
		if strings.HasPrefix(k, "params/") || strings.HasPrefix(k, "in/") {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		return nil, fmt.Errorf("alphafold: structure_module case: keys not used: %s: %w", strings.Join(unused, ", "), ErrConfig)
	}

	var cache StructureModuleCache[T]
	out, err := p.Forward(&x, &cache)
	if err != nil {
		return nil, err
	}
	res := params.New()
	data := map[string][]T{
		"frames": out.Frames, "sidechain_frames": smFramesTo4x4(out.SidechainFrames),
		"unnormalized_angles": out.UnnormalizedAngles, "angles": out.Angles,
		"positions": out.Positions, "states": out.States, "single": out.Single,
	}
	for _, name := range smOutputNames {
		if err := params.Put(res, "out/"+name, shapes[name], data[name]); err != nil {
			return nil, fmt.Errorf("alphafold: %w", err)
		}
	}
	if !grad {
		return res, nil
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
	if err := params.Put(res, "grad/in/single", []int{n, c}, dSingle); err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	if err := params.Put(res, "grad/in/pair", []int{n, n, cfg.IPA.CZ}, dPair); err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	if err := g.Save(res, "grad/params/"); err != nil {
		return nil, err
	}
	return res, nil
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
