package ipa

import (
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// smallConfig is a reduced IPA whose every width differs, so that a
// transposed or mis-strided layout cannot pass by symmetry.
func smallConfig() Config {
	return Config{CS: 7, CZ: 5, Heads: 3, Channels: 4, QueryPoints: 2, ValuePoints: 3, Eps: 1e-8, Inf: 1e5}
}

// randomParams returns non-degenerate parameters drawn as the reference
// cases draw them (refcases §1): weights ~ N(0, 1/fan_in), biases
// ~ N(0, 0.1²), raw point weights ~ N(0.5, 0.3²), so that every path,
// including the output projection, contributes. The values are float64
// draws rounded to T, so float32 and float64 copies from the same seed agree.
func randomParams[T num.Float](cfg Config, seed uint64) *Params[T] {
	rng := rand.New(rand.NewPCG(seed, 1))
	p, err := NewParams[T](cfg, rng)
	if err != nil {
		panic(err)
	}
	for _, l := range p.linears(cfg) {
		sd := 1 / math.Sqrt(float64(l.in))
		for i := range l.p.W {
			l.p.W[i] = T(sd * rng.NormFloat64())
		}
		for i := range l.p.B {
			l.p.B[i] = T(0.1 * rng.NormFloat64())
		}
	}
	for i := range p.TrainablePointWeights {
		p.TrainablePointWeights[i] = T(0.5 + 0.3*rng.NormFloat64())
	}
	return p
}

// randomRotation returns a uniformly random rotation matrix (from a
// normalised Gaussian quaternion), row-major.
func randomRotation(rng *rand.Rand) [9]float64 {
	var q [4]float64
	var n float64
	for k := range q {
		q[k] = rng.NormFloat64()
		n += q[k] * q[k]
	}
	n = math.Sqrt(n)
	w, x, y, z := q[0]/n, q[1]/n, q[2]/n, q[3]/n
	return [9]float64{
		w*w + x*x - y*y - z*z, 2 * (x*y - w*z), 2 * (x*z + w*y),
		2 * (x*y + w*z), w*w - x*x + y*y - z*z, 2 * (y*z - w*x),
		2 * (x*z - w*y), 2 * (y*z + w*x), w*w - x*x - y*y + z*z,
	}
}

// inputs is one random IPA input in float64.
type inputs struct {
	n       int
	s, z    []float64
	frames  []rigid.Rigid[float64]
	mask    []float64
	cot     []float64 // a cotangent for the output
	cfg     Config
	maskIdx int // the masked residue, or −1
}

// randomInputs draws s, z ~ N(0, 1), frames with uniform rotations and
// translations in [−3, 3]³ (the scale of the reference case), a cotangent,
// and a mask with residue maskIdx set to 0 (none if maskIdx < 0).
func randomInputs(cfg Config, n int, maskIdx int, seed uint64) *inputs {
	rng := rand.New(rand.NewPCG(seed, 2))
	in := &inputs{n: n, cfg: cfg, maskIdx: maskIdx}
	in.s = normals(rng, n*cfg.CS)
	in.z = normals(rng, n*n*cfg.CZ)
	in.cot = normals(rng, n*cfg.CS)
	in.frames = make([]rigid.Rigid[float64], n)
	for i := range in.frames {
		in.frames[i].Rot = randomRotation(rng)
		for k := range 3 {
			in.frames[i].Trans[k] = 6*rng.Float64() - 3
		}
	}
	in.mask = make([]float64, n)
	for i := range in.mask {
		in.mask[i] = 1
	}
	if maskIdx >= 0 {
		in.mask[maskIdx] = 0
	}
	return in
}

func normals(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// convert returns x rounded to T.
func convert[T num.Float](x []float64) []T {
	y := make([]T, len(x))
	for i, v := range x {
		y[i] = T(v)
	}
	return y
}

func convertFrames[T num.Float](f []rigid.Rigid[float64]) []rigid.Rigid[T] {
	g := make([]rigid.Rigid[T], len(f))
	for i := range f {
		for k := range 9 {
			g[i].Rot[k] = T(f[i].Rot[k])
		}
		for k := range 3 {
			g[i].Trans[k] = T(f[i].Trans[k])
		}
	}
	return g
}

// run runs Forward in T on in and returns the output in float64.
func run[T num.Float](p *Params[T], in *inputs) ([]float64, error) {
	out := make([]T, in.n*p.Config.CS)
	err := Forward(p, convert[T](in.s), convert[T](in.z), convertFrames[T](in.frames), convert[T](in.mask), out, nil)
	o := make([]float64, len(out))
	for i, v := range out {
		o[i] = float64(v)
	}
	return o, err
}

// maxAbsDiff returns max |a − b| and max |b|.
func maxAbsDiff(a, b []float64) (diff, scale float64) {
	for i := range a {
		diff = math.Max(diff, math.Abs(a[i]-b[i]))
		scale = math.Max(scale, math.Abs(b[i]))
	}
	return diff, scale
}
