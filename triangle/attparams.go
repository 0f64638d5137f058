package triangle

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// AttParams holds the parameters of one triangle self-attention
// (Algorithm 13 or 14) in AF2's layouts; the field names follow the haiku
// names under triangle_attention_starting_node/ (or _ending_node/). c_z is
// Config.PairChannels, H Config.Heads and c Config.HeadChannels.
type AttParams[T num.Float] struct {
	// Config gives the sizes of every array below.
	Config AttConfig
	// QueryNorm (query_norm) normalises z: scale and offset [c_z].
	QueryNorm nn.LayerNormParams[T]
	// FeatTwoDWeights (feat_2d_weights, a parameter directly on the
	// module) is [c_z, H], without bias: the pair bias of head h is
	// b_jk^h = LN(z)_jk · FeatTwoDWeights[:, h].
	FeatTwoDWeights []T
	// Attention (attention//query_w, key_w, value_w, gating_w [c_z, H, c],
	// gating_b [H, c], output_w [H, c, c_z], output_b [c_z]) is the gated
	// multi-head attention of internal/attn.
	Attention attn.GatedParams[T]
}

// NewAttParams returns parameters for cfg initialised as AlphaFold2 does
// (supplement §1.11.4, AF2's TriangleAttention): query_norm with scale 1
// and offset 0, feat_2d_weights normal with standard deviation 1/√c_z, and
// the gated attention as attn.NewGated makes it (glorot query, key and
// value weights, gates open at σ(1), zero output weights and bias, so that
// a fresh module adds nothing to z).
//
// The error wraps ErrConfig if cfg is invalid or rng is nil.
func NewAttParams[T num.Float](cfg AttConfig, rng *rand.Rand) (*AttParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("triangle: NewAttParams: nil random source: %w", ErrConfig)
	}
	cz, h := cfg.PairChannels, cfg.Heads
	p := &AttParams[T]{Config: cfg, QueryNorm: nn.NewLayerNorm[T](cz)}
	p.FeatTwoDWeights = make([]T, cz*h)
	sd := 1 / math.Sqrt(float64(cz))
	for i := range p.FeatTwoDWeights {
		p.FeatTwoDWeights[i] = T(sd * rng.NormFloat64())
	}
	p.Attention = attn.NewGated[T](rng, cz, h, cfg.HeadChannels, cz)
	return p, nil
}

// LoadAttParams reads the parameters of the attention cfg describes from s
// under AF2's names, relative to the parent of the module: s holds
// "triangle_attention_starting_node/query_norm//scale",
// "triangle_attention_starting_node//feat_2d_weights",
// "triangle_attention_starting_node/attention//query_w" and so on (or
// "triangle_attention_ending_node/..." when cfg.Ending). For one layer of
// a released AF2 file narrow it first, as for LoadMulParams.
//
// Every array's shape is checked against cfg. The error names the key and
// wraps params.ErrMissing for an absent array, num.ErrShape for a wrong
// shape, num.ErrNaN for a non-finite value, or ErrConfig for an invalid cfg.
func LoadAttParams[T num.Float](s *params.Set, cfg AttConfig) (*AttParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	name := cfg.Name()
	cz, h, c := cfg.PairChannels, cfg.Heads, cfg.HeadChannels
	p := &AttParams[T]{Config: cfg}
	var err error
	if p.QueryNorm, err = nn.LoadLayerNorm[T](s, name+"/query_norm", cz); err != nil {
		return nil, fmt.Errorf("triangle: %w", err)
	}
	key := name + "//feat_2d_weights"
	if p.FeatTwoDWeights, err = params.Get[T](s, key, cz, h); err != nil {
		return nil, fmt.Errorf("triangle: %w", err)
	}
	if err := num.CheckFinite(key, p.FeatTwoDWeights); err != nil {
		return nil, fmt.Errorf("triangle: %w", err)
	}
	if p.Attention, err = attn.LoadGated[T](s.Sub(name+"/attention"), cz, h, c, cz); err != nil {
		return nil, fmt.Errorf("triangle: %s/attention: %w", name, err)
	}
	return p, nil
}

// Save stores p in s under AF2's names relative to the parent of the module,
// with prefix prepended ("" for the names LoadAttParams reads), so that
// LoadAttParams(s.Sub(prefix), p.Config) reads p back. It is how RunCase
// writes parameter gradients.
func (p *AttParams[T]) Save(s *params.Set, prefix string) error {
	cfg := p.Config
	name := prefix + cfg.Name()
	cz, h, c := cfg.PairChannels, cfg.Heads, cfg.HeadChannels
	if err := saveNorm(s, name+"/query_norm", &p.QueryNorm); err != nil {
		return err
	}
	a := &p.Attention
	for _, x := range []struct {
		key   string
		shape []int
		data  []T
	}{
		{"//feat_2d_weights", []int{cz, h}, p.FeatTwoDWeights},
		{"/attention//query_w", []int{cz, h, c}, a.QueryW},
		{"/attention//key_w", []int{cz, h, c}, a.KeyW},
		{"/attention//value_w", []int{cz, h, c}, a.ValueW},
		{"/attention//gating_w", []int{cz, h, c}, a.GatingW},
		{"/attention//gating_b", []int{h, c}, a.GatingB},
		{"/attention//output_w", []int{h, c, cz}, a.OutputW},
		{"/attention//output_b", []int{cz}, a.OutputB},
	} {
		if err := params.Put(s, name+x.key, x.shape, x.data); err != nil {
			return fmt.Errorf("triangle: %w", err)
		}
	}
	return nil
}

// ZerosLike returns parameters of p's shapes filled with zeros, the starting
// point of the gradient that AttBackward accumulates.
func (p *AttParams[T]) ZerosLike() *AttParams[T] {
	return &AttParams[T]{
		Config:          p.Config,
		QueryNorm:       p.QueryNorm.ZerosLike(),
		FeatTwoDWeights: make([]T, len(p.FeatTwoDWeights)),
		Attention:       p.Attention.ZerosLike(),
	}
}

// check returns an error wrapping num.ErrShape if an array of p does not
// have the length its Config implies, or ErrConfig for an invalid Config.
func (p *AttParams[T]) check() error {
	cfg := p.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	name := cfg.Name()
	cz, h, c := cfg.PairChannels, cfg.Heads, cfg.HeadChannels
	if err := checkNorm(name+"/query_norm", &p.QueryNorm, cz); err != nil {
		return err
	}
	if err := num.CheckLen("triangle: "+name+"//feat_2d_weights", p.FeatTwoDWeights, cz*h, fmt.Sprintf("[%d %d]", cz, h)); err != nil {
		return err
	}
	a := &p.Attention
	if a.CIn != cz || a.Heads != h || a.C != c || a.COut != cz {
		return fmt.Errorf("triangle: %s/attention has sizes c_in=%d, heads=%d, c=%d, c_out=%d, want %d, %d, %d, %d: %w",
			name, a.CIn, a.Heads, a.C, a.COut, cz, h, c, cz, num.ErrShape)
	}
	hc := h * c
	for _, x := range []struct {
		key   string
		data  []T
		n     int
		shape string
	}{
		{"query_w", a.QueryW, cz * hc, fmt.Sprintf("[%d %d %d]", cz, h, c)},
		{"key_w", a.KeyW, cz * hc, fmt.Sprintf("[%d %d %d]", cz, h, c)},
		{"value_w", a.ValueW, cz * hc, fmt.Sprintf("[%d %d %d]", cz, h, c)},
		{"gating_w", a.GatingW, cz * hc, fmt.Sprintf("[%d %d %d]", cz, h, c)},
		{"gating_b", a.GatingB, hc, fmt.Sprintf("[%d %d]", h, c)},
		{"output_w", a.OutputW, hc * cz, fmt.Sprintf("[%d %d %d]", h, c, cz)},
		{"output_b", a.OutputB, cz, fmt.Sprintf("[%d]", cz)},
	} {
		if err := num.CheckLen("triangle: "+name+"/attention//"+x.key, x.data, x.n, x.shape); err != nil {
			return err
		}
	}
	return nil
}
