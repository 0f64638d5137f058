package ipa

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// Flops returns the floating-point operations that Forward (backward false)
// or Forward followed by Backward (backward true) performs for n residues,
// counting the matrix products only, at 2·m·n·k each (gemm.Flops); the
// elementwise work (softmax, frame transforms, norms) is O(N²·H) and is left
// out. With D = C + 3·P_q, Cv = C + 3·P_v and F the output projection's
// input width, the forward products are
//
//	projections of s      2·N·c_s·(3·H·C + 3·H·P_q + 3·H·(P_q+P_v))
//	logits q̃·k̃            2·N²·H·D
//	pair bias z·W         2·N²·c_z·H
//	values a·v            2·N²·H·Cv
//	pair output a·z       2·N²·H·c_z
//	output projection     2·N·F·c_s
//
// and the backward pass does two products for each of these (one for the
// gradient of each operand), so Forward plus Backward is three times the
// forward count.
func Flops(cfg Config, n int, backward bool) float64 {
	h, c, pq, pv, cz, cs := cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints, cfg.CZ, cfg.CS
	d, cv, f := c+3*pq, c+3*pv, cfg.outputWidth()
	proj := gemm.Flops(n, 3*h*c+3*h*pq+3*h*(pq+pv), cs)
	quad := float64(h) * (gemm.Flops(n, n, d) + gemm.Flops(n, n, cv) + gemm.Flops(n, n, cz)) // per head: logits, values, pair output
	bias := gemm.Flops(n*n, h, cz)
	out := gemm.Flops(n, cs, f)
	fwd := proj + quad + bias + out
	if !backward {
		return fwd
	}
	return fwd + 2*(proj+quad+bias+out)
}

// NewBench returns a closure that runs IPA once at AlphaFold2's default
// configuration on n residues with random inputs (s and z standard normal,
// random rotations, translations in [−3, 3]³, every residue present) and
// random parameters, in dtype "float32" or "float64": Forward, or Forward
// then Backward into fresh gradients when backward is true. flops is the
// count of one run as Flops gives it. module must be "ipa"; s (the number of
// sequences of MSA modules) is ignored. It is what `foldkit bench -module
// ipa` runs.
func NewBench(module string, n, s int, dtype string, backward bool) (run func() error, flops float64, err error) {
	if module != "ipa" {
		return nil, 0, fmt.Errorf("ipa: NewBench: module %q, want \"ipa\": %w", module, ErrConfig)
	}
	if n <= 0 {
		return nil, 0, fmt.Errorf("ipa: NewBench: n = %d, want > 0: %w", n, ErrConfig)
	}
	cfg := DefaultConfig()
	switch dtype {
	case "float32":
		run = newBench[float32](cfg, n, backward)
	case "float64":
		run = newBench[float64](cfg, n, backward)
	default:
		return nil, 0, fmt.Errorf("ipa: NewBench: dtype %q, want float32 or float64: %w", dtype, ErrConfig)
	}
	return run, Flops(cfg, n, backward), nil
}

func newBench[T num.Float](cfg Config, n int, backward bool) func() error {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	p, _ := NewParams[T](cfg, rng)
	// A fresh IPA has a zero output projection; give it weights so the
	// backward pass does its full work on non-zero numbers.
	for i := range p.OutputProjection.W {
		p.OutputProjection.W[i] = T(rng.NormFloat64() / math.Sqrt(float64(cfg.outputWidth())))
	}
	normal := func(k int) []T {
		x := make([]T, k)
		for i := range x {
			x[i] = T(rng.NormFloat64())
		}
		return x
	}
	s := normal(n * cfg.CS)
	z := normal(n * n * cfg.CZ)
	dout := normal(n * cfg.CS)
	frames := make([]rigid.Rigid[T], n)
	for i := range frames {
		frames[i] = randomFrame[T](rng)
	}
	mask := make([]T, n)
	for i := range mask {
		mask[i] = 1
	}
	out := make([]T, n*cfg.CS)
	if !backward {
		return func() error { return Forward(p, s, z, frames, mask, out, nil) }
	}
	// The gradients are outputs: allocated once and zeroed for each run.
	ds, dz := make([]T, len(s)), make([]T, len(z))
	dframes := make([]rigid.Rigid[T], n)
	g := p.ZerosLike()
	return func() error {
		clear(ds)
		clear(dz)
		clear(dframes)
		for _, a := range g.arrays() {
			clear(a)
		}
		var c Cache[T]
		if err := Forward(p, s, z, frames, mask, out, &c); err != nil {
			return err
		}
		return Backward(p, &c, dout, ds, dz, dframes, g)
	}
}

// randomFrame returns a frame with a uniformly random rotation (from a
// normalised Gaussian quaternion) and a translation uniform in [−3, 3]³.
func randomFrame[T num.Float](rng *rand.Rand) rigid.Rigid[T] {
	var q [4]float64
	var nn float64
	for k := range q {
		q[k] = rng.NormFloat64()
		nn += q[k] * q[k]
	}
	nn = math.Sqrt(nn)
	w, x, y, z := q[0]/nn, q[1]/nn, q[2]/nn, q[3]/nn
	r := [9]float64{
		w*w + x*x - y*y - z*z, 2 * (x*y - w*z), 2 * (x*z + w*y),
		2 * (x*y + w*z), w*w - x*x + y*y - z*z, 2 * (y*z - w*x),
		2 * (x*z - w*y), 2 * (y*z + w*x), w*w - x*x - y*y + z*z,
	}
	var f rigid.Rigid[T]
	for k := range 9 {
		f.Rot[k] = T(r[k])
	}
	for k := range 3 {
		f.Trans[k] = T(6*rng.Float64() - 3)
	}
	return f
}
