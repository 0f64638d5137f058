package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

func meanStd(x []float64) (m, s float64) {
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return m, math.Sqrt(s / float64(len(x)))
}

// TestNewLinearStatistics checks the initialisers' sample statistics at a
// fixed seed. With n = in·out = 65536 weights of standard deviation σ:
//   - the sample mean has standard deviation σ/√n = σ/256; the test allows 5 of those;
//   - the sample standard deviation has relative standard deviation
//     √((κ−1)/n)/2, with kurtosis κ = 2.366 for a unit normal truncated to ±2
//     (numerical integration) and 1.8 for a uniform: 0.23% and 0.17%; the
//     test allows 1.5% (more than 6 of those);
//   - truncated and uniform weights never exceed their bound, and with
//     ~0.6% of a truncated normal's mass within 2.5% of the cut-off (and 1% of a
//     uniform's within 1%), the largest weight lies that close to it.
//
// in ≠ out, so that fan_in and fan_avg give different values.
func TestNewLinearStatistics(t *testing.T) {
	const in, out = 512, 128
	for _, tc := range []struct {
		init  Init
		std   float64 // wanted standard deviation
		bound float64 // |w| ≤ bound, with max |w| ≥ (1 − near)·bound
		near  float64
	}{
		{InitLinear, math.Sqrt(1.0 / in), 2 * math.Sqrt(1.0/in) / truncStdFactor, 0.025},
		{InitRelu, math.Sqrt(2.0 / in), 2 * math.Sqrt(2.0/in) / truncStdFactor, 0.025},
		{InitGlorot, math.Sqrt(2.0 / (in + out)), math.Sqrt(6.0 / (in + out)), 0.01},
	} {
		p := NewLinear[float64](rand.New(rand.NewPCG(5, uint64(tc.init))), in, out, tc.init, true)
		if p.In != in || p.Out != out || len(p.W) != in*out || len(p.B) != out {
			t.Fatalf("%v: shape %d×%d, %d weights, %d biases", tc.init, p.In, p.Out, len(p.W), len(p.B))
		}
		m, s := meanStd(p.W)
		mx := 0.0
		for _, v := range p.W {
			mx = max(mx, math.Abs(v))
		}
		t.Logf("%v: mean %.2g (σ/√n = %.2g), std %.5f (want %.5f, ratio %.4f), max |w| %.5f of bound %.5f",
			tc.init, m, tc.std/256, s, tc.std, s/tc.std, mx, tc.bound)
		if math.Abs(m) > 5*tc.std/256 {
			t.Errorf("%v: mean %g, want 0 ± %g", tc.init, m, 5*tc.std/256)
		}
		if math.Abs(s/tc.std-1) > 0.015 {
			t.Errorf("%v: std %g, want %g ± 1.5%%", tc.init, s, tc.std)
		}
		if mx > tc.bound || mx < (1-tc.near)*tc.bound {
			t.Errorf("%v: max |w| = %g, want in [%g, %g]", tc.init, mx, (1-tc.near)*tc.bound, tc.bound)
		}
		for j, v := range p.B {
			if v != 0 {
				t.Fatalf("%v: bias[%d] = %v, want 0", tc.init, j, v)
			}
		}
	}
}

func TestNewLinearDeterministic(t *testing.T) {
	for _, init := range []Init{InitLinear, InitRelu, InitGlorot, InitZeros, InitGating} {
		p64 := NewLinear[float64](rand.New(rand.NewPCG(6, 1)), 7, 3, init, false)
		p32 := NewLinear[float32](rand.New(rand.NewPCG(6, 1)), 7, 3, init, false)
		if p64.B != nil || p32.B != nil {
			t.Errorf("%v: bias without bias", init)
		}
		for i := range p64.W {
			if float32(p64.W[i]) != p32.W[i] {
				t.Errorf("%v: float32 weight %d = %v, want float32(%v)", init, i, p32.W[i], p64.W[i])
			}
		}
	}
}

func TestNewLinearConstant(t *testing.T) {
	for _, tc := range []struct {
		init Init
		b    float64
	}{{InitZeros, 0}, {InitGating, 1}} {
		p := NewLinear[float32](nil, 5, 4, tc.init, true) // rng is not needed
		for i, v := range p.W {
			if v != 0 {
				t.Errorf("%v: W[%d] = %v, want 0", tc.init, i, v)
			}
		}
		for j, v := range p.B {
			if float64(v) != tc.b {
				t.Errorf("%v: B[%d] = %v, want %v", tc.init, j, v, tc.b)
			}
		}
	}
}

func TestInitString(t *testing.T) {
	for init, want := range map[Init]string{
		InitLinear: "linear", InitRelu: "relu", InitZeros: "zeros", InitGating: "gating", InitGlorot: "glorot", Init(9): "Init(9)",
	} {
		if got := init.String(); got != want {
			t.Errorf("Init(%d).String() = %q, want %q", int(init), got, want)
		}
	}
}

func TestNewLinearBadInit(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewLinear with Init(9) did not panic")
		}
	}()
	NewLinear[float32](rand.New(rand.NewPCG(1, 1)), 2, 2, Init(9), true)
}
