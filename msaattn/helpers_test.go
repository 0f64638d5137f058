package msaattn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
)

// Small sizes for the property and gradient tests: every code path (several
// heads, several key tiles are not needed for correctness, masks) at a cost
// of milliseconds.
var (
	smallRow    = RowConfig{MSAChannels: 8, PairChannels: 6, Heads: 2, HeadChannels: 3}
	smallColumn = ColumnConfig{MSAChannels: 8, Heads: 2, HeadChannels: 3}
	smallGlobal = GlobalColumnConfig{MSAChannels: 8, Heads: 2, HeadChannels: 3}
)

// randomize overwrites every parameter with non-degenerate random values,
// as the reference cases do: weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1²),
// layer-norm scales ~ 1 + N(0, 0.2²). AF2's initialisers zero the output
// weights, which would make every property test trivially true.
func randomize[T num.Float](rng *rand.Rand, ts []param[T]) {
	for _, t := range ts {
		x := *t.data
		sd := 1 / math.Sqrt(float64(t.shape[0]))
		mean := 0.0
		switch {
		case len(t.shape) == 1 && hasSuffix(t.name, "scale"):
			sd, mean = 0.2, 1
		case len(t.shape) == 1 || hasSuffix(t.name, "gating_b"):
			sd = 0.1
		}
		for i := range x {
			x[i] = T(mean + sd*rng.NormFloat64())
		}
	}
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// randn returns n standard normal values rounded to T.
func randn[T num.Float](rng *rand.Rand, n int) []T {
	x := make([]T, n)
	for i := range x {
		x[i] = T(rng.NormFloat64())
	}
	return x
}

// randMask returns an [s, n] mask of ones with about a fifth of zeros, but
// position (·, 0) and (0, ·) present, so that no query has all its keys
// masked in either direction.
func randMask[T num.Float](rng *rand.Rand, s, n int) []T {
	m := make([]T, s*n)
	for i := range m {
		if i%n == 0 || i < n || rng.Float64() > 0.2 {
			m[i] = 1
		}
	}
	return m
}

func newRow[T num.Float](t testing.TB, rng *rand.Rand, cfg RowConfig) *RowAttention[T] {
	t.Helper()
	p, err := NewRowParams[T](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	randomize(rng, p.tensors(cfg))
	return &RowAttention[T]{Config: cfg, Params: p}
}

func newColumn[T num.Float](t testing.TB, rng *rand.Rand, cfg ColumnConfig) *ColumnAttention[T] {
	t.Helper()
	p, err := NewColumnParams[T](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	randomize(rng, p.tensors(cfg))
	return &ColumnAttention[T]{Config: cfg, Params: p}
}

func newGlobal[T num.Float](t testing.TB, rng *rand.Rand, cfg GlobalColumnConfig) *GlobalColumnAttention[T] {
	t.Helper()
	p, err := NewGlobalColumnParams[T](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	randomize(rng, p.tensors(cfg))
	return &GlobalColumnAttention[T]{Config: cfg, Params: p}
}

// maxDiff returns max_i |a_i − b_i|, +Inf if a value is NaN or the lengths
// differ.
func maxDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		e := math.Abs(a[i] - b[i])
		if math.IsNaN(e) {
			return math.Inf(1)
		}
		d = max(d, e)
	}
	return d
}

// permuteRows returns x [rows, w] with row i taken from row perm[i].
func permuteRows(x []float64, perm []int, w int) []float64 {
	y := make([]float64, len(x))
	for i, p := range perm {
		copy(y[i*w:(i+1)*w], x[p*w:(p+1)*w])
	}
	return y
}

// permuteResidues returns x [s, n, w] with residue i of every row taken from
// residue perm[i].
func permuteResidues(x []float64, perm []int, s, n, w int) []float64 {
	y := make([]float64, len(x))
	for si := range s {
		copy(y[si*n*w:(si+1)*n*w], permuteRows(x[si*n*w:(si+1)*n*w], perm, w))
	}
	return y
}

// permutePair returns z [n, n, w] with z'[i,j] = z[perm[i], perm[j]].
func permutePair(z []float64, perm []int, n, w int) []float64 {
	return permuteRows(permuteResidues(z, perm, n, n, w), perm, n*w)
}

func allFinite[T num.Float](x []T) bool {
	return num.CheckFinite("x", x) == nil
}
