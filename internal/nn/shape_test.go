package nn

import "testing"

// TestShapePanics checks that the kernels refuse inconsistent lengths with a
// panic wrapping num.ErrShape instead of reading or writing past a row.
func TestShapePanics(t *testing.T) {
	v := func(n int) []float32 { return make([]float32, n) }
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Linear x", func() { Linear(v(6), v(5), 2, 3, 3, v(9), nil) }},
		{"Linear w", func() { Linear(v(6), v(6), 2, 3, 3, v(8), nil) }},
		{"Linear b", func() { Linear(v(6), v(6), 2, 3, 3, v(9), v(2)) }},
		{"Linear y", func() { Linear(v(7), v(6), 2, 3, 3, v(9), nil) }},
		{"Linear negative", func() { Linear(v(0), v(0), -1, 3, 3, v(9), nil) }},
		{"LinearBackward dy", func() { LinearBackward(v(6), v(9), v(3), v(6), v(9), v(5), 2, 3, 3) }},
		{"LinearBackward dx", func() { LinearBackward(v(5), nil, nil, v(6), v(9), v(6), 2, 3, 3) }},
		{"LinearBackward dw", func() { LinearBackward(nil, v(8), nil, v(6), v(9), v(6), 2, 3, 3) }},
		{"LinearBackward db", func() { LinearBackward(nil, nil, v(4), v(6), v(9), v(6), 2, 3, 3) }},
		{"LinearBackward x", func() { LinearBackward(nil, v(9), nil, v(5), v(9), v(6), 2, 3, 3) }},
		{"LayerNorm x", func() { LayerNorm(v(6), v(5), 2, 3, v(3), v(3), 1e-5, nil, nil) }},
		{"LayerNorm scale", func() { LayerNorm(v(6), v(6), 2, 3, v(2), v(3), 1e-5, nil, nil) }},
		{"LayerNorm offset", func() { LayerNorm(v(6), v(6), 2, 3, v(3), nil, 1e-5, nil, nil) }},
		{"LayerNorm mean", func() { LayerNorm(v(6), v(6), 2, 3, v(3), v(3), 1e-5, v(3), nil) }},
		{"LayerNorm rstd", func() { LayerNorm(v(6), v(6), 2, 3, v(3), v(3), 1e-5, nil, v(1)) }},
		{"LayerNormBackward dy", func() { LayerNormBackward(v(6), nil, nil, v(6), v(3), nil, nil, v(5), 2, 3) }},
		{"LayerNormBackward dx", func() { LayerNormBackward(v(7), nil, nil, v(6), v(3), nil, nil, v(6), 2, 3) }},
		{"LayerNormBackward dscale", func() { LayerNormBackward(nil, v(2), nil, v(6), v(3), nil, nil, v(6), 2, 3) }},
		{"LayerNormBackward stats", func() { LayerNormBackward(v(6), nil, nil, v(6), v(3), v(1), v(2), v(6), 2, 3) }},
		{"SoftmaxRows", func() { SoftmaxRows(v(5), 2, 3) }},
		{"SoftmaxRowsBackward", func() { SoftmaxRowsBackward(v(6), v(6), v(5), 2, 3) }},
		{"Sigmoid", func() { Sigmoid(v(3), v(4)) }},
		{"SigmoidBackward", func() { SigmoidBackward(v(4), v(4), v(3)) }},
		{"ReLU", func() { ReLU(v(3), v(4)) }},
		{"ReLUBackward", func() { ReLUBackward(v(3), v(4), v(4)) }},
		{"Mul", func() { Mul(v(4), v(4), v(3)) }},
		{"MulAdd", func() { MulAdd(v(3), v(4), v(4)) }},
	} {
		expectShapePanic(t, tc.name, tc.f)
	}
}
