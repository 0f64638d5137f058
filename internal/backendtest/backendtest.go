// Package backendtest gives module tests the backends they run on and the
// copies to and from them, so that every module package checks its
// backend path the same way: on the CPU backend in every build, and on the
// CUDA backend (GPU 0, or the CPU emulation of its kernels) in foldkit_cuda
// and foldkit_cudaemu builds.
package backendtest

import (
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// Backend is one backend a test runs on.
type Backend[T num.Float] struct {
	Name string
	K    backend.Kernels[T]
}

// Backends returns the backends of this build: the CPU backend, then, in
// foldkit_cuda and foldkit_cudaemu builds, the CUDA backend on GPU 0, which
// is closed when the test ends.
func Backends[T num.Float](t testing.TB) []Backend[T] {
	t.Helper()
	bs := []Backend[T]{{Name: "cpu", K: backend.CPU[T]()}}
	return append(bs, cudaBackends[T](t)...)
}

// Put returns a new tensor on k holding a copy of x, failing the test on
// error; the tensor is freed when the test ends.
func Put[T num.Float](t testing.TB, k backend.Kernels[T], x []T) backend.Tensor[T] {
	t.Helper()
	d, err := k.FromHost(x)
	if err != nil {
		t.Fatalf("FromHost(%d elements): %v", len(x), err)
	}
	t.Cleanup(func() { k.Free(d) })
	return d
}

// Alloc returns a new zero tensor of n elements on k, freed when the test
// ends.
func Alloc[T num.Float](t testing.TB, k backend.Kernels[T], n int) backend.Tensor[T] {
	t.Helper()
	d, err := k.Alloc(n)
	if err != nil {
		t.Fatalf("Alloc(%d): %v", n, err)
	}
	t.Cleanup(func() { k.Free(d) })
	return d
}

// Get copies x to a new host slice, failing the test on error (an error of
// queued work included).
func Get[T num.Float](t testing.TB, k backend.Kernels[T], x backend.Tensor[T]) []T {
	t.Helper()
	h := make([]T, x.Len())
	if err := k.ToHost(h, x); err != nil {
		t.Fatalf("ToHost: %v", err)
	}
	return h
}
