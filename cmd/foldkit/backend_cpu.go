//go:build !foldkit_cuda && !foldkit_cudaemu

package main

import (
	"errors"

	"github.com/foldkit/foldkit/backend"
)

// openBackend opens the backends of -backend name other than cpu: this
// build has none.
func openBackend(name string) (backend.Pair, error) {
	if name == "cuda" {
		return backend.Pair{}, errors.New("this build has no CUDA backend (build with -tags foldkit_cuda)")
	}
	return backend.Pair{}, errors.New("unknown backend (want cpu or cuda)")
}

// openBenchBackend is openBackend for timings.
func openBenchBackend(name string) (backend.Pair, error) { return openBackend(name) }
