//go:build !foldkit_cuda && !foldkit_cudaemu

package backendtest

import (
	"testing"

	"github.com/foldkit/foldkit/internal/num"
)

// cudaBackends returns none: this build has no CUDA backend.
func cudaBackends[T num.Float](testing.TB) []Backend[T] { return nil }
