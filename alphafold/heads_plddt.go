package alphafold

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// PLDDTHeadParams is AF2's predicted-lDDT head (supplement Algorithm 29,
// predicted_lddt_head): from the structure module's final single
// representation s [N, c_s],
//
//	logits = Logits(relu(Act1(relu(Act0(LN(s))))))     [N, bins]
//
// whose softmax is the distribution of the residue's Cα lDDT over bins of
// equal width on [0, 1]. Field names follow AF2's haiku names.
type PLDDTHeadParams[T num.Float] struct {
	// InputLayerNorm (input_layer_norm) is over c_s.
	InputLayerNorm nn.LayerNormParams[T]
	// Act0 (act_0) is [c_s, c] and Act1 (act_1) [c, c], c = 128 in AF2.
	Act0, Act1 nn.LinearParams[T]
	// Logits (logits) is [c, bins], 50 bins in AF2.
	Logits nn.LinearParams[T]
}

// tensors lists the head's arrays under their AF2 names.
func (p *PLDDTHeadParams[T]) tensors(c HeadsConfig) []smTensor[T] {
	const h = PLDDTHeadName + "/"
	ts := smLayerNormTensors(&p.InputLayerNorm, h+"input_layer_norm", c.CS)
	ts = append(ts, smLinearTensors(&p.Act0, h+"act_0", c.CS, c.PLDDTChannels)...)
	ts = append(ts, smLinearTensors(&p.Act1, h+"act_1", c.PLDDTChannels, c.PLDDTChannels)...)
	return append(ts, smLinearTensors(&p.Logits, h+"logits", c.PLDDTChannels, c.PLDDTBins)...)
}

// check reports layers whose sizes do not chain.
func (p *PLDDTHeadParams[T]) check() error {
	cs, c := p.Act0.In, p.Act0.Out
	if p.InputLayerNorm.C != cs || len(p.InputLayerNorm.Scale) != cs || len(p.InputLayerNorm.Offset) != cs {
		return fmt.Errorf("alphafold: pLDDT head: input layer norm over %d channels, want c_s = %d: %w", p.InputLayerNorm.C, cs, num.ErrShape)
	}
	for _, l := range []smLayer[T]{{&p.Act0, cs, c}, {&p.Act1, c, c}, {&p.Logits, c, p.Logits.Out}} {
		if err := smCheckLinear("pLDDT head", l.p, l.in, l.out); err != nil {
			return err
		}
	}
	if cs < 1 || c < 1 || p.Logits.Out < 1 {
		return fmt.Errorf("alphafold: pLDDT head sizes [%d %d %d]: %w", cs, c, p.Logits.Out, num.ErrShape)
	}
	return nil
}

// PLDDTHeadCache holds what Backward needs from one Forward call. It refers
// to (does not copy) the input. A zero cache is ready to use.
type PLDDTHeadCache[T num.Float] struct {
	n          int
	s          []T
	mean, rstd []T
	x, h0, h1  []T
	ok         bool
}

// Forward writes the pLDDT logits [N, bins] of s [N, c_s] (the structure
// module's StructureModuleOutput.Single). If cache is not nil it is filled
// for Backward. The error wraps num.ErrShape for a wrong length, num.ErrNaN
// for a non-finite input.
func (p *PLDDTHeadParams[T]) Forward(s []T, n int, logits []T, cache *PLDDTHeadCache[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	cs, c, bins := p.Act0.In, p.Act0.Out, p.Logits.Out
	if n < 1 {
		return fmt.Errorf("alphafold: pLDDT head: n = %d, want ≥ 1: %w", n, num.ErrShape)
	}
	if err := smCheckInput("pLDDT head", "single", s, n*cs, fmt.Sprintf("[N c_s] = [%d %d]", n, cs)); err != nil {
		return err
	}
	if err := num.CheckLen("alphafold: pLDDT head logits", logits, n*bins, fmt.Sprintf("[N bins] = [%d %d]", n, bins)); err != nil {
		return err
	}
	ca := cache
	if ca == nil {
		ca = new(PLDDTHeadCache[T])
	}
	ca.n, ca.s = n, s
	ca.mean, ca.rstd = smGrow(ca.mean, n), smGrow(ca.rstd, n)
	ca.x = smGrow(ca.x, n*cs)
	ca.h0, ca.h1 = smGrow(ca.h0, n*c), smGrow(ca.h1, n*c)
	p.InputLayerNorm.Forward(ca.x, s, n, ca.mean, ca.rstd)
	p.Act0.Forward(ca.h0, ca.x, n)
	nn.ReLU(ca.h0, ca.h0)
	p.Act1.Forward(ca.h1, ca.h0, n)
	nn.ReLU(ca.h1, ca.h1)
	p.Logits.Forward(logits, ca.h1, n)
	ca.ok = true
	return nil
}

// Backward accumulates the gradients of Forward, given dlogits [N, bins],
// into ds [N, c_s] (nil to skip) and g (start from a zeroed head; nil to
// skip). The error wraps ErrConfig if cache holds no forward pass,
// num.ErrShape for a wrong length and num.ErrNaN for a non-finite gradient.
func (p *PLDDTHeadParams[T]) Backward(cache *PLDDTHeadCache[T], dlogits, ds []T, g *PLDDTHeadParams[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	if cache == nil || !cache.ok || len(cache.x) != cache.n*p.Act0.In || len(cache.h0) != cache.n*p.Act0.Out {
		return fmt.Errorf("alphafold: pLDDT head Backward without a matching Forward pass: %w", ErrConfig)
	}
	n, cs, c, bins := cache.n, p.Act0.In, p.Act0.Out, p.Logits.Out
	if err := smCheckInput("pLDDT head", "logits gradient", dlogits, n*bins, fmt.Sprintf("[N bins] = [%d %d]", n, bins)); err != nil {
		return err
	}
	if ds != nil {
		if err := num.CheckLen("alphafold: pLDDT head ds", ds, n*cs, fmt.Sprintf("[N c_s] = [%d %d]", n, cs)); err != nil {
			return err
		}
	}
	var gln *nn.LayerNormParams[T]
	var g0, g1, gl *nn.LinearParams[T]
	if g != nil {
		if err := g.check(); err != nil {
			return err
		}
		if g.Act0.In != cs || g.Act0.Out != c || g.Logits.Out != bins {
			return fmt.Errorf("alphafold: pLDDT head gradient has other sizes than the parameters: %w", ErrConfig)
		}
		gln, g0, g1, gl = &g.InputLayerNorm, &g.Act0, &g.Act1, &g.Logits
	}
	dh1 := make([]T, n*c)
	p.Logits.Backward(dh1, gl, cache.h1, dlogits, n)
	dpre := make([]T, n*c)
	nn.ReLUBackward(dpre, cache.h1, dh1)
	dh0 := make([]T, n*c)
	p.Act1.Backward(dh0, g1, cache.h0, dpre, n)
	clear(dpre)
	nn.ReLUBackward(dpre, cache.h0, dh0)
	dx := make([]T, n*cs)
	p.Act0.Backward(dx, g0, cache.x, dpre, n)
	p.InputLayerNorm.Backward(ds, gln, cache.s, cache.mean, cache.rstd, dx, n)
	return nil
}

// PLDDT returns the per-residue pLDDT [N] on a 0–100 scale from the pLDDT
// logits [N, bins], as AF2's compute_plddt: 100·Σ_b softmax(logits)_b·c_b
// with the bin centres c_b = (b + ½)/bins. The softmax and the sum are
// computed in float64. The error wraps num.ErrShape for a wrong length and num.ErrNaN
// for a non-finite logit.
func PLDDT[T num.Float](logits []T, n, bins int) ([]T, error) {
	if n < 1 || bins < 1 {
		return nil, fmt.Errorf("alphafold: pLDDT: n = %d, bins = %d, want ≥ 1: %w", n, bins, num.ErrShape)
	}
	if err := smCheckInput("pLDDT", "logits", logits, n*bins, fmt.Sprintf("[N bins] = [%d %d]", n, bins)); err != nil {
		return nil, err
	}
	out := make([]T, n)
	p := make([]float64, bins)
	for i := range n {
		softmax64(p, logits[i*bins:(i+1)*bins])
		var s float64
		for b, v := range p {
			s += v * (float64(b) + 0.5) / float64(bins)
		}
		out[i] = T(100 * s)
	}
	return out, nil
}

// softmax64 writes the softmax of x to p in float64.
func softmax64[T num.Float](p []float64, x []T) {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for k, v := range x {
		p[k] = math.Exp(float64(v) - m)
		s += p[k]
	}
	for k := range p {
		p[k] /= s
	}
}
