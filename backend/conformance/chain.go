package conformance

import (
	"errors"
	"math"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// Chain runs a gated self-attention block (layer norm, q/k/v/gate
// projections, the attention core with a pair bias, the sigmoid gate, the
// output projection and the residual update; supplement Algorithm 13's
// shape) on the backend, keeping every activation on it and copying to the
// host once at the end, and compares the result with the same block on the
// CPU backend. The tolerance is tol.Attention plus 100·tol.Gemm: the block
// composes a layer norm, four products of ≤ 64 terms and the attention
// core, and their errors add.
func Chain[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	const batch, l, c, heads, ch = 3, 24, 32, 4, 8
	rng := newRNG(11)
	x := randVec[T](rng, batch*l*c, -2, 2)
	scale, offset := randVec[T](rng, c, 0.5, 1.5), randVec[T](rng, c, -0.5, 0.5)
	wq, wk, wv, wg := randVec[T](rng, c*heads*ch, -0.3, 0.3), randVec[T](rng, c*heads*ch, -0.3, 0.3), randVec[T](rng, c*heads*ch, -0.3, 0.3), randVec[T](rng, c*heads*ch, -0.3, 0.3)
	bg := randVec[T](rng, heads*ch, -1, 1)
	wo, bo := randVec[T](rng, heads*ch*c, -0.3, 0.3), randVec[T](rng, c, -0.1, 0.1)
	bias := randVec[T](rng, heads*l*l, -1, 1)

	run := func(k backend.Kernels[T]) []T {
		var live []backend.Tensor[T]
		up := func(v []T) backend.Tensor[T] {
			d := put(t, k, v)
			live = append(live, d)
			return d
		}
		alloc := func(n int) backend.Tensor[T] {
			d, err := k.Alloc(n)
			must(t, "Alloc", err)
			live = append(live, d)
			return d
		}
		defer func() {
			for _, d := range live {
				k.Free(d)
			}
		}()
		rows, hc := batch*l, heads*ch
		dx := up(x)
		xn := alloc(rows * c)
		must(t, "LayerNorm", k.LayerNorm(xn, dx, rows, c, up(scale), up(offset), T(nn.LayerNormEps), nil, nil))
		q, kk, v, g := alloc(rows*hc), alloc(rows*hc), alloc(rows*hc), alloc(rows*hc)
		must(t, "Linear q", k.Linear(q, xn, rows, c, hc, up(wq), nil))
		must(t, "Linear k", k.Linear(kk, xn, rows, c, hc, up(wk), nil))
		must(t, "Linear v", k.Linear(v, xn, rows, c, hc, up(wv), nil))
		must(t, "Linear g", k.Linear(g, xn, rows, c, hc, up(wg), up(bg)))
		lay := attn.Layout{Batch: l * hc, Row: hc}
		p := &backend.Attention[T]{
			Dims: attn.Dims{Batch: batch, Heads: heads, Lq: l, Lk: l, C: ch, Cv: ch},
			Q:    q, QL: lay, K: kk, KL: lay, V: v, VL: lay,
			Scale: T(1 / math.Sqrt(ch)), PairBias: up(bias),
		}
		o := alloc(rows * hc)
		must(t, "Attention", k.Attention(p, o, lay, nil))
		must(t, "Gate", k.Gate(o, g, o))
		y := alloc(rows * c)
		must(t, "Linear o", k.Linear(y, o, rows, hc, c, up(wo), up(bo)))
		must(t, "Add", k.Add(dx, y))
		return get(t, k, dx)
	}
	want := run(backend.CPU[T]())
	compare(t, "block output", run(k), want, tol.Attention+100*tol.Gemm)
}

// Errors checks that bad arguments give errors, not panics: wrong lengths
// and missing tensors wrap num.ErrShape, and (for a backend whose tensors
// are not Host slices) host tensors wrap backend.ErrForeign.
func Errors[T num.Float](t *testing.T, k backend.Kernels[T]) {
	a := put(t, k, make([]T, 12))
	b := put(t, k, make([]T, 12))
	short := put(t, k, make([]T, 5))
	defer k.Free(a)
	defer k.Free(b)
	defer k.Free(short)
	lay := attn.Layout{Batch: 6, Row: 3}
	p := &backend.Attention[T]{Dims: attn.Dims{Batch: 2, Heads: 1, Lq: 2, Lk: 2, C: 3, Cv: 3}, Q: a, QL: lay, K: a, KL: lay, V: a, VL: lay, Scale: 1}
	bad := &backend.Attention[T]{Dims: p.Dims, Q: short, QL: lay, K: a, KL: lay, V: a, VL: lay, Scale: 1}
	overlap := attn.Layout{Batch: 2, Row: 3}
	shapeCases := []struct {
		name string
		err  error
	}{
		{"Gemm short c", k.Gemm(false, false, 3, 4, 2, 1, a, 2, b, 4, 0, short, 4)},
		{"Gemm bad lda", k.Gemm(false, false, 3, 4, 2, 1, a, 1, b, 4, 0, a, 4)},
		{"Gemm negative", k.Gemm(false, false, -1, 4, 2, 1, a, 2, b, 4, 0, a, 4)},
		{"GemmStridedBatched overlapping c", k.GemmStridedBatched(false, false, 2, 3, 2, 1, a, 2, 0, b, 3, 0, 0, a, 3, 3, 2)},
		{"Linear short w", k.Linear(a, b, 2, 6, 6, short, nil)},
		{"Linear missing x", k.Linear(a, nil, 2, 6, 6, b, nil)},
		{"LinearBackward short dy", k.LinearBackward(nil, nil, nil, a, b, short, 2, 3, 4)},
		{"LayerNorm short scale", k.LayerNorm(a, b, 2, 6, short, short, 1e-5, nil, nil)},
		{"LayerNormBackward short mean", k.LayerNormBackward(a, nil, nil, b, put(t, k, make([]T, 6)), short, nil, a, 2, 6)},
		{"Softmax rows·n", k.Softmax(a, 5, 5)},
		{"SoftmaxBackward short y", k.SoftmaxBackward(a, short, b, 3, 4)},
		{"Sigmoid lengths", k.Sigmoid(short, a)},
		{"Gate lengths", k.Gate(a, short, b)},
		{"Add lengths", k.Add(a, short)},
		{"Attention short Q", k.Attention(bad, b, lay, nil)},
		{"Attention bad heads", k.Attention(&backend.Attention[T]{Dims: attn.Dims{Batch: 1, Heads: 0, Lq: 1, Lk: 1, C: 1, Cv: 1}}, b, lay, nil)},
		{"Attention overlapping o", k.Attention(p, b, overlap, nil)},
		{"Attention short lse", k.Attention(p, b, lay, short)},
		{"AttentionBackward missing lse", k.AttentionBackward(p, b, lay, nil, b, nil, nil, nil, nil)},
		{"RigidCompose short", k.RigidCompose(a, b, short, 1)},
		{"RigidMap short points", k.RigidMap(backend.Apply, short, a, short, 1, 2)},
		{"QuatToRot short", k.QuatToRot(short, a, 2)},
		{"ComposeQUpdate short u", k.ComposeQUpdate(a, a, a, a, short, 1)},
		{"View negative", func() error { _, err := k.View(a, -1, 2); return err }()},
	}
	for _, c := range shapeCases {
		if !errors.Is(c.err, num.ErrShape) {
			t.Errorf("%s: error %v, want one wrapping num.ErrShape", c.name, c.err)
		}
	}
	if err := k.RigidMap(backend.FrameMap(9), a, a, a, 1, 1); err == nil {
		t.Error("RigidMap with an unknown mode: no error")
	}
	if _, ok := backend.AsHost(a); ok {
		return // host tensors are this backend's own
	}
	h := backend.Host[T](make([]T, 12))
	for _, c := range []struct {
		name string
		err  error
	}{
		{"Add host", k.Add(a, h)},
		{"Linear host w", k.Linear(a, b, 2, 6, 6, put(t, k, make([]T, 36)), h[:6])},
		{"ToHost of host", k.ToHost(make([]T, 12), h)},
		{"Attention host Q", k.Attention(&backend.Attention[T]{Dims: p.Dims, Q: h, QL: lay, K: a, KL: lay, V: a, VL: lay, Scale: 1}, b, lay, nil)},
	} {
		if !errors.Is(c.err, backend.ErrForeign) {
			t.Errorf("%s: error %v, want one wrapping backend.ErrForeign", c.name, c.err)
		}
	}
}
