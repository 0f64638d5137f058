package graphop_test

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/graphop"
)

// ExampleApply adds y = x² to a graph as a module, takes the gradient of
// Σ y with respect to x, and runs the graph.
func ExampleApply() {
	square := &graphop.Module[float64]{
		Package: "example", Name: "Square", Key: "x²",
		Inputs:  []graphop.Input{{Name: "x", Dims: 1}},
		Outputs: func(in []tensor.Shape) ([]tensor.Shape, error) { return []tensor.Shape{in[0]}, nil },
		Forward: func(in [][]float64, _ []tensor.Shape) ([][]float64, error) {
			y := make([]float64, len(in[0]))
			for i, x := range in[0] {
				y[i] = x * x
			}
			return [][]float64{y}, nil
		},
		Backward: func(in [][]float64, _ []tensor.Shape, _, dOut [][]float64) ([][]float64, error) {
			dx := make([]float64, len(in[0]))
			for i, x := range in[0] {
				dx[i] = 2 * x * dOut[0][i]
			}
			return [][]float64{dx}, nil
		},
	}
	g := gorgonia.NewGraph()
	x := gorgonia.NodeFromAny(g, tensor.New(tensor.WithBacking([]float64{1, 2, 3})), gorgonia.WithName("x"))
	y, err := graphop.Apply(square, x)
	if err != nil {
		fmt.Println(err)
		return
	}
	grads, err := gorgonia.Grad(gorgonia.Must(gorgonia.Sum(y[0])), x)
	if err != nil {
		fmt.Println(err)
		return
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("y", y[0].Value().Data())
	fmt.Println("dΣy/dx", grads[0].Value().Data())
	// Output:
	// y [1 4 9]
	// dΣy/dx [2 4 6]
}
