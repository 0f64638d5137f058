package num

import (
	"math"
	"testing"
)

// TestExp32 compares Exp32 with math.Exp rounded to float32 on a dense
// sweep of the range softmax uses, and at the edges.
func TestExp32(t *testing.T) {
	worst := 0.0
	check := func(x float32) {
		want := float32(math.Exp(float64(x)))
		got := Exp32(x)
		if want < math.SmallestNonzeroFloat32*(1<<23) { // below the smallest normal: flushed
			if got != 0 && got != want {
				t.Fatalf("Exp32(%v) = %v, want 0 or %v", x, got, want)
			}
			return
		}
		if math.IsInf(float64(want), 1) {
			if !math.IsInf(float64(got), 1) {
				t.Fatalf("Exp32(%v) = %v, want +Inf", x, got)
			}
			return
		}
		// Distance in units in the last place of float32.
		ulp := float64(math.Nextafter32(want, float32(math.Inf(1))) - want)
		e := math.Abs(float64(got)-float64(want)) / ulp
		worst = math.Max(worst, e)
		// Before its final rounding Exp32 is within ~1e-12 relative of
		// e^x, so it can differ from math.Exp's rounding only where e^x
		// lies within 1e-12 of a rounding boundary, and then by one ulp.
		if e > 1 {
			t.Fatalf("Exp32(%v) = %v, want %v (%.2f ulp)", x, got, want, e)
		}
	}
	for x := float32(-90); x < 89; x += 1.0 / 4096 {
		check(x)
	}
	for _, x := range []float32{0, -0.0, 1e-30, -1e-30, -87.33654, -87.3365, 88.7228, -1e9} {
		check(x)
	}
	if Exp32(float32(math.Inf(-1))) != 0 || !math.IsInf(float64(Exp32(float32(math.Inf(1)))), 1) || !math.IsNaN(float64(Exp32(float32(math.NaN())))) {
		t.Error("Exp32 mishandles ±Inf or NaN")
	}
	t.Logf("Exp32: max error %.3f ulp of float32", worst)
}

// TestExp32Wide checks the unrounded result against math.Exp in float64 on
// the same sweep: the polynomial's truncation error is at most 1.3e-12
// relative, and the table entry, the polynomial's evaluation and the two
// products add a few float64 roundings (≲ 1e-15), so 1.3e-12 + 1e-14 bounds
// it.
func TestExp32Wide(t *testing.T) {
	worst := 0.0
	for x := float32(-87.3); x < 88.7; x += 1.0 / 4096 {
		want := math.Exp(float64(x))
		e := math.Abs(Exp32Wide(x)-want) / want
		worst = math.Max(worst, e)
		if e > 1.31e-12 {
			t.Fatalf("Exp32Wide(%v) = %v, want %v (relative error %.3g)", x, Exp32Wide(x), want, e)
		}
	}
	// Beyond float32's range it defers to math.Exp (finite in float64).
	if got, want := Exp32Wide(100), math.Exp(100); got != want {
		t.Errorf("Exp32Wide(100) = %v, want %v", got, want)
	}
	if Exp32Wide(-88) != 0 || Exp32Wide(float32(math.Inf(-1))) != 0 {
		t.Error("Exp32Wide does not flush below float32's smallest normal")
	}
	t.Logf("Exp32Wide: max relative error %.3g", worst)
}

type named32 float32

// TestFastExp checks that FastExp is Exp32 for float32 and types based on
// it, and math.Exp exactly for float64.
func TestFastExp(t *testing.T) {
	for _, x := range []float64{-100, -87.5, -3.25, -1e-9, 0, 0.5, 1, 20, 88.5, 89, math.Inf(1), math.Inf(-1)} {
		if got, want := FastExp(x), math.Exp(x); got != want {
			t.Errorf("FastExp(float64 %v) = %v, want math.Exp %v", x, got, want)
		}
		x32 := float32(x)
		if got, want := FastExp(x32), Exp32(x32); got != want {
			t.Errorf("FastExp(float32 %v) = %v, want Exp32 %v", x32, got, want)
		}
		if got, want := FastExp(named32(x32)), named32(Exp32(x32)); got != want {
			t.Errorf("FastExp(named32 %v) = %v, want %v", x32, got, want)
		}
	}
	if !math.IsNaN(FastExp(math.NaN())) || !math.IsNaN(float64(FastExp(float32(math.NaN())))) {
		t.Error("FastExp(NaN) is not NaN")
	}
}

// BenchmarkExp compares Exp32 with math.Exp on float32 arguments over the
// range of shifted softmax logits.
func BenchmarkExp(b *testing.B) {
	const n = 4096
	x := make([]float32, n)
	for i := range x {
		x[i] = -20 * float32(i) / n
	}
	y := make([]float32, n)
	for _, bc := range []struct {
		name string
		f    func(float32) float32
	}{
		{"Exp32", Exp32},
		{"math.Exp", func(v float32) float32 { return float32(math.Exp(float64(v))) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				for i, v := range x {
					y[i] = bc.f(v)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*n), "ns/exp")
		})
	}
}
