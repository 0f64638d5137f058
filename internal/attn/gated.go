package attn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/simd"
	"github.com/foldkit/foldkit/params"
)

// GatedParams are the weights of AF2's gated multi-head attention (the
// Attention module of AF2's modules.py, used by supplement Algorithms 7, 8,
// 13 and 14), in AF2's layouts under the haiku names
// `attention//query_w`, `key_w`, `value_w`, `gating_w`, `gating_b`,
// `output_w` and `output_b`. There are no query, key or value biases.
type GatedParams[T num.Float] struct {
	QueryW, KeyW, ValueW []T // [CIn, Heads, C]
	GatingW              []T // [CIn, Heads, C]
	GatingB              []T // [Heads, C]
	OutputW              []T // [Heads, C, COut]
	OutputB              []T // [COut]

	CIn, COut, Heads, C int
}

// GatedGrads holds the gradients of GatedParams, with the same shapes.
type GatedGrads[T num.Float] = GatedParams[T]

// LoadGated reads gated-attention weights from s, a set already narrowed to
// the haiku path of the attention module, so that its keys are "//query_w",
// "//key_w", "//value_w", "//gating_w", "//gating_b", "//output_w" and
// "//output_b" (for example s = file.Sub(".../triangle_attention_starting_node/attention")).
// A set narrowed one character further (".../attention/", keys "/query_w")
// is read the same way. Every shape is checked against cin, heads, c
// (channels per head) and cout.
//
// The error wraps params.ErrMissing for an absent array, num.ErrShape for a
// wrong shape and num.ErrNaN for a non-finite value.
func LoadGated[T num.Float](s *params.Set, cin, heads, c, cout int) (GatedParams[T], error) {
	p := GatedParams[T]{CIn: cin, COut: cout, Heads: heads, C: c}
	if err := p.checkDims(); err != nil {
		return GatedParams[T]{}, err
	}
	sep := "//"
	if !s.Has("//query_w") && s.Has("/query_w") {
		sep = "/"
	}
	for _, w := range []struct {
		name  string
		dst   *[]T
		shape []int
	}{
		{"query_w", &p.QueryW, []int{cin, heads, c}},
		{"key_w", &p.KeyW, []int{cin, heads, c}},
		{"value_w", &p.ValueW, []int{cin, heads, c}},
		{"gating_w", &p.GatingW, []int{cin, heads, c}},
		{"gating_b", &p.GatingB, []int{heads, c}},
		{"output_w", &p.OutputW, []int{heads, c, cout}},
		{"output_b", &p.OutputB, []int{cout}},
	} {
		x, err := params.Get[T](s, sep+w.name, w.shape...)
		if err != nil {
			return GatedParams[T]{}, fmt.Errorf("attn: LoadGated: %w", err)
		}
		if err := num.CheckFinite(w.name, x); err != nil {
			return GatedParams[T]{}, fmt.Errorf("attn: LoadGated: %w", err)
		}
		*w.dst = x
	}
	return p, nil
}

// NewGated returns gated-attention weights initialised as AF2 does: query,
// key and value weights glorot-uniform, gating weights 0 and gating bias 1
// (a fresh gate is open at sigmoid(1) ≈ 0.73), output weights and bias 0 (AF2's
// "final" initialisation with zero_init, so that a fresh module adds
// nothing to the residual stream).
//
// AF2 draws the [cin, heads, c] weights with haiku's VarianceScaling(1,
// "fan_avg", "uniform"), which for a 3-d shape counts fan_in = heads·cin and
// fan_out = c·cin (the leading axis as a receptive field), so the bound is
// √(6/(cin·(heads + c))). NewGated uses that bound. Values are drawn in
// float64 and rounded to T. It panics if a size is not positive.
func NewGated[T num.Float](rng *rand.Rand, cin, heads, c, cout int) GatedParams[T] {
	p := GatedParams[T]{CIn: cin, COut: cout, Heads: heads, C: c}
	if err := p.checkDims(); err != nil {
		panic(err.Error())
	}
	n := cin * heads * c
	lim := math.Sqrt(6 / float64(cin*(heads+c)))
	glorot := func() []T {
		w := make([]T, n)
		for i := range w {
			w[i] = T(lim * (2*rng.Float64() - 1))
		}
		return w
	}
	p.QueryW, p.KeyW, p.ValueW = glorot(), glorot(), glorot()
	p.GatingW = make([]T, n)
	p.GatingB = make([]T, heads*c)
	for i := range p.GatingB {
		p.GatingB[i] = 1
	}
	p.OutputW = make([]T, heads*c*cout)
	p.OutputB = make([]T, cout)
	return p
}

// ZerosLike returns parameters of p's sizes with every value 0, to
// accumulate gradients into.
func (p *GatedParams[T]) ZerosLike() GatedParams[T] {
	n := p.CIn * p.Heads * p.C
	return GatedParams[T]{
		QueryW: make([]T, n), KeyW: make([]T, n), ValueW: make([]T, n), GatingW: make([]T, n),
		GatingB: make([]T, p.Heads*p.C), OutputW: make([]T, p.Heads*p.C*p.COut), OutputB: make([]T, p.COut),
		CIn: p.CIn, COut: p.COut, Heads: p.Heads, C: p.C,
	}
}

func (p *GatedParams[T]) checkDims() error {
	if p.CIn < 1 || p.COut < 1 || p.Heads < 1 || p.C < 1 {
		return fmt.Errorf("attn: gated attention sizes cin=%d, heads=%d, c=%d, cout=%d must be positive: %w", p.CIn, p.Heads, p.C, p.COut, num.ErrShape)
	}
	return nil
}

// check validates the lengths of p's arrays (what names p in messages) and,
// with finite, their values.
func (p *GatedParams[T]) check(what string, finite bool) error {
	if err := p.checkDims(); err != nil {
		return err
	}
	hc := p.Heads * p.C
	w3 := fmt.Sprintf("[%d %d %d]", p.CIn, p.Heads, p.C)
	for _, a := range []struct {
		name  string
		x     []T
		n     int
		shape string
	}{
		{"QueryW", p.QueryW, p.CIn * hc, w3},
		{"KeyW", p.KeyW, p.CIn * hc, w3},
		{"ValueW", p.ValueW, p.CIn * hc, w3},
		{"GatingW", p.GatingW, p.CIn * hc, w3},
		{"GatingB", p.GatingB, hc, fmt.Sprintf("[%d %d]", p.Heads, p.C)},
		{"OutputW", p.OutputW, hc * p.COut, fmt.Sprintf("[%d %d %d]", p.Heads, p.C, p.COut)},
		{"OutputB", p.OutputB, p.COut, fmt.Sprintf("[%d]", p.COut)},
	} {
		name := "attn: " + what + "." + a.name
		if err := num.CheckLen(name, a.x, a.n, a.shape); err != nil {
			return err
		}
		if finite {
			if err := num.CheckFinite(name, a.x); err != nil {
				return err
			}
		}
	}
	return nil
}

// GatedCache holds what GatedBackward needs from GatedForward: a reference to
// x (which must not change in between), the projections and gates, the
// attention output and its log-sum-exp, O(Batch·L·Heads·C) values in all and
// never a [L, L] matrix per batch element. A cache may be reused by later
// forward passes; its buffers are kept when large enough.
type GatedCache[T num.Float] struct {
	x                 []T
	xL, oL            Layout
	batch, l          int
	pairBias, keyMask []T
	qkvg              []T // [Batch·L, 4·Heads·C]: q (scaled), k, v, sigmoid gate
	o                 []T // [Batch·L, Heads·C] attention output before gating
	lse               []T // [Batch, Heads, L]
}

// rowGroups describes a [batch, l, width] tensor with layout lay as groups of
// rows with a constant row stride, so that one gemm covers a group: all
// batch·l rows at once when the batch elements follow one another, else one
// group per batch element.
type rowGroups struct {
	groups, rows   int // groups × rows per group
	gStride, ldRow int // group stride and row stride in the strided tensor
}

func groupsOf(lay Layout, batch, l, width int) rowGroups {
	switch {
	case l == 1 && (batch == 1 || lay.Batch >= width):
		return rowGroups{groups: 1, rows: batch, ldRow: lay.Batch}
	case l == 1:
		return rowGroups{groups: batch, rows: 1, gStride: lay.Batch}
	case batch == 1 || lay.Batch == l*lay.Row:
		return rowGroups{groups: 1, rows: batch * l, ldRow: lay.Row}
	}
	return rowGroups{groups: batch, rows: l, gStride: lay.Batch, ldRow: lay.Row}
}

// GatedForward computes AF2's gated multi-head self-attention (the Attention
// module of AF2's modules.py; supplement Algorithms 7, 8, 13 and 14 without
// their layer norms and bias projections):
//
//	q = x·query_w·c^-1/2, k = x·key_w, v = x·value_w, g = sigmoid(x·gating_w + gating_b)
//	o = softmax(q·k + pairBias + 1e9·(keyMask − 1))·v           (per head)
//	out = Σ_{h,c} (o⊙g)·output_w + output_b
//
// x is [batch, l, CIn] with layout xL (element (b, i, ch) at b*xL.Batch +
// i*xL.Row + ch) and serves as queries, keys and values. pairBias [Heads, l, l]
// and keyMask [batch, l] are optional (nil). out [batch, l, COut] with
// layout oL is overwritten. batch may be any sub-range [b0, b0+nb) of the
// caller's batch, to bound memory: pass x[b0*xL.Batch:], out[b0*oL.Batch:]
// and keyMask[b0*l:(b0+nb)*l] with batch = nb.
//
// GatedForward allocates the projections and the attention output,
// 5·batch·l·Heads·C values; if cache is not nil they are kept there (and
// reused by later calls when large enough) with what GatedBackward needs.
// Errors wrap num.ErrShape or num.ErrNaN.
func GatedForward[T num.Float](p *GatedParams[T], x []T, xL Layout, batch, l int, pairBias, keyMask []T, out []T, oL Layout, cache *GatedCache[T]) error {
	if err := p.check("GatedParams", true); err != nil {
		return err
	}
	if batch < 0 || l < 1 {
		return fmt.Errorf("attn: GatedForward: batch=%d must not be negative and l=%d must be positive: %w", batch, l, num.ErrShape)
	}
	if err := checkTensor("x", x, xL, batch, l, p.CIn); err != nil {
		return err
	}
	if err := checkOutput("out", out, oL, batch, l, p.COut); err != nil {
		return err
	}
	hc := p.Heads * p.C
	w4 := 4 * hc
	rows := batch * l

	var qkvg, o, lse []T
	if cache != nil {
		qkvg, o, lse = grow(cache.qkvg, rows*w4), grow(cache.o, rows*hc), grow(cache.lse, batch*p.Heads*l)
		*cache = GatedCache[T]{x: x, xL: xL, oL: oL, batch: batch, l: l, pairBias: pairBias, keyMask: keyMask, qkvg: qkvg, o: o, lse: lse}
	} else {
		qkvg, o = make([]T, rows*w4), make([]T, rows*hc)
	}
	if batch == 0 {
		return nil
	}

	// One product x·[query_w | key_w | value_w | gating_w] per row group.
	wcat := p.concatW()
	xg := groupsOf(xL, batch, l, p.CIn)
	for g := 0; g < xg.groups; g++ {
		gemm.Gemm(false, false, xg.rows, w4, p.CIn, 1, x[g*xg.gStride:], ld(xg.ldRow, p.CIn), wcat, w4, 0, qkvg[g*xg.rows*w4:], w4)
	}
	scale := T(1 / math.Sqrt(float64(p.C)))
	forChunks(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := qkvg[r*w4 : (r+1)*w4]
			for j := range hc {
				row[j] *= scale // AF2 scales q after the projection
			}
			gate := row[3*hc:]
			j0 := 0
			if num.Is32[T]() {
				// AVX2 sigmoid (two float32 ulp) on all but the tail.
				j0 = simd.SigmoidVec(num.As32(gate), num.As32(gate), num.As32(p.GatingB))
			}
			for j, b := range p.GatingB[j0:] {
				gate[j0+j] = num.Sigmoid(gate[j0+j] + b)
			}
		}
	})

	prob := p.problem(qkvg, batch, l, pairBias, keyMask)
	oc := Layout{Batch: l * hc, Row: hc}
	if err := Forward(prob, o, oc, lse); err != nil {
		return err
	}

	// out = (o⊙g)·output_w + output_b.
	og := o
	if cache != nil {
		og = make([]T, rows*hc)
	}
	forChunks(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			gate := qkvg[r*w4+3*hc : (r+1)*w4]
			for j, x := range o[r*hc : (r+1)*hc] {
				og[r*hc+j] = x * gate[j]
			}
		}
	})
	for b := 0; b < batch; b++ {
		for i := 0; i < l; i++ {
			copy(out[b*oL.Batch+i*oL.Row:][:p.COut], p.OutputB)
		}
	}
	og2 := groupsOf(oL, batch, l, p.COut)
	for g := 0; g < og2.groups; g++ {
		gemm.Gemm(false, false, og2.rows, p.COut, hc, 1, og[g*og2.rows*hc:], hc, p.OutputW, p.COut, 1, out[g*og2.gStride:], ld(og2.ldRow, p.COut))
	}
	return nil
}

// problem returns the attention-core problem on the projections qkvg.
func (p *GatedParams[T]) problem(qkvg []T, batch, l int, pairBias, keyMask []T) *Problem[T] {
	hc := p.Heads * p.C
	lay := Layout{Batch: l * 4 * hc, Row: 4 * hc}
	return &Problem[T]{
		Dims: Dims{Batch: batch, Heads: p.Heads, Lq: l, Lk: l, C: p.C, Cv: p.C, KVHeads: p.Heads},
		Q:    qkvg, QL: lay,
		K: qkvg[hc:], KL: lay,
		V: qkvg[2*hc:], VL: lay,
		Scale:    1,
		PairBias: pairBias,
		KeyMask:  keyMask,
		MaskBias: EvoformerMaskBias,
	}
}

// concatW returns [query_w | key_w | value_w | gating_w] as one [CIn, 4·Heads·C]
// matrix.
func (p *GatedParams[T]) concatW() []T {
	hc := p.Heads * p.C
	w := make([]T, p.CIn*4*hc)
	for i := 0; i < p.CIn; i++ {
		row := w[i*4*hc:]
		copy(row[0:hc], p.QueryW[i*hc:(i+1)*hc])
		copy(row[hc:2*hc], p.KeyW[i*hc:(i+1)*hc])
		copy(row[2*hc:3*hc], p.ValueW[i*hc:(i+1)*hc])
		copy(row[3*hc:4*hc], p.GatingW[i*hc:(i+1)*hc])
	}
	return w
}

// GatedBackward accumulates (+=) the gradients of a scalar loss with respect
// to x (into dx, layout xL of the forward pass), the pair bias (into
// dPairBias, [Heads, l, l]) and the parameters (into g), given dout, the
// gradient with respect to out (layout oL of the forward pass), and the
// cache that GatedForward filled with the same parameters p. A nil dx,
// dPairBias or g is not computed.
//
// It allocates about 6·Batch·L·Heads·C values of scratch.
func GatedBackward[T num.Float](p *GatedParams[T], cache *GatedCache[T], dout []T, dx []T, dPairBias []T, g *GatedParams[T]) error {
	if err := p.check("GatedParams", false); err != nil {
		return err
	}
	if cache == nil || cache.qkvg == nil {
		return fmt.Errorf("attn: GatedBackward needs the cache of a GatedForward call: %w", num.ErrShape)
	}
	hc := p.Heads * p.C
	w4 := 4 * hc
	batch, l := cache.batch, cache.l
	rows := batch * l
	if len(cache.qkvg) != rows*w4 {
		return fmt.Errorf("attn: GatedBackward: cache holds %d projection values, want %d for these parameters: %w", len(cache.qkvg), rows*w4, num.ErrShape)
	}
	if err := checkTensor("dout", dout, cache.oL, batch, l, p.COut); err != nil {
		return err
	}
	if dx != nil {
		if err := checkOutput("dx", dx, cache.xL, batch, l, p.CIn); err != nil {
			return err
		}
	}
	if dPairBias != nil {
		if err := num.CheckLen("attn: dPairBias", dPairBias, p.Heads*l*l, fmt.Sprintf("[Heads,L,L] = [%d %d %d]", p.Heads, l, l)); err != nil {
			return err
		}
	}
	if g != nil {
		if g.CIn != p.CIn || g.COut != p.COut || g.Heads != p.Heads || g.C != p.C {
			return fmt.Errorf("attn: GatedBackward: gradient sizes %d,%d,%d,%d differ from the parameters' %d,%d,%d,%d: %w",
				g.CIn, g.Heads, g.C, g.COut, p.CIn, p.Heads, p.C, p.COut, num.ErrShape)
		}
		if err := g.check("grads", false); err != nil {
			return err
		}
	}
	if batch == 0 {
		return nil
	}
	qkvg, o := cache.qkvg, cache.o
	og := groupsOf(cache.oL, batch, l, p.COut)

	// a = o⊙gate, for the output weights' gradient.
	a := make([]T, rows*hc)
	forChunks(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			gate := qkvg[r*w4+3*hc : (r+1)*w4]
			for j, x := range o[r*hc : (r+1)*hc] {
				a[r*hc+j] = x * gate[j]
			}
		}
	})
	if g != nil {
		for b := 0; b < batch; b++ {
			for i := 0; i < l; i++ {
				for j, x := range dout[b*cache.oL.Batch+i*cache.oL.Row:][:p.COut] {
					g.OutputB[j] += x
				}
			}
		}
		for k := 0; k < og.groups; k++ {
			gemm.Gemm(true, false, hc, p.COut, og.rows, 1, a[k*og.rows*hc:], hc, dout[k*og.gStride:], ld(og.ldRow, p.COut), 1, g.OutputW, p.COut)
		}
	}
	// a = d(o⊙gate) = dout·output_wᵀ.
	for k := 0; k < og.groups; k++ {
		gemm.Gemm(false, true, og.rows, hc, p.COut, 1, dout[k*og.gStride:], ld(og.ldRow, p.COut), p.OutputW, p.COut, 0, a[k*og.rows*hc:], hc)
	}
	// do = a⊙gate; d(gate pre-activation) = a⊙o⊙gate⊙(1 − gate), stored in
	// the gate columns of dqkvg.
	dqkvg := make([]T, rows*w4)
	do := make([]T, rows*hc)
	forChunks(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			gate := qkvg[r*w4+3*hc : (r+1)*w4]
			dg := dqkvg[r*w4+3*hc : (r+1)*w4]
			or := o[r*hc : (r+1)*hc]
			for j, x := range a[r*hc : (r+1)*hc] {
				s := gate[j]
				do[r*hc+j] = x * s
				dg[j] = x * or[j] * s * (1 - s)
			}
		}
	})
	prob := p.problem(qkvg, batch, l, cache.pairBias, cache.keyMask)
	if err := Backward(prob, o, Layout{Batch: l * hc, Row: hc}, cache.lse, do, dqkvg, dqkvg[hc:], dqkvg[2*hc:], dPairBias); err != nil {
		return err
	}
	scale := T(1 / math.Sqrt(float64(p.C)))
	forChunks(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			for j := range dqkvg[r*w4 : r*w4+hc] {
				dqkvg[r*w4+j] *= scale // q = (x·query_w)·scale
			}
		}
	})

	xg := groupsOf(cache.xL, batch, l, p.CIn)
	ldx := ld(xg.ldRow, p.CIn)
	if g != nil {
		for r := 0; r < rows; r++ {
			for j, x := range dqkvg[r*w4+3*hc : (r+1)*w4] {
				g.GatingB[j] += x
			}
		}
		dw := make([]T, p.CIn*w4)
		for k := 0; k < xg.groups; k++ {
			gemm.Gemm(true, false, p.CIn, w4, xg.rows, 1, cache.x[k*xg.gStride:], ldx, dqkvg[k*xg.rows*w4:], w4, 1, dw, w4)
		}
		for i := 0; i < p.CIn; i++ {
			row := dw[i*w4:]
			for j := 0; j < hc; j++ {
				g.QueryW[i*hc+j] += row[j]
				g.KeyW[i*hc+j] += row[hc+j]
				g.ValueW[i*hc+j] += row[2*hc+j]
				g.GatingW[i*hc+j] += row[3*hc+j]
			}
		}
	}
	if dx != nil {
		wcat := p.concatW()
		for k := 0; k < xg.groups; k++ {
			gemm.Gemm(false, true, xg.rows, p.CIn, w4, 1, dqkvg[k*xg.rows*w4:], w4, wcat, w4, 1, dx[k*xg.gStride:], ldx)
		}
	}
	return nil
}

// grow returns buf resliced to n elements if it is large enough, else a new
// slice.
func grow[T num.Float](buf []T, n int) []T {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]T, n)
}

// forChunks calls f on the ranges [lo, hi) of chunk rows that cover
// 0..n-1, in parallel.
func forChunks(n, chunk int, f func(lo, hi int)) {
	nc := (n + chunk - 1) / chunk
	run(nc, runtime.GOMAXPROCS(0), func() func(int) {
		return func(i int) { f(i*chunk, min((i+1)*chunk, n)) }
	})
}
