//go:build foldkit_cuda || foldkit_cudaemu

package cuda

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
)

// The launchers in this package queue one kernel (or a few) on the
// Device's stream. They check that their buffers belong to the Device and
// are long enough for the dimensions given, and return errors wrapping
// num.ErrShape otherwise; the finer checks (layouts, overlaps, values) are
// package backend's, which calls them.

// ptr returns b's device address, or 0 for a nil buffer.
func ptr[T num.Float](b *Buffer[T]) uintptr {
	if b == nil {
		return 0
	}
	return b.ptr
}

// need checks that b (named what) is on d and holds at least n elements;
// a nil b is accepted when optional.
func need[T num.Float](d *Device, what string, b *Buffer[T], n int, optional bool) error {
	if b == nil {
		if optional {
			return nil
		}
		return fmt.Errorf("cuda: %s is nil: %w", what, num.ErrShape)
	}
	if b.d != d {
		return fmt.Errorf("cuda: %s is a buffer of device %d, not %d", what, b.d.ordinal, d.ordinal)
	}
	if b.n < n {
		return fmt.Errorf("cuda: %s has %d elements, want at least %d: %w", what, b.n, n, num.ErrShape)
	}
	return nil
}

// elementwiseGrid is the launch shape of the grid-stride kernels: 256
// threads a block and enough blocks to fill a large GPU (at most 8192; the
// kernels loop over the rest).
func elementwiseGrid(n int) (grid, block [3]int) {
	return [3]int{min((n+255)/256, 8192), 1, 1}, [3]int{256, 1, 1}
}

// rowsGrid is the launch shape of the row kernels: one warp a row, 8 rows a
// block.
func rowsGrid(rows int) (grid, block [3]int) {
	return [3]int{(rows + 7) / 8, 1, 1}, [3]int{256, 1, 1}
}

// scratch allocates n elements of T for the duration of one call; give it
// back with d.alloc.put when the call has queued its kernels (the stream
// orders later uses of the block after them). d.mu is held.
func scratch[T num.Float](d *Device, n int) (uintptr, int64, error) {
	return d.alloc.get(d, int64(n)*int64(elemSize[T]()))
}

// elementwise launches kernel name+suffix over n elements with args.
func elementwise[T num.Float](d *Device, name string, n int, args ...any) error {
	if n == 0 {
		return nil
	}
	grid, block := elementwiseGrid(n)
	k := name + suffix[T]()
	return d.do(k, func() error { return d.launch(k, grid, block, 0, append(args, n)...) }, false)
}

// Sigmoid queues y = sigmoid(x) elementwise (nn.Sigmoid). y may be x.
func Sigmoid[T num.Float](d *Device, y, x *Buffer[T]) error {
	if err := same[T](d, x.Len(), "x", x, "y", y); err != nil {
		return err
	}
	return elementwise[T](d, "fk_sigmoid", x.n, y.ptr, x.ptr)
}

// SigmoidBackward queues dx += dy·y·(1 − y) (nn.SigmoidBackward).
func SigmoidBackward[T num.Float](d *Device, dx, y, dy *Buffer[T]) error {
	if err := same[T](d, y.Len(), "y", y, "dx", dx, "dy", dy); err != nil {
		return err
	}
	return elementwise[T](d, "fk_sigmoid_bwd", y.n, dx.ptr, y.ptr, dy.ptr)
}

// ReLU queues y = max(x, 0) (nn.ReLU). y may be x.
func ReLU[T num.Float](d *Device, y, x *Buffer[T]) error {
	if err := same[T](d, x.Len(), "x", x, "y", y); err != nil {
		return err
	}
	return elementwise[T](d, "fk_relu", x.n, y.ptr, x.ptr)
}

// ReLUBackward queues dx += dy where x > 0 (nn.ReLUBackward).
func ReLUBackward[T num.Float](d *Device, dx, x, dy *Buffer[T]) error {
	if err := same[T](d, x.Len(), "x", x, "dx", dx, "dy", dy); err != nil {
		return err
	}
	return elementwise[T](d, "fk_relu_bwd", x.n, dx.ptr, x.ptr, dy.ptr)
}

// Mul queues y = a·b elementwise (nn.Mul).
func Mul[T num.Float](d *Device, y, a, b *Buffer[T]) error {
	if err := same[T](d, a.Len(), "a", a, "b", b, "y", y); err != nil {
		return err
	}
	return elementwise[T](d, "fk_mul", a.n, y.ptr, a.ptr, b.ptr)
}

// MulAdd queues y += a·b elementwise (nn.MulAdd).
func MulAdd[T num.Float](d *Device, y, a, b *Buffer[T]) error {
	if err := same[T](d, a.Len(), "a", a, "b", b, "y", y); err != nil {
		return err
	}
	return elementwise[T](d, "fk_mul_add", a.n, y.ptr, a.ptr, b.ptr)
}

// Axpby queues y = alpha·y + x (alpha = 1: y += x).
func Axpby[T num.Float](d *Device, y, x *Buffer[T], alpha T) error {
	if err := same[T](d, x.Len(), "x", x, "y", y); err != nil {
		return err
	}
	return elementwise[T](d, "fk_axpby", x.n, y.ptr, x.ptr, float64(alpha))
}

// Gate queues y = sigmoid(g)·x elementwise.
func Gate[T num.Float](d *Device, y, g, x *Buffer[T]) error {
	if err := same[T](d, x.Len(), "x", x, "g", g, "y", y); err != nil {
		return err
	}
	return elementwise[T](d, "fk_gate", x.n, y.ptr, g.ptr, x.ptr)
}

// GateBackward queues dx += dy·sigmoid(g) and dg += dy·x·s·(1 − s); dg or
// dx may be nil.
func GateBackward[T num.Float](d *Device, dg, dx, g, x, dy *Buffer[T]) error {
	n := x.Len()
	if err := same[T](d, n, "x", x, "g", g, "dy", dy); err != nil {
		return err
	}
	if err := need(d, "dg", dg, n, true); err != nil {
		return err
	}
	if err := need(d, "dx", dx, n, true); err != nil {
		return err
	}
	return elementwise[T](d, "fk_gate_bwd", n, ptr(dg), ptr(dx), g.ptr, x.ptr, dy.ptr)
}

// same checks that every named buffer (what, buf pairs) is non-nil, on d
// and holds n elements.
func same[T num.Float](d *Device, n int, pairs ...any) error {
	for i := 0; i < len(pairs); i += 2 {
		what := pairs[i].(string)
		b := pairs[i+1].(*Buffer[T])
		if err := need(d, what, b, n, false); err != nil {
			return err
		}
		if b.n != n {
			return fmt.Errorf("cuda: %s has %d elements, want %d: %w", what, b.n, n, num.ErrShape)
		}
	}
	return nil
}

// BiasRows queues y[r, :] = b for each of rows rows of y [rows, n].
func BiasRows[T num.Float](d *Device, y, b *Buffer[T], rows, n int) error {
	if err := need(d, "y", y, rows*n, false); err != nil {
		return err
	}
	if err := need(d, "b", b, n, false); err != nil {
		return err
	}
	if rows == 0 || n == 0 {
		return nil
	}
	grid, block := elementwiseGrid(rows * n)
	k := "fk_bias_rows" + suffix[T]()
	return d.do(k, func() error { return d.launch(k, grid, block, 0, y.ptr, b.ptr, rows, n) }, false)
}

// colSumChunk is the number of rows each block of the first column-sum
// pass adds up.
func colSumChunk(rows int) int { return max(256, (rows+65534)/65535) }

// colSum queues dst[j] += Σ_r a[r, j] (mode 0) or Σ_r a[r, j]·(x[r, j] −
// mean[r])·rstd[r] (mode 1) over a [rows, n]. d.mu is held and the context
// current.
func colSum[T num.Float](d *Device, dst, a, x, mean, rstd uintptr, rows, n int, mode int) error {
	if rows == 0 || n == 0 {
		return nil
	}
	chunk := colSumChunk(rows)
	nch := (rows + chunk - 1) / chunk
	part, class, err := scratch[T](d, nch*n)
	if err != nil {
		return err
	}
	defer d.alloc.put(part, class)
	sfx := suffix[T]()
	if err := d.launch("fk_colsum_part"+sfx, [3]int{(n + 31) / 32, nch, 1}, [3]int{32, 8, 1}, 0,
		part, a, x, mean, rstd, rows, n, chunk, mode); err != nil {
		return err
	}
	grid, block := elementwiseGrid(n)
	return d.launch("fk_colsum_finish"+sfx, grid, block, 0, dst, part, nch, n)
}

// ColSum queues dst[j] += Σ_r a[r, j] for a [rows, n] (the bias gradient
// of a linear layer), summing in fixed chunks of rows so that the result is
// deterministic.
func ColSum[T num.Float](d *Device, dst, a *Buffer[T], rows, n int) error {
	if err := need(d, "dst", dst, n, false); err != nil {
		return err
	}
	if err := need(d, "a", a, rows*n, false); err != nil {
		return err
	}
	return d.do("colsum", func() error {
		return colSum[T](d, dst.ptr, a.ptr, 0, 0, 0, rows, n, 0)
	}, false)
}

// Transpose queues dst[b, j, i, :] = src[b, i, j, :] for src [batch, rows,
// cols, block] (package backend checks that dst does not overlap src).
func Transpose[T num.Float](d *Device, dst, src *Buffer[T], batch, rows, cols, block int) error {
	n := batch * rows * cols * block
	if err := same[T](d, n, "src", src, "dst", dst); err != nil {
		return err
	}
	return elementwise[T](d, "fk_transpose", n, dst.ptr, src.ptr, rows, cols, block)
}

// ScaleRows queues y[r, :] = x[r, :]·s[r] over [rows, c]. y may be x.
func ScaleRows[T num.Float](d *Device, y, x, s *Buffer[T], rows, c int) error {
	return scaleRows(d, y, x, s, 0, 0, rows, c)
}

// DivRows queues y[r, :] = x[r, :]/(s[r] + eps) over [rows, c]. y may be x.
func DivRows[T num.Float](d *Device, y, x, s *Buffer[T], eps T, rows, c int) error {
	return scaleRows(d, y, x, s, eps, 1, rows, c)
}

func scaleRows[T num.Float](d *Device, y, x, s *Buffer[T], eps T, div, rows, c int) error {
	if err := same[T](d, rows*c, "x", x, "y", y); err != nil {
		return err
	}
	if err := same[T](d, rows, "s", s); err != nil {
		return err
	}
	return elementwise[T](d, "fk_scale_rows", rows*c, y.ptr, x.ptr, s.ptr, float64(eps), div, c)
}
