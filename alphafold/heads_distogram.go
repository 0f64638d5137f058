package alphafold

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// DistogramHeadParams is AF2's distogram head (supplement §1.9.8,
// distogram_head): from the pair representation z [N, N, c_z],
//
//	h = z·HalfLogits + b;  logits_ij = h_ij + h_ji      [N, N, bins]
//
// symmetric in i and j. The bins are DistogramBreaks' inner edges (64 bins,
// 2.3125–21.6875 Å in AF2) with open first and last bins.
type DistogramHeadParams[T num.Float] struct {
	// HalfLogits (distogram_head/half_logits) is [c_z, bins].
	HalfLogits nn.LinearParams[T]
}

// DistogramBreaks returns the bins-1 inner bin edges of the distogram in Å,
// evenly spaced from cfg.DistogramFirstBreak to cfg.DistogramLastBreak (AF2:
// 2.3125, 2.625, …, 21.6875). Bin 0 holds distances below the first edge,
// the last bin those above the last.
func DistogramBreaks(cfg HeadsConfig) []float64 {
	return linspace(cfg.DistogramFirstBreak, cfg.DistogramLastBreak, cfg.DistogramBins-1)
}

// linspace returns num values evenly spaced from lo to hi inclusive.
func linspace(lo, hi float64, num int) []float64 {
	x := make([]float64, num)
	for k := range x {
		if num == 1 {
			x[k] = lo
			continue
		}
		x[k] = lo + float64(k)*(hi-lo)/float64(num-1)
	}
	return x
}

// Forward writes the distogram logits [N, N, bins] of the pair
// representation pair [N, N, c_z]. The error wraps num.ErrShape for a wrong
// length and num.ErrNaN for a non-finite input.
func (p *DistogramHeadParams[T]) Forward(pair []T, n int, logits []T) error {
	if err := smLinearHeadForward("distogram head", &p.HalfLogits, pair, n*n, logits); err != nil {
		return err
	}
	bins := p.HalfLogits.Out
	for i := range n {
		for j := i; j < n; j++ {
			a := logits[(i*n+j)*bins : (i*n+j+1)*bins]
			b := logits[(j*n+i)*bins : (j*n+i+1)*bins]
			for k := range a {
				s := a[k] + b[k]
				a[k], b[k] = s, s
			}
		}
	}
	return nil
}

// Backward accumulates the gradients of Forward, given dlogits
// [N, N, bins], into dpair (nil to skip) and g (nil to skip). pair is
// Forward's input.
func (p *DistogramHeadParams[T]) Backward(pair, dlogits []T, n int, dpair []T, g *DistogramHeadParams[T]) error {
	bins := p.HalfLogits.Out
	if err := num.CheckLen("alphafold: distogram head logits gradient", dlogits, n*n*bins, fmt.Sprintf("[N N bins] = [%d %d %d]", n, n, bins)); err != nil {
		return err
	}
	// ∂L/∂h_ij = ∂L/∂logits_ij + ∂L/∂logits_ji.
	dh := make([]T, len(dlogits))
	for i := range n {
		for j := range n {
			a := dlogits[(i*n+j)*bins : (i*n+j+1)*bins]
			b := dlogits[(j*n+i)*bins : (j*n+i+1)*bins]
			d := dh[(i*n+j)*bins : (i*n+j+1)*bins]
			for k := range d {
				d[k] = a[k] + b[k]
			}
		}
	}
	var gl *nn.LinearParams[T]
	if g != nil {
		gl = &g.HalfLogits
	}
	return smLinearHeadBackward("distogram head", &p.HalfLogits, gl, pair, dh, n*n, dpair)
}
