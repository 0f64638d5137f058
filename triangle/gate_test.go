package triangle

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/simd"
)

// TestGateKernels checks the float32 gate kernels (AVX2 where present, and
// the portable loop on the tails) against float64 arithmetic on the same
// float32 inputs, over arguments from −100 to 100 that cover the clamps.
func TestGateKernels(t *testing.T) {
	const n = 20011 // not a multiple of 8: the tail runs the portable loop
	x := make([]float32, n)
	y := make([]float32, n)
	m := make([]float32, n)
	bx := make([]float32, n)
	by := make([]float32, n)
	for i := range n {
		y[i] = float32(i-n/2) / 100
		x[i] = float32(math.Sin(float64(i)))
		m[i] = float32(i % 3 / 2)
		bx[i] = float32(math.Cos(float64(i))) / 10
		by[i] = float32(math.Sin(float64(i)/7)) / 10
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	// The kernels round each operation to float32, and exp32 has relative
	// error below 2e-7: 1e-6 relative (about 8 ulp) bounds the whole chain.
	// Below 1e-30 the error is taken as absolute: the clamp at exp(88)
	// gives σ ≈ 6e-39 where the true value is smaller still.
	const tol = 1e-6
	check := func(name string, got []float32, want func(i int) float64) {
		t.Helper()
		worst := 0.0
		for i, g := range got {
			w := want(i)
			e := math.Abs(float64(g)-w) / math.Max(math.Abs(w), 1e-30)
			if math.IsNaN(float64(g)) || e > tol {
				t.Fatalf("%s[%d]: got %v, want %v (rel err %.3g)", name, i, g, w, e)
			}
			worst = max(worst, e)
		}
		t.Logf("%s: max rel err %.3g (AVX2 %v)", name, worst, simd.Available)
	}
	dst := make([]float32, n)
	gateMask(dst, x, y, m, 0.25, -0.5)
	check("gateMask", dst, func(i int) float64 {
		return float64(m[i]) * (float64(x[i]) + 0.25) * sig(float64(y[i]-0.5))
	})
	gateVec(dst, x, y, bx, by)
	check("gateVec", dst, func(i int) float64 {
		return (float64(x[i]) + float64(bx[i])) * sig(float64(y[i]+by[i]))
	})
	sigmoidVec(dst, y, by)
	check("sigmoidVec", dst, func(i int) float64 { return sig(float64(y[i] + by[i])) })
	sigmoidScalar(dst, y, 0.125)
	check("sigmoidScalar", dst, func(i int) float64 { return sig(float64(y[i] + 0.125)) })
	// The layer-norm kernels: exact float32 arithmetic up to one fused
	// multiply-add, so 1e-6 relative holds with room to spare.
	s1, s2 := append([]float32(nil), bx...), make([]float32, n)
	for i, v := range by {
		s2[i] = max(v, -v) // a sum of squares: no cancellation
	}
	moments(s1, s2, x, y)
	check("moments s1", s1, func(i int) float64 { return float64(bx[i]) + float64(x[i]-y[i]) })
	check("moments s2", s2, func(i int) float64 {
		d := float64(x[i] - y[i])
		return math.Abs(float64(by[i])) + d*d
	})
	normAffine(dst, x, y, bx, 1.5, 20) // o > |(x−m)·r·s|: no cancellation
	check("normAffine", dst, func(i int) float64 { return float64((x[i]-y[i])*bx[i])*1.5 + 20 })
	copy(dst, x)
	add(dst, y)
	check("add", dst, func(i int) float64 { return float64(x[i] + y[i]) })
	for _, v := range []float32{-1e30, -88.5, -87, 0, 87, 88.5, 1e30} {
		if s := sigmoid(v); math.IsNaN(float64(s)) || s < 0 || s > 1 {
			t.Errorf("sigmoid(%v) = %v", v, s)
		}
	}
}

// TestLayerNormKernel compares normInput's float32 path (the AVX2 row
// kernel where present) with nn.LayerNorm computed in float64 on the same
// inputs, for widths that are and are not multiples of 8. float32 sums of
// 136 terms: 1e-5 relative to the row's spread (about 100 ulp) bounds the
// round-off of either order of summation.
func TestLayerNormKernel(t *testing.T) {
	for _, c := range []int{8, 136, 13} {
		const rows = 301
		rng := rand.New(rand.NewPCG(uint64(c), 1))
		z := make([]float32, rows*c)
		for i := range z {
			z[i] = float32(3 + 2*rng.NormFloat64())
		}
		ln32 := nn.LayerNormParams[float32]{Scale: make([]float32, c), Offset: make([]float32, c), C: c}
		for i := range c {
			ln32.Scale[i] = float32(1 + 0.2*rng.NormFloat64())
			ln32.Offset[i] = float32(0.1 * rng.NormFloat64())
		}
		ln64 := nn.LayerNormParams[float64]{Scale: convert[float64](ln32.Scale), Offset: convert[float64](ln32.Offset), C: c}
		x, mean, rstd := make([]float32, len(z)), make([]float32, rows), make([]float32, rows)
		if err := normInput(&ln32, x, z, rows, c, mean, rstd); err != nil {
			t.Fatal(err)
		}
		x64, mean64, rstd64 := make([]float64, len(z)), make([]float64, rows), make([]float64, rows)
		ln64.Forward(x64, convert[float64](z), rows, mean64, rstd64)
		for _, cmp := range []struct {
			name      string
			got, want []float64
		}{
			{"y", convert[float64](x), x64}, {"mean", convert[float64](mean), mean64}, {"rstd", convert[float64](rstd), rstd64},
		} {
			d, s := maxDiff(cmp.got, cmp.want)
			if d > 1e-5*s {
				t.Errorf("c=%d %s: max difference %.3g (max |value| %.3g)", c, cmp.name, d, s)
			}
		}
	}
	z := []float32{1, 2, float32(math.Inf(1)), 4, 5, 6, 7, 8}
	x, m, r := make([]float32, 8), make([]float32, 1), make([]float32, 1)
	if err := normInput(&nn.LayerNormParams[float32]{Scale: make([]float32, 8), Offset: make([]float32, 8), C: 8}, x, z, 1, 8, m, r); err == nil {
		t.Error("an infinity in z was accepted")
	}
}
