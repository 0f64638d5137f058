//go:build foldkit_cuda || foldkit_cudaemu

package backend_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/backend/conformance"
	"github.com/foldkit/foldkit/internal/cuda"
	"github.com/foldkit/foldkit/internal/num"
)

// device is GPU 0, opened once for all the tests of the binary (opening
// JIT-compiles the kernels) and closed by TestMain.
var device struct {
	once sync.Once
	d    *cuda.Device
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if device.d != nil {
		if err := device.d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing the device:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// openCUDA returns the CUDA backend on the shared device, with opts.
func openCUDA[T num.Float](t testing.TB, opts backend.CUDAOptions) backend.Kernels[T] {
	t.Helper()
	device.once.Do(func() { device.d, device.err = cuda.Open(0, cuda.Options{}) })
	if device.err != nil {
		t.Fatalf("opening GPU 0: %v", device.err)
	}
	k := backend.OnDevice[T](device.d, opts)
	t.Logf("backend %s", k.Name())
	return k
}

// The CUDA backend must match the CPU kernels within conformance.Default's
// tolerances (see its doc for their derivation).

func TestCUDAFloat32(t *testing.T) {
	conformance.All(t, openCUDA[float32](t, backend.CUDAOptions{}), conformance.Default[float32]())
}

func TestCUDAFloat64(t *testing.T) {
	conformance.All(t, openCUDA[float64](t, backend.CUDAOptions{}), conformance.Default[float64]())
}

// TestCUDATensorCoreGemm runs the matrix-product tests with TF32 and BF16
// arithmetic. The inputs are rounded to 10 (TF32) or 7 (BF16) mantissa
// bits, a relative error of at most u = 2⁻¹¹ or 2⁻⁸ each, so a product of
// two inputs is off by at most 2u relative and a sum of them by 2u·Σ|a||b|
// plus float32 accumulation (k·2⁻²⁴): tolerances 2e-3 (TF32: 2u = 9.8e-4,
// doubled) and 1.6e-2 (BF16: 2u = 7.8e-3, doubled). The measured error is
// logged ("max error / Σ|a||b|").
func TestCUDATensorCoreGemm(t *testing.T) {
	for _, c := range []struct {
		math cuda.Math
		tol  float64
	}{{cuda.MathTF32, 2e-3}, {cuda.MathBF16, 1.6e-2}} {
		t.Run(c.math.String(), func(t *testing.T) {
			k := openCUDA[float32](t, backend.CUDAOptions{Math: c.math})
			tol := conformance.Default[float32]()
			tol.Gemm = c.tol
			conformance.Gemm(t, k, tol)
			conformance.Linear(t, k, tol)
		})
	}
}

// The attention reference cases end to end on the device (the tests find
// the cases through $FOLDKIT_REFCASES, which gpu/on-device.sh sets).

func TestCUDARefcasesFloat64(t *testing.T) {
	conformance.Refcases(t, openCUDA[float64](t, backend.CUDAOptions{}))
}

func TestCUDARefcasesFloat32(t *testing.T) {
	conformance.Refcases(t, openCUDA[float32](t, backend.CUDAOptions{}))
}

// TestCUDAOwnDevice checks the constructor that opens (and, on Close,
// closes) its own device, and that a closed backend reports errors.
func TestCUDAOwnDevice(t *testing.T) {
	k, err := backend.CUDA[float32](0, backend.CUDAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x, err := k.FromHost([]float32{1, -2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.ReLU(x, x); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 3)
	if err := k.ToHost(got, x); err != nil || got[0] != 1 || got[1] != 0 || got[2] != 3 {
		t.Fatalf("ReLU: %v, %v", got, err)
	}
	if b, ok := backend.DeviceBuffer(x); !ok || b.Len() != 3 || backend.Device(k) != b.Device() {
		t.Error("DeviceBuffer does not return the tensor's buffer on the backend's device")
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Sync(); !errors.Is(err, cuda.ErrClosed) {
		t.Errorf("Sync after Close: %v, want cuda.ErrClosed", err)
	}
}
