package conformance

import (
	"errors"
	"math"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/num"
)

// attnCase is one attention problem of the suite, shaped like one of AF2's
// uses of the core.
type attnCase struct {
	name                 string
	batch, heads, lq, lk int
	c, cv, kvHeads       int
	bias, mask           bool
	maskedBatch          int  // batch element whose keys are all masked (−1: none)
	interleaved          bool // MSA-column layout: [L, Batch, H·C] (Batch stride H·C)
	pad                  int  // extra elements at the end of every row
	noLSE                bool // Forward without lse
	nanInPad             bool // a NaN in row padding, which must be ignored
	grads                [4]bool
}

var attnCases = []attnCase{
	{name: "triangle", batch: 3, heads: 2, lq: 40, lk: 40, c: 16, cv: 16, bias: true, mask: true, maskedBatch: -1, grads: [4]bool{true, true, true, true}},
	{name: "msa row, many tiles", batch: 2, heads: 3, lq: 150, lk: 300, c: 32, cv: 24, bias: true, mask: true, maskedBatch: -1, pad: 3, grads: [4]bool{true, true, true, true}},
	{name: "msa column interleaved", batch: 5, heads: 2, lq: 70, lk: 70, c: 8, cv: 8, mask: true, maskedBatch: -1, interleaved: true, grads: [4]bool{true, true, true, false}},
	{name: "global column shared kv", batch: 4, heads: 4, lq: 30, lk: 50, c: 8, cv: 8, kvHeads: 1, mask: true, maskedBatch: -1, grads: [4]bool{true, true, true, false}},
	{name: "fully masked batch", batch: 3, heads: 2, lq: 20, lk: 33, c: 12, cv: 12, bias: true, mask: true, maskedBatch: 1, grads: [4]bool{true, true, true, true}},
	{name: "no lse, grads partly nil", batch: 2, heads: 1, lq: 17, lk: 129, c: 64, cv: 40, bias: true, maskedBatch: -1, noLSE: true, grads: [4]bool{false, true, false, true}},
	{name: "NaN in row padding", batch: 2, heads: 2, lq: 9, lk: 12, c: 4, cv: 4, bias: true, maskedBatch: -1, pad: 2, nanInPad: true, grads: [4]bool{true, true, true, true}},
}

// layouts returns the row layout and the length of a [batch, l, width]
// tensor for case c.
func (c attnCase) layout(l, width int) (attn.Layout, int) {
	row := width + c.pad
	if c.interleaved {
		return attn.Layout{Batch: width, Row: c.batch * width}, l * c.batch * width
	}
	return attn.Layout{Batch: l * row, Row: row}, c.batch * l * row
}

// Attention checks Attention and AttentionBackward against attn.Forward
// and attn.Backward on problems shaped like AF2's uses (triangle attention
// with pair bias and mask, MSA row attention over several query and key
// tiles with padded rows, MSA column attention in its interleaved layout,
// global column attention with one shared key/value head, a batch element
// whose keys are all masked), with tolerance tol.Attention, and that
// non-finite inputs are rejected with num.ErrNaN. A backend may refuse a
// problem with backend.ErrUnsupported (too wide a head).
func Attention[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	for i, c := range attnCases {
		t.Run(c.name, func(t *testing.T) { attentionCase(t, k, tol, c, uint64(100+i)) })
	}
	t.Run("wide head", func(t *testing.T) {
		c := attnCase{name: "wide", batch: 1, heads: 1, lq: 5, lk: 6, c: 80, cv: 80, maskedBatch: -1, grads: [4]bool{true, true, true, false}}
		attentionCase(t, k, tol, c, 99)
	})
	t.Run("NaN", func(t *testing.T) { attentionNaN(t, k) })
}

// attnData are one case's host inputs and its problem on the backend.
type attnData[T num.Float] struct {
	host   attn.Problem[T]
	dev    backend.Attention[T]
	oL     attn.Layout
	oLen   int
	tensor []backend.Tensor[T]
}

func newAttnData[T num.Float](t *testing.T, k backend.Kernels[T], c attnCase, seed uint64) *attnData[T] {
	rng := newRNG(seed)
	kvh := c.heads
	if c.kvHeads == 1 {
		kvh = 1
	}
	d := &attnData[T]{}
	qL, qn := c.layout(c.lq, c.heads*c.c)
	kL, kn := c.layout(c.lk, kvh*c.c)
	vL, vn := c.layout(c.lk, kvh*c.cv)
	d.oL, d.oLen = c.layout(c.lq, c.heads*c.cv)
	p := attn.Problem[T]{
		Dims:  attn.Dims{Batch: c.batch, Heads: c.heads, Lq: c.lq, Lk: c.lk, C: c.c, Cv: c.cv, KVHeads: c.kvHeads},
		Q:     randVec[T](rng, qn, -1, 1),
		QL:    qL,
		K:     randVec[T](rng, kn, -1, 1),
		KL:    kL,
		V:     randVec[T](rng, vn, -1, 1),
		VL:    vL,
		Scale: T(1 / math.Sqrt(float64(c.c))),
	}
	if c.nanInPad {
		p.Q[c.heads*c.c] = T(math.NaN()) // first padding element of row 0
	}
	if c.bias {
		p.PairBias = randVec[T](rng, c.heads*c.lq*c.lk, -2, 2)
	}
	if c.mask || c.maskedBatch >= 0 {
		p.KeyMask = make([]T, c.batch*c.lk)
		for i := range p.KeyMask {
			if !c.mask || rng.Float64() > 0.25 || i%c.lk == 0 {
				p.KeyMask[i] = 1
			}
		}
		if c.maskedBatch >= 0 {
			clear(p.KeyMask[c.maskedBatch*c.lk : (c.maskedBatch+1)*c.lk])
		}
		p.MaskBias = attn.EvoformerMaskBias
	}
	d.host = p
	dt := func(x []T) backend.Tensor[T] {
		if x == nil {
			return nil
		}
		v := put(t, k, x)
		d.tensor = append(d.tensor, v)
		return v
	}
	d.dev = backend.Attention[T]{
		Dims: p.Dims, Q: dt(p.Q), QL: qL, K: dt(p.K), KL: kL, V: dt(p.V), VL: vL,
		Scale: p.Scale, PairBias: dt(p.PairBias), KeyMask: dt(p.KeyMask), MaskBias: p.MaskBias,
	}
	return d
}

func (d *attnData[T]) free(k backend.Kernels[T]) {
	for _, x := range d.tensor {
		k.Free(x)
	}
}

func attentionCase[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance, c attnCase, seed uint64) {
	d := newAttnData(t, k, c, seed)
	defer d.free(k)
	rng := newRNG(seed + 1000)
	p := &d.host
	o0 := randVec[T](rng, d.oLen, -1, 1) // o's padding must be left alone
	o, lse := clone(o0), make([]T, c.batch*c.heads*c.lq)
	must(t, "attn.Forward", attn.Forward(p, o, d.oL, lse))

	do := put(t, k, o0)
	defer k.Free(do)
	var dlse backend.Tensor[T]
	if !c.noLSE {
		dlse = put(t, k, make([]T, len(lse)))
		defer k.Free(dlse)
	}
	err := k.Attention(&d.dev, do, d.oL, dlse)
	if errors.Is(err, backend.ErrUnsupported) {
		t.Logf("%s refuses the problem: %v", k.Name(), err)
		return
	}
	must(t, "Attention", err)
	compare(t, "o", get(t, k, do), o, tol.Attention)
	if !c.noLSE {
		// lse of a fully masked row is about −1e9: relative comparison.
		compare(t, "lse", get(t, k, dlse), lse, tol.Attention)
	}

	// Backward, into gradients that start from random values.
	dout := randVec[T](rng, d.oLen, -1, 1)
	if c.noLSE { // backward needs lse: take the CPU's
		dlse = put(t, k, lse)
		defer k.Free(dlse)
	}
	kvh := c.heads
	if c.kvHeads == 1 {
		kvh = 1
	}
	_, qn := c.layout(c.lq, c.heads*c.c)
	_, kn := c.layout(c.lk, kvh*c.c)
	_, vn := c.layout(c.lk, kvh*c.cv)
	sizes := [4]int{qn, kn, vn, c.heads * c.lq * c.lk}
	var want [4][]T
	var got [4]backend.Tensor[T]
	for i, on := range c.grads {
		if !on {
			continue
		}
		g0 := randVec[T](rng, sizes[i], -1, 1)
		want[i] = clone(g0)
		got[i] = put(t, k, g0)
		defer k.Free(got[i])
	}
	must(t, "attn.Backward", attn.Backward(p, o, d.oL, lse, dout, want[0], want[1], want[2], want[3]))
	ddo, dob := put(t, k, dout), put(t, k, o)
	defer k.Free(ddo)
	defer k.Free(dob)
	must(t, "AttentionBackward", k.AttentionBackward(&d.dev, dob, d.oL, dlse, ddo, got[0], got[1], got[2], got[3]))
	for i, name := range []string{"dq", "dk", "dv", "dPairBias"} {
		if c.grads[i] {
			compare(t, name, get(t, k, got[i]), want[i], tol.Attention)
		}
	}
}

// attentionNaN checks that a NaN or an infinity in an addressed input is
// reported as num.ErrNaN, naming nothing in particular.
func attentionNaN[T num.Float](t *testing.T, k backend.Kernels[T]) {
	c := attnCase{name: "nan", batch: 2, heads: 2, lq: 6, lk: 7, c: 4, cv: 4, bias: true, mask: true, maskedBatch: -1}
	for _, which := range []string{"Q", "K", "V", "PairBias", "KeyMask"} {
		d := newAttnData(t, k, c, 7)
		var x backend.Tensor[T]
		var n int
		switch which {
		case "Q":
			x, n = d.dev.Q, len(d.host.Q)
		case "K":
			x, n = d.dev.K, len(d.host.K)
		case "V":
			x, n = d.dev.V, len(d.host.V)
		case "PairBias":
			x, n = d.dev.PairBias, len(d.host.PairBias)
		default:
			x, n = d.dev.KeyMask, len(d.host.KeyMask)
		}
		h := get(t, k, x)
		h[n/2] = T(math.Inf(1))
		if which == "Q" {
			h[n/2] = T(math.NaN())
		}
		must(t, "Upload", k.Upload(x, h))
		o := put(t, k, make([]T, d.oLen))
		if err := k.Attention(&d.dev, o, d.oL, nil); !errors.Is(err, num.ErrNaN) {
			t.Errorf("non-finite %s: error %v, want one wrapping num.ErrNaN", which, err)
		}
		k.Free(o)
		d.free(k)
	}
}
