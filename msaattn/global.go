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

// GlobalMaskEps is the epsilon AF2 adds to the number of present sequences
// in the mask-weighted mean of the queries of global column attention
// (utils.mask_mean in AF2's code): q̄ = Σ_s mask_s·x_s / (Σ_s mask_s + 1e-10).
// It keeps a column with no present sequence at q̄ = 0 instead of 0/0.
const GlobalMaskEps = 1e-10

// GlobalColumnConfig holds the sizes of MSA column-wise global attention
// (supplement Algorithm 19), the column attention of AF2's extra-MSA stack.
type GlobalColumnConfig struct {
	MSAChannels  int // c_e, channels of the extra-MSA representation (AF2: 64)
	Heads        int // number of query heads (AF2: 8)
	HeadChannels int // c, channels per head of queries, keys and values (AF2: 8)
}

// DefaultGlobalColumnConfig returns AF2's sizes: c_e = 64, 8 heads of 8
// channels.
func DefaultGlobalColumnConfig() GlobalColumnConfig {
	return GlobalColumnConfig{MSAChannels: 64, Heads: 8, HeadChannels: 8}
}

// Validate reports a size that is not positive.
func (c GlobalColumnConfig) Validate() error {
	return positive("global column attention", []string{"MSAChannels", "Heads", "HeadChannels"},
		c.MSAChannels, c.Heads, c.HeadChannels)
}

// GlobalColumnParams holds the parameters of global column attention under
// AF2's names relative to msa_column_global_attention/. Unlike the gated
// attention of Algorithms 7 and 8, the keys and values have a single head
// shared by all query heads, so KeyW and ValueW have no head axis.
type GlobalColumnParams[T num.Float] struct {
	QueryNorm nn.LayerNormParams[T] // query_norm, [c_e]
	QueryW    []T                   // attention//query_w, [c_e, H, c]
	KeyW      []T                   // attention//key_w, [c_e, c]
	ValueW    []T                   // attention//value_w, [c_e, c]
	GatingW   []T                   // attention//gating_w, [c_e, H, c]
	GatingB   []T                   // attention//gating_b, [H, c]
	OutputW   []T                   // attention//output_w, [H, c, c_e]
	OutputB   []T                   // attention//output_b, [c_e]
}

// tensors lists p's arrays with their AF2 names and shapes for cfg.
func (p *GlobalColumnParams[T]) tensors(cfg GlobalColumnConfig) []param[T] {
	ce, h, c := cfg.MSAChannels, cfg.Heads, cfg.HeadChannels
	return append(layerNormTensors(&p.QueryNorm, "query_norm", ce),
		param[T]{"attention//query_w", []int{ce, h, c}, &p.QueryW},
		param[T]{"attention//key_w", []int{ce, c}, &p.KeyW},
		param[T]{"attention//value_w", []int{ce, c}, &p.ValueW},
		param[T]{"attention//gating_w", []int{ce, h, c}, &p.GatingW},
		param[T]{"attention//gating_b", []int{h, c}, &p.GatingB},
		param[T]{"attention//output_w", []int{h, c, ce}, &p.OutputW},
		param[T]{"attention//output_b", []int{ce}, &p.OutputB},
	)
}

// NewGlobalColumnParams returns parameters initialised as AF2 does: layer
// norm scale 1 and offset 0; query, key and value weights Glorot-uniform
// (haiku's fan_avg variance scaling); gating weights 0 and gating bias 1, so
// that the gates open at sigmoid(1); output weights and bias 0 (AF2's
// zero_init), so that a fresh module's update is 0.
func NewGlobalColumnParams[T num.Float](cfg GlobalColumnConfig, rng *rand.Rand) (*GlobalColumnParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := new(GlobalColumnParams[T])
	allocTensors(p.tensors(cfg))
	p.QueryNorm = nn.NewLayerNorm[T](cfg.MSAChannels)
	ce, h, c := cfg.MSAChannels, cfg.Heads, cfg.HeadChannels
	glorot(rng, p.QueryW, ce, h, c)
	glorot(rng, p.KeyW, ce, c)
	glorot(rng, p.ValueW, ce, c)
	for i := range p.GatingB {
		p.GatingB[i] = 1
	}
	return p, nil
}

// LoadGlobalColumnParams reads global column attention's parameters from s,
// which holds them under AF2's names relative to the module (narrow a
// release file with s.Sub(".../extra_msa_stack/msa_column_global_attention/")
// after taking one layer). Every shape is checked; errors name the key.
func LoadGlobalColumnParams[T num.Float](s *params.Set, cfg GlobalColumnConfig) (*GlobalColumnParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := new(GlobalColumnParams[T])
	if err := loadTensors(s, GlobalColumnPrefix, p.tensors(cfg)); err != nil {
		return nil, err
	}
	return p, nil
}

// Store writes copies of p's arrays into s under their AF2 names relative to
// the module (the names LoadGlobalColumnParams reads), for example to save
// trained parameters; merge s into a whole parameter set with
// Merge(prefix+GlobalColumnPrefix, s). The error wraps num.ErrShape or
// num.ErrNaN if p does not match cfg.
func (p *GlobalColumnParams[T]) Store(s *params.Set, cfg GlobalColumnConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return storeTensors(s, "global column attention", GlobalColumnPrefix, p.tensors(cfg))
}

// GlobalColumnAttention is MSA column-wise global attention (supplement
// Algorithm 19). For every residue column n, with x = LayerNorm(m) and the
// mask m_s of the column's sequences:
//
//	q̄     = Σ_s m_s·x_s / (Σ_s m_s + 1e-10)
//	q^h   = c^-1/2 · q̄·query_w^h,   k_s = x_s·key_w,   v_s = x_s·value_w
//	a^h_s = softmax_s(q^h·k_s + 1e9·(m_s − 1))
//	o^h   = Σ_s a^h_s·v_s
//	out_s = Σ_h (o^h ⊙ sigmoid(x_s·gating_w^h + gating_b^h))·output_w^h + output_b
//
// One query per column and one shared key/value head make it linear in the
// number of sequences S, which is why AF2 uses it on the thousands of
// sequences of the extra MSA.
type GlobalColumnAttention[T num.Float] struct {
	Config GlobalColumnConfig
	Params *GlobalColumnParams[T]
}

// GlobalColumnCache holds what GlobalColumnAttention.Backward needs from a
// forward pass: O(S·N·c) values (the single-head keys and values and the
// layer-norm statistics), not the layer-normed MSA, which Backward
// recomputes. It refers to the forward inputs, which must not change before
// Backward.
type GlobalColumnCache[T num.Float] struct {
	s, n       int
	msa, mask  []T
	mean, rstd []T // layer-norm statistics, [S·N]
	qbar       []T // mask-weighted mean of LayerNorm(msa) per column, [N, c_e]
	inv        []T // 1/(Σ_s mask + eps) per column, [N]
	kv         []T // keys and values interleaved, [S·N, 2c]
	prob       attn.Problem[T]
	o, lse     []T // attention output [N, H·c] and log-sum-exp [N, H]
}

// check validates the configuration, the parameters and the inputs.
func (m *GlobalColumnAttention[T]) check(msa, msaMask []T, s, n int) error {
	const mod = "global column attention"
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if m.Params == nil {
		return fmt.Errorf("msaattn: %s: nil Params", mod)
	}
	if err := checkTensors(mod, GlobalColumnPrefix, m.Params.tensors(m.Config)); err != nil {
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

// keyValueW returns [key_w | value_w] as one [c_e, 2c] matrix, so that one
// product gives the keys and values interleaved.
func (p *GlobalColumnParams[T]) keyValueW(ce, c int) []T {
	w := make([]T, ce*2*c)
	for i := range ce {
		copy(w[i*2*c:], p.KeyW[i*c:(i+1)*c])
		copy(w[i*2*c+c:], p.ValueW[i*c:(i+1)*c])
	}
	return w
}

// Forward returns the update of the extra-MSA representation msa [S, N, c_e]
// with mask msaMask [S, N] (Algorithm 19; no residual added). If cache is
// not nil it is filled for Backward.
//
// Forward streams over the MSA in chunks of chunkRows positions, twice:
// once to form the masked-mean queries, the keys and the values, once (after
// the attention) to form the gated output, recomputing the layer norm of
// each chunk. Besides its inputs and its [S, N, c_e] output it therefore
// holds only the keys and values [S, N, 2c], the layer-norm statistics
// [S, N] and one chunk of activations: O(S·N·c) memory, nothing quadratic
// in S or N. The attention itself runs on the streaming core of
// internal/attn with one query per column (Lq = 1) and one key/value head
// (KVHeads = 1), reading the keys and values with strides.
func (m *GlobalColumnAttention[T]) Forward(msa, msaMask []T, s, n int, cache *GlobalColumnCache[T]) ([]T, error) {
	if err := m.check(msa, msaMask, s, n); err != nil {
		return nil, err
	}
	p := m.Params
	ce, h, c := m.Config.MSAChannels, m.Config.Heads, m.Config.HeadChannels
	hc := h * c
	rows := s * n
	nc := min(rows, chunkRows)

	// Pass 1: layer norm, masked sums of the queries, keys and values.
	mean, rstd := make([]T, rows), make([]T, rows)
	kv := make([]T, rows*2*c)
	kvW := p.keyValueW(ce, c)
	qbar := make([]T, n*ce)
	inv := make([]T, n)
	xbuf := make([]T, nc*ce)
	for r0 := 0; r0 < rows; r0 += chunkRows {
		r1 := min(r0+chunkRows, rows)
		x := xbuf[:(r1-r0)*ce]
		p.QueryNorm.Forward(x, msa[r0*ce:r1*ce], r1-r0, mean[r0:r1], rstd[r0:r1])
		for r := r0; r < r1; r++ {
			w, ni := msaMask[r], r%n
			inv[ni] += w
			if w != 0 {
				axpy(qbar[ni*ce:(ni+1)*ce], w, x[(r-r0)*ce:(r-r0+1)*ce])
			}
		}
		nn.Linear(kv[r0*2*c:r1*2*c], x, r1-r0, ce, 2*c, kvW, nil)
	}
	for ni := range n {
		inv[ni] = 1 / (inv[ni] + GlobalMaskEps)
		scal(qbar[ni*ce:(ni+1)*ce], inv[ni])
	}

	// Queries, scaled by c^-1/2 as AF2 does.
	q := make([]T, n*hc)
	nn.Linear(q, qbar, n, ce, hc, p.QueryW, nil)
	scal(q, T(1/math.Sqrt(float64(c))))

	// The attention core sees Batch = N columns, Lq = 1 query, Lk = S keys
	// read with strides from the [S, N, 2c] keys and values, and the mask
	// transposed to [N, S].
	maskT := make([]T, n*s)
	transpose(maskT, msaMask, s, n)
	kvL := attn.Layout{Batch: 2 * c, Row: n * 2 * c}
	prob := attn.Problem[T]{
		Dims: attn.Dims{Batch: n, Heads: h, Lq: 1, Lk: s, C: c, Cv: c, KVHeads: 1},
		Q:    q, QL: attn.Layout{Batch: hc, Row: hc},
		K: kv, KL: kvL,
		V: kv[c:], VL: kvL,
		Scale:    1,
		KeyMask:  maskT,
		MaskBias: maskBias,
		// One query row: a key tile of logits is only TileK numbers, so
		// long tiles cost nothing and save per-tile overhead.
		TileK: 1024,
	}
	o, lse := make([]T, n*hc), make([]T, n*h)
	if err := attn.Forward(&prob, o, attn.Layout{Batch: hc, Row: hc}, lse); err != nil {
		return nil, fmt.Errorf("msaattn: global column attention: %w", err)
	}

	// Pass 2: gated output, recomputing the layer norm chunk by chunk.
	out := make([]T, rows*ce)
	gbuf := make([]T, nc*hc)
	for r0 := 0; r0 < rows; r0 += chunkRows {
		r1 := min(r0+chunkRows, rows)
		x, g := xbuf[:(r1-r0)*ce], gbuf[:(r1-r0)*hc]
		p.QueryNorm.Forward(x, msa[r0*ce:r1*ce], r1-r0, nil, nil)
		gates(g, x, r1-r0, ce, hc, p.GatingW, p.GatingB)
		for r := r0; r < r1; r++ {
			ni := r % n
			mulInto(g[(r-r0)*hc:(r-r0+1)*hc], o[ni*hc:(ni+1)*hc])
		}
		nn.Linear(out[r0*ce:r1*ce], g, r1-r0, hc, ce, p.OutputW, p.OutputB)
	}

	if cache != nil {
		*cache = GlobalColumnCache[T]{
			s: s, n: n, msa: msa, mask: msaMask,
			mean: mean, rstd: rstd, qbar: qbar, inv: inv, kv: kv,
			prob: prob, o: o, lse: lse,
		}
	}
	return out, nil
}

// GlobalColumnGrad holds the gradients of a loss with respect to global
// column attention's input and parameters. The mask gets none.
type GlobalColumnGrad[T num.Float] struct {
	MSA    []T // ∂L/∂msa, [S, N, c_e]
	Params *GlobalColumnParams[T]
}

// Backward returns the gradients of a loss L with respect to the input msa
// and every parameter, given dUpdate = ∂L/∂update [S, N, c_e] and the cache
// of the forward pass. Like Forward it streams over chunks of positions,
// recomputing the layer norm and the gates, so that besides the gradients
// it holds O(S·N·c) values (the gradients of the keys and values).
func (m *GlobalColumnAttention[T]) Backward(cache *GlobalColumnCache[T], dUpdate []T) (*GlobalColumnGrad[T], error) {
	const mod = "global column attention"
	if cache == nil || cache.kv == nil {
		return nil, fmt.Errorf("msaattn: %s: Backward needs the cache of a Forward call", mod)
	}
	if err := m.check(cache.msa, cache.mask, cache.s, cache.n); err != nil {
		return nil, err
	}
	s, n := cache.s, cache.n
	if err := checkInput(mod, "dUpdate", dUpdate, s, n, m.Config.MSAChannels); err != nil {
		return nil, err
	}
	p := m.Params
	ce, h, c := m.Config.MSAChannels, m.Config.Heads, m.Config.HeadChannels
	hc := h * c
	rows := s * n
	nc := min(rows, chunkRows)
	msa, o := cache.msa, cache.o

	grad := &GlobalColumnGrad[T]{Params: new(GlobalColumnParams[T])}
	allocTensors(grad.Params.tensors(m.Config))
	gp := grad.Params
	// dm collects, in pass 1, the part of ∂L/∂LayerNorm(msa) that flows
	// through the gates; pass 2 adds the rest and turns it into ∂L/∂msa in
	// place, chunk by chunk.
	dm := make([]T, rows*ce)
	do := make([]T, n*hc)

	// Pass 1: gated output, w = g ⊙ o with g = sigmoid(x·gating_w + gating_b).
	xbuf, dxbuf := make([]T, nc*ce), make([]T, nc*ce)
	gbuf, wbuf, dwbuf := make([]T, nc*hc), make([]T, nc*hc), make([]T, nc*hc)
	for r0 := 0; r0 < rows; r0 += chunkRows {
		r1 := min(r0+chunkRows, rows)
		nr := r1 - r0
		x, g, w, dw := xbuf[:nr*ce], gbuf[:nr*hc], wbuf[:nr*hc], dwbuf[:nr*hc]
		p.QueryNorm.Forward(x, msa[r0*ce:r1*ce], nr, nil, nil)
		gates(g, x, nr, ce, hc, p.GatingW, p.GatingB)
		for r := r0; r < r1; r++ {
			i, ni := (r-r0)*hc, r%n
			wr, gr, or := w[i:i+hc], g[i:i+hc], o[ni*hc:(ni+1)*hc]
			for j, gv := range gr {
				wr[j] = gv * or[j]
			}
		}
		clear(dw)
		nn.LinearBackward(dw, gp.OutputW, gp.OutputB, w, p.OutputW, dUpdate[r0*ce:r1*ce], nr, hc, ce)
		// do += dw ⊙ g summed over the column's sequences; dg = dw ⊙ o,
		// times the sigmoid's derivative g(1 − g), is the gradient of the
		// gate pre-activation, kept in w.
		for r := r0; r < r1; r++ {
			i, ni := (r-r0)*hc, r%n
			wr, gr, dr, or, dor := w[i:i+hc], g[i:i+hc], dw[i:i+hc], o[ni*hc:(ni+1)*hc], do[ni*hc:(ni+1)*hc]
			for j, gv := range gr {
				dor[j] += dr[j] * gv
				wr[j] = dr[j] * or[j] * gv * (1 - gv)
			}
		}
		nn.LinearBackward(dm[r0*ce:r1*ce], gp.GatingW, gp.GatingB, x, p.GatingW, w, nr, ce, hc)
	}

	// Attention core: gradients of the queries and of the keys and values.
	dq := make([]T, n*hc)
	dkv := make([]T, rows*2*c)
	if err := attn.Backward(&cache.prob, o, attn.Layout{Batch: hc, Row: hc}, cache.lse, do, dq, dkv, dkv[c:], nil); err != nil {
		return nil, fmt.Errorf("msaattn: %s: %w", mod, err)
	}
	// q = c^-1/2·q̄·query_w.
	scal(dq, T(1/math.Sqrt(float64(c))))
	dqbar := make([]T, n*ce)
	nn.LinearBackward(dqbar, gp.QueryW, nil, cache.qbar, p.QueryW, dq, n, ce, hc)

	// Pass 2: keys and values, the masked mean q̄ = Σ_s mask_s·x_s·inv, and
	// the layer norm.
	kvW := p.keyValueW(ce, c)
	dkvW := make([]T, len(kvW))
	for r0 := 0; r0 < rows; r0 += chunkRows {
		r1 := min(r0+chunkRows, rows)
		nr := r1 - r0
		x, dx := xbuf[:nr*ce], dxbuf[:nr*ce]
		p.QueryNorm.Forward(x, msa[r0*ce:r1*ce], nr, nil, nil)
		copy(dx, dm[r0*ce:r1*ce])
		nn.LinearBackward(dx, dkvW, nil, x, kvW, dkv[r0*2*c:r1*2*c], nr, ce, 2*c)
		for r := r0; r < r1; r++ {
			if w := cache.mask[r]; w != 0 {
				ni := r % n
				axpy(dx[(r-r0)*ce:(r-r0+1)*ce], w*cache.inv[ni], dqbar[ni*ce:(ni+1)*ce])
			}
		}
		dmc := dm[r0*ce : r1*ce]
		clear(dmc)
		p.QueryNorm.Backward(dmc, &gp.QueryNorm, msa[r0*ce:r1*ce], cache.mean[r0:r1], cache.rstd[r0:r1], dx, nr)
	}
	for i := range ce {
		copy(gp.KeyW[i*c:(i+1)*c], dkvW[i*2*c:])
		copy(gp.ValueW[i*c:(i+1)*c], dkvW[i*2*c+c:])
	}
	grad.MSA = dm
	return grad, nil
}

// gates sets g [rows, hc] = sigmoid(x·w + b) for x [rows, cin].
func gates[T num.Float](g, x []T, rows, cin, hc int, w, b []T) {
	nn.Linear(g, x, rows, cin, hc, w, b)
	nn.Sigmoid(g, g)
}
