package rigid_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/num/quat"
	"gonum.org/v1/gonum/spatial/r3"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// randFrame returns a frame with a Haar-random rotation and a translation
// with entries uniform in [-10, 10) (ångström-sized).
func randFrame[T num.Float](rng *rand.Rand) rigid.Rigid[T] {
	f := rigid.RandomRotation[T](rng)
	for i := range f.Trans {
		f.Trans[i] = T(20*rng.Float64() - 10)
	}
	return f
}

func randVec[T num.Float](rng *rand.Rand, s float64) [3]T {
	return [3]T{T(s * rng.NormFloat64()), T(s * rng.NormFloat64()), T(s * rng.NormFloat64())}
}

// maxDiff returns the largest entrywise difference of two frames.
func maxDiff[T num.Float](a, b rigid.Rigid[T]) float64 {
	d := 0.0
	for i := range a.Rot {
		d = math.Max(d, math.Abs(float64(a.Rot[i]-b.Rot[i])))
	}
	for i := range a.Trans {
		d = math.Max(d, math.Abs(float64(a.Trans[i]-b.Trans[i])))
	}
	return d
}

// tolFor is the tolerance of the property tests for T: the frames have
// translations up to ~20 and rotations of norm 1, and each property chains
// at most a few products of 3-term sums, so round-off stays within ~100 ulp
// of 20: 100·20·ε is 4.4e-13 in float64 and 2.4e-4 in float32; we use 1e-12
// and 5e-5 (a float32 product of three frames measures ~1e-5 at worst).
func tolFor[T num.Float]() float64 {
	var z T
	if _, ok := any(z).(float32); ok {
		return 5e-5
	}
	return 1e-12
}

func TestProperties(t *testing.T) {
	t.Run("float64", testProperties[float64])
	t.Run("float32", testProperties[float32])
}

func testProperties[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tol := tolFor[T]()
	id := rigid.Identity[T]()
	worst := map[string]float64{}
	note := func(name string, v float64) { worst[name] = math.Max(worst[name], v) }
	for range 200 {
		a, b, c := randFrame[T](rng), randFrame[T](rng), randFrame[T](rng)
		note("associativity", maxDiff(a.Compose(b).Compose(c), a.Compose(b.Compose(c))))
		note("T∘T⁻¹ = id", maxDiff(a.Compose(a.Invert()), id))
		note("T⁻¹∘T = id", maxDiff(a.Invert().Compose(a), id))
		p := randVec[T](rng, 10)
		q := a.InvertApply(a.Apply(p))
		note("InvertApply∘Apply", math.Max(math.Abs(float64(q[0]-p[0])), math.Max(math.Abs(float64(q[1]-p[1])), math.Abs(float64(q[2]-p[2])))))
		// Apply of a composition is the composition of applies.
		x, y := a.Compose(b).Apply(p), a.Apply(b.Apply(p))
		note("apply(a∘b) = apply(a)∘apply(b)", math.Max(math.Abs(float64(x[0]-y[0])), math.Max(math.Abs(float64(x[1]-y[1])), math.Abs(float64(x[2]-y[2])))))
		if err := a.CheckRotation(10 * float64(num.Eps[T]())); err != nil {
			t.Errorf("RandomRotation: %v", err)
		}
	}
	for name, v := range worst {
		t.Logf("%s: max error %.3g (tolerance %.3g)", name, v, tol)
		if v > tol {
			t.Errorf("%s: max error %.3g > %.3g", name, v, tol)
		}
	}
}

// specialQuats are unit quaternions of the identity and of 180° rotations
// (w = 0), where rotation-to-quaternion methods based on the trace fail.
func specialQuats() []rigid.Quat[float64] {
	s := 1 / math.Sqrt2
	t := 1 / math.Sqrt(3)
	return []rigid.Quat[float64]{
		{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1},
		{0, s, s, 0}, {0, 0, s, -s}, {0, t, -t, t}, {s, 0, s, 0},
		{1e-9, 0, 0, 1}, {1e-12, 0.6, 0, 0.8},
	}
}

// TestQuatRoundTrip checks quaternion → rotation → quaternion up to sign and
// rotation → quaternion → rotation, for random and special (180°)
// rotations, and that the matrices are proper rotations.
//
// Tolerance 1e-14: every step is a few float64 products of unit-size
// numbers, and the 4×4 eigenproblem of RotToQuat is well conditioned (gap
// 4/3 between its top eigenvalue and the rest), so errors stay at a few ε.
func TestQuatRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	qs := specialQuats()
	for range 500 {
		qs = append(qs, rigid.RandomQuat[float64](rng))
	}
	// Random 180° rotations: w = 0, random axis.
	for range 50 {
		v := randVec[float64](rng, 1)
		n := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
		qs = append(qs, rigid.Quat[float64]{0, v[0] / n, v[1] / n, v[2] / n})
	}
	var errQ, errR, errOrth float64
	for _, q := range qs {
		r := rigid.QuatToRot(q)
		f := rigid.Rigid[float64]{Rot: r}
		if err := f.CheckRotation(1e-14); err != nil {
			t.Errorf("QuatToRot(%v): %v", q, err)
		}
		got := rigid.RotToQuat(r)
		if got[0] < 0 {
			t.Errorf("RotToQuat(R(%v)) = %v has w < 0", q, got)
		}
		s := 1.0
		if got[0]*q[0]+got[1]*q[1]+got[2]*q[2]+got[3]*q[3] < 0 {
			s = -1
		}
		for i := range q {
			errQ = math.Max(errQ, math.Abs(s*got[i]-q[i]))
		}
		r2 := rigid.QuatToRot(got)
		for i := range r {
			errR = math.Max(errR, math.Abs(r2[i]-r[i]))
		}
		// Orthonormality of the quaternion's matrix.
		for i := 0; i < 3; i++ {
			for j := 0; j < 3; j++ {
				d := r[i]*r[j] + r[3+i]*r[3+j] + r[6+i]*r[6+j]
				if i == j {
					d--
				}
				errOrth = math.Max(errOrth, math.Abs(d))
			}
		}
	}
	t.Logf("%d rotations (%d of them 180°): quat round trip %.3g, rot round trip %.3g, |RᵀR−I| %.3g (tolerance 1e-14)",
		len(qs), 50+8, errQ, errR, errOrth)
	if errQ > 1e-14 || errR > 1e-14 || errOrth > 1e-14 {
		t.Error("round trip or orthonormality error above 1e-14")
	}
}

// TestAgainstGonum checks QuatMultiply against gonum's quat.Mul and
// QuatToRot against gonum's r3.Rotation (the float64 reference path) on
// random quaternions and vectors. Tolerance 1e-14: both compute the same
// products of unit-size numbers in a different order.
func TestAgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	worstMul, worstRot := 0.0, 0.0
	for range 200 {
		a, b := rigid.RandomQuat[float64](rng), rigid.RandomQuat[float64](rng)
		// Non-unit quaternions too: the product is bilinear.
		a[0] *= 1.5
		got := rigid.QuatMultiply(a, b)
		want := quat.Mul(quat.Number{Real: a[0], Imag: a[1], Jmag: a[2], Kmag: a[3]}, quat.Number{Real: b[0], Imag: b[1], Jmag: b[2], Kmag: b[3]})
		for i, w := range []float64{want.Real, want.Imag, want.Jmag, want.Kmag} {
			worstMul = math.Max(worstMul, math.Abs(got[i]-w))
		}
		v := randVec[float64](rng, 1)
		f := rigid.Rigid[float64]{Rot: rigid.QuatToRot(b)}
		p := f.Apply(v)
		w := r3.Rotation(quat.Number{Real: b[0], Imag: b[1], Jmag: b[2], Kmag: b[3]}).Rotate(r3.Vec{X: v[0], Y: v[1], Z: v[2]})
		worstRot = math.Max(worstRot, math.Max(math.Abs(p[0]-w.X), math.Max(math.Abs(p[1]-w.Y), math.Abs(p[2]-w.Z))))
	}
	t.Logf("QuatMultiply vs quat.Mul %.3g, QuatToRot·v vs r3.Rotation.Rotate %.3g (tolerance 1e-14)", worstMul, worstRot)
	if worstMul > 1e-14 || worstRot > 1e-14 {
		t.Error("disagreement with gonum above 1e-14")
	}
}

// TestFromThreePointsEquivariant checks that the frame of moved points is
// the moved frame: FromThreePoints(G·a, G·o, G·b) = G∘FromThreePoints(a, o, b)
// for random rigid motions G, in both constructions. The regulariser only
// sees lengths, which G keeps, so the property holds to round-off; tolFor
// justifies the tolerance. It also checks that the Alg. 21 frame is AF2's
// code form built on (C, CA, N) turned by 180° about its y axis: they differ
// by the 1e-8 regulariser, ~eps/(2|v|²) ≈ 2e-9 per axis for bonds of
// 1.5 Å, so on backbone-like geometry we allow 1e-8.
func TestFromThreePointsEquivariant(t *testing.T) {
	t.Run("float64", testEquivariant[float64])
	t.Run("float32", testEquivariant[float32])
}

// backbone returns N, CA, C positions with ideal-like bond lengths, a random
// N–CA–C angle in [100°, 120°], a random orientation and CA within 10 Å of
// the origin.
func backbone[T num.Float](rng *rand.Rand) (n, ca, c [3]T) {
	g := randFrame[float64](rng)
	th := (100 + 20*rng.Float64()) * math.Pi / 180
	s, co := math.Sincos(th)
	pn := g.Apply([3]float64{1.46 * co, 1.46 * s, 0})
	pca := g.Apply([3]float64{})
	pc := g.Apply([3]float64{1.52, 0, 0})
	for i := 0; i < 3; i++ {
		n[i], ca[i], c[i] = T(pn[i]), T(pca[i]), T(pc[i])
	}
	return n, ca, c
}

func testEquivariant[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	tol := tolFor[T]()
	worst, worst21, worstFlip := 0.0, 0.0, 0.0
	for range 200 {
		a, o, b := randVec[T](rng, 1.5), randVec[T](rng, 1.5), randVec[T](rng, 1.5)
		g := randFrame[T](rng)
		f, err := rigid.FromThreePoints(a, o, b)
		if err != nil {
			t.Fatal(err)
		}
		fg, err := rigid.FromThreePoints(g.Apply(a), g.Apply(o), g.Apply(b))
		if err != nil {
			t.Fatal(err)
		}
		worst = math.Max(worst, maxDiff(fg, g.Compose(f)))

		n, ca, c := a, o, b
		f21, err := rigid.FromThreePointsAlg21(n, ca, c)
		if err != nil {
			t.Fatal(err)
		}
		f21g, err := rigid.FromThreePointsAlg21(g.Apply(n), g.Apply(ca), g.Apply(c))
		if err != nil {
			t.Fatal(err)
		}
		worst21 = math.Max(worst21, maxDiff(f21g, g.Compose(f21)))

		// AF2: frame from (C, CA, N), then 180° about y, on backbone-like
		// geometry (bonds of 1.46 and 1.52 Å, N–CA–C angle 100°..120°).
		bn, bca, bc := backbone[T](rng)
		f21, _ = rigid.FromThreePointsAlg21(bn, bca, bc)
		fc, _ := rigid.FromThreePoints(bc, bca, bn)
		flip := fc.Compose(rigid.Rigid[T]{Rot: [9]T{-1, 0, 0, 0, 1, 0, 0, 0, -1}})
		worstFlip = math.Max(worstFlip, maxDiff(flip, f21))
	}
	t.Logf("equivariance: from_3_points %.3g, alg21 %.3g (tolerance %.3g); alg21 vs flipped code form %.3g",
		worst, worst21, tol, worstFlip)
	if worst > tol || worst21 > tol {
		t.Errorf("equivariance error above %.3g", tol)
	}
	flipTol := 1e-8
	if tol > flipTol {
		flipTol = tol
	}
	if worstFlip > flipTol {
		t.Errorf("alg21 frame differs from AF2's flipped code form by %.3g > %.3g", worstFlip, flipTol)
	}
}

// TestAlg21Geometry checks the defining properties of the backbone frame:
// CA at the origin, C on the positive x axis, N in the xy plane with
// positive y (tolerance: float64 round-off on Å-sized coordinates).
func TestAlg21Geometry(t *testing.T) {
	n, ca, c := [3]float64{-0.525, 1.363, 0.2}, [3]float64{0.1, 0, 0.3}, [3]float64{1.526, 0.1, -0.2}
	f, err := rigid.FromThreePointsAlg21(n, ca, c)
	if err != nil {
		t.Fatal(err)
	}
	lc, ln, lca := f.InvertApply(c), f.InvertApply(n), f.InvertApply(ca)
	const tol = 1e-14
	if math.Abs(lca[0])+math.Abs(lca[1])+math.Abs(lca[2]) > tol || lc[0] <= 0 || math.Abs(lc[1]) > tol || math.Abs(lc[2]) > tol || ln[1] <= 0 || math.Abs(ln[2]) > tol {
		t.Errorf("local CA %v, C %v, N %v", lca, lc, ln)
	}
}

// TestHaar checks that RandomRotation is uniform on SO(3) at a fixed seed.
//
// The rotation angle θ of a Haar-random rotation has density (1 − cos θ)/π
// on [0, π], CDF F(θ) = (θ − sin θ)/π. A one-sample Kolmogorov–Smirnov test
// on n = 20000 angles uses the asymptotic 0.1% critical value 1.949/√n
// (≈0.0138): a correct sampler exceeds it with probability 0.001, and the
// seed is fixed, so the test is deterministic. A deliberately wrong sampler
// (θ uniform on [0, π], random axis) must fail the same test, which shows
// the test has power. Moments: each entry R_ij is a coordinate of a uniform
// unit vector, so E[R_ij] = 0 with standard deviation of the mean
// sqrt(1/(3n)) and E[R_ij²] = 1/3 with sqrt((1/5 − 1/9)/n); we allow 5
// standard deviations (a false alarm rate below 1e-6 per entry).
func TestHaar(t *testing.T) {
	const n = 20000
	rng := rand.New(rand.NewPCG(11, 12))
	angles := make([]float64, n)
	var mean, sq [9]float64
	for k := range angles {
		f := rigid.RandomRotation[float64](rng)
		angles[k] = angle(f.Rot)
		for i, v := range f.Rot {
			mean[i] += v / n
			sq[i] += v * v / n
		}
	}
	crit := 1.949 / math.Sqrt(n)
	d := ksAngle(angles)
	t.Logf("KS distance of rotation angles %.4g (0.1%% critical value %.4g)", d, crit)
	if d > crit {
		t.Errorf("rotation angles fail the KS test: D = %.4g > %.4g", d, crit)
	}
	seMean, seSq := math.Sqrt(1.0/(3*n)), math.Sqrt((1.0/5-1.0/9)/n)
	worstMean, worstSq := 0.0, 0.0
	for i := range mean {
		worstMean = math.Max(worstMean, math.Abs(mean[i]))
		worstSq = math.Max(worstSq, math.Abs(sq[i]-1.0/3))
	}
	t.Logf("max |E[R_ij]| %.4g (limit %.4g), max |E[R_ij²]−1/3| %.4g (limit %.4g)", worstMean, 5*seMean, worstSq, 5*seSq)
	if worstMean > 5*seMean || worstSq > 5*seSq {
		t.Error("moments of R off")
	}

	// Negative control: uniform angle, random axis.
	for k := range angles {
		axis := randVec[float64](rng, 1)
		nrm := math.Sqrt(axis[0]*axis[0] + axis[1]*axis[1] + axis[2]*axis[2])
		th := math.Pi * rng.Float64()
		s, c := math.Sincos(th / 2)
		q := rigid.Quat[float64]{c, s * axis[0] / nrm, s * axis[1] / nrm, s * axis[2] / nrm}
		angles[k] = angle(rigid.QuatToRot(q))
	}
	if bad := ksAngle(angles); bad <= crit {
		t.Errorf("KS test does not reject a uniform-angle sampler: D = %.4g", bad)
	} else {
		t.Logf("uniform-angle sampler rejected: D = %.4g", bad)
	}
}

func angle(r [9]float64) float64 {
	c := (r[0] + r[4] + r[8] - 1) / 2
	return math.Acos(math.Max(-1, math.Min(1, c)))
}

// ksAngle returns the Kolmogorov–Smirnov distance between the empirical CDF
// of angles and F(θ) = (θ − sin θ)/π.
func ksAngle(angles []float64) float64 {
	s := append([]float64(nil), angles...)
	sortFloats(s)
	n := float64(len(s))
	d := 0.0
	for i, th := range s {
		f := (th - math.Sin(th)) / math.Pi
		d = math.Max(d, math.Max(f-float64(i)/n, float64(i+1)/n-f))
	}
	return d
}

func sortFloats(x []float64) {
	// Shell sort keeps the test free of extra imports beyond math.
	for gap := len(x) / 2; gap > 0; gap /= 2 {
		for i := gap; i < len(x); i++ {
			for j := i; j >= gap && x[j-gap] > x[j]; j -= gap {
				x[j-gap], x[j] = x[j], x[j-gap]
			}
		}
	}
}

func TestBadInputs(t *testing.T) {
	nan := math.NaN()
	rng := rand.New(rand.NewPCG(1, 1))
	good := []rigid.Rigid[float64]{randFrame[float64](rng), randFrame[float64](rng)}
	withNaN := append([]rigid.Rigid[float64](nil), good...)
	withNaN[1].Trans[2] = nan
	dst := make([]rigid.Rigid[float64], 2)
	pts := make([]float64, 12)
	inf := [3]float64{math.Inf(1), 0, 0}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"compose length", rigid.Compose(dst, good, good[:1]), num.ErrShape},
		{"compose dst", rigid.Compose(dst[:1], good, good), num.ErrShape},
		{"compose NaN", rigid.Compose(dst, good, withNaN), num.ErrNaN},
		{"invert NaN", rigid.Invert(dst, withNaN), num.ErrNaN},
		{"invert length", rigid.Invert(dst[:1], good), num.ErrShape},
		{"apply points not [n,m,3]", rigid.Apply(make([]float64, 9), good, make([]float64, 9)), num.ErrShape},
		{"apply dst", rigid.Apply(make([]float64, 6), good, pts), num.ErrShape},
		{"apply NaN point", rigid.Apply(pts, good, append(make([]float64, 11), nan)), num.ErrNaN},
		{"apply NaN frame", rigid.ApplyVec(pts, withNaN, pts), num.ErrNaN},
		{"invert apply NaN frame", rigid.InvertApply(pts, withNaN, pts), num.ErrNaN},
		{"from arrays shape", second(rigid.FromArrays(make([]float64, 17), make([]float64, 6))), num.ErrShape},
		{"from arrays trans", second(rigid.FromArrays(make([]float64, 18), make([]float64, 7))), num.ErrShape},
		{"from arrays NaN", second(rigid.FromArrays(append(make([]float64, 17), nan), make([]float64, 6))), num.ErrNaN},
		{"three points coincident", second(rigid.FromThreePoints([3]float64{1, 2, 3}, [3]float64{1, 2, 3}, [3]float64{0, 1, 0})), rigid.ErrDegenerate},
		{"three points collinear", second(rigid.FromThreePoints([3]float64{0, 0, 0}, [3]float64{1, 1, 1}, [3]float64{3, 3, 3})), rigid.ErrDegenerate},
		{"three points all zero (missing atoms)", second(rigid.FromThreePoints([3]float64{}, [3]float64{}, [3]float64{})), rigid.ErrDegenerate},
		{"three points Inf", second(rigid.FromThreePoints(inf, [3]float64{}, [3]float64{0, 1, 0})), num.ErrNaN},
		{"alg21 coincident N", second(rigid.FromThreePointsAlg21([3]float64{1, 0, 0}, [3]float64{1, 0, 0}, [3]float64{2, 0, 0})), rigid.ErrDegenerate},
		{"alg21 collinear", second(rigid.FromThreePointsAlg21([3]float64{-1, 0, 0}, [3]float64{0, 0, 0}, [3]float64{1.5, 0, 0})), rigid.ErrDegenerate},
		{"alg21 collinear float32", second(rigid.FromThreePointsAlg21([3]float32{-1, -1e-5, 0}, [3]float32{0, 0, 0}, [3]float32{1.5, 0, 0})), rigid.ErrDegenerate},
		{"alg21 NaN", second(rigid.FromThreePointsAlg21([3]float64{nan, 0, 0}, [3]float64{}, [3]float64{1, 0, 0})), num.ErrNaN},
		{"not orthonormal", rigid.Rigid[float64]{Rot: [9]float64{1.01, 0, 0, 0, 1, 0, 0, 0, 1}}.CheckRotation(1e-6), rigid.ErrNotRotation},
		{"reflection", rigid.Rigid[float64]{Rot: [9]float64{-1, 0, 0, 0, 1, 0, 0, 0, 1}}.CheckRotation(1e-6), rigid.ErrNotRotation},
		{"zero rotation", rigid.Rigid[float64]{}.CheckRotation(1e-6), rigid.ErrNotRotation},
		{"rotation NaN", rigid.Rigid[float64]{Rot: [9]float64{nan}}.CheckRotation(1e-6), num.ErrNaN},
		{"check rotations", rigid.CheckRotations([]rigid.Rigid[float64]{rigid.Identity[float64](), {}}, 1e-6), rigid.ErrNotRotation},
		{"torsion sinCos length", second(rigid.TorsionFrames(good, make([]float64, 27), []int{0, 1})), num.ErrShape},
		{"torsion aatype length", second(rigid.TorsionFrames(good, make([]float64, 28), []int{0})), num.ErrShape},
		{"torsion aatype range", second(rigid.TorsionFrames(good, make([]float64, 28), []int{0, 21})), num.ErrShape},
		{"torsion aatype negative", second(rigid.TorsionFrames(good, make([]float64, 28), []int{-1, 0})), num.ErrShape},
		{"torsion NaN angle", second(rigid.TorsionFrames(good, append(make([]float64, 27), nan), []int{0, 1})), num.ErrNaN},
		{"torsion NaN frame", second(rigid.TorsionFrames(withNaN, make([]float64, 28), []int{0, 1})), num.ErrNaN},
		{"torsion vjp gradient length", third(rigid.TorsionFramesVJP(good, make([]float64, 28), []int{0, 1}, dst)), num.ErrShape},
		{"atom14 frames length", second(rigid.Atom14Positions(good, []int{0})), num.ErrShape},
		{"atom14 aatype range", second(rigid.Atom14Positions(make([]rigid.Rigid[float64], 8), []int{22})), num.ErrShape},
		{"atom14 vjp gradient length", second(rigid.Atom14PositionsVJP([]int{0}, make([]float64, 41))), num.ErrShape},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got error %v, want %v", c.name, c.err, c.want)
		}
	}
	// The frame of degenerate points is still AF2's value (finite).
	f, err := rigid.FromThreePoints([3]float64{}, [3]float64{1, 2, 3}, [3]float64{1, 2, 3})
	if !errors.Is(err, rigid.ErrDegenerate) || f.Trans != [3]float64{1, 2, 3} || math.IsNaN(f.Rot[0]) {
		t.Errorf("degenerate from_3_points: %v, %v", f, err)
	}
	// Non-degenerate but short (nanometre-sized) bonds are accepted.
	if _, err := rigid.FromThreePoints([3]float64{-0.15, 0, 0}, [3]float64{}, [3]float64{0, 0.1, 0}); err != nil {
		t.Errorf("nm-sized frame: %v", err)
	}
}

func second[A any](_ A, err error) error { return err }

func third[A, B any](_ A, _ B, err error) error { return err }

// TestDegenerateError checks that the error of degenerate points names the
// constructor and the reason and wraps ErrDegenerate, and that returning it
// allocates nothing (ground-truth geometry hits it for every missing atom).
func TestDegenerateError(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"three points coincident", second(rigid.FromThreePoints([3]float32{0.1, 0, 0}, [3]float32{0.1, 0, 0}, [3]float32{1e-30, 2, 3})),
			"rigid: from three points: x axis origin − pNegX is at most 1e-3 long: degenerate points"},
		{"three points collinear", second(rigid.FromThreePoints([3]float64{0, 0, 0}, [3]float64{0, 2, 0}, [3]float64{0, 3.5, 0})),
			"rigid: from three points: points are collinear (the part of pXY − origin off the x axis is at most 1e-3 or sqrt(ε)·|pXY − origin| long): degenerate points"},
		{"alg21 coincident", second(rigid.FromThreePointsAlg21([3]float64{1, 0, 0}, [3]float64{1, 0, 0}, [3]float64{1, 0, 0})),
			"rigid: alg21 frame: x axis C − CA is at most 1e-3 long: degenerate points"},
		{"alg21 collinear", second(rigid.FromThreePointsAlg21([3]float64{-1, 0, 0}, [3]float64{0, 0, 0}, [3]float64{1.5, 0, 0})),
			"rigid: alg21 frame: N, CA and C are collinear (the part of N − CA off the x axis is at most 1e-3 or sqrt(ε)·|N − CA| long): degenerate points"},
	} {
		if !errors.Is(c.err, rigid.ErrDegenerate) {
			t.Errorf("%s: %v does not wrap ErrDegenerate", c.name, c.err)
			continue
		}
		if got := c.err.Error(); got != c.want {
			t.Errorf("%s: message\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
	var zero [3]float32
	if n := testing.AllocsPerRun(100, func() {
		if _, err := rigid.FromThreePoints(zero, zero, zero); err == nil {
			t.Fatal("zero points: no error")
		}
	}); n != 0 {
		t.Errorf("FromThreePoints of degenerate points allocates %v times, want 0", n)
	}
}
