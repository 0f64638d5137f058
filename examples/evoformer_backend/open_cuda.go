//go:build foldkit_cuda || foldkit_cudaemu

package main

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
)

// open returns the backend called name: cpu, or cuda (GPU 0).
func open(name string) (backend.Kernels[float32], error) {
	switch name {
	case "cpu":
		return backend.CPU[float32](), nil
	case "cuda":
		return backend.CUDA[float32](0, backend.CUDAOptions{})
	}
	return nil, fmt.Errorf("backend %q: want cpu or cuda", name)
}
