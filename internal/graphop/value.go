package graphop

import (
	"fmt"
	"hash"
	"hash/fnv"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// valueData returns the elements of a gorgonia value holding a dense tensor
// of element type T, sharing storage (a view is materialised first).
func valueData[T num.Float](v gorgonia.Value) ([]T, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, fmt.Errorf("value is a %T, want a tensor", v)
	}
	if vw, ok := t.(tensor.View); ok && vw.IsMaterializable() {
		t = vw.Materialize()
	}
	x, ok := t.Data().([]T)
	if !ok {
		return nil, fmt.Errorf("value holds %T, want []%T", t.Data(), T(0))
	}
	return x, nil
}

// dtypeOf returns the tensor element type of T, which must be float32 or
// float64 itself (not a type defined on them).
func dtypeOf[T num.Float]() (tensor.Dtype, error) {
	switch any(T(0)).(type) {
	case float32:
		return tensor.Float32, nil
	case float64:
		return tensor.Float64, nil
	}
	return tensor.Dtype{}, fmt.Errorf("element type %T, want float32 or float64", T(0))
}

// hashOf hashes an op through its WriteHash.
func hashOf(o interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
