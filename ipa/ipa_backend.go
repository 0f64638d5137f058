package ipa

import (
	"fmt"
	"math"
	"slices"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// IPA is invariant point attention (supplement Algorithm 22) on a backend
// chosen by the caller, with its parameters uploaded once: the package's
// Forward on backend tensors, so that the structure module can keep the
// single and pair representations and the frames on the backend. Forward
// is inference; ForwardTape and Backward train on the backend (see
// IPATape).
//
// On the CPU backend, Forward on host tensors runs the package's Forward
// itself, on a copy of the parameters taken by NewIPA, and gives its result
// bit for bit. On any other backend (or when forced, in tests) it composes
// the backend's kernels; the results agree with Forward to round-off.
type IPA[T num.Float] struct {
	k   backend.Kernels[T]
	cfg Config
	// host is a copy of the parameters for the dispatch to Forward when
	// the backend's tensors are host slices (the CPU backend); nil
	// otherwise.
	host *Params[T]
	// params holds every uploaded tensor, for Close.
	params *backend.Arena[T]
	// raw is a copy of trainable_point_weights, for the chain rule of
	// Backward through the softplus of the head weights.
	raw []T

	qW, qB   backend.Tensor[T] // q_scalar [c_s, H·C], [H·C]
	kW, kB   backend.Tensor[T] // key half of kv_scalar [c_s, H·C], [H·C]
	vW, vB   backend.Tensor[T] // value half of kv_scalar [c_s, H·C], [H·C]
	qpW, qpB backend.Tensor[T] // q_point_local, columns as [H, P_q, 3]
	kpW, kpB backend.Tensor[T] // key points of kv_point_local, columns as [H, P_q, 3]
	vpW, vpB backend.Tensor[T] // value points of kv_point_local, columns as [H, P_v, 3]
	pairW    backend.Tensor[T] // attention_2d weights [c_z, H]
	omega    backend.Tensor[T] // [H] ω_h = √(2/(9·P_q))·√(1/3)·softplus(raw_h)
	outW     backend.Tensor[T] // output_projection [F, c_s]
	outB     backend.Tensor[T] // [c_s]
	normW    backend.Tensor[T] // [3, 6]: (x, y, z) ↦ √3·(x, y, z, −x, −y, −z)
	lnScale  backend.Tensor[T] // [6] ones
	lnOffset backend.Tensor[T] // [6] zeros
	one      backend.Tensor[T] // [1] = 1
	minusOne backend.Tensor[T] // [1] = −1

	// composed forces the composed path on host tensors (tests).
	composed bool
	// scratch bounds the elements of one chunk of query rows' scratch; 0
	// means maxScratch (tests set it small to run many chunks).
	scratch int
}

// NewIPA checks p and uploads it to k, returning invariant point attention
// (Algorithm 22) of p.Config on that backend. The parameters are copied:
// later changes to p do not affect the module. The caller must Close it.
//
// The kernels need the parameters in other layouts than AF2's, which NewIPA
// makes once on the host: kv_scalar is split into its key and value halves,
// the point projections' columns are reordered from AF2's (x, y, z) thirds
// to one (x, y, z) triple per point, with kv_point_local split into key and
// value points, and the head weights softplus(trainable_point_weights) are
// computed (in float64, as Forward does).
//
// The error wraps ErrConfig for a nil k or p or an invalid p.Config,
// num.ErrShape for an array whose length does not match p.Config, and the
// backend's error if an upload fails.
func NewIPA[T num.Float](k backend.Kernels[T], p *Params[T]) (*IPA[T], error) {
	if k == nil || p == nil {
		return nil, fmt.Errorf("ipa: NewIPA: nil backend or parameters: %w", ErrConfig)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	cfg := p.Config
	h, cs := cfg.Heads, cfg.CS
	cols := kernelColumns(cfg)

	pw := cfg.pointWeight()
	omega := make([]T, h)
	for hh := range h {
		omega[hh] = T(pw * float64(num.Softplus(p.TrainablePointWeights[hh])))
	}
	r3 := T(math.Sqrt(3))
	normW := []T{
		r3, 0, 0, -r3, 0, 0,
		0, r3, 0, 0, -r3, 0,
		0, 0, r3, 0, 0, -r3,
	}

	m := &IPA[T]{k: k, cfg: cfg, raw: slices.Clone(p.TrainablePointWeights)}
	up := backend.NewArena(k)
	m.qW, m.qB = up.FromHost(p.QScalar.W), up.FromHost(p.QScalar.B)
	m.kW, m.kB = up.FromHost(columns(p.KVScalar.W, cs, cols.key)), up.FromHost(columns(p.KVScalar.B, 1, cols.key))
	m.vW, m.vB = up.FromHost(columns(p.KVScalar.W, cs, cols.val)), up.FromHost(columns(p.KVScalar.B, 1, cols.val))
	m.qpW, m.qpB = up.FromHost(columns(p.QPointLocal.W, cs, cols.qp)), up.FromHost(columns(p.QPointLocal.B, 1, cols.qp))
	m.kpW, m.kpB = up.FromHost(columns(p.KVPointLocal.W, cs, cols.kp)), up.FromHost(columns(p.KVPointLocal.B, 1, cols.kp))
	m.vpW, m.vpB = up.FromHost(columns(p.KVPointLocal.W, cs, cols.vp)), up.FromHost(columns(p.KVPointLocal.B, 1, cols.vp))
	m.pairW = up.FromHost(p.Attention2D.W)
	m.omega = up.FromHost(omega)
	m.outW, m.outB = up.FromHost(p.OutputProjection.W), up.FromHost(p.OutputProjection.B)
	m.normW = up.FromHost(normW)
	m.lnScale, m.lnOffset = up.FromHost([]T{1, 1, 1, 1, 1, 1}), up.FromHost(make([]T, 6))
	m.one, m.minusOne = up.FromHost([]T{1}), up.FromHost([]T{-1})
	if up.Err() != nil {
		up.Free()
		return nil, fmt.Errorf("ipa: NewIPA: %w", up.Err())
	}
	m.params = up
	if _, ok := backend.AsHost(m.qW); ok {
		m.host = cloneParams(p)
	}
	return m, nil
}

// kernelCols lists, for each projection the kernels use, the columns of
// AF2's matrix that its columns are (see columns): the key and value
// halves of kv_scalar, and the reordered query, key and value point
// projections.
type kernelCols struct {
	key, val   []int // of kv_scalar [c_s, H·2C], each [H·C]
	qp, kp, vp []int // of q_point_local and kv_point_local, as [H, P, 3]
}

// kernelColumns returns the column maps of cfg's projections: NewIPA
// uploads the columns they name, and the composed Backward adds the
// gradients of the kernels' matrices back into AF2's columns.
func kernelColumns(cfg Config) kernelCols {
	h, c, pq, pv := cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints
	// kv_scalar: head h's channels h·2C + [0, C) are its key, + [C, 2C) its value.
	cols := kernelCols{key: make([]int, h*c), val: make([]int, h*c)}
	for hh := range h {
		for cc := range c {
			cols.key[hh*c+cc] = hh*2*c + cc
			cols.val[hh*c+cc] = hh*2*c + c + cc
		}
	}
	// Point projections: AF2's column coord·H·P + h·P + p becomes
	// (h·P' + p')·3 + coord, P' and p' counting key or value points.
	cols.qp = pointCols(h, pq, 0, pq)
	cols.kp = pointCols(h, pq+pv, 0, pq)
	cols.vp = pointCols(h, pq+pv, pq, pv)
	return cols
}

// pointCols returns the source columns of a point projection reordered
// for the kernels: AF2's projection has np points per head in thirds
// (column coord·H·np + h·np + p); the result lists, for the n points
// first, first+1, ... of each head, the columns of (h, p, coord) in that
// order, so that the reordered projection is [H, n, 3] per residue.
func pointCols(h, np, first, n int) []int {
	cols := make([]int, 0, h*n*3)
	for hh := range h {
		for p := first; p < first+n; p++ {
			for coord := range 3 {
				cols = append(cols, coord*h*np+hh*np+p)
			}
		}
	}
	return cols
}

// columns returns the matrix [rows, len(cols)] whose column j is column
// cols[j] of the row-major w (rows rows).
func columns[T num.Float](w []T, rows int, cols []int) []T {
	in := len(w) / rows
	y := make([]T, rows*len(cols))
	for r := range rows {
		for j, c := range cols {
			y[r*len(cols)+j] = w[r*in+c]
		}
	}
	return y
}

// cloneParams returns a deep copy of p.
func cloneParams[T num.Float](p *Params[T]) *Params[T] {
	q := p.ZerosLike()
	src := p.linears(p.Config)
	for i, l := range q.linears(p.Config) {
		copy(l.p.W, src[i].p.W)
		copy(l.p.B, src[i].p.B)
	}
	copy(q.TrainablePointWeights, p.TrainablePointWeights)
	return q
}

// Close frees the uploaded parameters; m must not be used afterwards
// (Forward then returns an error). Close of a closed IPA does nothing.
func (m *IPA[T]) Close() {
	if m == nil || m.k == nil {
		return
	}
	m.params.Free()
	*m = IPA[T]{}
}

// Forward computes invariant point attention (Algorithm 22) on s [N, c_s],
// z [N, N, c_z], the residue frames [N, 12] (each frame's rotation
// row-major, then its translation: the memory layout of rigid.Rigid[T],
// see backend.FrameData) and the mask [N] (1 present, 0 padding), and
// writes the update of the single representation to out [N, c_s] (no
// residual), as the package's Forward does; n is N ≥ 1. Every tensor must
// belong to m's backend, and out must not overlap the inputs. Work may
// still be queued when Forward returns: an error from it is reported by a
// later call (see backend.Kernels).
//
// When every tensor is a CPU tensor, Forward runs the package's Forward on
// the slices (no copies), which also checks the values: non-finite inputs
// and frames whose rotation is not one (to RotationTol). Otherwise it
// composes the backend's kernels, which check only lengths (non-finite
// inputs propagate; the rotations are taken as given):
//
//	frames' = frames less the mean translation c of the present residues
//	          (Gemm, DivRows; a constant that cancels, as in Forward)
//	q, k, v = s·q_scalar, s·kv_scalar                              (Linear)
//	q_g, k_g, v_g = T'_i ∘ (s·point projections)          (Linear, RigidMap)
//	l_ij^h  = w_L·z_ij·W_2d + √(1/3C)·q_i·k_j + ω_h·q_g,i·k_g,j − ω_h/2·|k_g,j|²
//	          − Inf·m_i·(1 − m_j)         (Linear, Transpose, batched Gemm)
//	a       = softmax_j(l)                           (Softmax, [H·N, N])
//	o       = Σ_j a_ij (v_j, v_g,j, z_ij)                  (batched Gemm)
//	points  = T'_i⁻¹ ∘ o_g, norms √(ε + |points|²)
//	          (RigidMap, and LayerNorm's 1/√(var + ε) of the row
//	          √3·(x, y, z, −x, −y, −z), whose variance is |points|²)
//	out     = concat(o, points, norms, o_z)·output_projection  (Transpose, Linear)
//
// The logits leave out the terms that are the same for every key j of a
// query row (AF2's w_L·attention_2d bias and −ω_h/2·|q_g,i|²), which the
// softmax cancels exactly; the −Inf mask term is zero, not a difference
// of two 1e5, between present residues, so their logits keep full
// precision. The query rows are processed a chunk at a time, so that the
// pair bias and the logits of a chunk ([H, rows, N] each) stay within about
// 2²⁵ elements; the other scratch tensors are O(N) ([N, F] at most, F the
// output projection's input width). Scratch is freed before Forward
// returns.
//
// The error wraps num.ErrShape for N < 1 or a tensor whose length does not
// match N and the configuration, ErrConfig on a closed module, the errors
// of the package's Forward on the CPU dispatch path, and the backend's
// errors.
func (m *IPA[T]) Forward(s, z, frames, mask backend.Tensor[T], n int, out backend.Tensor[T]) error {
	if m == nil || m.k == nil {
		return fmt.Errorf("ipa: IPA.Forward on a closed or nil module: %w", ErrConfig)
	}
	if err := m.checkForward("IPA.Forward", s, z, frames, mask, n, out); err != nil {
		return err
	}
	if m.host != nil && !m.composed {
		if h, ok := backend.HostSlices(s, z, frames, mask, out); ok {
			return Forward(m.host, h[0], h[1], backend.AsFrames(h[2]), h[3], h[4], nil)
		}
	}
	if err := m.forwardTape(s, z, frames, mask, n, out, nil); err != nil {
		return fmt.Errorf("ipa: IPA.Forward: %w", err)
	}
	return nil
}

// checkForward checks the lengths of the tensors of Forward or ForwardTape
// (fn names it) against n and m's configuration.
func (m *IPA[T]) checkForward(fn string, s, z, frames, mask backend.Tensor[T], n int, out backend.Tensor[T]) error {
	if n < 1 {
		return fmt.Errorf("ipa: %s: N = %d, want ≥ 1: %w", fn, n, num.ErrShape)
	}
	cs, cz := m.cfg.CS, m.cfg.CZ
	if err := backend.CheckArgs(
		backend.Arg[T]{Name: "single s", T: s, Shape: []int{n, cs}},
		backend.Arg[T]{Name: "pair z", T: z, Shape: []int{n, n, cz}},
		backend.Arg[T]{Name: "frames", T: frames, Shape: []int{n, 12}},
		backend.Arg[T]{Name: "mask", T: mask, Shape: []int{n}},
		backend.Arg[T]{Name: "output", T: out, Shape: []int{n, cs}},
	); err != nil {
		return fmt.Errorf("ipa: %s: %w", fn, err)
	}
	return nil
}

// maxScratch bounds the elements of the scratch tensors of one chunk of
// query rows (the pair bias and the logits): 2²⁵ elements are 128 MiB in
// float32 and 256 MiB in float64.
const maxScratch = 1 << 25

// tinyCount is added to the number of present residues before the mean
// translation is taken: it leaves any count ≥ 1 unchanged in float32 and
// float64 and makes the mean 0 (not 0/0) when every residue is masked.
const tinyCount = 1e-30

// chunkRows returns the number of query rows of one chunk of the attention
// for N = n: the pair bias and the logits of a chunk ([H, rows, N] each),
// or in Backward the logits' and weights' gradients, stay within the
// scratch limit.
func (m *IPA[T]) chunkRows(n int) int {
	limit := m.scratch
	if limit <= 0 {
		limit = maxScratch
	}
	return max(1, min(n, limit/(2*m.cfg.Heads*n)))
}

// firstErr returns the first error of the arenas, or nil.
func firstErr[T num.Float](as ...*backend.Arena[T]) error {
	for _, a := range as {
		if err := a.Err(); err != nil {
			return err
		}
	}
	return nil
}

// forwardTape is the composed path of Forward (t nil) and ForwardTape on
// checked arguments. With a tape it keeps in t the centred frames, the
// attention weights of every chunk, the attention's output points before
// and after the inverse frame map, their norms and the output projection's
// input; without one these are scratch (the weights of one chunk at a
// time, the output points mapped in place).
func (m *IPA[T]) forwardTape(s, z, frames, mask backend.Tensor[T], n int, out backend.Tensor[T], t *IPATape[T]) error {
	k, cfg := m.k, m.cfg
	cz, h, c, pq, pv := cfg.CZ, cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints
	hc, hq3, hv3, hpv, fw := h*c, h*pq*3, h*pv*3, h*pv, cfg.outputWidth()
	sw, wl := T(cfg.scalarWeight()), T(pairWeight())

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
	v := backend.NewArena(k)

	// Constants: ones [max(N·H·P_v, 3·P_q)] and ω_h for every residue [N, H].
	ones := sc.Alloc(max(n*hpv, n, 3*pq))
	omegaRep := sc.Alloc(n * h)
	if sc.Err() != nil {
		return sc.Err()
	}
	if err := backend.Fill(k, ones, m.one); err != nil {
		return err
	}
	if err := backend.Fill(k, omegaRep, m.omega); err != nil {
		return err
	}

	// The frames relative to the mean translation c of the present
	// residues: c = Σ m_i t_i / Σ m_i, t'_i = t_i − c.
	fc, sum, cnt, cen := keep.Alloc(12*n), sc.Alloc(3), sc.Alloc(1), sc.Alloc(3)
	if err := firstErr(sc, keep); err != nil {
		return err
	}
	trans, fcTrans := v.View(frames, 9, 12*n-9), v.View(fc, 9, 12*n-9)
	if v.Err() != nil {
		return v.Err()
	}
	if err := k.Copy(fc, frames); err != nil {
		return err
	}
	if err := k.Gemm(false, false, 1, 3, n, 1, mask, n, trans, 12, 0, sum, 3); err != nil {
		return err
	}
	if err := k.Gemm(false, false, 1, 1, n, 1, mask, n, ones, 1, 0, cnt, 1); err != nil {
		return err
	}
	if err := k.DivRows(cen, sum, cnt, T(tinyCount), 1, 3); err != nil {
		return err
	}
	if err := k.Gemm(false, false, n, 3, 1, -1, ones, 1, cen, 3, 1, fcTrans, 12); err != nil {
		return err
	}

	// Projections (Alg. 22 lines 1–3) and the global points.
	q, kk, vv := sc.Alloc(n*hc), sc.Alloc(n*hc), sc.Alloc(n*hc)
	qg, kg, vg := sc.Alloc(n*hq3), sc.Alloc(n*hq3), sc.Alloc(n*hv3)
	sq, kn, omm := sc.Alloc(n*hq3), sc.Alloc(n*h), sc.Alloc(n)
	if sc.Err() != nil {
		return sc.Err()
	}
	if err := m.project(s, fc, n, q, kk, vv, qg, kg, vg, nil); err != nil {
		return err
	}
	// ω_h·q_g, and ω_h·|k_g|² (the sum of squares as a product with ones).
	if err := k.ScaleRows(qg, qg, omegaRep, n*h, 3*pq); err != nil {
		return err
	}
	if err := k.Mul(sq, kg, kg); err != nil {
		return err
	}
	if err := k.Gemm(false, false, n*h, 1, 3*pq, 1, sq, 3*pq, ones, 1, 0, kn, 1); err != nil {
		return err
	}
	if err := k.ScaleRows(kn, kn, omegaRep, n*h, 1); err != nil {
		return err
	}
	// 1 − m_j, for the mask term −Inf·m_i·(1 − m_j).
	if err := k.Linear(omm, mask, n, 1, 1, m.minusOne, m.one); err != nil {
		return err
	}

	// Attention, a chunk of query rows at a time: outputs o [N, H, C],
	// o_g [N, H, P_v, 3] and the pair output [N, H, c_z]; the tape keeps
	// the weights of every chunk, [H, rows, N] each, one after the other.
	rows := m.chunkRows(n)
	o, og, pair := sc.Alloc(n*hc), keep.Alloc(n*hv3), sc.Alloc(n*h*cz)
	var a backend.Tensor[T]
	if t != nil {
		a = keep.Alloc(h * n * n)
	}
	if err := firstErr(sc, keep); err != nil {
		return err
	}
	if err := m.attend(n, rows, z, mask, q, kk, vv, qg, kg, vg, kn, omm, ones, a, o, og, pair, sw, wl); err != nil {
		return err
	}

	// The output points in the local frames [N, H·P_v, 3] (in place
	// without a tape) and their norms.
	ogl := og
	if t != nil {
		ogl = keep.Alloc(n * hv3)
	}
	pm, rstd, norm := sc.Alloc(n*hpv*6), sc.Alloc(n*hpv), keep.Alloc(n*hpv)
	if err := firstErr(sc, keep); err != nil {
		return err
	}
	if err := k.RigidMap(backend.InvertApply, ogl, fc, og, n, hpv); err != nil {
		return err
	}
	if err := k.Linear(pm, ogl, n*hpv, 3, 6, m.normW, nil); err != nil {
		return err
	}
	if err := k.LayerNorm(pm, pm, n*hpv, 6, m.lnScale, m.lnOffset, T(cfg.Eps), nil, rstd); err != nil {
		return err
	}
	onesP := v.View(ones, 0, n*hpv)
	if v.Err() != nil {
		return v.Err()
	}
	if err := k.DivRows(norm, onesP, rstd, 0, n*hpv, 1); err != nil {
		return err
	}

	// The features [N, F] in Forward's channel order, assembled
	// feature-major (each part a block of rows of [F, N]) and transposed.
	featT, pts, feat := sc.Alloc(fw*n), sc.Alloc(n*hv3), keep.Alloc(n*fw)
	if err := firstErr(sc, keep); err != nil {
		return err
	}
	if err := k.Transpose(pts, ogl, n, hpv, 3, 1); err != nil { // [N, 3, H·P_v]
		return err
	}
	off := 0
	for _, part := range []struct {
		x backend.Tensor[T]
		w int
	}{{o, hc}, {pts, 3 * hpv}, {norm, hpv}, {pair, h * cz}} {
		dst := v.View(featT, off*n, part.w*n)
		if v.Err() != nil {
			return v.Err()
		}
		if err := k.Transpose(dst, part.x, 1, n, part.w, 1); err != nil {
			return err
		}
		off += part.w
	}
	if err := k.Transpose(feat, featT, 1, fw, n, 1); err != nil {
		return err
	}
	if err := k.Linear(out, feat, n, fw, m.cfg.CS, m.outW, m.outB); err != nil {
		return err
	}
	if t != nil {
		t.rows, t.fc, t.a, t.og, t.ogl, t.norm, t.feat = rows, fc, a, og, ogl, norm, feat
		t.own = keep
	}
	return nil
}

// project computes the scalar projections q, kk, vv [N, H·C] of s and the
// global points qg, kg [N, H·P_q, 3] and vg [N, H·P_v, 3] (Alg. 22 lines
// 1–3), mapped by the centred frames fc. With local set, the points in
// the local frames are kept in local's three tensors (query, key, value)
// and the global ones written beside them (the same values); otherwise
// they are mapped in place.
func (m *IPA[T]) project(s, fc backend.Tensor[T], n int, q, kk, vv, qg, kg, vg backend.Tensor[T], local *[3]backend.Tensor[T]) error {
	k, cfg := m.k, m.cfg
	h, hc, pq, pv := cfg.Heads, cfg.Heads*cfg.Channels, cfg.QueryPoints, cfg.ValuePoints
	for i, p := range []struct {
		y, w, b  backend.Tensor[T]
		out, pts int // output width; points per residue (0: not points)
	}{
		{q, m.qW, m.qB, hc, 0}, {kk, m.kW, m.kB, hc, 0}, {vv, m.vW, m.vB, hc, 0},
		{qg, m.qpW, m.qpB, 3 * h * pq, h * pq}, {kg, m.kpW, m.kpB, 3 * h * pq, h * pq}, {vg, m.vpW, m.vpB, 3 * h * pv, h * pv},
	} {
		y := p.y
		if p.pts > 0 && local != nil {
			y = local[i-3]
		}
		if err := k.Linear(y, s, n, cfg.CS, p.out, p.w, p.b); err != nil {
			return err
		}
		if p.pts > 0 {
			if err := k.RigidMap(backend.Apply, p.y, fc, y, n, p.pts); err != nil {
				return err
			}
		}
	}
	return nil
}

// attend computes the attention weights of the query rows a chunk of rows
// at a time and their outputs: o [N, H, C] = Σ_j a_ij v_j, og [N, H, P_v,
// 3] = Σ_j a_ij v_g,j and pair [N, H, c_z] = Σ_j a_ij z_ij. q, kk, vv are
// the scalar projections [N, H, C], qg (scaled by ω_h) and kg the global
// query and key points [N, H, P_q, 3], vg the value points [N, H, P_v, 3],
// kn [N, H] the ω_h·|k_g|², omm [N] the 1 − m_j and ones at least N ones.
// When a is not nil ([H·N·N]) the weights of the chunk of rows from i0 on
// are left in a from i0·H·N on ([H, rows, N]); otherwise each chunk's
// overwrite a scratch tensor.
func (m *IPA[T]) attend(n, rows int, z, mask, q, kk, vv, qg, kg, vg, kn, omm, ones, a, o, og, pair backend.Tensor[T], sw, wl T) error {
	k, cfg := m.k, m.cfg
	cz, h, c, pq, pv := cfg.CZ, cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints
	hc, hq3, hv3 := h*c, h*pq*3, h*pv*3
	sc := backend.NewArena(k)
	defer sc.Free()
	v := backend.NewArena(k)
	zb, lg := sc.Alloc(rows*n*h), a
	if a == nil {
		lg = sc.Alloc(h * rows * n)
	}
	if sc.Err() != nil {
		return sc.Err()
	}
	inf := T(cfg.Inf)
	for i0 := 0; i0 < n; i0 += rows {
		r := min(rows, n-i0)
		rn := r * n
		lgOff := 0
		if a != nil {
			lgOff = i0 * h * n
		}
		zc := v.View(z, i0*n*cz, rn*cz)
		zbv, lgv := v.View(zb, 0, rn*h), v.View(lg, lgOff, h*rn)
		qc, qgc, mc := v.View(q, i0*hc, r*hc), v.View(qg, i0*hq3, r*hq3), v.View(mask, i0, r)
		oc, ogc, pc := v.View(o, i0*hc, r*hc), v.View(og, i0*hv3, r*hv3), v.View(pair, i0*h*cz, r*h*cz)
		if v.Err() != nil {
			return v.Err()
		}
		// Pair bias z_ij·W_2d as [H, r, N].
		if err := k.Linear(zbv, zc, rn, cz, h, m.pairW, nil); err != nil {
			return err
		}
		if err := k.Transpose(lgv, zbv, 1, rn, h, 1); err != nil {
			return err
		}
		// l = w_L·bias + √(1/3C)·q·k + ω_h·q_g·k_g − ω_h/2·|k_g,j|² − Inf·m_i·(1 − m_j),
		// batched over heads.
		for _, g := range []struct {
			tB      bool
			kd      int
			alpha   T
			a       backend.Tensor[T]
			lda, sa int
			b       backend.Tensor[T]
			ldb, sb int
			beta    T
		}{
			{true, c, sw, qc, hc, c, kk, hc, c, wl},
			{true, 3 * pq, 1, qgc, hq3, 3 * pq, kg, hq3, 3 * pq, 1},
			{true, 1, -0.5, ones, 1, 0, kn, h, 1, 1},
			{false, 1, -inf, mc, 1, 0, omm, n, 0, 1},
		} {
			if err := k.GemmStridedBatched(false, g.tB, r, n, g.kd, g.alpha, g.a, g.lda, g.sa, g.b, g.ldb, g.sb, g.beta, lgv, n, rn, h); err != nil {
				return err
			}
		}
		if err := k.Softmax(lgv, h*r, n); err != nil {
			return err
		}
		// Outputs: per head the values, per query row the pair output.
		if err := k.GemmStridedBatched(false, false, r, c, n, 1, lgv, n, rn, vv, hc, c, 0, oc, hc, c, h); err != nil {
			return err
		}
		if err := k.GemmStridedBatched(false, false, r, 3*pv, n, 1, lgv, n, rn, vg, hv3, 3*pv, 0, ogc, hv3, 3*pv, h); err != nil {
			return err
		}
		if err := k.GemmStridedBatched(false, false, h, cz, n, 1, lgv, rn, n, zc, cz, n*cz, 0, pc, cz, h*cz, r); err != nil {
			return err
		}
	}
	return nil
}
