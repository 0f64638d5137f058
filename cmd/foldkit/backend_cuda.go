//go:build foldkit_cuda || foldkit_cudaemu

package main

import (
	"errors"

	"github.com/foldkit/foldkit/backend"
)

// openBackend opens the backends of -backend name other than cpu: cuda is
// GPU 0, for float32 and float64, with the default options (float32
// arithmetic, attention input checks on).
func openBackend(name string) (backend.Pair, error) {
	if name == "cuda" {
		return backend.CUDAPair(0, backend.CUDAOptions{})
	}
	return backend.Pair{}, errors.New("unknown backend (want cpu or cuda)")
}

// openBenchBackend is openBackend for timings: attention's input checks,
// which wait for the device once per call, are off.
func openBenchBackend(name string) (backend.Pair, error) {
	if name == "cuda" {
		return backend.CUDAPair(0, backend.CUDAOptions{SkipInputChecks: true})
	}
	return openBackend(name)
}
