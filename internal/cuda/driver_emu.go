//go:build foldkit_cudaemu

package cuda

/*
#cgo CXXFLAGS: -std=c++20 -O2 -w
#cgo LDFLAGS: -pthread
#include <stdlib.h>

int fk_emu_has(const char *name);
int fk_emu_launch(const char *name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                  const unsigned long long *vals, int n);
unsigned long long fk_emu_malloc(unsigned long long bytes);
void fk_emu_free(unsigned long long p);
void fk_emu_upload(unsigned long long dst, const void *src, unsigned long long bytes);
void fk_emu_download(void *dst, unsigned long long src, unsigned long long bytes);
void fk_emu_copy(unsigned long long dst, unsigned long long src, unsigned long long bytes);
void fk_emu_zero(unsigned long long dst, unsigned long long bytes);
void fk_emu_sgemm(int ta, int tb, int m, int n, int k, float alpha, unsigned long long a, int lda, long long sa,
                  unsigned long long b, int ldb, long long sb, float beta, unsigned long long c, int ldc, long long sc,
                  int batch, int math);
void fk_emu_dgemm(int ta, int tb, int m, int n, int k, double alpha, unsigned long long a, int lda, long long sa,
                  unsigned long long b, int ldb, long long sb, double beta, unsigned long long c, int ldc, long long sc,
                  int batch);
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// This file replaces the CUDA driver by an emulation on the CPU (build tag
// foldkit_cudaemu): device memory is host memory from malloc, a kernel
// launch runs the kernel's CUDA C source, compiled as C++ against
// kernels/emu/emu.h, with one OS thread per CUDA thread, and cuBLAS is a
// plain loop (rounding its inputs to TF32 or BF16 for those Math modes).
// Everything above the driver — buffers, the allocator, the launchers with
// their grids and argument lists, package backend — is the code that runs
// on a GPU, so
//
//	go test -tags foldkit_cudaemu ./backend/...
//
// checks it without one. Work runs synchronously; there is no stream.

// emulated reports whether kernels run on the CPU emulation.
const emulated = true

// driver is empty: the emulation has no state.
type driver struct{}

// Open returns the emulated device. ordinal must be 0.
func Open(ordinal int, opts Options) (*Device, error) {
	if ordinal != 0 {
		return nil, fmt.Errorf("cuda: device %d does not exist (1 emulated device)", ordinal)
	}
	return &Device{ordinal: 0, name: "CPU emulation", cc: [2]int{8, 0}, opts: opts}, nil
}

// Close frees the cached memory. Close is idempotent.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.alloc.trim(d)
		d.closed = true
	}
	return nil
}

func (d *Device) lockedContext(f func() error) error { return f() }
func (d *Device) syncLocked() error                  { return nil }
func (d *Device) blasInfo() (int, string)            { return 0, "emulated cuBLAS" }

func (d *Device) hasKernel(name string) bool {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return C.fk_emu_has(cn) != 0
}

// Kernels returns the names of the emulated kernels' that Open knows of;
// the emulation has no list, so it returns nil.
func (d *Device) Kernels() []string { return nil }

func (d *Device) launchRaw(name string, grid, block [3]int, shared int, vals []uint64) error {
	if shared != 0 {
		return errors.New("dynamic shared memory is not emulated")
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var p *C.ulonglong
	if len(vals) > 0 {
		p = (*C.ulonglong)(unsafe.Pointer(&vals[0]))
	}
	switch C.fk_emu_launch(cn, C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]), C.uint(block[0]), C.uint(block[1]), C.uint(block[2]), p, C.int(len(vals))) {
	case 0:
		return nil
	case 1:
		return errors.New("unknown kernel")
	default:
		return fmt.Errorf("wrong number of arguments (%d)", len(vals))
	}
}

func (d *Device) memAlloc(bytes int64) (uintptr, error) {
	p := C.fk_emu_malloc(C.ulonglong(bytes))
	if p == 0 {
		return 0, errors.New("out of host memory")
	}
	return uintptr(p), nil
}

func (d *Device) memFree(p uintptr) { C.fk_emu_free(C.ulonglong(p)) }

func isOOM(error) bool { return false }

func (d *Device) upload(dst uintptr, src unsafe.Pointer, bytes int64) error {
	C.fk_emu_upload(C.ulonglong(dst), src, C.ulonglong(bytes))
	return nil
}

func (d *Device) download(dst unsafe.Pointer, src uintptr, bytes int64) error {
	C.fk_emu_download(dst, C.ulonglong(src), C.ulonglong(bytes))
	return nil
}

func (d *Device) copyDtoD(dst, src uintptr, bytes int64) error {
	C.fk_emu_copy(C.ulonglong(dst), C.ulonglong(src), C.ulonglong(bytes))
	return nil
}

func (d *Device) memsetD32(dst uintptr, words int64) error {
	C.fk_emu_zero(C.ulonglong(dst), C.ulonglong(4*words))
	return nil
}

// gemmRaw runs the column-major strided batched product as cuBLAS defines
// it, in a plain loop.
func gemmRaw[T interface{ ~float32 | ~float64 }](d *Device, math Math, ta, tb bool, m, n, k int, alpha T, a uintptr, lda int, sa int64, b uintptr, ldb int, sb int64, beta T, c uintptr, ldc int, sc int64, batch int) error {
	if !dimOK(m, n, k, lda, ldb, ldc, batch) {
		return &Error{Call: "cublasGemmStridedBatched", Err: errGemmDims}
	}
	ci := func(t bool) C.int {
		if t {
			return 1
		}
		return 0
	}
	var z T
	if unsafe.Sizeof(z) == 4 {
		C.fk_emu_sgemm(ci(ta), ci(tb), C.int(m), C.int(n), C.int(k), C.float(alpha), C.ulonglong(a), C.int(lda), C.longlong(sa),
			C.ulonglong(b), C.int(ldb), C.longlong(sb), C.float(beta), C.ulonglong(c), C.int(ldc), C.longlong(sc), C.int(batch), C.int(math))
		return nil
	}
	C.fk_emu_dgemm(ci(ta), ci(tb), C.int(m), C.int(n), C.int(k), C.double(alpha), C.ulonglong(a), C.int(lda), C.longlong(sa),
		C.ulonglong(b), C.int(ldb), C.longlong(sb), C.double(beta), C.ulonglong(c), C.int(ldc), C.longlong(sc), C.int(batch))
	return nil
}
