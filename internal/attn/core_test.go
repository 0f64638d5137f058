package attn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
)

// maskKind says which keys a test case masks.
type maskKind int

const (
	noMask    maskKind = iota
	partial            // about 30% of keys masked, key 0 always present
	fullBatch          // batch element 0 has every key masked; the others partial
)

// coreCase is one attention problem of the table tests.
type coreCase struct {
	name     string
	d        Dims
	layout   layoutKind // of Q, K, V and O
	pairBias bool
	mask     maskKind
	maskBias float64
	tq, tk   int
}

// coreCases covers odd sizes that are not multiples of the tiles (Lk = 1, 7,
// 129, 300), one shared key/value head and one per head, strided layouts as
// in MSA column attention, pair biases and masks.
var coreCases = []coreCase{
	{name: "Lk1", d: Dims{Batch: 2, Heads: 3, Lq: 5, Lk: 1, C: 4, Cv: 3}, layout: contiguous, pairBias: true, mask: noMask},
	{name: "Lk7-small-tiles", d: Dims{Batch: 3, Heads: 2, Lq: 9, Lk: 7, C: 5, Cv: 6}, layout: padded, pairBias: true, mask: partial, maskBias: 1e9, tq: 2, tk: 3},
	{name: "Lk7-kv1", d: Dims{Batch: 2, Heads: 4, Lq: 7, Lk: 7, C: 8, Cv: 8, KVHeads: 1}, layout: contiguous, mask: partial, maskBias: 1e9, tq: 4, tk: 4},
	{name: "Lk129-column", d: Dims{Batch: 4, Heads: 2, Lq: 33, Lk: 129, C: 16, Cv: 8}, layout: column, mask: partial, maskBias: 1e9},
	{name: "Lk129-column-tiles", d: Dims{Batch: 3, Heads: 2, Lq: 65, Lk: 129, C: 8, Cv: 8}, layout: column, pairBias: true, mask: partial, maskBias: 1e9, tq: 16, tk: 32},
	{name: "Lk300-kv1-padded", d: Dims{Batch: 2, Heads: 3, Lq: 17, Lk: 300, C: 8, Cv: 4, KVHeads: 1}, layout: padded, pairBias: true, mask: partial, maskBias: 1e9, tq: 8, tk: 64},
	{name: "Lk300-self", d: Dims{Batch: 2, Heads: 2, Lq: 300, Lk: 300, C: 8, Cv: 8}, layout: contiguous, pairBias: true, mask: partial, maskBias: 1e9},
	// Every key of batch element 0 masked. MaskBias 1e3 keeps the float64
	// logits exact to ~1e-13 while |lse| > renormAbove takes Backward's
	// renormalising path.
	{name: "full-mask", d: Dims{Batch: 3, Heads: 2, Lq: 6, Lk: 11, C: 4, Cv: 5}, layout: padded, pairBias: true, mask: fullBatch, maskBias: 1e3, tq: 4, tk: 4},
	{name: "full-mask-kv1-column", d: Dims{Batch: 3, Heads: 2, Lq: 6, Lk: 129, C: 4, Cv: 5, KVHeads: 1}, layout: column, mask: fullBatch, maskBias: 1e3},
}

// build returns the float64 problem of c, the output layout and its length,
// and an upstream gradient do ([Batch, Lq, Heads, Cv] by the output layout).
func (c coreCase) build(seed uint64) (p *Problem[float64], oL Layout, on int, do []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	d := c.d
	kvh := d.kvHeads()
	p = &Problem[float64]{Dims: d, Scale: 1 / math.Sqrt(float64(d.C)), MaskBias: c.maskBias, TileQ: c.tq, TileK: c.tk}
	var n int
	p.QL, n = layoutFor(c.layout, d.Batch, d.Lq, d.Heads*d.C)
	p.Q = newTensor(rng, p.QL, n, d.Batch, d.Lq, d.Heads*d.C, normal(1))
	p.KL, n = layoutFor(c.layout, d.Batch, d.Lk, kvh*d.C)
	p.K = newTensor(rng, p.KL, n, d.Batch, d.Lk, kvh*d.C, normal(1))
	p.VL, n = layoutFor(c.layout, d.Batch, d.Lk, kvh*d.Cv)
	p.V = newTensor(rng, p.VL, n, d.Batch, d.Lk, kvh*d.Cv, normal(1))
	if c.pairBias {
		p.PairBias = make([]float64, d.Heads*d.Lq*d.Lk)
		for i := range p.PairBias {
			p.PairBias[i] = normal(1)(rng)
		}
	}
	if c.mask != noMask {
		p.KeyMask = make([]float64, d.Batch*d.Lk)
		for i := range p.KeyMask {
			b, k := i/d.Lk, i%d.Lk
			switch {
			case c.mask == fullBatch && b == 0:
			case k == 0 || rng.Float64() > 0.3:
				p.KeyMask[i] = 1
			}
		}
	}
	oL, on = layoutFor(c.layout, d.Batch, d.Lq, d.Heads*d.Cv)
	do = newTensor(rng, oL, on, d.Batch, d.Lq, d.Heads*d.Cv, normal(1))
	return p, oL, on, do
}

// run runs Forward and Backward on p (any T) and returns the output
// (contiguous), lse and the four gradients as float64.
func runCore[T num.Float](t *testing.T, p *Problem[T], oL Layout, on int, do []T) (o, lse, dq, dk, dv, dpb []float64) {
	t.Helper()
	d := p.Dims
	ob := make([]T, on)
	ls := make([]T, d.Batch*d.Heads*d.Lq)
	if err := Forward(p, ob, oL, ls); err != nil {
		t.Fatal(err)
	}
	gq, gk, gv := make([]T, len(p.Q)), make([]T, len(p.K)), make([]T, len(p.V))
	gpb := make([]T, d.Heads*d.Lq*d.Lk)
	if err := Backward(p, ob, oL, ls, do, gq, gk, gv, gpb); err != nil {
		t.Fatal(err)
	}
	kvh := d.kvHeads()
	return gather(ob, oL, d.Batch, d.Lq, d.Heads*d.Cv), to64(ls),
		gather(gq, p.QL, d.Batch, d.Lq, d.Heads*d.C),
		gather(gk, p.KL, d.Batch, d.Lk, kvh*d.C),
		gather(gv, p.VL, d.Batch, d.Lk, kvh*d.Cv),
		to64(gpb)
}

// TestCoreFloat64 compares the streamed Forward and Backward with the naive
// full-softmax reference in float64.
func TestCoreFloat64(t *testing.T) {
	// Both sides compute the same sums in different orders and tile splits
	// (online rescaling by exp(m_old − m_new)). Values are O(1) and sums run
	// over at most 300 keys, so round-off is a few hundred ulp at most:
	// 1e-12 relative to (1 + |want|) is ~5000 ulp of headroom, while any
	// indexing or rescaling mistake shows up at O(1e-2) or more.
	const tol = 1e-12
	var worst float64
	for _, c := range coreCases {
		t.Run(c.name, func(t *testing.T) {
			p, oL, on, do := c.build(1)
			ref := newReference(p, false)
			rdq, rdk, rdv, rdpb := ref.backward(gather(do, oL, c.d.Batch, c.d.Lq, c.d.Heads*c.d.Cv))
			d := c.d
			kvh := d.kvHeads()
			o, lse, dq, dk, dv, dpb := runCore(t, p, oL, on, do)
			for _, x := range []struct {
				what      string
				got, want []float64
			}{
				{"o", o, ref.o},
				{"lse", lse, ref.lse},
				{"dq", dq, gather(rdq, p.QL, d.Batch, d.Lq, d.Heads*d.C)},
				{"dk", dk, gather(rdk, p.KL, d.Batch, d.Lk, kvh*d.C)},
				{"dv", dv, gather(rdv, p.VL, d.Batch, d.Lk, kvh*d.Cv)},
				{"dPairBias", dpb, rdpb},
			} {
				_, rel := maxErr(x.got, x.want)
				worst = math.Max(worst, rel)
				if rel > tol {
					t.Errorf("%s: max |got−want|/(1+|want|) = %.3g, want ≤ %g", x.what, rel, tol)
				}
			}
		})
	}
	t.Logf("float64 core vs naive reference: max relative error %.3g over all cases and outputs", worst)
}

// TestCoreFloat32 compares the float32 core with the float64 reference whose
// logits are rounded to float32 after each bias addition (so that rows whose
// keys are all masked are uniform in both), including MaskBias = 1e9 with
// fully masked batch elements.
func TestCoreFloat32(t *testing.T) {
	// float32 round-off: logits carry ~C·2^-24·|q||k| ≈ 1e-6 absolute error,
	// which moves softmax weights by ~1e-6 relative; outputs and gradients
	// are sums over ≤ 300 keys of O(1) terms. The measured worst case is
	// 5e-7 relative to (1 + |want|); 1e-5 leaves twentyfold headroom, and is
	// far below the O(1) error of a uniform-vs-softmax mix-up on masked rows.
	const tol = 1e-5
	cases := append([]coreCase(nil), coreCases...)
	for _, c := range coreCases {
		if c.mask == fullBatch {
			c.name += "-1e9"
			c.maskBias = 1e9
			cases = append(cases, c)
		}
	}
	var worst float64
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p64, oL, on, do := c.build(2)
			ref := newReference(p64, true)
			d := c.d
			kvh := d.kvHeads()
			rdq, rdk, rdv, rdpb := ref.backward(gather(do, oL, d.Batch, d.Lq, d.Heads*d.Cv))
			o, lse, dq, dk, dv, dpb := runCore(t, problem32(p64), oL, on, to32(do))
			// lse of fully masked rows is ≈ −MaskBias: compare it relative to that.
			for _, x := range []struct {
				what      string
				got, want []float64
			}{
				{"o", o, ref.o},
				{"dq", dq, gather(rdq, p64.QL, d.Batch, d.Lq, d.Heads*d.C)},
				{"dk", dk, gather(rdk, p64.KL, d.Batch, d.Lk, kvh*d.C)},
				{"dv", dv, gather(rdv, p64.VL, d.Batch, d.Lk, kvh*d.Cv)},
				{"dPairBias", dpb, rdpb},
			} {
				_, rel := maxErr(x.got, x.want)
				worst = math.Max(worst, rel)
				if rel > tol {
					t.Errorf("%s: max |got−want|/(1+|want|) = %.3g, want ≤ %g", x.what, rel, tol)
				}
			}
			for i, v := range lse {
				w := ref.lse[i]
				if math.IsNaN(v) || math.Abs(v-w) > tol*(1+math.Abs(w)) {
					t.Fatalf("lse[%d] = %v, want %v", i, v, w)
				}
			}
		})
	}
	t.Logf("float32 core vs float64 reference: max relative error %.3g", worst)
}

// TestFullyMaskedUniform checks AF2's float32 behaviour for a query whose keys
// are all masked with MaskBias 1e9: the output is the plain average of the
// values, finite, and the softmax gradient is that of the uniform weights.
func TestFullyMaskedUniform(t *testing.T) {
	for _, kv := range []int{0, 1} {
		t.Run(fmt.Sprintf("KVHeads=%d", kv), func(t *testing.T) {
			c := coreCase{d: Dims{Batch: 2, Heads: 2, Lq: 3, Lk: 300, C: 8, Cv: 4, KVHeads: kv}, layout: contiguous, pairBias: true, mask: fullBatch, maskBias: 1e9, tk: 64}
			p64, oL, on, _ := c.build(3)
			p := problem32(p64)
			o := make([]float32, on)
			lse := make([]float32, 2*2*3)
			if err := Forward(p, o, oL, lse); err != nil {
				t.Fatal(err)
			}
			d := c.d
			kvh := d.kvHeads()
			// float32 sum of 300 O(1) values, then one division: the error
			// is a few ulp of the partial sums, ≲ 300·2^-24·3 ≈ 5e-5 worst
			// case, ~3e-6 typically; 2e-5 absolute on an O(0.1) mean.
			const tol = 2e-5
			var worst float64
			for h := 0; h < d.Heads; h++ {
				kh := h % kvh
				for c := 0; c < d.Cv; c++ {
					var mean float64
					for k := 0; k < d.Lk; k++ {
						mean += p64.V[k*p64.VL.Row+kh*d.Cv+c]
					}
					mean /= float64(d.Lk)
					for q := 0; q < d.Lq; q++ {
						got := float64(o[q*oL.Row+h*d.Cv+c])
						worst = math.Max(worst, math.Abs(got-mean))
						if !(math.Abs(got-mean) <= tol) {
							t.Fatalf("o[0,%d,%d,%d] = %v, want the uniform mean %v", q, h, c, got, mean)
						}
					}
				}
			}
			for _, v := range lse {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("lse has a non-finite value %v", v)
				}
			}
			t.Logf("max |o − uniform mean| = %.3g", worst)
		})
	}
}

// TestBackwardFiniteDifference checks Backward in float64 against central
// differences of L = Σ o⊙w for every element of Q, K, V and PairBias.
func TestBackwardFiniteDifference(t *testing.T) {
	cases := []coreCase{
		{name: "partial-mask", d: Dims{Batch: 2, Heads: 2, Lq: 5, Lk: 7, C: 3, Cv: 4}, layout: padded, pairBias: true, mask: partial, maskBias: 1e9, tq: 2, tk: 3},
		{name: "kv1-column", d: Dims{Batch: 3, Heads: 2, Lq: 4, Lk: 6, C: 3, Cv: 2, KVHeads: 1}, layout: column, pairBias: true, mask: partial, maskBias: 1e9, tq: 3, tk: 4},
		{name: "full-mask", d: Dims{Batch: 2, Heads: 2, Lq: 3, Lk: 5, C: 3, Cv: 2}, layout: contiguous, pairBias: true, mask: fullBatch, maskBias: 1e3, tq: 2, tk: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, oL, on, w := c.build(4)
			d := c.d
			loss := func() float64 {
				o := make([]float64, on)
				if err := Forward(p, o, oL, nil); err != nil {
					t.Fatal(err)
				}
				var l float64
				for i, x := range o {
					if !math.IsNaN(w[i]) {
						l += x * w[i]
					}
				}
				return l
			}
			o := make([]float64, on)
			lse := make([]float64, d.Batch*d.Heads*d.Lq)
			if err := Forward(p, o, oL, lse); err != nil {
				t.Fatal(err)
			}
			dq, dk, dv := zeroLike(p.Q), zeroLike(p.K), zeroLike(p.V)
			dpb := make([]float64, len(p.PairBias))
			if err := Backward(p, o, oL, lse, w, dq, dk, dv, dpb); err != nil {
				t.Fatal(err)
			}
			// Central differences with step 1e-5: truncation h²/6·|L'''| with
			// |L'''| = O(10) for O(1) logits is ~2e-10, round-off
			// 1e-16·|L|/h ~ 1e-10; 1e-7 leaves ample headroom and is far
			// below the O(0.1) error of any wrong term.
			const h, tol = 1e-5, 1e-7
			var worst float64
			for _, x := range []struct {
				what string
				in   []float64
				grad []float64
			}{{"Q", p.Q, dq}, {"K", p.K, dk}, {"V", p.V, dv}, {"PairBias", p.PairBias, dpb}} {
				for i, v := range x.in {
					if math.IsNaN(v) {
						continue
					}
					x.in[i] = v + h
					lp := loss()
					x.in[i] = v - h
					lm := loss()
					x.in[i] = v
					fd := (lp - lm) / (2 * h)
					e := math.Abs(fd - x.grad[i])
					worst = math.Max(worst, e)
					if e > tol*(1+math.Abs(fd)) {
						t.Errorf("d%s[%d] = %.10g, finite difference %.10g", x.what, i, x.grad[i], fd)
					}
				}
			}
			t.Logf("max |analytic − finite difference| = %.3g", worst)
		})
	}
}

// TestBackwardNilOutputs checks that each gradient is the same, bit for
// bit, whether the others are asked for or not, and that gradients
// accumulate into their outputs.
func TestBackwardNilOutputs(t *testing.T) {
	c := coreCases[5]
	p, oL, on, do := c.build(5)
	o := make([]float64, on)
	lse := make([]float64, c.d.Batch*c.d.Heads*c.d.Lq)
	if err := Forward(p, o, oL, lse); err != nil {
		t.Fatal(err)
	}
	all := [4][]float64{zeroLike(p.Q), zeroLike(p.K), zeroLike(p.V), make([]float64, len(p.PairBias))}
	if err := Backward(p, o, oL, lse, do, all[0], all[1], all[2], all[3]); err != nil {
		t.Fatal(err)
	}
	for i := range all {
		var one [4][]float64
		one[i] = zeroLike(all[i])
		if err := Backward(p, o, oL, lse, do, one[0], one[1], one[2], one[3]); err != nil {
			t.Fatal(err)
		}
		for j, v := range all[i] {
			if !math.IsNaN(v) && one[i][j] != v {
				t.Fatalf("gradient %d element %d: alone %v, with the others %v", i, j, one[i][j], v)
			}
		}
	}
	twice := [4][]float64{}
	for i := range all {
		twice[i] = append([]float64(nil), all[i]...)
	}
	if err := Backward(p, o, oL, lse, do, twice[0], twice[1], twice[2], twice[3]); err != nil {
		t.Fatal(err)
	}
	for i := range all {
		for j, v := range all[i] {
			// The second call adds the same sums onto the first; gemm adds
			// tile by tile, so the result is 2v up to a few ulp.
			if !math.IsNaN(v) && math.Abs(twice[i][j]-2*v) > 1e-14*(1+math.Abs(v)) {
				t.Fatalf("gradient %d element %d: after two calls %v, want 2×%v", i, j, twice[i][j], v)
			}
		}
	}
}

// TestCoreErrors checks that bad sizes and non-finite inputs are errors.
func TestCoreErrors(t *testing.T) {
	c := coreCase{d: Dims{Batch: 2, Heads: 2, Lq: 3, Lk: 4, C: 2, Cv: 2}, layout: contiguous, pairBias: true, mask: partial, maskBias: 1e9}
	good := func() (*Problem[float64], Layout, []float64, []float64) {
		p, oL, on, _ := c.build(6)
		return p, oL, make([]float64, on), make([]float64, 2*2*3)
	}
	for _, tc := range []struct {
		name    string
		edit    func(p *Problem[float64], oL *Layout, o, lse *[]float64)
		wantE   error
		fwdOnly bool // o is an output of Forward only
	}{
		{"short Q", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.Q = p.Q[:5] }, num.ErrShape, false},
		{"short V", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.V = p.V[:5] }, num.ErrShape, false},
		{"bad KVHeads", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.KVHeads = 3 }, num.ErrShape, false},
		{"zero Lk", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.Lk = 0 }, num.ErrShape, false},
		{"negative tile", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.TileK = -1 }, num.ErrShape, false},
		{"pair bias length", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.PairBias = p.PairBias[1:] }, num.ErrShape, false},
		{"mask length", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.KeyMask = p.KeyMask[1:] }, num.ErrShape, false},
		{"row stride", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.QL.Row = 3 }, num.ErrShape, false},
		{"overlapping output", func(_ *Problem[float64], oL *Layout, _, _ *[]float64) { oL.Batch = 1 }, num.ErrShape, true},
		{"lse length", func(_ *Problem[float64], _ *Layout, _, lse *[]float64) { *lse = (*lse)[1:] }, num.ErrShape, false},
		{"NaN in Q", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.Q[0] = math.NaN() }, num.ErrNaN, false},
		{"Inf in K", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.K[p.KL.Row] = math.Inf(1) }, num.ErrNaN, false},
		{"NaN in pair bias", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.PairBias[3] = math.NaN() }, num.ErrNaN, false},
		{"NaN in mask", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.KeyMask[3] = math.NaN() }, num.ErrNaN, false},
		{"NaN scale", func(p *Problem[float64], _ *Layout, _, _ *[]float64) { p.Scale = math.NaN() }, num.ErrNaN, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, oL, o, lse := good()
			tc.edit(p, &oL, &o, &lse)
			err := Forward(p, o, oL, lse)
			if !errors.Is(err, tc.wantE) {
				t.Errorf("Forward: got %v, want %v", err, tc.wantE)
			}
			if tc.fwdOnly {
				return
			}
			err = Backward(p, o, oL, lse, o, nil, nil, nil, nil)
			if !errors.Is(err, tc.wantE) {
				t.Errorf("Backward: got %v, want %v", err, tc.wantE)
			}
		})
	}
	t.Run("broadcast dk", func(t *testing.T) {
		// A batch stride of 0 shares K across the batch: fine to read, but
		// its gradient would be written by several workers at once.
		p, oL, o, lse := good()
		p.KL.Batch = 0
		if err := Forward(p, o, oL, lse); err != nil {
			t.Fatal(err)
		}
		err := Backward(p, o, oL, lse, o, nil, make([]float64, len(p.K)), nil, nil)
		if !errors.Is(err, num.ErrShape) {
			t.Errorf("got %v, want %v", err, num.ErrShape)
		}
	})
}

// TestBackwardWorkerSplits runs Backward with several worker counts, so that
// heads of dPairBias are shared between workers (private buffers summed at
// the end) and work ranges split heads unevenly, and compares each with the
// reference.
func TestBackwardWorkerSplits(t *testing.T) {
	cases := []coreCase{
		{name: "per-head", d: Dims{Batch: 5, Heads: 3, Lq: 9, Lk: 70, C: 4, Cv: 3}, layout: padded, pairBias: true, mask: partial, maskBias: 1e9, tq: 4, tk: 16},
		{name: "kv1", d: Dims{Batch: 5, Heads: 3, Lq: 9, Lk: 70, C: 4, Cv: 3, KVHeads: 1}, layout: column, pairBias: true, mask: fullBatch, maskBias: 1e3, tq: 4, tk: 16},
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range cases {
		p, oL, on, do := c.build(8)
		d := c.d
		kvh := d.kvHeads()
		ref := newReference(p, false)
		rdq, rdk, rdv, rdpb := ref.backward(gather(do, oL, d.Batch, d.Lq, d.Heads*d.Cv))
		for _, procs := range []int{1, 2, 4, 7, 16} {
			t.Run(fmt.Sprintf("%s/procs=%d", c.name, procs), func(t *testing.T) {
				runtime.GOMAXPROCS(procs)
				_, _, dq, dk, dv, dpb := runCore(t, p, oL, on, do)
				// As in TestCoreFloat64.
				const tol = 1e-12
				for _, x := range []struct {
					what      string
					got, want []float64
				}{
					{"dq", dq, gather(rdq, p.QL, d.Batch, d.Lq, d.Heads*d.C)},
					{"dk", dk, gather(rdk, p.KL, d.Batch, d.Lk, kvh*d.C)},
					{"dv", dv, gather(rdv, p.VL, d.Batch, d.Lk, kvh*d.Cv)},
					{"dPairBias", dpb, rdpb},
				} {
					if _, rel := maxErr(x.got, x.want); rel > tol {
						t.Errorf("%s: max relative error %.3g, want ≤ %g", x.what, rel, tol)
					}
				}
			})
		}
	}
}
