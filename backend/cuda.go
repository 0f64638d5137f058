//go:build foldkit_cuda || foldkit_cudaemu

package backend

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/cuda"
	"github.com/foldkit/foldkit/internal/num"
)

// Math selects the arithmetic of float32 matrix products on the CUDA
// backend (an alias of the internal runtime's type, so that code outside
// foldkit can name it).
type Math = cuda.Math

// The arithmetic of float32 matrix products: float32 as on the CPU (the
// default), or tensor-core TF32 or BF16 with inputs rounded to 10 or 7
// mantissa bits.
const (
	MathFP32 = cuda.MathFP32
	MathTF32 = cuda.MathTF32
	MathBF16 = cuda.MathBF16
)

// DeviceOptions configure a CUDA device when a backend opens it: the
// cuBLAS library to load and a debugging mode that waits after every call.
type DeviceOptions = cuda.Options

// CUDAOptions configure the CUDA backend. The zero value is the usual
// choice: float32 arithmetic everywhere and attention's input checks on.
type CUDAOptions struct {
	// Device configures the device when the backend opens it (CUDA).
	Device DeviceOptions
	// Math selects the arithmetic of float32 matrix products (Gemm,
	// GemmStridedBatched, Linear, LinearBackward): MathFP32 (the
	// default, as the CPU), MathTF32 or MathBF16 (tensor cores,
	// inputs rounded to 10 or 7 mantissa bits; see the package doc for the
	// tolerances). It has no effect on float64.
	Math Math
	// SkipInputChecks turns off Attention's and AttentionBackward's checks
	// for NaN and infinities in their inputs, each of which waits for the
	// device (one small download). Non-finite inputs then propagate.
	SkipInputChecks bool
}

// gpu is the CUDA backend on one device.
type gpu[T num.Float] struct {
	d     *cuda.Device
	opts  CUDAOptions
	owned bool // Close closes d
}

// CUDA opens GPU ordinal and returns the backend on it for element type
// T. The caller must Close it, which closes the device.
func CUDA[T num.Float](ordinal int, opts CUDAOptions) (Kernels[T], error) {
	d, err := cuda.Open(ordinal, opts.Device)
	if err != nil {
		return nil, err
	}
	return &gpu[T]{d: d, opts: opts, owned: true}, nil
}

// CUDAPair opens GPU ordinal once and returns the CUDA backends for
// float32 and float64 on it. Closing the pair (Pair.Close) closes the
// device.
func CUDAPair(ordinal int, opts CUDAOptions) (Pair, error) {
	d, err := cuda.Open(ordinal, opts.Device)
	if err != nil {
		return Pair{}, err
	}
	// The float64 backend owns the device: Pair.Close closes it last.
	return Pair{F32: &gpu[float32]{d: d, opts: opts}, F64: &gpu[float64]{d: d, opts: opts, owned: true}}, nil
}

// OnDevice returns the CUDA backend on an open device, for element type T;
// backends for float32 and float64 may share one device. Close of the
// backend leaves the device open.
func OnDevice[T num.Float](d *cuda.Device, opts CUDAOptions) Kernels[T] {
	return &gpu[T]{d: d, opts: opts}
}

// deviceTensor is the CUDA backend's Tensor.
type deviceTensor[T num.Float] struct{ b *cuda.Buffer[T] }

func (t *deviceTensor[T]) Len() int  { return t.b.Len() }
func (*deviceTensor[T]) elem() (z T) { return z }

// DeviceBuffer returns the device buffer of a CUDA backend's tensor, or nil
// and false for a tensor of another backend.
func DeviceBuffer[T num.Float](t Tensor[T]) (*cuda.Buffer[T], bool) {
	dt, ok := t.(*deviceTensor[T])
	if !ok || dt == nil {
		return nil, false
	}
	return dt.b, true
}

// Device returns the device the backend k runs on, or nil if k is not a
// CUDA backend.
func Device[T num.Float](k Kernels[T]) *cuda.Device {
	if g, ok := k.(*gpu[T]); ok {
		return g.d
	}
	return nil
}

func (g *gpu[T]) Name() string { return g.d.String() }

// bufs returns the buffers of ts (nil for absent tensors), or an error
// wrapping ErrForeign naming the first that is not on g's device.
func (g *gpu[T]) bufs(fn string, ts ...Tensor[T]) ([]*cuda.Buffer[T], error) {
	b := make([]*cuda.Buffer[T], len(ts))
	for i, t := range ts {
		if absent(t) {
			continue
		}
		buf, ok := DeviceBuffer(t)
		if !ok {
			return nil, fmt.Errorf("backend: %s: argument %d is a %T, not a CUDA tensor: %w", fn, i+1, t, ErrForeign)
		}
		if buf.Device() != g.d {
			return nil, fmt.Errorf("backend: %s: argument %d is on device %d, not %d: %w", fn, i+1, buf.Device().Ordinal(), g.d.Ordinal(), ErrForeign)
		}
		b[i] = buf
	}
	return b, nil
}

func wrap[T num.Float](b *cuda.Buffer[T]) Tensor[T] { return &deviceTensor[T]{b: b} }

func (g *gpu[T]) Alloc(n int) (Tensor[T], error) {
	b, err := cuda.NewBuffer[T](g.d, n)
	if err != nil {
		return nil, err
	}
	return wrap(b), nil
}

func (g *gpu[T]) FromHost(x []T) (Tensor[T], error) {
	b, err := cuda.Upload(g.d, x)
	if err != nil {
		return nil, err
	}
	return wrap(b), nil
}

func (g *gpu[T]) ToHost(dst []T, x Tensor[T]) error {
	if err := checkArgs("ToHost", arg[T]{"x", x, len(dst), "len(dst)", false}); err != nil {
		return err
	}
	b, err := g.bufs("ToHost", x)
	if err != nil {
		return err
	}
	return b[0].Download(dst)
}

func (g *gpu[T]) Upload(dst Tensor[T], src []T) error {
	if err := checkArgs("Upload", arg[T]{"dst", dst, len(src), "len(src)", false}); err != nil {
		return err
	}
	b, err := g.bufs("Upload", dst)
	if err != nil {
		return err
	}
	return b[0].Upload(src)
}

func (g *gpu[T]) Copy(dst, src Tensor[T]) error {
	if err := checkSame("Copy", arg[T]{what: "src", t: src}, arg[T]{what: "dst", t: dst}); err != nil {
		return err
	}
	b, err := g.bufs("Copy", dst, src)
	if err != nil {
		return err
	}
	return b[0].CopyFrom(b[1])
}

func (g *gpu[T]) View(x Tensor[T], off, n int) (Tensor[T], error) {
	b, err := g.bufs("View", x)
	if err != nil {
		return nil, err
	}
	if b[0] == nil {
		return nil, fmt.Errorf("backend: View of a missing tensor: %w", num.ErrShape)
	}
	if off < 0 || n < 0 || off+n > b[0].Len() {
		return nil, fmt.Errorf("backend: View [%d:%d] of a tensor of %d elements: %w", off, off+n, b[0].Len(), num.ErrShape)
	}
	v, err := b[0].View(off, n)
	if err != nil {
		return nil, err
	}
	return wrap(v), nil
}

func (g *gpu[T]) Zero(x Tensor[T]) error {
	b, err := g.bufs("Zero", x)
	if err != nil || b[0] == nil {
		return err
	}
	return b[0].Zero()
}

func (g *gpu[T]) Free(x Tensor[T]) {
	if b, ok := DeviceBuffer(x); ok {
		b.Free()
	}
}

func (g *gpu[T]) Sync() error { return g.d.Sync() }

func (g *gpu[T]) Close() error {
	if g.owned {
		return g.d.Close()
	}
	return nil
}

func (g *gpu[T]) Gemm(tA, tB bool, m, n, k int, alpha T, a Tensor[T], lda int, b Tensor[T], ldb int, beta T, c Tensor[T], ldc int) error {
	return g.gemm("Gemm", tA, tB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
}

func (g *gpu[T]) GemmStridedBatched(tA, tB bool, m, n, k int, alpha T, a Tensor[T], lda, strideA int, b Tensor[T], ldb, strideB int, beta T, c Tensor[T], ldc, strideC int, batch int) error {
	return g.gemm("GemmStridedBatched", tA, tB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
}

func (g *gpu[T]) gemm(fn string, tA, tB bool, m, n, k int, alpha T, a Tensor[T], lda, strideA int, b Tensor[T], ldb, strideB int, beta T, c Tensor[T], ldc, strideC int, batch int) error {
	done, err := checkGemm(fn, tA, tB, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc, strideC, batch)
	if err != nil || done {
		return err
	}
	s, err := g.bufs(fn, a, b, c)
	if err != nil {
		return err
	}
	return cuda.GemmStridedBatched(g.d, g.opts.Math, tA, tB, m, n, k, alpha, s[0], lda, strideA, s[1], ldb, strideB, beta, s[2], ldc, strideC, batch)
}

func (g *gpu[T]) Linear(y, x Tensor[T], rows, in, out int, w, b Tensor[T]) error {
	if err := checkLinear(y, x, rows, in, out, w, b); err != nil {
		return err
	}
	s, err := g.bufs("Linear", y, x, w, b)
	if err != nil {
		return err
	}
	if rows == 0 || out == 0 {
		return nil
	}
	var beta T
	if s[3] != nil {
		if err := cuda.BiasRows(g.d, s[0], s[3], rows, out); err != nil {
			return err
		}
		beta = 1
	} else if in == 0 {
		return s[0].Zero()
	}
	if in == 0 {
		return nil
	}
	return cuda.Gemm(g.d, g.opts.Math, false, false, rows, out, in, 1, s[1], in, s[2], out, beta, s[0], out)
}

func (g *gpu[T]) LinearBackward(dx, dw, db, x, w, dy Tensor[T], rows, in, out int) error {
	if err := checkLinearBackward(dx, dw, db, x, w, dy, rows, in, out); err != nil {
		return err
	}
	s, err := g.bufs("LinearBackward", dx, dw, db, x, w, dy)
	if err != nil {
		return err
	}
	if rows == 0 || out == 0 {
		return nil
	}
	if s[0] != nil && in > 0 {
		if err := cuda.Gemm(g.d, g.opts.Math, false, true, rows, in, out, 1, s[5], out, s[4], out, 1, s[0], in); err != nil {
			return err
		}
	}
	if s[1] != nil && in > 0 {
		if err := cuda.Gemm(g.d, g.opts.Math, true, false, in, out, rows, 1, s[3], in, s[5], out, 1, s[1], out); err != nil {
			return err
		}
	}
	if s[2] != nil {
		return cuda.ColSum(g.d, s[2], s[5], rows, out)
	}
	return nil
}

func (g *gpu[T]) LayerNorm(y, x Tensor[T], rows, c int, scale, offset Tensor[T], eps T, mean, rstd Tensor[T]) error {
	if err := checkLayerNorm(y, x, rows, c, scale, offset, mean, rstd); err != nil {
		return err
	}
	s, err := g.bufs("LayerNorm", y, x, scale, offset, mean, rstd)
	if err != nil {
		return err
	}
	return cuda.LayerNorm(g.d, s[0], s[1], s[2], s[3], eps, s[4], s[5], rows, c)
}

func (g *gpu[T]) LayerNormBackward(dx, dscale, doffset, x, scale, mean, rstd, dy Tensor[T], rows, c int) error {
	if err := checkLayerNormBackward(dx, dscale, doffset, x, scale, mean, rstd, dy, rows, c); err != nil {
		return err
	}
	s, err := g.bufs("LayerNormBackward", dx, dscale, doffset, x, scale, mean, rstd, dy)
	if err != nil {
		return err
	}
	return cuda.LayerNormBackward(g.d, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], rows, c)
}

func (g *gpu[T]) Softmax(x Tensor[T], rows, n int) error {
	if err := checkSoftmax(x, rows, n); err != nil {
		return err
	}
	s, err := g.bufs("Softmax", x)
	if err != nil {
		return err
	}
	return cuda.Softmax(g.d, s[0], rows, n)
}

func (g *gpu[T]) SoftmaxBackward(dx, y, dy Tensor[T], rows, n int) error {
	if err := checkSoftmaxBackward(dx, y, dy, rows, n); err != nil {
		return err
	}
	s, err := g.bufs("SoftmaxBackward", dx, y, dy)
	if err != nil || s[0] == nil {
		return err
	}
	return cuda.SoftmaxBackward(g.d, s[0], s[1], s[2], rows, n)
}

// unary checks and fetches the buffers of an elementwise kernel (see the
// CPU backend's unary).
func (g *gpu[T]) unary(fn string, first Tensor[T], rest []Tensor[T], optional []bool) ([]*cuda.Buffer[T], error) {
	a := make([]arg[T], len(rest))
	for i, t := range rest {
		a[i] = arg[T]{what: fmt.Sprintf("argument %d", i+2), t: t, optional: optional[i]}
	}
	if err := checkSame(fn, arg[T]{what: "argument 1", t: first}, a...); err != nil {
		return nil, err
	}
	return g.bufs(fn, append([]Tensor[T]{first}, rest...)...)
}

func (g *gpu[T]) Sigmoid(y, x Tensor[T]) error {
	s, err := g.unary("Sigmoid", x, []Tensor[T]{y}, []bool{false})
	if err != nil {
		return err
	}
	return cuda.Sigmoid(g.d, s[1], s[0])
}

func (g *gpu[T]) SigmoidBackward(dx, y, dy Tensor[T]) error {
	s, err := g.unary("SigmoidBackward", y, []Tensor[T]{dy, dx}, []bool{false, true})
	if err != nil || s[2] == nil {
		return err
	}
	return cuda.SigmoidBackward(g.d, s[2], s[0], s[1])
}

func (g *gpu[T]) ReLU(y, x Tensor[T]) error {
	s, err := g.unary("ReLU", x, []Tensor[T]{y}, []bool{false})
	if err != nil {
		return err
	}
	return cuda.ReLU(g.d, s[1], s[0])
}

func (g *gpu[T]) ReLUBackward(dx, x, dy Tensor[T]) error {
	s, err := g.unary("ReLUBackward", x, []Tensor[T]{dy, dx}, []bool{false, true})
	if err != nil || s[2] == nil {
		return err
	}
	return cuda.ReLUBackward(g.d, s[2], s[0], s[1])
}

func (g *gpu[T]) Mul(y, a, b Tensor[T]) error {
	s, err := g.unary("Mul", a, []Tensor[T]{b, y}, []bool{false, false})
	if err != nil {
		return err
	}
	return cuda.Mul(g.d, s[2], s[0], s[1])
}

func (g *gpu[T]) MulAdd(y, a, b Tensor[T]) error {
	s, err := g.unary("MulAdd", a, []Tensor[T]{b, y}, []bool{false, false})
	if err != nil {
		return err
	}
	return cuda.MulAdd(g.d, s[2], s[0], s[1])
}

func (g *gpu[T]) Add(y, x Tensor[T]) error {
	s, err := g.unary("Add", x, []Tensor[T]{y}, []bool{false})
	if err != nil {
		return err
	}
	return cuda.Axpby(g.d, s[1], s[0], 1)
}

func (g *gpu[T]) Gate(y, gt, x Tensor[T]) error {
	s, err := g.unary("Gate", x, []Tensor[T]{gt, y}, []bool{false, false})
	if err != nil {
		return err
	}
	return cuda.Gate(g.d, s[2], s[1], s[0])
}

func (g *gpu[T]) GateBackward(dg, dx, gt, x, dy Tensor[T]) error {
	s, err := g.unary("GateBackward", x, []Tensor[T]{gt, dy, dg, dx}, []bool{false, false, true, true})
	if err != nil || (s[3] == nil && s[4] == nil) {
		return err
	}
	return cuda.GateBackward(g.d, s[3], s[4], s[1], s[0], s[2])
}

// attention returns the device problem of p.
func (g *gpu[T]) attention(fn string, p *Attention[T]) (*cuda.Attention[T], error) {
	s, err := g.bufs(fn, p.Q, p.K, p.V, p.PairBias, p.KeyMask)
	if err != nil {
		return nil, err
	}
	if w := max(p.C, p.Cv); w > cuda.MaxHeadWidth {
		return nil, fmt.Errorf("backend: %s: head width %d exceeds the CUDA kernels' %d: %w", fn, w, cuda.MaxHeadWidth, ErrUnsupported)
	}
	sc, mb := float64(p.Scale), float64(p.MaskBias)
	if math.IsNaN(sc) || math.IsInf(sc, 0) || math.IsNaN(mb) || math.IsInf(mb, 0) {
		return nil, fmt.Errorf("backend: %s: Scale=%v and MaskBias=%v must be finite: %w", fn, p.Scale, p.MaskBias, num.ErrNaN)
	}
	return &cuda.Attention[T]{
		B: p.Batch, H: p.Heads, Lq: p.Lq, Lk: p.Lk, C: p.C, Cv: p.Cv, KVShared: kvHeads(p.Dims) == 1,
		Q: s[0], QBatch: p.QL.Batch, QRow: p.QL.Row,
		K: s[1], KBatch: p.KL.Batch, KRow: p.KL.Row,
		V: s[2], VBatch: p.VL.Batch, VRow: p.VL.Row,
		Bias: s[3], Mask: s[4], Scale: sc, MaskBias: mb,
	}, nil
}

// checkFinite counts the non-finite elements of the named views on the
// device and returns an error wrapping num.ErrNaN naming the first view
// that has any.
func (g *gpu[T]) checkFinite(fn string, names []string, views []cuda.Strided[T]) error {
	if g.opts.SkipInputChecks {
		return nil
	}
	var ns []string
	var vs []cuda.Strided[T]
	for i, v := range views {
		if v.Buf != nil {
			ns, vs = append(ns, names[i]), append(vs, v)
		}
	}
	counts, err := cuda.CountNonFinite(g.d, vs)
	if err != nil {
		return err
	}
	for i, c := range counts {
		if c > 0 {
			return fmt.Errorf("backend: %s: %s holds %d non-finite values: %w", fn, ns[i], c, num.ErrNaN)
		}
	}
	return nil
}

// inputViews are the attention inputs as strided views, for checkFinite.
func inputViews[T num.Float](a *cuda.Attention[T]) ([]string, []cuda.Strided[T]) {
	kvh := a.H
	if a.KVShared {
		kvh = 1
	}
	return []string{"Q", "K", "V", "PairBias", "KeyMask"}, []cuda.Strided[T]{
		{Buf: a.Q, Batch: a.B, Rows: a.Lq, Width: a.H * a.C, BatchStride: a.QBatch, RowStride: a.QRow},
		{Buf: a.K, Batch: a.B, Rows: a.Lk, Width: kvh * a.C, BatchStride: a.KBatch, RowStride: a.KRow},
		{Buf: a.V, Batch: a.B, Rows: a.Lk, Width: kvh * a.Cv, BatchStride: a.VBatch, RowStride: a.VRow},
		{Buf: a.Bias, Batch: 1, Rows: 1, Width: a.H * a.Lq * a.Lk},
		{Buf: a.Mask, Batch: 1, Rows: 1, Width: a.B * a.Lk},
	}
}

func (g *gpu[T]) Attention(p *Attention[T], o Tensor[T], oL attn.Layout, lse Tensor[T]) error {
	const fn = "Attention"
	if err := checkAttentionForward(p, o, oL, lse); err != nil {
		return err
	}
	a, err := g.attention(fn, p)
	if err != nil {
		return err
	}
	s, err := g.bufs(fn, o, lse)
	if err != nil {
		return err
	}
	names, views := inputViews(a)
	if err := g.checkFinite(fn, names, views); err != nil {
		return err
	}
	return cuda.AttentionForward(g.d, a, s[0], oL.Batch, oL.Row, s[1])
}

func (g *gpu[T]) AttentionBackward(p *Attention[T], o Tensor[T], oL attn.Layout, lse, do, dq, dk, dv, dPairBias Tensor[T]) error {
	const fn = "AttentionBackward"
	if err := checkAttentionBackward(p, o, oL, lse, do, dq, dk, dv, dPairBias); err != nil {
		return err
	}
	a, err := g.attention(fn, p)
	if err != nil {
		return err
	}
	s, err := g.bufs(fn, o, lse, do, dq, dk, dv, dPairBias)
	if err != nil {
		return err
	}
	names, views := inputViews(a)
	ow := a.H * a.Cv
	names = append(names, "o", "do", "lse")
	views = append(views,
		cuda.Strided[T]{Buf: s[0], Batch: a.B, Rows: a.Lq, Width: ow, BatchStride: oL.Batch, RowStride: oL.Row},
		cuda.Strided[T]{Buf: s[2], Batch: a.B, Rows: a.Lq, Width: ow, BatchStride: oL.Batch, RowStride: oL.Row},
		cuda.Strided[T]{Buf: s[1], Batch: 1, Rows: 1, Width: a.B * a.H * a.Lq})
	if err := g.checkFinite(fn, names, views); err != nil {
		return err
	}
	return cuda.AttentionBackward(g.d, a, s[0], oL.Batch, oL.Row, s[1], s[2], s[3], s[4], s[5], s[6])
}

func (g *gpu[T]) RigidCompose(dst, a, b Tensor[T], n int) error {
	const fn = "RigidCompose"
	if err := checkFrames(fn, n, arg[T]{what: "a", t: a, n: 12}, arg[T]{what: "b", t: b, n: 12}, arg[T]{what: "dst", t: dst, n: 12}); err != nil {
		return err
	}
	s, err := g.bufs(fn, dst, a, b)
	if err != nil {
		return err
	}
	return cuda.RigidCompose(g.d, s[0], s[1], s[2], n)
}

func (g *gpu[T]) RigidInvert(dst, src Tensor[T], n int) error {
	const fn = "RigidInvert"
	if err := checkFrames(fn, n, arg[T]{what: "src", t: src, n: 12}, arg[T]{what: "dst", t: dst, n: 12}); err != nil {
		return err
	}
	s, err := g.bufs(fn, dst, src)
	if err != nil {
		return err
	}
	return cuda.RigidInvert(g.d, s[0], s[1], n)
}

func (g *gpu[T]) RigidMap(mode FrameMap, dst, frames, p Tensor[T], n, m int) error {
	if err := checkRigidMap(mode, dst, frames, p, n, m); err != nil {
		return err
	}
	s, err := g.bufs("RigidMap", dst, frames, p)
	if err != nil {
		return err
	}
	return cuda.RigidMap(g.d, cuda.MapMode(mode), s[0], s[1], s[2], n, m)
}

func (g *gpu[T]) RigidMapBackward(mode FrameMap, dFrames, dp, frames, p, dy Tensor[T], n, m int) error {
	if err := checkRigidMapBackward(mode, dFrames, dp, frames, p, dy, n, m); err != nil {
		return err
	}
	s, err := g.bufs("RigidMapBackward", dFrames, dp, frames, p, dy)
	if err != nil {
		return err
	}
	return cuda.RigidMapBackward(g.d, cuda.MapMode(mode), s[0], s[1], s[2], s[3], s[4], n, m)
}

func (g *gpu[T]) RigidComposeBackward(da, db, a, b, gr Tensor[T], n int) error {
	const fn = "RigidComposeBackward"
	if err := checkFrames(fn, n, arg[T]{what: "a", t: a, n: 12}, arg[T]{what: "b", t: b, n: 12}, arg[T]{what: "g", t: gr, n: 12},
		arg[T]{what: "da", t: da, n: 12, optional: true}, arg[T]{what: "db", t: db, n: 12, optional: true}); err != nil {
		return err
	}
	s, err := g.bufs(fn, da, db, a, b, gr)
	if err != nil {
		return err
	}
	return cuda.RigidComposeBackward(g.d, s[0], s[1], s[2], s[3], s[4], n)
}

func (g *gpu[T]) RigidInvertBackward(dsrc, src, gr Tensor[T], n int) error {
	const fn = "RigidInvertBackward"
	if err := checkFrames(fn, n, arg[T]{what: "src", t: src, n: 12}, arg[T]{what: "g", t: gr, n: 12}, arg[T]{what: "dsrc", t: dsrc, n: 12}); err != nil {
		return err
	}
	s, err := g.bufs(fn, dsrc, src, gr)
	if err != nil {
		return err
	}
	return cuda.RigidInvertBackward(g.d, s[0], s[1], s[2], n)
}

func (g *gpu[T]) QuatToRot(rot, q Tensor[T], n int) error {
	const fn = "QuatToRot"
	if err := checkFrames(fn, n, arg[T]{what: "q", t: q, n: 4}, arg[T]{what: "rot", t: rot, n: 9}); err != nil {
		return err
	}
	s, err := g.bufs(fn, rot, q)
	if err != nil {
		return err
	}
	return cuda.QuatToRot(g.d, s[0], s[1], n)
}

func (g *gpu[T]) QuatToRotBackward(dq, q, dRot Tensor[T], n int) error {
	const fn = "QuatToRotBackward"
	if err := checkFrames(fn, n, arg[T]{what: "q", t: q, n: 4}, arg[T]{what: "dRot", t: dRot, n: 9}, arg[T]{what: "dq", t: dq, n: 4}); err != nil {
		return err
	}
	s, err := g.bufs(fn, dq, q, dRot)
	if err != nil {
		return err
	}
	return cuda.QuatToRotBackward(g.d, s[0], s[1], s[2], n)
}

func (g *gpu[T]) ComposeQUpdate(qOut, tOut, q, t, u Tensor[T], n int) error {
	const fn = "ComposeQUpdate"
	if err := checkFrames(fn, n, arg[T]{what: "q", t: q, n: 4}, arg[T]{what: "t", t: t, n: 3}, arg[T]{what: "u", t: u, n: 6},
		arg[T]{what: "qOut", t: qOut, n: 4}, arg[T]{what: "tOut", t: tOut, n: 3}); err != nil {
		return err
	}
	s, err := g.bufs(fn, qOut, tOut, q, t, u)
	if err != nil {
		return err
	}
	return cuda.ComposeQUpdate(g.d, s[0], s[1], s[2], s[3], s[4], n)
}

func (g *gpu[T]) ComposeQUpdateBackward(dq, dt, du, q, t, u, dqNew, dFrame Tensor[T], n int) error {
	const fn = "ComposeQUpdateBackward"
	if err := checkFrames(fn, n, arg[T]{what: "q", t: q, n: 4}, arg[T]{what: "t", t: t, n: 3}, arg[T]{what: "u", t: u, n: 6},
		arg[T]{what: "dFrame", t: dFrame, n: 12}, arg[T]{what: "dqNew", t: dqNew, n: 4, optional: true},
		arg[T]{what: "dq", t: dq, n: 4, optional: true}, arg[T]{what: "dt", t: dt, n: 3, optional: true},
		arg[T]{what: "du", t: du, n: 6, optional: true}); err != nil {
		return err
	}
	s, err := g.bufs(fn, dq, dt, du, q, t, u, dqNew, dFrame)
	if err != nil {
		return err
	}
	return cuda.ComposeQUpdateBackward(g.d, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], n)
}
