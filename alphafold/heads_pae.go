package alphafold

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// PredictedAlignedErrorHeadParams is AF2's predicted aligned error head
// (supplement §1.9.7, predicted_aligned_error_head, in the _ptm parameter
// sets): logits = z·Logits + b [N, N, bins] from the pair representation z;
// softmax_b(logits_ij) is the distribution of the error of residue j's
// position when the structure is aligned on residue i's frame, over the bins
// of PAEBreaks (64 bins up to 31 Å in AF2). PredictedAlignedError and
// PredictedTM summarise it.
type PredictedAlignedErrorHeadParams[T num.Float] struct {
	// Logits (predicted_aligned_error_head/logits) is [c_z, bins].
	Logits nn.LinearParams[T]
}

// PAEBreaks returns the bins-1 inner edges of the aligned-error bins in Å,
// evenly spaced from 0 to cfg.PAEMaxBin (AF2: 0, 0.5, …, 31).
func PAEBreaks(cfg HeadsConfig) []float64 {
	return linspace(0, cfg.PAEMaxBin, cfg.PAEBins-1)
}

// Forward writes the aligned-error logits [N, N, bins] of pair
// [N, N, c_z]. The error wraps num.ErrShape for a wrong length and num.ErrNaN
// for a non-finite input.
func (p *PredictedAlignedErrorHeadParams[T]) Forward(pair []T, n int, logits []T) error {
	return smLinearHeadForward("predicted aligned error head", &p.Logits, pair, n*n, logits)
}

// Backward accumulates the gradients of Forward, given dlogits
// [N, N, bins], into dpair (nil to skip) and g (nil to skip).
func (p *PredictedAlignedErrorHeadParams[T]) Backward(pair, dlogits []T, n int, dpair []T, g *PredictedAlignedErrorHeadParams[T]) error {
	var gl *nn.LinearParams[T]
	if g != nil {
		gl = &g.Logits
	}
	return smLinearHeadBackward("predicted aligned error head", &p.Logits, gl, pair, dlogits, n*n, dpair)
}

// binCentres returns AF2's bin centres for the inner edges breaks: each
// edge plus half a step, and one more step past the last (so there are
// len(breaks)+1 centres, one per bin).
func binCentres(breaks []float64) []float64 {
	step := breaks[1] - breaks[0]
	c := make([]float64, len(breaks)+1)
	for k, b := range breaks {
		c[k] = b + step/2
	}
	c[len(breaks)] = c[len(breaks)-1] + step
	return c
}

// checkPAE validates logits [N, N, bins] against breaks (bins-1 edges).
func checkPAE[T num.Float](what string, logits []T, n int, breaks []float64) error {
	if n < 1 || len(breaks) < 2 {
		return fmt.Errorf("alphafold: %s: n = %d and %d breaks, want ≥ 1 and ≥ 2: %w", what, n, len(breaks), num.ErrShape)
	}
	bins := len(breaks) + 1
	return smCheckInput(what, "logits", logits, n*n*bins, fmt.Sprintf("[N N bins] = [%d %d %d]", n, n, bins))
}

// PredictedAlignedError returns the expected aligned error [N, N] in Å of
// the aligned-error logits [N, N, bins] and the largest value it can take
// (the last bin centre, AF2's max_predicted_aligned_error), as AF2's
// compute_predicted_aligned_error: pae_ij = Σ_b softmax(logits_ij)_b·c_b
// with c_b the bin centres of breaks (PAEBreaks). Computed in float64.
func PredictedAlignedError[T num.Float](logits []T, n int, breaks []float64) (pae []T, maxPAE float64, err error) {
	if err := checkPAE("predicted aligned error", logits, n, breaks); err != nil {
		return nil, 0, err
	}
	c := binCentres(breaks)
	bins := len(c)
	pae = make([]T, n*n)
	p := make([]float64, bins)
	for ij := range n * n {
		softmax64(p, logits[ij*bins:(ij+1)*bins])
		var s float64
		for b, v := range p {
			s += v * c[b]
		}
		pae[ij] = T(s)
	}
	return pae, c[bins-1], nil
}

// PredictedTM returns AF2's predicted TM-score (pTM, supplement §1.9.7
// eq. 40; AF2's predicted_tm_score without interface masking) of the
// aligned-error logits [N, N, bins] with bin edges breaks:
//
//	d0 = 1.24·(max(⌊Σ w⌋, 19) − 15)^(1/3) − 1.8
//	tm_ij = Σ_b softmax(logits_ij)_b / (1 + (c_b/d0)²)
//	pTM = max over i (by w_i·a_i) of a_i = Σ_j tm_ij·w_i w_j / (1e-8 + w_i Σ_k w_k)
//
// residueWeights [N] weights the residues (nil: all 1; AF2 passes the
// sequence mask). Computed in float64.
func PredictedTM[T num.Float](logits []T, n int, breaks, residueWeights []float64) (float64, error) {
	if err := checkPAE("predicted TM", logits, n, breaks); err != nil {
		return 0, err
	}
	w := residueWeights
	if w == nil {
		w = make([]float64, n)
		for i := range w {
			w[i] = 1
		}
	}
	if err := smCheckInput("predicted TM", "residue weights", w, n, fmt.Sprintf("[N] = [%d]", n)); err != nil {
		return 0, err
	}
	var sumW float64
	for _, v := range w {
		sumW += v
	}
	numRes := math.Max(math.Trunc(sumW), 19)
	d0 := 1.24*math.Cbrt(numRes-15) - 1.8
	c := binCentres(breaks)
	bins := len(c)
	tmBin := make([]float64, bins)
	for b, v := range c {
		tmBin[b] = 1 / (1 + v*v/(d0*d0))
	}
	p := make([]float64, bins)
	best, bestScore := 0.0, math.Inf(-1)
	for i := range n {
		norm := 1e-8 + w[i]*sumW
		var a float64
		for j := range n {
			softmax64(p, logits[(i*n+j)*bins:(i*n+j+1)*bins])
			var tm float64
			for b, v := range p {
				tm += v * tmBin[b]
			}
			a += tm * w[i] * w[j] / norm
		}
		if s := a * w[i]; s > bestScore {
			best, bestScore = a, s
		}
	}
	return best, nil
}
