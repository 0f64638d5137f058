package alphafold

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/ipa"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
	"github.com/foldkit/foldkit/rigid"
)

// StructureModuleName is the haiku name of the structure module under
// alphafold/alphafold_iteration/. Its shared iteration sits under
// structure_module/fold_iteration/.
const StructureModuleName = "structure_module"

// StructureModuleConfig holds the sizes of AF2's structure module
// (supplement Algorithm 20; the structure_module section of AF2's model
// config). DefaultStructureModuleConfig returns AF2's values.
type StructureModuleConfig struct {
	// IPA configures the invariant point attention. Its CS and CZ are the
	// widths c_s of the single and c_z of the pair representation, which
	// the whole module uses (AF2: 384 and 128).
	IPA ipa.Config
	// Layers is the number of iterations, all sharing one set of weights
	// (num_layer, AF2: 8).
	Layers int
	// TransitionLayers is the number of linear layers of the transition
	// (num_layer_in_transition, AF2: 3): transition, transition_1, ...
	TransitionLayers int
	// ResnetChannels is the width of the torsion-angle ResNet
	// (sidechain.num_channel, AF2: 128).
	ResnetChannels int
	// ResnetBlocks is the number of residual blocks of the ResNet
	// (sidechain.num_residual_block, AF2: 2).
	ResnetBlocks int
	// PositionScale converts the module's internal translations to the
	// output unit (position_scale, AF2: 10): AF2 works in nanometres inside
	// the module and reports ångström.
	PositionScale float64
}

// DefaultStructureModuleConfig returns AF2's structure module: c_s = 384,
// c_z = 128, IPA with 12 heads, 16 channels, 4 query and 8 value points,
// 8 iterations, a 3-layer transition, a ResNet of width 128 with 2 blocks,
// and position scale 10.
func DefaultStructureModuleConfig() StructureModuleConfig {
	return StructureModuleConfig{IPA: ipa.DefaultConfig(), Layers: 8, TransitionLayers: 3,
		ResnetChannels: 128, ResnetBlocks: 2, PositionScale: 10}
}

// Validate returns an error wrapping ErrConfig (or ipa.ErrConfig) naming the
// first field out of range.
func (c StructureModuleConfig) Validate() error {
	if err := c.IPA.Validate(); err != nil {
		return fmt.Errorf("alphafold: structure module: %w", err)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"Layers", c.Layers}, {"TransitionLayers", c.TransitionLayers}, {"ResnetChannels", c.ResnetChannels}} {
		if f.v < 1 {
			return fmt.Errorf("alphafold: structure module config %s = %d, want ≥ 1: %w", f.name, f.v, ErrConfig)
		}
	}
	if c.ResnetBlocks < 0 {
		return fmt.Errorf("alphafold: structure module config ResnetBlocks = %d, want ≥ 0: %w", c.ResnetBlocks, ErrConfig)
	}
	if !(c.PositionScale > 0) || math.IsInf(c.PositionScale, 0) {
		return fmt.Errorf("alphafold: structure module config PositionScale = %v, want finite and > 0: %w", c.PositionScale, ErrConfig)
	}
	return nil
}

// StructureModuleParams holds the structure module's parameters in AF2's
// layouts. Field names follow the haiku names under structure_module/;
// c_s = Config.IPA.CS and c_z = Config.IPA.CZ. The fold iteration's
// parameters are shared by all Config.Layers iterations.
type StructureModuleParams[T num.Float] struct {
	Config StructureModuleConfig
	// SingleLayerNorm (single_layer_norm) normalises the single
	// representation [c_s] on entry; its output is s_initial.
	SingleLayerNorm nn.LayerNormParams[T]
	// InitialProjection (initial_projection) is [c_s, c_s].
	InitialProjection nn.LinearParams[T]
	// PairLayerNorm (pair_layer_norm) normalises the pair representation
	// [c_z] once; IPA reads the result in every iteration.
	PairLayerNorm nn.LayerNormParams[T]
	// IPA (fold_iteration/invariant_point_attention) is Algorithm 22.
	IPA ipa.Params[T]
	// AttentionLayerNorm (fold_iteration/attention_layer_norm) [c_s].
	AttentionLayerNorm nn.LayerNormParams[T]
	// Transition holds the transition's layers [c_s, c_s]
	// (fold_iteration/transition, transition_1, transition_2 for AF2's three).
	Transition []nn.LinearParams[T]
	// TransitionLayerNorm (fold_iteration/transition_layer_norm) [c_s].
	TransitionLayerNorm nn.LayerNormParams[T]
	// AffineUpdate (fold_iteration/affine_update) is [c_s, 6]: the
	// backbone update of Algorithm 23.
	AffineUpdate nn.LinearParams[T]
	// Sidechain (fold_iteration/rigid_sidechain) is the torsion-angle
	// ResNet.
	Sidechain AngleResnetParams[T]
}

// smTensor names one parameter array: its AF2 name, its shape and the slice
// of a Params struct that holds it. A module's list of tensors is the one
// place that states its names and shapes; loading, saving, checking and the
// gorgonia adapter walk it.
type smTensor[T num.Float] struct {
	name  string
	shape []int
	data  *[]T
}

func (t smTensor[T]) size() int {
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// smLinearTensors lists the weights [in, out] and bias [out] of the linear
// layer called name, setting p's sizes.
func smLinearTensors[T num.Float](p *nn.LinearParams[T], name string, in, out int) []smTensor[T] {
	p.In, p.Out = in, out
	return []smTensor[T]{{name + "//weights", []int{in, out}, &p.W}, {name + "//bias", []int{out}, &p.B}}
}

// smLayerNormTensors lists the scale and offset [c] of the layer norm called
// name, setting p's size.
func smLayerNormTensors[T num.Float](p *nn.LayerNormParams[T], name string, c int) []smTensor[T] {
	p.C = c
	return []smTensor[T]{{name + "//scale", []int{c}, &p.Scale}, {name + "//offset", []int{c}, &p.Offset}}
}

// smCheckLinear reports a linear layer whose sizes or array lengths are not
// [in, out] with a bias.
func smCheckLinear[T num.Float](module string, p *nn.LinearParams[T], in, out int) error {
	if p.In != in || p.Out != out || len(p.W) != in*out || len(p.B) != out {
		return fmt.Errorf("alphafold: %s: linear layer [%d %d] with %d weights and %d biases, want [%d %d] with a bias: %w",
			module, p.In, p.Out, len(p.W), len(p.B), in, out, num.ErrShape)
	}
	return nil
}

// smCheckInput reports a length other than n (num.ErrShape) or a non-finite
// value (num.ErrNaN) of the input what.
func smCheckInput[T num.Float](module, what string, x []T, n int, shape string) error {
	if err := num.CheckLen(module+" "+what, x, n, shape); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	if err := num.CheckFinite(module+" "+what, x); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	return nil
}

// tensors lists every parameter array under its AF2 name relative to
// alphafold/alphafold_iteration/ (so starting with "structure_module/"),
// setting the sizes of every layer from p.Config.
func (p *StructureModuleParams[T]) tensors() []smTensor[T] {
	cfg := p.Config
	cs, cz := cfg.IPA.CS, cfg.IPA.CZ
	h, c, pq, pv := cfg.IPA.Heads, cfg.IPA.Channels, cfg.IPA.QueryPoints, cfg.IPA.ValuePoints
	const sm = StructureModuleName + "/"
	const fi = sm + "fold_iteration/"
	const ip = fi + ipa.Name + "/"
	ts := smLayerNormTensors(&p.SingleLayerNorm, sm+"single_layer_norm", cs)
	ts = append(ts, smLinearTensors(&p.InitialProjection, sm+"initial_projection", cs, cs)...)
	ts = append(ts, smLayerNormTensors(&p.PairLayerNorm, sm+"pair_layer_norm", cz)...)
	p.IPA.Config = cfg.IPA
	ts = append(ts, smLinearTensors(&p.IPA.QScalar, ip+"q_scalar", cs, h*c)...)
	ts = append(ts, smLinearTensors(&p.IPA.KVScalar, ip+"kv_scalar", cs, 2*h*c)...)
	ts = append(ts, smLinearTensors(&p.IPA.QPointLocal, ip+"q_point_local", cs, 3*h*pq)...)
	ts = append(ts, smLinearTensors(&p.IPA.KVPointLocal, ip+"kv_point_local", cs, 3*h*(pq+pv))...)
	ts = append(ts, smTensor[T]{fi + ipa.Name + "//trainable_point_weights", []int{h}, &p.IPA.TrainablePointWeights})
	ts = append(ts, smLinearTensors(&p.IPA.Attention2D, ip+"attention_2d", cz, h)...)
	ts = append(ts, smLinearTensors(&p.IPA.OutputProjection, ip+"output_projection", h*c+4*h*pv+h*cz, cs)...)
	ts = append(ts, smLayerNormTensors(&p.AttentionLayerNorm, fi+"attention_layer_norm", cs)...)
	if len(p.Transition) != cfg.TransitionLayers {
		p.Transition = make([]nn.LinearParams[T], cfg.TransitionLayers)
	}
	for k := range p.Transition {
		ts = append(ts, smLinearTensors(&p.Transition[k], fi+"transition"+smSuffix(k), cs, cs)...)
	}
	ts = append(ts, smLayerNormTensors(&p.TransitionLayerNorm, fi+"transition_layer_norm", cs)...)
	ts = append(ts, smLinearTensors(&p.AffineUpdate, fi+AffineUpdateName, cs, 6)...)
	return append(ts, p.Sidechain.tensors(fi+AngleResnetName+"/", cs, cfg.ResnetChannels, cfg.ResnetBlocks)...)
}

// StructureModuleParamNames returns the AF2 names of the structure module's
// parameters for cfg, relative to alphafold/alphafold_iteration/ (as
// LoadStructureModuleParams reads them), in the order in which
// ApplyStructureModule takes their nodes.
func StructureModuleParamNames(cfg StructureModuleConfig) []string {
	p := &StructureModuleParams[float64]{Config: cfg}
	var names []string
	for _, t := range p.tensors() {
		names = append(names, t.name)
	}
	return names
}

// NewStructureModuleParams returns parameters for cfg initialised as AF2
// does with zero_init (supplement §1.11.4): layer norms with scale 1 and
// offset 0; initial_projection, the ResNet's projections and its output
// layer with the "linear" initialiser; the transition's hidden layers and
// each resblock1 with "relu"; the last transition layer, affine_update and
// each resblock2 with zeros (so that a fresh iteration leaves s after the
// attention and the frames unchanged); IPA as ipa.NewParams. rng must not be
// nil. The error wraps ErrConfig for an invalid cfg.
func NewStructureModuleParams[T num.Float](cfg StructureModuleConfig, rng *rand.Rand) (*StructureModuleParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("alphafold: NewStructureModuleParams: nil random source: %w", ErrConfig)
	}
	cs, cz := cfg.IPA.CS, cfg.IPA.CZ
	p := &StructureModuleParams[T]{Config: cfg}
	p.SingleLayerNorm = nn.NewLayerNorm[T](cs)
	p.InitialProjection = nn.NewLinear[T](rng, cs, cs, nn.InitLinear, true)
	p.PairLayerNorm = nn.NewLayerNorm[T](cz)
	ip, err := ipa.NewParams[T](cfg.IPA, rng)
	if err != nil {
		return nil, fmt.Errorf("alphafold: structure module: %w", err)
	}
	p.IPA = *ip
	p.AttentionLayerNorm = nn.NewLayerNorm[T](cs)
	for k := range cfg.TransitionLayers {
		init := nn.InitRelu
		if k == cfg.TransitionLayers-1 {
			init = nn.InitZeros
		}
		p.Transition = append(p.Transition, nn.NewLinear[T](rng, cs, cs, init, true))
	}
	p.TransitionLayerNorm = nn.NewLayerNorm[T](cs)
	p.AffineUpdate = nn.NewLinear[T](rng, cs, 6, nn.InitZeros, true)
	p.Sidechain = newAngleResnet[T](cs, cfg.ResnetChannels, cfg.ResnetBlocks, rng)
	return p, nil
}

// LoadStructureModuleParams reads the structure module's parameters for cfg
// from s under AF2's names relative to alphafold/alphafold_iteration/: s
// holds "structure_module/single_layer_norm//scale",
// "structure_module/fold_iteration/invariant_point_attention/q_scalar//weights"
// and so on. For a full AF2 parameter file narrow it first:
//
//	p, err := alphafold.LoadStructureModuleParams[float32](all.Sub("alphafold/alphafold_iteration/"), cfg)
//
// Every shape is checked against cfg. The error names the key and wraps
// params.ErrMissing for an absent array, num.ErrShape for a wrong shape,
// num.ErrNaN for a non-finite value, or ErrConfig for an invalid cfg.
func LoadStructureModuleParams[T num.Float](s *params.Set, cfg StructureModuleConfig) (*StructureModuleParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &StructureModuleParams[T]{Config: cfg}
	if err := smLoadTensors(s, p.tensors()); err != nil {
		return nil, err
	}
	return p, nil
}

// smLoadTensors reads every tensor of ts from s and checks its values.
func smLoadTensors[T num.Float](s *params.Set, ts []smTensor[T]) error {
	for _, t := range ts {
		x, err := params.Get[T](s, t.name, t.shape...)
		if err != nil {
			return fmt.Errorf("alphafold: %w", err)
		}
		if err := num.CheckFinite("alphafold: parameter "+t.name, x); err != nil {
			return err
		}
		*t.data = x
	}
	return nil
}

// smSaveTensors stores every tensor of ts in s under prefix + its name.
func smSaveTensors[T num.Float](s *params.Set, prefix string, ts []smTensor[T]) error {
	for _, t := range ts {
		if err := params.Put(s, prefix+t.name, t.shape, *t.data); err != nil {
			return fmt.Errorf("alphafold: %w", err)
		}
	}
	return nil
}

// Save stores p in s under AF2's names relative to
// alphafold/alphafold_iteration/ with prefix prepended, so that
// LoadStructureModuleParams(s.Sub(prefix), p.Config) reads p back.
func (p *StructureModuleParams[T]) Save(s *params.Set, prefix string) error {
	if err := p.check(); err != nil {
		return err
	}
	return smSaveTensors(s, prefix, p.tensors())
}

// ZerosLike returns parameters of p's configuration filled with zeros, the
// starting point of the gradient that Backward accumulates.
func (p *StructureModuleParams[T]) ZerosLike() *StructureModuleParams[T] {
	g := &StructureModuleParams[T]{Config: p.Config}
	for _, t := range g.tensors() {
		*t.data = make([]T, t.size())
	}
	return g
}

// check reports an invalid configuration or an array whose length does not
// match it.
func (p *StructureModuleParams[T]) check() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	q := *p // tensors sets sizes; keep p's own to compare
	q.Transition = append([]nn.LinearParams[T](nil), p.Transition...)
	q.Sidechain.Resblock1 = append([]nn.LinearParams[T](nil), p.Sidechain.Resblock1...)
	q.Sidechain.Resblock2 = append([]nn.LinearParams[T](nil), p.Sidechain.Resblock2...)
	if len(q.Transition) != p.Config.TransitionLayers || len(q.Sidechain.Resblock1) != p.Config.ResnetBlocks ||
		len(q.Sidechain.Resblock2) != p.Config.ResnetBlocks {
		return fmt.Errorf("alphafold: structure module has %d transition layers and %d+%d resblock layers, want %d and %d each: %w",
			len(p.Transition), len(p.Sidechain.Resblock1), len(p.Sidechain.Resblock2), p.Config.TransitionLayers, p.Config.ResnetBlocks, num.ErrShape)
	}
	for _, t := range q.tensors() {
		if len(*t.data) != t.size() {
			return fmt.Errorf("alphafold: structure module parameter %s has %d elements, want %v: %w", t.name, len(*t.data), t.shape, num.ErrShape)
		}
	}
	// The layers' recorded sizes must be the ones the shapes imply.
	layers := []smLayer[T]{{&p.InitialProjection, p.Config.IPA.CS, p.Config.IPA.CS}, {&p.AffineUpdate, p.Config.IPA.CS, 6}}
	for k := range p.Transition {
		layers = append(layers, smLayer[T]{&p.Transition[k], p.Config.IPA.CS, p.Config.IPA.CS})
	}
	for _, l := range layers {
		if err := smCheckLinear("structure module", l.p, l.in, l.out); err != nil {
			return err
		}
	}
	for _, ln := range []struct {
		p *nn.LayerNormParams[T]
		c int
	}{{&p.SingleLayerNorm, p.Config.IPA.CS}, {&p.PairLayerNorm, p.Config.IPA.CZ}, {&p.AttentionLayerNorm, p.Config.IPA.CS}, {&p.TransitionLayerNorm, p.Config.IPA.CS}} {
		if ln.p.C != ln.c {
			return fmt.Errorf("alphafold: structure module layer norm over %d channels, want %d: %w", ln.p.C, ln.c, num.ErrShape)
		}
	}
	if p.IPA.Config != p.Config.IPA {
		return fmt.Errorf("alphafold: structure module IPA config %+v differs from Config.IPA %+v: %w", p.IPA.Config, p.Config.IPA, ErrConfig)
	}
	if p.Sidechain.CS != p.Config.IPA.CS || p.Sidechain.C != p.Config.ResnetChannels {
		return fmt.Errorf("alphafold: structure module angle resnet is [%d %d], want [%d %d]: %w",
			p.Sidechain.CS, p.Sidechain.C, p.Config.IPA.CS, p.Config.ResnetChannels, num.ErrShape)
	}
	return p.Sidechain.check()
}

// StructureModuleInput holds the inputs of the structure module for N
// residues.
type StructureModuleInput[T num.Float] struct {
	// Single is the single representation [N, c_s] (the Evoformer's output
	// after single_activations).
	Single []T
	// Pair is the pair representation [N, N, c_z].
	Pair []T
	// AAType holds the residue types [N] in AF2's order (0..19, 20 unknown);
	// they choose the rigid-group constants of the side chains.
	AAType []int
	// SeqMask is [N]: 1 for a present residue, 0 for padding. IPA does not
	// attend to masked residues; their outputs are computed but meaningless.
	SeqMask []T
	// InitialFrames optionally gives the frames the first iteration starts
	// from, [N, 7]: a unit quaternion (w, x, y, z) and a translation in the
	// output unit (Å), the layout of StructureModuleOutput.Frames. nil
	// means AF2's start: the identity for every residue. AF2's fold
	// iteration composes its updates onto whatever frames it is given.
	InitialFrames []T
}

// StructureModuleOutput holds the structure module's outputs for N residues
// and L = Config.Layers iterations, iteration-major (index 0..L−1), in the
// layouts of AF2's structure module (and of the reference cases). The same
// type carries the gradients of a loss with respect to the outputs in
// Backward, where a nil field stands for zero.
type StructureModuleOutput[T num.Float] struct {
	// N and Layers are the sizes.
	N, Layers int
	// Frames is [L, N, 7]: the backbone frame of each residue after each
	// iteration as a quaternion (w, x, y, z), not sign-canonicalised, and a
	// translation in Å (AF2's traj).
	Frames []T
	// SidechainFrames is [L, N, 8]: the global frames (Å) of the 8 rigid
	// groups (backbone, pre-ω, φ, ψ, χ1..χ4) of Algorithm 24. Groups a
	// residue type lacks have a zero rotation block and their parent's
	// translation, as in AF2.
	SidechainFrames []rigid.Rigid[T]
	// UnnormalizedAngles and Angles are [L, N, 7, 2]: the ResNet's (sin,
	// cos) pairs of pre-ω, φ, ψ, χ1..χ4 before and after normalisation.
	UnnormalizedAngles, Angles []T
	// Positions is [L, N, 14, 3]: the atom14 positions in Å (Algorithm
	// 25), zero for slots a residue type does not have.
	Positions []T
	// States is [L, N, c_s]: the single representation after each
	// iteration.
	States []T
	// Single is [N, c_s], the final single representation (the last
	// state): the input of the pLDDT head.
	Single []T
}

// FinalPositions returns the atom14 positions of the last iteration,
// [N, 14, 3] in Å (AF2's final_atom14_positions), sharing o.Positions.
func (o *StructureModuleOutput[T]) FinalPositions() []T {
	k := o.N * residue.NumAtom14 * 3
	return o.Positions[(o.Layers-1)*k : o.Layers*k]
}

// FinalFrames returns the frames of the last iteration, [N, 7] (quaternion
// and translation in Å, AF2's final_affines), sharing o.Frames.
func (o *StructureModuleOutput[T]) FinalFrames() []T {
	return o.Frames[(o.Layers-1)*o.N*7 : o.Layers*o.N*7]
}

// newStructureModuleOutput allocates the outputs for n residues.
func newStructureModuleOutput[T num.Float](n, layers, cs int) *StructureModuleOutput[T] {
	return &StructureModuleOutput[T]{
		N: n, Layers: layers,
		Frames:             make([]T, layers*n*7),
		SidechainFrames:    make([]rigid.Rigid[T], layers*n*residue.NumGroups),
		UnnormalizedAngles: make([]T, layers*n*NumAngleOutputs),
		Angles:             make([]T, layers*n*NumAngleOutputs),
		Positions:          make([]T, layers*n*residue.NumAtom14*3),
		States:             make([]T, layers*n*cs),
		Single:             make([]T, n*cs),
	}
}

// smIteration holds one fold iteration's intermediate values.
type smIteration[T num.Float] struct {
	quat         []rigid.Quat[T]  // frames entering the iteration
	trans        [][3]T           // their translations, nm
	frames       []rigid.Rigid[T] // the same as IPA reads them
	ipaOut       []T              // IPA's update [N, c_s]
	ipa          ipa.Cache[T]
	a1, x1       []T   // s + IPA(s) and attention_layer_norm of it [N, c_s]
	mean1, rstd1 []T   // its statistics [N]
	hidden       [][]T // transition activations after each hidden ReLU [N, c_s]
	a2           []T   // x1 + transition(x1) [N, c_s]
	mean2, rstd2 []T
	u            []T // affine_update output [N, 6]
	newQuat      []rigid.Quat[T]
	newTrans     [][3]T           // nm
	bb           []rigid.Rigid[T] // the new backbone frames, Å
	angles       []T              // [N, 7, 2], the normalised angles
	resnet       AngleResnetCache[T]
}

// StructureModuleCache holds what Backward needs from one Forward call: the
// normalised inputs, the state entering each iteration and every
// iteration's intermediate values (O(L·N·c_s) plus IPA's [N, H, N]
// attention weights per iteration). It refers to (does not copy) the
// input's arrays, which must not change until Backward has run. A zero
// cache is ready to use; a later Forward reuses its buffers.
type StructureModuleCache[T num.Float] struct {
	n              int
	single, pair   []T
	aatype         []int
	seqMask        []T
	initial        bool
	sInit          []T // single_layer_norm(single) [N, c_s]
	sMean, sRstd   []T
	z              []T // pair_layer_norm(pair) [N, N, c_z]
	zMean, zRstd   []T
	s              [][]T // state entering iteration k (s[0] = initial projection), and after the last
	iters          []smIteration[T]
	out            *StructureModuleOutput[T]
	hasForward     bool
	cfg            StructureModuleConfig
	initialQuat    []rigid.Quat[T]
	initialTransNm [][3]T
}

// checkInput validates the structure module's input for p's configuration
// and returns N.
func (p *StructureModuleParams[T]) checkInput(in *StructureModuleInput[T]) (int, error) {
	const mod = "structure module"
	if in == nil {
		return 0, fmt.Errorf("alphafold: %s: nil input: %w", mod, num.ErrShape)
	}
	n := len(in.AAType)
	if n < 1 {
		return 0, fmt.Errorf("alphafold: %s: no residues (len(AAType) = 0): %w", mod, num.ErrShape)
	}
	cs, cz := p.Config.IPA.CS, p.Config.IPA.CZ
	if err := smCheckInput(mod, "single", in.Single, n*cs, fmt.Sprintf("[N c_s] = [%d %d]", n, cs)); err != nil {
		return 0, err
	}
	if err := smCheckInput(mod, "pair", in.Pair, n*n*cz, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)); err != nil {
		return 0, err
	}
	if err := smCheckInput(mod, "seq_mask", in.SeqMask, n, fmt.Sprintf("[N] = [%d]", n)); err != nil {
		return 0, err
	}
	for i, a := range in.AAType {
		if a < 0 || a >= residue.NumRestypesWithX {
			return 0, fmt.Errorf("alphafold: %s: aatype[%d] = %d outside [0, %d]: %w", mod, i, a, residue.NumRestypesWithX-1, num.ErrShape)
		}
	}
	if in.InitialFrames != nil {
		if err := smCheckInput(mod, "initial frames", in.InitialFrames, 7*n, fmt.Sprintf("[N 7] = [%d 7]", n)); err != nil {
			return 0, err
		}
		for i := range n {
			q := in.InitialFrames[7*i : 7*i+4]
			nq := math.Sqrt(float64(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3]))
			if math.Abs(nq-1) > ipa.RotationTol {
				return 0, fmt.Errorf("alphafold: %s: initial frame %d has a quaternion of norm %.6g, want 1 ± %g: %w",
					mod, i, nq, ipa.RotationTol, ErrConfig)
			}
		}
	}
	return n, nil
}

// Forward runs the structure module (supplement Algorithm 20) as AF2's
// generate_affines and fold_iteration do, and returns its outputs:
//
//	s_initial = single_layer_norm(single);  s = initial_projection(s_initial)
//	z = pair_layer_norm(pair);  frames = identity (or in.InitialFrames)
//	repeat Config.Layers times, with shared weights:
//	    s = attention_layer_norm(s + IPA(s, z, frames, seq_mask))      (Alg. 22)
//	    s = transition_layer_norm(s + transition(s))                   (3 layers, ReLU)
//	    frames = frames ∘ update(affine_update(s))                     (Alg. 23)
//	    angles = AngleResnet(s, s_initial)                             (Alg. 20 l. 11–14)
//	    side-chain frames and atom14 positions from frames·10, angles  (Alg. 24, 25)
//
// Frame translations are in nanometres inside the module (IPA and the
// updates see them so) and are multiplied by Config.PositionScale (10) for
// every output, in Å, exactly as AF2 does. AF2's stop-gradient on the
// rotations between iterations only affects Backward.
//
// If cache is not nil it is filled for Backward. The error wraps
// num.ErrShape for a length that does not match N = len(in.AAType) and the
// configuration or a residue type outside 0..20, num.ErrNaN for a non-finite
// input, and ErrConfig for invalid parameters or an initial quaternion that
// is not of unit norm.
func (p *StructureModuleParams[T]) Forward(in *StructureModuleInput[T], cache *StructureModuleCache[T]) (*StructureModuleOutput[T], error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	n, err := p.checkInput(in)
	if err != nil {
		return nil, err
	}
	keep := cache != nil
	c := cache
	if c == nil {
		c = new(StructureModuleCache[T])
	}
	if err := p.forward(in, n, c, keep); err != nil {
		return nil, err
	}
	return c.out, nil
}

// alloc sizes c for n residues; with keep, every iteration gets its own
// buffers (for Backward), otherwise they share one set.
func (c *StructureModuleCache[T]) alloc(cfg StructureModuleConfig, n int, keep bool) {
	cs, cz, L := cfg.IPA.CS, cfg.IPA.CZ, cfg.Layers
	c.n, c.cfg = n, cfg
	c.sInit = smGrow(c.sInit, n*cs)
	c.sMean, c.sRstd = smGrow(c.sMean, n), smGrow(c.sRstd, n)
	c.z = smGrow(c.z, n*n*cz)
	c.zMean, c.zRstd = smGrow(c.zMean, n*n), smGrow(c.zRstd, n*n)
	ns, ni := L+1, L
	if !keep {
		ns, ni = 2, 1
	}
	c.s = smGrowAll(c.s, ns, n*cs)
	if len(c.iters) != ni {
		c.iters = make([]smIteration[T], ni)
	}
	for k := range c.iters {
		it := &c.iters[k]
		it.quat = smGrowAny(it.quat, n)
		it.trans = smGrowAny(it.trans, n)
		it.frames = smGrowAny(it.frames, n)
		it.ipaOut = smGrow(it.ipaOut, n*cs)
		it.a1, it.x1 = smGrow(it.a1, n*cs), smGrow(it.x1, n*cs)
		it.mean1, it.rstd1 = smGrow(it.mean1, n), smGrow(it.rstd1, n)
		it.hidden = smGrowAll(it.hidden, cfg.TransitionLayers-1, n*cs)
		it.a2 = smGrow(it.a2, n*cs)
		it.mean2, it.rstd2 = smGrow(it.mean2, n), smGrow(it.rstd2, n)
		it.u = smGrow(it.u, 6*n)
		it.newQuat = smGrowAny(it.newQuat, n)
		it.newTrans = smGrowAny(it.newTrans, n)
		it.bb = smGrowAny(it.bb, n)
		it.angles = smGrow(it.angles, n*NumAngleOutputs)
	}
	c.initialQuat = smGrowAny(c.initialQuat, n)
	c.initialTransNm = smGrowAny(c.initialTransNm, n)
	c.out = newStructureModuleOutput[T](n, L, cs)
}

// smGrowAny is smGrow for any element type.
func smGrowAny[E any](x []E, n int) []E {
	if cap(x) >= n {
		return x[:n]
	}
	return make([]E, n)
}

// forward is Forward on validated arguments.
func (p *StructureModuleParams[T]) forward(in *StructureModuleInput[T], n int, c *StructureModuleCache[T], keep bool) error {
	cfg := p.Config
	cs := cfg.IPA.CS
	scale := T(cfg.PositionScale)
	c.alloc(cfg, n, keep)
	c.single, c.pair, c.aatype, c.seqMask = in.Single, in.Pair, in.AAType, in.SeqMask
	c.initial = in.InitialFrames != nil
	out := c.out

	p.SingleLayerNorm.Forward(c.sInit, in.Single, n, c.sMean, c.sRstd)
	p.InitialProjection.Forward(c.s[0], c.sInit, n)
	p.PairLayerNorm.Forward(c.z, in.Pair, n*n, c.zMean, c.zRstd)

	for i := range n {
		if c.initial {
			f := in.InitialFrames[7*i : 7*i+7]
			c.initialQuat[i] = rigid.Quat[T]{f[0], f[1], f[2], f[3]}
			c.initialTransNm[i] = [3]T{f[4] / scale, f[5] / scale, f[6] / scale}
		} else {
			c.initialQuat[i] = rigid.Quat[T]{1, 0, 0, 0}
			c.initialTransNm[i] = [3]T{}
		}
	}
	quat, trans := c.initialQuat, c.initialTransNm
	tmp := make([]T, n*cs)
	for k := range cfg.Layers {
		it := &c.iters[0]
		sIn, sOut := c.s[k%2], c.s[(k+1)%2]
		if keep {
			it = &c.iters[k]
			sIn, sOut = c.s[k], c.s[k+1]
		}
		copy(it.quat, quat)
		copy(it.trans, trans)
		for i := range n {
			it.frames[i] = rigid.FromQuat(it.quat[i], it.trans[i])
		}
		// s += IPA(s, z, frames); s = LN(s).
		if err := ipa.Forward(&p.IPA, sIn, c.z, it.frames, in.SeqMask, it.ipaOut, &it.ipa); err != nil {
			return fmt.Errorf("alphafold: structure module iteration %d: %w", k, err)
		}
		for j := range it.a1 {
			it.a1[j] = sIn[j] + it.ipaOut[j]
		}
		p.AttentionLayerNorm.Forward(it.x1, it.a1, n, it.mean1, it.rstd1)
		// s = LN(s + transition(s)).
		x := it.x1
		for l := range p.Transition {
			if l == len(p.Transition)-1 {
				p.Transition[l].Forward(tmp, x, n)
				break
			}
			p.Transition[l].Forward(it.hidden[l], x, n)
			nn.ReLU(it.hidden[l], it.hidden[l])
			x = it.hidden[l]
		}
		for j := range it.a2 {
			it.a2[j] = it.x1[j] + tmp[j]
		}
		p.TransitionLayerNorm.Forward(sOut, it.a2, n, it.mean2, it.rstd2)
		// Backbone update (Alg. 23), translations in nm.
		smBackboneUpdate(&p.AffineUpdate, sOut, n, it.quat, it.trans, it.u, it.newQuat, it.newTrans)
		fr := out.Frames[k*n*7 : (k+1)*n*7]
		for i := range n {
			q, t := it.newQuat[i], it.newTrans[i]
			copy(fr[7*i:], q[:])
			tA := [3]T{t[0] * scale, t[1] * scale, t[2] * scale}
			copy(fr[7*i+4:], tA[:])
			it.bb[i] = rigid.FromQuat(q, tA)
		}
		// Side chains: torsion angles, rigid-group frames and atoms in Å.
		ua := out.UnnormalizedAngles[k*n*NumAngleOutputs : (k+1)*n*NumAngleOutputs]
		an := out.Angles[k*n*NumAngleOutputs : (k+1)*n*NumAngleOutputs]
		p.Sidechain.forward(sOut, c.sInit, n, ua, an, &it.resnet)
		copy(it.angles, an)
		all, err := rigid.TorsionFrames(it.bb, an, in.AAType)
		if err != nil {
			return fmt.Errorf("alphafold: structure module iteration %d: %w", k, err)
		}
		copy(out.SidechainFrames[k*n*residue.NumGroups:], all)
		pos, err := rigid.Atom14Positions(all, in.AAType)
		if err != nil {
			return fmt.Errorf("alphafold: structure module iteration %d: %w", k, err)
		}
		copy(out.Positions[k*n*residue.NumAtom14*3:], pos)
		copy(out.States[k*n*cs:], sOut)
		// The next iteration starts from the new frames (its rotation
		// carries no gradient: AF2's stop_gradient).
		quat, trans = it.newQuat, it.newTrans
	}
	copy(out.Single, out.States[(cfg.Layers-1)*n*cs:])
	c.hasForward = keep
	return nil
}

// Backward computes the gradients of the structure module for the Forward
// call that filled cache, given d, the gradients of a loss with respect to
// the outputs (same layouts as StructureModuleOutput; nil fields are zero;
// d.N and d.Layers are ignored). It accumulates (+=)
//
//   - dSingle [N, c_s] and dPair [N, N, c_z], the gradients with respect to
//     the input representations (either may be nil);
//   - dInitialFrames [N, 7] (may be nil), with respect to the initial
//     frames' quaternion entries (unconstrained) and translations (Å);
//   - g, with respect to every parameter (start from ZerosLike; may be nil).
//
// As in AF2, the rotations are detached between iterations: the gradient
// reaches a frame's rotation only within the iteration that produced it
// (through the frames, side-chain frames and positions it outputs), while
// translations pass their gradient on through every later iteration. The
// initial frames are not detached. The error wraps ErrConfig if cache holds
// no forward pass of these parameters, num.ErrShape for a wrong length and
// num.ErrNaN for a non-finite gradient.
func (p *StructureModuleParams[T]) Backward(cache *StructureModuleCache[T], d *StructureModuleOutput[T], dSingle, dPair, dInitialFrames []T, g *StructureModuleParams[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	c := cache
	if c == nil || !c.hasForward || c.cfg != p.Config {
		return fmt.Errorf("alphafold: structure module Backward without a matching Forward pass in the cache: %w", ErrConfig)
	}
	if d == nil {
		d = &StructureModuleOutput[T]{}
	}
	n, cfg := c.n, p.Config
	cs, cz, L := cfg.IPA.CS, cfg.IPA.CZ, cfg.Layers
	const mod = "structure module gradient"
	for _, x := range []struct {
		what  string
		v     []T
		size  int
		shape string
	}{
		{"frames", d.Frames, L * n * 7, fmt.Sprintf("[L N 7] = [%d %d 7]", L, n)},
		{"unnormalized_angles", d.UnnormalizedAngles, L * n * NumAngleOutputs, fmt.Sprintf("[L N 7 2] = [%d %d 7 2]", L, n)},
		{"angles", d.Angles, L * n * NumAngleOutputs, fmt.Sprintf("[L N 7 2] = [%d %d 7 2]", L, n)},
		{"positions", d.Positions, L * n * residue.NumAtom14 * 3, fmt.Sprintf("[L N 14 3] = [%d %d 14 3]", L, n)},
		{"states", d.States, L * n * cs, fmt.Sprintf("[L N c_s] = [%d %d %d]", L, n, cs)},
		{"single", d.Single, n * cs, fmt.Sprintf("[N c_s] = [%d %d]", n, cs)},
	} {
		if x.v != nil {
			if err := smCheckInput(mod, x.what, x.v, x.size, x.shape); err != nil {
				return err
			}
		}
	}
	if d.SidechainFrames != nil {
		if len(d.SidechainFrames) != L*n*residue.NumGroups {
			return fmt.Errorf("alphafold: %s: sidechain_frames has %d frames, want [L N 8] = %d: %w", mod, len(d.SidechainFrames), L*n*residue.NumGroups, num.ErrShape)
		}
		for i, f := range d.SidechainFrames {
			if err := num.CheckFinite(fmt.Sprintf("alphafold: %s: sidechain_frames[%d]", mod, i), append(f.Rot[:], f.Trans[:]...)); err != nil {
				return err
			}
		}
	}
	for _, x := range []struct {
		what  string
		v     []T
		size  int
		shape string
	}{
		{"dSingle", dSingle, n * cs, fmt.Sprintf("[N c_s] = [%d %d]", n, cs)},
		{"dPair", dPair, n * n * cz, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)},
		{"dInitialFrames", dInitialFrames, 7 * n, fmt.Sprintf("[N 7] = [%d 7]", n)},
	} {
		if x.v != nil {
			if err := num.CheckLen("alphafold: structure module "+x.what, x.v, x.size, x.shape); err != nil {
				return err
			}
		}
	}
	if g != nil {
		if g.Config != p.Config {
			return fmt.Errorf("alphafold: structure module gradient has config %+v, want %+v: %w", g.Config, p.Config, ErrConfig)
		}
		if err := g.check(); err != nil {
			return err
		}
	}
	return p.backward(c, d, dSingle, dPair, dInitialFrames, g)
}

// backward is Backward on validated arguments.
func (p *StructureModuleParams[T]) backward(c *StructureModuleCache[T], d *StructureModuleOutput[T], dSingle, dPair, dInitialFrames []T, g *StructureModuleParams[T]) error {
	cfg := p.Config
	n := c.n
	cs, L := cfg.IPA.CS, cfg.Layers
	scale := T(cfg.PositionScale)
	na, n14 := n*NumAngleOutputs, n*residue.NumAtom14*3

	// Gradient accumulators of the parameter groups (nil when g is nil).
	var gIPA *ipa.Params[T]
	var gAttLN, gTransLN *nn.LayerNormParams[T]
	var gAffine *nn.LinearParams[T]
	var gRes *AngleResnetParams[T]
	if g != nil {
		gIPA, gAttLN, gTransLN, gAffine, gRes = &g.IPA, &g.AttentionLayerNorm, &g.TransitionLayerNorm, &g.AffineUpdate, &g.Sidechain
	}

	ds := make([]T, n*cs)     // ∂L/∂(state leaving the iteration)
	dt := make([][3]T, n)     // ∂L/∂(translation leaving the iteration), nm
	dsInit := make([]T, n*cs) // ∂L/∂s_initial, summed over iterations
	dz := make([]T, len(c.z)) // ∂L/∂z, summed over iterations
	da1 := make([]T, n*cs)    // scratch
	dx1 := make([]T, n*cs)    // scratch
	dh := make([]T, n*cs)     // scratch
	dpre := make([]T, n*cs)   // scratch
	dsIn := make([]T, n*cs)   // ∂L/∂(state entering the iteration)
	dq := make([]rigid.Quat[T], n)
	dRot := make([][9]T, n)
	dframes := make([]rigid.Rigid[T], n)
	var dq0 []rigid.Quat[T] // ∂L/∂(initial quaternions)
	if dInitialFrames != nil {
		dq0 = make([]rigid.Quat[T], n)
	}
	if d.Single != nil {
		copy(ds, d.Single)
	}
	for k := L - 1; k >= 0; k-- {
		it := &c.iters[k]
		sOut := c.s[k+1]
		if d.States != nil {
			smAdd(ds, d.States[k*n*cs:(k+1)*n*cs])
		}
		// Side chains: positions → group frames → backbone frame and angles.
		dAll := make([]rigid.Rigid[T], n*residue.NumGroups)
		if d.SidechainFrames != nil {
			copy(dAll, d.SidechainFrames[k*n*residue.NumGroups:(k+1)*n*residue.NumGroups])
		}
		if d.Positions != nil {
			dp, err := rigid.Atom14PositionsVJP(c.aatype, d.Positions[k*n14:(k+1)*n14])
			if err != nil {
				return fmt.Errorf("alphafold: structure module: %w", err)
			}
			for i := range dAll {
				for e := range 9 {
					dAll[i].Rot[e] += dp[i].Rot[e]
				}
				for e := range 3 {
					dAll[i].Trans[e] += dp[i].Trans[e]
				}
			}
		}
		dBB, dSinCos, err := rigid.TorsionFramesVJP(it.bb, it.angles, c.aatype, dAll)
		if err != nil {
			return fmt.Errorf("alphafold: structure module: %w", err)
		}
		if d.Angles != nil {
			smAdd(dSinCos, d.Angles[k*na:(k+1)*na])
		}
		var dUn []T
		if d.UnnormalizedAngles != nil {
			dUn = d.UnnormalizedAngles[k*na : (k+1)*na]
		}
		p.Sidechain.backward(&it.resnet, dUn, dSinCos, ds, dsInit, gRes)

		// Frames output and backbone frame: quaternion, rotation and
		// translation (Å → nm: ×scale) of the new frames.
		for i := range n {
			dq[i] = rigid.Quat[T]{}
			if d.Frames != nil {
				f := d.Frames[(k*n+i)*7:]
				dq[i] = rigid.Quat[T]{f[0], f[1], f[2], f[3]}
				for e := range 3 {
					dt[i][e] += scale * f[4+e]
				}
			}
			dRot[i] = dBB[i].Rot
			for e := range 3 {
				dt[i][e] += scale * dBB[i].Trans[e]
			}
		}
		// Backbone update: into s, the affine_update layer and the old
		// translations (the old rotation is detached after iteration 0).
		dtOld := make([][3]T, n)
		var dqOld []rigid.Quat[T]
		if k == 0 && dq0 != nil {
			dqOld = dq0
		}
		smBackboneUpdateBackward(&p.AffineUpdate, gAffine, sOut, n, it.quat, it.trans, it.u, dq, dRot, dt, ds, dqOld, dtOld)

		// s = transition_layer_norm(a2), a2 = x1 + transition(x1).
		clear(dx1) // becomes ∂L/∂a2, then ∂L/∂x1
		p.TransitionLayerNorm.Backward(dx1, gTransLN, it.a2, it.mean2, it.rstd2, ds, n)
		copy(dh, dx1) // ∂L/∂(transition output)
		for l := len(p.Transition) - 1; l >= 0; l-- {
			var gl *nn.LinearParams[T]
			if g != nil {
				gl = &g.Transition[l]
			}
			x := it.x1
			if l > 0 {
				x = it.hidden[l-1]
			}
			clear(dpre)
			p.Transition[l].Backward(dpre, gl, x, dh, n)
			if l == 0 {
				smAdd(dx1, dpre)
				break
			}
			clear(dh)
			nn.ReLUBackward(dh, it.hidden[l-1], dpre)
		}
		// x1 = attention_layer_norm(a1), a1 = s + IPA(s).
		clear(da1)
		p.AttentionLayerNorm.Backward(da1, gAttLN, it.a1, it.mean1, it.rstd1, dx1, n)
		copy(dsIn, da1)
		for i := range dframes {
			dframes[i] = rigid.Rigid[T]{}
		}
		if err := ipa.Backward(&p.IPA, &it.ipa, da1, dsIn, dz, dframes, gIPA); err != nil {
			return fmt.Errorf("alphafold: structure module iteration %d: %w", k, err)
		}
		for i := range n {
			for e := range 3 {
				dtOld[i][e] += dframes[i].Trans[e]
			}
		}
		if k == 0 && dq0 != nil {
			for i := range n {
				gq := rigid.QuatToRotVJP(it.quat[i], dframes[i].Rot)
				for e := range 4 {
					dq0[i][e] += gq[e]
				}
			}
		}
		ds, dsIn = dsIn, ds
		dt = dtOld
	}

	// s[0] = initial_projection(s_initial); s_initial = LN(single); z = LN(pair).
	var gInit *nn.LinearParams[T]
	var gSingleLN, gPairLN *nn.LayerNormParams[T]
	if g != nil {
		gInit, gSingleLN, gPairLN = &g.InitialProjection, &g.SingleLayerNorm, &g.PairLayerNorm
	}
	p.InitialProjection.Backward(dsInit, gInit, c.sInit, ds, n)
	p.SingleLayerNorm.Backward(dSingle, gSingleLN, c.single, c.sMean, c.sRstd, dsInit, n)
	p.PairLayerNorm.Backward(dPair, gPairLN, c.pair, c.zMean, c.zRstd, dz, n*n)
	if dInitialFrames != nil {
		for i := range n {
			for e := range 4 {
				dInitialFrames[7*i+e] += dq0[i][e]
			}
			for e := range 3 {
				dInitialFrames[7*i+4+e] += dt[i][e] / scale
			}
		}
	}
	return nil
}
