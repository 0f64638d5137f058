//go:build foldkit_cuda || foldkit_cudaemu

package cuda

import (
	"fmt"
	"unsafe"

	"github.com/foldkit/foldkit/internal/num"
)

// Buffer is n elements of type T in the device memory of one Device: an
// allocation from the Device's caching allocator, or a view of part of one
// (View). A Buffer's methods queue their work on the Device's stream.
//
// Buffers are not freed by the garbage collector: call Free. Freeing a
// Buffer frees its views' memory too; using a view afterwards is an error
// the device cannot detect.
type Buffer[T num.Float] struct {
	d     *Device
	ptr   uintptr
	n     int
	class int64 // bytes reserved (0 for a view or an empty buffer)
	freed bool
}

// elemSize is the size of T in bytes.
func elemSize[T num.Float]() int {
	var z T
	return int(unsafe.Sizeof(z))
}

// suffix is the kernel-name suffix of T: "_f32" or "_f64".
func suffix[T num.Float]() string {
	if elemSize[T]() == 4 {
		return "_f32"
	}
	return "_f64"
}

// NewBuffer allocates a Buffer of n elements set to zero.
func NewBuffer[T num.Float](d *Device, n int) (*Buffer[T], error) {
	b, err := alloc[T](d, n)
	if err != nil {
		return nil, err
	}
	if err := b.Zero(); err != nil {
		b.Free()
		return nil, err
	}
	return b, nil
}

// Upload allocates a Buffer holding a copy of x.
func Upload[T num.Float](d *Device, x []T) (*Buffer[T], error) {
	b, err := alloc[T](d, len(x))
	if err != nil {
		return nil, err
	}
	if err := b.Upload(x); err != nil {
		b.Free()
		return nil, err
	}
	return b, nil
}

// alloc returns an uninitialised Buffer of n elements.
func alloc[T num.Float](d *Device, n int) (*Buffer[T], error) {
	if n < 0 {
		return nil, fmt.Errorf("cuda: buffer of %d elements: %w", n, num.ErrShape)
	}
	b := &Buffer[T]{d: d, n: n}
	err := d.do("alloc", func() error {
		var err error
		b.ptr, b.class, err = d.alloc.get(d, int64(n)*int64(elemSize[T]()))
		return err
	}, false)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Len returns the number of elements.
func (b *Buffer[T]) Len() int { return b.n }

// Device returns the Device that holds b.
func (b *Buffer[T]) Device() *Device { return b.d }

// Ptr returns the device address of b's first element.
func (b *Buffer[T]) Ptr() uintptr { return b.ptr }

// ptrAt returns the device address of element i.
func (b *Buffer[T]) ptrAt(i int) uintptr {
	return b.ptr + uintptr(i*elemSize[T]())
}

// View returns a Buffer of the n elements of b starting at off, sharing b's
// memory. Freeing a view does nothing.
func (b *Buffer[T]) View(off, n int) (*Buffer[T], error) {
	if off < 0 || n < 0 || off+n > b.n {
		return nil, fmt.Errorf("cuda: view [%d:%d] of a buffer of %d elements: %w", off, off+n, b.n, num.ErrShape)
	}
	return &Buffer[T]{d: b.d, ptr: b.ptrAt(off), n: n}, nil
}

// Free returns b's memory to the Device's cache. Free of a view, of an
// already freed Buffer or of a nil Buffer does nothing.
func (b *Buffer[T]) Free() {
	if b == nil || b.freed || b.class == 0 {
		return
	}
	b.freed = true
	d := b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.alloc.put(b.ptr, b.class)
}

// Upload copies src (len(src) == b.Len()) from the host into b.
func (b *Buffer[T]) Upload(src []T) error {
	if len(src) != b.n {
		return fmt.Errorf("cuda: upload of %d elements into a buffer of %d: %w", len(src), b.n, num.ErrShape)
	}
	if b.n == 0 {
		return nil
	}
	bytes := int64(b.n * elemSize[T]())
	return b.d.do("upload", func() error {
		return b.d.upload(b.ptr, unsafe.Pointer(&src[0]), bytes)
	}, false)
}

// Download waits for the work queued before it and copies b into dst
// (len(dst) == b.Len()) on the host.
func (b *Buffer[T]) Download(dst []T) error {
	if len(dst) != b.n {
		return fmt.Errorf("cuda: download of a buffer of %d elements into %d: %w", b.n, len(dst), num.ErrShape)
	}
	if b.n == 0 {
		return nil
	}
	bytes := int64(b.n * elemSize[T]())
	return b.d.do("download", func() error {
		return b.d.download(unsafe.Pointer(&dst[0]), b.ptr, bytes)
	}, true)
}

// CopyFrom copies src (same length, same Device) into b on the device.
func (b *Buffer[T]) CopyFrom(src *Buffer[T]) error {
	if src.n != b.n {
		return fmt.Errorf("cuda: copy of a buffer of %d elements into one of %d: %w", src.n, b.n, num.ErrShape)
	}
	if src.d != b.d {
		return fmt.Errorf("cuda: copy between buffers of devices %d and %d", src.d.ordinal, b.d.ordinal)
	}
	if b.n == 0 {
		return nil
	}
	bytes := int64(b.n * elemSize[T]())
	return b.d.do("copy", func() error {
		return b.d.copyDtoD(b.ptr, src.ptr, bytes)
	}, false)
}

// Zero sets every element of b to +0.
func (b *Buffer[T]) Zero() error {
	if b.n == 0 {
		return nil
	}
	words := int64(b.n * elemSize[T]() / 4)
	return b.d.do("zero", func() error {
		return b.d.memsetD32(b.ptr, words)
	}, false)
}
