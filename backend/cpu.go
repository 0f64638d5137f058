package backend

import (
	"fmt"
	"unsafe"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// cpu is the CPU backend; it holds no state.
type cpu[T num.Float] struct{}

// CPU returns the CPU backend: the kernels of packages gemm, nn, attn and
// rigid behind the Kernels interface, on Host tensors. It is stateless and
// safe for concurrent use; Close does nothing.
func CPU[T num.Float]() Kernels[T] { return cpu[T]{} }

func (cpu[T]) Name() string { return "cpu (" + gemm.Name() + ")" }

// hosts returns the slices of ts (nil for absent tensors), or an error
// wrapping ErrForeign naming the first tensor that is not a Host.
func hosts[T num.Float](fn string, ts ...Tensor[T]) ([][]T, error) {
	s := make([][]T, len(ts))
	for i, t := range ts {
		if absent[T](t) {
			continue
		}
		h, ok := t.(Host[T])
		if !ok {
			return nil, fmt.Errorf("backend: %s: argument %d is a %T, not a cpu tensor: %w", fn, i+1, t, ErrForeign)
		}
		s[i] = h
	}
	return s, nil
}

func (cpu[T]) Alloc(n int) (Tensor[T], error) {
	if n < 0 {
		return nil, fmt.Errorf("backend: Alloc(%d): %w", n, num.ErrShape)
	}
	return Host[T](make([]T, n)), nil
}

func (cpu[T]) FromHost(x []T) (Tensor[T], error) {
	return Host[T](append(make([]T, 0, len(x)), x...)), nil
}

func (cpu[T]) ToHost(dst []T, x Tensor[T]) error {
	s, err := hosts[T]("ToHost", x)
	if err != nil {
		return err
	}
	if err := checkArgs("ToHost", arg[T]{"x", x, len(dst), "len(dst)", false}); err != nil {
		return err
	}
	copy(dst, s[0])
	return nil
}

func (cpu[T]) Upload(dst Tensor[T], src []T) error {
	s, err := hosts[T]("Upload", dst)
	if err != nil {
		return err
	}
	if err := checkArgs("Upload", arg[T]{"dst", dst, len(src), "len(src)", false}); err != nil {
		return err
	}
	copy(s[0], src)
	return nil
}

func (cpu[T]) Copy(dst, src Tensor[T]) error {
	if err := checkSame[T]("Copy", arg[T]{what: "src", t: src}, arg[T]{what: "dst", t: dst}); err != nil {
		return err
	}
	s, err := hosts[T]("Copy", dst, src)
	if err != nil {
		return err
	}
	copy(s[0], s[1])
	return nil
}

func (cpu[T]) View(x Tensor[T], off, n int) (Tensor[T], error) {
	s, err := hosts[T]("View", x)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 || off+n > len(s[0]) {
		return nil, fmt.Errorf("backend: View [%d:%d] of a tensor of %d elements: %w", off, off+n, len(s[0]), num.ErrShape)
	}
	return Host[T](s[0][off : off+n : off+n]), nil
}

func (cpu[T]) Zero(x Tensor[T]) error {
	s, err := hosts[T]("Zero", x)
	if err != nil {
		return err
	}
	clear(s[0])
	return nil
}

func (cpu[T]) Free(Tensor[T]) {}
func (cpu[T]) Sync() error    { return nil }
func (cpu[T]) Close() error   { return nil }

func (c cpu[T]) Gemm(tA, tB bool, m, n, k int, alpha T, a Tensor[T], lda int, b Tensor[T], ldb int, beta T, cc Tensor[T], ldc int) error {
	return c.gemm("Gemm", tA, tB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, cc, ldc, 0, 1)
}

func (c cpu[T]) GemmStridedBatched(tA, tB bool, m, n, k int, alpha T, a Tensor[T], lda, strideA int, b Tensor[T], ldb, strideB int, beta T, cc Tensor[T], ldc, strideC int, batch int) error {
	return c.gemm("GemmStridedBatched", tA, tB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, cc, ldc, strideC, batch)
}

func (cpu[T]) gemm(fn string, tA, tB bool, m, n, k int, alpha T, a Tensor[T], lda, strideA int, b Tensor[T], ldb, strideB int, beta T, c Tensor[T], ldc, strideC int, batch int) error {
	done, err := checkGemm(fn, tA, tB, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc, strideC, batch)
	if err != nil || done {
		return err
	}
	s, err := hosts[T](fn, a, b, c)
	if err != nil {
		return err
	}
	for i := 0; i < batch; i++ {
		ci := s[2][i*strideC:]
		if k == 0 {
			// C = beta·C (BLAS: with beta = 0, C is not read).
			for r := 0; r < m; r++ {
				row := ci[r*ldc : r*ldc+n]
				if beta == 0 {
					clear(row)
					continue
				}
				for j := range row {
					row[j] *= beta
				}
			}
			continue
		}
		gemm.Gemm(tA, tB, m, n, k, alpha, s[0][i*strideA:], lda, s[1][i*strideB:], ldb, beta, ci, ldc)
	}
	return nil
}

func (cpu[T]) Linear(y, x Tensor[T], rows, in, out int, w, b Tensor[T]) error {
	if err := checkLinear(y, x, rows, in, out, w, b); err != nil {
		return err
	}
	s, err := hosts[T]("Linear", y, x, w, b)
	if err != nil {
		return err
	}
	nn.Linear(s[0], s[1], rows, in, out, s[2], s[3])
	return nil
}

func (cpu[T]) LinearBackward(dx, dw, db, x, w, dy Tensor[T], rows, in, out int) error {
	if err := checkLinearBackward(dx, dw, db, x, w, dy, rows, in, out); err != nil {
		return err
	}
	s, err := hosts[T]("LinearBackward", dx, dw, db, x, w, dy)
	if err != nil {
		return err
	}
	nn.LinearBackward(s[0], s[1], s[2], s[3], s[4], s[5], rows, in, out)
	return nil
}

func (cpu[T]) LayerNorm(y, x Tensor[T], rows, c int, scale, offset Tensor[T], eps T, mean, rstd Tensor[T]) error {
	if err := checkLayerNorm(y, x, rows, c, scale, offset, mean, rstd); err != nil {
		return err
	}
	s, err := hosts[T]("LayerNorm", y, x, scale, offset, mean, rstd)
	if err != nil {
		return err
	}
	nn.LayerNorm(s[0], s[1], rows, c, s[2], s[3], eps, s[4], s[5])
	return nil
}

func (cpu[T]) LayerNormBackward(dx, dscale, doffset, x, scale, mean, rstd, dy Tensor[T], rows, c int) error {
	if err := checkLayerNormBackward(dx, dscale, doffset, x, scale, mean, rstd, dy, rows, c); err != nil {
		return err
	}
	s, err := hosts[T]("LayerNormBackward", dx, dscale, doffset, x, scale, mean, rstd, dy)
	if err != nil {
		return err
	}
	nn.LayerNormBackward(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], rows, c)
	return nil
}

func (cpu[T]) Softmax(x Tensor[T], rows, n int) error {
	if err := checkSoftmax(x, rows, n); err != nil {
		return err
	}
	s, err := hosts[T]("Softmax", x)
	if err != nil {
		return err
	}
	nn.SoftmaxRows(s[0], rows, n)
	return nil
}

func (cpu[T]) SoftmaxBackward(dx, y, dy Tensor[T], rows, n int) error {
	if err := checkSoftmaxBackward(dx, y, dy, rows, n); err != nil {
		return err
	}
	s, err := hosts[T]("SoftmaxBackward", dx, y, dy)
	if err != nil {
		return err
	}
	nn.SoftmaxRowsBackward(s[0], s[1], s[2], rows, n)
	return nil
}

// unary checks and fetches the tensors of an elementwise kernel: the first
// is required and sets the length; the others must match it, and those
// flagged optional may be absent.
func unary[T num.Float](fn string, first Tensor[T], rest []Tensor[T], optional []bool) ([][]T, error) {
	a := make([]arg[T], len(rest))
	for i, t := range rest {
		a[i] = arg[T]{what: fmt.Sprintf("argument %d", i+2), t: t, optional: optional[i]}
	}
	if err := checkSame[T](fn, arg[T]{what: "argument 1", t: first}, a...); err != nil {
		return nil, err
	}
	return hosts[T](fn, append([]Tensor[T]{first}, rest...)...)
}

func (cpu[T]) Sigmoid(y, x Tensor[T]) error {
	s, err := unary("Sigmoid", x, []Tensor[T]{y}, []bool{false})
	if err != nil {
		return err
	}
	nn.Sigmoid(s[1], s[0])
	return nil
}

func (cpu[T]) SigmoidBackward(dx, y, dy Tensor[T]) error {
	s, err := unary("SigmoidBackward", y, []Tensor[T]{dy, dx}, []bool{false, true})
	if err != nil {
		return err
	}
	nn.SigmoidBackward(s[2], s[0], s[1])
	return nil
}

func (cpu[T]) ReLU(y, x Tensor[T]) error {
	s, err := unary("ReLU", x, []Tensor[T]{y}, []bool{false})
	if err != nil {
		return err
	}
	nn.ReLU(s[1], s[0])
	return nil
}

func (cpu[T]) ReLUBackward(dx, x, dy Tensor[T]) error {
	s, err := unary("ReLUBackward", x, []Tensor[T]{dy, dx}, []bool{false, true})
	if err != nil {
		return err
	}
	nn.ReLUBackward(s[2], s[0], s[1])
	return nil
}

func (cpu[T]) Mul(y, a, b Tensor[T]) error {
	s, err := unary("Mul", a, []Tensor[T]{b, y}, []bool{false, false})
	if err != nil {
		return err
	}
	nn.Mul(s[2], s[0], s[1])
	return nil
}

func (cpu[T]) MulAdd(y, a, b Tensor[T]) error {
	s, err := unary("MulAdd", a, []Tensor[T]{b, y}, []bool{false, false})
	if err != nil {
		return err
	}
	nn.MulAdd(s[2], s[0], s[1])
	return nil
}

func (cpu[T]) Add(y, x Tensor[T]) error {
	s, err := unary("Add", x, []Tensor[T]{y}, []bool{false})
	if err != nil {
		return err
	}
	ys := s[1]
	for i, v := range s[0] {
		ys[i] += v
	}
	return nil
}

func (cpu[T]) Gate(y, g, x Tensor[T]) error {
	s, err := unary("Gate", x, []Tensor[T]{g, y}, []bool{false, false})
	if err != nil {
		return err
	}
	// nn.Sigmoid then nn.Mul, through a temporary so that y may be g or x.
	sg := make([]T, len(s[0]))
	nn.Sigmoid(sg, s[1])
	nn.Mul(s[2], sg, s[0])
	return nil
}

func (cpu[T]) GateBackward(dg, dx, g, x, dy Tensor[T]) error {
	s, err := unary("GateBackward", x, []Tensor[T]{g, dy, dg, dx}, []bool{false, false, true, true})
	if err != nil {
		return err
	}
	// dx += dy ⊙ s (nn.MulAdd) and dg += (dy ⊙ x)·s·(1 − s)
	// (nn.SigmoidBackward), with s = nn.Sigmoid(g).
	xs, gs, dys, dgs, dxs := s[0], s[1], s[2], s[3], s[4]
	sg := make([]T, len(xs))
	nn.Sigmoid(sg, gs)
	if dxs != nil {
		nn.MulAdd(dxs, dys, sg)
	}
	if dgs != nil {
		ds := make([]T, len(xs))
		nn.Mul(ds, dys, xs)
		nn.SigmoidBackward(dgs, sg, ds)
	}
	return nil
}

// problem returns the attn.Problem of p on host slices.
func problem[T num.Float](fn string, p *Attention[T]) (*attn.Problem[T], error) {
	s, err := hosts[T](fn, p.Q, p.K, p.V, p.PairBias, p.KeyMask)
	if err != nil {
		return nil, err
	}
	return &attn.Problem[T]{
		Dims: p.Dims, Q: s[0], QL: p.QL, K: s[1], KL: p.KL, V: s[2], VL: p.VL,
		Scale: p.Scale, PairBias: s[3], KeyMask: s[4], MaskBias: p.MaskBias,
	}, nil
}

func (cpu[T]) Attention(p *Attention[T], o Tensor[T], oL attn.Layout, lse Tensor[T]) error {
	if err := checkAttentionForward(p, o, oL, lse); err != nil {
		return err
	}
	ap, err := problem("Attention", p)
	if err != nil {
		return err
	}
	s, err := hosts[T]("Attention", o, lse)
	if err != nil {
		return err
	}
	return attn.Forward(ap, s[0], oL, s[1])
}

func (cpu[T]) AttentionBackward(p *Attention[T], o Tensor[T], oL attn.Layout, lse, do, dq, dk, dv, dPairBias Tensor[T]) error {
	if err := checkAttentionBackward(p, o, oL, lse, do, dq, dk, dv, dPairBias); err != nil {
		return err
	}
	ap, err := problem("AttentionBackward", p)
	if err != nil {
		return err
	}
	s, err := hosts[T]("AttentionBackward", o, lse, do, dq, dk, dv, dPairBias)
	if err != nil {
		return err
	}
	return attn.Backward(ap, s[0], oL, s[1], s[2], s[3], s[4], s[5], s[6])
}

// AsFrames returns the n = len(x)/12 frames stored in x [n, 12] as
// rigid.Rigid values, sharing x's memory (a Rigid[T] is 12 values: the
// rotation row-major, then the translation). len(x) must be a multiple of
// 12.
func AsFrames[T num.Float](x []T) []rigid.Rigid[T] {
	if len(x) < 12 {
		return nil
	}
	return unsafe.Slice((*rigid.Rigid[T])(unsafe.Pointer(&x[0])), len(x)/12)
}

// FrameData returns the values of frames as a [n, 12] slice sharing their
// memory, the inverse of AsFrames: FromHost(FrameData(frames)) uploads a
// batch of frames.
func FrameData[T num.Float](frames []rigid.Rigid[T]) []T {
	if len(frames) == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&frames[0])), 12*len(frames))
}

func vec3[T num.Float](x []T, i int) [3]T { return [3]T{x[3*i], x[3*i+1], x[3*i+2]} }

func quat[T num.Float](x []T, i int) rigid.Quat[T] {
	return rigid.Quat[T]{x[4*i], x[4*i+1], x[4*i+2], x[4*i+3]}
}

func (cpu[T]) RigidCompose(dst, a, b Tensor[T], n int) error {
	const fn = "RigidCompose"
	if err := checkFrames(fn, n, arg[T]{what: "a", t: a, n: 12}, arg[T]{what: "b", t: b, n: 12}, arg[T]{what: "dst", t: dst, n: 12}); err != nil {
		return err
	}
	s, err := hosts[T](fn, dst, a, b)
	if err != nil {
		return err
	}
	fd, fa, fb := AsFrames(s[0]), AsFrames(s[1]), AsFrames(s[2])
	for i := range fd {
		fd[i] = fa[i].Compose(fb[i])
	}
	return nil
}

func (cpu[T]) RigidInvert(dst, src Tensor[T], n int) error {
	const fn = "RigidInvert"
	if err := checkFrames(fn, n, arg[T]{what: "src", t: src, n: 12}, arg[T]{what: "dst", t: dst, n: 12}); err != nil {
		return err
	}
	s, err := hosts[T](fn, dst, src)
	if err != nil {
		return err
	}
	fd, fs := AsFrames(s[0]), AsFrames(s[1])
	for i := range fd {
		fd[i] = fs[i].Invert()
	}
	return nil
}

func (cpu[T]) RigidMap(mode FrameMap, dst, frames, p Tensor[T], n, m int) error {
	const fn = "RigidMap"
	if err := checkRigidMap(mode, dst, frames, p, n, m); err != nil {
		return err
	}
	s, err := hosts[T](fn, dst, frames, p)
	if err != nil {
		return err
	}
	d, f, ps := s[0], AsFrames(s[1]), s[2]
	for i := range f {
		for k := 0; k < m; k++ {
			j := i*m + k
			x := vec3(ps, j)
			var y [3]T
			switch mode {
			case Apply:
				y = f[i].Apply(x)
			case ApplyVec:
				y = f[i].ApplyVec(x)
			case InvertApply:
				y = f[i].InvertApply(x)
			default:
				y = f[i].InvertApplyVec(x)
			}
			d[3*j], d[3*j+1], d[3*j+2] = y[0], y[1], y[2]
		}
	}
	return nil
}

func (cpu[T]) RigidMapBackward(mode FrameMap, dFrames, dp, frames, p, dy Tensor[T], n, m int) error {
	const fn = "RigidMapBackward"
	if err := checkRigidMapBackward(mode, dFrames, dp, frames, p, dy, n, m); err != nil {
		return err
	}
	s, err := hosts[T](fn, dFrames, dp, frames, p, dy)
	if err != nil {
		return err
	}
	gf, gp, f, ps, dys := AsFrames(s[0]), s[1], AsFrames(s[2]), s[3], s[4]
	for i := range f {
		var acc rigid.Rigid[T]
		for k := 0; k < m; k++ {
			j := i*m + k
			x, d := vec3(ps, j), vec3(dys, j)
			var fr rigid.Rigid[T]
			var px [3]T
			switch mode {
			case Apply:
				fr, px = rigid.ApplyVJP(f[i], x, d)
			case ApplyVec:
				fr, px = rigid.ApplyVecVJP(f[i], x, d)
			case InvertApply:
				fr, px = rigid.InvertApplyVJP(f[i], x, d)
			default:
				fr, px = rigid.InvertApplyVecVJP(f[i], x, d)
			}
			for c := range acc.Rot {
				acc.Rot[c] += fr.Rot[c]
			}
			for c := range acc.Trans {
				acc.Trans[c] += fr.Trans[c]
			}
			if gp != nil {
				gp[3*j] += px[0]
				gp[3*j+1] += px[1]
				gp[3*j+2] += px[2]
			}
		}
		if gf != nil {
			addFrame(&gf[i], acc)
		}
	}
	return nil
}

// addFrame adds g to *dst entrywise.
func addFrame[T num.Float](dst *rigid.Rigid[T], g rigid.Rigid[T]) {
	for c := range dst.Rot {
		dst.Rot[c] += g.Rot[c]
	}
	for c := range dst.Trans {
		dst.Trans[c] += g.Trans[c]
	}
}

func (cpu[T]) RigidComposeBackward(da, db, a, b, g Tensor[T], n int) error {
	const fn = "RigidComposeBackward"
	if err := checkFrames(fn, n, arg[T]{what: "a", t: a, n: 12}, arg[T]{what: "b", t: b, n: 12}, arg[T]{what: "g", t: g, n: 12},
		arg[T]{what: "da", t: da, n: 12, optional: true}, arg[T]{what: "db", t: db, n: 12, optional: true}); err != nil {
		return err
	}
	s, err := hosts[T](fn, da, db, a, b, g)
	if err != nil {
		return err
	}
	ga, gb, fa, fb, fg := AsFrames(s[0]), AsFrames(s[1]), AsFrames(s[2]), AsFrames(s[3]), AsFrames(s[4])
	for i := range fa {
		d1, d2 := rigid.ComposeVJP(fa[i], fb[i], fg[i])
		if ga != nil {
			addFrame(&ga[i], d1)
		}
		if gb != nil {
			addFrame(&gb[i], d2)
		}
	}
	return nil
}

func (cpu[T]) RigidInvertBackward(dsrc, src, g Tensor[T], n int) error {
	const fn = "RigidInvertBackward"
	if err := checkFrames(fn, n, arg[T]{what: "src", t: src, n: 12}, arg[T]{what: "g", t: g, n: 12}, arg[T]{what: "dsrc", t: dsrc, n: 12}); err != nil {
		return err
	}
	s, err := hosts[T](fn, dsrc, src, g)
	if err != nil {
		return err
	}
	gs, fs, fg := AsFrames(s[0]), AsFrames(s[1]), AsFrames(s[2])
	for i := range fs {
		addFrame(&gs[i], rigid.InvertVJP(fs[i], fg[i]))
	}
	return nil
}

func (cpu[T]) QuatToRot(rot, q Tensor[T], n int) error {
	const fn = "QuatToRot"
	if err := checkFrames(fn, n, arg[T]{what: "q", t: q, n: 4}, arg[T]{what: "rot", t: rot, n: 9}); err != nil {
		return err
	}
	s, err := hosts[T](fn, rot, q)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		r := rigid.QuatToRot(quat(s[1], i))
		copy(s[0][9*i:9*i+9], r[:])
	}
	return nil
}

func (cpu[T]) QuatToRotBackward(dq, q, dRot Tensor[T], n int) error {
	const fn = "QuatToRotBackward"
	if err := checkFrames(fn, n, arg[T]{what: "q", t: q, n: 4}, arg[T]{what: "dRot", t: dRot, n: 9}, arg[T]{what: "dq", t: dq, n: 4}); err != nil {
		return err
	}
	s, err := hosts[T](fn, dq, q, dRot)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		var dr [9]T
		copy(dr[:], s[2][9*i:])
		g := rigid.QuatToRotVJP(quat(s[1], i), dr)
		for c := range g {
			s[0][4*i+c] += g[c]
		}
	}
	return nil
}

func (cpu[T]) ComposeQUpdate(qOut, tOut, q, t, u Tensor[T], n int) error {
	const fn = "ComposeQUpdate"
	if err := checkFrames(fn, n, arg[T]{what: "q", t: q, n: 4}, arg[T]{what: "t", t: t, n: 3}, arg[T]{what: "u", t: u, n: 6},
		arg[T]{what: "qOut", t: qOut, n: 4}, arg[T]{what: "tOut", t: tOut, n: 3}); err != nil {
		return err
	}
	s, err := hosts[T](fn, qOut, tOut, q, t, u)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		var ui [6]T
		copy(ui[:], s[4][6*i:])
		qn, tn := rigid.ComposeQUpdate(quat(s[2], i), vec3(s[3], i), ui)
		copy(s[0][4*i:4*i+4], qn[:])
		copy(s[1][3*i:3*i+3], tn[:])
	}
	return nil
}

func (cpu[T]) ComposeQUpdateBackward(dq, dt, du, q, t, u, dqNew, dFrame Tensor[T], n int) error {
	const fn = "ComposeQUpdateBackward"
	if err := checkFrames(fn, n, arg[T]{what: "q", t: q, n: 4}, arg[T]{what: "t", t: t, n: 3}, arg[T]{what: "u", t: u, n: 6},
		arg[T]{what: "dFrame", t: dFrame, n: 12}, arg[T]{what: "dqNew", t: dqNew, n: 4, optional: true},
		arg[T]{what: "dq", t: dq, n: 4, optional: true}, arg[T]{what: "dt", t: dt, n: 3, optional: true},
		arg[T]{what: "du", t: du, n: 6, optional: true}); err != nil {
		return err
	}
	s, err := hosts[T](fn, dq, dt, du, q, t, u, dqNew, dFrame)
	if err != nil {
		return err
	}
	gq, gt, gu, qs, ts, us, dqn, df := s[0], s[1], s[2], s[3], s[4], s[5], s[6], AsFrames(s[7])
	for i := 0; i < n; i++ {
		var ui [6]T
		copy(ui[:], us[6*i:])
		var dn rigid.Quat[T]
		if dqn != nil {
			dn = quat(dqn, i)
		}
		a, b, c := rigid.ComposeQUpdateVJP(quat(qs, i), vec3(ts, i), ui, dn, df[i])
		if gq != nil {
			for k := range a {
				gq[4*i+k] += a[k]
			}
		}
		if gt != nil {
			for k := range b {
				gt[3*i+k] += b[k]
			}
		}
		if gu != nil {
			for k := range c {
				gu[6*i+k] += c[k]
			}
		}
	}
	return nil
}
