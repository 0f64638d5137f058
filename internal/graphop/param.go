package graphop

import (
	"fmt"
	"slices"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// Param is one parameter array of a module: its name (AF2's), its shape,
// and the field of a parameter struct that holds it.
type Param[T num.Float] struct {
	Name  string
	Shape []int
	Data  *[]T
}

// size returns the number of elements of p's shape.
func (p Param[T]) size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// ParamNodes adds to g one node per parameter, in order, named by its Name
// and holding a copy of its array, ready to be a module's input and to be
// trained by gorgonia's solvers. The error wraps num.ErrShape if an array's
// length does not match its shape.
func ParamNodes[T num.Float](g *gorgonia.ExprGraph, ps []Param[T]) ([]*gorgonia.Node, error) {
	nodes := make([]*gorgonia.Node, len(ps))
	for k, p := range ps {
		if p.Data == nil || len(*p.Data) != p.size() {
			n := 0
			if p.Data != nil {
				n = len(*p.Data)
			}
			return nil, fmt.Errorf("parameter %s has %d elements, want %v: %w", p.Name, n, p.Shape, num.ErrShape)
		}
		v := tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(slices.Clone(*p.Data)))
		nodes[k] = gorgonia.NodeFromAny(g, v, gorgonia.WithName(p.Name))
	}
	return nodes, nil
}

// ParamInputs returns the Inputs of a module that the parameters are: named
// as they are, of their ranks, differentiable.
func ParamInputs[T num.Float](ps []Param[T]) []Input {
	in := make([]Input, len(ps))
	for k, p := range ps {
		in[k] = Input{Name: p.Name, Dims: len(p.Shape)}
	}
	return in
}

// Bind points each parameter's field at the corresponding array of vals
// (no copy), as a module's Forward does with the parameter inputs. The
// error wraps num.ErrShape if the counts or an array's length do not match.
func Bind[T num.Float](ps []Param[T], vals [][]T) error {
	if len(vals) != len(ps) {
		return fmt.Errorf("%d parameter arrays, want %d: %w", len(vals), len(ps), num.ErrShape)
	}
	for k, p := range ps {
		if len(vals[k]) != p.size() {
			return fmt.Errorf("parameter %s has %d elements, want %v: %w", p.Name, len(vals[k]), p.Shape, num.ErrShape)
		}
		*p.Data = vals[k]
	}
	return nil
}
