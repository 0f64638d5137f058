//go:build foldkit_cuda || foldkit_cudaemu

package backendtest

import (
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// cudaBackends opens the CUDA backend on GPU 0 (the emulated device in
// foldkit_cudaemu builds) for the duration of the test.
func cudaBackends[T num.Float](t testing.TB) []Backend[T] {
	t.Helper()
	k, err := backend.CUDA[T](0, backend.CUDAOptions{})
	if err != nil {
		t.Fatalf("opening the CUDA backend on GPU 0: %v", err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Errorf("closing the CUDA backend: %v", err)
		}
	})
	return []Backend[T]{{Name: "cuda", K: k}}
}
