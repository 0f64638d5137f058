package rigid

import (
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/num"
)

// RandomQuat returns a unit quaternion drawn uniformly from the 3-sphere
// (four independent standard normals, normalised), with the sign chosen so
// that w ≥ 0. Its rotation is distributed by the Haar (uniform) measure on
// SO(3). The draw is made in float64 and rounded to T.
func RandomQuat[T num.Float](rng *rand.Rand) Quat[T] {
	for {
		q := [4]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		n := math.Sqrt(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3])
		if n < 1e-6 {
			// Direction undefined to float64 precision; happens with
			// probability ~1e-25. Draw again.
			continue
		}
		if q[0] < 0 {
			n = -n
		}
		return Quat[T]{T(q[0] / n), T(q[1] / n), T(q[2] / n), T(q[3] / n)}
	}
}

// RandomRotation returns a frame with a uniformly (Haar) distributed random
// rotation and zero translation. The matrix is computed in float64 from
// RandomQuat's draw and rounded to T, so it is orthonormal to T's rounding.
func RandomRotation[T num.Float](rng *rand.Rand) Rigid[T] {
	q := RandomQuat[float64](rng)
	r := QuatToRot(q)
	var f Rigid[T]
	for i, v := range r {
		f.Rot[i] = T(v)
	}
	return f
}
