package attn_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/params"
)

// Two queries attend over three keys with one head; the second batch
// element has every key masked, so its output is the plain average of its
// values.
func ExampleForward() {
	p := &attn.Problem[float32]{
		Dims:     attn.Dims{Batch: 2, Heads: 1, Lq: 2, Lk: 3, C: 1, Cv: 1},
		Q:        []float32{0, 5, 0, 5},
		QL:       attn.Layout{Batch: 2, Row: 1},
		K:        []float32{1, 0, 0, 1, 0, 0},
		KL:       attn.Layout{Batch: 3, Row: 1},
		V:        []float32{10, 20, 30, 10, 20, 60},
		VL:       attn.Layout{Batch: 3, Row: 1},
		Scale:    1,
		KeyMask:  []float32{1, 1, 1, 0, 0, 0},
		MaskBias: attn.EvoformerMaskBias,
	}
	o := make([]float32, 4)
	if err := attn.Forward(p, o, attn.Layout{Batch: 2, Row: 1}, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.3f\n", o)
	// Output:
	// [20.000 10.199 30.000 30.000]
}

// A freshly initialised gated attention adds nothing (AF2's zero-initialised
// output projection) while its gates stand open at sigmoid(1).
func ExampleNewGated() {
	rng := rand.New(rand.NewPCG(1, 2))
	const cin, heads, c, cout = 8, 2, 4, 8
	p := attn.NewGated[float32](rng, cin, heads, c, cout)

	const batch, l = 2, 3
	x := make([]float32, batch*l*cin)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	out := make([]float32, batch*l*cout)
	lay := attn.Layout{Batch: l * cin, Row: cin}
	err := attn.GatedForward(&p, x, lay, batch, l, nil, nil, out, attn.Layout{Batch: l * cout, Row: cout}, nil)
	fmt.Println(len(p.QueryW), len(p.OutputW), p.GatingB[0], out[0], err)
	// Output:
	// 64 64 1 0 <nil>
}

// LoadGated reads the weights of one AF2 attention module by their haiku
// names, from a set narrowed to the module's path.
func ExampleLoadGated() {
	const cin, heads, c, cout = 4, 2, 3, 5
	s := params.New()
	prefix := "triangle_attention_starting_node/attention//"
	for _, w := range []struct {
		name  string
		shape []int
	}{
		{"query_w", []int{cin, heads, c}}, {"key_w", []int{cin, heads, c}},
		{"value_w", []int{cin, heads, c}}, {"gating_w", []int{cin, heads, c}},
		{"gating_b", []int{heads, c}}, {"output_w", []int{heads, c, cout}}, {"output_b", []int{cout}},
	} {
		n := 1
		for _, d := range w.shape {
			n *= d
		}
		if err := params.Put(s, prefix+w.name, w.shape, make([]float32, n)); err != nil {
			fmt.Println(err)
			return
		}
	}
	p, err := attn.LoadGated[float64](s.Sub("triangle_attention_starting_node/attention"), cin, heads, c, cout)
	fmt.Println(p.CIn, p.Heads, p.C, p.COut, len(p.OutputW), err, len(s.Unused()))

	_, err = attn.LoadGated[float64](s.Sub("triangle_attention_starting_node/attention"), cin, heads, c+1, cout)
	fmt.Println(err)
	// Output:
	// 4 2 3 5 30 <nil> 0
	// attn: LoadGated: params: "//query_w" has shape [4 2 3], want [4 2 4]: shape mismatch
}
