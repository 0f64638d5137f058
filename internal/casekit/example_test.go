package casekit_test

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/params"
)

// ExampleNew runs a toy case that doubles in/x: it reads the meta, sizes
// the input, writes out/y and checks that every key was read.
func ExampleNew() {
	cs := params.New()
	_ = params.PutString(cs, "meta", `{"case": "double", "config": {"c": 2}}`)
	_ = params.Put(cs, "in/x", []int{1, 2}, []float32{1.5, -2})

	c := casekit.New(cs, "toy: RunCase", nil)
	m, err := c.Meta()
	if err != nil {
		fmt.Println(err)
		return
	}
	c.CheckCase(m.Case, "double")
	width := m.Int("c")
	shape, err := c.Dims("in/x", casekit.Any, width)
	if err != nil {
		fmt.Println(err)
		return
	}
	x := casekit.Get[float64](c, "in/x", shape...)
	c.CheckUsed(false)
	if err := c.Err(); err != nil {
		fmt.Println(err)
		return
	}
	for i := range x {
		x[i] *= 2
	}
	casekit.Put(c, "out/y", shape, x)
	res, err := c.Result()
	if err != nil {
		fmt.Println(err)
		return
	}
	y, _ := params.Get[float64](res, "out/y")
	fmt.Println(y)

	_, err = c.Dims("in/x", casekit.Any, 3)
	fmt.Println(err)
	// Output:
	// [3 -4]
	// toy: RunCase: in/x has shape [1 2], want [N 3]: shape mismatch
}
