package nn

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// LoadLinear reads the linear layer called name from s: name+"//weights"
// [in, out] and, when bias is true, name+"//bias" [out], in AF2's layouts
// (name is a haiku module path relative to s, for example
// "triangle_multiplication_outgoing/left_projection").
//
// The error wraps params.ErrMissing for an absent array, num.ErrShape for a
// shape other than the one given and num.ErrNaN for a non-finite value.
func LoadLinear[T num.Float](s *params.Set, name string, in, out int, bias bool) (LinearParams[T], error) {
	w, err := load[T](s, name+"//weights", in, out)
	if err != nil {
		return LinearParams[T]{}, err
	}
	p := LinearParams[T]{W: w, In: in, Out: out}
	if bias {
		if p.B, err = load[T](s, name+"//bias", out); err != nil {
			return LinearParams[T]{}, err
		}
	}
	return p, nil
}

// LoadLayerNorm reads the layer norm called name from s: name+"//scale" and
// name+"//offset", each [c].
//
// The error wraps params.ErrMissing for an absent array, num.ErrShape for a
// shape other than [c] and num.ErrNaN for a non-finite value.
func LoadLayerNorm[T num.Float](s *params.Set, name string, c int) (LayerNormParams[T], error) {
	scale, err := load[T](s, name+"//scale", c)
	if err != nil {
		return LayerNormParams[T]{}, err
	}
	offset, err := load[T](s, name+"//offset", c)
	if err != nil {
		return LayerNormParams[T]{}, err
	}
	return LayerNormParams[T]{Scale: scale, Offset: offset, C: c}, nil
}

// load reads one array of the given shape and checks that it is finite.
func load[T num.Float](s *params.Set, key string, shape ...int) ([]T, error) {
	x, err := params.Get[T](s, key, shape...)
	if err != nil {
		return nil, fmt.Errorf("nn: %w", err)
	}
	if err := num.CheckFinite(key, x); err != nil {
		return nil, fmt.Errorf("nn: %w", err)
	}
	return x, nil
}
