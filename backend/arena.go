package backend

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
)

// Arena makes tensors on one backend and frees them together: the scratch
// of one module call, or the parameters a module uploads once. It keeps
// the first error, as bufio.Scanner does: after it every method does
// nothing and returns nil, and Err reports it, so that a run of
// allocations is checked once. Free is safe to defer and to call twice.
type Arena[T num.Float] struct {
	k   Kernels[T]
	ts  []Tensor[T]
	err error
}

// NewArena returns an empty arena on k.
func NewArena[T num.Float](k Kernels[T]) *Arena[T] { return &Arena[T]{k: k} }

// Alloc returns a new zero tensor of n elements owned by the arena.
func (a *Arena[T]) Alloc(n int) Tensor[T] {
	if a.err != nil {
		return nil
	}
	t, err := a.k.Alloc(n)
	return a.keep(t, err)
}

// FromHost returns a new tensor holding a copy of x, owned by the arena.
func (a *Arena[T]) FromHost(x []T) Tensor[T] {
	if a.err != nil {
		return nil
	}
	t, err := a.k.FromHost(x)
	return a.keep(t, err)
}

// View returns the n elements of x from off on (Kernels.View). Views
// share x's storage and are not freed by the arena.
func (a *Arena[T]) View(x Tensor[T], off, n int) Tensor[T] {
	if a.err != nil {
		return nil
	}
	t, err := a.k.View(x, off, n)
	if err != nil {
		a.err = err
		return nil
	}
	return t
}

func (a *Arena[T]) keep(t Tensor[T], err error) Tensor[T] {
	if err != nil {
		a.err = err
		return nil
	}
	a.ts = append(a.ts, t)
	return t
}

// Err returns the first error of the arena's methods, or nil.
func (a *Arena[T]) Err() error { return a.err }

// Free frees every tensor the arena made; they must not be used
// afterwards. The arena stays usable (and keeps its error).
func (a *Arena[T]) Free() {
	for _, t := range a.ts {
		a.k.Free(t)
	}
	a.ts = nil
}

// HostSlices returns the slices of ts when every tensor is a CPU tensor
// (a nil tensor gives a nil slice), and false otherwise: the test of a
// module's CPU dispatch path.
func HostSlices[T num.Float](ts ...Tensor[T]) ([][]T, bool) {
	s := make([][]T, len(ts))
	for i, t := range ts {
		if absent(t) {
			continue
		}
		h, ok := t.(Host[T])
		if !ok {
			return nil, false
		}
		s[i] = h
	}
	return s, true
}

// Absent reports whether t stands for no tensor: a nil interface, a nil
// Host slice or a nil pointer of a backend's tensor type (whose Len would
// fault). Kernels treat such tensors as absent optional arguments.
func Absent[T num.Float](t Tensor[T]) bool { return absent(t) }

// Fill sets dst to copies of src repeated (dst.Len() a multiple of
// src.Len()), by copies of doubling length on the backend: a broadcast of
// a bias or a constant to every row, exact, in about log₂(dst.Len() /
// src.Len()) calls of Copy. The error wraps num.ErrShape when the lengths
// do not divide.
func Fill[T num.Float](k Kernels[T], dst, src Tensor[T]) error {
	if absent(dst) || absent(src) {
		return fmt.Errorf("backend: Fill: missing tensor: %w", num.ErrShape)
	}
	n, total := src.Len(), dst.Len()
	if n == 0 || total%n != 0 {
		return fmt.Errorf("backend: Fill: %d elements are not copies of %d: %w", total, n, num.ErrShape)
	}
	first, err := k.View(dst, 0, n)
	if err != nil {
		return err
	}
	if err := k.Copy(first, src); err != nil {
		return err
	}
	for done := n; done < total; done *= 2 {
		w := min(done, total-done)
		to, err := k.View(dst, done, w)
		if err != nil {
			return err
		}
		from, err := k.View(dst, 0, w)
		if err != nil {
			return err
		}
		if err := k.Copy(to, from); err != nil {
			return err
		}
	}
	return nil
}

// Grads collects gradients summed on a backend and adds each to its host
// array once, by Flush: a backward pass on a backend accumulates its
// parameter gradients there and moves every one to the host once. A nil
// *Grads stands for "no gradient wanted": its accumulators are nil (which
// the kernels skip) and Flush does nothing.
type Grads[T num.Float] struct {
	a   *Arena[T]
	ts  []Tensor[T]
	add []func(h []T)
}

// NewGrads returns an empty set whose accumulators are allocated on a (and
// freed with it).
func NewGrads[T num.Float](a *Arena[T]) *Grads[T] { return &Grads[T]{a: a} }

// Acc returns a zero accumulator of len(dst) elements on the backend, which
// Flush adds to dst.
func (g *Grads[T]) Acc(dst []T) Tensor[T] {
	return g.AccFunc(len(dst), func(h []T) {
		for i, v := range h {
			dst[i] += v
		}
	})
}

// AccFunc returns a zero accumulator of n elements on the backend, whose
// downloaded contents Flush passes to add (for host gradients stored in
// another layout).
func (g *Grads[T]) AccFunc(n int, add func(h []T)) Tensor[T] {
	if g == nil {
		return nil
	}
	t := g.a.Alloc(n)
	if t == nil {
		return nil
	}
	g.ts, g.add = append(g.ts, t), append(g.add, add)
	return t
}

// Flush downloads every accumulator and adds it to its host gradient. It
// changes no host array unless every download succeeds, and returns the
// arena's allocation error, if any, first.
func (g *Grads[T]) Flush() error {
	if g == nil {
		return nil
	}
	if err := g.a.Err(); err != nil {
		return err
	}
	hs := make([][]T, len(g.ts))
	for i, t := range g.ts {
		hs[i] = make([]T, t.Len())
		if err := g.a.k.ToHost(hs[i], t); err != nil {
			return err
		}
	}
	for i, h := range hs {
		g.add[i](h)
	}
	return nil
}

// Arg is one tensor argument of a module's call and the shape it must
// have, for CheckArgs.
type Arg[T num.Float] struct {
	Name     string
	T        Tensor[T]
	Shape    []int
	Optional bool // an absent tensor is accepted
}

// CheckArgs returns an error wrapping num.ErrShape that names the first
// argument that is absent (and not Optional) or whose length is not the
// product of its Shape, and nil when every argument fits: the length
// checks every module on the seam makes before it queues work. Callers
// prefix the error with their package and method.
func CheckArgs[T num.Float](args ...Arg[T]) error {
	for _, a := range args {
		n := 1
		for _, d := range a.Shape {
			n *= d
		}
		if absent(a.T) {
			if a.Optional {
				continue
			}
			return fmt.Errorf("%s is missing, want %v = %d elements: %w", a.Name, a.Shape, n, num.ErrShape)
		}
		if got := a.T.Len(); got != n {
			return fmt.Errorf("%s has %d elements, want %v = %d: %w", a.Name, got, a.Shape, n, num.ErrShape)
		}
	}
	return nil
}
