//go:build !foldkit_cuda && !foldkit_cudaemu

package main

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
)

// open returns the backend called name; this build has only the CPU.
func open(name string) (backend.Kernels[float32], error) {
	if name != "cpu" {
		return nil, fmt.Errorf("backend %q: this build has only cpu (build with -tags foldkit_cuda for cuda)", name)
	}
	return backend.CPU[float32](), nil
}
