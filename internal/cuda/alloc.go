//go:build foldkit_cuda || foldkit_cudaemu

package cuda

import (
	"fmt"
)

// allocator is the caching allocator of one Device: free lists of device
// blocks keyed by size class (see sizeClass). Its methods run with the
// Device's lock held and its context current.
type allocator struct {
	free  map[int64][]uintptr
	stats MemStats
}

// get returns a block of at least n bytes and the size of its class.
func (a *allocator) get(d *Device, n int64) (uintptr, int64, error) {
	c := sizeClass(n)
	if c == 0 {
		return 0, 0, nil
	}
	if l := a.free[c]; len(l) > 0 {
		p := l[len(l)-1]
		a.free[c] = l[:len(l)-1]
		a.stats.Cached -= c
		a.stats.Reuses++
		a.use(c)
		return p, c, nil
	}
	p, err := d.memAlloc(c)
	if isOOM(err) && a.stats.Cached > 0 {
		// Give the cache back to the driver and try once more.
		a.trim(d)
		p, err = d.memAlloc(c)
	}
	if err != nil {
		return 0, 0, callErr(fmt.Sprintf("cuMemAlloc(%d bytes; %d in use, %d cached)", c, a.stats.InUse, a.stats.Cached), err)
	}
	a.stats.Allocs++
	a.use(c)
	return p, c, nil
}

func (a *allocator) use(c int64) {
	a.stats.InUse += c
	a.stats.Peak = max(a.stats.Peak, a.stats.InUse)
}

// put returns a block of class c to its free list.
func (a *allocator) put(p uintptr, c int64) {
	if c == 0 {
		return
	}
	if a.free == nil {
		a.free = make(map[int64][]uintptr)
	}
	a.free[c] = append(a.free[c], p)
	a.stats.InUse -= c
	a.stats.Cached += c
}

// trim frees every cached block.
func (a *allocator) trim(d *Device) {
	for c, l := range a.free {
		for _, p := range l {
			d.memFree(p)
		}
		a.stats.Trimmed += c * int64(len(l))
		a.stats.Cached -= c * int64(len(l))
		delete(a.free, c)
	}
}
