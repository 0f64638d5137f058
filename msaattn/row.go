package msaattn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// RowConfig holds the sizes of MSA row-wise gated self-attention with pair
// bias (supplement Algorithm 7).
type RowConfig struct {
	MSAChannels  int // c_m, channels of the MSA representation (AF2: 256)
	PairChannels int // c_z, channels of the pair representation (AF2: 128)
	Heads        int // number of heads (AF2: 8)
	HeadChannels int // c, channels per head (AF2: 32)
}

// DefaultRowConfig returns AF2's sizes: c_m = 256, c_z = 128, 8 heads of 32
// channels.
func DefaultRowConfig() RowConfig {
	return RowConfig{MSAChannels: 256, PairChannels: 128, Heads: 8, HeadChannels: 32}
}

// Validate reports a size that is not positive.
func (c RowConfig) Validate() error {
	return positive("row attention", []string{"MSAChannels", "PairChannels", "Heads", "HeadChannels"},
		c.MSAChannels, c.PairChannels, c.Heads, c.HeadChannels)
}

// RowParams holds the parameters of MSA row attention under AF2's names
// relative to msa_row_attention_with_pair_bias/.
type RowParams[T num.Float] struct {
	QueryNorm       nn.LayerNormParams[T] // query_norm, [c_m]: layer norm of the MSA
	FeatTwoDNorm    nn.LayerNormParams[T] // feat_2d_norm, [c_z]: layer norm of the pair representation
	FeatTwoDWeights []T                   // feat_2d_weights, [c_z, H]: pair bias projection (no bias)
	Attention       attn.GatedParams[T]   // attention//{query_w, ..., output_b}: c_in = c_out = c_m
}

// tensors lists p's arrays with their AF2 names and shapes for cfg.
func (p *RowParams[T]) tensors(cfg RowConfig) []param[T] {
	cm, cz, h := cfg.MSAChannels, cfg.PairChannels, cfg.Heads
	ts := layerNormTensors(&p.QueryNorm, "query_norm", cm)
	ts = append(ts, layerNormTensors(&p.FeatTwoDNorm, "feat_2d_norm", cz)...)
	ts = append(ts, param[T]{"/feat_2d_weights", []int{cz, h}, &p.FeatTwoDWeights})
	return append(ts, gatedTensors(&p.Attention, cm, h, cfg.HeadChannels, cm)...)
}

// NewRowParams returns parameters initialised as AF2 does: layer norms with
// scale 1 and offset 0; feat_2d_weights normal with standard deviation
// c_z^-1/2; the gated attention as attn.NewGated (Glorot-uniform queries,
// keys and values, gates open at sigmoid(1), zero output weights, so that a
// fresh module's update is 0).
func NewRowParams[T num.Float](cfg RowConfig, rng *rand.Rand) (*RowParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cm, cz, h := cfg.MSAChannels, cfg.PairChannels, cfg.Heads
	p := &RowParams[T]{
		QueryNorm:       nn.NewLayerNorm[T](cm),
		FeatTwoDNorm:    nn.NewLayerNorm[T](cz),
		FeatTwoDWeights: make([]T, cz*h),
		Attention:       attn.NewGated[T](rng, cm, h, cfg.HeadChannels, cm),
	}
	sd := 1 / math.Sqrt(float64(cz))
	for i := range p.FeatTwoDWeights {
		p.FeatTwoDWeights[i] = T(sd * rng.NormFloat64())
	}
	return p, nil
}

// LoadRowParams reads row attention's parameters from s, which holds them
// under AF2's names relative to the module (for a release file, take one
// layer of ".../evoformer/evoformer_iteration/" and narrow it with
// Sub("msa_row_attention_with_pair_bias/")). Every shape is checked; errors
// name the key.
func LoadRowParams[T num.Float](s *params.Set, cfg RowConfig) (*RowParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := new(RowParams[T])
	if err := loadTensors(s, RowPrefix, p.tensors(cfg)); err != nil {
		return nil, err
	}
	return p, nil
}

// Store writes copies of p's arrays into s under their AF2 names relative to
// the module (the names LoadRowParams reads), for example to save trained
// parameters; merge s into a whole parameter set with
// Merge(prefix+RowPrefix, s). The error wraps num.ErrShape or num.ErrNaN if
// p does not match cfg.
func (p *RowParams[T]) Store(s *params.Set, cfg RowConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return storeTensors(s, "row attention", RowPrefix, p.tensors(cfg))
}

// RowAttention is MSA row-wise gated self-attention with pair bias
// (supplement Algorithm 7). Every sequence s of the MSA attends along its
// residues, with a bias from the pair representation shared by all
// sequences:
//
//	x = LayerNorm(m),  b^h_ij = LayerNorm(z)_ij·feat_2d_weights^h
//	a^h_sij = softmax_j(c^-1/2·q^h_si·k^h_sj + b^h_ij + 1e9·(mask_sj − 1))
//	out_si = Σ_h (sigmoid(x_si·gating_w^h + gating_b^h) ⊙ Σ_j a^h_sij·v^h_sj)·output_w^h + output_b
//
// with q, k, v the projections of x (attn.GatedForward).
type RowAttention[T num.Float] struct {
	Config RowConfig
	Params *RowParams[T]
}

// RowCache holds what RowAttention.Backward needs from a forward pass. It
// refers to the forward inputs, which must not change before Backward.
type RowCache[T num.Float] struct {
	s, n        int
	msa, z      []T
	mean, rstd  []T // statistics of LayerNorm(msa), [S·N]
	x           []T // LayerNorm(msa), [S·N, c_m]
	zmean, zstd []T // statistics of LayerNorm(z), [N·N]
	gated       attn.GatedCache[T]
}

// check validates the configuration, the parameters and the inputs.
func (m *RowAttention[T]) check(msa, z, msaMask []T, s, n int) error {
	const mod = "row attention"
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if m.Params == nil {
		return fmt.Errorf("msaattn: %s: nil Params", mod)
	}
	if err := checkTensors(mod, RowPrefix, m.Params.tensors(m.Config)); err != nil {
		return err
	}
	if err := checkSizes(mod, s, n); err != nil {
		return err
	}
	if err := checkInput(mod, "msa", msa, s, n, m.Config.MSAChannels); err != nil {
		return err
	}
	if err := checkInput(mod, "z", z, n, n, m.Config.PairChannels); err != nil {
		return err
	}
	return checkInput(mod, "msaMask", msaMask, s, n)
}

// Forward returns the update of the MSA representation msa [S, N, c_m]
// given the pair representation z [N, N, c_z] and the MSA mask msaMask
// [S, N] (Algorithm 7; no residual added). If cache is not nil it is filled
// for Backward.
//
// The attention runs on the streaming core (attn.GatedForward): besides the
// pair bias [H, N, N] no N×N tensor per sequence or head is formed.
func (m *RowAttention[T]) Forward(msa, z, msaMask []T, s, n int, cache *RowCache[T]) ([]T, error) {
	if err := m.check(msa, z, msaMask, s, n); err != nil {
		return nil, err
	}
	p := m.Params
	cm, h := m.Config.MSAChannels, m.Config.Heads

	x := make([]T, s*n*cm)
	mean, rstd := make([]T, s*n), make([]T, s*n)
	p.QueryNorm.Forward(x, msa, s*n, mean, rstd)

	pairBias := make([]T, h*n*n)
	zmean, zstd := make([]T, n*n), make([]T, n*n)
	m.pairBias(pairBias, z, n, zmean, zstd)

	out := make([]T, s*n*cm)
	lay := attn.Layout{Batch: n * cm, Row: cm}
	var gc *attn.GatedCache[T]
	if cache != nil {
		*cache = RowCache[T]{s: s, n: n, msa: msa, z: z, mean: mean, rstd: rstd, x: x, zmean: zmean, zstd: zstd}
		gc = &cache.gated
	}
	if err := attn.GatedForward(&p.Attention, x, lay, s, n, pairBias, msaMask, out, lay, gc); err != nil {
		return nil, fmt.Errorf("msaattn: row attention: %w", err)
	}
	return out, nil
}

// RowGrad holds the gradients of a loss with respect to row attention's
// inputs and parameters. The mask gets none.
type RowGrad[T num.Float] struct {
	MSA    []T // ∂L/∂msa, [S, N, c_m]
	Z      []T // ∂L/∂z, [N, N, c_z]
	Params *RowParams[T]
}

// Backward returns the gradients of a loss L with respect to msa, z and
// every parameter, given dUpdate = ∂L/∂update [S, N, c_m] and the cache of
// the forward pass.
func (m *RowAttention[T]) Backward(cache *RowCache[T], dUpdate []T) (*RowGrad[T], error) {
	const mod = "row attention"
	if cache == nil || cache.x == nil {
		return nil, fmt.Errorf("msaattn: %s: Backward needs the cache of a Forward call", mod)
	}
	if err := m.Config.Validate(); err != nil {
		return nil, err
	}
	if m.Params == nil {
		return nil, fmt.Errorf("msaattn: %s: nil Params", mod)
	}
	if err := checkTensors(mod, RowPrefix, m.Params.tensors(m.Config)); err != nil {
		return nil, err
	}
	s, n := cache.s, cache.n
	cm, cz, h := m.Config.MSAChannels, m.Config.PairChannels, m.Config.Heads
	if len(cache.x) != s*n*cm || len(cache.z) != n*n*cz {
		return nil, fmt.Errorf("msaattn: %s: cache is for other sizes than the configuration: %w", mod, num.ErrShape)
	}
	if err := checkInput(mod, "dUpdate", dUpdate, s, n, cm); err != nil {
		return nil, err
	}
	p := m.Params
	grad := &RowGrad[T]{Params: new(RowParams[T])}
	allocTensors(grad.Params.tensors(m.Config))
	gp := grad.Params

	dx := make([]T, s*n*cm)
	dPairBias := make([]T, h*n*n)
	if err := attn.GatedBackward(&p.Attention, &cache.gated, dUpdate, dx, dPairBias, &gp.Attention); err != nil {
		return nil, fmt.Errorf("msaattn: %s: %w", mod, err)
	}

	grad.Z = make([]T, n*n*cz)
	m.pairBiasBackward(grad.Z, gp, cache.z, n, cache.zmean, cache.zstd, dPairBias)

	grad.MSA = make([]T, s*n*cm)
	p.QueryNorm.Backward(grad.MSA, &gp.QueryNorm, cache.msa, cache.mean, cache.rstd, dx, s*n)
	return grad, nil
}

// pairBias sets b [H, N, N] to the pair bias LayerNorm(z)·feat_2d_weights
// of z [N, N, c_z], chunkRows residue pairs at a time, so that the
// layer-normed pair representation is never held whole (at N = 1024 and
// c_z = 128 it would be 0.5 GB in float32). mean and rstd [N·N] receive the
// layer-norm statistics.
func (m *RowAttention[T]) pairBias(b, z []T, n int, mean, rstd []T) {
	p, cz, h := m.Params, m.Config.PairChannels, m.Config.Heads
	rows := n * n
	zx := make([]T, min(rows, chunkRows)*cz)
	bt := make([]T, min(rows, chunkRows)*h)
	for r0 := 0; r0 < rows; r0 += chunkRows {
		r1 := min(r0+chunkRows, rows)
		nr := r1 - r0
		p.FeatTwoDNorm.Forward(zx[:nr*cz], z[r0*cz:r1*cz], nr, mean[r0:r1], rstd[r0:r1])
		nn.Linear(bt[:nr*h], zx[:nr*cz], nr, cz, h, p.FeatTwoDWeights, nil)
		for r := r0; r < r1; r++ {
			for k, v := range bt[(r-r0)*h : (r-r0+1)*h] {
				b[k*rows+r] = v
			}
		}
	}
}

// pairBiasBackward accumulates into dz [N, N, c_z] and g.FeatTwoDNorm,
// g.FeatTwoDWeights the gradients of pairBias given db [H, N, N],
// recomputing the layer norm chunk by chunk.
func (m *RowAttention[T]) pairBiasBackward(dz []T, g *RowParams[T], z []T, n int, mean, rstd, db []T) {
	p, cz, h := m.Params, m.Config.PairChannels, m.Config.Heads
	rows := n * n
	zx := make([]T, min(rows, chunkRows)*cz)
	dzx := make([]T, min(rows, chunkRows)*cz)
	dbt := make([]T, min(rows, chunkRows)*h)
	for r0 := 0; r0 < rows; r0 += chunkRows {
		r1 := min(r0+chunkRows, rows)
		nr := r1 - r0
		p.FeatTwoDNorm.Forward(zx[:nr*cz], z[r0*cz:r1*cz], nr, nil, nil)
		for r := r0; r < r1; r++ {
			row := dbt[(r-r0)*h : (r-r0+1)*h]
			for k := range row {
				row[k] = db[k*rows+r]
			}
		}
		clear(dzx[:nr*cz])
		nn.LinearBackward(dzx[:nr*cz], g.FeatTwoDWeights, nil, zx[:nr*cz], p.FeatTwoDWeights, dbt[:nr*h], nr, cz, h)
		p.FeatTwoDNorm.Backward(dz[r0*cz:r1*cz], &g.FeatTwoDNorm, z[r0*cz:r1*cz], mean[r0:r1], rstd[r0:r1], dzx[:nr*cz], nr)
	}
}

// transpose sets dst [cols, rows] to the transpose of src [rows, cols].
func transpose[T num.Float](dst, src []T, rows, cols int) {
	for i := range rows {
		for j, v := range src[i*cols : (i+1)*cols] {
			dst[j*rows+i] = v
		}
	}
}
