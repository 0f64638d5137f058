package backend_test

import (
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/backend/conformance"
)

// The CPU backend calls the CPU kernels themselves, so the suite demands
// identical results (conformance.Exact), except for matrix products, which
// it compares with a float64 product.

func TestCPUFloat32(t *testing.T) {
	conformance.All(t, backend.CPU[float32](), conformance.Exact[float32]())
}

func TestCPUFloat64(t *testing.T) {
	conformance.All(t, backend.CPU[float64](), conformance.Exact[float64]())
}

// The attention reference cases, end to end through the CPU backend: this
// checks the suite's module code (conformance.Refcases), which the CUDA
// backend's tests run unchanged.

func TestCPURefcasesFloat64(t *testing.T) {
	conformance.Refcases(t, backend.CPU[float64]())
}

func TestCPURefcasesFloat32(t *testing.T) {
	conformance.Refcases(t, backend.CPU[float32]())
}
