package triangle

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
)

// NewBench builds one triangle module with AF2's default configuration
// (c_z = 128; c = 128 for the multiplicative updates; 4 heads of 32
// channels for the attentions) and random inputs for n residues, and
// returns a closure that runs one forward pass (or, with backward, one
// forward and one backward pass) and the number of floating-point
// operations one run performs. module is a reference-case name:
// tri_mul_outgoing, tri_mul_incoming, tri_att_starting or tri_att_ending;
// dtype is "float32" or "float64". s (sequences) is unused.
//
// flops counts the matrix products only, 2·m·n·k each (gemm.Flops), as
// executed, recomputations included; layer norms, gates, the softmax and
// other elementwise work are not counted. See MulFlops and AttFlops.
func NewBench(module string, n, s int, dtype string, backward bool) (run func() error, flops float64, err error) {
	if n < 1 {
		return nil, 0, fmt.Errorf("triangle: NewBench: n = %d, want ≥ 1: %w", n, ErrConfig)
	}
	switch dtype {
	case "float32":
		return newBench[float32](module, n, backward)
	case "float64":
		return newBench[float64](module, n, backward)
	}
	return nil, 0, fmt.Errorf("triangle: NewBench: dtype %q, want float32 or float64: %w", dtype, ErrConfig)
}

func newBench[T num.Float](module string, n int, backward bool) (func() error, float64, error) {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	z, mask := randomPair[T](rng, n, 128)
	out := make([]T, len(z))
	var dout, dz []T
	if backward {
		dout = make([]T, len(z))
		for i := range dout {
			dout[i] = T(rng.NormFloat64())
		}
		dz = make([]T, len(z))
	}
	switch module {
	case CaseMulOutgoing, CaseMulIncoming:
		cfg := DefaultMulConfig()
		cfg.Incoming = module == CaseMulIncoming
		p, err := NewMulParams[T](cfg, rng)
		if err != nil {
			return nil, 0, err
		}
		perturbMul(p, rng)
		var cache MulCache[T] // reused: a caller running many passes keeps one
		if !backward {
			return func() error { return MulForward(p, z, mask, n, out, &cache) }, MulFlops(cfg, n, false), nil
		}
		g := p.ZerosLike()
		return func() error {
			if err := MulForward(p, z, mask, n, out, &cache); err != nil {
				return err
			}
			return MulBackward(p, &cache, dout, dz, g)
		}, MulFlops(cfg, n, true), nil
	case CaseAttStarting, CaseAttEnding:
		cfg := DefaultAttConfig()
		cfg.Ending = module == CaseAttEnding
		p, err := NewAttParams[T](cfg, rng)
		if err != nil {
			return nil, 0, err
		}
		perturbAtt(p, rng)
		var cache AttCache[T]
		if !backward {
			return func() error { return AttForward(p, z, mask, n, out, nil) }, AttFlops[T](cfg, n, false), nil
		}
		g := p.ZerosLike()
		return func() error {
			if err := AttForward(p, z, mask, n, out, &cache); err != nil {
				return err
			}
			return AttBackward(p, &cache, dout, dz, g)
		}, AttFlops[T](cfg, n, true), nil
	}
	return nil, 0, fmt.Errorf("triangle: NewBench: module %q, want one of %s: %w", module, strings.Join(Cases(), ", "), ErrConfig)
}

// randomPair returns a pair representation [n, n, cz] of unit normals and a
// mask of ones.
func randomPair[T num.Float](rng *rand.Rand, n, cz int) (z, mask []T) {
	z = make([]T, n*n*cz)
	for i := range z {
		z[i] = T(rng.NormFloat64())
	}
	mask = make([]T, n*n)
	for i := range mask {
		mask[i] = 1
	}
	return z, mask
}

// perturbMul replaces AF2's zero initialisations (gates, output projection)
// by small random values, so that every path of a benchmark or test
// computes something non-trivial.
func perturbMul[T num.Float](p *MulParams[T], rng *rand.Rand) {
	for _, l := range p.linears(p.Config) {
		jitter(l.p.W, rng, 0.1)
		jitter(l.p.B, rng, 0.1)
	}
	for _, l := range p.norms(p.Config) {
		jitter(l.p.Scale, rng, 0.1)
		jitter(l.p.Offset, rng, 0.1)
	}
}

// perturbAtt is perturbMul for the attention.
func perturbAtt[T num.Float](p *AttParams[T], rng *rand.Rand) {
	a := &p.Attention
	for _, x := range [][]T{p.QueryNorm.Scale, p.QueryNorm.Offset, a.GatingW, a.GatingB, a.OutputW, a.OutputB} {
		jitter(x, rng, 0.1)
	}
}

// jitter adds normal noise of standard deviation sd to x.
func jitter[T num.Float](x []T, rng *rand.Rand, sd float64) {
	for i := range x {
		x[i] += T(sd * rng.NormFloat64())
	}
}

// MulFlops returns the floating-point operations of the matrix products of
// one MulForward (and, with backward, one MulForward plus one MulBackward)
// for n residues, counted as 2·m·n·k per product. With c_z and c the
// widths and N² pairs:
//
//	forward:  2N²·c_z·4c (projections) + 2N³·c (contraction)
//	          + 2N²·c·c_z (output projection) + 2N²·c_z² (output gate)
//	backward: 3·2N²·c·c_z + 3·2N²·c_z² (output side, recomputed forward included)
//	          + 3·2N²·c_z·4c (projections: recomputed, weights, input)
//	          + 2·2N³·c (contraction)
func MulFlops(cfg MulConfig, n int, backward bool) float64 {
	cz, c, nn := float64(cfg.PairChannels), float64(cfg.HiddenChannels), float64(n)
	n2 := nn * nn
	f := 2*n2*cz*4*c + 2*n2*nn*c + 2*n2*c*cz + 2*n2*cz*cz
	if backward {
		f += 3*2*n2*c*cz + 3*2*n2*cz*cz + 3*2*n2*cz*4*c + 2*2*n2*nn*c
	}
	return f
}

// AttFlops returns the floating-point operations of the matrix products of
// one AttForward (and, with backward, one AttForward plus one AttBackward)
// for n residues in T, counted as 2·m·n·k per product. With c_z, H heads of
// c channels and N² pairs:
//
//	forward:  2N²·c_z·H (pair bias) + 2N²·c_z·4Hc (q, k, v, gate)
//	          + 2·2N³·Hc (logits, weighted values) + 2N²·Hc·c_z (output)
//	backward: 2·2N²·c_z·H + 2·2N²·Hc·c_z + 2·2N²·c_z·4Hc
//	          + 5·2N³·Hc (logits recomputed, dV, dP, dQ, dK)
//	          + the forward pass again, less its pair bias, when the
//	          projections were too large to keep (see AttCache)
func AttFlops[T num.Float](cfg AttConfig, n int, backward bool) float64 {
	cz, h, hc, nn := float64(cfg.PairChannels), float64(cfg.Heads), float64(cfg.Heads*cfg.HeadChannels), float64(n)
	n2 := nn * nn
	core := 2*n2*cz*4*hc + 2*2*n2*nn*hc + 2*n2*hc*cz
	f := 2*n2*cz*h + core
	if backward {
		f += 2*2*n2*cz*h + 2*2*n2*hc*cz + 2*2*n2*cz*4*hc + 5*2*n2*nn*hc
		if 5*n*n*cfg.Heads*cfg.HeadChannels*sizeOf[T]() > keepBytes {
			f += core
		}
	}
	return f
}
