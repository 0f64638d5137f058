package conformance

import (
	"math"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// Refcases runs the attention reference cases of ../shared/refcases
// (triangle attention around the starting and the ending node, supplement
// Algorithms 13 and 14, and MSA row attention with pair bias, Algorithm 7)
// end to end through the backend's kernels — layer norms, projections, the
// pair bias, the attention core, the sigmoid gate, the output projection,
// and the backward pass of all of them — keeping every activation on the
// backend, and compares the outputs and the gradients of the inputs and of
// the parameters with the case's values under the tolerances of its meta
// (float32 or float64). Tests are skipped when the cases are absent.
func Refcases[T num.Float](t *testing.T, k backend.Kernels[T]) {
	t.Run("tri_att_starting", func(t *testing.T) {
		triangleCase(t, k, "tri_att_starting.npz", "triangle_attention_starting_node/", false)
	})
	t.Run("tri_att_ending", func(t *testing.T) { triangleCase(t, k, "tri_att_ending.npz", "triangle_attention_ending_node/", true) })
	t.Run("msa_row_attention", func(t *testing.T) { msaRowCase(t, k) })
}

// devt is a set of tensors on a backend, freed together.
type devt[T num.Float] struct {
	t    testing.TB
	k    backend.Kernels[T]
	live []backend.Tensor[T]
}

func (d *devt[T]) up(x []T) backend.Tensor[T] {
	v := put(d.t, d.k, x)
	d.live = append(d.live, v)
	return v
}

func (d *devt[T]) zeros(n int) backend.Tensor[T] {
	v, err := d.k.Alloc(n)
	must(d.t, "Alloc", err)
	d.live = append(d.live, v)
	return v
}

func (d *devt[T]) free() {
	for _, v := range d.live {
		d.k.Free(v)
	}
}

// load reads a float array of the case as T, failing the test on error.
func load[T num.Float](t testing.TB, s *params.Set, name string, shape ...int) []T {
	t.Helper()
	x, err := params.Get[T](s, name, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func to64[T num.Float](x []T) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// gatedParams are one AF2 gated attention's weights on the backend, with
// their gradients: query_w, key_w, value_w, gating_w [cin, H·c], gating_b
// [H·c], output_w [H·c, cout], output_b [cout].
type gatedParams[T num.Float] struct {
	w, g      [7]backend.Tensor[T] // q, k, v, gate, gate bias, out, out bias
	host      [7][]T
	cin, cout int
	h, c      int
}

var gatedNames = [7]string{"query_w", "key_w", "value_w", "gating_w", "gating_b", "output_w", "output_b"}

func loadGated[T num.Float](t testing.TB, d *devt[T], s *params.Set, cin, h, c, cout int) *gatedParams[T] {
	p := &gatedParams[T]{cin: cin, cout: cout, h: h, c: c}
	shapes := [7][]int{{cin, h, c}, {cin, h, c}, {cin, h, c}, {cin, h, c}, {h, c}, {h, c, cout}, {cout}}
	for i, n := range gatedNames {
		p.host[i] = load[T](t, s, "attention//"+n, shapes[i]...)
		p.w[i] = d.up(p.host[i])
		p.g[i] = d.zeros(len(p.host[i]))
	}
	return p
}

// gatedRun is the forward state of one gated attention, kept for backward.
type gatedRun[T num.Float] struct {
	p          *gatedParams[T]
	x          backend.Tensor[T] // [batch·l, cin]
	q, k, v, g backend.Tensor[T] // [batch·l, H·c]
	o, og      backend.Tensor[T] // core output, gated output
	lse        backend.Tensor[T]
	prob       *backend.Attention[T]
	lay        attn.Layout
	rows       int
	out        backend.Tensor[T] // [batch·l, cout]
}

// gatedForward runs AF2's gated attention on x [batch, l, cin] (self
// attention over l for each batch element) with pair bias [H, l, l] and key
// mask [batch, l].
func gatedForward[T num.Float](t testing.TB, d *devt[T], p *gatedParams[T], x backend.Tensor[T], batch, l int, bias, mask backend.Tensor[T]) *gatedRun[T] {
	k := d.k
	hc := p.h * p.c
	r := &gatedRun[T]{p: p, x: x, rows: batch * l}
	r.q, r.k, r.v, r.g = d.zeros(r.rows*hc), d.zeros(r.rows*hc), d.zeros(r.rows*hc), d.zeros(r.rows*hc)
	must(t, "Linear q", k.Linear(r.q, x, r.rows, p.cin, hc, p.w[0], nil))
	must(t, "Linear k", k.Linear(r.k, x, r.rows, p.cin, hc, p.w[1], nil))
	must(t, "Linear v", k.Linear(r.v, x, r.rows, p.cin, hc, p.w[2], nil))
	must(t, "Linear gate", k.Linear(r.g, x, r.rows, p.cin, hc, p.w[3], p.w[4]))
	r.lay = attn.Layout{Batch: l * hc, Row: hc}
	r.prob = &backend.Attention[T]{
		Dims: attn.Dims{Batch: batch, Heads: p.h, Lq: l, Lk: l, C: p.c, Cv: p.c},
		Q:    r.q, QL: r.lay, K: r.k, KL: r.lay, V: r.v, VL: r.lay,
		Scale: T(1 / math.Sqrt(float64(p.c))), PairBias: bias, KeyMask: mask, MaskBias: attn.EvoformerMaskBias,
	}
	r.o, r.og, r.lse = d.zeros(r.rows*hc), d.zeros(r.rows*hc), d.zeros(batch*p.h*l)
	must(t, "Attention", k.Attention(r.prob, r.o, r.lay, r.lse))
	must(t, "Gate", k.Gate(r.og, r.g, r.o))
	r.out = d.zeros(r.rows * p.cout)
	must(t, "Linear out", k.Linear(r.out, r.og, r.rows, hc, p.cout, p.w[5], p.w[6]))
	return r
}

// gatedBackward accumulates the gradients of Σ out·dout into dx [rows, cin],
// dbias [H, l, l] and the parameters' gradients.
func gatedBackward[T num.Float](t testing.TB, d *devt[T], r *gatedRun[T], dout, dx, dbias backend.Tensor[T]) {
	k, p := d.k, r.p
	hc := p.h * p.c
	dog, do, dg := d.zeros(r.rows*hc), d.zeros(r.rows*hc), d.zeros(r.rows*hc)
	must(t, "LinearBackward out", k.LinearBackward(dog, p.g[5], p.g[6], r.og, p.w[5], dout, r.rows, hc, p.cout))
	must(t, "GateBackward", k.GateBackward(dg, do, r.g, r.o, dog))
	must(t, "LinearBackward gate", k.LinearBackward(dx, p.g[3], p.g[4], r.x, p.w[3], dg, r.rows, p.cin, hc))
	dq, dk, dv := d.zeros(r.rows*hc), d.zeros(r.rows*hc), d.zeros(r.rows*hc)
	must(t, "AttentionBackward", k.AttentionBackward(r.prob, r.o, r.lay, r.lse, do, dq, dk, dv, dbias))
	must(t, "LinearBackward q", k.LinearBackward(dx, p.g[0], nil, r.x, p.w[0], dq, r.rows, p.cin, hc))
	must(t, "LinearBackward k", k.LinearBackward(dx, p.g[1], nil, r.x, p.w[1], dk, r.rows, p.cin, hc))
	must(t, "LinearBackward v", k.LinearBackward(dx, p.g[2], nil, r.x, p.w[2], dv, r.rows, p.cin, hc))
}

// pairBias sets bias [H, n] = (zn [n, cz]·w [cz, H])ᵀ, AF2's feat_2d
// projection laid out head-major for the attention core, in one product.
func pairBias[T num.Float](t testing.TB, k backend.Kernels[T], bias, zn, w backend.Tensor[T], n, cz, h int) {
	must(t, "Gemm pair bias", k.Gemm(true, true, h, n, cz, 1, w, h, zn, cz, 0, bias, n))
}

// pairBiasBackward accumulates dw [cz, H] += znᵀ·dbiasᵀ and dzn [n, cz] +=
// dbiasᵀ·wᵀ.
func pairBiasBackward[T num.Float](t testing.TB, k backend.Kernels[T], dw, dzn, zn, w, dbias backend.Tensor[T], n, cz, h int) {
	must(t, "Gemm dW", k.Gemm(true, true, cz, h, n, 1, zn, cz, dbias, n, 1, dw, h))
	must(t, "Gemm dz", k.Gemm(true, true, n, cz, h, 1, dbias, n, w, h, 1, dzn, cz))
}

// tolerances returns the case's (abs, rel) for T's outputs.
func tolerances[T num.Float](m refcase.Meta) (abs, rel float64) {
	if num.Is32[T]() {
		return m.Tol(1e-4, "float32", "abs"), m.Tol(1e-3, "float32", "rel")
	}
	return m.Tol(1e-9, "float64", "abs"), m.Tol(1e-7, "float64", "rel")
}

// compareGrad compares a gradient: float64 under the case's grad/in
// tolerance (abs, rel), float32 under rel_to_max_abs·max|want| (README §5),
// skipping elements for which skip is true.
func compareGrad[T num.Float](t testing.TB, m refcase.Meta, what string, got []T, want []float64, isParam bool, skip func(int) bool) {
	t.Helper()
	var abs, rel float64
	// An array that is analytically zero (a layer-norm offset feeding only
	// a pair bias, to which the softmax is invariant; README §5) has a
	// max|want| of round-off size: the bound's scale is at least 1.
	scale := max(1, refcase.MaxAbs(want))
	switch {
	case num.Is32[T]():
		abs = m.Tol(1e-3, "grad", "float32 implementations", "rel_to_max_abs") * scale
	case isParam:
		// grad/params are stored rounded to float32: half an ulp of float32
		// relative, within rel_to_max_abs·max|want|.
		abs = m.Tol(1e-6, "grad", "grad/params (stored float32)", "rel_to_max_abs") * scale
	default:
		abs, rel = m.Tol(1e-8, "grad", "grad/in (float64)", "abs"), m.Tol(1e-6, "grad", "grad/in (float64)", "rel")
	}
	refcase.CompareSkip(t, what, got, want, abs, rel, skip)
}

// transpose01 swaps the first two axes of x [n, n, c].
func transpose01[T any](x []T, n, c int) []T {
	y := make([]T, len(x))
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			copy(y[(j*n+i)*c:(j*n+i+1)*c], x[(i*n+j)*c:(i*n+j+1)*c])
		}
	}
	return y
}

// triangleCase runs triangle attention (Alg. 13, or 14 when ending: the
// same computation on zᵀ and maskᵀ, transposed back) on one case.
func triangleCase[T num.Float](t *testing.T, k backend.Kernels[T], file, prefix string, ending bool) {
	cs := refcase.Open(t, file)
	m, err := refcase.ReadMeta(cs)
	must(t, "meta", err)
	shape, err := cs.Shape("in/z")
	must(t, "shape", err)
	n, cz := shape[0], shape[2]
	h, c := int(m.Config["heads"].(float64)), int(m.Config["c_hidden"].(float64))
	ps := cs.Sub("params/" + prefix)
	z := load[T](t, cs, "in/z", n, n, cz)
	mask := load[T](t, cs, "in/pair_mask", n, n)
	cot := load[T](t, cs, "in/cot_z_update", n, n, cz)
	if ending {
		z, mask, cot = transpose01(z, n, cz), transpose01(mask, n, 1), transpose01(cot, n, cz)
	}
	d := &devt[T]{t: t, k: k}
	defer d.free()
	rows := n * n
	scale, offset := load[T](t, ps, "query_norm//scale", cz), load[T](t, ps, "query_norm//offset", cz)
	feat := load[T](t, ps, "/feat_2d_weights", cz, h)
	dz, dscale, doffset, dfeat := d.up(z), d.up(scale), d.up(offset), d.up(feat)
	gp := loadGated(t, d, ps, cz, h, c, cz)

	// Forward.
	x, mean, rstd := d.zeros(rows*cz), d.zeros(rows), d.zeros(rows)
	must(t, "LayerNorm", k.LayerNorm(x, dz, rows, cz, dscale, doffset, T(nn.LayerNormEps), mean, rstd))
	bias := d.zeros(h * rows)
	pairBias(t, k, bias, x, dfeat, rows, cz, h)
	r := gatedForward(t, d, gp, x, n, n, bias, d.up(mask))
	out := get(t, k, r.out)

	// Backward of Σ out·cot.
	dx, dbias := d.zeros(rows*cz), d.zeros(h*rows)
	gatedBackward(t, d, r, d.up(cot), dx, dbias)
	gfeat := d.zeros(cz * h)
	pairBiasBackward(t, k, gfeat, dx, x, dfeat, dbias, rows, cz, h)
	gz, gscale, goffset := d.zeros(rows*cz), d.zeros(cz), d.zeros(cz)
	must(t, "LayerNormBackward", k.LayerNormBackward(gz, gscale, goffset, dz, dscale, mean, rstd, dx, rows, cz))
	gradZ := get(t, k, gz)
	if ending {
		out, gradZ = transpose01(out, n, cz), transpose01(gradZ, n, cz)
		mask = transpose01(mask, n, 1)
	}

	// Positions whose own pair mask is 0 lie in rows whose keys are all
	// masked (row and column n−1 of the case): compared separately.
	masked := func(i int) bool { return mask[i/cz] == 0 }
	abs, rel := tolerances[T](m)
	want := load[float64](t, cs, "out/z_update", n, n, cz)
	refcase.CompareSkip(t, "z_update", out, want, abs, rel, masked)
	mabs := m.Tol(1e-6, "float64_positions_with_mask_0", "abs")
	if num.Is32[T]() {
		mabs = m.Tol(7, "float32_positions_with_mask_0", "abs")
	}
	refcase.CompareSkip(t, "z_update (own mask 0)", out, want, mabs, 0, func(i int) bool { return !masked(i) })

	// Gradients. In float32 the rows whose keys are all masked have a
	// uniform softmax (the −1e9 swallows the logits) where the float64
	// reference has not, and through the pair bias, which every row shares,
	// that difference reaches the gradient of every z and every parameter:
	// a float32 run's gradients are not comparable with this case (the
	// conformance tests compare them with the CPU's float32 kernels).
	if num.Is32[T]() {
		return
	}
	wantGZ := load[float64](t, cs, "grad/in/z", n, n, cz)
	compareGrad(t, m, "grad z", gradZ, wantGZ, false, masked)
	refcase.CompareSkip(t, "grad z (own mask 0)", gradZ, wantGZ, mabs, 0, func(i int) bool { return !masked(i) })
	gs := cs.Sub("grad/params/" + prefix)
	compareGrad(t, m, "grad query_norm scale", get(t, k, gscale), load[float64](t, gs, "query_norm//scale", cz), true, nil)
	compareGrad(t, m, "grad query_norm offset", get(t, k, goffset), load[float64](t, gs, "query_norm//offset", cz), true, nil)
	compareGrad(t, m, "grad feat_2d_weights", get(t, k, gfeat), load[float64](t, gs, "/feat_2d_weights", cz, h), true, nil)
	for i, name := range gatedNames {
		compareGrad(t, m, "grad "+name, get(t, k, gp.g[i]), to64(load[T](t, gs, "attention//"+name)), true, nil)
	}
}

// msaRowCase runs MSA row attention with pair bias (Alg. 7).
func msaRowCase[T num.Float](t *testing.T, k backend.Kernels[T]) {
	cs := refcase.Open(t, "msa_row_attention.npz")
	m, err := refcase.ReadMeta(cs)
	must(t, "meta", err)
	ms, err := cs.Shape("in/msa")
	must(t, "shape", err)
	s, n, cm := ms[0], ms[1], ms[2]
	zs, err := cs.Shape("in/z")
	must(t, "shape", err)
	cz := zs[2]
	h, c := int(m.Config["heads"].(float64)), int(m.Config["c_hidden"].(float64))
	ps := cs.Sub("params/msa_row_attention_with_pair_bias/")
	d := &devt[T]{t: t, k: k}
	defer d.free()
	msa := d.up(load[T](t, cs, "in/msa", s, n, cm))
	z := d.up(load[T](t, cs, "in/z", n, n, cz))
	mask := d.up(load[T](t, cs, "in/msa_mask", s, n))
	qs, qo := d.up(load[T](t, ps, "query_norm//scale", cm)), d.up(load[T](t, ps, "query_norm//offset", cm))
	fs, fo := d.up(load[T](t, ps, "feat_2d_norm//scale", cz)), d.up(load[T](t, ps, "feat_2d_norm//offset", cz))
	feat := d.up(load[T](t, ps, "/feat_2d_weights", cz, h))
	gp := loadGated(t, d, ps, cm, h, c, cm)

	rows, prows := s*n, n*n
	x, xm, xr := d.zeros(rows*cm), d.zeros(rows), d.zeros(rows)
	must(t, "LayerNorm msa", k.LayerNorm(x, msa, rows, cm, qs, qo, T(nn.LayerNormEps), xm, xr))
	zn, zm, zr := d.zeros(prows*cz), d.zeros(prows), d.zeros(prows)
	must(t, "LayerNorm z", k.LayerNorm(zn, z, prows, cz, fs, fo, T(nn.LayerNormEps), zm, zr))
	bias := d.zeros(h * prows)
	pairBias(t, k, bias, zn, feat, prows, cz, h)
	r := gatedForward(t, d, gp, x, s, n, bias, mask)

	dx, dbias := d.zeros(rows*cm), d.zeros(h*prows)
	gatedBackward(t, d, r, d.up(load[T](t, cs, "in/cot_msa_update", s, n, cm)), dx, dbias)
	gfeat, dzn := d.zeros(cz*h), d.zeros(prows*cz)
	pairBiasBackward(t, k, gfeat, dzn, zn, feat, dbias, prows, cz, h)
	gmsa, gqs, gqo := d.zeros(rows*cm), d.zeros(cm), d.zeros(cm)
	must(t, "LayerNormBackward msa", k.LayerNormBackward(gmsa, gqs, gqo, msa, qs, xm, xr, dx, rows, cm))
	gz, gfs, gfo := d.zeros(prows*cz), d.zeros(cz), d.zeros(cz)
	must(t, "LayerNormBackward z", k.LayerNormBackward(gz, gfs, gfo, z, fs, zm, zr, dzn, prows, cz))

	abs, rel := tolerances[T](m)
	refcase.Compare(t, "msa_update", get(t, k, r.out), load[float64](t, cs, "out/msa_update", s, n, cm), abs, rel)
	compareGrad(t, m, "grad msa", get(t, k, gmsa), load[float64](t, cs, "grad/in/msa", s, n, cm), false, nil)
	compareGrad(t, m, "grad z", get(t, k, gz), load[float64](t, cs, "grad/in/z", n, n, cz), false, nil)
	gs := cs.Sub("grad/params/msa_row_attention_with_pair_bias/")
	compareGrad(t, m, "grad query_norm scale", get(t, k, gqs), load[float64](t, gs, "query_norm//scale", cm), true, nil)
	compareGrad(t, m, "grad feat_2d_norm offset", get(t, k, gfo), load[float64](t, gs, "feat_2d_norm//offset", cz), true, nil)
	compareGrad(t, m, "grad feat_2d_weights", get(t, k, gfeat), load[float64](t, gs, "/feat_2d_weights", cz, h), true, nil)
	for i, name := range gatedNames {
		compareGrad(t, m, "grad "+name, get(t, k, gp.g[i]), to64(load[T](t, gs, "attention//"+name)), true, nil)
	}
}
