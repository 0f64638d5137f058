package triangle

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// MulParams holds the parameters of one triangle multiplicative update
// (Algorithm 11 or 12) in AF2's layouts; the field names follow the haiku
// names under triangle_multiplication_outgoing/ (or _incoming/). c_z is
// Config.PairChannels and c Config.HiddenChannels; every linear layer has a
// bias and is applied as y = x·W + b.
//
// For the incoming update AF2's code swaps the names relative to the
// supplement: Algorithm 12's a_ij comes from right_projection/right_gate
// and its b_ij from left_projection/left_gate. MulParams keeps AF2's names.
type MulParams[T num.Float] struct {
	// Config gives the sizes of every array below.
	Config MulConfig
	// LayerNormInput (layer_norm_input) normalises z: scale and offset [c_z].
	LayerNormInput nn.LayerNormParams[T]
	// LeftProjection (left_projection) is [c_z, c].
	LeftProjection nn.LinearParams[T]
	// RightProjection (right_projection) is [c_z, c].
	RightProjection nn.LinearParams[T]
	// LeftGate (left_gate) is [c_z, c]; σ of it gates LeftProjection.
	LeftGate nn.LinearParams[T]
	// RightGate (right_gate) is [c_z, c]; σ of it gates RightProjection.
	RightGate nn.LinearParams[T]
	// CenterLayerNorm (center_layer_norm) normalises the contracted
	// edges: scale and offset [c].
	CenterLayerNorm nn.LayerNormParams[T]
	// OutputProjection (output_projection) is [c, c_z].
	OutputProjection nn.LinearParams[T]
	// GatingLinear (gating_linear) is [c_z, c_z]; σ of it, applied to the
	// layer-normed input, gates the output.
	GatingLinear nn.LinearParams[T]
}

// linearSpec names one linear layer of a parameter struct with its AF2
// name, shape and initialiser.
type linearSpec[T num.Float] struct {
	name    string
	p       *nn.LinearParams[T]
	in, out int
	init    nn.Init
}

// normSpec names one layer norm of a parameter struct.
type normSpec[T num.Float] struct {
	name string
	p    *nn.LayerNormParams[T]
	c    int
}

// linears lists p's linear layers with the shapes and AF2 initialisers
// cfg gives (AF2's TriangleMultiplication: the projections "linear", the
// gates "gating", the output projection "final", i.e. zeros).
func (p *MulParams[T]) linears(cfg MulConfig) []linearSpec[T] {
	cz, c := cfg.PairChannels, cfg.HiddenChannels
	return []linearSpec[T]{
		{"left_projection", &p.LeftProjection, cz, c, nn.InitLinear},
		{"right_projection", &p.RightProjection, cz, c, nn.InitLinear},
		{"left_gate", &p.LeftGate, cz, c, nn.InitGating},
		{"right_gate", &p.RightGate, cz, c, nn.InitGating},
		{"output_projection", &p.OutputProjection, c, cz, nn.InitZeros},
		{"gating_linear", &p.GatingLinear, cz, cz, nn.InitGating},
	}
}

// norms lists p's layer norms.
func (p *MulParams[T]) norms(cfg MulConfig) []normSpec[T] {
	return []normSpec[T]{
		{"layer_norm_input", &p.LayerNormInput, cfg.PairChannels},
		{"center_layer_norm", &p.CenterLayerNorm, cfg.HiddenChannels},
	}
}

// NewMulParams returns parameters for cfg initialised as AlphaFold2 does
// (supplement §1.11.4, AF2's TriangleMultiplication): the left and right
// projections with the "linear" initialiser (truncated normal, variance
// 1/fan_in, zero bias), the three gates with "gating" (zero weights, bias 1),
// the output projection with zeros (so a fresh update adds nothing to z),
// and both layer norms with scale 1 and offset 0.
//
// The error wraps ErrConfig if cfg is invalid or rng is nil.
func NewMulParams[T num.Float](cfg MulConfig, rng *rand.Rand) (*MulParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("triangle: NewMulParams: nil random source: %w", ErrConfig)
	}
	p := &MulParams[T]{Config: cfg}
	for _, l := range p.linears(cfg) {
		*l.p = nn.NewLinear[T](rng, l.in, l.out, l.init, true)
	}
	for _, l := range p.norms(cfg) {
		*l.p = nn.NewLayerNorm[T](l.c)
	}
	return p, nil
}

// LoadMulParams reads the parameters of the update cfg describes from s
// under AF2's names, relative to the parent of the module: s holds
// "triangle_multiplication_outgoing/left_projection//weights" and so on (or
// "triangle_multiplication_incoming/..." when cfg.Incoming). For one layer of
// a released AF2 file narrow it first:
//
//	evo := all.Sub("alphafold/alphafold_iteration/evoformer/evoformer_iteration/")
//	layer, err := evo.Layer(0)
//	p, err := triangle.LoadMulParams[float32](layer, triangle.DefaultMulConfig())
//
// Every array's shape is checked against cfg. The error names the key and
// wraps params.ErrMissing for an absent array, num.ErrShape for a wrong
// shape, num.ErrNaN for a non-finite value, or ErrConfig for an invalid cfg.
func LoadMulParams[T num.Float](s *params.Set, cfg MulConfig) (*MulParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &MulParams[T]{Config: cfg}
	name := cfg.Name()
	for _, l := range p.norms(cfg) {
		lp, err := nn.LoadLayerNorm[T](s, name+"/"+l.name, l.c)
		if err != nil {
			return nil, fmt.Errorf("triangle: %w", err)
		}
		*l.p = lp
	}
	for _, l := range p.linears(cfg) {
		lp, err := nn.LoadLinear[T](s, name+"/"+l.name, l.in, l.out, true)
		if err != nil {
			return nil, fmt.Errorf("triangle: %w", err)
		}
		*l.p = lp
	}
	return p, nil
}

// Save stores p in s under AF2's names relative to the parent of the module,
// with prefix prepended ("" for the names LoadMulParams reads), so that
// LoadMulParams(s.Sub(prefix), p.Config) reads p back. It is how RunCase
// writes parameter gradients.
func (p *MulParams[T]) Save(s *params.Set, prefix string) error {
	name := prefix + p.Config.Name() + "/"
	for _, l := range p.norms(p.Config) {
		if err := saveNorm(s, name+l.name, l.p); err != nil {
			return err
		}
	}
	for _, l := range p.linears(p.Config) {
		if err := saveLinear(s, name+l.name, l.p); err != nil {
			return err
		}
	}
	return nil
}

// ZerosLike returns parameters of p's shapes filled with zeros, the starting
// point of the gradient that MulBackward accumulates.
func (p *MulParams[T]) ZerosLike() *MulParams[T] {
	g := &MulParams[T]{Config: p.Config}
	src := p.linears(p.Config)
	for i, l := range g.linears(p.Config) {
		*l.p = src[i].p.ZerosLike()
	}
	srcn := p.norms(p.Config)
	for i, l := range g.norms(p.Config) {
		*l.p = srcn[i].p.ZerosLike()
	}
	return g
}

// check returns an error wrapping num.ErrShape if an array of p does not
// have the length its Config implies (parameters built by hand can be
// wrong), or ErrConfig for an invalid Config.
func (p *MulParams[T]) check() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	name := p.Config.Name() + "/"
	for _, l := range p.norms(p.Config) {
		if err := checkNorm(name+l.name, l.p, l.c); err != nil {
			return err
		}
	}
	for _, l := range p.linears(p.Config) {
		if err := checkLinear(name+l.name, l.p, l.in, l.out); err != nil {
			return err
		}
	}
	return nil
}

// checkLinear checks one linear layer's shape (with bias).
func checkLinear[T num.Float](name string, p *nn.LinearParams[T], in, out int) error {
	if p.In != in || p.Out != out {
		return fmt.Errorf("triangle: %s is [%d %d], want [%d %d]: %w", name, p.In, p.Out, in, out, num.ErrShape)
	}
	if err := num.CheckLen(name+"//weights", p.W, in*out, fmt.Sprintf("[%d %d]", in, out)); err != nil {
		return fmt.Errorf("triangle: %w", err)
	}
	if err := num.CheckLen(name+"//bias", p.B, out, fmt.Sprintf("[%d]", out)); err != nil {
		return fmt.Errorf("triangle: %w", err)
	}
	return nil
}

// checkNorm checks one layer norm's shape.
func checkNorm[T num.Float](name string, p *nn.LayerNormParams[T], c int) error {
	if p.C != c {
		return fmt.Errorf("triangle: %s has %d channels, want %d: %w", name, p.C, c, num.ErrShape)
	}
	if err := num.CheckLen(name+"//scale", p.Scale, c, fmt.Sprintf("[%d]", c)); err != nil {
		return fmt.Errorf("triangle: %w", err)
	}
	if err := num.CheckLen(name+"//offset", p.Offset, c, fmt.Sprintf("[%d]", c)); err != nil {
		return fmt.Errorf("triangle: %w", err)
	}
	return nil
}

// saveLinear stores one linear layer under name//weights and name//bias.
func saveLinear[T num.Float](s *params.Set, name string, p *nn.LinearParams[T]) error {
	if err := params.Put(s, name+"//weights", []int{p.In, p.Out}, p.W); err != nil {
		return fmt.Errorf("triangle: %w", err)
	}
	if err := params.Put(s, name+"//bias", []int{p.Out}, p.B); err != nil {
		return fmt.Errorf("triangle: %w", err)
	}
	return nil
}

// saveNorm stores one layer norm under name//scale and name//offset.
func saveNorm[T num.Float](s *params.Set, name string, p *nn.LayerNormParams[T]) error {
	if err := params.Put(s, name+"//scale", []int{p.C}, p.Scale); err != nil {
		return fmt.Errorf("triangle: %w", err)
	}
	if err := params.Put(s, name+"//offset", []int{p.C}, p.Offset); err != nil {
		return fmt.Errorf("triangle: %w", err)
	}
	return nil
}
