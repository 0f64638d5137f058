//go:build foldkit_cuda || foldkit_cudaemu

package cuda

import (
	_ "embed"
	"errors"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
)

// These tests need a GPU (foldkit_cuda), or run on the CPU emulation
// (foldkit_cudaemu). The kernels themselves are tested against the CPU
// kernels by package backend's conformance suite.

// registry lists every kernel entry of the PTX (generated with it).
//
//go:embed kernels/emu/registry.inc
var registry string

func open(t *testing.T, opts Options) *Device {
	t.Helper()
	d, err := Open(0, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func TestOpen(t *testing.T) {
	d := open(t, Options{})
	major, minor := d.ComputeCapability()
	v, lib := d.BLASVersion()
	t.Logf("%s: compute capability %d.%d, cuBLAS %d from %s", d, major, minor, v, lib)
	if d.Name() == "" || major < 8 || !strings.HasPrefix(d.String(), "cuda:0 ") {
		t.Errorf("device %q, compute capability %d.%d", d, major, minor)
	}
	if _, err := Open(99, Options{}); err == nil {
		t.Error("Open(99): no error")
	}
}

func TestKernelsLoaded(t *testing.T) {
	d := open(t, Options{})
	n := 0
	for _, line := range strings.Split(registry, "\n") {
		name := strings.TrimSuffix(strings.TrimPrefix(line, "K("), ")")
		if name == "" {
			continue
		}
		n++
		if !d.hasKernel(name) {
			t.Errorf("kernel %s is not loaded", name)
		}
	}
	if n < 80 {
		t.Errorf("registry lists %d kernels, want at least 80", n)
	}
}

func TestBufferRoundTrip(t *testing.T) {
	d := open(t, Options{})
	x := []float32{1, 2, 3, 4, 5, 6, 7}
	b, err := Upload(d, x)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	got := make([]float32, len(x))
	if err := b.Download(got); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if got[i] != x[i] {
			t.Fatalf("round trip: got %v, want %v", got, x)
		}
	}
	v, err := b.View(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Zero(); err != nil {
		t.Fatal(err)
	}
	c, err := NewBuffer[float32](d, len(x))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	if err := c.CopyFrom(b); err != nil {
		t.Fatal(err)
	}
	if err := c.Download(got); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 2, 0, 0, 0, 6, 7}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after zeroing a view and copying: got %v, want %v", got, want)
		}
	}
	if err := b.Download(make([]float32, 3)); !errors.Is(err, num.ErrShape) {
		t.Errorf("Download into a short slice: %v, want ErrShape", err)
	}
	if _, err := b.View(5, 3); !errors.Is(err, num.ErrShape) {
		t.Errorf("View past the end: %v, want ErrShape", err)
	}
}

// TestAllocatorCaches checks that a freed block is reused by the next
// allocation of its size class, without a new cuMemAlloc, and that Trim
// returns the cache to the driver.
func TestAllocatorCaches(t *testing.T) {
	d := open(t, Options{})
	a, err := NewBuffer[float64](d, 1000)
	if err != nil {
		t.Fatal(err)
	}
	s0 := d.MemStats()
	if s0.InUse != sizeClass(8000) || s0.Allocs != 1 {
		t.Errorf("after one allocation: %+v", s0)
	}
	a.Free()
	a.Free()                              // a second Free does nothing
	b, err := NewBuffer[float32](d, 1900) // 7600 bytes: the same class as 8000
	if err != nil {
		t.Fatal(err)
	}
	s1 := d.MemStats()
	if s1.Allocs != 1 || s1.Reuses != 1 || s1.Cached != 0 {
		t.Errorf("after reuse: %+v", s1)
	}
	b.Free()
	if err := d.Trim(); err != nil {
		t.Fatal(err)
	}
	if s := d.MemStats(); s.Cached != 0 || s.InUse != 0 || s.Trimmed != sizeClass(8000) || s.Peak != sizeClass(8000) {
		t.Errorf("after Trim: %+v", s)
	}
}

// TestErrors checks that failures name the call that failed and why.
func TestErrors(t *testing.T) {
	d := open(t, Options{SyncEachCall: true})
	// Too much memory: the allocator names cuMemAlloc and the size.
	if _, err := NewBuffer[float32](d, 1<<48); err == nil || !strings.Contains(err.Error(), "cuMemAlloc(") {
		t.Errorf("a 1 PiB buffer: error %v, want one naming cuMemAlloc", err)
	} else {
		t.Log(err)
	}
	// An unknown kernel.
	err := d.do("test", func() error { return d.launch("fk_no_such_kernel", [3]int{1, 1, 1}, [3]int{1, 1, 1}, 0) }, false)
	if err == nil || !strings.Contains(err.Error(), "fk_no_such_kernel") {
		t.Errorf("unknown kernel: %v", err)
	}
	// A dimension beyond cuBLAS's int32.
	a, _ := NewBuffer[float32](d, 4)
	defer a.Free()
	var e *Error
	err = d.do("gemm", func() error {
		return gemmRaw(d, MathFP32, false, false, 1<<31, 1, 1, float32(1), a.ptr, 1<<31, 0, a.ptr, 1, 0, 0, a.ptr, 1<<31, 0, 1)
	}, false)
	if !errors.As(err, &e) || !strings.Contains(e.Call, "cublasGemmStridedBatched") {
		t.Errorf("a 2³¹-row product: %v, want an *Error naming cublasGemmStridedBatched", err)
	}
	// A kernel argument that is not 8 bytes wide.
	err = d.do("test", func() error {
		return d.launch("fk_sigmoid_f32", [3]int{1, 1, 1}, [3]int{32, 1, 1}, 0, a.ptr, a.ptr, int32(4))
	}, false)
	if err == nil || !strings.Contains(err.Error(), "8 bytes") {
		t.Errorf("an int32 argument: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close: %v, want ErrClosed", err)
	}
}

func TestNoCUBLAS(t *testing.T) {
	if emulated {
		t.Skip("the emulation does not load cuBLAS")
	}
	_, err := Open(0, Options{CUBLAS: "libfoldkit_no_such_cublas.so"})
	if !errors.Is(err, ErrNoCUBLAS) {
		t.Errorf("Open with a missing cuBLAS: %v, want ErrNoCUBLAS", err)
	}
}

// TestAttentionHeadWidth checks the one limit of the attention kernels.
func TestAttentionHeadWidth(t *testing.T) {
	if _, _, err := attnConfig(4, 65, 8); !errors.Is(err, ErrHeadWidth) {
		t.Errorf("C = 65: %v, want ErrHeadWidth", err)
	}
	for _, c := range []struct{ esize, c, cv, dd, bq int }{{4, 8, 8, 16, 128}, {4, 32, 17, 32, 128}, {8, 64, 1, 64, 64}} {
		dd, cfg, err := attnConfig(c.esize, c.c, c.cv)
		if err != nil || dd != c.dd || cfg.bq != c.bq {
			t.Errorf("attnConfig(%d, %d, %d) = %d, %+v, %v", c.esize, c.c, c.cv, dd, cfg, err)
		}
	}
}
