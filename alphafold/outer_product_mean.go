package alphafold

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// OuterProductMeanName is the haiku module name of the outer product mean
// under evoformer_iteration/ and extra_msa_stack/.
const OuterProductMeanName = "outer_product_mean"

// OuterProductMeanConfig holds the sizes of an outer product mean
// (supplement Algorithm 10), the update that carries MSA information into
// the pair representation.
type OuterProductMeanConfig struct {
	// CM is the width of the MSA representation it reads (c_m = 256, or
	// c_e = 64 in the extra-MSA stack).
	CM int
	// C is the number of channels of the left and right projections
	// (AF2's num_outer_channel = 32).
	C int
	// CZ is the width of the pair representation it updates (c_z = 128).
	CZ int
	// Eps is added to the number of sequences in which both residues are
	// present before dividing by it (AF2: 1e-3).
	Eps float64
	// Chunk is the number of residues i for which the outer products
	// o_ij = Σ_s a_si ⊗ b_sj (C² values per pair) exist at a time. 0 picks
	// a chunk of about 2²² such values.
	Chunk int
}

// DefaultOuterProductMeanConfig returns AF2's configuration: c_m = 256,
// c = 32, c_z = 128, eps = 1e-3.
func DefaultOuterProductMeanConfig() OuterProductMeanConfig {
	return OuterProductMeanConfig{CM: 256, C: 32, CZ: 128, Eps: 1e-3}
}

// Validate returns an error wrapping ErrConfig if a width is not positive,
// Eps is negative or not finite, or Chunk is negative.
func (c OuterProductMeanConfig) Validate() error {
	if c.CM < 1 || c.C < 1 || c.CZ < 1 || c.Chunk < 0 {
		return fmt.Errorf("alphafold: outer product mean config CM = %d, C = %d, CZ = %d, Chunk = %d: want widths ≥ 1 and Chunk ≥ 0: %w",
			c.CM, c.C, c.CZ, c.Chunk, ErrConfig)
	}
	if !(c.Eps >= 0) || math.IsInf(c.Eps, 0) {
		return fmt.Errorf("alphafold: outer product mean config Eps = %v, want finite and ≥ 0: %w", c.Eps, ErrConfig)
	}
	return nil
}

// chunkResidues returns the number of residues i processed at once.
func (c OuterProductMeanConfig) chunkResidues(n int) int {
	ch := c.Chunk
	if ch == 0 {
		ch = (1 << 22) / max(1, n*c.C*c.C)
	}
	return max(1, min(ch, n))
}

// OuterProductMeanParams holds the parameters of an outer product mean in
// AF2's layouts (AF2's OuterProductMean), with c_m = Config.CM, c =
// Config.C and c_z = Config.CZ.
type OuterProductMeanParams[T num.Float] struct {
	// Config gives the sizes of every array below.
	Config OuterProductMeanConfig
	// LayerNormInput (layer_norm_input) normalises the c_m MSA channels.
	LayerNormInput nn.LayerNormParams[T]
	// LeftProjection (left_projection) is [c_m, c]: a_si = LN(m_si)·W + b.
	LeftProjection nn.LinearParams[T]
	// RightProjection (right_projection) is [c_m, c]: b_sj.
	RightProjection nn.LinearParams[T]
	// OutputW (output_w) is [c, c, c_z], indexed [left channel, right
	// channel, output channel].
	OutputW []T
	// OutputB (output_b) is [c_z].
	OutputB []T
}

// NewOuterProductMeanParams returns an outer product mean for cfg
// initialised as AF2 does: layer norm scale 1 and offset 0, both projections
// with the "linear" initialiser (truncated normal, variance 1/fan_in, zero
// bias), and output_w and output_b zero (AF2's "final" initialiser), so that
// a fresh module returns a zero update.
//
// The error wraps ErrConfig for an invalid cfg or a nil rng.
func NewOuterProductMeanParams[T num.Float](cfg OuterProductMeanConfig, rng *rand.Rand) (*OuterProductMeanParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("alphafold: NewOuterProductMeanParams: nil random source: %w", ErrConfig)
	}
	return &OuterProductMeanParams[T]{
		Config:          cfg,
		LayerNormInput:  nn.NewLayerNorm[T](cfg.CM),
		LeftProjection:  nn.NewLinear[T](rng, cfg.CM, cfg.C, nn.InitLinear, true),
		RightProjection: nn.NewLinear[T](rng, cfg.CM, cfg.C, nn.InitLinear, true),
		OutputW:         make([]T, cfg.C*cfg.C*cfg.CZ),
		OutputB:         make([]T, cfg.CZ),
	}, nil
}

// tensors lists p's arrays with their AF2 names relative to the block.
func (p *OuterProductMeanParams[T]) tensors() []evoTensor[T] {
	cfg := p.Config
	const n = OuterProductMeanName
	ts := evoLayerNormTensors(&p.LayerNormInput, n+"/layer_norm_input", cfg.CM)
	ts = append(ts, evoLinearTensors(&p.LeftProjection, n+"/left_projection", cfg.CM, cfg.C)...)
	ts = append(ts, evoLinearTensors(&p.RightProjection, n+"/right_projection", cfg.CM, cfg.C)...)
	return append(ts,
		evoTensor[T]{n + "//output_w", []int{cfg.C, cfg.C, cfg.CZ}, &p.OutputW},
		evoTensor[T]{n + "//output_b", []int{cfg.CZ}, &p.OutputB},
	)
}

// LoadOuterProductMeanParams reads an outer product mean for cfg from s,
// which holds AF2's names relative to the Evoformer block:
// "outer_product_mean/layer_norm_input//scale",
// "outer_product_mean/left_projection//weights", ...,
// "outer_product_mean//output_w" [c, c, c_z]. Every shape is checked
// against cfg; the error names the key and wraps params.ErrMissing,
// num.ErrShape or num.ErrNaN, or wraps ErrConfig for an invalid cfg.
func LoadOuterProductMeanParams[T num.Float](s *params.Set, cfg OuterProductMeanConfig) (*OuterProductMeanParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &OuterProductMeanParams[T]{Config: cfg}
	if err := evoLoadTensors(s, p.tensors()); err != nil {
		return nil, err
	}
	return p, nil
}

// Save stores p in s under AF2's names with prefix prepended, so that
// LoadOuterProductMeanParams(s.Sub(prefix), p.Config) reads it back.
func (p *OuterProductMeanParams[T]) Save(s *params.Set, prefix string) error {
	return evoSaveTensors(s, prefix, p.tensors())
}

// ZerosLike returns parameters of p's shapes filled with zeros, the starting
// point of the gradient that Backward accumulates.
func (p *OuterProductMeanParams[T]) ZerosLike() *OuterProductMeanParams[T] {
	g := &OuterProductMeanParams[T]{Config: p.Config}
	evoAllocTensors(g.tensors())
	return g
}

// check reports an invalid Config or an array whose length does not match it.
func (p *OuterProductMeanParams[T]) check() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	return evoCheckTensors("outer product mean", p.tensors())
}

// OuterProductMeanCache holds what Backward needs from one Forward call:
// references to the MSA and mask (which must not change until Backward has
// run), the layer-norm statistics, the masked projections a and b
// ([S, N, c] each) and the normaliser [N, N]. The outer products themselves
// are recomputed chunk by chunk. A zero cache is ready to use.
type OuterProductMeanCache[T num.Float] struct {
	msa, mask   []T
	s, n        int
	cfg         OuterProductMeanConfig
	mean, rstd  []T
	left, right []T
	norm        []T
	hasForward  bool
}

// Forward computes the outer product mean (supplement Algorithm 10) and
// writes the update of the pair representation to out [N, N, c_z]:
//
//	a_si = m_si·(LN(msa_si)·W_left + b_left),  b_sj = m_sj·(LN(msa_sj)·W_right + b_right)
//	out_ij = (Σ_s Σ_{c,e} a_sic b_sje output_w[c,e,:] + output_b) / (eps + Σ_s m_si m_sj)
//
// msa is [S, N, c_m] and mask [S, N] (1 present, 0 padding). As in AF2 the
// bias is added before the division by the mask count, and the count gets
// eps = Config.Eps (1e-3), so a pair of residues that share no sequence gets
// output_b/eps. The outer products are formed Config.Chunk residues i at a
// time (two matrix products per chunk), so no [N, N, c, c] tensor exists;
// the layer norm and projections run over row chunks too.
//
// If cache is not nil it is filled for Backward. The error wraps
// num.ErrShape for a length that does not match S, N and Config, num.ErrNaN
// for a non-finite msa or mask, and ErrConfig for invalid parameters. out
// must not overlap the inputs.
func (p *OuterProductMeanParams[T]) Forward(msa, mask []T, s, n int, out []T, cache *OuterProductMeanCache[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	cfg := p.Config
	if s < 1 || n < 1 {
		return fmt.Errorf("alphafold: outer product mean: %d sequences and %d residues, want at least 1 of each: %w", s, n, num.ErrShape)
	}
	if err := evoCheckInput("outer product mean", "msa", msa, s*n*cfg.CM, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, cfg.CM)); err != nil {
		return err
	}
	if err := evoCheckInput("outer product mean", "mask", mask, s*n, fmt.Sprintf("[S N] = [%d %d]", s, n)); err != nil {
		return err
	}
	if err := num.CheckLen("outer product mean output", out, n*n*cfg.CZ, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cfg.CZ)); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	p.forward(msa, mask, s, n, out, cache)
	return nil
}

// opmRowChunk is the number of MSA rows (s, i) layer-normed and projected
// at once.
const opmRowChunk = 4096

// project computes the masked projections a and b [S·N, c] of msa,
// saving the layer-norm statistics in mean and rstd when they are not nil.
func (p *OuterProductMeanParams[T]) project(msa, mask []T, rows int, left, right, mean, rstd []T) {
	cm, c := p.Config.CM, p.Config.C
	ch := min(rows, opmRowChunk)
	ln := make([]T, ch*cm)
	for r0 := 0; r0 < rows; r0 += ch {
		r1 := min(r0+ch, rows)
		nr := r1 - r0
		var mu, rs []T
		if mean != nil {
			mu, rs = mean[r0:r1], rstd[r0:r1]
		}
		p.LayerNormInput.Forward(ln[:nr*cm], msa[r0*cm:r1*cm], nr, mu, rs)
		p.LeftProjection.Forward(left[r0*c:r1*c], ln[:nr*cm], nr)
		p.RightProjection.Forward(right[r0*c:r1*c], ln[:nr*cm], nr)
	}
	for r := range rows {
		m := mask[r]
		l, rr := left[r*c:(r+1)*c], right[r*c:(r+1)*c]
		for k := range l {
			l[k] *= m
			rr[k] *= m
		}
	}
}

// normaliser returns eps + Σ_s m_si m_sj [N, N].
func opmNormaliser[T num.Float](mask []T, s, n int, eps float64) []T {
	norm := make([]T, n*n)
	gemm.Gemm(true, false, n, n, s, 1, mask, n, mask, n, 0, norm, n)
	for k := range norm {
		norm[k] += T(eps)
	}
	return norm
}

// outerChunk writes o[(ii,c),(j,e)] = Σ_s a[s,i0+ii,c] b[s,j,e] for the m
// residues i0 ≤ i < i0+m into o [m·c, N·c] and reorders it into
// pp[(ii,j),(c,e)] [m·N, c²].
func opmOuterChunk[T num.Float](left, right []T, s, n, c, i0, m int, o, pp []T) {
	nc := n * c
	gemm.Gemm(true, false, m*c, nc, s, 1, left[i0*c:], nc, right, nc, 0, o[:m*c*nc], nc)
	cc := c * c
	for ii := range m {
		for a := range c {
			row := o[(ii*c+a)*nc : (ii*c+a+1)*nc]
			for j := range n {
				copy(pp[(ii*n+j)*cc+a*c:(ii*n+j)*cc+(a+1)*c], row[j*c:(j+1)*c])
			}
		}
	}
}

// forward is Forward on validated arguments.
func (p *OuterProductMeanParams[T]) forward(msa, mask []T, s, n int, out []T, cache *OuterProductMeanCache[T]) {
	cfg := p.Config
	c, cz := cfg.C, cfg.CZ
	rows := s * n
	left, right := make([]T, rows*c), make([]T, rows*c)
	var mean, rstd []T
	if cache != nil {
		mean, rstd = make([]T, rows), make([]T, rows)
	}
	p.project(msa, mask, rows, left, right, mean, rstd)
	norm := opmNormaliser(mask, s, n, cfg.Eps)
	ci := cfg.chunkResidues(n)
	o := make([]T, ci*c*n*c)
	pp := make([]T, ci*n*c*c)
	for i0 := 0; i0 < n; i0 += ci {
		m := min(ci, n-i0)
		opmOuterChunk(left, right, s, n, c, i0, m, o, pp)
		z := out[i0*n*cz : (i0+m)*n*cz]
		nn.Linear(z, pp[:m*n*c*c], m*n, c*c, cz, p.OutputW, p.OutputB)
		for r := range m * n {
			inv := 1 / norm[i0*n+r]
			zr := z[r*cz : (r+1)*cz]
			for k := range zr {
				zr[k] *= inv
			}
		}
	}
	if cache != nil {
		*cache = OuterProductMeanCache[T]{msa: msa, mask: mask, s: s, n: n, cfg: cfg,
			mean: mean, rstd: rstd, left: left, right: right, norm: norm, hasForward: true}
	}
}

// Backward computes the gradients of the outer product mean for the Forward
// call that filled cache, given dout = ∂L/∂out [N, N, c_z]. It accumulates
// (+=) the gradient with respect to msa into dmsa [S, N, c_m] (nil to skip)
// and, when g is not nil, the parameter gradients into g (start from
// p.ZerosLike()). The mask gets no gradient. The outer products are
// recomputed chunk by chunk. The error wraps num.ErrShape for a length that
// does not match, num.ErrNaN for a non-finite dout, and ErrConfig if the
// cache holds no forward pass of p's configuration.
func (p *OuterProductMeanParams[T]) Backward(cache *OuterProductMeanCache[T], dout, dmsa []T, g *OuterProductMeanParams[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	cfg := p.Config
	if cache == nil || !cache.hasForward || cache.cfg.CM != cfg.CM || cache.cfg.C != cfg.C || cache.cfg.CZ != cfg.CZ {
		return fmt.Errorf("alphafold: outer product mean Backward without a matching Forward pass in the cache: %w", ErrConfig)
	}
	s, n := cache.s, cache.n
	if err := evoCheckInput("outer product mean", "dout", dout, n*n*cfg.CZ, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cfg.CZ)); err != nil {
		return err
	}
	if dmsa != nil {
		if err := num.CheckLen("outer product mean dmsa", dmsa, s*n*cfg.CM, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, cfg.CM)); err != nil {
			return fmt.Errorf("alphafold: %w", err)
		}
	}
	if g != nil {
		if g.Config.CM != cfg.CM || g.Config.C != cfg.C || g.Config.CZ != cfg.CZ {
			return fmt.Errorf("alphafold: outer product mean gradient has config %+v, want %+v: %w", g.Config, cfg, ErrConfig)
		}
		if err := g.check(); err != nil {
			return err
		}
	}
	p.backward(cache, dout, dmsa, g)
	return nil
}

// backward is Backward on validated arguments.
func (p *OuterProductMeanParams[T]) backward(cache *OuterProductMeanCache[T], dout, dmsa []T, g *OuterProductMeanParams[T]) {
	cfg := p.Config
	cm, c, cz := cfg.CM, cfg.C, cfg.CZ
	s, n := cache.s, cache.n
	left, right, norm := cache.left, cache.right, cache.norm
	nc, cc := n*c, c*c
	rows := s * n
	dleft, dright := make([]T, rows*c), make([]T, rows*c)
	ci := cfg.chunkResidues(n)
	o := make([]T, ci*c*nc)
	pp := make([]T, ci*n*cc)
	gz := make([]T, ci*n*cz)
	for i0 := 0; i0 < n; i0 += ci {
		m := min(ci, n-i0)
		// gz = dout / norm for the rows of this chunk.
		for r := range m * n {
			inv := 1 / norm[i0*n+r]
			d := dout[(i0*n+r)*cz : (i0*n+r+1)*cz]
			gr := gz[r*cz : (r+1)*cz]
			for k := range gr {
				gr[k] = d[k] * inv
			}
		}
		opmOuterChunk(left, right, s, n, c, i0, m, o, pp)
		var gw, gb []T
		if g != nil {
			gw, gb = g.OutputW, g.OutputB
		}
		// dP = gz·output_wᵀ overwrites pp after the weight gradient used it.
		nn.LinearBackward(nil, gw, gb, pp[:m*n*cc], p.OutputW, gz[:m*n*cz], m*n, cc, cz)
		gemm.Gemm(false, true, m*n, cc, cz, 1, gz, cz, p.OutputW, cz, 0, pp[:m*n*cc], cc)
		// Reorder dP [(ii,j),(c,e)] into dO [(ii,c),(j,e)].
		for ii := range m {
			for a := range c {
				row := o[(ii*c+a)*nc : (ii*c+a+1)*nc]
				for j := range n {
					copy(row[j*c:(j+1)*c], pp[(ii*n+j)*cc+a*c:(ii*n+j)*cc+(a+1)*c])
				}
			}
		}
		// da[:, chunk] = b·dOᵀ and db += a[:, chunk]·dO, viewing a and b as [S, N·c].
		gemm.Gemm(false, true, s, m*c, nc, 1, right, nc, o[:m*c*nc], nc, 0, dleft[i0*c:], nc)
		gemm.Gemm(false, false, s, nc, m*c, 1, left[i0*c:], nc, o[:m*c*nc], nc, 1, dright, nc)
	}
	mask := cache.mask
	for r := range rows {
		m := mask[r]
		l, rr := dleft[r*c:(r+1)*c], dright[r*c:(r+1)*c]
		for k := range l {
			l[k] *= m
			rr[k] *= m
		}
	}
	var gl, gr *nn.LinearParams[T]
	var gln *nn.LayerNormParams[T]
	if g != nil {
		gl, gr, gln = &g.LeftProjection, &g.RightProjection, &g.LayerNormInput
	}
	ch := min(rows, opmRowChunk)
	ln := make([]T, ch*cm)
	dln := make([]T, ch*cm)
	for r0 := 0; r0 < rows; r0 += ch {
		r1 := min(r0+ch, rows)
		nr := r1 - r0
		xs := cache.msa[r0*cm : r1*cm]
		p.LayerNormInput.Forward(ln[:nr*cm], xs, nr, nil, nil)
		clear(dln[:nr*cm])
		p.LeftProjection.Backward(dln[:nr*cm], gl, ln[:nr*cm], dleft[r0*c:r1*c], nr)
		p.RightProjection.Backward(dln[:nr*cm], gr, ln[:nr*cm], dright[r0*c:r1*c], nr)
		var dx []T
		if dmsa != nil {
			dx = dmsa[r0*cm : r1*cm]
		}
		p.LayerNormInput.Backward(dx, gln, xs, cache.mean[r0:r1], cache.rstd[r0:r1], dln[:nr*cm], nr)
	}
}

// OuterProductMeanFlops returns the floating-point operations of one
// Forward call on S sequences and N residues: the two projections
// (2·2·S·N·c_m·c), the outer products (2·S·N²·c²) and the output
// projection (2·N²·c²·c_z), counting a multiply-add as two.
func OuterProductMeanFlops(cfg OuterProductMeanConfig, s, n int) float64 {
	c := cfg.C
	return 2*gemm.Flops(s*n, c, cfg.CM) + gemm.Flops(n*c, n*c, s) + gemm.Flops(n*n, cfg.CZ, c*c)
}
