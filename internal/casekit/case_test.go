package casekit

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

var errConfig = errors.New("invalid configuration")

// testCase returns a Case over a small case file: meta, one parameter, a
// [2 3] input, an integer input and a cotangent.
func testCase(t *testing.T, meta string) *Case {
	t.Helper()
	s := params.New()
	for _, err := range []error{
		params.PutString(s, "meta", meta),
		params.Put(s, "params/w", []int{3}, []float32{1, 2, 3}),
		params.Put(s, "in/x", []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}),
		params.PutInts(s, "in/aatype", []int{2}, []int{7, 8}),
		params.Put(s, "in/cot_y", []int{2}, []float64{1, 1}),
		params.Put(s, "out/y", []int{2}, []float64{0, 0}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return New(s, "mod: RunCase", errConfig)
}

// checkErr fails unless err wraps want (nil: any error) and names every
// string of names; a nil names with a nil want asks for no error.
func checkErr(t *testing.T, what string, err, want error, names ...string) {
	t.Helper()
	if want == nil && names == nil {
		if err != nil {
			t.Errorf("%s: %v, want no error", what, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: no error, want one naming %q", what, names)
		return
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
	if !strings.HasPrefix(err.Error(), "mod: RunCase: ") {
		t.Errorf("%s: %q lacks the prefix", what, err)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%s: %q does not name %q", what, err, n)
		}
	}
}

// call is a table row: run's result must be want, and it must leave the
// error wantErr naming names (no error when both are nil).
type call[A any] struct {
	name    string
	run     func(A) any
	want    any
	wantErr error
	names   []string
}

func TestGetAndDims(t *testing.T) {
	for _, tc := range []call[*Case]{
		{"get float64", func(c *Case) any { return Get[float64](c, "in/x", 2, 3) }, []float64{1, 2, 3, 4, 5, 6}, nil, nil},
		{"get float32", func(c *Case) any { return Get[float32](c, "params/w", 3) }, []float32{1, 2, 3}, nil, nil},
		{"get wrong shape", func(c *Case) any { return Get[float64](c, "in/x", 3, 2) }, []float64(nil), num.ErrShape, []string{"in/x"}},
		{"get missing", func(c *Case) any { return Get[float64](c, "in/z", 2) }, []float64(nil), params.ErrMissing, []string{"in/z"}},
		{"ints", func(c *Case) any { return c.Ints("in/aatype", 2) }, []int{7, 8}, nil, nil},
		{"ints missing", func(c *Case) any { return c.Ints("in/residue_index") }, []int(nil), params.ErrMissing, []string{"in/residue_index"}},
		{"dims any", func(c *Case) any { d, _ := c.Dims("in/x", Any, 3); return d }, []int{2, 3}, nil, nil},
		{"dims exact", func(c *Case) any { d, _ := c.Dims("in/x", 2, 3); return d }, []int{2, 3}, nil, nil},
		{"dims wrong axis", func(c *Case) any { d, _ := c.Dims("in/x", Any, 4); return d }, []int(nil), num.ErrShape, []string{"in/x", "[N 4]"}},
		{"dims wrong rank", func(c *Case) any { d, _ := c.Dims("in/x", Any, Any, Any); return d }, []int(nil), num.ErrShape, []string{"in/x", "[N N N]"}},
		{"dims missing", func(c *Case) any { d, _ := c.Dims("in/z", Any); return d }, []int(nil), params.ErrMissing, []string{"in/z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCase(t, `{}`)
			got := tc.run(c)
			if !equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			checkErr(t, tc.name, c.Err(), tc.wantErr, tc.names...)
		})
	}
}

// equal compares the slices the table's calls return.
func equal(a, b any) bool {
	switch a := a.(type) {
	case []float64:
		return slices.Equal(a, b.([]float64)) && (a == nil) == (b.([]float64) == nil)
	case []float32:
		return slices.Equal(a, b.([]float32))
	case []int:
		return slices.Equal(a, b.([]int)) && (a == nil) == (b.([]int) == nil)
	}
	return false
}

// TestSticky checks that after the first error the calls do nothing and
// the first error is the one reported.
func TestSticky(t *testing.T) {
	c := testCase(t, `{}`)
	Get[float64](c, "in/missing")
	if x := Get[float64](c, "in/x", 2, 3); x != nil {
		t.Errorf("Get after an error returned %v, want nil", x)
	}
	if d, err := c.Dims("in/x", Any, 3); d != nil || err == nil {
		t.Errorf("Dims after an error returned %v, %v", d, err)
	}
	Put(c, "out/z", []int{1}, []float64{1})
	if c.Out.Has("out/z") {
		t.Error("Put after an error stored its array")
	}
	res, err := c.Result()
	if res != nil {
		t.Error("Result after an error returned a set")
	}
	checkErr(t, "first error", err, params.ErrMissing, "in/missing")
	if strings.Contains(err.Error(), "out/z") {
		t.Errorf("error %q is not the first one", err)
	}
}

func TestPutAndResult(t *testing.T) {
	c := testCase(t, `{}`)
	Put(c, "out/y", []int{2}, []float32{1, 2})
	c.PutInts("out/aatype", []int{2}, []int{3, 4})
	res, err := c.Result()
	if err != nil {
		t.Fatal(err)
	}
	if y, err := params.Get[float32](res, "out/y", 2); err != nil || !slices.Equal(y, []float32{1, 2}) {
		t.Errorf("out/y = %v, %v, want [1 2]", y, err)
	}
	if a, err := params.Ints(res, "out/aatype", 2); err != nil || !slices.Equal(a, []int{3, 4}) {
		t.Errorf("out/aatype = %v, %v, want [3 4]", a, err)
	}
	c = testCase(t, `{}`)
	Put(c, "out/y", []int{3}, []float32{1, 2})
	_, err = c.Result()
	checkErr(t, "put wrong length", err, nil, "out/y")
}

func TestCheckUsed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		read  []string
		grad  bool
		names []string // named as unused; nil: no error
	}{
		{"all read, grad", []string{"params/w", "in/x", "in/aatype", "in/cot_y"}, true, nil},
		{"cotangent unread without grad", []string{"params/w", "in/x", "in/aatype"}, false, nil},
		{"cotangent unread with grad", []string{"params/w", "in/x", "in/aatype"}, true, []string{"in/cot_y"}},
		{"parameter and input unread", []string{"in/aatype"}, false, []string{"params/w", "in/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCase(t, `{}`)
			c.In.MarkUsed(tc.read...)
			var want error
			if tc.names != nil {
				want = errConfig
			}
			err := c.CheckUsed(tc.grad)
			checkErr(t, tc.name, err, want, tc.names...)
			if err != nil && (strings.Contains(err.Error(), "out/y") || strings.Contains(err.Error(), "meta")) {
				t.Errorf("%q names a key outside params/ and in/", err)
			}
			if err != c.Err() {
				t.Errorf("CheckUsed returned %v but recorded %v", err, c.Err())
			}
		})
	}
}

func TestMeta(t *testing.T) {
	const meta = `{"case": "mod", "config": {"c": 8, "half": 2.5, "neg": -1, "word": "x", "inf": 1e9, "flag": false}}`
	for _, tc := range []call[*Meta]{
		{"int", func(m *Meta) any { return m.Int("c") }, 8, nil, nil},
		{"int missing", func(m *Meta) any { return m.Int("heads") }, 0, params.ErrMissing, []string{"heads"}},
		{"int fraction", func(m *Meta) any { return m.Int("half") }, 0, errConfig, []string{"half"}},
		{"int negative", func(m *Meta) any { return m.Int("neg") }, 0, errConfig, []string{"neg"}},
		{"int string", func(m *Meta) any { return m.Int("word") }, 0, errConfig, []string{"word"}},
		{"int or present", func(m *Meta) any { return m.IntOr("c", 3) }, 8, nil, nil},
		{"int or absent", func(m *Meta) any { return m.IntOr("heads", 3) }, 3, nil, nil},
		{"float or present", func(m *Meta) any { return m.FloatOr("half", 1) }, 2.5, nil, nil},
		{"float or absent", func(m *Meta) any { return m.FloatOr("eps", 1e-3) }, 1e-3, nil, nil},
		{"float or string", func(m *Meta) any { return m.FloatOr("word", 1) }, 0.0, errConfig, []string{"word"}},
		{"want equal", func(m *Meta) any { return m.Want("inf", 1e9) }, error(nil), nil, nil},
		{"want absent", func(m *Meta) any { return m.Want("eps", 1e-5) }, error(nil), nil, nil},
		{"want bool", func(m *Meta) any { return m.Want("flag", false) }, error(nil), nil, nil},
		{"want other", func(m *Meta) any { return m.Want("inf", 3e4) != nil }, true, errConfig, []string{"inf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCase(t, meta)
			m, err := c.Meta()
			if err != nil {
				t.Fatal(err)
			}
			if m.Case != "mod" {
				t.Errorf("case %q, want mod", m.Case)
			}
			if got := tc.run(m); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			checkErr(t, tc.name, c.Err(), tc.wantErr, tc.names...)
		})
	}
}

func TestReadMetaErrors(t *testing.T) {
	c := testCase(t, `{"case": 3}`)
	var m struct {
		Case string `json:"case"`
	}
	checkErr(t, "bad meta", c.ReadMeta(&m), errConfig, "meta")
	c = New(params.New(), "mod: RunCase", errConfig)
	checkErr(t, "no meta", c.ReadMeta(&m), params.ErrMissing, "meta")
}

func TestCheckCaseAndDType(t *testing.T) {
	for _, tc := range []struct {
		kind, dtype string
		want32      bool
		names       []string // named in the error; nil: none
	}{
		{"a", "float32", true, nil},
		{"b", "float64", false, nil},
		{"c", "float64", false, []string{`"c"`, `"a" or "b"`}},
		{"a", "float16", false, []string{"float16"}},
	} {
		c := testCase(t, `{}`)
		c.CheckCase(tc.kind, "a", "b")
		run, _ := ByDType(c, tc.dtype, func() bool { return true }, func() bool { return false })
		var want error
		if tc.names != nil {
			want = errConfig
		}
		checkErr(t, tc.kind+" "+tc.dtype, c.Err(), want, tc.names...)
		if want == nil && run() != tc.want32 {
			t.Errorf("%s: ByDType chose the wrong function", tc.dtype)
		}
	}
}

// TestFail checks that Fail records an error unchanged, keeps the first
// and ignores nil.
func TestFail(t *testing.T) {
	c := testCase(t, `{}`)
	first, second := errors.New("first"), errors.New("second")
	if c.Fail(nil) != nil || c.Err() != nil {
		t.Fatalf("Fail(nil) recorded %v", c.Err())
	}
	if c.Fail(first) != first || c.Fail(second) != second || c.Err() != first {
		t.Errorf("Err() = %v after Fail(first), Fail(second); want first", c.Err())
	}
}

// TestNilErrConfig checks that a runner without a configuration error
// still gets prefixed errors naming the key.
func TestNilErrConfig(t *testing.T) {
	c := testCase(t, `{}`)
	c.ErrConfig = nil
	c.CheckUsed(true)
	checkErr(t, "unused", c.Err(), nil, "params/w")
}
