package recycle

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// ErrConfig is returned (wrapped with the offending field) for an invalid
// configuration, and when a cache or gradient does not belong to the
// parameters it is used with.
var ErrConfig = errors.New("invalid configuration")

// Haiku names of the recycling embedder's layers, which sit directly under
// alphafold/alphafold_iteration/evoformer/ in AF2's parameter files.
const (
	PrevPosLinearName       = "prev_pos_linear"
	PrevMSAFirstRowNormName = "prev_msa_first_row_norm"
	PrevPairNormName        = "prev_pair_norm"
)

// Config holds the sizes of the recycling embedder (supplement Algorithm 32)
// and its distance bins.
type Config struct {
	// CM is c_m, the width of the MSA representation (AF2: 256).
	CM int
	// CZ is c_z, the width of the pair representation (AF2: 128).
	CZ int
	// MinBin and MaxBin are the lower edges, in Å, of the first and last
	// distance bins; the NumBins lower edges are evenly spaced between them
	// (AF2: 3.25 and 20.75, as np.linspace(3.25, 20.75, 15)).
	MinBin, MaxBin float64
	// NumBins is the number of distance bins (AF2: 15).
	NumBins int
	// UpperLast is the upper edge of the last bin, already squared, in Å²
	// (AF2: 1e8, so the last bin is open).
	UpperLast float64
}

// DefaultConfig returns AF2's recycling embedder: c_m = 256, c_z = 128 and
// 15 bins with lower edges linspace(3.25, 20.75, 15) Å, the last bin open
// (upper edge² = 1e8 Å²).
func DefaultConfig() Config {
	return Config{CM: 256, CZ: 128, MinBin: 3.25, MaxBin: 20.75, NumBins: 15, UpperLast: 1e8}
}

// Validate returns an error wrapping ErrConfig naming the first field out of
// range: widths and NumBins must be positive, the bin edges finite with
// 0 ≤ MinBin ≤ MaxBin (MinBin = MaxBin only for one bin) and UpperLast >
// MaxBin².
func (c Config) Validate() error {
	switch {
	case c.CM < 1:
		return fmt.Errorf("recycle: config CM = %d, want > 0: %w", c.CM, ErrConfig)
	case c.CZ < 1:
		return fmt.Errorf("recycle: config CZ = %d, want > 0: %w", c.CZ, ErrConfig)
	case c.NumBins < 1:
		return fmt.Errorf("recycle: config NumBins = %d, want > 0: %w", c.NumBins, ErrConfig)
	case !(c.MinBin >= 0) || math.IsInf(c.MaxBin, 0) || !(c.MaxBin >= c.MinBin) || (c.NumBins > 1 && c.MaxBin == c.MinBin):
		return fmt.Errorf("recycle: config bins [%v, %v] with %d bins, want finite 0 ≤ MinBin < MaxBin: %w", c.MinBin, c.MaxBin, c.NumBins, ErrConfig)
	case !(c.UpperLast > c.MaxBin*c.MaxBin) || math.IsInf(c.UpperLast, 0):
		return fmt.Errorf("recycle: config UpperLast = %v, want finite and > MaxBin² = %v: %w", c.UpperLast, c.MaxBin*c.MaxBin, ErrConfig)
	}
	return nil
}

// SquaredEdges returns the squared lower and upper edges of the distance
// bins, in Å²: lower_k = (MinBin + k·(MaxBin − MinBin)/(NumBins − 1))²,
// upper_k = lower_{k+1} and upper of the last bin UpperLast.
func (c Config) SquaredEdges() (lower, upper []float64) {
	lower = make([]float64, c.NumBins)
	upper = make([]float64, c.NumBins)
	for k := range lower {
		e := c.MinBin
		if c.NumBins > 1 {
			e += float64(k) * (c.MaxBin - c.MinBin) / float64(c.NumBins-1)
		}
		lower[k] = e * e
	}
	copy(upper, lower[1:])
	upper[c.NumBins-1] = c.UpperLast
	return lower, upper
}

// Params holds the recycling embedder's parameters in AF2's layouts.
type Params[T num.Float] struct {
	// Config gives the sizes of every array below.
	Config Config
	// PrevPosLinear (prev_pos_linear) is [NumBins, c_z] with bias [c_z]:
	// it embeds the one-hot distogram of the previous pseudo-β positions.
	PrevPosLinear nn.LinearParams[T]
	// PrevMSAFirstRowNorm (prev_msa_first_row_norm) normalises the
	// previous first MSA row [c_m].
	PrevMSAFirstRowNorm nn.LayerNormParams[T]
	// PrevPairNorm (prev_pair_norm) normalises the previous pair
	// representation [c_z].
	PrevPairNorm nn.LayerNormParams[T]
}

// NewParams returns a recycling embedder for cfg initialised as AF2 does:
// prev_pos_linear with the "linear" initialiser (truncated normal, variance
// 1/fan_in, zero bias) and both layer norms with scale 1 and offset 0.
//
// The error wraps ErrConfig for an invalid cfg or a nil rng.
func NewParams[T num.Float](cfg Config, rng *rand.Rand) (*Params[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("recycle: NewParams: nil random source: %w", ErrConfig)
	}
	return &Params[T]{
		Config:              cfg,
		PrevPosLinear:       nn.NewLinear[T](rng, cfg.NumBins, cfg.CZ, nn.InitLinear, true),
		PrevMSAFirstRowNorm: nn.NewLayerNorm[T](cfg.CM),
		PrevPairNorm:        nn.NewLayerNorm[T](cfg.CZ),
	}, nil
}

// paramTensor names one parameter array with its AF2 name and shape.
type paramTensor[T num.Float] struct {
	name  string
	shape []int
	data  *[]T
}

// tensors lists p's arrays with their AF2 names and shapes.
func (p *Params[T]) tensors() []paramTensor[T] {
	c := p.Config
	p.PrevPosLinear.In, p.PrevPosLinear.Out = c.NumBins, c.CZ
	p.PrevMSAFirstRowNorm.C, p.PrevPairNorm.C = c.CM, c.CZ
	return []paramTensor[T]{
		{PrevPosLinearName + "//weights", []int{c.NumBins, c.CZ}, &p.PrevPosLinear.W},
		{PrevPosLinearName + "//bias", []int{c.CZ}, &p.PrevPosLinear.B},
		{PrevMSAFirstRowNormName + "//scale", []int{c.CM}, &p.PrevMSAFirstRowNorm.Scale},
		{PrevMSAFirstRowNormName + "//offset", []int{c.CM}, &p.PrevMSAFirstRowNorm.Offset},
		{PrevPairNormName + "//scale", []int{c.CZ}, &p.PrevPairNorm.Scale},
		{PrevPairNormName + "//offset", []int{c.CZ}, &p.PrevPairNorm.Offset},
	}
}

// LoadParams reads the recycling embedder for cfg from s, which holds AF2's
// names relative to alphafold/alphafold_iteration/evoformer/:
// "prev_pos_linear//weights" [NumBins, c_z], "prev_pos_linear//bias",
// "prev_msa_first_row_norm//scale" and so on. For a full AF2 parameter file:
//
//	p, err := recycle.LoadParams[float32](all.Sub("alphafold/alphafold_iteration/evoformer/"), recycle.DefaultConfig())
//
// Every shape is checked against cfg. The error names the key and wraps
// params.ErrMissing, num.ErrShape or num.ErrNaN, or wraps ErrConfig for an
// invalid cfg.
func LoadParams[T num.Float](s *params.Set, cfg Config) (*Params[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Params[T]{Config: cfg}
	for _, t := range p.tensors() {
		x, err := params.Get[T](s, t.name, t.shape...)
		if err != nil {
			return nil, fmt.Errorf("recycle: %w", err)
		}
		if err := num.CheckFinite("recycle: parameter "+t.name, x); err != nil {
			return nil, err
		}
		*t.data = x
	}
	return p, nil
}

// Save stores p in s under AF2's names with prefix prepended, so that
// LoadParams(s.Sub(prefix), p.Config) reads it back.
func (p *Params[T]) Save(s *params.Set, prefix string) error {
	for _, t := range p.tensors() {
		if err := params.Put(s, prefix+t.name, t.shape, *t.data); err != nil {
			return fmt.Errorf("recycle: %w", err)
		}
	}
	return nil
}

// ZerosLike returns parameters of p's shapes filled with zeros, the starting
// point of the gradient that Backward accumulates.
func (p *Params[T]) ZerosLike() *Params[T] {
	g := &Params[T]{Config: p.Config}
	for _, t := range g.tensors() {
		n := 1
		for _, d := range t.shape {
			n *= d
		}
		*t.data = make([]T, n)
	}
	return g
}

// check reports an invalid Config or an array whose length does not match it.
func (p *Params[T]) check() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	for _, t := range p.tensors() {
		n := 1
		for _, d := range t.shape {
			n *= d
		}
		if len(*t.data) != n {
			return fmt.Errorf("recycle: parameter %s has %d elements, want %v = %d: %w", t.name, len(*t.data), t.shape, n, num.ErrShape)
		}
	}
	return nil
}

// Distogram returns, for each residue pair (i, j), the index of the distance
// bin that the squared distance d² = |x_i − x_j|² falls in, or −1 when it
// falls in none: bin k holds d² when lower_k < d² < upper_k, both strict,
// with the squared edges of cfg.SquaredEdges (AF2's dgram_from_positions).
// Distances below MinBin (the diagonal among them) and squared distances
// equal to an edge fall in no bin. x is [N, 3]; the result is [N, N]. The
// distances are computed in T, as AF2 computes them in its working type.
func Distogram[T num.Float](cfg Config, x []T, n int) []int {
	lower64, upper64 := cfg.SquaredEdges()
	lower, upper := make([]T, len(lower64)), make([]T, len(upper64))
	for k := range lower64 {
		lower[k], upper[k] = T(lower64[k]), T(upper64[k])
	}
	bins := make([]int, n*n)
	for i := range n {
		xi := x[3*i : 3*i+3]
		for j := range n {
			xj := x[3*j : 3*j+3]
			d0, d1, d2 := xi[0]-xj[0], xi[1]-xj[1], xi[2]-xj[2]
			d := d0*d0 + d1*d1 + d2*d2
			b := -1
			for k := range lower {
				if d > lower[k] && d < upper[k] {
					b = k
					break
				}
			}
			bins[i*n+j] = b
		}
	}
	return bins
}

// Cache holds what Backward needs from one Forward call: references to the
// previous first MSA row and pair representation (which must not change
// until Backward has run), their layer-norm statistics and the distance bin
// of every residue pair. A zero Cache is ready to use.
type Cache[T num.Float] struct {
	n                  int
	cfg                Config
	msaRow, pair       []T
	rowMean, rowRstd   []T
	pairMean, pairRstd []T
	bins               []int
	hasForward         bool
}

// Forward computes the recycling embedder (supplement Algorithm 32; AF2's
// recycling block in EmbeddingsAndEvoformer) from the previous pass's
// outputs and writes the two updates that the caller adds to the new
// pass's representations:
//
//	msaOut = LN(prevMSAFirstRow)                             [N, c_m], added to m_1i (the first MSA row)
//	pairOut = LN(prevPair) + one_hot(bin(d_ij))·W + b       [N, N, c_z], added to z_ij
//
// prevMSAFirstRow is [N, c_m], prevPair [N, N, c_z] and prevPseudoBeta
// [N, 3] (Å; the previous pass's pseudo-β positions: Cβ, or Cα for
// glycine). The distogram is Distogram's: 15 bins from 3.25 Å with the last
// bin open, a pair that falls in no bin contributing only the bias b. On the
// first pass AF2 feeds zeros for all three, which gives msaOut = offset,
// pairOut = offset + b.
//
// The pair update is computed row by row in place in pairOut, so nothing of
// size N²·c_z besides the input and output exists. If cache is not nil it is
// filled for Backward. The error wraps num.ErrShape for a length that does
// not match N = len(prevPseudoBeta)/3 and Config, num.ErrNaN for a
// non-finite input, and ErrConfig for invalid parameters. The outputs must
// not overlap the inputs.
func Forward[T num.Float](p *Params[T], prevMSAFirstRow, prevPair, prevPseudoBeta, msaOut, pairOut []T, cache *Cache[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	n, err := checkInputs(p.Config, prevMSAFirstRow, prevPair, prevPseudoBeta)
	if err != nil {
		return err
	}
	cm, cz := p.Config.CM, p.Config.CZ
	if err := num.CheckLen("msaOut", msaOut, n*cm, fmt.Sprintf("[N c_m] = [%d %d]", n, cm)); err != nil {
		return fmt.Errorf("recycle: %w", err)
	}
	if err := num.CheckLen("pairOut", pairOut, n*n*cz, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)); err != nil {
		return fmt.Errorf("recycle: %w", err)
	}
	forward(p, n, prevMSAFirstRow, prevPair, prevPseudoBeta, msaOut, pairOut, cache)
	return nil
}

// checkInputs validates Forward's inputs and returns N.
func checkInputs[T num.Float](cfg Config, msaRow, pair, pb []T) (int, error) {
	if len(pb)%3 != 0 || len(pb) == 0 {
		return 0, fmt.Errorf("recycle: prevPseudoBeta has %d elements, want [N 3] with N ≥ 1: %w", len(pb), num.ErrShape)
	}
	n := len(pb) / 3
	if err := num.CheckLen("prevMSAFirstRow", msaRow, n*cfg.CM, fmt.Sprintf("[N c_m] = [%d %d]", n, cfg.CM)); err != nil {
		return 0, fmt.Errorf("recycle: %w", err)
	}
	if err := num.CheckLen("prevPair", pair, n*n*cfg.CZ, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cfg.CZ)); err != nil {
		return 0, fmt.Errorf("recycle: %w", err)
	}
	for _, x := range []struct {
		what string
		v    []T
	}{{"prevMSAFirstRow", msaRow}, {"prevPair", pair}, {"prevPseudoBeta", pb}} {
		if err := num.CheckFinite(x.what, x.v); err != nil {
			return 0, fmt.Errorf("recycle: %w", err)
		}
	}
	return n, nil
}

// forward is Forward on validated arguments.
func forward[T num.Float](p *Params[T], n int, msaRow, pair, pb, msaOut, pairOut []T, cache *Cache[T]) {
	cfg := p.Config
	cz := cfg.CZ
	var rm, rr, pm, pr []T
	if cache != nil {
		rm, rr = make([]T, n), make([]T, n)
		pm, pr = make([]T, n*n), make([]T, n*n)
	}
	p.PrevMSAFirstRowNorm.Forward(msaOut, msaRow, n, rm, rr)
	p.PrevPairNorm.Forward(pairOut, pair, n*n, pm, pr)
	bins := Distogram(cfg, pb, n)
	w, b := p.PrevPosLinear.W, p.PrevPosLinear.B
	row := make([]T, cz)
	for ij, k := range bins {
		// The linear layer on a one-hot vector: W[k,:] + b exactly.
		copy(row, b)
		if k >= 0 {
			wk := w[k*cz : (k+1)*cz]
			for c := range row {
				row[c] += wk[c]
			}
		}
		o := pairOut[ij*cz : (ij+1)*cz]
		for c := range o {
			o[c] += row[c]
		}
	}
	if cache != nil {
		*cache = Cache[T]{n: n, cfg: cfg, msaRow: msaRow, pair: pair, rowMean: rm, rowRstd: rr,
			pairMean: pm, pairRstd: pr, bins: bins, hasForward: true}
	}
}

// Backward computes the gradients of the recycling embedder for the Forward
// call that filled cache, given dMSA = ∂L/∂msaOut [N, c_m] and dPair =
// ∂L/∂pairOut [N, N, c_z]. It accumulates (+=) the gradients with respect to
// prevMSAFirstRow into dPrevMSAFirstRow and prevPair into dPrevPair (each
// nil to skip) and, when g is not nil, the parameter gradients into g (start
// from p.ZerosLike()). The gradient with respect to the pseudo-β positions
// is zero (the distogram is piecewise constant), so there is no argument for
// it. The error wraps num.ErrShape for a length that does not match,
// num.ErrNaN for a non-finite gradient, and ErrConfig if the cache holds no
// forward pass of p's configuration.
func Backward[T num.Float](p *Params[T], cache *Cache[T], dMSA, dPair, dPrevMSAFirstRow, dPrevPair []T, g *Params[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	if cache == nil || !cache.hasForward || cache.cfg != p.Config {
		return fmt.Errorf("recycle: Backward without a matching Forward pass in the cache: %w", ErrConfig)
	}
	n, cm, cz := cache.n, p.Config.CM, p.Config.CZ
	rowShape := fmt.Sprintf("[N c_m] = [%d %d]", n, cm)
	pairShape := fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)
	for _, a := range []struct {
		what, shape string
		v           []T
		n           int
		opt         bool
	}{
		{"dMSA", rowShape, dMSA, n * cm, false},
		{"dPair", pairShape, dPair, n * n * cz, false},
		{"dPrevMSAFirstRow", rowShape, dPrevMSAFirstRow, n * cm, true},
		{"dPrevPair", pairShape, dPrevPair, n * n * cz, true},
	} {
		if a.opt && a.v == nil {
			continue
		}
		if err := num.CheckLen(a.what, a.v, a.n, a.shape); err != nil {
			return fmt.Errorf("recycle: %w", err)
		}
		if !a.opt {
			if err := num.CheckFinite(a.what, a.v); err != nil {
				return fmt.Errorf("recycle: %w", err)
			}
		}
	}
	if g != nil {
		if g.Config != p.Config {
			return fmt.Errorf("recycle: gradient has config %+v, want %+v: %w", g.Config, p.Config, ErrConfig)
		}
		if err := g.check(); err != nil {
			return err
		}
	}
	var gRow, gPair *nn.LayerNormParams[T]
	if g != nil {
		gRow, gPair = &g.PrevMSAFirstRowNorm, &g.PrevPairNorm
		// Row i's contributions are summed into partials first, so that the
		// N² terms accumulate round-off like N + N additions, not N².
		nb := p.Config.NumBins
		pw, pb := make([]T, nb*cz), make([]T, cz)
		for i := range n {
			clear(pw)
			clear(pb)
			for j := range n {
				ij := i*n + j
				d := dPair[ij*cz : (ij+1)*cz]
				for c, v := range d {
					pb[c] += v
				}
				if k := cache.bins[ij]; k >= 0 {
					wk := pw[k*cz : (k+1)*cz]
					for c, v := range d {
						wk[c] += v
					}
				}
			}
			for c, v := range pb {
				g.PrevPosLinear.B[c] += v
			}
			for c, v := range pw {
				g.PrevPosLinear.W[c] += v
			}
		}
	}
	p.PrevMSAFirstRowNorm.Backward(dPrevMSAFirstRow, gRow, cache.msaRow, cache.rowMean, cache.rowRstd, dMSA, n)
	p.PrevPairNorm.Backward(dPrevPair, gPair, cache.pair, cache.pairMean, cache.pairRstd, dPair, n*n)
	return nil
}
