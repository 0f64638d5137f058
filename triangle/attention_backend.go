package triangle

import (
	"errors"
	"fmt"
	"math"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// Att is a triangle self-attention (supplement Algorithm 13 around the
// starting node, Algorithm 14 around the ending node) on a backend chosen by
// the caller, with its parameters uploaded once: the forward pass
// (inference) of AttForward on backend tensors, so that a chain of modules
// keeps the pair representation on the backend. It has no backward pass;
// train with AttForward and AttBackward.
type Att[T num.Float] struct {
	k backend.Kernels[T]
	// p is the CPU module the dispatch path runs; its arrays are the
	// caller's.
	p *AttParams[T]

	lnScale, lnOffset backend.Tensor[T] // query_norm [c_z]
	feat2D            backend.Tensor[T] // feat_2d_weights [c_z, H]
	qW, kW, vW, gW    backend.Tensor[T] // query_w, key_w, value_w, gating_w [c_z, H·c]
	gB                backend.Tensor[T] // gating_b [H·c]
	oW, oB            backend.Tensor[T] // output_w [H·c, c_z], output_b [c_z]

	// composed makes Forward compose backend kernels even when every
	// tensor is a CPU tensor (for tests of that path on the CPU backend).
	composed bool
}

// NewAtt checks p and uploads it to k, returning the module that runs
// p.Config's attention (starting or ending node) on k. p's arrays are
// referenced by the CPU dispatch path of Forward and must not change while
// the module is in use.
//
// The error wraps ErrConfig for a nil k or p or an invalid p.Config,
// num.ErrShape for an array whose length does not match p.Config, and the
// backend's error if an upload fails.
func NewAtt[T num.Float](k backend.Kernels[T], p *AttParams[T]) (*Att[T], error) {
	if k == nil || p == nil {
		return nil, fmt.Errorf("triangle: NewAtt: nil backend or parameters: %w", ErrConfig)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	q := *p
	m := &Att[T]{k: k, p: &q}
	up := uploader[T]{k: k}
	a := &q.Attention
	m.lnScale, m.lnOffset = up.put(q.QueryNorm.Scale), up.put(q.QueryNorm.Offset)
	m.feat2D = up.put(q.FeatTwoDWeights)
	m.qW, m.kW, m.vW, m.gW = up.put(a.QueryW), up.put(a.KeyW), up.put(a.ValueW), up.put(a.GatingW)
	m.gB, m.oW, m.oB = up.put(a.GatingB), up.put(a.OutputW), up.put(a.OutputB)
	if up.err != nil {
		up.free()
		return nil, fmt.Errorf("triangle: NewAtt: %w", up.err)
	}
	return m, nil
}

// Close frees the uploaded parameters; m must not be used afterwards.
func (m *Att[T]) Close() {
	for _, t := range []*backend.Tensor[T]{&m.lnScale, &m.lnOffset, &m.feat2D, &m.qW, &m.kW, &m.vW, &m.gW, &m.gB, &m.oW, &m.oB} {
		if *t != nil {
			m.k.Free(*t)
			*t = nil
		}
	}
	m.p = nil
}

// Forward computes the triangle self-attention of the module's
// configuration on z [N, N, c_z] with the pair mask [N, N] (1 present,
// 0 padding) and writes the update of the pair representation to out
// [N, N, c_z] (no residual), as AttForward does; n is N. out must not
// overlap z.
//
// When every tensor is a CPU tensor, Forward runs AttForward on the
// slices (no copies). Otherwise it composes the backend's kernels:
//
//	x     = LN(z)                      (LayerNorm; of zᵀ for the ending node)
//	bias  = x·feat_2d_weights          (Linear [N², H], Transpose to [H, N, N])
//	q, k, v, g = x·query_w·c^-1/2, x·key_w, x·value_w, x·gating_w + gating_b
//	o     = attention(q, k, v; bias, key mask)   (Attention, one row of x per batch element)
//	out   = (o ⊙ σ(g))·output_w + output_b       (Gate, Linear)
//
// The ending node runs the same computation on zᵀ and maskᵀ, as AF2 does,
// and transposes the result back; the transposed input is the one copy of
// the pair tensor the path makes (the layer norm is taken in place on it),
// and it receives the transposed result row by row, so the ending node
// needs no more memory than the starting node. The rows are processed
// AttConfig.ChunkRows at a time (the same chunks as AttForward), so the
// projections of only one chunk (five [rows·N, H·c] tensors) are live beside
// the normalised input and the pair bias [H, N, N]; no N³ tensor is formed.
// Scratch is freed before Forward returns.
//
// The error wraps num.ErrShape for a tensor whose length does not match n
// and the configuration, num.ErrNaN for a non-finite input where the backend
// checks attention inputs (always on the CPU path), and the backend's
// errors.
func (m *Att[T]) Forward(z, mask backend.Tensor[T], n int, out backend.Tensor[T]) error {
	if m.p == nil {
		return fmt.Errorf("triangle: Att.Forward on a closed module: %w", ErrConfig)
	}
	if err := checkPairTensors("Att.Forward", z, mask, out, n, m.p.Config.PairChannels); err != nil {
		return err
	}
	if h, ok := hostSlices(z, mask, out); ok && !m.composed {
		return AttForward(m.p, h[0], h[1], n, h[2], nil)
	}
	if err := m.forward(z, mask, n, out); err != nil {
		return fmt.Errorf("triangle: Att.Forward: %w", err)
	}
	return nil
}

// forward is the composed backend path of Forward on checked arguments.
func (m *Att[T]) forward(z, mask backend.Tensor[T], n int, out backend.Tensor[T]) error {
	if n == 0 {
		return nil
	}
	k, cfg := m.k, m.p.Config
	cz, h, c := cfg.PairChannels, cfg.Heads, cfg.HeadChannels
	hc, n2 := h*c, n*n
	sc := scratch[T]{k: k}
	defer sc.free()
	v := viewer[T]{k: k}

	// The normalised input x [N², c_z] (query_norm), of zᵀ for the ending
	// node: the layer norm acts on rows of c_z, so LN(zᵀ) = LN(z)ᵀ.
	x := sc.alloc(n2 * cz)
	keyMask := mask
	if cfg.Ending {
		keyMask = sc.alloc(n2)
	}
	if sc.err != nil {
		return sc.err
	}
	src := z
	if cfg.Ending {
		if err := k.Transpose(x, z, 1, n, n, cz); err != nil {
			return err
		}
		if err := k.Transpose(keyMask, mask, 1, n, n, 1); err != nil {
			return err
		}
		src = x
	}
	if err := k.LayerNorm(x, src, n2, cz, m.lnScale, m.lnOffset, T(nn.LayerNormEps), nil, nil); err != nil {
		return err
	}

	// Pair bias [H, N, N]: bias[h, q, k] = x_qk · feat_2d_weights[:, h],
	// which for the ending node (x = LN(z)ᵀ) is AF2's b_kq.
	tmp := scratch[T]{k: k}
	defer tmp.free()
	bias, bt := sc.alloc(h*n2), tmp.alloc(n2*h)
	if err := errors.Join(sc.err, tmp.err); err != nil {
		return err
	}
	if err := k.Linear(bt, x, n2, cz, h, m.feat2D, nil); err != nil {
		return err
	}
	if err := k.Transpose(bias, bt, 1, n2, h, 1); err != nil {
		return err
	}
	tmp.free()

	// The gated attention, a chunk of rows of x (batch elements) at a time.
	rows := cfg.chunk(n, sizeOf[T]())
	maxR := rows * n
	q, kk, vv, g, o := sc.alloc(maxR*hc), sc.alloc(maxR*hc), sc.alloc(maxR*hc), sc.alloc(maxR*hc), sc.alloc(maxR*hc)
	qs := make([]T, maxR)
	scale := T(1 / math.Sqrt(float64(c)))
	for i := range qs {
		qs[i] = scale
	}
	qScale := sc.put(qs)
	if sc.err != nil {
		return sc.err
	}
	dst := out
	if cfg.Ending {
		dst = x // row b of the transposed result replaces row b of x once it is projected
	}
	lay := attn.Layout{Batch: n * hc, Row: hc}
	for b0 := 0; b0 < n; b0 += rows {
		nb := min(rows, n-b0)
		r := nb * n
		xs, ds, km := v.view(x, b0*n*cz, r*cz), v.view(dst, b0*n*cz, r*cz), v.view(keyMask, b0*n, r)
		qv, kv, vvv, gv, ov := v.view(q, 0, r*hc), v.view(kk, 0, r*hc), v.view(vv, 0, r*hc), v.view(g, 0, r*hc), v.view(o, 0, r*hc)
		sv := v.view(qScale, 0, r)
		if v.err != nil {
			return v.err
		}
		for _, p := range []struct {
			y, w, b backend.Tensor[T]
		}{{qv, m.qW, nil}, {kv, m.kW, nil}, {vvv, m.vW, nil}, {gv, m.gW, m.gB}} {
			if err := k.Linear(p.y, xs, r, cz, hc, p.w, p.b); err != nil {
				return err
			}
		}
		// AF2 scales the queries after their projection.
		if err := k.ScaleRows(qv, qv, sv, r, hc); err != nil {
			return err
		}
		prob := &backend.Attention[T]{
			Dims: attn.Dims{Batch: nb, Heads: h, Lq: n, Lk: n, C: c, Cv: c, KVHeads: h},
			Q:    qv, QL: lay, K: kv, KL: lay, V: vvv, VL: lay,
			Scale: 1, PairBias: bias, KeyMask: km, MaskBias: attn.EvoformerMaskBias,
		}
		if err := k.Attention(prob, ov, lay, nil); err != nil {
			return err
		}
		if err := k.Gate(ov, gv, ov); err != nil {
			return err
		}
		if err := k.Linear(ds, ov, r, hc, cz, m.oW, m.oB); err != nil {
			return err
		}
	}
	if cfg.Ending {
		return k.Transpose(out, x, 1, n, n, cz)
	}
	return nil
}

// checkPairTensors checks the tensors of a module's Forward (fn names it):
// z and out [n, n, cz] and mask [n, n].
func checkPairTensors[T num.Float](fn string, z, mask, out backend.Tensor[T], n, cz int) error {
	if n < 0 {
		return fmt.Errorf("triangle: %s: N = %d, want ≥ 0: %w", fn, n, num.ErrShape)
	}
	for _, a := range []struct {
		what  string
		t     backend.Tensor[T]
		want  int
		shape string
	}{
		{"z", z, n * n * cz, fmt.Sprintf("[N,N,c_z] = [%d %d %d]", n, n, cz)},
		{"mask", mask, n * n, fmt.Sprintf("[N,N] = [%d %d]", n, n)},
		{"out", out, n * n * cz, fmt.Sprintf("[N,N,c_z] = [%d %d %d]", n, n, cz)},
	} {
		if a.t == nil {
			return fmt.Errorf("triangle: %s: %s is missing, want %s: %w", fn, a.what, a.shape, num.ErrShape)
		}
		if got := a.t.Len(); got != a.want {
			return fmt.Errorf("triangle: %s: %s has %d elements, want %s (%d): %w", fn, a.what, got, a.shape, a.want, num.ErrShape)
		}
	}
	return nil
}

// hostSlices returns the slices of ts when every one is a CPU tensor.
func hostSlices[T num.Float](ts ...backend.Tensor[T]) ([][]T, bool) {
	h := make([][]T, len(ts))
	for i, t := range ts {
		s, ok := backend.AsHost(t)
		if !ok {
			return nil, false
		}
		h[i] = s
	}
	return h, true
}

// uploader uploads a module's parameters, keeping the first error; free
// releases what it uploaded (after an error).
type uploader[T num.Float] struct {
	k   backend.Kernels[T]
	ts  []backend.Tensor[T]
	err error
}

// put uploads x, or returns nil after an earlier error.
func (u *uploader[T]) put(x []T) backend.Tensor[T] {
	if u.err != nil {
		return nil
	}
	t, err := u.k.FromHost(x)
	if err != nil {
		u.err = err
		return nil
	}
	u.ts = append(u.ts, t)
	return t
}

// free releases every tensor put uploaded.
func (u *uploader[T]) free() {
	for _, t := range u.ts {
		u.k.Free(t)
	}
	u.ts = nil
}

// scratch holds the temporary tensors of one composed Forward, keeping
// the first allocation error; free releases them all (deferred, so that
// error paths free them too).
type scratch[T num.Float] struct {
	k   backend.Kernels[T]
	ts  []backend.Tensor[T]
	err error
}

// alloc returns a new zero tensor of n elements, or nil after an error.
func (s *scratch[T]) alloc(n int) backend.Tensor[T] {
	if s.err != nil {
		return nil
	}
	t, err := s.k.Alloc(n)
	if err != nil {
		s.err = err
		return nil
	}
	s.ts = append(s.ts, t)
	return t
}

// put returns a new tensor holding a copy of x, or nil after an error.
func (s *scratch[T]) put(x []T) backend.Tensor[T] {
	if s.err != nil {
		return nil
	}
	t, err := s.k.FromHost(x)
	if err != nil {
		s.err = err
		return nil
	}
	s.ts = append(s.ts, t)
	return t
}

// free releases every tensor of s; it may be called early (to let the
// memory serve later allocations) and again by a deferred call.
func (s *scratch[T]) free() {
	for _, t := range s.ts {
		s.k.Free(t)
	}
	s.ts = nil
}

// viewer takes views of tensors, keeping the first error.
type viewer[T num.Float] struct {
	k   backend.Kernels[T]
	err error
}

// view returns the n elements of x from off on, or nil after an error.
func (v *viewer[T]) view(x backend.Tensor[T], off, n int) backend.Tensor[T] {
	if v.err != nil {
		return nil
	}
	t, err := v.k.View(x, off, n)
	if err != nil {
		v.err = err
		return nil
	}
	return t
}
