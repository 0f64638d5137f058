package ipa_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/ipa"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/rigid"
)

// randomFrame returns a frame with a uniformly random rotation (from a
// normalised Gaussian quaternion, AF2's convention in refcases §4) and a
// translation of up to scale in each coordinate.
func randomFrame(rng *rand.Rand, scale float64) rigid.Rigid[float64] {
	w, x, y, z := rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
	n := math.Sqrt(w*w + x*x + y*y + z*z)
	w, x, y, z = w/n, x/n, y/n, z/n
	return rigid.Rigid[float64]{
		Rot: [9]float64{
			w*w + x*x - y*y - z*z, 2 * (x*y - w*z), 2 * (x*z + w*y),
			2 * (x*y + w*z), w*w - x*x + y*y - z*z, 2 * (y*z - w*x),
			2 * (x*z - w*y), 2 * (y*z + w*x), w*w - x*x - y*y + z*z,
		},
		Trans: [3]float64{scale * (2*rng.Float64() - 1), scale * (2*rng.Float64() - 1), scale * (2*rng.Float64() - 1)},
	}
}

// compose returns g∘f: (R_g·R_f, R_g·t_f + t_g).
func compose(g, f rigid.Rigid[float64]) rigid.Rigid[float64] {
	var h rigid.Rigid[float64]
	for a := range 3 {
		for b := range 3 {
			for k := range 3 {
				h.Rot[3*a+b] += g.Rot[3*a+k] * f.Rot[3*k+b]
			}
		}
		h.Trans[a] = g.Rot[3*a]*f.Trans[0] + g.Rot[3*a+1]*f.Trans[1] + g.Rot[3*a+2]*f.Trans[2] + g.Trans[a]
	}
	return h
}

// Example builds IPA with AlphaFold2's default configuration, runs it on
// random frames, moves every frame by the same rigid motion, and shows that
// the output does not change.
func Example() {
	cfg := ipa.DefaultConfig()
	rng := rand.New(rand.NewPCG(1, 2))
	p, err := ipa.NewParams[float64](cfg, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	// AF2 initialises the output projection to zero, so a fresh IPA adds
	// nothing to s; give it weights, as training would.
	for i := range p.OutputProjection.W {
		p.OutputProjection.W[i] = 0.02 * rng.NormFloat64()
	}

	const n = 16
	s := make([]float64, n*cfg.CS)
	z := make([]float64, n*n*cfg.CZ)
	for i := range s {
		s[i] = rng.NormFloat64()
	}
	for i := range z {
		z[i] = rng.NormFloat64()
	}
	frames := make([]rigid.Rigid[float64], n)
	mask := make([]float64, n)
	for i := range frames {
		frames[i] = randomFrame(rng, 3)
		mask[i] = 1
	}
	out := make([]float64, n*cfg.CS)
	if err := ipa.Forward(p, s, z, frames, mask, out, nil); err != nil {
		fmt.Println(err)
		return
	}

	// One global rigid motion applied to every frame.
	motion := randomFrame(rng, 50)
	moved := make([]rigid.Rigid[float64], n)
	for i, f := range frames {
		moved[i] = compose(motion, f)
	}
	out2 := make([]float64, n*cfg.CS)
	if err := ipa.Forward(p, s, z, moved, mask, out2, nil); err != nil {
		fmt.Println(err)
		return
	}
	var size, change float64
	for i := range out {
		size = math.Max(size, math.Abs(out[i]))
		change = math.Max(change, math.Abs(out2[i]-out[i]))
	}
	fmt.Printf("output [%d %d], non-zero: %v\n", n, cfg.CS, size > 0.1)
	fmt.Printf("invariant under a global rigid motion (max change < 1e-10): %v\n", change < 1e-10)
	// Output:
	// output [16 384], non-zero: true
	// invariant under a global rigid motion (max change < 1e-10): true
}

// ExampleDefaultConfig shows AlphaFold2's IPA configuration.
func ExampleDefaultConfig() {
	cfg := ipa.DefaultConfig()
	fmt.Printf("c_s %d, c_z %d, %d heads, %d scalar channels, %d query points, %d value points\n",
		cfg.CS, cfg.CZ, cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints)
	fmt.Println(cfg.Validate())
	// Output:
	// c_s 384, c_z 128, 12 heads, 16 scalar channels, 4 query points, 8 value points
	// <nil>
}

// ExampleNewParams shows AlphaFold2's initialisation: the raw point weights
// give softplus = 1 and the output projection starts at zero.
func ExampleNewParams() {
	p, err := ipa.NewParams[float32](ipa.DefaultConfig(), rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		fmt.Println(err)
		return
	}
	raw := float64(p.TrainablePointWeights[0])
	fmt.Printf("softplus(trainable_point_weights) = %.3f\n", math.Log1p(math.Exp(raw)))
	fmt.Printf("output_projection %d×%d, first weight %v\n", p.OutputProjection.In, p.OutputProjection.Out, p.OutputProjection.W[0])
	// Output:
	// softplus(trainable_point_weights) = 1.000
	// output_projection 2112×384, first weight 0
}

// ExampleLoadParams reads IPA's parameters by their AF2 names; here from a
// set written by Save, in practice from an AF2 parameter file narrowed to the
// structure module's fold iteration.
func ExampleLoadParams() {
	cfg := ipa.DefaultConfig()
	p, err := ipa.NewParams[float32](cfg, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		fmt.Println(err)
		return
	}
	file := params.New()
	const prefix = "alphafold/alphafold_iteration/structure_module/fold_iteration/"
	if err := p.Save(file, prefix); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(file.Keys()[0])
	q, err := ipa.LoadParams[float32](file.Sub(prefix), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(q.QScalar.W[0] == p.QScalar.W[0], len(file.Unused()))
	// Output:
	// alphafold/alphafold_iteration/structure_module/fold_iteration/invariant_point_attention//trainable_point_weights
	// true 0
}
