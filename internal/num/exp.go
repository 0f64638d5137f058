package num

import (
	"math"
	"unsafe"
)

// Exp32 returns e^x for a float32 argument, within one ulp of math.Exp
// rounded to float32, at about half the cost of math.Exp. Softmax and the
// sigmoid gates spend one exponential per element, and with math.Exp that
// exponential costs as much as the matrix products around it.
//
// Results below float32's smallest normal (x < −87.3) are flushed to 0,
// which changes a softmax by less than 1e-37 relative; overflow gives +Inf
// and NaN gives NaN, as math.Exp does.
func Exp32(x float32) float32 { return float32(Exp32Wide(x)) }

// Exp32Wide is Exp32 before its final rounding: e^x for a float32 argument as
// a float64 within 1.3e-12 relative of the exact value (0 below float32's
// smallest normal, x < −87.3). Callers that go on computing in float64, such
// as a sigmoid 1/(1 + e^−x), round once at the end instead of twice.
//
// x = (32m + j)·ln2/32 + r with |r| ≤ ln2/64, so e^x = 2^m · 2^(j/32) · e^r,
// with 2^(j/32) from a table and e^r the degree-4 Taylor polynomial in
// float64, whose truncation error |r|^5/5! ≤ 1.3e-12 is far below float32's
// half-ulp; 2^m is built from its exponent bits. Arguments above 88.7 (whose
// exponential overflows float32) and NaN go to math.Exp.
func Exp32Wide(x float32) float64 {
	const (
		scale = 32 / math.Ln2 // x in units of ln2/32
		step  = math.Ln2 / 32
		magic = 0x1.8p52 // adding it rounds to an integer, kept in the low bits
	)
	switch {
	case x < -87.33654: // e^x below the smallest normal float32
		return 0
	case x > 88.72283 || x != x: // overflow and NaN: rare, let math handle them
		return math.Exp(float64(x))
	}
	xf := float64(x)
	t := xf*scale + magic
	k := t - magic // round(x·32/ln2)
	r := xf - k*step
	kb := int64(math.Float64bits(t)<<32) >> 32 // the same integer, from t's low bits
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24))))
	return p * exp2Frac[kb&31] * math.Float64frombits(uint64((kb>>5)+1023)<<52)
}

// FastExp returns e^x in T: Exp32 for float32 (and types based on it),
// math.Exp for float64. Use it where an exponential per element dominates a
// kernel's cost; num.Exp is math.Exp in every type.
func FastExp[T Float](x T) T {
	if unsafe.Sizeof(x) == 4 {
		return T(Exp32(float32(x)))
	}
	return T(math.Exp(float64(x)))
}

// exp2Frac[j] is 2^(j/32), correctly rounded; a read-only table.
var exp2Frac = [32]float64{
	1,                  // 2^(0/32)
	1.0218971486541166, // 2^(1/32)
	1.0442737824274138, // 2^(2/32)
	1.0671404006768237, // 2^(3/32)
	1.0905077326652577, // 2^(4/32)
	1.1143867425958924, // 2^(5/32)
	1.1387886347566916, // 2^(6/32)
	1.1637248587775775, // 2^(7/32)
	1.189207115002721,  // 2^(8/32)
	1.215247359980469,  // 2^(9/32)
	1.241857812073484,  // 2^(10/32)
	1.2690509571917332, // 2^(11/32)
	1.2968395546510096, // 2^(12/32)
	1.3252366431597413, // 2^(13/32)
	1.3542555469368927, // 2^(14/32)
	1.3839098819638318, // 2^(15/32)
	1.4142135623730949, // 2^(16/32)
	1.4451808069770467, // 2^(17/32)
	1.4768261459394993, // 2^(18/32)
	1.5091644275934226, // 2^(19/32)
	1.542210825407941,  // 2^(20/32)
	1.5759808451078865, // 2^(21/32)
	1.6104903319492543, // 2^(22/32)
	1.6457554781539647, // 2^(23/32)
	1.6817928305074292, // 2^(24/32)
	1.7186192981224779, // 2^(25/32)
	1.7562521603732995, // 2^(26/32)
	1.7947090750031072, // 2^(27/32)
	1.8340080864093424, // 2^(28/32)
	1.8741676341103,    // 2^(29/32)
	1.9152065613971474, // 2^(30/32)
	1.9571441241754002, // 2^(31/32)
}

// Is32 reports whether T is a 4-byte float (float32 or a type defined on
// it): the test of the float32 fast paths of the kernels.
func Is32[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
}

// As32 views x, whose element is a 4-byte float (Is32[T]() holds), as a
// []float32 sharing its storage, for the float32-only kernels.
func As32[T Float](x []T) []float32 {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&x[0])), len(x))
}
