package msaattn

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// ColumnConfig holds the sizes of MSA column-wise gated self-attention
// (supplement Algorithm 8).
type ColumnConfig struct {
	MSAChannels  int // c_m, channels of the MSA representation (AF2: 256)
	Heads        int // number of heads (AF2: 8)
	HeadChannels int // c, channels per head (AF2: 32)
}

// DefaultColumnConfig returns AF2's sizes: c_m = 256, 8 heads of 32
// channels.
func DefaultColumnConfig() ColumnConfig {
	return ColumnConfig{MSAChannels: 256, Heads: 8, HeadChannels: 32}
}

// Validate reports a size that is not positive.
func (c ColumnConfig) Validate() error {
	return positive("column attention", []string{"MSAChannels", "Heads", "HeadChannels"},
		c.MSAChannels, c.Heads, c.HeadChannels)
}

// ColumnParams holds the parameters of MSA column attention under AF2's
// names relative to msa_column_attention/.
type ColumnParams[T num.Float] struct {
	QueryNorm nn.LayerNormParams[T] // query_norm, [c_m]: layer norm of the MSA
	Attention attn.GatedParams[T]   // attention//{query_w, ..., output_b}: c_in = c_out = c_m
}

// tensors lists p's arrays with their AF2 names and shapes for cfg.
func (p *ColumnParams[T]) tensors(cfg ColumnConfig) []param[T] {
	cm := cfg.MSAChannels
	return append(layerNormTensors(&p.QueryNorm, "query_norm", cm),
		gatedTensors(&p.Attention, cm, cfg.Heads, cfg.HeadChannels, cm)...)
}

// NewColumnParams returns parameters initialised as AF2 does: layer norm
// scale 1 and offset 0, and the gated attention as attn.NewGated
// (Glorot-uniform queries, keys and values, gates open at sigmoid(1), zero
// output weights, so that a fresh module's update is 0).
func NewColumnParams[T num.Float](cfg ColumnConfig, rng *rand.Rand) (*ColumnParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cm := cfg.MSAChannels
	return &ColumnParams[T]{
		QueryNorm: nn.NewLayerNorm[T](cm),
		Attention: attn.NewGated[T](rng, cm, cfg.Heads, cfg.HeadChannels, cm),
	}, nil
}

// LoadColumnParams reads column attention's parameters from s, which holds
// them under AF2's names relative to the module (for a release file, take
// one layer of ".../evoformer/evoformer_iteration/" and narrow it with
// Sub("msa_column_attention/")). Every shape is checked; errors name the
// key.
func LoadColumnParams[T num.Float](s *params.Set, cfg ColumnConfig) (*ColumnParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := new(ColumnParams[T])
	if err := loadTensors(s, ColumnPrefix, p.tensors(cfg)); err != nil {
		return nil, err
	}
	return p, nil
}

// Store writes copies of p's arrays into s under their AF2 names relative to
// the module (the names LoadColumnParams reads), for example to save trained
// parameters; merge s into a whole parameter set with
// Merge(prefix+ColumnPrefix, s). The error wraps num.ErrShape or num.ErrNaN
// if p does not match cfg.
func (p *ColumnParams[T]) Store(s *params.Set, cfg ColumnConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return storeTensors(s, "column attention", ColumnPrefix, p.tensors(cfg))
}

// ColumnAttention is MSA column-wise gated self-attention (supplement
// Algorithm 8). Every residue column n of the MSA attends along its
// sequences:
//
//	x = LayerNorm(m)
//	a^h_nst = softmax_t(c^-1/2·q^h_sn·k^h_tn + 1e9·(mask_tn − 1))
//	out_sn = Σ_h (sigmoid(x_sn·gating_w^h + gating_b^h) ⊙ Σ_t a^h_nst·v^h_tn)·output_w^h + output_b
//
// The columns are read with strides (batch stride c_m, row stride N·c_m), so
// the MSA is never transposed.
type ColumnAttention[T num.Float] struct {
	Config ColumnConfig
	Params *ColumnParams[T]
}

// ColumnCache holds what ColumnAttention.Backward needs from a forward pass.
// It refers to the forward input, which must not change before Backward.
type ColumnCache[T num.Float] struct {
	s, n       int
	msa        []T
	mean, rstd []T // statistics of LayerNorm(msa), [S·N]
	x          []T // LayerNorm(msa), [S·N, c_m]
	gated      attn.GatedCache[T]
}

// check validates the configuration, the parameters and the inputs.
func (m *ColumnAttention[T]) check(msa, msaMask []T, s, n int) error {
	const mod = "column attention"
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if m.Params == nil {
		return fmt.Errorf("msaattn: %s: nil Params", mod)
	}
	if err := checkTensors(mod, ColumnPrefix, m.Params.tensors(m.Config)); err != nil {
		return err
	}
	if err := checkSizes(mod, s, n); err != nil {
		return err
	}
	if err := checkInput(mod, "msa", msa, s, n, m.Config.MSAChannels); err != nil {
		return err
	}
	return checkInput(mod, "msaMask", msaMask, s, n)
}

// Forward returns the update of the MSA representation msa [S, N, c_m] with
// mask msaMask [S, N] (Algorithm 8; no residual added). If cache is not nil
// it is filled for Backward.
//
// The attention runs on the streaming core (attn.GatedForward) with
// Batch = N columns and L = S sequences: no S×S tensor per column or head
// is formed.
func (m *ColumnAttention[T]) Forward(msa, msaMask []T, s, n int, cache *ColumnCache[T]) ([]T, error) {
	if err := m.check(msa, msaMask, s, n); err != nil {
		return nil, err
	}
	p := m.Params
	cm := m.Config.MSAChannels

	x := make([]T, s*n*cm)
	mean, rstd := make([]T, s*n), make([]T, s*n)
	p.QueryNorm.Forward(x, msa, s*n, mean, rstd)
	maskT := make([]T, n*s)
	transpose(maskT, msaMask, s, n)

	out := make([]T, s*n*cm)
	lay := attn.Layout{Batch: cm, Row: n * cm}
	var gc *attn.GatedCache[T]
	if cache != nil {
		*cache = ColumnCache[T]{s: s, n: n, msa: msa, mean: mean, rstd: rstd, x: x}
		gc = &cache.gated
	}
	if err := attn.GatedForward(&p.Attention, x, lay, n, s, nil, maskT, out, lay, gc); err != nil {
		return nil, fmt.Errorf("msaattn: column attention: %w", err)
	}
	return out, nil
}

// ColumnGrad holds the gradients of a loss with respect to column
// attention's input and parameters. The mask gets none.
type ColumnGrad[T num.Float] struct {
	MSA    []T // ∂L/∂msa, [S, N, c_m]
	Params *ColumnParams[T]
}

// Backward returns the gradients of a loss L with respect to msa and every
// parameter, given dUpdate = ∂L/∂update [S, N, c_m] and the cache of the
// forward pass.
func (m *ColumnAttention[T]) Backward(cache *ColumnCache[T], dUpdate []T) (*ColumnGrad[T], error) {
	const mod = "column attention"
	if cache == nil || cache.x == nil {
		return nil, fmt.Errorf("msaattn: %s: Backward needs the cache of a Forward call", mod)
	}
	if err := m.Config.Validate(); err != nil {
		return nil, err
	}
	if m.Params == nil {
		return nil, fmt.Errorf("msaattn: %s: nil Params", mod)
	}
	if err := checkTensors(mod, ColumnPrefix, m.Params.tensors(m.Config)); err != nil {
		return nil, err
	}
	s, n := cache.s, cache.n
	cm := m.Config.MSAChannels
	if len(cache.x) != s*n*cm {
		return nil, fmt.Errorf("msaattn: %s: cache is for other sizes than the configuration: %w", mod, num.ErrShape)
	}
	if err := checkInput(mod, "dUpdate", dUpdate, s, n, cm); err != nil {
		return nil, err
	}
	p := m.Params
	grad := &ColumnGrad[T]{Params: new(ColumnParams[T])}
	allocTensors(grad.Params.tensors(m.Config))

	dx := make([]T, s*n*cm)
	if err := attn.GatedBackward(&p.Attention, &cache.gated, dUpdate, dx, nil, &grad.Params.Attention); err != nil {
		return nil, fmt.Errorf("msaattn: %s: %w", mod, err)
	}
	grad.MSA = make([]T, s*n*cm)
	p.QueryNorm.Backward(grad.MSA, &grad.Params.QueryNorm, cache.msa, cache.mean, cache.rstd, dx, s*n)
	return grad, nil
}
