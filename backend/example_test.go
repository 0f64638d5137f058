package backend_test

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
)

// ExampleCPU runs a layer norm and a gate through the CPU backend. Code
// written against backend.Kernels runs unchanged on the CUDA backend
// (backend.CUDA in a foldkit_cuda build), where the tensors stay in device
// memory until ToHost.
func ExampleCPU() {
	k := backend.CPU[float64]()
	defer k.Close()
	x, _ := k.FromHost([]float64{1, 2, 3, 4, 6, 8})
	scale, _ := k.FromHost([]float64{1, 1, 1})
	offset, _ := k.FromHost([]float64{0, 0, 0})
	y, _ := k.Alloc(6)
	if err := k.LayerNorm(y, x, 2, 3, scale, offset, 1e-5, nil, nil); err != nil {
		fmt.Println(err)
		return
	}
	zero, _ := k.Alloc(6) // sigmoid(0) = 0.5
	if err := k.Gate(y, zero, y); err != nil {
		fmt.Println(err)
		return
	}
	out := make([]float64, 6)
	if err := k.ToHost(out, y); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %.4f\n", k.Name()[:3], out)
	// Output:
	// cpu: [-0.6124 0.0000 0.6124 -0.6124 0.0000 0.6124]
}
