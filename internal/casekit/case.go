package casekit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// Any, in a shape pattern given to Dims, matches an axis of any length.
const Any = -1

// Case is one run of a reference case: the case file it reads, the set it
// writes its results to and how its errors read. Its methods record the
// first error; see the package documentation.
type Case struct {
	// In is the whole case file as params.Open reads it: "meta",
	// "params/…", "in/…" and the reference results.
	In *params.Set
	// Out receives the results: "out/…", "grad/in/…", "grad/params/…".
	Out *params.Set
	// Prefix starts every error message, such as "ipa: RunCase".
	Prefix string
	// ErrConfig, when not nil, is wrapped by the errors about the case
	// itself: a malformed meta or configuration, an unknown dtype or case
	// kind and unused keys.
	ErrConfig error

	err error
}

// New returns a Case reading in, with an empty result set, whose errors
// start with prefix and, for errors about the case itself, wrap errConfig
// (which may be nil).
func New(in *params.Set, prefix string, errConfig error) *Case {
	return &Case{In: in, Out: params.New(), Prefix: prefix, ErrConfig: errConfig}
}

// Err returns the first error the case met, or nil.
func (c *Case) Err() error { return c.err }

// Result returns the result set, or nil and the first error the case met.
func (c *Case) Result() (*params.Set, error) {
	if c.err != nil {
		return nil, c.err
	}
	return c.Out, nil
}

// Errorf returns an error with the case's prefix and records it if it is
// the first. Its format may wrap an error with %w.
func (c *Case) Errorf(format string, a ...any) error {
	return c.record(fmt.Errorf("%s: %w", c.Prefix, fmt.Errorf(format, a...)))
}

// ConfigErrorf is Errorf for an error about the case itself: the error
// also wraps c.ErrConfig.
func (c *Case) ConfigErrorf(format string, a ...any) error {
	inner := fmt.Errorf(format, a...)
	if c.ErrConfig == nil {
		return c.record(fmt.Errorf("%s: %w", c.Prefix, inner))
	}
	return c.record(fmt.Errorf("%s: %w: %w", c.Prefix, inner, c.ErrConfig))
}

// Fail records err, an error that already says where it comes from (such
// as one from the module itself), if it is the first, and returns it.
func (c *Case) Fail(err error) error {
	if err == nil {
		return nil
	}
	return c.record(err)
}

// wrap adds the prefix to err, an error from params, and records it.
func (c *Case) wrap(err error) error {
	return c.record(fmt.Errorf("%s: %w", c.Prefix, err))
}

// record keeps err as the case's error if it is the first, and returns it.
func (c *Case) record(err error) error {
	if c.err == nil {
		c.err = err
	}
	return err
}

// ReadMeta decodes the case's "meta" (a 0-d unicode array holding JSON)
// into v.
func (c *Case) ReadMeta(v any) error {
	if c.err != nil {
		return c.err
	}
	str, err := c.In.String("meta")
	if err != nil {
		return c.wrap(err)
	}
	if err := json.Unmarshal([]byte(str), v); err != nil {
		return c.ConfigErrorf("meta: %v", err)
	}
	return nil
}

// CheckCase fails unless kind, the case's meta.case, is one of want.
func (c *Case) CheckCase(kind string, want ...string) error {
	if c.err != nil {
		return c.err
	}
	if slices.Contains(want, kind) {
		return nil
	}
	return c.ConfigErrorf("case %q, want %s", kind, quoteJoin(want))
}

// quoteJoin returns "a", "a or b" or "a, b or c" with each name quoted.
func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// ByDType returns f32 for dtype "float32" and f64 for "float64"; a runner
// passes the two instances of its generic run function. Another dtype is an
// error.
func ByDType[F any](c *Case, dtype string, f32, f64 F) (F, error) {
	switch dtype {
	case "float32":
		return f32, c.err
	case "float64":
		return f64, c.err
	}
	var zero F
	return zero, c.ConfigErrorf("dtype %q, want float32 or float64", dtype)
}

// Dims returns the shape of key, checked against pattern: the same rank
// and, on each axis where pattern is not Any, the same length. A runner
// reads its sizes this way before reading the arrays with Get.
func (c *Case) Dims(key string, pattern ...int) ([]int, error) {
	if c.err != nil {
		return nil, c.err
	}
	shape, err := c.In.Shape(key)
	if err != nil {
		return nil, c.wrap(err)
	}
	ok := len(shape) == len(pattern)
	for i := 0; ok && i < len(shape); i++ {
		ok = pattern[i] == Any || pattern[i] == shape[i]
	}
	if !ok {
		return nil, c.Errorf("%s has shape %v, want %s: %w", key, shape, patternString(pattern), num.ErrShape)
	}
	return shape, nil
}

// patternString writes a shape pattern as [N 3], N for Any.
func patternString(pattern []int) string {
	s := make([]string, len(pattern))
	for i, d := range pattern {
		if d == Any {
			s[i] = "N"
		} else {
			s[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

// Get returns the array key of the case converted to T, checking that its
// shape is exactly shape, and marks it used. It returns nil after an error.
func Get[T num.Float](c *Case, key string, shape ...int) []T {
	if c.err != nil {
		return nil
	}
	x, err := params.Get[T](c.In, key, shape...)
	if err != nil {
		c.wrap(err)
		return nil
	}
	return x
}

// Ints is Get for an integer array.
func (c *Case) Ints(key string, shape ...int) []int {
	if c.err != nil {
		return nil
	}
	x, err := params.Ints(c.In, key, shape...)
	if err != nil {
		c.wrap(err)
		return nil
	}
	return x
}

// Put stores x with the given shape in the result set under key.
func Put[T num.Float](c *Case, key string, shape []int, x []T) {
	if c.err == nil {
		if err := params.Put(c.Out, key, shape, x); err != nil {
			c.wrap(err)
		}
	}
}

// PutInts is Put for an integer array.
func (c *Case) PutInts(key string, shape []int, x []int) {
	if c.err == nil {
		if err := params.PutInts(c.Out, key, shape, x); err != nil {
			c.wrap(err)
		}
	}
}

// CheckUsed fails if any "params/" or "in/" key of the case was not read,
// naming them all. grad says whether the run wanted gradients: without
// them the cotangents "in/cot_…" may stay unread.
func (c *Case) CheckUsed(grad bool) error {
	if c.err != nil {
		return c.err
	}
	var unused []string
	for _, k := range c.In.Unused() {
		if !strings.HasPrefix(k, "params/") && !strings.HasPrefix(k, "in/") {
			continue
		}
		if !grad && strings.HasPrefix(k, "in/cot_") {
			continue
		}
		unused = append(unused, k)
	}
	if len(unused) > 0 {
		return c.ConfigErrorf("keys not used: %s", strings.Join(unused, ", "))
	}
	return nil
}
