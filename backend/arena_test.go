package backend_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// TestArena checks that an arena's tensors hold what was asked, that the
// first error sticks (later calls return nil) and that HostSlices tells CPU
// tensors from absent ones.
func TestArena(t *testing.T) {
	k := backend.CPU[float64]()
	a := backend.NewArena(k)
	defer a.Free()
	x := a.FromHost([]float64{1, 2, 3})
	z := a.Alloc(4)
	v := a.View(x, 1, 2)
	if a.Err() != nil || x.Len() != 3 || z.Len() != 4 || v.Len() != 2 {
		t.Fatalf("arena tensors: err %v, lengths %d %d %d", a.Err(), x.Len(), z.Len(), v.Len())
	}
	if h, ok := backend.AsHost(v); !ok || h[0] != 2 || h[1] != 3 {
		t.Errorf("view holds %v, want [2 3]", h)
	}
	if a.Alloc(-1) != nil || !errors.Is(a.Err(), num.ErrShape) {
		t.Errorf("Alloc(-1): error %v, want num.ErrShape", a.Err())
	}
	if a.Alloc(2) != nil || a.FromHost([]float64{1}) != nil || a.View(x, 0, 1) != nil {
		t.Error("calls after an error made tensors")
	}
	a.Free()
	a.Free()

	hs, ok := backend.HostSlices[float64](x, nil, z)
	if !ok || len(hs[0]) != 3 || hs[1] != nil || len(hs[2]) != 4 {
		t.Errorf("HostSlices = %v, %v", hs, ok)
	}
}

// TestFill checks the doubling broadcast against a loop, for lengths that
// are and are not powers of two, and its refusal of lengths that do not
// divide.
func TestFill(t *testing.T) {
	k := backend.CPU[float32]()
	src := backend.Host[float32]{1, 2, 3}
	for _, reps := range []int{1, 2, 5, 8, 13} {
		dst := make(backend.Host[float32], 3*reps)
		if err := backend.Fill[float32](k, dst, src); err != nil {
			t.Fatal(err)
		}
		for i, v := range dst {
			if v != src[i%3] {
				t.Fatalf("reps %d: dst[%d] = %v, want %v", reps, i, v, src[i%3])
			}
		}
	}
	if err := backend.Fill[float32](k, make(backend.Host[float32], 7), src); !errors.Is(err, num.ErrShape) {
		t.Errorf("7 from 3: error %v, want num.ErrShape", err)
	}
	if !backend.Absent[float32](nil) || !backend.Absent[float32](backend.Host[float32](nil)) || backend.Absent[float32](src) {
		t.Error("Absent misreports")
	}
}

// TestGrads checks that Flush adds every accumulator to its host array,
// through AccFunc's function too, and that a nil set gives nil
// accumulators and flushes nothing.
func TestGrads(t *testing.T) {
	k := backend.CPU[float64]()
	a := backend.NewArena(k)
	defer a.Free()
	g := backend.NewGrads(a)
	dst := []float64{1, 1}
	var seen []float64
	acc, acc2 := g.Acc(dst), g.AccFunc(1, func(h []float64) { seen = h })
	if err := k.Upload(acc, []float64{2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := k.Upload(acc2, []float64{7}); err != nil {
		t.Fatal(err)
	}
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	if dst[0] != 3 || dst[1] != 4 || len(seen) != 1 || seen[0] != 7 {
		t.Errorf("after Flush dst = %v, AccFunc saw %v; want [3 4] and [7]", dst, seen)
	}
	var none *backend.Grads[float64]
	if none.Acc(dst) != nil || none.Flush() != nil {
		t.Error("a nil Grads made an accumulator or failed to flush")
	}
}

// TestCheckArgs checks that CheckArgs accepts fitting and absent optional
// tensors and names the first missing or mis-sized one.
func TestCheckArgs(t *testing.T) {
	x := backend.Host[float32](make([]float32, 6))
	if err := backend.CheckArgs(backend.Arg[float32]{"x", x, []int{2, 3}, false}, backend.Arg[float32]{"y", nil, []int{4}, true}); err != nil {
		t.Errorf("fitting arguments: %v", err)
	}
	for _, c := range []struct {
		a    backend.Arg[float32]
		want string
	}{
		{backend.Arg[float32]{"x", x, []int{2, 2}, false}, "x has 6 elements, want [2 2] = 4"},
		{backend.Arg[float32]{"y", nil, []int{4}, false}, "y is missing, want [4] = 4 elements"},
	} {
		err := backend.CheckArgs(c.a)
		if !errors.Is(err, num.ErrShape) || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one wrapping num.ErrShape saying %q", c.a.Name, err, c.want)
		}
	}
}
