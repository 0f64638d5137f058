package nn_test

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/nn"
)

// ExampleLinear applies a 3→2 linear layer in AF2's layout (W is [in, out])
// to two rows.
func ExampleLinear() {
	x := []float32{
		1, 2, 3,
		0, 1, -1,
	}
	w := []float32{ // [in=3, out=2]
		1, 0,
		0, 1,
		1, -1,
	}
	b := []float32{0.5, 0}
	y := make([]float32, 2*2)
	nn.Linear(y, x, 2, 3, 2, w, b)
	fmt.Println(y)
	// Output: [4.5 -1 -0.5 2]
}

// ExampleLayerNorm normalises two rows of four channels with AF2's epsilon
// and a fresh layer's parameters (scale 1, offset 0).
func ExampleLayerNorm() {
	x := []float64{
		1, 2, 3, 4,
		-2, 0, 0, 2,
	}
	p := nn.NewLayerNorm[float64](4)
	y := make([]float64, len(x))
	mean, rstd := make([]float64, 2), make([]float64, 2)
	nn.LayerNorm(y, x, 2, 4, p.Scale, p.Offset, nn.LayerNormEps, mean, rstd)
	fmt.Printf("%.4f\n", y)
	fmt.Printf("mean %.2f rstd %.4f\n", mean, rstd)
	// Output:
	// [-1.3416 -0.4472 0.4472 1.3416 -1.4142 0.0000 0.0000 1.4142]
	// mean [2.50 0.00] rstd [0.8944 0.7071]
}

// ExampleNewLinear initialises a gate as AF2 does: zero weights and bias 1,
// so that a fresh gate passes sigmoid(1) of its input everywhere.
func ExampleNewLinear() {
	g := nn.NewLinear[float32](nil, 4, 2, nn.InitGating, true)
	fmt.Println(g.W, g.B)
	// Output: [0 0 0 0 0 0 0 0] [1 1]
}
