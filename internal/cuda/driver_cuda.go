//go:build foldkit_cuda && !foldkit_cudaemu

package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"gorgonia.org/cu"
)

// emulated reports whether kernels run on the CPU emulation.
const emulated = false

// driver is the CUDA driver state of a Device.
type driver struct {
	dev    cu.Device
	ctx    cu.CUContext
	stream cu.Stream
	mods   []cu.Module
	fns    map[string]cu.Function
	blas   *cublas
}

// Open opens GPU ordinal (0 for the first): it retains the device's primary
// context, creates a stream, loads the kernels' PTX (JIT-compiling it for
// this GPU) and cuBLAS. The caller must Close the Device.
func Open(ordinal int, opts Options) (*Device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, callErr("cuDeviceGetCount", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: device %d does not exist (%d devices)", ordinal, n)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, callErr(fmt.Sprintf("cuDeviceGet(%d)", ordinal), err)
	}
	d := &Device{ordinal: ordinal, opts: opts, drv: driver{dev: dev, fns: make(map[string]cu.Function)}}
	if d.name, err = dev.Name(); err != nil {
		return nil, callErr("cuDeviceGetName", err)
	}
	if d.cc[0], d.cc[1], err = dev.ComputeCapability(); err != nil {
		return nil, callErr("cuDeviceGetAttribute(compute capability)", err)
	}
	if d.cc[0] < 8 {
		return nil, fmt.Errorf("cuda: %s has compute capability %d.%d; foldkit's kernels need 8.0 or newer", d.name, d.cc[0], d.cc[1])
	}
	if d.drv.ctx, err = dev.RetainPrimaryCtx(); err != nil {
		return nil, callErr("cuDevicePrimaryCtxRetain", err)
	}
	err = d.lockedContext(func() error {
		var err error
		if d.drv.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
			return callErr("cuStreamCreate", err)
		}
		// cuBLAS first: a missing library fails before the JIT compilation.
		if d.drv.blas, err = openCUBLAS(opts.CUBLAS, d.drv.stream); err != nil {
			return err
		}
		return d.loadModules()
	})
	if err != nil {
		d.release()
		return nil, err
	}
	return d, nil
}

// Close waits for queued work, frees the cached memory, the modules, the
// cuBLAS handle and the stream, and releases the primary context. Buffers
// still allocated on d must not be used afterwards. Close is idempotent.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	var err error
	_ = d.lockedContext(func() error {
		err = d.syncLocked()
		return nil
	})
	d.release()
	d.closed = true
	return err
}

// release frees what Open acquired, ignoring errors (used by Open on
// failure and by Close).
func (d *Device) release() {
	_ = d.lockedContext(func() error {
		if d.drv.blas != nil {
			d.drv.blas.close()
			d.drv.blas = nil
		}
		d.alloc.trim(d)
		for _, m := range d.drv.mods {
			_ = m.Unload()
		}
		d.drv.mods = nil
		if d.drv.stream != (cu.Stream{}) {
			_ = d.drv.stream.Destroy()
		}
		return nil
	})
	_ = d.drv.dev.ReleasePrimaryCtx()
}

// lockedContext runs f on a locked OS thread with d's context current.
func (d *Device) lockedContext(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.drv.ctx); err != nil {
		return callErr("cuCtxSetCurrent", err)
	}
	return f()
}

// syncLocked waits for the stream; d.mu is held and the context current.
func (d *Device) syncLocked() error {
	if err := d.drv.stream.Synchronize(); err != nil {
		call := "cuStreamSynchronize"
		if d.last != "" {
			call += " (after " + d.last + ")"
		}
		return callErr(call, err)
	}
	return nil
}

func (d *Device) hasKernel(name string) bool {
	_, ok := d.drv.fns[name]
	return ok
}

// launchRaw queues a kernel with its arguments' 8-byte values.
func (d *Device) launchRaw(name string, grid, block [3]int, shared int, vals []uint64) error {
	ptrs := make([]unsafe.Pointer, len(vals))
	for i := range vals {
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	return d.drv.fns[name].Launch(grid[0], grid[1], grid[2], block[0], block[1], block[2], shared, d.drv.stream, ptrs)
}

func (d *Device) blasInfo() (int, string) { return d.drv.blas.version, d.drv.blas.name }

// memAlloc and memFree are the allocator's source of device memory.
func (d *Device) memAlloc(bytes int64) (uintptr, error) {
	p, err := cu.MemAlloc(bytes)
	return uintptr(p), err
}

func (d *Device) memFree(p uintptr) { _ = cu.MemFree(cu.DevicePtr(p)) }

// isOOM reports whether err is the driver's out-of-memory error.
func isOOM(err error) bool { return errors.Is(err, cu.OutOfMemory) }

// The copies and the memset are queued on the stream. From pageable host
// memory the driver stages an upload before it returns, and a download
// returns when it is complete, so Go memory may be passed.
func (d *Device) upload(dst uintptr, src unsafe.Pointer, bytes int64) error {
	return callErr(fmt.Sprintf("cuMemcpyHtoDAsync(%d bytes)", bytes), cu.MemcpyHtoDAsync(cu.DevicePtr(dst), src, bytes, d.drv.stream))
}

func (d *Device) download(dst unsafe.Pointer, src uintptr, bytes int64) error {
	return callErr(fmt.Sprintf("cuMemcpyDtoHAsync(%d bytes)", bytes), cu.MemcpyDtoHAsync(dst, cu.DevicePtr(src), bytes, d.drv.stream))
}

func (d *Device) copyDtoD(dst, src uintptr, bytes int64) error {
	return callErr(fmt.Sprintf("cuMemcpyDtoDAsync(%d bytes)", bytes), cu.MemcpyDtoDAsync(cu.DevicePtr(dst), cu.DevicePtr(src), bytes, d.drv.stream))
}

func (d *Device) memsetD32(dst uintptr, words int64) error {
	return callErr(fmt.Sprintf("cuMemsetD32Async(%d words)", words), cu.MemsetD32Async(cu.DevicePtr(dst), 0, words, d.drv.stream))
}

// gemmRaw queues the column-major strided batched product on cuBLAS.
func gemmRaw[T interface{ ~float32 | ~float64 }](d *Device, math Math, ta, tb bool, m, n, k int, alpha T, a uintptr, lda int, sa int64, b uintptr, ldb int, sb int64, beta T, c uintptr, ldc int, sc int64, batch int) error {
	return gemmStridedBatched(d.drv.blas, math, ta, tb, m, n, k, alpha, cu.DevicePtr(a), lda, sa, cu.DevicePtr(b), ldb, sb, beta, cu.DevicePtr(c), ldc, sc, batch)
}
