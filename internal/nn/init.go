package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/num"
)

// Init selects one of AF2's initialisers for a linear layer (supplement
// §1.11.4; the initializer argument of AF2's common_modules.Linear).
type Init int

const (
	// InitLinear ("linear"): W from a normal distribution truncated at
	// ±2 standard deviations, with variance 1/fan_in after truncation
	// (LeCun); bias 0. The default of AF2's linear layers.
	InitLinear Init = iota
	// InitRelu ("relu"): as InitLinear with variance 2/fan_in (He), for
	// layers followed by a ReLU.
	InitRelu
	// InitZeros ("zeros", AF2's "final"): W = 0 and bias 0, for the last
	// layer of each residual branch so that a fresh block is the identity.
	InitZeros
	// InitGating ("gating"): W = 0 and bias 1, for sigmoid gates, so that
	// a fresh gate is open at sigmoid(1) ≈ 0.73 everywhere.
	InitGating
	// InitGlorot ("glorot"): W uniform on ±√(6/(fan_in + fan_out)) (fan_avg
	// variance scaling with scale 1, AF2's glorot_uniform); bias 0.
	InitGlorot
)

// String returns the name AF2's code uses for the initialiser.
func (i Init) String() string {
	switch i {
	case InitLinear:
		return "linear"
	case InitRelu:
		return "relu"
	case InitZeros:
		return "zeros"
	case InitGating:
		return "gating"
	case InitGlorot:
		return "glorot"
	}
	return fmt.Sprintf("Init(%d)", int(i))
}

// truncStdFactor is the standard deviation of a unit normal truncated to
// [−2, 2]; dividing by it makes the truncated samples have the wanted
// variance (AF2's TRUNCATED_NORMAL_STDDEV_FACTOR).
const truncStdFactor = 0.87962566103423978

// NewLinear returns a linear layer [in, out] initialised as AF2 does with
// init (see Init), drawing from rng. With bias false the layer has no bias
// (B is nil); otherwise B is 0, or 1 for InitGating.
//
// For InitLinear and InitRelu each weight is s·z with z a unit normal
// conditioned on |z| ≤ 2 (by rejection) and s = √(scale/in)/0.8796…, so the
// weights have mean 0, standard deviation √(scale/in) and |w| ≤ 2s, as
// haiku's TruncatedNormal gives (scale 1 and 2). rng is not used by
// InitZeros and InitGating and may then be nil. The values are drawn in
// float64 and rounded to T, so float32 and float64 layers drawn from the
// same seed agree to float32 rounding.
//
// NewLinear panics if in or out is negative, if init is not one of the Init
// constants, or if rng is nil where it is needed.
func NewLinear[T num.Float](rng *rand.Rand, in, out int, init Init, bias bool) LinearParams[T] {
	mustDims("NewLinear", in, out)
	p := LinearParams[T]{W: make([]T, in*out), In: in, Out: out}
	if bias {
		p.B = make([]T, out)
	}
	switch init {
	case InitLinear, InitRelu:
		scale := 1.0
		if init == InitRelu {
			scale = 2
		}
		s := math.Sqrt(scale/float64(in)) / truncStdFactor
		for i := range p.W {
			p.W[i] = T(s * truncNormal(rng))
		}
	case InitZeros:
	case InitGating:
		for i := range p.B {
			p.B[i] = 1
		}
	case InitGlorot:
		lim := math.Sqrt(6 / float64(in+out))
		for i := range p.W {
			p.W[i] = T(lim * (2*rng.Float64() - 1))
		}
	default:
		panic(fmt.Sprintf("nn: NewLinear: unknown initialiser %v", init))
	}
	return p
}

// truncNormal returns a unit normal sample conditioned on |z| ≤ 2, by
// rejection (about 4.6% of the draws are rejected).
func truncNormal(rng *rand.Rand) float64 {
	for {
		if z := rng.NormFloat64(); math.Abs(z) <= 2 {
			return z
		}
	}
}

// NewLayerNorm returns a layer norm over c channels initialised as AF2 does:
// scale 1 and offset 0, so that a fresh layer only normalises.
func NewLayerNorm[T num.Float](c int) LayerNormParams[T] {
	mustDims("NewLayerNorm", c)
	p := LayerNormParams[T]{Scale: make([]T, c), Offset: make([]T, c), C: c}
	for i := range p.Scale {
		p.Scale[i] = 1
	}
	return p
}
