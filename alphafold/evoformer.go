package alphafold

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/msaattn"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/triangle"
)

// ErrConfig is returned (wrapped with the offending field) for an invalid
// configuration of an Evoformer part, and when a cache or gradient does not
// belong to the parameters it is used with.
var ErrConfig = errors.New("invalid configuration")

// evoTensor names one parameter array: its AF2 name (relative to the
// parameter set a loader reads), its shape in AF2's layout and the slice of
// a Params struct that holds it. A module's list of tensors is the one place
// that states its names and shapes; checking, saving and the gorgonia
// adapters walk it.
type evoTensor[T num.Float] struct {
	name  string
	shape []int
	data  *[]T
}

func (t evoTensor[T]) size() int {
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// evoLayerNormTensors lists the scale and offset [c] of the layer norm
// called name.
func evoLayerNormTensors[T num.Float](p *nn.LayerNormParams[T], name string, c int) []evoTensor[T] {
	p.C = c
	return []evoTensor[T]{
		{name + "//scale", []int{c}, &p.Scale},
		{name + "//offset", []int{c}, &p.Offset},
	}
}

// evoLinearTensors lists the weights [in, out] and bias [out] of the linear
// layer called name.
func evoLinearTensors[T num.Float](p *nn.LinearParams[T], name string, in, out int) []evoTensor[T] {
	p.In, p.Out = in, out
	return []evoTensor[T]{
		{name + "//weights", []int{in, out}, &p.W},
		{name + "//bias", []int{out}, &p.B},
	}
}

// evoLoadTensors reads every tensor of ts from s by its name and shape and
// checks that its values are finite. Errors name the key.
func evoLoadTensors[T num.Float](s *params.Set, ts []evoTensor[T]) error {
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

// evoAllocTensors gives every tensor of ts a zeroed array of its size, the
// starting point of a gradient.
func evoAllocTensors[T num.Float](ts []evoTensor[T]) {
	for _, t := range ts {
		*t.data = make([]T, t.size())
	}
}

// evoSaveTensors stores every tensor of ts in s under prefix + its name.
func evoSaveTensors[T num.Float](s *params.Set, prefix string, ts []evoTensor[T]) error {
	for _, t := range ts {
		if err := params.Put(s, prefix+t.name, t.shape, *t.data); err != nil {
			return fmt.Errorf("alphafold: %w", err)
		}
	}
	return nil
}

// evoCheckTensors reports an array whose length does not match its shape
// (num.ErrShape). module names the module for the message.
func evoCheckTensors[T num.Float](module string, ts []evoTensor[T]) error {
	for _, t := range ts {
		if len(*t.data) != t.size() {
			return fmt.Errorf("alphafold: %s parameter %s has %d elements, want %v = %d: %w",
				module, t.name, len(*t.data), t.shape, t.size(), num.ErrShape)
		}
	}
	return nil
}

// evoCheckInput reports a length other than n (num.ErrShape) or a
// non-finite value (num.ErrNaN) of the input what; shape describes the
// expected shape for the message.
func evoCheckInput[T num.Float](module, what string, x []T, n int, shape string) error {
	if err := num.CheckLen(module+" "+what, x, n, shape); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	if err := num.CheckFinite(module+" "+what, x); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	return nil
}

// Haiku names of the Evoformer's modules. The block and stack names sit
// under alphafold/alphafold_iteration/evoformer/; the module names under a
// block.
const (
	// EvoformerStackName is the name of the main Evoformer stack, whose
	// parameters carry a leading layer axis (48 layers in AF2).
	EvoformerStackName = "evoformer_iteration"
	// MSARowAttentionName is msaattn's row attention with pair bias.
	MSARowAttentionName = "msa_row_attention_with_pair_bias"
	// MSAColumnAttentionName is msaattn's column attention (Evoformer).
	MSAColumnAttentionName = "msa_column_attention"
	// MSAColumnGlobalAttentionName is msaattn's global column attention
	// (extra-MSA stack).
	MSAColumnGlobalAttentionName = "msa_column_global_attention"
)

// EvoformerConfig holds the sizes, dropout rates and chunk sizes of one
// Evoformer block (supplement Algorithm 6) or extra-MSA block (Algorithm
// 18). DefaultEvoformerConfig and DefaultExtraMSAConfig return AF2's values;
// the reference cases use reduced widths.
type EvoformerConfig struct {
	// MSAChannels is c_m (256), or c_e (64) in the extra-MSA stack.
	MSAChannels int
	// PairChannels is c_z (128).
	PairChannels int
	// MSAHeads and MSAHeadChannels size the MSA row and column attentions
	// (AF2: 8 heads of 32 channels; 8 of 8 in the extra-MSA stack).
	MSAHeads, MSAHeadChannels int
	// PairHeads and PairHeadChannels size the two triangle attentions
	// (AF2: 4 heads of 32 channels).
	PairHeads, PairHeadChannels int
	// TriMulChannels is the hidden width c of the triangle
	// multiplicative updates (AF2: 128).
	TriMulChannels int
	// OuterChannels is the width c of the outer product mean's projections
	// (AF2: 32).
	OuterChannels int
	// TransitionFactor is n of both transitions (AF2: 4).
	TransitionFactor int
	// GlobalColumn selects global column attention (Algorithm 19) in place
	// of column attention (Algorithm 8): true in the extra-MSA stack.
	GlobalColumn bool

	// RowDropout is the dropout rate on the MSA row attention's update,
	// one mask shared by all sequences (AF2: 0.15, per_row).
	RowDropout float64
	// PairDropout is the dropout rate on the updates of the four triangle
	// modules (AF2: 0.25): the multiplicative updates and the starting-node
	// attention share one mask across rows (per_row), the ending-node
	// attention across columns (per_column). AF2's other modules have rate
	// 0. Dropout applies only when a random source is passed to Forward.
	PairDropout float64

	// TransitionChunk, OuterChunk, TriMulChunk and TriAttChunk bound the
	// memory of the transitions (rows at a time), the outer product mean
	// (residues at a time), the triangle multiplications (hidden channels
	// at a time) and the triangle attentions (rows at a time). 0 lets each
	// module choose; they never change results.
	TransitionChunk, OuterChunk, TriMulChunk, TriAttChunk int
}

// DefaultEvoformerConfig returns AF2's Evoformer block: c_m = 256,
// c_z = 128, MSA attention 8 × 32, pair attention 4 × 32, triangle
// multiplication c = 128, outer product c = 32, transition factor 4, and
// AF2's training dropout (0.15 on MSA row attention, 0.25 on the triangle
// updates).
func DefaultEvoformerConfig() EvoformerConfig {
	return EvoformerConfig{
		MSAChannels: 256, PairChannels: 128,
		MSAHeads: 8, MSAHeadChannels: 32,
		PairHeads: 4, PairHeadChannels: 32,
		TriMulChannels: 128, OuterChannels: 32, TransitionFactor: 4,
		RowDropout: 0.15, PairDropout: 0.25,
	}
}

// Validate returns an error wrapping ErrConfig naming the first field out of
// range: sizes must be positive, chunk sizes non-negative and dropout rates
// in [0, 1).
func (c EvoformerConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MSAChannels", c.MSAChannels}, {"PairChannels", c.PairChannels},
		{"MSAHeads", c.MSAHeads}, {"MSAHeadChannels", c.MSAHeadChannels},
		{"PairHeads", c.PairHeads}, {"PairHeadChannels", c.PairHeadChannels},
		{"TriMulChannels", c.TriMulChannels}, {"OuterChannels", c.OuterChannels},
		{"TransitionFactor", c.TransitionFactor},
	} {
		if f.v < 1 {
			return fmt.Errorf("alphafold: Evoformer config %s = %d, want > 0: %w", f.name, f.v, ErrConfig)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"TransitionChunk", c.TransitionChunk}, {"OuterChunk", c.OuterChunk}, {"TriMulChunk", c.TriMulChunk}, {"TriAttChunk", c.TriAttChunk}} {
		if f.v < 0 {
			return fmt.Errorf("alphafold: Evoformer config %s = %d, want ≥ 0: %w", f.name, f.v, ErrConfig)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"RowDropout", c.RowDropout}, {"PairDropout", c.PairDropout}} {
		if !(f.v >= 0 && f.v < 1) {
			return fmt.Errorf("alphafold: Evoformer config %s = %v, want in [0, 1): %w", f.name, f.v, ErrConfig)
		}
	}
	return nil
}

// The configurations of the block's modules.
func (c EvoformerConfig) rowConfig() msaattn.RowConfig {
	return msaattn.RowConfig{MSAChannels: c.MSAChannels, PairChannels: c.PairChannels, Heads: c.MSAHeads, HeadChannels: c.MSAHeadChannels}
}

func (c EvoformerConfig) columnConfig() msaattn.ColumnConfig {
	return msaattn.ColumnConfig{MSAChannels: c.MSAChannels, Heads: c.MSAHeads, HeadChannels: c.MSAHeadChannels}
}

func (c EvoformerConfig) globalConfig() msaattn.GlobalColumnConfig {
	return msaattn.GlobalColumnConfig{MSAChannels: c.MSAChannels, Heads: c.MSAHeads, HeadChannels: c.MSAHeadChannels}
}

func (c EvoformerConfig) msaTransitionConfig() TransitionConfig {
	return TransitionConfig{C: c.MSAChannels, Factor: c.TransitionFactor, Chunk: c.TransitionChunk}
}

func (c EvoformerConfig) pairTransitionConfig() TransitionConfig {
	return TransitionConfig{C: c.PairChannels, Factor: c.TransitionFactor, Chunk: c.TransitionChunk}
}

func (c EvoformerConfig) outerConfig() OuterProductMeanConfig {
	return OuterProductMeanConfig{CM: c.MSAChannels, C: c.OuterChannels, CZ: c.PairChannels, Eps: 1e-3, Chunk: c.OuterChunk}
}

func (c EvoformerConfig) mulConfig(incoming bool) triangle.MulConfig {
	return triangle.MulConfig{Incoming: incoming, PairChannels: c.PairChannels, HiddenChannels: c.TriMulChannels, ChunkChannels: c.TriMulChunk}
}

func (c EvoformerConfig) attConfig(ending bool) triangle.AttConfig {
	return triangle.AttConfig{Ending: ending, PairChannels: c.PairChannels, Heads: c.PairHeads, HeadChannels: c.PairHeadChannels, ChunkRows: c.TriAttChunk}
}

// EvoformerBlockParams holds the parameters of one Evoformer block
// (Algorithm 6) or extra-MSA block (Algorithm 18) under AF2's module names,
// in the order the block applies them. Exactly one of MSAColumnAttention
// (Config.GlobalColumn false) and MSAColumnGlobalAttention (true) is set.
type EvoformerBlockParams[T num.Float] struct {
	// Config gives the sizes of every module below.
	Config EvoformerConfig
	// MSARowAttention is msa_row_attention_with_pair_bias (Algorithm 7).
	MSARowAttention *msaattn.RowParams[T]
	// MSAColumnAttention is msa_column_attention (Algorithm 8).
	MSAColumnAttention *msaattn.ColumnParams[T]
	// MSAColumnGlobalAttention is msa_column_global_attention
	// (Algorithm 19), the extra-MSA stack's column attention.
	MSAColumnGlobalAttention *msaattn.GlobalColumnParams[T]
	// MSATransition is msa_transition (Algorithm 9).
	MSATransition *TransitionParams[T]
	// OuterProductMean is outer_product_mean (Algorithm 10).
	OuterProductMean *OuterProductMeanParams[T]
	// TriangleMultiplicationOutgoing is triangle_multiplication_outgoing
	// (Algorithm 11).
	TriangleMultiplicationOutgoing *triangle.MulParams[T]
	// TriangleMultiplicationIncoming is triangle_multiplication_incoming
	// (Algorithm 12).
	TriangleMultiplicationIncoming *triangle.MulParams[T]
	// TriangleAttentionStartingNode is triangle_attention_starting_node
	// (Algorithm 13).
	TriangleAttentionStartingNode *triangle.AttParams[T]
	// TriangleAttentionEndingNode is triangle_attention_ending_node
	// (Algorithm 14).
	TriangleAttentionEndingNode *triangle.AttParams[T]
	// PairTransition is pair_transition (Algorithm 15).
	PairTransition *TransitionParams[T]
}

// NewEvoformerBlockParams returns a block for cfg with every module
// initialised as AF2 does (each module's own initialiser; every final
// projection is zero, so a fresh block leaves msa and pair unchanged).
//
// The error wraps ErrConfig for an invalid cfg or a nil rng.
func NewEvoformerBlockParams[T num.Float](cfg EvoformerConfig, rng *rand.Rand) (*EvoformerBlockParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("alphafold: NewEvoformerBlockParams: nil random source: %w", ErrConfig)
	}
	p := &EvoformerBlockParams[T]{Config: cfg}
	var err error
	wrap := func(e error) error { return fmt.Errorf("alphafold: %w", e) }
	if p.MSARowAttention, err = msaattn.NewRowParams[T](cfg.rowConfig(), rng); err != nil {
		return nil, wrap(err)
	}
	if cfg.GlobalColumn {
		if p.MSAColumnGlobalAttention, err = msaattn.NewGlobalColumnParams[T](cfg.globalConfig(), rng); err != nil {
			return nil, wrap(err)
		}
	} else if p.MSAColumnAttention, err = msaattn.NewColumnParams[T](cfg.columnConfig(), rng); err != nil {
		return nil, wrap(err)
	}
	if p.MSATransition, err = NewTransitionParams[T](cfg.msaTransitionConfig(), rng); err != nil {
		return nil, err
	}
	if p.OuterProductMean, err = NewOuterProductMeanParams[T](cfg.outerConfig(), rng); err != nil {
		return nil, err
	}
	if p.TriangleMultiplicationOutgoing, err = triangle.NewMulParams[T](cfg.mulConfig(false), rng); err != nil {
		return nil, wrap(err)
	}
	if p.TriangleMultiplicationIncoming, err = triangle.NewMulParams[T](cfg.mulConfig(true), rng); err != nil {
		return nil, wrap(err)
	}
	if p.TriangleAttentionStartingNode, err = triangle.NewAttParams[T](cfg.attConfig(false), rng); err != nil {
		return nil, wrap(err)
	}
	if p.TriangleAttentionEndingNode, err = triangle.NewAttParams[T](cfg.attConfig(true), rng); err != nil {
		return nil, wrap(err)
	}
	if p.PairTransition, err = NewTransitionParams[T](cfg.pairTransitionConfig(), rng); err != nil {
		return nil, err
	}
	return p, nil
}

// LoadEvoformerBlockParams reads one block for cfg from s, which holds AF2's
// names relative to the block: "msa_row_attention_with_pair_bias/...",
// "msa_column_attention/..." (or "msa_column_global_attention/..." with
// cfg.GlobalColumn), "msa_transition/...", "outer_product_mean/...",
// "triangle_multiplication_outgoing/...", "triangle_multiplication_incoming/...",
// "triangle_attention_starting_node/...", "triangle_attention_ending_node/..."
// and "pair_transition/...", without a layer axis. For layer k of a released
// file:
//
//	stack := all.Sub("alphafold/alphafold_iteration/evoformer/evoformer_iteration/")
//	layer, err := stack.Layer(k)
//	p, err := alphafold.LoadEvoformerBlockParams[float32](layer, alphafold.DefaultEvoformerConfig())
//
// Every shape is checked against cfg; the error names the key and wraps
// params.ErrMissing, num.ErrShape or num.ErrNaN, or wraps ErrConfig for an
// invalid cfg.
func LoadEvoformerBlockParams[T num.Float](s *params.Set, cfg EvoformerConfig) (*EvoformerBlockParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &EvoformerBlockParams[T]{Config: cfg}
	var err error
	wrap := func(e error) error { return fmt.Errorf("alphafold: %w", e) }
	if p.MSARowAttention, err = msaattn.LoadRowParams[T](s.Sub(msaattn.RowPrefix), cfg.rowConfig()); err != nil {
		return nil, wrap(err)
	}
	if cfg.GlobalColumn {
		if p.MSAColumnGlobalAttention, err = msaattn.LoadGlobalColumnParams[T](s.Sub(msaattn.GlobalColumnPrefix), cfg.globalConfig()); err != nil {
			return nil, wrap(err)
		}
	} else if p.MSAColumnAttention, err = msaattn.LoadColumnParams[T](s.Sub(msaattn.ColumnPrefix), cfg.columnConfig()); err != nil {
		return nil, wrap(err)
	}
	if p.MSATransition, err = LoadTransitionParams[T](s, MSATransitionName, cfg.msaTransitionConfig()); err != nil {
		return nil, err
	}
	if p.OuterProductMean, err = LoadOuterProductMeanParams[T](s, cfg.outerConfig()); err != nil {
		return nil, err
	}
	if p.TriangleMultiplicationOutgoing, err = triangle.LoadMulParams[T](s, cfg.mulConfig(false)); err != nil {
		return nil, wrap(err)
	}
	if p.TriangleMultiplicationIncoming, err = triangle.LoadMulParams[T](s, cfg.mulConfig(true)); err != nil {
		return nil, wrap(err)
	}
	if p.TriangleAttentionStartingNode, err = triangle.LoadAttParams[T](s, cfg.attConfig(false)); err != nil {
		return nil, wrap(err)
	}
	if p.TriangleAttentionEndingNode, err = triangle.LoadAttParams[T](s, cfg.attConfig(true)); err != nil {
		return nil, wrap(err)
	}
	if p.PairTransition, err = LoadTransitionParams[T](s, PairTransitionName, cfg.pairTransitionConfig()); err != nil {
		return nil, err
	}
	return p, nil
}

// evoGatedTensors lists AF2's gated attention arrays under name+"/attention"
// and sets p's sizes.
func evoGatedTensors[T num.Float](p *attn.GatedParams[T], name string, cin, h, c, cout int) []evoTensor[T] {
	p.CIn, p.Heads, p.C, p.COut = cin, h, c, cout
	a := name + "/attention//"
	return []evoTensor[T]{
		{a + "query_w", []int{cin, h, c}, &p.QueryW},
		{a + "key_w", []int{cin, h, c}, &p.KeyW},
		{a + "value_w", []int{cin, h, c}, &p.ValueW},
		{a + "gating_w", []int{cin, h, c}, &p.GatingW},
		{a + "gating_b", []int{h, c}, &p.GatingB},
		{a + "output_w", []int{h, c, cout}, &p.OutputW},
		{a + "output_b", []int{cout}, &p.OutputB},
	}
}

// evoMSATensors converts the listing of an msaattn module (names relative
// to the module's parent, that is to the block).
func evoMSATensors[T num.Float](ts []msaattn.Tensor[T]) []evoTensor[T] {
	out := make([]evoTensor[T], len(ts))
	for i, t := range ts {
		out[i] = evoTensor[T]{t.Name, t.Shape, t.Data}
	}
	return out
}

// evoMulTensors lists a triangle multiplication's arrays.
func evoMulTensors[T num.Float](p *triangle.MulParams[T], cfg triangle.MulConfig) []evoTensor[T] {
	p.Config = cfg
	n := cfg.Name()
	cz, c := cfg.PairChannels, cfg.HiddenChannels
	ts := evoLayerNormTensors(&p.LayerNormInput, n+"/layer_norm_input", cz)
	ts = append(ts, evoLinearTensors(&p.LeftProjection, n+"/left_projection", cz, c)...)
	ts = append(ts, evoLinearTensors(&p.RightProjection, n+"/right_projection", cz, c)...)
	ts = append(ts, evoLinearTensors(&p.LeftGate, n+"/left_gate", cz, c)...)
	ts = append(ts, evoLinearTensors(&p.RightGate, n+"/right_gate", cz, c)...)
	ts = append(ts, evoLayerNormTensors(&p.CenterLayerNorm, n+"/center_layer_norm", c)...)
	ts = append(ts, evoLinearTensors(&p.OutputProjection, n+"/output_projection", c, cz)...)
	return append(ts, evoLinearTensors(&p.GatingLinear, n+"/gating_linear", cz, cz)...)
}

// evoAttTensors lists a triangle attention's arrays.
func evoAttTensors[T num.Float](p *triangle.AttParams[T], cfg triangle.AttConfig) []evoTensor[T] {
	p.Config = cfg
	n := cfg.Name()
	cz, h := cfg.PairChannels, cfg.Heads
	ts := evoLayerNormTensors(&p.QueryNorm, n+"/query_norm", cz)
	ts = append(ts, evoTensor[T]{n + "//feat_2d_weights", []int{cz, h}, &p.FeatTwoDWeights})
	return append(ts, evoGatedTensors(&p.Attention, n, cz, h, cfg.HeadChannels, cz)...)
}

// tensors lists every array of p under AF2's names relative to the block,
// module by module in the block's order. Absent modules are allocated
// empty first, so the list can also size a fresh struct.
func (p *EvoformerBlockParams[T]) tensors() []evoTensor[T] {
	cfg := p.Config
	if p.MSARowAttention == nil {
		p.MSARowAttention = new(msaattn.RowParams[T])
	}
	ts := evoMSATensors(p.MSARowAttention.Tensors(cfg.rowConfig()))
	if cfg.GlobalColumn {
		if p.MSAColumnGlobalAttention == nil {
			p.MSAColumnGlobalAttention = new(msaattn.GlobalColumnParams[T])
		}
		ts = append(ts, evoMSATensors(p.MSAColumnGlobalAttention.Tensors(cfg.globalConfig()))...)
	} else {
		if p.MSAColumnAttention == nil {
			p.MSAColumnAttention = new(msaattn.ColumnParams[T])
		}
		ts = append(ts, evoMSATensors(p.MSAColumnAttention.Tensors(cfg.columnConfig()))...)
	}
	if p.MSATransition == nil {
		p.MSATransition = &TransitionParams[T]{}
	}
	p.MSATransition.Config = cfg.msaTransitionConfig()
	ts = append(ts, p.MSATransition.tensors(MSATransitionName)...)
	if p.OuterProductMean == nil {
		p.OuterProductMean = &OuterProductMeanParams[T]{}
	}
	p.OuterProductMean.Config = cfg.outerConfig()
	ts = append(ts, p.OuterProductMean.tensors()...)
	for _, m := range []struct {
		p        **triangle.MulParams[T]
		incoming bool
	}{{&p.TriangleMultiplicationOutgoing, false}, {&p.TriangleMultiplicationIncoming, true}} {
		if *m.p == nil {
			*m.p = new(triangle.MulParams[T])
		}
		ts = append(ts, evoMulTensors(*m.p, cfg.mulConfig(m.incoming))...)
	}
	for _, m := range []struct {
		p      **triangle.AttParams[T]
		ending bool
	}{{&p.TriangleAttentionStartingNode, false}, {&p.TriangleAttentionEndingNode, true}} {
		if *m.p == nil {
			*m.p = new(triangle.AttParams[T])
		}
		ts = append(ts, evoAttTensors(*m.p, cfg.attConfig(m.ending))...)
	}
	if p.PairTransition == nil {
		p.PairTransition = &TransitionParams[T]{}
	}
	p.PairTransition.Config = cfg.pairTransitionConfig()
	return append(ts, p.PairTransition.tensors(PairTransitionName)...)
}

// Save stores p in s under AF2's names relative to the block with prefix
// prepended, so that LoadEvoformerBlockParams(s.Sub(prefix), p.Config)
// reads it back.
func (p *EvoformerBlockParams[T]) Save(s *params.Set, prefix string) error {
	if err := p.check(); err != nil {
		return err
	}
	return evoSaveTensors(s, prefix, p.tensors())
}

// ZerosLike returns parameters of p's shapes filled with zeros, the starting
// point of the gradient that Backward accumulates.
func (p *EvoformerBlockParams[T]) ZerosLike() *EvoformerBlockParams[T] {
	g := &EvoformerBlockParams[T]{Config: p.Config}
	evoAllocTensors(g.tensors())
	return g
}

// check reports an invalid Config, a missing module or an array whose
// length does not match the Config. It sets the modules' own sizes and
// configurations from Config.
func (p *EvoformerBlockParams[T]) check() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	cfg := p.Config
	missing := p.MSARowAttention == nil || p.MSATransition == nil || p.OuterProductMean == nil ||
		p.TriangleMultiplicationOutgoing == nil || p.TriangleMultiplicationIncoming == nil ||
		p.TriangleAttentionStartingNode == nil || p.TriangleAttentionEndingNode == nil || p.PairTransition == nil ||
		(cfg.GlobalColumn && p.MSAColumnGlobalAttention == nil) || (!cfg.GlobalColumn && p.MSAColumnAttention == nil)
	if missing {
		return fmt.Errorf("alphafold: Evoformer block has a nil module: %w", ErrConfig)
	}
	// The modules' own sizes and configurations are set from Config.
	return evoCheckTensors("Evoformer block", p.tensors())
}

// evoDropout holds the dropout masks of one block pass, each already scaled
// by 1/(1 − rate), or nil where no dropout applies: row [N, c_m] is shared
// by all sequences; mulOut, mulIn and attStart [N, c_z] are shared by all
// rows i (AF2's per_row, indexed by j); attEnd [N, c_z] is shared by all
// columns j (AF2's per_column, indexed by i).
type evoDropout[T num.Float] struct {
	row, mulOut, mulIn, attStart, attEnd []T
}

// evoDropMask draws a mask of size values that keeps each with probability
// 1 − rate and scales the kept ones by 1/(1 − rate), as AF2's apply_dropout
// does; it returns nil for rate 0.
func evoDropMask[T num.Float](rng *rand.Rand, rate float64, size int) []T {
	if rate == 0 {
		return nil
	}
	keep := 1 - rate
	m := make([]T, size)
	for i := range m {
		if rng.Float64() < keep {
			m[i] = T(1 / keep)
		}
	}
	return m
}

// newEvoDropout draws the masks of one block pass on N residues.
func newEvoDropout[T num.Float](cfg EvoformerConfig, n int, rng *rand.Rand) *evoDropout[T] {
	cm, cz := cfg.MSAChannels, cfg.PairChannels
	return &evoDropout[T]{
		row:      evoDropMask[T](rng, cfg.RowDropout, n*cm),
		mulOut:   evoDropMask[T](rng, cfg.PairDropout, n*cz),
		mulIn:    evoDropMask[T](rng, cfg.PairDropout, n*cz),
		attStart: evoDropMask[T](rng, cfg.PairDropout, n*cz),
		attEnd:   evoDropMask[T](rng, cfg.PairDropout, n*cz),
	}
}

// evoApplyDropout multiplies x [A, B, C] by a mask shared over axis 0
// (mask [B, C], sharedRows) or over axis 1 (mask [A, C]). A nil mask leaves
// x unchanged.
func evoApplyDropout[T num.Float](x, mask []T, a, b, c int, sharedRows bool) {
	if mask == nil {
		return
	}
	for i := range a {
		for j := range b {
			var m []T
			if sharedRows {
				m = mask[j*c : (j+1)*c]
			} else {
				m = mask[i*c : (i+1)*c]
			}
			xs := x[(i*b+j)*c : (i*b+j+1)*c]
			for k := range xs {
				xs[k] *= m[k]
			}
		}
	}
}

// evoAdd adds x to dst elementwise.
func evoAdd[T num.Float](dst, x []T) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] += v
	}
}

// evoAddTensors adds the arrays of src to those of dst; both lists come
// from the same listing function, so they correspond one to one.
func evoAddTensors[T num.Float](dst, src []evoTensor[T]) {
	for i := range dst {
		evoAdd(*dst[i].data, *src[i].data)
	}
}

// EvoformerBlockCache holds what Backward needs from one Forward call of a
// block: copies of the MSA and pair representations entering each of the
// nine updates, every module's cache, the masks (referenced, which must not
// change until Backward has run) and the dropout masks. A zero cache is
// ready to use.
type EvoformerBlockCache[T num.Float] struct {
	cfg               EvoformerConfig
	s, n              int
	msaMask, pairMask []T
	m                 [4][]T // inputs of row attention, column attention, MSA transition, outer product mean
	z                 [6][]T // inputs of row attention (bias), the four triangle updates and the pair transition
	row               msaattn.RowCache[T]
	col               msaattn.ColumnCache[T]
	glob              msaattn.GlobalColumnCache[T]
	msaTrans          TransitionCache[T]
	opm               OuterProductMeanCache[T]
	mulOut, mulIn     triangle.MulCache[T]
	attStart, attEnd  triangle.AttCache[T]
	pairTrans         TransitionCache[T]
	drop              *evoDropout[T]
	hasForward        bool
}

// evoCheckBlockInputs validates the block's inputs.
func evoCheckBlockInputs[T num.Float](cfg EvoformerConfig, msa, pair, msaMask, pairMask []T, s, n int) error {
	const mod = "Evoformer block"
	if s < 1 || n < 1 {
		return fmt.Errorf("alphafold: %s: %d sequences and %d residues, want at least 1 of each: %w", mod, s, n, num.ErrShape)
	}
	cm, cz := cfg.MSAChannels, cfg.PairChannels
	if err := evoCheckInput(mod, "msa", msa, s*n*cm, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, cm)); err != nil {
		return err
	}
	if err := evoCheckInput(mod, "pair", pair, n*n*cz, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)); err != nil {
		return err
	}
	if err := evoCheckInput(mod, "msaMask", msaMask, s*n, fmt.Sprintf("[S N] = [%d %d]", s, n)); err != nil {
		return err
	}
	return evoCheckInput(mod, "pairMask", pairMask, n*n, fmt.Sprintf("[N N] = [%d %d]", n, n))
}

// Forward runs one Evoformer block (supplement Algorithm 6), or one
// extra-MSA block (Algorithm 18) when Config.GlobalColumn is set, updating
// msa [S, N, c_m] and pair [N, N, c_z] in place. msaMask is [S, N] and
// pairMask [N, N] (1 present, 0 padding). The nine residual updates run in
// AF2's order:
//
//	m += RowAttentionWithPairBias(m, z)      (Alg. 7; dropout 0.15, shared by rows)
//	m += ColumnAttention(m)                  (Alg. 8, or global column attention, Alg. 19)
//	m += Transition(m)                       (Alg. 9, not masked)
//	z += OuterProductMean(m)                 (Alg. 10)
//	z += TriangleMultiplicationOutgoing(z)   (Alg. 11; dropout 0.25, shared by rows)
//	z += TriangleMultiplicationIncoming(z)   (Alg. 12; dropout 0.25, shared by rows)
//	z += TriangleAttentionStartingNode(z)    (Alg. 13; dropout 0.25, shared by rows)
//	z += TriangleAttentionEndingNode(z)      (Alg. 14; dropout 0.25, shared by columns)
//	z += Transition(z)                       (Alg. 15, not masked)
//
// Dropout is AF2's training-time dropout with Config's rates: it applies
// only when rng is not nil, and is off (inference) when rng is nil. Every
// module evaluates in chunks (Config's chunk sizes), so memory stays near
// a few copies of the pair representation.
//
// If cache is not nil it is filled for Backward; the block then keeps a
// copy of the representations entering each update. The error wraps
// num.ErrShape for a length that does not match S, N and Config, num.ErrNaN
// for a non-finite input, and ErrConfig for invalid parameters; msa and
// pair may then have been partly updated.
func (p *EvoformerBlockParams[T]) Forward(msa, pair, msaMask, pairMask []T, s, n int, rng *rand.Rand, cache *EvoformerBlockCache[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	if err := evoCheckBlockInputs(p.Config, msa, pair, msaMask, pairMask, s, n); err != nil {
		return err
	}
	var drop *evoDropout[T]
	if rng != nil {
		drop = newEvoDropout[T](p.Config, n, rng)
	}
	return p.forward(msa, pair, msaMask, pairMask, s, n, drop, cache)
}

// forward is Forward on validated arguments with the dropout masks given.
func (p *EvoformerBlockParams[T]) forward(msa, pair, msaMask, pairMask []T, s, n int, drop *evoDropout[T], c *EvoformerBlockCache[T]) error {
	cfg := p.Config
	cm, cz := cfg.MSAChannels, cfg.PairChannels
	if drop == nil {
		drop = new(evoDropout[T])
	}
	keep := c != nil
	if keep {
		*c = EvoformerBlockCache[T]{cfg: cfg, s: s, n: n, msaMask: msaMask, pairMask: pairMask, drop: drop}
	}
	// in returns the tensor a module reads: a copy when the cache keeps
	// it, since msa and pair change in place afterwards.
	in := func(x []T) []T {
		if !keep {
			return x
		}
		return append([]T(nil), x...)
	}
	wrap := func(e error) error { return fmt.Errorf("alphafold: Evoformer block: %w", e) }

	// MSA stack: row attention with pair bias, column attention, transition.
	m0, z0 := in(msa), in(pair)
	var rowCache *msaattn.RowCache[T]
	if keep {
		c.m[0], c.z[0], rowCache = m0, z0, &c.row
	}
	row := msaattn.RowAttention[T]{Config: cfg.rowConfig(), Params: p.MSARowAttention}
	u, err := row.Forward(m0, z0, msaMask, s, n, rowCache)
	if err != nil {
		return wrap(err)
	}
	evoApplyDropout(u, drop.row, s, n, cm, true)
	evoAdd(msa, u)

	m1 := in(msa)
	if cfg.GlobalColumn {
		var gc *msaattn.GlobalColumnCache[T]
		if keep {
			gc = &c.glob
		}
		att := msaattn.GlobalColumnAttention[T]{Config: cfg.globalConfig(), Params: p.MSAColumnGlobalAttention}
		u, err = att.Forward(m1, msaMask, s, n, gc)
	} else {
		var cc *msaattn.ColumnCache[T]
		if keep {
			cc = &c.col
		}
		att := msaattn.ColumnAttention[T]{Config: cfg.columnConfig(), Params: p.MSAColumnAttention}
		u, err = att.Forward(m1, msaMask, s, n, cc)
	}
	if err != nil {
		return wrap(err)
	}
	evoAdd(msa, u)

	m2 := in(msa)
	var tc *TransitionCache[T]
	if keep {
		c.m[1], c.m[2], tc = m1, m2, &c.msaTrans
	}
	p.MSATransition.forward(m2, s*n, nil, u, tc)
	evoAdd(msa, u)
	u = nil

	// Communication: the outer product mean carries the MSA into the pair.
	m3 := in(msa)
	var oc *OuterProductMeanCache[T]
	if keep {
		c.m[3], oc = m3, &c.opm
	}
	zu := make([]T, n*n*cz)
	p.OuterProductMean.forward(m3, msaMask, s, n, zu, oc)
	evoAdd(pair, zu)

	// Pair stack: triangle updates and transition.
	mulOut, mulIn := (*triangle.MulCache[T])(nil), (*triangle.MulCache[T])(nil)
	attStart, attEnd := (*triangle.AttCache[T])(nil), (*triangle.AttCache[T])(nil)
	if keep {
		mulOut, mulIn, attStart, attEnd = &c.mulOut, &c.mulIn, &c.attStart, &c.attEnd
	}
	steps := []struct {
		mul        *triangle.MulParams[T]
		att        *triangle.AttParams[T]
		mulCache   *triangle.MulCache[T]
		attCache   *triangle.AttCache[T]
		drop       []T
		sharedRows bool
	}{
		{mul: p.TriangleMultiplicationOutgoing, mulCache: mulOut, drop: drop.mulOut, sharedRows: true},
		{mul: p.TriangleMultiplicationIncoming, mulCache: mulIn, drop: drop.mulIn, sharedRows: true},
		{att: p.TriangleAttentionStartingNode, attCache: attStart, drop: drop.attStart, sharedRows: true},
		{att: p.TriangleAttentionEndingNode, attCache: attEnd, drop: drop.attEnd, sharedRows: false},
	}
	for k, st := range steps {
		zk := in(pair)
		if keep {
			c.z[1+k] = zk
		}
		if st.mul != nil {
			err = triangle.MulForward(st.mul, zk, pairMask, n, zu, st.mulCache)
		} else {
			err = triangle.AttForward(st.att, zk, pairMask, n, zu, st.attCache)
		}
		if err != nil {
			return wrap(err)
		}
		evoApplyDropout(zu, st.drop, n, n, cz, st.sharedRows)
		evoAdd(pair, zu)
	}

	z5 := in(pair)
	var pc *TransitionCache[T]
	if keep {
		c.z[5], pc = z5, &c.pairTrans
	}
	p.PairTransition.forward(z5, n*n, nil, zu, pc)
	evoAdd(pair, zu)
	if keep {
		c.hasForward = true
	}
	return nil
}

// Backward computes the gradients of the block for the Forward call that
// filled cache. On entry dmsa [S, N, c_m] and dpair [N, N, c_z] hold ∂L/∂
// of the block's outputs; on return they hold ∂L/∂ of its inputs msa and
// pair (they are overwritten in place, which lets a stack chain blocks
// without extra buffers). When g is not nil the parameter gradients are
// accumulated (+=) into it (start from p.ZerosLike()). The masks get no
// gradient; dropout masks are those of the Forward call.
//
// The error wraps num.ErrShape for a length that does not match, num.ErrNaN
// for a non-finite gradient, and ErrConfig if the cache holds no forward
// pass of p's configuration or g's configuration differs.
func (p *EvoformerBlockParams[T]) Backward(cache *EvoformerBlockCache[T], dmsa, dpair []T, g *EvoformerBlockParams[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	if cache == nil || !cache.hasForward || cache.cfg != p.Config {
		return fmt.Errorf("alphafold: Evoformer block Backward without a matching Forward pass in the cache: %w", ErrConfig)
	}
	s, n, cm, cz := cache.s, cache.n, p.Config.MSAChannels, p.Config.PairChannels
	const mod = "Evoformer block"
	if err := evoCheckInput(mod, "dmsa", dmsa, s*n*cm, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, cm)); err != nil {
		return err
	}
	if err := evoCheckInput(mod, "dpair", dpair, n*n*cz, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)); err != nil {
		return err
	}
	if g != nil {
		if g.Config != p.Config {
			return fmt.Errorf("alphafold: Evoformer block gradient has config %+v, want %+v: %w", g.Config, p.Config, ErrConfig)
		}
		if err := g.check(); err != nil {
			return err
		}
	}
	return p.backward(cache, dmsa, dpair, g)
}

// backward is Backward on validated arguments.
func (p *EvoformerBlockParams[T]) backward(c *EvoformerBlockCache[T], dm, dz []T, g *EvoformerBlockParams[T]) error {
	cfg := p.Config
	s, n, cm, cz := c.s, c.n, cfg.MSAChannels, cfg.PairChannels
	wrap := func(e error) error { return fmt.Errorf("alphafold: Evoformer block backward: %w", e) }
	// gp picks a module's gradient out of g, or nil without g.
	var gb EvoformerBlockParams[T]
	if g != nil {
		gb = *g
	}
	drop := c.drop
	du := make([]T, n*n*cz)

	// Pair stack, last update first: z_{k+1} = z_k + drop(f(z_k)), so
	// ∂L/∂z_k = ∂L/∂z_{k+1} + f'(z_k)ᵀ·(drop ⊙ ∂L/∂z_{k+1}).
	copy(du, dz)
	p.PairTransition.backward(&c.pairTrans, du, dz, gb.PairTransition)
	steps := []struct {
		mul        *triangle.MulParams[T]
		att        *triangle.AttParams[T]
		gmul       *triangle.MulParams[T]
		gatt       *triangle.AttParams[T]
		mulCache   *triangle.MulCache[T]
		attCache   *triangle.AttCache[T]
		drop       []T
		sharedRows bool
	}{
		{mul: p.TriangleMultiplicationOutgoing, gmul: gb.TriangleMultiplicationOutgoing, mulCache: &c.mulOut, drop: drop.mulOut, sharedRows: true},
		{mul: p.TriangleMultiplicationIncoming, gmul: gb.TriangleMultiplicationIncoming, mulCache: &c.mulIn, drop: drop.mulIn, sharedRows: true},
		{att: p.TriangleAttentionStartingNode, gatt: gb.TriangleAttentionStartingNode, attCache: &c.attStart, drop: drop.attStart, sharedRows: true},
		{att: p.TriangleAttentionEndingNode, gatt: gb.TriangleAttentionEndingNode, attCache: &c.attEnd, drop: drop.attEnd, sharedRows: false},
	}
	for k := len(steps) - 1; k >= 0; k-- {
		st := steps[k]
		copy(du, dz)
		evoApplyDropout(du, st.drop, n, n, cz, st.sharedRows)
		var err error
		if st.mul != nil {
			err = triangle.MulBackward(st.mul, st.mulCache, du, dz, st.gmul)
		} else {
			err = triangle.AttBackward(st.att, st.attCache, du, dz, st.gatt)
		}
		if err != nil {
			return wrap(err)
		}
	}

	// The outer product mean feeds the pair from the MSA.
	p.OuterProductMean.backward(&c.opm, dz, dm, gb.OuterProductMean)

	// MSA stack, last update first.
	mu := make([]T, s*n*cm)
	copy(mu, dm)
	p.MSATransition.backward(&c.msaTrans, mu, dm, gb.MSATransition)

	copy(mu, dm)
	if cfg.GlobalColumn {
		att := msaattn.GlobalColumnAttention[T]{Config: cfg.globalConfig(), Params: p.MSAColumnGlobalAttention}
		gr, err := att.Backward(&c.glob, mu)
		if err != nil {
			return wrap(err)
		}
		evoAdd(dm, gr.MSA)
		if g != nil {
			gc := cfg.globalConfig()
			evoAddTensors(evoMSATensors(g.MSAColumnGlobalAttention.Tensors(gc)), evoMSATensors(gr.Params.Tensors(gc)))
		}
	} else {
		att := msaattn.ColumnAttention[T]{Config: cfg.columnConfig(), Params: p.MSAColumnAttention}
		gr, err := att.Backward(&c.col, mu)
		if err != nil {
			return wrap(err)
		}
		evoAdd(dm, gr.MSA)
		if g != nil {
			cc := cfg.columnConfig()
			evoAddTensors(evoMSATensors(g.MSAColumnAttention.Tensors(cc)), evoMSATensors(gr.Params.Tensors(cc)))
		}
	}

	copy(mu, dm)
	evoApplyDropout(mu, drop.row, s, n, cm, true)
	row := msaattn.RowAttention[T]{Config: cfg.rowConfig(), Params: p.MSARowAttention}
	gr, err := row.Backward(&c.row, mu)
	if err != nil {
		return wrap(err)
	}
	evoAdd(dm, gr.MSA)
	evoAdd(dz, gr.Z)
	if g != nil {
		rc := cfg.rowConfig()
		evoAddTensors(evoMSATensors(g.MSARowAttention.Tensors(rc)), evoMSATensors(gr.Params.Tensors(rc)))
	}
	return nil
}

// EvoformerFlops returns the floating-point operations of one block's
// forward pass on S sequences and N residues with cfg, counting a
// multiply-add as two and only the matrix products and attention
// contractions (layer norms, softmax and gates are O(S·N·c) or O(N²·c) and
// left out): the projections of every module, the attention logits and
// weighted sums (2·2·L²·H·c per attended batch element), the triangle
// contractions (2·N³·c each) and the outer products.
func EvoformerFlops(cfg EvoformerConfig, s, n int) float64 {
	cm, cz := float64(cfg.MSAChannels), float64(cfg.PairChannels)
	S, N := float64(s), float64(n)
	hm := float64(cfg.MSAHeads * cfg.MSAHeadChannels)
	hp := float64(cfg.PairHeads * cfg.PairHeadChannels)
	ct := float64(cfg.TriMulChannels)
	f := float64(cfg.TransitionFactor)
	var fl float64
	// Row attention: q, k, v, gate and output projections, pair bias, and
	// attention over N keys for each of S·N queries.
	fl += 2*S*N*cm*hm*5 + 2*N*N*cz*float64(cfg.MSAHeads) + 4*S*N*N*hm
	// Column attention (global: one query per column, single key/value head).
	if cfg.GlobalColumn {
		c := float64(cfg.MSAHeadChannels)
		fl += 2*S*N*cm*(2*c+2*hm) + 2*N*cm*hm + 4*S*N*hm
	} else {
		fl += 2*S*N*cm*hm*5 + 4*N*S*S*hm
	}
	// Transitions.
	fl += 2 * 2 * S * N * cm * cm * f
	fl += 2 * 2 * N * N * cz * cz * f
	// Outer product mean.
	fl += OuterProductMeanFlops(cfg.outerConfig(), s, n)
	// Triangle multiplications: four projections and gates, the output
	// gate and projection, and the contraction over k.
	fl += 2 * (2*N*N*cz*ct*4 + 2*N*N*cz*cz + 2*N*N*ct*cz + 2*N*N*N*ct)
	// Triangle attentions: projections, pair bias and attention.
	fl += 2 * (2*N*N*cz*hp*5 + 2*N*N*cz*float64(cfg.PairHeads) + 4*N*N*N*hp)
	return fl
}

// EvoformerStack is a stack of Evoformer blocks (the 48 blocks of AF2's
// evoformer_iteration) or extra-MSA blocks (the 4 of extra_msa_stack, when
// Config.GlobalColumn is set), applied in order with their own parameters.
type EvoformerStack[T num.Float] struct {
	// Config is shared by every block.
	Config EvoformerConfig
	// Blocks holds the blocks' parameters in the order they run.
	Blocks []*EvoformerBlockParams[T]
}

// Name returns the haiku name of the stack under
// alphafold/alphafold_iteration/evoformer/: "evoformer_iteration", or
// "extra_msa_stack" when Config.GlobalColumn is set.
func (st *EvoformerStack[T]) Name() string {
	if st.Config.GlobalColumn {
		return ExtraMSAStackName
	}
	return EvoformerStackName
}

// NewEvoformerStack returns a stack of layers blocks for cfg, each
// initialised as NewEvoformerBlockParams does (AF2: 48 blocks, or 4
// extra-MSA blocks with DefaultExtraMSAConfig).
//
// The error wraps ErrConfig for an invalid cfg, layers < 1 or a nil rng.
func NewEvoformerStack[T num.Float](cfg EvoformerConfig, layers int, rng *rand.Rand) (*EvoformerStack[T], error) {
	if layers < 1 {
		return nil, fmt.Errorf("alphafold: Evoformer stack of %d layers, want ≥ 1: %w", layers, ErrConfig)
	}
	st := &EvoformerStack[T]{Config: cfg}
	for range layers {
		b, err := NewEvoformerBlockParams[T](cfg, rng)
		if err != nil {
			return nil, err
		}
		st.Blocks = append(st.Blocks, b)
	}
	return st, nil
}

// LoadEvoformerStack reads a stack for cfg from s, which holds AF2's names
// relative to alphafold/alphafold_iteration/evoformer/: every array under
// "evoformer_iteration/" (or "extra_msa_stack/" with cfg.GlobalColumn) has
// a leading layer axis, whose length (the same for every array) is the
// number of blocks. For a released parameter file:
//
//	evo := all.Sub("alphafold/alphafold_iteration/evoformer/")
//	st, err := alphafold.LoadEvoformerStack[float32](evo, alphafold.DefaultEvoformerConfig())
//	extra, err := alphafold.LoadEvoformerStack[float32](evo, alphafold.DefaultExtraMSAConfig())
//
// The error names the key and wraps params.ErrMissing, num.ErrShape or
// num.ErrNaN, or wraps ErrConfig for an invalid cfg.
func LoadEvoformerStack[T num.Float](s *params.Set, cfg EvoformerConfig) (*EvoformerStack[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st := &EvoformerStack[T]{Config: cfg}
	sub := s.Sub(st.Name() + "/")
	layers, err := sub.Layers()
	if err != nil {
		return nil, fmt.Errorf("alphafold: stack %s: %w", st.Name(), err)
	}
	for k := range layers {
		ls, err := sub.Layer(k)
		if err != nil {
			return nil, fmt.Errorf("alphafold: stack %s: %w", st.Name(), err)
		}
		b, err := LoadEvoformerBlockParams[T](ls, cfg)
		if err != nil {
			return nil, fmt.Errorf("alphafold: stack %s layer %d: %w", st.Name(), k, err)
		}
		st.Blocks = append(st.Blocks, b)
	}
	return st, nil
}

// check reports an empty stack or an invalid block.
func (st *EvoformerStack[T]) check() error {
	if len(st.Blocks) == 0 {
		return fmt.Errorf("alphafold: Evoformer stack has no blocks: %w", ErrConfig)
	}
	for k, b := range st.Blocks {
		if b == nil || b.Config != st.Config {
			return fmt.Errorf("alphafold: Evoformer stack block %d is nil or has another config than the stack: %w", k, ErrConfig)
		}
		if err := b.check(); err != nil {
			return fmt.Errorf("alphafold: Evoformer stack block %d: %w", k, err)
		}
	}
	return nil
}

// Save stores the stack in s under AF2's names relative to
// alphafold/alphafold_iteration/evoformer/ with prefix prepended: every
// array under Name()+"/" with a leading layer axis, so that
// LoadEvoformerStack(s.Sub(prefix), st.Config) reads it back.
func (st *EvoformerStack[T]) Save(s *params.Set, prefix string) error {
	if err := st.check(); err != nil {
		return err
	}
	lists := make([][]evoTensor[T], len(st.Blocks))
	for k, b := range st.Blocks {
		lists[k] = b.tensors()
	}
	for i, t := range lists[0] {
		size := t.size()
		data := make([]T, 0, size*len(lists))
		for _, l := range lists {
			data = append(data, *l[i].data...)
		}
		shape := append([]int{len(lists)}, t.shape...)
		if err := params.Put(s, prefix+st.Name()+"/"+t.name, shape, data); err != nil {
			return fmt.Errorf("alphafold: %w", err)
		}
	}
	return nil
}

// ZerosLike returns a stack of st's shapes filled with zeros, the starting
// point of the gradient that Backward accumulates.
func (st *EvoformerStack[T]) ZerosLike() *EvoformerStack[T] {
	g := &EvoformerStack[T]{Config: st.Config}
	for _, b := range st.Blocks {
		g.Blocks = append(g.Blocks, b.ZerosLike())
	}
	return g
}

// EvoformerStackCache holds what the stack's Backward needs: each block's
// input representations and dropout masks. The blocks' own caches are
// rebuilt during Backward by running each block forward again from its
// saved input (gradient checkpointing per block, as AF2 trains), so the
// stack keeps two copies of msa and pair per block rather than every
// module's intermediates. A zero cache is ready to use.
type EvoformerStackCache[T num.Float] struct {
	s, n              int
	msaMask, pairMask []T
	msa, pair         [][]T
	drop              []*evoDropout[T]
	hasForward        bool
}

// Forward runs the blocks in order (supplement Algorithm 6 for the main
// stack, Algorithm 18 for the extra-MSA stack), updating msa [S, N, c_m]
// and pair [N, N, c_z] in place; see EvoformerBlockParams.Forward for the
// masks, dropout (on only with a non-nil rng) and errors. If cache is not
// nil it is filled for Backward.
func (st *EvoformerStack[T]) Forward(msa, pair, msaMask, pairMask []T, s, n int, rng *rand.Rand, cache *EvoformerStackCache[T]) error {
	if err := st.check(); err != nil {
		return err
	}
	if err := evoCheckBlockInputs(st.Config, msa, pair, msaMask, pairMask, s, n); err != nil {
		return err
	}
	if cache != nil {
		*cache = EvoformerStackCache[T]{s: s, n: n, msaMask: msaMask, pairMask: pairMask}
	}
	for k, b := range st.Blocks {
		var drop *evoDropout[T]
		if rng != nil {
			drop = newEvoDropout[T](st.Config, n, rng)
		}
		if cache != nil {
			cache.msa = append(cache.msa, append([]T(nil), msa...))
			cache.pair = append(cache.pair, append([]T(nil), pair...))
			cache.drop = append(cache.drop, drop)
		}
		if err := b.forward(msa, pair, msaMask, pairMask, s, n, drop, nil); err != nil {
			return fmt.Errorf("alphafold: stack block %d: %w", k, err)
		}
	}
	if cache != nil {
		cache.hasForward = true
	}
	return nil
}

// Backward computes the gradients of the stack for the Forward call that
// filled cache. As for a block, dmsa and dpair hold ∂L/∂ of the stack's
// outputs on entry and ∂L/∂ of its inputs on return; when g is not nil the
// parameter gradients are accumulated into it (start from st.ZerosLike()).
// Each block's forward pass is recomputed from its saved input first. The
// errors are those of EvoformerBlockParams.Backward.
func (st *EvoformerStack[T]) Backward(cache *EvoformerStackCache[T], dmsa, dpair []T, g *EvoformerStack[T]) error {
	if err := st.check(); err != nil {
		return err
	}
	if cache == nil || !cache.hasForward || len(cache.msa) != len(st.Blocks) {
		return fmt.Errorf("alphafold: Evoformer stack Backward without a matching Forward pass in the cache: %w", ErrConfig)
	}
	if g != nil && (g.Config != st.Config || len(g.Blocks) != len(st.Blocks)) {
		return fmt.Errorf("alphafold: Evoformer stack gradient does not match the stack: %w", ErrConfig)
	}
	s, n := cache.s, cache.n
	for k := len(st.Blocks) - 1; k >= 0; k-- {
		b := st.Blocks[k]
		msa := append([]T(nil), cache.msa[k]...)
		pair := append([]T(nil), cache.pair[k]...)
		var bc EvoformerBlockCache[T]
		if err := b.forward(msa, pair, cache.msaMask, cache.pairMask, s, n, cache.drop[k], &bc); err != nil {
			return fmt.Errorf("alphafold: stack block %d: %w", k, err)
		}
		var gb *EvoformerBlockParams[T]
		if g != nil {
			gb = g.Blocks[k]
		}
		if err := b.Backward(&bc, dmsa, dpair, gb); err != nil {
			return fmt.Errorf("alphafold: stack block %d: %w", k, err)
		}
	}
	return nil
}
