package triangle

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
)

// Small configurations for the property tests: every path of the modules
// runs, with widths that keep float64 tests fast.
func smallMul(incoming bool) MulConfig {
	return MulConfig{Incoming: incoming, PairChannels: 6, HiddenChannels: 5}
}

func smallAtt(ending bool) AttConfig {
	return AttConfig{Ending: ending, PairChannels: 6, Heads: 2, HeadChannels: 3}
}

// testMulParams returns random parameters for cfg with no zero
// initialisation left (every path contributes).
func testMulParams[T num.Float](t testing.TB, cfg MulConfig, seed uint64) *MulParams[T] {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	p, err := NewMulParams[T](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	perturbMul(p, rng)
	for _, l := range p.linears(cfg) {
		jitter(l.p.W, rng, 1/math.Sqrt(float64(l.in)))
	}
	return p
}

// testAttParams is testMulParams for the attention.
func testAttParams[T num.Float](t testing.TB, cfg AttConfig, seed uint64) *AttParams[T] {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 9))
	p, err := NewAttParams[T](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	perturbAtt(p, rng)
	jitter(p.Attention.OutputW, rng, 0.3)
	return p
}

// testPair returns a pair representation [n, n, cz] of unit normals and a
// mask with random holes (about one pair in five) but no row or column
// fully masked.
func testPair(n, cz int, seed uint64) (z, mask []float64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	z, mask = randomPair[float64](rng, n, cz)
	for i := range mask {
		if rng.IntN(5) == 0 && i%(n+1) != 0 {
			mask[i] = 0
		}
	}
	return z, mask
}

// randn returns n unit normals.
func randn(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 13))
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// convert returns x converted to T.
func convert[T, U num.Float](x []U) []T {
	y := make([]T, len(x))
	for i, v := range x {
		y[i] = T(v)
	}
	return y
}

// transposePair returns the pair tensor [n, n, c] with its two residue axes
// swapped.
func transposePair[T num.Float](x []T, n, c int) []T {
	y := make([]T, len(x))
	for i := range n {
		for j := range n {
			copy(y[(j*n+i)*c:(j*n+i+1)*c], x[(i*n+j)*c:(i*n+j+1)*c])
		}
	}
	return y
}

// permutePair returns y with y[i, j] = x[perm[i], perm[j]] for a pair
// tensor [n, n, c].
func permutePair[T num.Float](x []T, n, c int, perm []int) []T {
	y := make([]T, len(x))
	for i := range n {
		for j := range n {
			src := perm[i]*n + perm[j]
			copy(y[(i*n+j)*c:(i*n+j+1)*c], x[src*c:(src+1)*c])
		}
	}
	return y
}

// maxDiff returns max |a − b| and max |b|.
func maxDiff[T, U num.Float](a []T, b []U) (diff, scale float64) {
	for i, v := range a {
		diff = max(diff, math.Abs(float64(v)-float64(b[i])))
		scale = max(scale, math.Abs(float64(b[i])))
	}
	return diff, scale
}

// allFinite reports whether every element of x is finite.
func allFinite[T num.Float](x []T) bool {
	return num.CheckFinite("x", x) == nil
}

// dot returns Σ a·b in float64.
func dot[T num.Float](a []T, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * b[i]
	}
	return s
}

// module is a triangle module run through its exported API, for tests
// that treat the four alike.
type module struct {
	name     string
	forward  func(z, mask []float64, n int) ([]float64, error)
	backward func(z, mask, cot []float64, n int) (dz []float64, grads map[string][]float64, err error)
	params   func() map[string][]float64 // the parameter arrays, by AF2 name (shared with the module)
	cz       int
}

// modules returns the four modules at small widths in float64, with
// random parameters.
func modules(t testing.TB) []module {
	var ms []module
	for _, incoming := range []bool{false, true} {
		cfg := smallMul(incoming)
		p := testMulParams[float64](t, cfg, 3)
		ms = append(ms, module{
			name: cfg.Name(),
			cz:   cfg.PairChannels,
			forward: func(z, mask []float64, n int) ([]float64, error) {
				out := make([]float64, len(z))
				return out, MulForward(p, z, mask, n, out, nil)
			},
			backward: func(z, mask, cot []float64, n int) ([]float64, map[string][]float64, error) {
				var c MulCache[float64]
				out := make([]float64, len(z))
				if err := MulForward(p, z, mask, n, out, &c); err != nil {
					return nil, nil, err
				}
				dz, g := make([]float64, len(z)), p.ZerosLike()
				if err := MulBackward(p, &c, cot, dz, g); err != nil {
					return nil, nil, err
				}
				return dz, mulArrays(g), nil
			},
			params: func() map[string][]float64 { return mulArrays(p) },
		})
	}
	for _, ending := range []bool{false, true} {
		cfg := smallAtt(ending)
		p := testAttParams[float64](t, cfg, 5)
		ms = append(ms, module{
			name: cfg.Name(),
			cz:   cfg.PairChannels,
			forward: func(z, mask []float64, n int) ([]float64, error) {
				out := make([]float64, len(z))
				return out, AttForward(p, z, mask, n, out, nil)
			},
			backward: func(z, mask, cot []float64, n int) ([]float64, map[string][]float64, error) {
				var c AttCache[float64]
				out := make([]float64, len(z))
				if err := AttForward(p, z, mask, n, out, &c); err != nil {
					return nil, nil, err
				}
				dz, g := make([]float64, len(z)), p.ZerosLike()
				if err := AttBackward(p, &c, cot, dz, g); err != nil {
					return nil, nil, err
				}
				return dz, attArrays(g), nil
			},
			params: func() map[string][]float64 { return attArrays(p) },
		})
	}
	return ms
}

// mulArrays lists the parameter arrays of p by AF2 name (sharing storage).
func mulArrays[T num.Float](p *MulParams[T]) map[string][]T {
	m := map[string][]T{}
	for _, l := range p.norms(p.Config) {
		m[l.name+"//scale"], m[l.name+"//offset"] = l.p.Scale, l.p.Offset
	}
	for _, l := range p.linears(p.Config) {
		m[l.name+"//weights"], m[l.name+"//bias"] = l.p.W, l.p.B
	}
	return m
}

// attArrays lists the parameter arrays of p by AF2 name (sharing storage).
func attArrays[T num.Float](p *AttParams[T]) map[string][]T {
	a := &p.Attention
	return map[string][]T{
		"query_norm//scale": p.QueryNorm.Scale, "query_norm//offset": p.QueryNorm.Offset,
		"/feat_2d_weights":   p.FeatTwoDWeights,
		"attention//query_w": a.QueryW, "attention//key_w": a.KeyW, "attention//value_w": a.ValueW,
		"attention//gating_w": a.GatingW, "attention//gating_b": a.GatingB,
		"attention//output_w": a.OutputW, "attention//output_b": a.OutputB,
	}
}
