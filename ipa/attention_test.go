package ipa

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// moveAll returns frames moved by the global rigid motion (r, t):
// T_i → (r·R_i, r·t_i + t), computed in float64.
func moveAll(frames []rigid.Rigid[float64], r [9]float64, t [3]float64) []rigid.Rigid[float64] {
	out := make([]rigid.Rigid[float64], len(frames))
	for i, f := range frames {
		for a := range 3 {
			for b := range 3 {
				var s float64
				for k := range 3 {
					s += r[3*a+k] * f.Rot[3*k+b]
				}
				out[i].Rot[3*a+b] = s
			}
			out[i].Trans[a] = r[3*a]*f.Trans[0] + r[3*a+1]*f.Trans[1] + r[3*a+2]*f.Trans[2] + t[a]
		}
	}
	return out
}

// TestSE3Invariance applies one random global rigid motion (uniform rotation,
// translation up to 100 units in each coordinate) to all frames and checks
// that the output does not change, over many draws, at AF2's default widths.
func TestSE3Invariance(t *testing.T) {
	cfg := DefaultConfig()
	const n, draws = 12, 40
	p64 := randomParams[float64](cfg, 5)
	p32 := randomParams[float32](cfg, 5)
	var worst64, worst32 float64
	for d := range draws {
		in := randomInputs(cfg, n, d%n, uint64(100+d))
		rng := rand.New(rand.NewPCG(uint64(d), 9))
		r := randomRotation(rng)
		var tr [3]float64
		for k := range tr {
			tr[k] = 200*rng.Float64() - 100
		}
		moved := *in
		moved.frames = moveAll(in.frames, r, tr)

		a, err := run(p64, in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := run(p64, &moved)
		if err != nil {
			t.Fatal(err)
		}
		diff, _ := maxAbsDiff(b, a)
		worst64 = math.Max(worst64, diff)
		// float64: the motion changes round-off only; outputs are O(1), and
		// 1e-10 is the bound (the measured error is ~1e-13).
		if diff > 1e-10 {
			t.Errorf("draw %d float64: max abs change %.3g > 1e-10", d, diff)
		}

		a, err = run(p32, in)
		if err != nil {
			t.Fatal(err)
		}
		b, err = run(p32, &moved)
		if err != nil {
			t.Fatal(err)
		}
		diff, scale := maxAbsDiff(b, a)
		worst32 = math.Max(worst32, diff/scale)
		// float32: rounding the moved frames to float32 perturbs coordinates
		// of size ~100 by ~1e-5; the bound is 1e-4 relative to the
		// output's magnitude.
		if diff > 1e-4*scale {
			t.Errorf("draw %d float32: max abs change %.3g > 1e-4 × max |out| %.3g", d, diff, scale)
		}
	}
	t.Logf("over %d draws: float64 max abs change %.3g, float32 max change / max |out| %.3g", draws, worst64, worst32)
}

// TestPermutationEquivariance permutes the residues (rows of s, rows and
// columns of z, frames, mask) and checks that the output rows are permuted
// the same way.
func TestPermutationEquivariance(t *testing.T) {
	cfg := smallConfig()
	const n = 9
	p := randomParams[float64](cfg, 6)
	for trial := range 5 {
		in := randomInputs(cfg, n, trial, uint64(40+trial))
		perm := rand.New(rand.NewPCG(uint64(trial), 3)).Perm(n)
		pin := *in
		pin.s = make([]float64, len(in.s))
		pin.z = make([]float64, len(in.z))
		pin.frames = make([]rigid.Rigid[float64], n)
		pin.mask = make([]float64, n)
		cs, cz := cfg.CS, cfg.CZ
		for i, pi := range perm {
			copy(pin.s[i*cs:(i+1)*cs], in.s[pi*cs:])
			for j, pj := range perm {
				copy(pin.z[(i*n+j)*cz:(i*n+j+1)*cz], in.z[(pi*n+pj)*cz:])
			}
			pin.frames[i] = in.frames[pi]
			pin.mask[i] = in.mask[pi]
		}
		a, err := run(p, in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := run(p, &pin)
		if err != nil {
			t.Fatal(err)
		}
		var diff float64
		for i, pi := range perm {
			for c := range cs {
				diff = math.Max(diff, math.Abs(b[i*cs+c]-a[pi*cs+c]))
			}
		}
		// Only the order of the sums changes: round-off of O(1) values
		// over ~N·c terms, ~1e-15; 1e-12 leaves a wide margin.
		if diff > 1e-12 {
			t.Errorf("trial %d: permuted output differs by %.3g", trial, diff)
		}
	}
}

// TestMaskedResidues checks that a masked residue influences no other
// residue (changing its s, its row and column of z and its frame, even to a
// far-away translation, leaves every other output row bit for bit the same,
// because its attention weights underflow to exactly 0), and that masked
// rows, and a fully masked input, give finite outputs.
func TestMaskedResidues(t *testing.T) {
	cfg := smallConfig()
	const n, k = 6, 2
	t.Run("float64", func(t *testing.T) { testMasked[float64](t, cfg, n, k) })
	t.Run("float32", func(t *testing.T) { testMasked[float32](t, cfg, n, k) })
}

func testMasked[T num.Float](t *testing.T, cfg Config, n, k int) {
	p := randomParams[T](cfg, 8)
	in := randomInputs(cfg, n, k, 21)
	a, err := run(p, in)
	if err != nil {
		t.Fatal(err)
	}
	ch := *in
	ch.s = append([]float64(nil), in.s...)
	ch.z = append([]float64(nil), in.z...)
	ch.frames = append([]rigid.Rigid[float64](nil), in.frames...)
	rng := rand.New(rand.NewPCG(1, 1))
	for c := range cfg.CS {
		ch.s[k*cfg.CS+c] = 10 * rng.NormFloat64()
	}
	for j := range n {
		for c := range cfg.CZ {
			ch.z[(k*n+j)*cfg.CZ+c] = 10 * rng.NormFloat64()
			ch.z[(j*n+k)*cfg.CZ+c] = 10 * rng.NormFloat64()
		}
	}
	ch.frames[k] = rigid.Rigid[float64]{Rot: randomRotation(rng), Trans: [3]float64{1e3, -2e3, 5e2}}
	b, err := run(p, &ch)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for c := range cfg.CS {
			x := i*cfg.CS + c
			if math.IsNaN(b[x]) || math.IsInf(b[x], 0) {
				t.Fatalf("out[%d,%d] = %v", i, c, b[x])
			}
			if i != k && a[x] != b[x] {
				t.Errorf("out[%d,%d] changed from %v to %v when masked residue %d changed", i, c, a[x], b[x], k)
			}
		}
	}
	all := *in
	all.mask = make([]float64, n)
	o, err := run(p, &all)
	if err != nil {
		t.Fatal(err)
	}
	if err := num.CheckFinite("out with every residue masked", o); err != nil {
		t.Error(err)
	}
}

// TestFloat32MatchesFloat64 checks that the float32 computation lands near
// the float64 one at AF2's default widths, including on the masked row.
func TestFloat32MatchesFloat64(t *testing.T) {
	cfg := DefaultConfig()
	in := randomInputs(cfg, 24, 7, 77)
	a, err := run(randomParams[float64](cfg, 1), in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := run(randomParams[float32](cfg, 1), in)
	if err != nil {
		t.Fatal(err)
	}
	diff, scale := maxAbsDiff(b, a)
	t.Logf("float32 vs float64: max abs diff %.3g, max |out| %.3g", diff, scale)
	// The reference case measured 1.7e-6 for float32 vs float64 on present
	// rows; 1e-4 × scale is the module-case tolerance.
	if diff > 1e-4*scale {
		t.Errorf("float32 differs from float64 by %.3g (max |out| %.3g)", diff, scale)
	}
}

// TestBadInputs checks that malformed inputs give errors that name the
// problem and wrap the right sentinel, and never panic.
func TestBadInputs(t *testing.T) {
	cfg := smallConfig()
	const n = 4
	p := randomParams[float64](cfg, 2)
	type args struct {
		s, z, mask, out []float64
		frames          []rigid.Rigid[float64]
		p               *Params[float64]
	}
	good := func() args {
		in := randomInputs(cfg, n, 1, 5)
		return args{s: in.s, z: in.z, mask: in.mask, out: make([]float64, n*cfg.CS), frames: in.frames, p: p}
	}
	for _, tc := range []struct {
		name   string
		change func(a *args)
		want   error
		msg    string
	}{
		{"s too short", func(a *args) { a.s = a.s[:len(a.s)-1] }, num.ErrShape, "single s"},
		{"z for another N", func(a *args) { a.z = make([]float64, (n+1)*(n+1)*cfg.CZ) }, num.ErrShape, "pair z"},
		{"mask too long", func(a *args) { a.mask = append(a.mask, 1) }, num.ErrShape, "mask"},
		{"frames fewer than s rows", func(a *args) { a.frames = a.frames[:n-1] }, num.ErrShape, "single s"},
		{"no frames", func(a *args) { a.frames = nil }, num.ErrShape, "N = 0"},
		{"output too short", func(a *args) { a.out = a.out[:1] }, num.ErrShape, "output"},
		{"NaN in s", func(a *args) { a.s[3] = math.NaN() }, num.ErrNaN, "single s[3]"},
		{"Inf in z", func(a *args) { a.z[7] = math.Inf(-1) }, num.ErrNaN, "pair z[7]"},
		{"NaN in mask", func(a *args) { a.mask[2] = math.NaN() }, num.ErrNaN, "mask[2]"},
		{"NaN in rotation", func(a *args) { a.frames[1].Rot[4] = math.NaN() }, num.ErrNaN, "frames[1].Rot"},
		{"NaN in translation", func(a *args) { a.frames[2].Trans[0] = math.NaN() }, num.ErrNaN, "frames[2].Trans"},
		{"scaled rotation", func(a *args) {
			for k := range 9 {
				a.frames[3].Rot[k] *= 1.01
			}
		}, rigid.ErrNotRotation, "frames[3]"},
		{"reflection", func(a *args) {
			for k := range 3 {
				a.frames[0].Rot[3*k] = -a.frames[0].Rot[3*k]
			}
		}, rigid.ErrNotRotation, "frames[0]"},
		{"zero rotation", func(a *args) { a.frames[2].Rot = [9]float64{} }, rigid.ErrNotRotation, "frames[2]"},
		{"invalid config", func(a *args) {
			q := *p
			q.Config.Heads = 0
			a.p = &q
		}, ErrConfig, "Heads"},
		{"parameter of wrong length", func(a *args) {
			q := *p
			q.KVScalar.W = q.KVScalar.W[1:]
			a.p = &q
		}, num.ErrShape, "kv_scalar//weights"},
		{"point weights missing", func(a *args) {
			q := *p
			q.TrainablePointWeights = nil
			a.p = &q
		}, num.ErrShape, "trainable_point_weights"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := good()
			tc.change(&a)
			err := Forward(a.p, a.s, a.z, a.frames, a.mask, a.out, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "ipa: ") || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not start with \"ipa: \" and name %q", err, tc.msg)
			}
		})
	}

	t.Run("backward", func(t *testing.T) {
		a := good()
		var c Cache[float64]
		dout := make([]float64, n*cfg.CS)
		if err := Backward(p, &c, dout, nil, nil, nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("Backward on an empty cache: %v, want ErrConfig", err)
		}
		if err := Forward(p, a.s, a.z, a.frames, a.mask, a.out, &c); err != nil {
			t.Fatal(err)
		}
		if err := Backward(p, &c, dout[1:], nil, nil, nil, nil); !errors.Is(err, num.ErrShape) {
			t.Errorf("short dout: %v, want ErrShape", err)
		}
		if err := Backward(p, &c, dout, make([]float64, 3), nil, nil, nil); !errors.Is(err, num.ErrShape) {
			t.Errorf("short ds: %v, want ErrShape", err)
		}
		if err := Backward(p, &c, dout, nil, nil, make([]rigid.Rigid[float64], n+1), nil); !errors.Is(err, num.ErrShape) {
			t.Errorf("long dframes: %v, want ErrShape", err)
		}
		bad := append([]float64(nil), dout...)
		bad[0] = math.NaN()
		if err := Backward(p, &c, bad, nil, nil, nil, nil); !errors.Is(err, num.ErrNaN) {
			t.Errorf("NaN dout: %v, want ErrNaN", err)
		}
		g := p.ZerosLike()
		g.Config.CZ++
		if err := Backward(p, &c, dout, nil, nil, nil, g); !errors.Is(err, ErrConfig) {
			t.Errorf("gradient for another config: %v, want ErrConfig", err)
		}
	})
}

// TestConfig checks DefaultConfig against AF2's values and Validate's errors.
func TestConfig(t *testing.T) {
	c := DefaultConfig()
	want := Config{CS: 384, CZ: 128, Heads: 12, Channels: 16, QueryPoints: 4, ValuePoints: 8, Eps: 1e-8, Inf: 1e5}
	if c != want {
		t.Errorf("DefaultConfig() = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
	if w := c.outputWidth(); w != 2112 {
		t.Errorf("output projection input width %d, want 2112", w)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
	}{
		{"CS", func(c *Config) { c.CS = 0 }},
		{"CZ", func(c *Config) { c.CZ = -1 }},
		{"Heads", func(c *Config) { c.Heads = 0 }},
		{"Channels", func(c *Config) { c.Channels = 0 }},
		{"QueryPoints", func(c *Config) { c.QueryPoints = 0 }},
		{"ValuePoints", func(c *Config) { c.ValuePoints = 0 }},
		{"Eps", func(c *Config) { c.Eps = math.NaN() }},
		{"Inf", func(c *Config) { c.Inf = 0 }},
	} {
		c := DefaultConfig()
		tc.change(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: Validate() = %v, want ErrConfig naming the field", tc.name, err)
		}
	}
}

// TestSingleResidue checks the smallest input, N = 1, in both directions:
// the output is finite and Backward runs.
func TestSingleResidue(t *testing.T) {
	cfg := smallConfig()
	p := randomParams[float64](cfg, 3)
	in := randomInputs(cfg, 1, -1, 4)
	var c Cache[float64]
	out := make([]float64, cfg.CS)
	if err := Forward(p, in.s, in.z, in.frames, in.mask, out, &c); err != nil {
		t.Fatal(err)
	}
	if err := num.CheckFinite("out", out); err != nil {
		t.Fatal(err)
	}
	ds := make([]float64, cfg.CS)
	if err := Backward(p, &c, in.cot, ds, make([]float64, cfg.CZ), make([]rigid.Rigid[float64], 1), p.ZerosLike()); err != nil {
		t.Fatal(err)
	}
	if err := num.CheckFinite("ds", ds); err != nil {
		t.Fatal(err)
	}
}
