package ipa

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// RotationTol is the largest deviation from a rotation that Forward accepts
// in a frame (rigid.Rigid.CheckRotation): every entry of RotᵀRot − I and
// det Rot − 1 must be at most RotationTol in magnitude. Rotations rounded to float32
// or built from normalised quaternions are orthonormal to about 1e-7.
const RotationTol = 1e-4

// Cache holds what Backward needs from one Forward call. A zero Cache is
// ready to use; its buffers are reused by later calls with the same or
// smaller sizes. It refers to (does not copy) the s and z passed to Forward,
// which must not change until Backward has run.
type Cache[T num.Float] struct {
	n      int
	s, z   []T
	frames []rigid.Rigid[T]
	center [3]T // mean translation of the present residues

	qs, kvs    []T // q_scalar [N, H·C] and kv_scalar [N, H·2C] outputs
	qpl, kvpl  []T // q_point_local [N, 3·H·P_q] and kv_point_local [N, 3·H·(P_q+P_v)] outputs
	qt, kt     []T // [N, H, D] with D = C + 3·P_q: (√(1/3C)·q, ω_h·q_g) and (k, k_g)
	qg         []T // [N, H, P_q, 3] global query points relative to center
	qn, kn     []T // [N, H] squared norms Σ_p |q_g|² and Σ_p |k_g|²
	v          []T // [N, H, Cv] with Cv = C + 3·P_v: (v, v_g)
	a          []T // [N, H, N] attention weights
	o          []T // [N, H, Cv] Σ_j a_ij (v_j, v_gj)
	feat       []T // [N, F] input of output_projection
	omega      []T // [H] ω_h = √(1/(3·P_q·9/2))·softplus(raw_h)
	hasForward bool
}

// grow returns x resized to n elements, reusing its storage when it can.
func grow[T num.Float](x []T, n int) []T {
	if cap(x) >= n {
		return x[:n]
	}
	return make([]T, n)
}

// alloc sizes c's buffers for n residues and cfg.
func (c *Cache[T]) alloc(n int, cfg Config) {
	h, ch, pq, pv := cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints
	d, cv := ch+3*pq, ch+3*pv
	c.n = n
	c.qs = grow(c.qs, n*h*ch)
	c.kvs = grow(c.kvs, n*2*h*ch)
	c.qpl = grow(c.qpl, n*3*h*pq)
	c.kvpl = grow(c.kvpl, n*3*h*(pq+pv))
	c.qt = grow(c.qt, n*h*d)
	c.kt = grow(c.kt, n*h*d)
	c.qg = grow(c.qg, n*h*pq*3)
	c.qn = grow(c.qn, n*h)
	c.kn = grow(c.kn, n*h)
	c.v = grow(c.v, n*h*cv)
	c.a = grow(c.a, n*h*n)
	c.o = grow(c.o, n*h*cv)
	c.feat = grow(c.feat, n*cfg.outputWidth())
	c.omega = grow(c.omega, h)
	if cap(c.frames) >= n {
		c.frames = c.frames[:n]
	} else {
		c.frames = make([]rigid.Rigid[T], n)
	}
}

// checkInputs validates the shapes and values of Forward's arguments.
func checkInputs[T num.Float](cfg Config, s, z []T, frames []rigid.Rigid[T], mask, out []T) error {
	n := len(frames)
	if n == 0 {
		return fmt.Errorf("ipa: no frames (N = 0): %w", num.ErrShape)
	}
	if err := num.CheckLen("single s", s, n*cfg.CS, fmt.Sprintf("[N c_s] = [%d %d]", n, cfg.CS)); err != nil {
		return fmt.Errorf("ipa: %w", err)
	}
	if err := num.CheckLen("pair z", z, n*n*cfg.CZ, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cfg.CZ)); err != nil {
		return fmt.Errorf("ipa: %w", err)
	}
	if err := num.CheckLen("mask", mask, n, fmt.Sprintf("[N] = [%d]", n)); err != nil {
		return fmt.Errorf("ipa: %w", err)
	}
	if err := num.CheckLen("output", out, n*cfg.CS, fmt.Sprintf("[N c_s] = [%d %d]", n, cfg.CS)); err != nil {
		return fmt.Errorf("ipa: %w", err)
	}
	for _, x := range []struct {
		what string
		v    []T
	}{{"single s", s}, {"pair z", z}, {"mask", mask}} {
		if err := num.CheckFinite(x.what, x.v); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
	}
	for i := range frames {
		f := &frames[i]
		if err := num.CheckFinite(fmt.Sprintf("frames[%d].Rot", i), f.Rot[:]); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
		if err := num.CheckFinite(fmt.Sprintf("frames[%d].Trans", i), f.Trans[:]); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
		if err := f.CheckRotation(RotationTol); err != nil {
			return fmt.Errorf("ipa: frames[%d]: %w", i, err)
		}
	}
	return nil
}

// Forward computes invariant point attention (supplement Algorithm 22) and
// writes the update of the single representation to out [N, c_s] (AF2 adds
// the residual outside the module).
//
// s is [N, c_s], z is [N, N, c_z], frames holds the N residue frames (local
// to global) and mask is [N] (1 present, 0 padding; a masked residue's
// logits get −Config.Inf, so it gives nothing to the others and its own
// output row is finite but meaningless). The logits follow AF2 exactly: the
// weight √(1/3) on each of the three terms, 1/√C on the scalar term, the
// head weights softplus(raw)·√(2/(9·P_q)) on the point term, and the mask
// term −Inf·(1 − m_i·m_j); the output point norms use √(Eps + |o|²). Two
// rearrangements leave the mathematics unchanged and only reduce round-off:
// the mask term is added less its row maximum (a per-row constant, which
// the softmax ignores), so that the logits of a row whose own mask is 0 are
// not rounded to the float32 resolution of Inf; and global points are taken
// relative to the mean translation of the present residues.
//
// If cache is not nil it is filled for Backward; otherwise Forward uses a
// temporary one. A Cache must not be used by two calls at once. Forward returns an error
// wrapping num.ErrShape for a length that does not match N = len(frames)
// and p.Config, num.ErrNaN for a NaN or infinity in s, z, frames or mask,
// rigid.ErrNotRotation for a rotation that is not orthonormal with
// determinant 1 to within RotationTol, and ErrConfig for an
// invalid p.Config. out must not overlap the inputs.
func Forward[T num.Float](p *Params[T], s, z []T, frames []rigid.Rigid[T], mask, out []T, cache *Cache[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	cfg := p.Config
	if err := checkInputs(cfg, s, z, frames, mask, out); err != nil {
		return err
	}
	c := cache
	if c == nil {
		c = new(Cache[T])
	}
	forward(p, s, z, frames, mask, out, c)
	return nil
}

// forward is Forward on validated inputs.
func forward[T num.Float](p *Params[T], s, z []T, frames []rigid.Rigid[T], mask, out []T, c *Cache[T]) {
	cfg := p.Config
	n := len(frames)
	h, ch, pq, pv, cz := cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints, cfg.CZ
	d, cv, fw := ch+3*pq, ch+3*pv, cfg.outputWidth()
	c.alloc(n, cfg)
	c.s, c.z = s, z
	copy(c.frames, frames)
	c.center = center(frames, mask)

	// Projections of s (Alg. 22 lines 1–3).
	p.QScalar.Forward(c.qs, s, n)
	p.KVScalar.Forward(c.kvs, s, n)
	p.QPointLocal.Forward(c.qpl, s, n)
	p.KVPointLocal.Forward(c.kvpl, s, n)

	pw := cfg.pointWeight()
	for hh := range h {
		c.omega[hh] = T(pw * float64(num.Softplus(p.TrainablePointWeights[hh])))
	}
	sw := T(cfg.scalarWeight())

	// Query and key features: scalar channels and global points (relative
	// to the center) side by side, so that one product per head gives
	// √(1/3C)·q·k + ω_h·Σ_p q_g·k_g.
	kvp := pq + pv
	for i := range n {
		f := &c.frames[i]
		t := sub3(f.Trans, c.center)
		for hh := range h {
			qt := c.qt[(i*h+hh)*d : (i*h+hh+1)*d]
			kt := c.kt[(i*h+hh)*d : (i*h+hh+1)*d]
			vt := c.v[(i*h+hh)*cv : (i*h+hh+1)*cv]
			qs := c.qs[(i*h+hh)*ch:]
			kvs := c.kvs[(i*h+hh)*2*ch:]
			for k := range ch {
				qt[k] = sw * qs[k]
				kt[k] = kvs[k]
				vt[k] = kvs[ch+k]
			}
			om := c.omega[hh]
			var qn, kn T
			for pp := range pq {
				base := i*3*h*pq + hh*pq + pp
				g := apply(&f.Rot, t, c.qpl[base], c.qpl[base+h*pq], c.qpl[base+2*h*pq])
				copy(c.qg[((i*h+hh)*pq+pp)*3:], g[:])
				qn += g[0]*g[0] + g[1]*g[1] + g[2]*g[2]
				for k := range 3 {
					qt[ch+3*pp+k] = om * g[k]
				}
			}
			for pp := range kvp {
				base := i*3*h*kvp + hh*kvp + pp
				g := apply(&f.Rot, t, c.kvpl[base], c.kvpl[base+h*kvp], c.kvpl[base+2*h*kvp])
				if pp < pq {
					kn += g[0]*g[0] + g[1]*g[1] + g[2]*g[2]
					copy(kt[ch+3*pp:], g[:])
				} else {
					copy(vt[ch+3*(pp-pq):], g[:])
				}
			}
			c.qn[i*h+hh] = qn
			c.kn[i*h+hh] = kn
		}
	}

	// Logits (Alg. 22 line 7), [N, H, N].
	a := c.a
	for hh := range h {
		gemm.Gemm(false, true, n, n, d, 1, c.qt[hh*d:], h*d, c.kt[hh*d:], h*d, 0, a[hh*n:], h*n)
	}
	// Row by row (in parallel): the pair bias w_L·(z_ij·W + B), the point
	// norms, the mask, the softmax, and the pair output Σ_j a_ij z_ij, so
	// that each z_i is read from memory once. The mask term
	// −Inf·(1 − m_i·m_j) is added less its row maximum −Inf·(1 − m_i·max_j m_j),
	// a per-row constant that the softmax ignores: a row whose own mask is 0
	// then keeps its logits at full precision instead of at the float32
	// resolution of 1e5 (about 0.008).
	wl := T(pairWeight())
	w2t := transpose(p.Attention2D.W, cz, h) // [H, c_z]
	inf := T(cfg.Inf)
	var mmax T
	for j, m := range mask {
		if j == 0 || m > mmax {
			mmax = m
		}
	}
	off := h*ch + 4*h*pv
	forRows(n, workers(n, 2*h*n*cz), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			ai := a[i*h*n : (i+1)*h*n]
			zi := z[i*n*cz : (i+1)*n*cz]
			gemm.Gemm(false, true, h, n, cz, wl, w2t, cz, zi, cz, 1, ai, n)
			mi := inf * mask[i]
			for hh := range h {
				row := ai[hh*n : (hh+1)*n]
				half := c.omega[hh] / 2
				bias := wl*p.Attention2D.B[hh] - half*c.qn[i*h+hh]
				for j := range row {
					row[j] += bias - half*c.kn[j*h+hh] - mi*(mmax-mask[j])
				}
			}
			nn.SoftmaxRows(ai, h, n)
			gemm.Gemm(false, false, h, cz, n, 1, ai, n, zi, cz, 0, c.feat[i*fw+off:], cz)
		}
	})

	// Attention-weighted values (lines 10–11), [N, H, Cv].
	for hh := range h {
		gemm.Gemm(false, false, n, cv, n, 1, a[hh*n:], h*n, c.v[hh*cv:], h*cv, 0, c.o[hh*cv:], h*cv)
	}
	// Output features (line 12 input): scalar, points back in the local
	// frame, their norms, pair.
	eps := T(cfg.Eps)
	hc, hpv := h*ch, h*pv
	for i := range n {
		f := &c.frames[i]
		t := sub3(f.Trans, c.center)
		fr := c.feat[i*fw : (i+1)*fw]
		for hh := range h {
			o := c.o[(i*h+hh)*cv : (i*h+hh+1)*cv]
			copy(fr[hh*ch:(hh+1)*ch], o[:ch])
			for pp := range pv {
				l := invertApply(&f.Rot, t, o[ch+3*pp], o[ch+3*pp+1], o[ch+3*pp+2])
				k := hh*pv + pp
				fr[hc+k] = l[0]
				fr[hc+hpv+k] = l[1]
				fr[hc+2*hpv+k] = l[2]
				fr[hc+3*hpv+k] = num.Sqrt(eps + l[0]*l[0] + l[1]*l[1] + l[2]*l[2])
			}
		}
	}
	p.OutputProjection.Forward(out, c.feat, n)
	c.hasForward = true
}

// center returns the mean translation of the residues with a non-zero mask
// (of all residues if none is present). Global points are taken relative to
// it: the logits and outputs do not depend on it in exact arithmetic, and
// subtracting it keeps the expanded distances |q|² + |k|² − 2q·k accurate
// under any common translation.
func center[T num.Float](frames []rigid.Rigid[T], mask []T) [3]T {
	var sum [3]float64
	cnt := 0
	for i := range frames {
		if mask[i] != 0 {
			for k := range 3 {
				sum[k] += float64(frames[i].Trans[k])
			}
			cnt++
		}
	}
	if cnt == 0 {
		for i := range frames {
			for k := range 3 {
				sum[k] += float64(frames[i].Trans[k])
			}
		}
		cnt = len(frames)
	}
	var c [3]T
	for k := range 3 {
		c[k] = T(sum[k] / float64(cnt))
	}
	return c
}

// transpose returns the transpose [cols, rows] of the row-major x [rows, cols].
func transpose[T num.Float](x []T, rows, cols int) []T {
	y := make([]T, len(x))
	for r := range rows {
		for c := range cols {
			y[c*rows+r] = x[r*cols+c]
		}
	}
	return y
}

func sub3[T num.Float](a, b [3]T) [3]T { return [3]T{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }

// apply returns R·(x, y, z) + t.
func apply[T num.Float](r *[9]T, t [3]T, x, y, z T) [3]T {
	return [3]T{
		r[0]*x + r[1]*y + r[2]*z + t[0],
		r[3]*x + r[4]*y + r[5]*z + t[1],
		r[6]*x + r[7]*y + r[8]*z + t[2],
	}
}

// invertApply returns Rᵀ·((x, y, z) − t).
func invertApply[T num.Float](r *[9]T, t [3]T, x, y, z T) [3]T {
	x, y, z = x-t[0], y-t[1], z-t[2]
	return [3]T{
		r[0]*x + r[3]*y + r[6]*z,
		r[1]*x + r[4]*y + r[7]*z,
		r[2]*x + r[5]*y + r[8]*z,
	}
}
