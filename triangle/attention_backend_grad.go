package triangle

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// AttTape records on the backend what Att.Backward needs from one
// Att.ForwardTape call: the training counterpart of AttCache for a module
// on a backend. A zero AttTape is ready to use; a later ForwardTape call
// replaces what it holds, and Free releases it.
//
// On the CPU dispatch path (CPU tensors, see Att.Forward) the tape holds an
// AttCache filled by AttForward. On the composed path it holds backend
// tensors: the normalised input x [N², c_z] (of zᵀ for the ending node) with
// its layer-norm statistics [N²], the pair bias [H, N, N], the transposed
// key mask [N, N] (ending node), and the attention output before gating
// [N², H·c] with its log-sum-exp [N, H, N]; Backward recomputes the
// queries, keys, values and gates chunk by chunk of rows (four matrix
// products of size N²·c_z·H·c, small beside the attention itself), so the
// tape holds about two N×N×c_z-sized arrays and nothing of size N³.
//
// Either way the tape refers to (does not copy) the z and mask passed to
// ForwardTape, which must not change or be freed until the last Backward
// call that uses the tape.
type AttTape[T num.Float] struct {
	m     *Att[T] // the module that filled the tape
	k     backend.Kernels[T]
	n     int
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds AttForward's cache

	cache   AttCache[T]
	z, mask backend.Tensor[T]

	x, mean, rstd backend.Tensor[T] // query_norm: output [N², c_z] and statistics [N²]
	bias, keyMask backend.Tensor[T] // [H, N, N] and [N, N], in the attention's order
	o, lse        backend.Tensor[T] // attention output [N², H·c] and log-sum-exp [N, H, N]
	own           *backend.Arena[T] // the tensors above, freed by release
}

// Free releases the tape's tensors (and its CPU cache); the tape is then
// empty, ready for another ForwardTape call. Free of a zero tape does
// nothing.
func (t *AttTape[T]) Free() {
	t.release()
	t.cache = AttCache[T]{}
}

// release frees the backend tensors of t and marks it empty, keeping the
// CPU cache's buffers for reuse.
func (t *AttTape[T]) release() {
	if t.own != nil {
		t.own.Free()
	}
	c := t.cache
	c.valid, c.z, c.mask = false, nil, nil
	*t = AttTape[T]{cache: c}
}

// ForwardTape computes what Forward computes (the same kernels in the same
// order, so out is bit for bit Forward's) and records in tape what
// Backward needs to differentiate it: supplement Algorithm 13 (starting
// node) or 14 (ending node) for training on a backend. z [N, N, c_z], mask
// [N, N] and out [N, N, c_z] are as for Forward, and tape must not be nil;
// what tape held before is released. See AttTape for what is kept (the
// tape refers to z and mask).
//
// On CPU tensors (and outside the package's tests of the composed path)
// ForwardTape runs AttForward with the tape's AttCache, which keeps the
// per-row projections when they fit (see AttCache).
//
// The error wraps ErrConfig for a closed module or a nil tape, num.ErrShape
// for a length that does not match n and the configuration, num.ErrNaN for
// a non-finite input where the backend checks attention inputs, and the
// backend's errors; the tape is then empty.
func (m *Att[T]) ForwardTape(z, mask backend.Tensor[T], n int, out backend.Tensor[T], tape *AttTape[T]) error {
	if m.p == nil {
		return fmt.Errorf("triangle: Att.ForwardTape on a closed module: %w", ErrConfig)
	}
	if tape == nil {
		return fmt.Errorf("triangle: Att.ForwardTape: nil tape: %w", ErrConfig)
	}
	tape.release()
	if err := checkPairTensors("Att.ForwardTape", z, mask, out, n, m.p.Config.PairChannels); err != nil {
		return err
	}
	tape.m, tape.k, tape.n, tape.z, tape.mask = m, m.k, n, z, mask
	if h, ok := backend.HostSlices(z, mask, out); ok && !m.composed {
		tape.host = true
		if err := AttForward(m.p, h[0], h[1], n, h[2], &tape.cache); err != nil {
			tape.release()
			return err
		}
		tape.valid = true
		return nil
	}
	if err := m.forwardTape(z, mask, n, out, tape); err != nil {
		tape.release()
		return fmt.Errorf("triangle: Att.ForwardTape: %w", err)
	}
	tape.valid = true
	return nil
}

// forwardTape is the composed path of Forward (t nil) and ForwardTape on
// checked arguments. With a tape it keeps x, the statistics of query_norm,
// the pair bias, the key mask, and the attention output before gating and
// its log-sum-exp in t; without one it holds only one chunk's attention
// output and, for the ending node, writes the transposed result over x
// (row b of x is dead once projected). The gate is applied into the gate's
// buffer, leaving the attention output as Backward needs it.
func (m *Att[T]) forwardTape(z, mask backend.Tensor[T], n int, out backend.Tensor[T], t *AttTape[T]) error {
	if n == 0 {
		return nil
	}
	k, cfg := m.k, m.p.Config
	cz, h, c := cfg.PairChannels, cfg.Heads, cfg.HeadChannels
	hc, n2 := h*c, n*n
	sc := backend.NewArena(k)
	defer sc.Free()
	keep := sc // the tape's tensors, handed to t at the end
	if t != nil {
		keep = backend.NewArena(k)
		defer func() {
			if t.own != keep {
				keep.Free()
			}
		}()
	}
	rows := cfg.chunk(n, sizeOf[T]())
	maxR := rows * n
	oLen := maxR * hc // one chunk's attention output, or all of it for the tape
	var mean, rstd, lse backend.Tensor[T]
	if t != nil {
		oLen = n2 * hc
		mean, rstd, lse = keep.Alloc(n2), keep.Alloc(n2), keep.Alloc(n*h*n)
	}
	x, bias, o := keep.Alloc(n2*cz), keep.Alloc(h*n2), keep.Alloc(oLen)
	keyMask := mask
	if cfg.Ending {
		keyMask = keep.Alloc(n2)
	}
	if keep.Err() != nil {
		return keep.Err()
	}
	// The normalised input x [N², c_z] (query_norm), of zᵀ for the ending
	// node: the layer norm acts on rows of c_z, so LN(zᵀ) = LN(z)ᵀ.
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
	if err := k.LayerNorm(x, src, n2, cz, m.lnScale, m.lnOffset, T(nn.LayerNormEps), mean, rstd); err != nil {
		return err
	}

	// Pair bias [H, N, N]: bias[h, q, k] = x_qk · feat_2d_weights[:, h],
	// which for the ending node (x = LN(z)ᵀ) is AF2's b_kq.
	tmp := backend.NewArena(k)
	defer tmp.Free()
	bt := tmp.Alloc(n2 * h)
	if tmp.Err() != nil {
		return tmp.Err()
	}
	if err := k.Linear(bt, x, n2, cz, h, m.feat2D, nil); err != nil {
		return err
	}
	if err := k.Transpose(bias, bt, 1, n2, h, 1); err != nil {
		return err
	}
	tmp.Free()

	// The gated attention, a chunk of rows of x (batch elements) at a time.
	q, kk, vv, g := sc.Alloc(maxR*hc), sc.Alloc(maxR*hc), sc.Alloc(maxR*hc), sc.Alloc(maxR*hc)
	qScale := sc.FromHost(attQueryScales[T](maxR, c))
	dst := out
	if cfg.Ending {
		dst = x // row b of the transposed result replaces row b of x once it is projected
		if t != nil {
			dst = sc.Alloc(n2 * cz) // x is kept: a buffer of its own
		}
	}
	if sc.Err() != nil {
		return sc.Err()
	}
	v := backend.NewArena(k)
	lay := attn.Layout{Batch: n * hc, Row: hc}
	for b0 := 0; b0 < n; b0 += rows {
		nb := min(rows, n-b0)
		r := nb * n
		xs, ds, km := v.View(x, b0*n*cz, r*cz), v.View(dst, b0*n*cz, r*cz), v.View(keyMask, b0*n, r)
		qv, kv, vvv, gv := v.View(q, 0, r*hc), v.View(kk, 0, r*hc), v.View(vv, 0, r*hc), v.View(g, 0, r*hc)
		ov, sv := v.View(o, 0, r*hc), v.View(qScale, 0, r)
		var lv backend.Tensor[T]
		if t != nil {
			ov, lv = v.View(o, b0*n*hc, r*hc), v.View(lse, b0*h*n, nb*h*n)
		}
		if v.Err() != nil {
			return v.Err()
		}
		if err := m.projectQKVG(xs, r, qv, kv, vvv, gv, sv); err != nil {
			return err
		}
		prob := m.problem(nb, n, qv, kv, vvv, bias, km)
		if err := k.Attention(prob, ov, lay, lv); err != nil {
			return err
		}
		if err := k.Gate(gv, gv, ov); err != nil {
			return err
		}
		if err := k.Linear(ds, gv, r, hc, cz, m.oW, m.oB); err != nil {
			return err
		}
	}
	if cfg.Ending {
		if err := k.Transpose(out, dst, 1, n, n, cz); err != nil {
			return err
		}
	}
	if t != nil {
		t.x, t.mean, t.rstd, t.bias, t.keyMask, t.o, t.lse = x, mean, rstd, bias, keyMask, o, lse
		t.own = keep
	}
	return nil
}

// attQueryScales returns r copies of c^-1/2, the factor AF2 applies to the
// queries after their projection (a ScaleRows operand).
func attQueryScales[T num.Float](r, c int) []T {
	s := make([]T, r)
	scale := T(1 / math.Sqrt(float64(c)))
	for i := range s {
		s[i] = scale
	}
	return s
}

// projectQKVG computes the scaled queries, keys, values and gate logits
// [r, H·c] of the rows xs [r, c_z] as forward does.
func (m *Att[T]) projectQKVG(xs backend.Tensor[T], r int, q, k, v, g, qScale backend.Tensor[T]) error {
	cz, hc := m.p.Config.PairChannels, m.p.Config.Heads*m.p.Config.HeadChannels
	for _, p := range []struct {
		y, w, b backend.Tensor[T]
	}{{q, m.qW, nil}, {k, m.kW, nil}, {v, m.vW, nil}, {g, m.gW, m.gB}} {
		if err := m.k.Linear(p.y, xs, r, cz, hc, p.w, p.b); err != nil {
			return err
		}
	}
	// AF2 scales the queries after their projection.
	return m.k.ScaleRows(q, q, qScale, r, hc)
}

// problem returns the attention of nb rows (batch elements) of n keys on
// the chunk's projections, as forward builds it.
func (m *Att[T]) problem(nb, n int, q, k, v, bias, keyMask backend.Tensor[T]) *backend.Attention[T] {
	h, c := m.p.Config.Heads, m.p.Config.HeadChannels
	lay := attn.Layout{Batch: n * h * c, Row: h * c}
	return &backend.Attention[T]{
		Dims: attn.Dims{Batch: nb, Heads: h, Lq: n, Lk: n, C: c, Cv: c, KVHeads: h},
		Q:    q, QL: lay, K: k, KL: lay, V: v, VL: lay,
		Scale: 1, PairBias: bias, KeyMask: keyMask, MaskBias: attn.EvoformerMaskBias,
	}
}

// Backward computes the gradients of a scalar loss L through the triangle
// attention (supplement Algorithm 13 or 14) whose ForwardTape call filled
// tape, on the backend. dout is ∂L/∂out [N, N, c_z]. Backward accumulates
// (+=) ∂L/∂z into dz [N, N, c_z] on the backend (dz nil: not computed) and,
// when grad is not nil, ∂L/∂θ into the host parameters grad (AF2 layouts,
// as AttBackward fills them: start from p.ZerosLike()). The mask gets no
// gradient. The tape is left intact, so Backward may be called again (each
// call accumulates once more).
//
// On a tape filled by the CPU dispatch path Backward is AttBackward (dout
// and dz must then be CPU tensors). Otherwise it composes the backend's
// kernels, a chunk of rows at a time (the chunks of ForwardTape): it
// recomputes the chunk's queries, keys, values and gates, back-propagates
// the output projection (LinearBackward), the gate (GateBackward), the
// attention core from the saved output and log-sum-exp (AttentionBackward,
// which also sums the pair bias's gradient over the rows) and the four
// projections (LinearBackward); then the pair bias's projection
// (feat_2d_weights) and query_norm (LayerNormBackward, into dz). The
// ending node's gradients are taken on the transposed pair tensor and
// transposed back. Beside the tape it holds ∂L/∂x and, for the ending
// node, the transposed dout (N×N×c_z each), ∂L/∂bias [H, N, N] and nine
// projection-sized buffers of one chunk; nothing of size N³. The
// parameter gradients are summed on the backend and added to grad once,
// at the end.
//
// The error wraps ErrConfig for a closed module or a grad of another
// configuration, ErrNoForward for a nil or empty tape or one filled by
// another module, num.ErrShape for a dout or dz whose length does not
// match the tape's N, backend.ErrForeign for backend tensors given with a
// tape of the CPU path, num.ErrNaN for a non-finite dout on the CPU path,
// and the backend's errors.
func (m *Att[T]) Backward(tape *AttTape[T], dout, dz backend.Tensor[T], grad *AttParams[T]) error {
	if m.p == nil {
		return fmt.Errorf("triangle: Att.Backward on a closed module: %w", ErrConfig)
	}
	if tape == nil || !tape.valid {
		return fmt.Errorf("triangle: Att.Backward: %w", ErrNoForward)
	}
	if tape.m != m {
		return fmt.Errorf("triangle: Att.Backward: tape filled by another module: %w", ErrNoForward)
	}
	if err := checkGradTensors("Att.Backward", dout, dz, tape.n, m.p.Config.PairChannels); err != nil {
		return err
	}
	if grad != nil {
		if grad.Config != m.p.Config {
			return fmt.Errorf("triangle: Att.Backward: gradient config %+v, want %+v: %w", grad.Config, m.p.Config, ErrConfig)
		}
		if err := grad.check(); err != nil {
			return fmt.Errorf("triangle: Att.Backward: gradient: %w", err)
		}
	}
	if tape.host {
		d, dzh, err := hostGradSlices("Att.Backward", dout, dz)
		if err != nil {
			return err
		}
		return AttBackward(m.p, &tape.cache, d, dzh, grad)
	}
	if err := m.backward(tape, dout, optional(dz), grad); err != nil {
		return fmt.Errorf("triangle: Att.Backward: %w", err)
	}
	return nil
}

// backward is the composed path of Backward on checked arguments; dz is
// nil when not wanted.
func (m *Att[T]) backward(t *AttTape[T], dout, dz backend.Tensor[T], grad *AttParams[T]) error {
	n := t.n
	if n == 0 || (dz == nil && grad == nil) {
		return nil
	}
	k, cfg := m.k, m.p.Config
	cz, h, c := cfg.PairChannels, cfg.Heads, cfg.HeadChannels
	hc, n2 := h*c, n*n
	sc := backend.NewArena(k)
	defer sc.Free()
	v := backend.NewArena(k)

	// The parameter gradients, summed on the backend (nil when grad is nil).
	var gs *backend.Grads[T]
	if grad != nil {
		gs = backend.NewGrads(sc)
	}
	var dLS, dLO, dFeat, dQW, dKW, dVW, dGW, dGB, dOW, dOB backend.Tensor[T]
	if grad != nil {
		a := &grad.Attention
		dLS, dLO = gs.Acc(grad.QueryNorm.Scale), gs.Acc(grad.QueryNorm.Offset)
		dFeat = gs.Acc(grad.FeatTwoDWeights)
		dQW, dKW, dVW, dGW = gs.Acc(a.QueryW), gs.Acc(a.KeyW), gs.Acc(a.ValueW), gs.Acc(a.GatingW)
		dGB, dOW, dOB = gs.Acc(a.GatingB), gs.Acc(a.OutputW), gs.Acc(a.OutputB)
	}

	// ∂L/∂x and ∂L/∂bias in the attention's orientation; the ending node
	// differentiates the transposed result, so dout is transposed first.
	dx, dbias := sc.Alloc(n2*cz), sc.Alloc(h*n2)
	dres := dout
	if cfg.Ending {
		dres = sc.Alloc(n2 * cz)
	}
	rows := cfg.chunk(n, sizeOf[T]())
	maxR := rows * n
	var buf [9]backend.Tensor[T]
	for i := range buf {
		buf[i] = sc.Alloc(maxR * hc)
	}
	qScale := sc.FromHost(attQueryScales[T](maxR, c))
	if sc.Err() != nil {
		return sc.Err()
	}
	if cfg.Ending {
		if err := k.Transpose(dres, dout, 1, n, n, cz); err != nil {
			return err
		}
	}
	lay := attn.Layout{Batch: n * hc, Row: hc}
	for b0 := 0; b0 < n; b0 += rows {
		nb := min(rows, n-b0)
		r := nb * n
		var b [9]backend.Tensor[T]
		for i := range b {
			b[i] = v.View(buf[i], 0, r*hc)
		}
		q, kk, vv, g, y, dy, dg, dk, dv := b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8]
		xs, dxs, km := v.View(t.x, b0*n*cz, r*cz), v.View(dx, b0*n*cz, r*cz), v.View(t.keyMask, b0*n, r)
		ds, os, ls, sv := v.View(dres, b0*n*cz, r*cz), v.View(t.o, b0*n*hc, r*hc), v.View(t.lse, b0*h*n, nb*h*n), v.View(qScale, 0, r)
		if v.Err() != nil {
			return v.Err()
		}
		if err := m.projectQKVG(xs, r, q, kk, vv, g, sv); err != nil {
			return err
		}
		// out = y·output_w + output_b with y = o ⊙ σ(g).
		if err := k.Gate(y, g, os); err != nil {
			return err
		}
		if err := zero(k, dy, dg, dk, dv); err != nil {
			return err
		}
		if err := k.LinearBackward(dy, dOW, dOB, y, m.oW, ds, r, hc, cz); err != nil {
			return err
		}
		do, dq := y, dy // y is free once dOW has it, dy once dg and do have it
		if err := k.Zero(do); err != nil {
			return err
		}
		if err := k.GateBackward(dg, do, g, os, dy); err != nil {
			return err
		}
		if err := k.Zero(dq); err != nil {
			return err
		}
		prob := m.problem(nb, n, q, kk, vv, t.bias, km)
		if err := k.AttentionBackward(prob, os, lay, ls, do, dq, dk, dv, dbias); err != nil {
			return err
		}
		// q = (x·query_w)·c^-1/2.
		if err := k.ScaleRows(dq, dq, sv, r, hc); err != nil {
			return err
		}
		for _, p := range []struct {
			dy, w, dw, db backend.Tensor[T]
		}{{dq, m.qW, dQW, nil}, {dk, m.kW, dKW, nil}, {dv, m.vW, dVW, nil}, {dg, m.gW, dGW, dGB}} {
			if err := k.LinearBackward(dxs, p.dw, p.db, xs, p.w, p.dy, r, cz, hc); err != nil {
				return err
			}
		}
	}

	// bias [H, N²] is the transpose of x·feat_2d_weights [N², H].
	dbt := sc.Alloc(n2 * h)
	if sc.Err() != nil {
		return sc.Err()
	}
	if err := k.Transpose(dbt, dbias, 1, h, n2, 1); err != nil {
		return err
	}
	if err := k.LinearBackward(dx, dFeat, nil, t.x, m.feat2D, dbt, n2, cz, h); err != nil {
		return err
	}

	// query_norm, in z's orientation: for the ending node ∂L/∂x and the
	// statistics are transposed back (LN acts on rows, so LN(zᵀ) = LN(z)ᵀ).
	dxz, mean, rstd := dx, t.mean, t.rstd
	if cfg.Ending {
		dxz, mean, rstd = dres, sc.Alloc(n2), sc.Alloc(n2)
		if sc.Err() != nil {
			return sc.Err()
		}
		for _, p := range []struct {
			dst, src backend.Tensor[T]
			block    int
		}{{dxz, dx, cz}, {mean, t.mean, 1}, {rstd, t.rstd, 1}} {
			if err := k.Transpose(p.dst, p.src, 1, n, n, p.block); err != nil {
				return err
			}
		}
	}
	if err := k.LayerNormBackward(dz, dLS, dLO, t.z, m.lnScale, mean, rstd, dxz, n2, cz); err != nil {
		return err
	}
	return gs.Flush()
}

// checkGradTensors checks the tensors of a module's Backward (fn names it):
// dout [n, n, cz], and dz of the same length unless it is absent.
func checkGradTensors[T num.Float](fn string, dout, dz backend.Tensor[T], n, cz int) error {
	if err := backend.CheckArgs(
		backend.Arg[T]{Name: "dout", T: dout, Shape: []int{n, n, cz}},
		backend.Arg[T]{Name: "dz", T: dz, Shape: []int{n, n, cz}, Optional: true},
	); err != nil {
		return fmt.Errorf("triangle: %s: %w", fn, err)
	}
	return nil
}

// hostGradSlices returns the slices of dout and dz (nil when absent) for
// the CPU path of a Backward; the tensors must be CPU tensors.
func hostGradSlices[T num.Float](fn string, dout, dz backend.Tensor[T]) (d, dzh []T, err error) {
	var ok bool
	if d, ok = backend.AsHost(dout); !ok {
		return nil, nil, fmt.Errorf("triangle: %s: dout is not a CPU tensor but the tape is of the CPU path: %w", fn, backend.ErrForeign)
	}
	if backend.Absent(dz) {
		return d, nil, nil
	}
	if dzh, ok = backend.AsHost(dz); !ok {
		return nil, nil, fmt.Errorf("triangle: %s: dz is not a CPU tensor but the tape is of the CPU path: %w", fn, backend.ErrForeign)
	}
	return d, dzh, nil
}

// optional returns t, or nil when it is absent.
func optional[T num.Float](t backend.Tensor[T]) backend.Tensor[T] {
	if backend.Absent(t) {
		return nil
	}
	return t
}

// zero sets every tensor of ts to zero.
func zero[T num.Float](k backend.Kernels[T], ts ...backend.Tensor[T]) error {
	for _, t := range ts {
		if err := k.Zero(t); err != nil {
			return err
		}
	}
	return nil
}
