package ipa

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// Name is the haiku module name of IPA in AF2's parameter files; its
// parameters sit under
// alphafold/alphafold_iteration/structure_module/fold_iteration/invariant_point_attention/.
const Name = "invariant_point_attention"

// Params holds the parameters of one invariant point attention in AF2's
// layouts (supplement Algorithm 22; AF2's InvariantPointAttention). Field
// names follow the haiku names; H is Config.Heads, C Config.Channels, P_q
// Config.QueryPoints and P_v Config.ValuePoints.
type Params[T num.Float] struct {
	// Config gives the sizes of every array below.
	Config Config
	// QScalar (q_scalar) is [c_s, H·C]; its output reshapes to [H, C].
	QScalar nn.LinearParams[T]
	// KVScalar (kv_scalar) is [c_s, H·2C]; its output reshapes to [H, 2C],
	// the first C channels of a head being its key, the last C its value.
	KVScalar nn.LinearParams[T]
	// QPointLocal (q_point_local) is [c_s, 3·H·P_q]; its output splits into
	// three contiguous thirds, the x, y and z coordinates, each [H, P_q], in
	// the residue's local frame.
	QPointLocal nn.LinearParams[T]
	// KVPointLocal (kv_point_local) is [c_s, 3·H·(P_q+P_v)]: thirds x, y, z,
	// each [H, P_q+P_v]; the first P_q points of a head are key points, the
	// last P_v value points.
	KVPointLocal nn.LinearParams[T]
	// TrainablePointWeights (trainable_point_weights) is [H], the raw head
	// weights: γ_h = softplus(TrainablePointWeights[h]).
	TrainablePointWeights []T
	// Attention2D (attention_2d) is [c_z, H] with bias [H]: the pair bias
	// b_ij^h = z_ij·W[:,h] + B[h].
	Attention2D nn.LinearParams[T]
	// OutputProjection (output_projection) is [H·C + 4·H·P_v + H·c_z, c_s]
	// ([2112, 384] by default). Its input is the concatenation, in this order,
	// of the scalar outputs [H, C], the x, y and z coordinates of the output
	// points (each [H, P_v], local to the residue's frame), the point norms
	// [H, P_v] and the pair outputs [H, c_z].
	OutputProjection nn.LinearParams[T]
}

// linear names one linear layer of Params with its AF2 name and shape.
type linear[T num.Float] struct {
	name    string
	p       *nn.LinearParams[T]
	in, out int
}

// linears lists p's linear layers in AF2's order with the shapes cfg gives.
func (p *Params[T]) linears(cfg Config) []linear[T] {
	h, c, pq, pv := cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints
	return []linear[T]{
		{"q_scalar", &p.QScalar, cfg.CS, h * c},
		{"kv_scalar", &p.KVScalar, cfg.CS, 2 * h * c},
		{"q_point_local", &p.QPointLocal, cfg.CS, 3 * h * pq},
		{"kv_point_local", &p.KVPointLocal, cfg.CS, 3 * h * (pq + pv)},
		{"attention_2d", &p.Attention2D, cfg.CZ, h},
		{"output_projection", &p.OutputProjection, cfg.outputWidth(), cfg.CS},
	}
}

// pointWeightsName is the key of the raw head weights, a parameter that sits
// directly on the IPA module (hence the double slash).
const pointWeightsName = Name + "//trainable_point_weights"

// NewParams returns parameters for cfg initialised as AlphaFold2 does
// (supplement §1.11.4, AF2's InvariantPointAttention with zero_init): the
// four projections and the pair bias with the "linear" initialiser (truncated
// normal, variance 1/fan_in, zero bias), the output projection with zeros (so
// a fresh IPA block adds nothing to s), and the raw point weights with
// log(e − 1), so that every γ_h = softplus(raw) = 1.
//
// The error wraps ErrConfig if cfg is invalid. rng must not be nil.
func NewParams[T num.Float](cfg Config, rng *rand.Rand) (*Params[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("ipa: NewParams: nil random source: %w", ErrConfig)
	}
	p := &Params[T]{Config: cfg}
	for _, l := range p.linears(cfg) {
		init := nn.InitLinear
		if l.p == &p.OutputProjection {
			init = nn.InitZeros
		}
		*l.p = nn.NewLinear[T](rng, l.in, l.out, init, true)
	}
	p.TrainablePointWeights = make([]T, cfg.Heads)
	raw := T(math.Log(math.E - 1))
	for i := range p.TrainablePointWeights {
		p.TrainablePointWeights[i] = raw
	}
	return p, nil
}

// LoadParams reads IPA's parameters for cfg from s under AF2's names,
// relative to the parent of the IPA module: s holds
// "invariant_point_attention/q_scalar//weights",
// "invariant_point_attention//trainable_point_weights" and so on. For a
// full AF2 parameter file narrow it first:
//
//	ps, err := ipa.LoadParams[float32](all.Sub("alphafold/alphafold_iteration/structure_module/fold_iteration/"), ipa.DefaultConfig())
//
// Every array's shape is checked against cfg. The error names the key and
// wraps params.ErrMissing for an absent array, num.ErrShape for a wrong shape,
// num.ErrNaN for a non-finite value, or ErrConfig for an invalid cfg.
func LoadParams[T num.Float](s *params.Set, cfg Config) (*Params[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Params[T]{Config: cfg}
	for _, l := range p.linears(cfg) {
		lp, err := nn.LoadLinear[T](s, Name+"/"+l.name, l.in, l.out, true)
		if err != nil {
			return nil, fmt.Errorf("ipa: %w", err)
		}
		*l.p = lp
	}
	w, err := params.Get[T](s, pointWeightsName, cfg.Heads)
	if err != nil {
		return nil, fmt.Errorf("ipa: %w", err)
	}
	if err := num.CheckFinite(pointWeightsName, w); err != nil {
		return nil, fmt.Errorf("ipa: %w", err)
	}
	p.TrainablePointWeights = w
	return p, nil
}

// Save stores p in s under AF2's names, relative to the parent of the IPA
// module and with prefix prepended ("" for the names LoadParams reads), so
// that LoadParams(s.Sub(prefix), p.Config) reads p back. It is how RunCase
// writes parameter gradients.
func (p *Params[T]) Save(s *params.Set, prefix string) error {
	for _, l := range p.linears(p.Config) {
		name := prefix + Name + "/" + l.name
		if err := params.Put(s, name+"//weights", []int{l.in, l.out}, l.p.W); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
		if err := params.Put(s, name+"//bias", []int{l.out}, l.p.B); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
	}
	if err := params.Put(s, prefix+pointWeightsName, []int{p.Config.Heads}, p.TrainablePointWeights); err != nil {
		return fmt.Errorf("ipa: %w", err)
	}
	return nil
}

// ZerosLike returns parameters of p's shapes filled with zeros, the starting
// point of the gradient that Backward accumulates.
func (p *Params[T]) ZerosLike() *Params[T] {
	g := &Params[T]{Config: p.Config}
	src := p.linears(p.Config)
	for i, l := range g.linears(p.Config) {
		*l.p = src[i].p.ZerosLike()
	}
	g.TrainablePointWeights = make([]T, len(p.TrainablePointWeights))
	return g
}

// check returns an error wrapping num.ErrShape if an array of p does not
// have the length its Config implies (Params built by hand can be wrong).
func (p *Params[T]) check() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	for _, l := range p.linears(p.Config) {
		name := Name + "/" + l.name
		if l.p.In != l.in || l.p.Out != l.out {
			return fmt.Errorf("ipa: %s is [%d %d], want [%d %d]: %w", name, l.p.In, l.p.Out, l.in, l.out, num.ErrShape)
		}
		if err := num.CheckLen(name+"//weights", l.p.W, l.in*l.out, fmt.Sprintf("[%d %d]", l.in, l.out)); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
		if err := num.CheckLen(name+"//bias", l.p.B, l.out, fmt.Sprintf("[%d]", l.out)); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
	}
	if err := num.CheckLen(pointWeightsName, p.TrainablePointWeights, p.Config.Heads, fmt.Sprintf("[%d]", p.Config.Heads)); err != nil {
		return fmt.Errorf("ipa: %w", err)
	}
	return nil
}
