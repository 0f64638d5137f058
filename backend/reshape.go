package backend

import (
	"fmt"
	"unsafe"

	"github.com/foldkit/foldkit/internal/num"
)

// The checks of Transpose, ScaleRows and DivRows, shared by the backends.

func checkTranspose[T num.Float](dst, src Tensor[T], batch, rows, cols, block int) error {
	if err := checkDims("Transpose", "batch, rows, cols, block", batch, rows, cols, block); err != nil {
		return err
	}
	n := batch * rows * cols * block
	sh := shape(batch, rows, cols, block)
	return checkArgs("Transpose", arg[T]{"src", src, n, sh, false}, arg[T]{"dst", dst, n, sh, false})
}

func checkRows[T num.Float](fn string, y, x, s Tensor[T], rows, c int) error {
	if err := checkDims(fn, "rows, c", rows, c); err != nil {
		return err
	}
	return checkArgs(fn, arg[T]{"x", x, rows * c, shape(rows, c), false}, arg[T]{"y", y, rows * c, shape(rows, c), false},
		arg[T]{"s", s, rows, shape(rows), false})
}

func (cpu[T]) Transpose(dst, src Tensor[T], batch, rows, cols, block int) error {
	if err := checkTranspose(dst, src, batch, rows, cols, block); err != nil {
		return err
	}
	h, err := hosts[T]("Transpose", dst, src)
	if err != nil {
		return err
	}
	d, s := h[0], h[1]
	if len(d) > 0 && overlaps(d, s) {
		return fmt.Errorf("backend: Transpose: dst overlaps src: %w", num.ErrShape)
	}
	mat := rows * cols * block
	for b := 0; b < batch; b++ {
		sb, db := s[b*mat:(b+1)*mat], d[b*mat:(b+1)*mat]
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				copy(db[(j*rows+i)*block:(j*rows+i+1)*block], sb[(i*cols+j)*block:(i*cols+j+1)*block])
			}
		}
	}
	return nil
}

// overlaps reports whether two non-empty slices share memory.
func overlaps[T any](a, b []T) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, a1 := &a[0], &a[len(a)-1]
	b0, b1 := &b[0], &b[len(b)-1]
	return !(ptrLess(a1, b0) || ptrLess(b1, a0))
}

func (cpu[T]) ScaleRows(y, x, s Tensor[T], rows, c int) error {
	if err := checkRows("ScaleRows", y, x, s, rows, c); err != nil {
		return err
	}
	h, err := hosts[T]("ScaleRows", y, x, s)
	if err != nil {
		return err
	}
	ys, xs, ss := h[0], h[1], h[2]
	for r := 0; r < rows; r++ {
		v := ss[r]
		for i := r * c; i < (r+1)*c; i++ {
			ys[i] = xs[i] * v
		}
	}
	return nil
}

func (cpu[T]) DivRows(y, x, s Tensor[T], eps T, rows, c int) error {
	if err := checkRows("DivRows", y, x, s, rows, c); err != nil {
		return err
	}
	h, err := hosts[T]("DivRows", y, x, s)
	if err != nil {
		return err
	}
	ys, xs, ss := h[0], h[1], h[2]
	for r := 0; r < rows; r++ {
		v := ss[r] + eps
		for i := r * c; i < (r+1)*c; i++ {
			ys[i] = xs[i] / v
		}
	}
	return nil
}

// ptrLess reports whether p lies at a lower address than q.
func ptrLess[T any](p, q *T) bool {
	return uintptr(unsafe.Pointer(p)) < uintptr(unsafe.Pointer(q))
}
