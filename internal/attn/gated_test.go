package attn

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
)

// randomGated returns gated-attention weights with every array random and
// non-zero (unlike NewGated, whose output weights are 0), so that every path
// carries gradient.
func randomGated(rng *rand.Rand, cin, heads, c, cout int) GatedParams[float64] {
	p := NewGated[float64](rng, cin, heads, c, cout)
	for _, a := range [][]float64{p.QueryW, p.KeyW, p.ValueW, p.GatingW, p.GatingB, p.OutputW, p.OutputB} {
		for i := range a {
			a[i] = normal(0.5)(rng)
		}
	}
	return p
}

// gatedCase is one gated-attention problem: sizes and the layout of x and out.
type gatedCase struct {
	name                       string
	batch, l, cin, heads, c, o int
	layout                     layoutKind
	pairBias, mask             bool
}

var gatedCases = []gatedCase{
	{name: "contiguous", batch: 2, l: 5, cin: 6, heads: 2, c: 3, o: 4, layout: contiguous, pairBias: true, mask: true},
	{name: "column", batch: 3, l: 4, cin: 5, heads: 2, c: 2, o: 3, layout: column, pairBias: false, mask: true},
	{name: "padded-l1", batch: 3, l: 1, cin: 4, heads: 1, c: 3, o: 2, layout: padded, pairBias: true, mask: false},
}

// build returns parameters and inputs of c, and a random cotangent for out.
func (c gatedCase) build(seed uint64) (p GatedParams[float64], x []float64, xL Layout, pb, mask []float64, oL Layout, on int, w []float64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	p = randomGated(rng, c.cin, c.heads, c.c, c.o)
	var n int
	xL, n = layoutFor(c.layout, c.batch, c.l, c.cin)
	x = newTensor(rng, xL, n, c.batch, c.l, c.cin, normal(1))
	if c.pairBias {
		pb = make([]float64, c.heads*c.l*c.l)
		for i := range pb {
			pb[i] = normal(1)(rng)
		}
	}
	if c.mask {
		mask = make([]float64, c.batch*c.l)
		for i := range mask {
			if i%c.l == 0 || rng.Float64() > 0.3 {
				mask[i] = 1
			}
		}
	}
	oL, on = layoutFor(c.layout, c.batch, c.l, c.o)
	w = newTensor(rng, oL, on, c.batch, c.l, c.o, normal(1))
	return
}

// TestGatedFiniteDifference checks GatedBackward in float64 against central
// differences of L = Σ out⊙w for every element of x, the pair bias and every
// parameter array.
func TestGatedFiniteDifference(t *testing.T) {
	for _, c := range gatedCases {
		t.Run(c.name, func(t *testing.T) {
			p, x, xL, pb, mask, oL, on, w := c.build(1)
			lossWith := func(pb []float64) float64 {
				out := make([]float64, on)
				if err := GatedForward(&p, x, xL, c.batch, c.l, pb, mask, out, oL, nil); err != nil {
					t.Fatal(err)
				}
				var l float64
				for i, v := range out {
					if !math.IsNaN(w[i]) {
						l += v * w[i]
					}
				}
				return l
			}
			loss := func() float64 { return lossWith(pb) }
			var cache GatedCache[float64]
			out := make([]float64, on)
			if err := GatedForward(&p, x, xL, c.batch, c.l, pb, mask, out, oL, &cache); err != nil {
				t.Fatal(err)
			}
			dx := zeroLike(x)
			dpb := make([]float64, c.heads*c.l*c.l)
			g := p.ZerosLike()
			if err := GatedBackward(&p, &cache, w, dx, dpb, &g); err != nil {
				t.Fatal(err)
			}
			checks := []struct {
				what       string
				in, grad   []float64
				notPresent bool
			}{
				{"x", x, dx, false}, {"PairBias", pb, dpb, pb == nil},
				{"QueryW", p.QueryW, g.QueryW, false}, {"KeyW", p.KeyW, g.KeyW, false},
				{"ValueW", p.ValueW, g.ValueW, false}, {"GatingW", p.GatingW, g.GatingW, false},
				{"GatingB", p.GatingB, g.GatingB, false}, {"OutputW", p.OutputW, g.OutputW, false},
				{"OutputB", p.OutputB, g.OutputB, false},
			}
			// Central differences, step 1e-5: truncation ~h²·|L'''| ≲ 1e-9
			// for these O(1) activations, round-off ~1e-16·|L|/h ≈ 1e-10;
			// 1e-7·(1 + |fd|) is far below any wrong term.
			const h, tol = 1e-5, 1e-7
			var worst float64
			for _, ck := range checks {
				if ck.notPresent {
					continue
				}
				for i, v := range ck.in {
					if math.IsNaN(v) {
						continue
					}
					ck.in[i] = v + h
					lp := loss()
					ck.in[i] = v - h
					lm := loss()
					ck.in[i] = v
					fd := (lp - lm) / (2 * h)
					e := math.Abs(fd - ck.grad[i])
					worst = math.Max(worst, e)
					if e > tol*(1+math.Abs(fd)) {
						t.Errorf("d%s[%d] = %.10g, finite difference %.10g", ck.what, i, ck.grad[i], fd)
					}
				}
			}
			if pb == nil {
				// Without a pair bias the gradient with respect to a zero
				// bias is still defined and returned.
				pb0 := make([]float64, c.heads*c.l*c.l)
				for i := range pb0 {
					pb0[i] = h
					lp := lossWith(pb0)
					pb0[i] = -h
					lm := lossWith(pb0)
					pb0[i] = 0
					if fd := (lp - lm) / (2 * h); math.Abs(fd-dpb[i]) > tol*(1+math.Abs(fd)) {
						t.Errorf("dPairBias[%d] = %.10g, finite difference %.10g", i, dpb[i], fd)
					}
				}
			}
			t.Logf("max |analytic − finite difference| = %.3g", worst)
		})
	}
}

// TestGatedBatchRange checks that running the batch in chunks (slicing x,
// the mask and out at the chunk's first element, as a memory-bound caller
// does) gives the full run's output and gradients.
func TestGatedBatchRange(t *testing.T) {
	for _, lk := range []layoutKind{contiguous, column, padded} {
		t.Run(lk.String(), func(t *testing.T) {
			c := gatedCase{batch: 5, l: 6, cin: 4, heads: 2, c: 3, o: 5, layout: lk, pairBias: true, mask: true}
			p, x, xL, pb, mask, oL, on, w := c.build(2)
			full := make([]float64, on)
			var cache GatedCache[float64]
			if err := GatedForward(&p, x, xL, c.batch, c.l, pb, mask, full, oL, &cache); err != nil {
				t.Fatal(err)
			}
			dxFull, dpbFull, gFull := zeroLike(x), make([]float64, len(pb)), p.ZerosLike()
			if err := GatedBackward(&p, &cache, w, dxFull, dpbFull, &gFull); err != nil {
				t.Fatal(err)
			}

			part := zeroLike(full)
			dx, dpb, g := zeroLike(x), make([]float64, len(pb)), p.ZerosLike()
			for b0 := 0; b0 < c.batch; b0 += 2 {
				nb := min(2, c.batch-b0)
				xs, os := x[b0*xL.Batch:], part[b0*oL.Batch:]
				if err := GatedForward(&p, xs, xL, nb, c.l, pb, mask[b0*c.l:(b0+nb)*c.l], os, oL, &cache); err != nil {
					t.Fatal(err)
				}
				if err := GatedBackward(&p, &cache, w[b0*oL.Batch:], dx[b0*xL.Batch:], dpb, &g); err != nil {
					t.Fatal(err)
				}
			}
			// Same arithmetic per batch element except that the projection
			// products may be blocked differently and the pair-bias and
			// parameter gradients are summed in another grouping: agreement
			// to a few ulp, 1e-13 relative.
			const tol = 1e-13
			for _, cmp := range []struct {
				what      string
				got, want []float64
			}{
				{"out", gather(part, oL, c.batch, c.l, c.o), gather(full, oL, c.batch, c.l, c.o)},
				{"dx", gather(dx, xL, c.batch, c.l, c.cin), gather(dxFull, xL, c.batch, c.l, c.cin)},
				{"dPairBias", dpb, dpbFull},
				{"dQueryW", g.QueryW, gFull.QueryW},
				{"dGatingB", g.GatingB, gFull.GatingB},
				{"dOutputW", g.OutputW, gFull.OutputW},
				{"dOutputB", g.OutputB, gFull.OutputB},
			} {
				if _, rel := maxErr(cmp.got, cmp.want); rel > tol {
					t.Errorf("%s: chunked vs full differ by %.3g relative", cmp.what, rel)
				}
			}
		})
	}
}

// TestGatedFloat32 checks the float32 module against float64 on random
// weights of AF2's sizes (c_in 128, 4 heads of 32).
func TestGatedFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const batch, l, cin, heads, c = 3, 17, 128, 4, 32
	// LeCun-scaled random weights, so that logits, gates and outputs are O(1).
	p64 := NewGated[float64](rng, cin, heads, c, cin)
	for _, w := range [][]float64{p64.QueryW, p64.KeyW, p64.ValueW, p64.GatingW, p64.OutputW} {
		for i := range w {
			w[i] = normal(1 / math.Sqrt(cin))(rng)
		}
	}
	p32 := GatedParams[float32]{QueryW: to32(p64.QueryW), KeyW: to32(p64.KeyW), ValueW: to32(p64.ValueW),
		GatingW: to32(p64.GatingW), GatingB: to32(p64.GatingB), OutputW: to32(p64.OutputW), OutputB: to32(p64.OutputB),
		CIn: cin, COut: cin, Heads: heads, C: c}
	lay := Layout{Batch: l * cin, Row: cin}
	x := newTensor(rng, lay, batch*l*cin, batch, l, cin, normal(1))
	o64, o32 := make([]float64, len(x)), make([]float32, len(x))
	if err := GatedForward(&p64, x, lay, batch, l, nil, nil, o64, lay, nil); err != nil {
		t.Fatal(err)
	}
	if err := GatedForward(&p32, to32(x), lay, batch, l, nil, nil, o32, lay, nil); err != nil {
		t.Fatal(err)
	}
	// Projections are sums of 128 O(1) products, 2^-24·√128 ≈ 7e-7
	// relative; the output sums 128 more. Measured 6e-7 absolute on O(1)
	// outputs; 1e-5 leaves fifteenfold headroom.
	abs, _ := maxErr(to64(o32), o64)
	if abs > 1e-5 {
		t.Errorf("float32 vs float64: max abs difference %.3g, want ≤ 1e-5", abs)
	}
	t.Logf("float32 vs float64 max abs difference %.3g", abs)
}

// TestNewGated checks AF2's initialisation: a fresh module outputs exactly
// output_b = 0, its gates are sigmoid(1), and the projection weights lie
// within haiku's glorot bound with about the right spread.
func TestNewGated(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const cin, heads, c, cout = 64, 4, 16, 32
	p := NewGated[float64](rng, cin, heads, c, cout)
	lim := math.Sqrt(6 / float64(cin*(heads+c)))
	for _, w := range [][]float64{p.QueryW, p.KeyW, p.ValueW} {
		var ss float64
		for _, v := range w {
			if math.Abs(v) > lim {
				t.Fatalf("weight %v beyond the glorot bound %v", v, lim)
			}
			ss += v * v
		}
		// Uniform on ±lim has variance lim²/3; 4096 draws give its sample
		// variance within ~2% (1σ), so 10% cannot fail by chance.
		if sd, want := math.Sqrt(ss/float64(len(w))), lim/math.Sqrt(3); math.Abs(sd-want) > 0.1*want {
			t.Errorf("weights have standard deviation %v, want about %v", sd, want)
		}
	}
	x := make([]float64, 2*3*cin)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	out := make([]float64, 2*3*cout)
	for i := range out {
		out[i] = math.NaN()
	}
	var cache GatedCache[float64]
	if err := GatedForward(&p, x, Layout{Batch: 3 * cin, Row: cin}, 2, 3, nil, nil, out, Layout{Batch: 3 * cout, Row: cout}, &cache); err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v != 0 {
			t.Fatalf("out[%d] = %v, want 0 from a fresh module", i, v)
		}
	}
	want := 1 / (1 + math.Exp(-1))
	for _, g := range cache.qkvg[3*heads*c : 4*heads*c] {
		if math.Abs(g-want) > 1e-15 {
			t.Fatalf("fresh gate %v, want sigmoid(1) = %v", g, want)
		}
	}
}

// TestGatedErrors checks that bad sizes and non-finite inputs are errors.
func TestGatedErrors(t *testing.T) {
	c := gatedCases[0]
	for _, tc := range []struct {
		name string
		edit func(p *GatedParams[float64], x, pb, mask, out *[]float64)
		want error
	}{
		{"short query_w", func(p *GatedParams[float64], _, _, _, _ *[]float64) { p.QueryW = p.QueryW[1:] }, num.ErrShape},
		{"short output_b", func(p *GatedParams[float64], _, _, _, _ *[]float64) { p.OutputB = p.OutputB[1:] }, num.ErrShape},
		{"zero heads", func(p *GatedParams[float64], _, _, _, _ *[]float64) { p.Heads = 0 }, num.ErrShape},
		{"short x", func(_ *GatedParams[float64], x, _, _, _ *[]float64) { *x = (*x)[:10] }, num.ErrShape},
		{"short out", func(_ *GatedParams[float64], _, _, _, out *[]float64) { *out = (*out)[:10] }, num.ErrShape},
		{"pair bias length", func(_ *GatedParams[float64], _, pb, _, _ *[]float64) { *pb = (*pb)[1:] }, num.ErrShape},
		{"mask length", func(_ *GatedParams[float64], _, _, mask, _ *[]float64) { *mask = (*mask)[1:] }, num.ErrShape},
		{"NaN in x", func(_ *GatedParams[float64], x, _, _, _ *[]float64) { (*x)[0] = math.NaN() }, num.ErrNaN},
		{"Inf weight", func(p *GatedParams[float64], _, _, _, _ *[]float64) { p.GatingW[2] = math.Inf(-1) }, num.ErrNaN},
		{"NaN pair bias", func(_ *GatedParams[float64], _, pb, _, _ *[]float64) { (*pb)[1] = math.NaN() }, num.ErrNaN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, x, xL, pb, mask, oL, on, _ := c.build(5)
			out := make([]float64, on)
			tc.edit(&p, &x, &pb, &mask, &out)
			if err := GatedForward(&p, x, xL, c.batch, c.l, pb, mask, out, oL, nil); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("backward without forward", func(t *testing.T) {
		p, _, _, _, _, _, _, w := c.build(5)
		err := GatedBackward(&p, &GatedCache[float64]{}, w, nil, nil, nil)
		if !errors.Is(err, num.ErrShape) {
			t.Errorf("got %v, want %v", err, num.ErrShape)
		}
	})
	t.Run("gradient sizes", func(t *testing.T) {
		p, x, xL, pb, mask, oL, on, w := c.build(5)
		var cache GatedCache[float64]
		if err := GatedForward(&p, x, xL, c.batch, c.l, pb, mask, make([]float64, on), oL, &cache); err != nil {
			t.Fatal(err)
		}
		g := p.ZerosLike()
		g.OutputW = g.OutputW[1:]
		if err := GatedBackward(&p, &cache, w, nil, nil, &g); !errors.Is(err, num.ErrShape) {
			t.Errorf("got %v, want %v", err, num.ErrShape)
		}
	})
}
