//go:build foldkit_cuda || foldkit_cudaemu

package backend

import (
	"fmt"
	"unsafe"

	"github.com/foldkit/foldkit/internal/cuda"
	"github.com/foldkit/foldkit/internal/num"
)

func (g *gpu[T]) Transpose(dst, src Tensor[T], batch, rows, cols, block int) error {
	if err := checkTranspose(dst, src, batch, rows, cols, block); err != nil {
		return err
	}
	s, err := g.bufs("Transpose", dst, src)
	if err != nil {
		return err
	}
	if n := dst.Len(); n > 0 {
		size := uintptr(n) * unsafe.Sizeof(T(0))
		d0, s0 := s[0].Ptr(), s[1].Ptr()
		if d0 < s0+size && s0 < d0+size {
			return fmt.Errorf("backend: Transpose: dst overlaps src: %w", num.ErrShape)
		}
	}
	return cuda.Transpose(g.d, s[0], s[1], batch, rows, cols, block)
}

func (g *gpu[T]) ScaleRows(y, x, s Tensor[T], rows, c int) error {
	if err := checkRows("ScaleRows", y, x, s, rows, c); err != nil {
		return err
	}
	b, err := g.bufs("ScaleRows", y, x, s)
	if err != nil {
		return err
	}
	return cuda.ScaleRows(g.d, b[0], b[1], b[2], rows, c)
}

func (g *gpu[T]) DivRows(y, x, s Tensor[T], eps T, rows, c int) error {
	if err := checkRows("DivRows", y, x, s, rows, c); err != nil {
		return err
	}
	b, err := g.bufs("DivRows", y, x, s)
	if err != nil {
		return err
	}
	return cuda.DivRows(g.d, b[0], b[1], b[2], eps, rows, c)
}
