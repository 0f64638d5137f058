package params_test

import (
	"fmt"

	"github.com/foldkit/foldkit/params"
)

// A module loads its parameters by AF2's names relative to its own prefix,
// and one layer of a stacked layer axis at a time.
func ExampleSet_Sub() {
	s := params.New()
	// Two stacked Evoformer layers of a [2, 3] bias.
	params.Put(s, "alphafold/alphafold_iteration/evoformer/evoformer_iteration/pair_transition/transition1//bias",
		[]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})

	stack := s.Sub("alphafold/alphafold_iteration/evoformer/evoformer_iteration/")
	n, _ := stack.Layers()
	layer1, _ := stack.Layer(1)
	b, err := params.Get[float64](layer1, "pair_transition/transition1//bias", 3)
	fmt.Println(n, b, err)

	_, err = params.Get[float64](layer1, "pair_transition/transition1//bias", 4)
	fmt.Println(err)
	// Output:
	// 2 [4 5 6] <nil>
	// params: "pair_transition/transition1//bias" has shape [3], want [4]: shape mismatch
}
