package backend

import (
	"fmt"
	"reflect"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/num"
)

// The checks in this file are shared by every implementation, so that a
// bad argument gives the same error on every backend. They look only at
// lengths and dimensions; implementations check ownership (ErrForeign).

// absent reports whether t stands for a missing tensor: nil, a nil Host
// slice, or a nil pointer of another backend's tensor type.
func absent[T num.Float](t Tensor[T]) bool {
	if t == nil {
		return true
	}
	if h, ok := t.(Host[T]); ok {
		return h == nil
	}
	v := reflect.ValueOf(t)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// arg is one tensor argument to check: it must hold exactly n elements
// (shape describes them for the message), or may be absent when optional.
type arg[T num.Float] struct {
	what     string
	t        Tensor[T]
	n        int
	shape    string
	optional bool
}

func checkArgs[T num.Float](fn string, args ...arg[T]) error {
	for _, a := range args {
		if absent[T](a.t) {
			if a.optional {
				continue
			}
			return fmt.Errorf("backend: %s: %s is missing: %w", fn, a.what, num.ErrShape)
		}
		if got := a.t.Len(); got != a.n {
			return fmt.Errorf("backend: %s: %s has %d elements, want %s = %d: %w", fn, a.what, got, a.shape, a.n, num.ErrShape)
		}
	}
	return nil
}

func checkDims(fn string, names string, dims ...int) error {
	for _, d := range dims {
		if d < 0 {
			return fmt.Errorf("backend: %s: dimensions %s = %v must not be negative: %w", fn, names, dims, num.ErrShape)
		}
	}
	return nil
}

func shape(dims ...int) string { return fmt.Sprint(dims) }

func checkLinear[T num.Float](y, x Tensor[T], rows, in, out int, w, b Tensor[T]) error {
	const fn = "Linear"
	if err := checkDims(fn, "rows, in, out", rows, in, out); err != nil {
		return err
	}
	return checkArgs(fn,
		arg[T]{"x", x, rows * in, "[rows,in] " + shape(rows, in), false},
		arg[T]{"w", w, in * out, "[in,out] " + shape(in, out), false},
		arg[T]{"b", b, out, "[out] " + shape(out), true},
		arg[T]{"y", y, rows * out, "[rows,out] " + shape(rows, out), false})
}

func checkLinearBackward[T num.Float](dx, dw, db, x, w, dy Tensor[T], rows, in, out int) error {
	const fn = "LinearBackward"
	if err := checkDims(fn, "rows, in, out", rows, in, out); err != nil {
		return err
	}
	return checkArgs(fn,
		arg[T]{"dy", dy, rows * out, "[rows,out] " + shape(rows, out), false},
		arg[T]{"dx", dx, rows * in, "[rows,in] " + shape(rows, in), true},
		arg[T]{"dw", dw, in * out, "[in,out] " + shape(in, out), true},
		arg[T]{"db", db, out, "[out] " + shape(out), true},
		arg[T]{"w", w, in * out, "[in,out] " + shape(in, out), absent[T](dx)},
		arg[T]{"x", x, rows * in, "[rows,in] " + shape(rows, in), absent[T](dw)})
}

func checkLayerNorm[T num.Float](y, x Tensor[T], rows, c int, scale, offset, mean, rstd Tensor[T]) error {
	const fn = "LayerNorm"
	if err := checkDims(fn, "rows, c", rows, c); err != nil {
		return err
	}
	return checkArgs(fn,
		arg[T]{"x", x, rows * c, "[rows,c] " + shape(rows, c), false},
		arg[T]{"y", y, rows * c, "[rows,c] " + shape(rows, c), false},
		arg[T]{"scale", scale, c, "[c] " + shape(c), false},
		arg[T]{"offset", offset, c, "[c] " + shape(c), false},
		arg[T]{"mean", mean, rows, "[rows] " + shape(rows), true},
		arg[T]{"rstd", rstd, rows, "[rows] " + shape(rows), true})
}

func checkLayerNormBackward[T num.Float](dx, dscale, doffset, x, scale, mean, rstd, dy Tensor[T], rows, c int) error {
	const fn = "LayerNormBackward"
	if err := checkDims(fn, "rows, c", rows, c); err != nil {
		return err
	}
	return checkArgs(fn,
		arg[T]{"x", x, rows * c, "[rows,c] " + shape(rows, c), false},
		arg[T]{"dy", dy, rows * c, "[rows,c] " + shape(rows, c), false},
		arg[T]{"scale", scale, c, "[c] " + shape(c), false},
		arg[T]{"mean", mean, rows, "[rows] " + shape(rows), true},
		arg[T]{"rstd", rstd, rows, "[rows] " + shape(rows), true},
		arg[T]{"dx", dx, rows * c, "[rows,c] " + shape(rows, c), true},
		arg[T]{"dscale", dscale, c, "[c] " + shape(c), true},
		arg[T]{"doffset", doffset, c, "[c] " + shape(c), true})
}

func checkSoftmax[T num.Float](x Tensor[T], rows, n int) error {
	if err := checkDims("Softmax", "rows, n", rows, n); err != nil {
		return err
	}
	return checkArgs("Softmax", arg[T]{"x", x, rows * n, "[rows,n] " + shape(rows, n), false})
}

func checkSoftmaxBackward[T num.Float](dx, y, dy Tensor[T], rows, n int) error {
	const fn = "SoftmaxBackward"
	if err := checkDims(fn, "rows, n", rows, n); err != nil {
		return err
	}
	return checkArgs(fn,
		arg[T]{"y", y, rows * n, "[rows,n] " + shape(rows, n), false},
		arg[T]{"dy", dy, rows * n, "[rows,n] " + shape(rows, n), false},
		arg[T]{"dx", dx, rows * n, "[rows,n] " + shape(rows, n), true})
}

// checkSame checks that the first tensor is present and every other one
// has its length (optional ones may be absent).
func checkSame[T num.Float](fn string, first arg[T], rest ...arg[T]) error {
	if absent[T](first.t) {
		return fmt.Errorf("backend: %s: %s is missing: %w", fn, first.what, num.ErrShape)
	}
	n := first.t.Len()
	first.n, first.shape = n, "len("+first.what+")"
	args := []arg[T]{first}
	for _, a := range rest {
		a.n, a.shape = n, "len("+first.what+")"
		args = append(args, a)
	}
	return checkArgs(fn, args...)
}

// gemmOperand describes one matrix operand of a (batched) product.
type gemmOperand struct {
	what       string
	rows, cols int
	ld, stride int
}

// gemmSpan is the number of elements batch matrices of op need.
func (op gemmOperand) span(batch int) int {
	if op.rows == 0 || op.cols == 0 || batch == 0 {
		return 0
	}
	return (batch-1)*op.stride + (op.rows-1)*op.ld + op.cols
}

// checkGemm checks a batched row-major product; it returns done = true
// when there is nothing to compute (m or n or batch is 0).
func checkGemm[T num.Float](fn string, tA, tB bool, m, n, k int, a Tensor[T], lda, strideA int, b Tensor[T], ldb, strideB int, c Tensor[T], ldc, strideC, batch int) (done bool, err error) {
	if err := checkDims(fn, "m, n, k, batch", m, n, k, batch); err != nil {
		return false, err
	}
	if err := checkDims(fn, "strideA, strideB, strideC", strideA, strideB, strideC); err != nil {
		return false, err
	}
	if m == 0 || n == 0 || batch == 0 {
		return true, nil
	}
	ops := []struct {
		gemmOperand
		t Tensor[T]
	}{
		{gemmOperand{"a", m, k, lda, strideA}, a},
		{gemmOperand{"b", k, n, ldb, strideB}, b},
		{gemmOperand{"c", m, n, ldc, strideC}, c},
	}
	if tA {
		ops[0].rows, ops[0].cols = k, m
	}
	if tB {
		ops[1].rows, ops[1].cols = n, k
	}
	for _, op := range ops {
		if op.ld < max(1, op.cols) {
			return false, fmt.Errorf("backend: %s: ld%s = %d is less than the %d columns of %s as stored: %w", fn, op.what, op.ld, op.cols, op.what, num.ErrShape)
		}
		need := op.span(batch)
		if need == 0 {
			continue // k == 0: a and b are not read
		}
		if absent[T](op.t) {
			return false, fmt.Errorf("backend: %s: %s is missing: %w", fn, op.what, num.ErrShape)
		}
		if got := op.t.Len(); got < need {
			return false, fmt.Errorf("backend: %s: %s has %d elements, %d %d×%d matrices with row stride %d and batch stride %d need %d: %w",
				fn, op.what, got, batch, op.rows, op.cols, op.ld, op.stride, need, num.ErrShape)
		}
	}
	if batch > 1 {
		stacked := strideC >= (m-1)*ldc+n
		interleaved := strideC >= n && ldc >= (batch-1)*strideC+n
		if !stacked && !interleaved {
			return false, fmt.Errorf("backend: %s: the %d output matrices (ldc %d, strideC %d) overlap: %w", fn, batch, ldc, strideC, num.ErrShape)
		}
	}
	return false, nil
}

// kvHeads returns the number of key/value heads of d (0 means Heads).
func kvHeads(d attn.Dims) int {
	if d.KVHeads == 0 {
		return d.Heads
	}
	return d.KVHeads
}

// span returns one more than the largest index a [batch, rows, width]
// tensor with layout l addresses (0 if it addresses nothing).
func span(l attn.Layout, batch, rows, width int) int {
	if batch == 0 || rows == 0 || width == 0 {
		return 0
	}
	return (batch-1)*l.Batch + (rows-1)*l.Row + width
}

// checkStrided checks a [batch, rows, width] tensor held by t with layout l,
// as attn does. With output set, it also rejects layouts whose elements
// overlap (it accepts batches stacked or interleaved within rows).
func checkStrided[T num.Float](fn, what string, t Tensor[T], l attn.Layout, batch, rows, width int, output bool) error {
	if absent[T](t) {
		return fmt.Errorf("backend: %s: %s is missing: %w", fn, what, num.ErrShape)
	}
	if l.Batch < 0 || l.Row < 0 {
		return fmt.Errorf("backend: %s: %s layout %+v has a negative stride: %w", fn, what, l, num.ErrShape)
	}
	if rows > 1 && l.Row < width {
		return fmt.Errorf("backend: %s: %s layout row stride %d is less than the row width %d: %w", fn, what, l.Row, width, num.ErrShape)
	}
	if n, need := t.Len(), span(l, batch, rows, width); n < need {
		return fmt.Errorf("backend: %s: %s has %d elements, layout %+v of [%d %d %d] needs %d: %w", fn, what, n, l, batch, rows, width, need, num.ErrShape)
	}
	if output && batch > 1 && rows > 0 && width > 0 {
		stacked := l.Batch >= (rows-1)*l.Row+width
		interleaved := l.Batch >= width && (rows == 1 || l.Row >= (batch-1)*l.Batch+width)
		if !stacked && !interleaved {
			return fmt.Errorf("backend: %s: %s layout %+v of [%d %d %d] makes elements overlap: %w", fn, what, l, batch, rows, width, num.ErrShape)
		}
	}
	return nil
}

// checkAttention checks p's dimensions and input tensors (lengths and
// layouts, not values), as attn.Problem's check does.
func checkAttention[T num.Float](fn string, p *Attention[T]) error {
	d := p.Dims
	switch {
	case d.Batch < 0 || d.Lq < 0:
		return fmt.Errorf("backend: %s: Batch=%d, Lq=%d must not be negative: %w", fn, d.Batch, d.Lq, num.ErrShape)
	case d.Heads < 1 || d.Lk < 1 || d.C < 1 || d.Cv < 1:
		return fmt.Errorf("backend: %s: Heads=%d, Lk=%d, C=%d, Cv=%d must be positive: %w", fn, d.Heads, d.Lk, d.C, d.Cv, num.ErrShape)
	case d.KVHeads != 0 && d.KVHeads != 1 && d.KVHeads != d.Heads:
		return fmt.Errorf("backend: %s: KVHeads=%d, want 1 or Heads=%d: %w", fn, d.KVHeads, d.Heads, num.ErrShape)
	}
	kvh := kvHeads(d)
	if err := checkStrided[T](fn, "Q", p.Q, p.QL, d.Batch, d.Lq, d.Heads*d.C, false); err != nil {
		return err
	}
	if err := checkStrided[T](fn, "K", p.K, p.KL, d.Batch, d.Lk, kvh*d.C, false); err != nil {
		return err
	}
	if err := checkStrided[T](fn, "V", p.V, p.VL, d.Batch, d.Lk, kvh*d.Cv, false); err != nil {
		return err
	}
	return checkArgs(fn,
		arg[T]{"PairBias", p.PairBias, d.Heads * d.Lq * d.Lk, "[Heads,Lq,Lk] " + shape(d.Heads, d.Lq, d.Lk), true},
		arg[T]{"KeyMask", p.KeyMask, d.Batch * d.Lk, "[Batch,Lk] " + shape(d.Batch, d.Lk), true})
}

func checkAttentionForward[T num.Float](p *Attention[T], o Tensor[T], oL attn.Layout, lse Tensor[T]) error {
	const fn = "Attention"
	if p == nil {
		return fmt.Errorf("backend: %s: nil problem: %w", fn, num.ErrShape)
	}
	if err := checkAttention[T](fn, p); err != nil {
		return err
	}
	d := p.Dims
	if err := checkStrided[T](fn, "o", o, oL, d.Batch, d.Lq, d.Heads*d.Cv, true); err != nil {
		return err
	}
	return checkArgs(fn, arg[T]{"lse", lse, d.Batch * d.Heads * d.Lq, "[Batch,Heads,Lq] " + shape(d.Batch, d.Heads, d.Lq), true})
}

func checkAttentionBackward[T num.Float](p *Attention[T], o Tensor[T], oL attn.Layout, lse, do, dq, dk, dv, dPairBias Tensor[T]) error {
	const fn = "AttentionBackward"
	if p == nil {
		return fmt.Errorf("backend: %s: nil problem: %w", fn, num.ErrShape)
	}
	if err := checkAttention[T](fn, p); err != nil {
		return err
	}
	d := p.Dims
	kvh := kvHeads(d)
	if err := checkStrided[T](fn, "o", o, oL, d.Batch, d.Lq, d.Heads*d.Cv, false); err != nil {
		return err
	}
	if err := checkStrided[T](fn, "do", do, oL, d.Batch, d.Lq, d.Heads*d.Cv, false); err != nil {
		return err
	}
	if err := checkArgs(fn,
		arg[T]{"lse", lse, d.Batch * d.Heads * d.Lq, "[Batch,Heads,Lq] " + shape(d.Batch, d.Heads, d.Lq), false},
		arg[T]{"dPairBias", dPairBias, d.Heads * d.Lq * d.Lk, "[Heads,Lq,Lk] " + shape(d.Heads, d.Lq, d.Lk), true}); err != nil {
		return err
	}
	for _, g := range []struct {
		what  string
		t     Tensor[T]
		l     attn.Layout
		rows  int
		width int
	}{{"dq", dq, p.QL, d.Lq, d.Heads * d.C}, {"dk", dk, p.KL, d.Lk, kvh * d.C}, {"dv", dv, p.VL, d.Lk, kvh * d.Cv}} {
		if absent[T](g.t) {
			continue
		}
		if err := checkStrided[T](fn, g.what, g.t, g.l, d.Batch, g.rows, g.width, true); err != nil {
			return err
		}
	}
	return nil
}

// checkFrames checks the arguments of a rigid-frame kernel: n ≥ 0 and each
// tensor holding per·n elements.
func checkFrames[T num.Float](fn string, n int, args ...arg[T]) error {
	if err := checkDims(fn, "n", n); err != nil {
		return err
	}
	for i := range args {
		per := args[i].n
		args[i].n = per * n
		args[i].shape = fmt.Sprintf("[n,%d] [%d %d]", per, n, per)
	}
	return checkArgs(fn, args...)
}

func checkMode(fn string, mode FrameMap) error {
	if mode < Apply || mode > InvertApplyVec {
		return fmt.Errorf("backend: %s: unknown mode %d: %w", fn, int(mode), ErrUnsupported)
	}
	return nil
}

func checkRigidMap[T num.Float](mode FrameMap, dst, frames, p Tensor[T], n, m int) error {
	const fn = "RigidMap"
	if err := checkMode(fn, mode); err != nil {
		return err
	}
	if err := checkDims(fn, "n, m", n, m); err != nil {
		return err
	}
	s := fmt.Sprintf("[n,m,3] [%d %d 3]", n, m)
	return checkArgs(fn,
		arg[T]{"frames", frames, 12 * n, fmt.Sprintf("[n,12] [%d 12]", n), false},
		arg[T]{"p", p, 3 * n * m, s, false},
		arg[T]{"dst", dst, 3 * n * m, s, false})
}

func checkRigidMapBackward[T num.Float](mode FrameMap, dFrames, dp, frames, p, dy Tensor[T], n, m int) error {
	const fn = "RigidMapBackward"
	if err := checkMode(fn, mode); err != nil {
		return err
	}
	if err := checkDims(fn, "n, m", n, m); err != nil {
		return err
	}
	s := fmt.Sprintf("[n,m,3] [%d %d 3]", n, m)
	f := fmt.Sprintf("[n,12] [%d 12]", n)
	return checkArgs(fn,
		arg[T]{"frames", frames, 12 * n, f, false},
		arg[T]{"p", p, 3 * n * m, s, false},
		arg[T]{"dy", dy, 3 * n * m, s, false},
		arg[T]{"dFrames", dFrames, 12 * n, f, true},
		arg[T]{"dp", dp, 3 * n * m, s, true})
}
