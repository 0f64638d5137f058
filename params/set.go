package params

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unsafe"

	"github.com/foldkit/foldkit/internal/num"
)

// Errors returned (wrapped with the key and shapes) by Set's getters.
var (
	// ErrMissing: no array under the requested key.
	ErrMissing = errors.New("params: missing key")
	// ErrShape: the array's shape differs from the expected one.
	ErrShape = num.ErrShape
	// ErrDType: the array's element type cannot serve the request
	// (an integer array asked for as floats, a string as numbers, ...).
	ErrDType = errors.New("params: wrong dtype")
	// ErrFormat: the file is not a readable npz archive of npy arrays.
	ErrFormat = errors.New("params: malformed file")
)

// DType is the element type of a stored array.
type DType int

// The element types a Set holds.
const (
	Float32 DType = iota
	Float64
	Int64
	Int32
	Bool
	String
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case Int64:
		return "int64"
	case Int32:
		return "int32"
	case Bool:
		return "bool"
	case String:
		return "string"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Array is one stored array: its shape and its row-major data, one of
// []float32, []float64, []int64, []int32, []bool or []string.
type Array struct {
	Shape []int
	Data  any
}

// DType returns the element type of a.
func (a *Array) DType() DType {
	switch a.Data.(type) {
	case []float32:
		return Float32
	case []float64:
		return Float64
	case []int64:
		return Int64
	case []int32:
		return Int32
	case []bool:
		return Bool
	case []string:
		return String
	}
	panic(fmt.Sprintf("params: array holds %T", a.Data))
}

// Len returns the number of elements of a.
func (a *Array) Len() int { return prod(a.Shape) }

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// entry is one stored array with the name it has in the root set.
type entry struct {
	full string
	arr  *Array
}

// usage records which keys of the root set have been read; views share it.
type usage struct{ used map[string]bool }

// Set is a collection of named arrays, or a view of one: narrowed to a prefix
// (Sub) or to one layer of a stack (Layer). Views share the arrays and the
// record of which keys were read. A Set is not safe for concurrent use.
type Set struct {
	entries map[string]entry // keyed by name relative to this view
	use     *usage
}

// New returns an empty Set.
func New() *Set {
	return &Set{entries: map[string]entry{}, use: &usage{used: map[string]bool{}}}
}

// Keys returns the names in s, sorted.
func (s *Set) Keys() []string {
	keys := make([]string, 0, len(s.entries))
	for k := range s.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Len returns the number of arrays in s.
func (s *Set) Len() int { return len(s.entries) }

// Has reports whether s holds an array named name.
func (s *Set) Has(name string) bool {
	_, ok := s.entries[name]
	return ok
}

// Sub returns the view of s narrowed to the keys that start with prefix, with
// the prefix removed from their names. Reading through the view marks the
// keys of s as used.
func (s *Set) Sub(prefix string) *Set {
	v := &Set{entries: map[string]entry{}, use: s.use}
	for k, e := range s.entries {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			v.entries[rest] = e
		}
	}
	return v
}

// Layer returns the view of layer k of a stacked set: every array of s must
// have a leading axis longer than k, and the view's arrays are slice k of
// them (sharing memory). AF2 stores the Evoformer's blocks this way.
func (s *Set) Layer(k int) (*Set, error) {
	v := &Set{entries: map[string]entry{}, use: s.use}
	for _, name := range s.Keys() {
		e := s.entries[name]
		a := e.arr
		if len(a.Shape) == 0 || k < 0 || k >= a.Shape[0] {
			return nil, fmt.Errorf("params: layer %d of %q with shape %v: %w", k, name, a.Shape, ErrShape)
		}
		inner := prod(a.Shape[1:])
		lo, hi := k*inner, (k+1)*inner
		var d any
		switch x := a.Data.(type) {
		case []float32:
			d = x[lo:hi:hi]
		case []float64:
			d = x[lo:hi:hi]
		case []int64:
			d = x[lo:hi:hi]
		case []int32:
			d = x[lo:hi:hi]
		case []bool:
			d = x[lo:hi:hi]
		case []string:
			d = x[lo:hi:hi]
		}
		v.entries[name] = entry{full: e.full, arr: &Array{Shape: slices.Clone(a.Shape[1:]), Data: d}}
	}
	return v, nil
}

// Layers returns the length of the leading (layer) axis shared by every array
// of s, or an error if s is empty or the arrays disagree.
func (s *Set) Layers() (int, error) {
	n := -1
	for _, name := range s.Keys() {
		a := s.entries[name].arr
		if len(a.Shape) == 0 {
			return 0, fmt.Errorf("params: %q is a scalar, not a stack: %w", name, ErrShape)
		}
		if n >= 0 && a.Shape[0] != n {
			return 0, fmt.Errorf("params: %q has %d layers, others %d: %w", name, a.Shape[0], n, ErrShape)
		}
		n = a.Shape[0]
	}
	if n < 0 {
		return 0, fmt.Errorf("params: empty set has no layers: %w", ErrMissing)
	}
	return n, nil
}

// Array returns the array named name and marks it used.
func (s *Set) Array(name string) (*Array, error) {
	e, ok := s.entries[name]
	if !ok {
		return nil, s.missing(name)
	}
	s.use.used[e.full] = true
	return e.arr, nil
}

// Shape returns the shape of the array named name without marking it used.
func (s *Set) Shape(name string) ([]int, error) {
	e, ok := s.entries[name]
	if !ok {
		return nil, s.missing(name)
	}
	return slices.Clone(e.arr.Shape), nil
}

// DTypeOf returns the element type of the array named name.
func (s *Set) DTypeOf(name string) (DType, error) {
	e, ok := s.entries[name]
	if !ok {
		return 0, s.missing(name)
	}
	return e.arr.DType(), nil
}

// Unused returns the names (relative to s) of the arrays in s that were
// never read through s or any view sharing its record, sorted.
func (s *Set) Unused() []string {
	var out []string
	for _, k := range s.Keys() {
		if !s.use.used[s.entries[k].full] {
			out = append(out, k)
		}
	}
	return out
}

// MarkUsed marks the named arrays as read (for keys a caller consumes in
// another way, such as metadata).
func (s *Set) MarkUsed(names ...string) {
	for _, n := range names {
		if e, ok := s.entries[n]; ok {
			s.use.used[e.full] = true
		}
	}
}

func checkShape(name string, got, want []int) error {
	if want == nil {
		return nil
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("params: %q has shape %v, want %v: %w", name, got, want, ErrShape)
	}
	return nil
}

// Get returns a row-major copy of the float array named name, converted to T,
// after checking that its shape is exactly shape (pass no shape to accept any).
// float32 data read as float64 is exact; float64 data read as float32 is
// rounded. Integer, boolean and string arrays are refused with ErrDType.
func Get[T num.Float](s *Set, name string, shape ...int) ([]T, error) {
	a, err := s.Array(name)
	if err != nil {
		return nil, err
	}
	if len(shape) > 0 || len(a.Shape) == 0 {
		if err := checkShape(name, a.Shape, shapeOrScalar(shape)); err != nil {
			return nil, err
		}
	}
	out := make([]T, a.Len())
	switch x := a.Data.(type) {
	case []float32:
		for i, v := range x {
			out[i] = T(v)
		}
	case []float64:
		for i, v := range x {
			out[i] = T(v)
		}
	default:
		return nil, fmt.Errorf("params: %q holds %v, want float32 or float64: %w", name, a.DType(), ErrDType)
	}
	return out, nil
}

// shapeOrScalar lets Get(s, name) with no shape accept a 0-d array.
func shapeOrScalar(shape []int) []int {
	if len(shape) == 0 {
		return nil
	}
	return shape
}

// Ints returns the integer array named name as []int after checking its
// shape (pass no shape to accept any). Float arrays are refused with ErrDType.
func Ints(s *Set, name string, shape ...int) ([]int, error) {
	a, err := s.Array(name)
	if err != nil {
		return nil, err
	}
	if len(shape) > 0 {
		if err := checkShape(name, a.Shape, shape); err != nil {
			return nil, err
		}
	}
	out := make([]int, a.Len())
	switch x := a.Data.(type) {
	case []int64:
		for i, v := range x {
			out[i] = int(v)
		}
	case []int32:
		for i, v := range x {
			out[i] = int(v)
		}
	default:
		return nil, fmt.Errorf("params: %q holds %v, want an integer array: %w", name, a.DType(), ErrDType)
	}
	return out, nil
}

// String returns the 0-d string array named name (the reference cases' JSON
// "meta" is one).
func (s *Set) String(name string) (string, error) {
	a, err := s.Array(name)
	if err != nil {
		return "", err
	}
	x, ok := a.Data.([]string)
	if !ok || len(a.Shape) != 0 {
		return "", fmt.Errorf("params: %q is %v %v, want a 0-d string: %w", name, a.DType(), a.Shape, ErrDType)
	}
	return x[0], nil
}

// Strings returns the string array named name, flattened.
func (s *Set) Strings(name string) ([]string, error) {
	a, err := s.Array(name)
	if err != nil {
		return nil, err
	}
	x, ok := a.Data.([]string)
	if !ok {
		return nil, fmt.Errorf("params: %q holds %v, want strings: %w", name, a.DType(), ErrDType)
	}
	return slices.Clone(x), nil
}

// Put stores a copy of data under name with the given shape, replacing any
// array of that name.
func Put[T num.Float](s *Set, name string, shape []int, data []T) error {
	if prod(shape) != len(data) {
		return fmt.Errorf("params: put %q: %d elements for shape %v: %w", name, len(data), shape, ErrShape)
	}
	var d any
	switch x := any(data).(type) {
	case []float32:
		d = slices.Clone(x)
	case []float64:
		d = slices.Clone(x)
	default:
		var z T
		if unsafe.Sizeof(z) == 4 {
			c := make([]float32, len(data))
			for i, v := range data {
				c[i] = float32(v)
			}
			d = c
		} else {
			c := make([]float64, len(data))
			for i, v := range data {
				c[i] = float64(v)
			}
			d = c
		}
	}
	return s.PutArray(name, &Array{Shape: slices.Clone(shape), Data: d})
}

// PutInts stores a copy of integer data under name (as int64).
func PutInts(s *Set, name string, shape []int, data []int) error {
	if prod(shape) != len(data) {
		return fmt.Errorf("params: put %q: %d elements for shape %v: %w", name, len(data), shape, ErrShape)
	}
	c := make([]int64, len(data))
	for i, v := range data {
		c[i] = int64(v)
	}
	return s.PutArray(name, &Array{Shape: slices.Clone(shape), Data: c})
}

// PutString stores a 0-d string under name.
func PutString(s *Set, name, value string) error {
	return s.PutArray(name, &Array{Shape: []int{}, Data: []string{value}})
}

// PutArray stores a (without copying) under name, after checking that its
// data type is supported and its length matches its shape.
func (s *Set) PutArray(name string, a *Array) error {
	if name == "" {
		return fmt.Errorf("params: empty key: %w", ErrMissing)
	}
	var n int
	switch x := a.Data.(type) {
	case []float32:
		n = len(x)
	case []float64:
		n = len(x)
	case []int64:
		n = len(x)
	case []int32:
		n = len(x)
	case []bool:
		n = len(x)
	case []string:
		n = len(x)
	default:
		return fmt.Errorf("params: put %q: unsupported data %T: %w", name, a.Data, ErrDType)
	}
	if n != a.Len() {
		return fmt.Errorf("params: put %q: %d elements for shape %v: %w", name, n, a.Shape, ErrShape)
	}
	full := name
	if e, ok := s.entries[name]; ok {
		full = e.full
	}
	s.entries[name] = entry{full: full, arr: a}
	return nil
}

// Merge copies every array of o into s under prefix+name (sharing data).
func (s *Set) Merge(prefix string, o *Set) error {
	for _, k := range o.Keys() {
		if err := s.PutArray(prefix+k, o.entries[k].arr); err != nil {
			return err
		}
	}
	return nil
}
