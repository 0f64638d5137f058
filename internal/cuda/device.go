//go:build foldkit_cuda || foldkit_cudaemu

package cuda

import (
	"fmt"
	"sync"
	"unsafe"
)

// Options configure Open. The zero value is the usual choice.
type Options struct {
	// CUBLAS, if not empty, is the file name or path of the cuBLAS library
	// to load instead of trying libcublas.so.13, .12 and .11 in turn.
	CUBLAS string

	// SyncEachCall makes every call wait for the stream before it returns,
	// so that an error from a kernel is reported by the call that launched
	// it. It is for debugging: it removes the overlap of host and device.
	SyncEachCall bool
}

// Device is one GPU: its primary context, one stream, the loaded kernels, a
// cuBLAS handle and a caching allocator. All work is queued on the stream in
// call order. A Device is safe for concurrent use.
type Device struct {
	mu      sync.Mutex
	ordinal int
	name    string
	cc      [2]int // compute capability
	drv     driver // the CUDA driver's state (or the emulator's)
	alloc   allocator
	opts    Options
	last    string // the last operation queued, for asynchronous errors
	closed  bool
}

// Name returns the GPU's name, for example "NVIDIA H100 80GB HBM3".
func (d *Device) Name() string { return d.name }

// Ordinal returns the device number given to Open.
func (d *Device) Ordinal() int { return d.ordinal }

// ComputeCapability returns the GPU's compute capability (9, 0 for Hopper).
func (d *Device) ComputeCapability() (major, minor int) { return d.cc[0], d.cc[1] }

// BLASVersion returns the version of the cuBLAS library loaded (for example
// 130000 for 13.0.0) and its file name.
func (d *Device) BLASVersion() (int, string) { return d.blasInfo() }

// String describes the device: "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, cuBLAS 130000)".
func (d *Device) String() string {
	v, _ := d.blasInfo()
	return fmt.Sprintf("cuda:%d %s (sm_%d%d, cuBLAS %d)", d.ordinal, d.name, d.cc[0], d.cc[1], v)
}

// Sync waits until all work queued on d has finished and reports the first
// error from it.
func (d *Device) Sync() error {
	return d.do("Sync", func() error { return nil }, true)
}

// MemStats are the caching allocator's counters, in bytes.
type MemStats struct {
	InUse   int64 // held by live buffers (size-class rounded)
	Cached  int64 // freed blocks kept for reuse
	Peak    int64 // largest InUse so far
	Allocs  int64 // cuMemAlloc calls made
	Reuses  int64 // allocations served from the cache
	Trimmed int64 // cached bytes returned to the driver
}

// MemStats returns the allocator's counters.
func (d *Device) MemStats() MemStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.alloc.stats
}

// Trim returns every cached block to the driver.
func (d *Device) Trim() error {
	return d.do("Trim", func() error {
		if err := d.syncLocked(); err != nil {
			return err
		}
		d.alloc.trim(d)
		return nil
	}, false)
}

// do runs f with d's lock held and its context current on a locked OS
// thread. what names the operation for asynchronous errors; with wait (or
// Options.SyncEachCall) do waits for the stream after f.
func (d *Device) do(what string, f func() error, wait bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return d.lockedContext(func() error {
		if what != "Sync" {
			d.last = what // launch replaces it with the kernel's name
		}
		if err := f(); err != nil {
			return err
		}
		if wait || d.opts.SyncEachCall {
			return d.syncLocked()
		}
		return nil
	})
}

// launch queues kernel name (with the "_f32"/"_f64" and other suffixes
// already applied) on d's stream. Every argument must be one of uint64,
// int64, int, float64 or uintptr (a device address); each is passed as 8
// bytes. d.mu is held and the context current.
func (d *Device) launch(name string, grid, block [3]int, shared int, args ...any) error {
	if !d.hasKernel(name) {
		return fmt.Errorf("cuda: kernel %s is not in the loaded PTX", name)
	}
	for i, g := range grid {
		if g <= 0 {
			return nil // nothing to do
		}
		if (i > 0 && g > 65535) || g > 1<<31-1 {
			return fmt.Errorf("cuda: %s: grid %v is too large", name, grid)
		}
	}
	vals := make([]uint64, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case uint64:
			vals[i] = v
		case int64:
			vals[i] = uint64(v)
		case int:
			vals[i] = uint64(int64(v))
		case float64:
			vals[i] = *(*uint64)(unsafe.Pointer(&v))
		case uintptr:
			vals[i] = uint64(v)
		default:
			return fmt.Errorf("cuda: %s: argument %d has type %T, which is not 8 bytes wide", name, i, a)
		}
	}
	if err := d.launchRaw(name, grid, block, shared, vals); err != nil {
		return callErr(fmt.Sprintf("cuLaunchKernel(%s grid=%v block=%v shared=%d)", name, grid, block, shared), err)
	}
	d.last = name
	return nil
}
