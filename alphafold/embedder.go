package alphafold

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// Haiku names of the input embedder's layers, which sit directly under
// alphafold/alphafold_iteration/evoformer/ in AF2's parameter files.
const (
	Preprocess1DName        = "preprocess_1d"
	PreprocessMSAName       = "preprocess_msa"
	LeftSingleName          = "left_single"
	RightSingleName         = "right_single"
	PairActiviationsName    = "pair_activiations" // sic: AF2's spelling
	ExtraMSAActivationsName = "extra_msa_activations"
)

// EmbedderConfig holds the sizes of the input embedder (supplement
// Algorithms 3–5) and of the extra-MSA embedding (Algorithm 2).
type EmbedderConfig struct {
	// TargetFeatChannels is the width of target_feat (AF2: 22, has_break
	// and the 21-class one-hot of aatype).
	TargetFeatChannels int
	// MSAFeatChannels is the width of msa_feat (AF2: 49).
	MSAFeatChannels int
	// MSAClasses is the number of one-hot classes of an extra-MSA token
	// (AF2: 23); the extra-MSA feature adds has_deletion and
	// deletion_value, 25 channels in all.
	MSAClasses int
	// MSAChannels is c_m (256), ExtraMSAChannels c_e (64) and PairChannels
	// c_z (128).
	MSAChannels, ExtraMSAChannels, PairChannels int
	// MaxRelativeFeature is the clip of the relative position (AF2's
	// max_relative_feature, 32): 2·32 + 1 = 65 one-hot bins (Algorithm 4).
	MaxRelativeFeature int
}

// DefaultEmbedderConfig returns AF2's input embedder: target_feat 22,
// msa_feat 49, 23 MSA classes, c_m = 256, c_e = 64, c_z = 128 and relative
// positions clipped to ±32 (65 bins).
func DefaultEmbedderConfig() EmbedderConfig {
	return EmbedderConfig{TargetFeatChannels: 22, MSAFeatChannels: 49, MSAClasses: 23,
		MSAChannels: 256, ExtraMSAChannels: 64, PairChannels: 128, MaxRelativeFeature: 32}
}

// RelPosBins returns the number of relative-position bins, 2·MaxRelativeFeature + 1.
func (c EmbedderConfig) RelPosBins() int { return 2*c.MaxRelativeFeature + 1 }

// ExtraMSAFeatChannels returns the width of the extra-MSA feature:
// MSAClasses one-hot channels, has_deletion and deletion_value.
func (c EmbedderConfig) ExtraMSAFeatChannels() int { return c.MSAClasses + 2 }

// Validate returns an error wrapping ErrConfig naming the first field out
// of range.
func (c EmbedderConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"TargetFeatChannels", c.TargetFeatChannels}, {"MSAFeatChannels", c.MSAFeatChannels},
		{"MSAClasses", c.MSAClasses}, {"MSAChannels", c.MSAChannels},
		{"ExtraMSAChannels", c.ExtraMSAChannels}, {"PairChannels", c.PairChannels},
	} {
		if f.v < 1 {
			return fmt.Errorf("alphafold: embedder config %s = %d, want > 0: %w", f.name, f.v, ErrConfig)
		}
	}
	if c.MaxRelativeFeature < 0 {
		return fmt.Errorf("alphafold: embedder config MaxRelativeFeature = %d, want ≥ 0: %w", c.MaxRelativeFeature, ErrConfig)
	}
	return nil
}

// InputEmbedderParams holds the input embedder's parameters (supplement
// Algorithm 3, with the relative-position encoding of Algorithm 4 and the
// extra-MSA embedding of Algorithm 2) under AF2's names relative to
// alphafold/alphafold_iteration/evoformer/. Every layer is a Linear with
// weights [in, out] and bias [out].
type InputEmbedderParams[T num.Float] struct {
	// Config gives the sizes of every layer below.
	Config EmbedderConfig
	// Preprocess1D (preprocess_1d) is [target_feat, c_m]: the target
	// features added to every MSA row.
	Preprocess1D nn.LinearParams[T]
	// PreprocessMSA (preprocess_msa) is [msa_feat, c_m].
	PreprocessMSA nn.LinearParams[T]
	// LeftSingle and RightSingle (left_single, right_single) are
	// [target_feat, c_z]: z_ij = a_i + b_j.
	LeftSingle, RightSingle nn.LinearParams[T]
	// PairActiviations (pair_activiations, AF2's spelling) is [65, c_z]:
	// the embedding of the one-hot relative position (Algorithm 4).
	PairActiviations nn.LinearParams[T]
	// ExtraMSAActivations (extra_msa_activations) is [25, c_e]: the
	// embedding of the extra-MSA feature.
	ExtraMSAActivations nn.LinearParams[T]
}

// tensors lists the embedder's arrays under their AF2 names relative to
// alphafold/alphafold_iteration/evoformer/, setting every layer's sizes.
func (p *InputEmbedderParams[T]) tensors() []evoTensor[T] {
	c := p.Config
	ts := evoLinearTensors(&p.Preprocess1D, Preprocess1DName, c.TargetFeatChannels, c.MSAChannels)
	ts = append(ts, evoLinearTensors(&p.PreprocessMSA, PreprocessMSAName, c.MSAFeatChannels, c.MSAChannels)...)
	ts = append(ts, evoLinearTensors(&p.LeftSingle, LeftSingleName, c.TargetFeatChannels, c.PairChannels)...)
	ts = append(ts, evoLinearTensors(&p.RightSingle, RightSingleName, c.TargetFeatChannels, c.PairChannels)...)
	ts = append(ts, evoLinearTensors(&p.PairActiviations, PairActiviationsName, c.RelPosBins(), c.PairChannels)...)
	return append(ts, evoLinearTensors(&p.ExtraMSAActivations, ExtraMSAActivationsName, c.ExtraMSAFeatChannels(), c.ExtraMSAChannels)...)
}

// NewInputEmbedderParams returns an embedder for cfg initialised as AF2
// does: every layer with the "linear" initialiser (truncated normal of
// variance 1/fan_in, zero bias). The error wraps ErrConfig for an invalid
// cfg or a nil rng.
func NewInputEmbedderParams[T num.Float](cfg EmbedderConfig, rng *rand.Rand) (*InputEmbedderParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("alphafold: NewInputEmbedderParams: nil random source: %w", ErrConfig)
	}
	p := &InputEmbedderParams[T]{Config: cfg}
	for _, l := range []struct {
		p       *nn.LinearParams[T]
		in, out int
	}{
		{&p.Preprocess1D, cfg.TargetFeatChannels, cfg.MSAChannels},
		{&p.PreprocessMSA, cfg.MSAFeatChannels, cfg.MSAChannels},
		{&p.LeftSingle, cfg.TargetFeatChannels, cfg.PairChannels},
		{&p.RightSingle, cfg.TargetFeatChannels, cfg.PairChannels},
		{&p.PairActiviations, cfg.RelPosBins(), cfg.PairChannels},
		{&p.ExtraMSAActivations, cfg.ExtraMSAFeatChannels(), cfg.ExtraMSAChannels},
	} {
		*l.p = nn.NewLinear[T](rng, l.in, l.out, nn.InitLinear, true)
	}
	return p, nil
}

// LoadInputEmbedderParams reads the embedder for cfg from s, which holds
// AF2's names relative to alphafold/alphafold_iteration/evoformer/
// ("preprocess_1d//weights" and so on). Every shape is checked; the error
// names the key and wraps params.ErrMissing, num.ErrShape or num.ErrNaN, or
// wraps ErrConfig for an invalid cfg.
func LoadInputEmbedderParams[T num.Float](s *params.Set, cfg EmbedderConfig) (*InputEmbedderParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &InputEmbedderParams[T]{Config: cfg}
	if err := evoLoadTensors(s, p.tensors()); err != nil {
		return nil, err
	}
	return p, nil
}

// Save stores p in s under AF2's names relative to
// alphafold/alphafold_iteration/evoformer/ with prefix prepended.
func (p *InputEmbedderParams[T]) Save(s *params.Set, prefix string) error {
	if err := p.check(); err != nil {
		return err
	}
	return evoSaveTensors(s, prefix, p.tensors())
}

// check reports an invalid Config or an array whose length does not match.
func (p *InputEmbedderParams[T]) check() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	q := *p
	return evoCheckTensors("input embedder", q.tensors())
}

// embParallel splits [0, n) into contiguous ranges, one per worker, and
// runs f on each; small n runs inline.
func embParallel(n, work int, f func(lo, hi int)) {
	w := min(runtime.GOMAXPROCS(0), n)
	if w <= 1 || work < 1<<16 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := range w {
		lo, hi := k*n/w, (k+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// embConvert returns x converted to T.
func embConvert[T num.Float](x []float64) []T {
	out := make([]T, len(x))
	for i, v := range x {
		out[i] = T(v)
	}
	return out
}

// embCheckFeature reports a float feature of the wrong length or with a
// non-finite value.
func embCheckFeature(what string, x []float64, n int, shape string) error {
	if err := num.CheckLen("input embedder "+what, x, n, shape); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	if err := num.CheckFinite("input embedder "+what, x); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	return nil
}

// EmbedMSA writes the initial MSA representation msa [S, N, c_m] of
// supplement Algorithm 3, as AF2's preprocess_msa and preprocess_1d:
//
//	m_si = msa_feat_si·W_msa + b_msa + target_feat_i·W_1d + b_1d
//
// targetFeat is [N, target_feat] and msaFeat [S, N, msa_feat], float64 as
// the features package builds them; they are converted to T one sequence at
// a time, so no converted copy of msa_feat exists. The error wraps
// num.ErrShape for a length that does not match S, N and Config, num.ErrNaN
// for a non-finite feature, and ErrConfig for invalid parameters.
func (p *InputEmbedderParams[T]) EmbedMSA(targetFeat, msaFeat []float64, s, n int, msa []T) error {
	if err := p.check(); err != nil {
		return err
	}
	c := p.Config
	if s < 1 || n < 1 {
		return fmt.Errorf("alphafold: input embedder: %d sequences and %d residues, want ≥ 1: %w", s, n, num.ErrShape)
	}
	if err := embCheckFeature("target_feat", targetFeat, n*c.TargetFeatChannels, fmt.Sprintf("[N %d] = [%d %d]", c.TargetFeatChannels, n, c.TargetFeatChannels)); err != nil {
		return err
	}
	if err := embCheckFeature("msa_feat", msaFeat, s*n*c.MSAFeatChannels, fmt.Sprintf("[S N %d] = [%d %d %d]", c.MSAFeatChannels, s, n, c.MSAFeatChannels)); err != nil {
		return err
	}
	if err := num.CheckLen("alphafold: input embedder msa", msa, s*n*c.MSAChannels, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, c.MSAChannels)); err != nil {
		return err
	}
	cm, cf := c.MSAChannels, c.MSAFeatChannels
	tf := embConvert[T](targetFeat)
	oneD := make([]T, n*cm)
	p.Preprocess1D.Forward(oneD, tf, n)
	x := make([]T, n*cf)
	for q := range s {
		for i, v := range msaFeat[q*n*cf : (q+1)*n*cf] {
			x[i] = T(v)
		}
		row := msa[q*n*cm : (q+1)*n*cm]
		p.PreprocessMSA.Forward(row, x, n)
		for i, v := range oneD {
			row[i] += v
		}
	}
	return nil
}

// AddPairEmbedding adds the initial pair representation of supplement
// Algorithm 3, with the relative-position encoding of Algorithm 4 and the
// one-hot of Algorithm 5, to pair [N, N, c_z], as AF2's left_single,
// right_single and pair_activiations:
//
//	z_ij += (tf_i·W_l + b_l) + (tf_j·W_r + b_r) + one_hot(clip(r_i − r_j, ±32) + 32)·W_rel + b_rel
//
// targetFeat is [N, target_feat] and residueIndex [N]. The one-hot product
// is evaluated as the row of W_rel it selects (exact: the other terms are
// products with 0), so the [N, N, 65] one-hot is never formed. Adding
// lets the caller put the recycling embedding (Algorithm 32) in pair first.
// The errors are those of EmbedMSA.
func (p *InputEmbedderParams[T]) AddPairEmbedding(targetFeat []float64, residueIndex []int, n int, pair []T) error {
	if err := p.check(); err != nil {
		return err
	}
	c := p.Config
	if n < 1 {
		return fmt.Errorf("alphafold: input embedder: %d residues, want ≥ 1: %w", n, num.ErrShape)
	}
	if err := embCheckFeature("target_feat", targetFeat, n*c.TargetFeatChannels, fmt.Sprintf("[N %d] = [%d %d]", c.TargetFeatChannels, n, c.TargetFeatChannels)); err != nil {
		return err
	}
	if len(residueIndex) != n {
		return fmt.Errorf("alphafold: input embedder residue_index has %d elements, want [N] = [%d]: %w", len(residueIndex), n, num.ErrShape)
	}
	cz := c.PairChannels
	if err := num.CheckLen("alphafold: input embedder pair", pair, n*n*cz, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)); err != nil {
		return err
	}
	tf := embConvert[T](targetFeat)
	left, right := make([]T, n*cz), make([]T, n*cz)
	p.LeftSingle.Forward(left, tf, n)
	p.RightSingle.Forward(right, tf, n)
	// rel[k] = W_rel[k] + b_rel, the embedding of relative-position bin k.
	bins, maxRel := c.RelPosBins(), c.MaxRelativeFeature
	rel := make([]T, bins*cz)
	for k := range bins {
		copy(rel[k*cz:(k+1)*cz], p.PairActiviations.W[k*cz:(k+1)*cz])
		for ch, b := range p.PairActiviations.B {
			rel[k*cz+ch] += b
		}
	}
	embParallel(n, n*n*cz, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			a := left[i*cz : (i+1)*cz]
			for j := range n {
				b := right[j*cz : (j+1)*cz]
				d := min(max(residueIndex[i]-residueIndex[j], -maxRel), maxRel) + maxRel
				r := rel[d*cz : (d+1)*cz]
				z := pair[(i*n+j)*cz : (i*n+j+1)*cz]
				for ch := range z {
					z[ch] += a[ch] + b[ch] + r[ch]
				}
			}
		}
	})
	return nil
}

// EmbedExtraMSA writes the extra-MSA representation out [Se, N, c_e] of
// supplement Algorithm 2, as AF2's extra_msa_activations applied
// to the 25-channel extra-MSA feature:
//
//	e_si = [one_hot(extra_msa_si, 23), has_deletion_si, deletion_value_si]·W + b
//
// extraMSA holds tokens 0..22 [Se, N]; hasDeletion and deletionValue are
// [Se, N]. The one-hot part is evaluated as the row of W it selects (exact).
// The error wraps num.ErrShape for a length that does not match or a token
// out of range, num.ErrNaN for a non-finite feature, and ErrConfig for
// invalid parameters.
func (p *InputEmbedderParams[T]) EmbedExtraMSA(extraMSA []int, hasDeletion, deletionValue []float64, se, n int, out []T) error {
	if err := p.check(); err != nil {
		return err
	}
	c := p.Config
	if se < 0 || n < 1 {
		return fmt.Errorf("alphafold: input embedder: %d extra sequences and %d residues, want ≥ 0 and ≥ 1: %w", se, n, num.ErrShape)
	}
	shape := fmt.Sprintf("[Se N] = [%d %d]", se, n)
	if len(extraMSA) != se*n {
		return fmt.Errorf("alphafold: input embedder extra_msa has %d elements, want %s: %w", len(extraMSA), shape, num.ErrShape)
	}
	for i, t := range extraMSA {
		if t < 0 || t >= c.MSAClasses {
			return fmt.Errorf("alphafold: input embedder extra_msa[%d, %d] = %d outside [0, %d): %w", i/n, i%n, t, c.MSAClasses, num.ErrShape)
		}
	}
	if err := embCheckFeature("extra_has_deletion", hasDeletion, se*n, shape); err != nil {
		return err
	}
	if err := embCheckFeature("extra_deletion_value", deletionValue, se*n, shape); err != nil {
		return err
	}
	ce := c.ExtraMSAChannels
	if err := num.CheckLen("alphafold: input embedder extra msa", out, se*n*ce, fmt.Sprintf("[Se N c_e] = [%d %d %d]", se, n, ce)); err != nil {
		return err
	}
	w, b := p.ExtraMSAActivations.W, p.ExtraMSAActivations.B
	wHas := w[c.MSAClasses*ce : (c.MSAClasses+1)*ce]
	wDel := w[(c.MSAClasses+1)*ce : (c.MSAClasses+2)*ce]
	embParallel(se*n, se*n*ce, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			wt := w[extraMSA[r]*ce : (extraMSA[r]+1)*ce]
			h, d := T(hasDeletion[r]), T(deletionValue[r])
			e := out[r*ce : (r+1)*ce]
			for ch := range e {
				e[ch] = wt[ch] + h*wHas[ch] + d*wDel[ch] + b[ch]
			}
		}
	})
	return nil
}
