package rigid

import (
	"errors"
	"fmt"
	"math"

	"github.com/foldkit/foldkit/internal/num"
)

// Rigid is one rigid transformation (a frame): x_global = Rot·x_local + Trans.
//
// Rot is a 3×3 rotation matrix stored row-major (Rot[3*i+j] is row i,
// column j) acting on column vectors; Trans is the translation. A frame maps
// the local coordinates of a residue or rigid group to global coordinates.
// Batches of frames are []Rigid[T].
//
// The same type carries gradients: in the vector-Jacobian products of this
// package a Rigid holds dL/dRot (entrywise, row-major) and dL/dTrans, and
// its Rot need not be a rotation.
type Rigid[T num.Float] struct {
	Rot   [9]T
	Trans [3]T
}

// ErrDegenerate is returned (wrapped) when points do not define a frame:
// coincident or collinear points.
var ErrDegenerate = errors.New("degenerate points")

// ErrNotRotation is returned (wrapped) by CheckRotation for a matrix that is
// not orthonormal with determinant +1.
var ErrNotRotation = errors.New("not a rotation")

// Identity returns the identity frame.
func Identity[T num.Float]() Rigid[T] {
	return Rigid[T]{Rot: [9]T{1, 0, 0, 0, 1, 0, 0, 0, 1}}
}

// Compose returns r∘s, the frame that applies s first and then r:
// (R_r·R_s, R_r·t_s + t_r). The rotations are multiplied as given (no
// re-orthonormalisation), so zero blocks stay zero, as AF2's code does for
// rigid groups a residue type lacks.
func (r Rigid[T]) Compose(s Rigid[T]) Rigid[T] {
	return Rigid[T]{Rot: matMul(r.Rot, s.Rot), Trans: add(matVec(r.Rot, s.Trans), r.Trans)}
}

// Invert returns the inverse frame (Rᵀ, −Rᵀ·t). It assumes Rot is a
// rotation.
func (r Rigid[T]) Invert() Rigid[T] {
	rt := transpose(r.Rot)
	t := matVec(rt, r.Trans)
	return Rigid[T]{Rot: rt, Trans: [3]T{-t[0], -t[1], -t[2]}}
}

// Apply returns R·p + t, the global position of the local point p.
func (r Rigid[T]) Apply(p [3]T) [3]T { return add(matVec(r.Rot, p), r.Trans) }

// ApplyVec returns R·v, the global direction of the local vector v (the
// translation does not act on vectors).
func (r Rigid[T]) ApplyVec(v [3]T) [3]T { return matVec(r.Rot, v) }

// InvertApply returns Rᵀ·(p − t), the local coordinates of the global point
// p (the inverse frame applied to p, assuming Rot is a rotation).
func (r Rigid[T]) InvertApply(p [3]T) [3]T {
	return matTVec(r.Rot, [3]T{p[0] - r.Trans[0], p[1] - r.Trans[1], p[2] - r.Trans[2]})
}

// InvertApplyVec returns Rᵀ·v, the local direction of the global vector v.
func (r Rigid[T]) InvertApplyVec(v [3]T) [3]T { return matTVec(r.Rot, v) }

// CheckRotation returns an error wrapping ErrNotRotation unless r.Rot is a
// proper rotation to within tol: every entry of RᵀR − I and det R − 1 at
// most tol in magnitude. Non-finite entries give an error wrapping
// num.ErrNaN. Inputs rounded to float32 need tol of a few 1e-7.
func (r Rigid[T]) CheckRotation(tol float64) error {
	if err := num.CheckFinite("rigid: rotation", r.Rot[:]); err != nil {
		return err
	}
	var m [9]float64
	for i, v := range r.Rot {
		m[i] = float64(v)
	}
	worst := 0.0
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			s := m[i]*m[j] + m[3+i]*m[3+j] + m[6+i]*m[6+j]
			if i == j {
				s--
			}
			worst = math.Max(worst, math.Abs(s))
		}
	}
	if worst > tol {
		return fmt.Errorf("rigid: rotation has max |RᵀR−I| = %.3g > %.3g: %w", worst, tol, ErrNotRotation)
	}
	det := m[0]*(m[4]*m[8]-m[5]*m[7]) - m[1]*(m[3]*m[8]-m[5]*m[6]) + m[2]*(m[3]*m[7]-m[4]*m[6])
	if math.Abs(det-1) > tol {
		return fmt.Errorf("rigid: rotation has determinant %.6g, want 1 ± %.3g: %w", det, tol, ErrNotRotation)
	}
	return nil
}

// CheckRotations calls CheckRotation on every frame and reports the index of
// the first that fails.
func CheckRotations[T num.Float](frames []Rigid[T], tol float64) error {
	for i := range frames {
		if err := frames[i].CheckRotation(tol); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
	}
	return nil
}

// FromArrays builds n frames from row-major arrays rot [n,3,3] and trans
// [n,3], as stored by AF2-style code. It checks the shapes and that every
// value is finite; it does not require the matrices to be rotations (use
// CheckRotations for that).
func FromArrays[T num.Float](rot, trans []T) ([]Rigid[T], error) {
	n := len(trans) / 3
	if len(trans) != 3*n {
		return nil, fmt.Errorf("rigid: trans has %d elements, not a multiple of 3: %w", len(trans), num.ErrShape)
	}
	if err := num.CheckLen("rigid: rot", rot, 9*n, fmt.Sprintf("[%d,3,3]", n)); err != nil {
		return nil, err
	}
	if err := num.CheckFinite("rigid: rot", rot); err != nil {
		return nil, err
	}
	if err := num.CheckFinite("rigid: trans", trans); err != nil {
		return nil, err
	}
	f := make([]Rigid[T], n)
	for i := range f {
		copy(f[i].Rot[:], rot[9*i:])
		copy(f[i].Trans[:], trans[3*i:])
	}
	return f, nil
}

// ToArrays returns the frames as row-major arrays rot [n,3,3] and trans
// [n,3], the inverse of FromArrays.
func ToArrays[T num.Float](frames []Rigid[T]) (rot, trans []T) {
	rot = make([]T, 9*len(frames))
	trans = make([]T, 3*len(frames))
	for i, f := range frames {
		copy(rot[9*i:], f.Rot[:])
		copy(trans[3*i:], f.Trans[:])
	}
	return rot, trans
}

// checkFrames returns an error wrapping num.ErrNaN if a frame holds a
// non-finite value.
func checkFrames[T num.Float](what string, frames []Rigid[T]) error {
	// Fast path: v − v is 0 for finite v and NaN for NaN and ±Inf, so the
	// sum is 0 exactly when every value is finite.
	var acc T
	for i := range frames {
		f := &frames[i]
		for _, v := range f.Rot {
			acc += v - v
		}
		acc += f.Trans[0] - f.Trans[0] + f.Trans[1] - f.Trans[1] + f.Trans[2] - f.Trans[2]
	}
	if acc == 0 {
		return nil
	}
	for i := range frames {
		if err := num.CheckFinite(what, frames[i].Rot[:]); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
		if err := num.CheckFinite(what, frames[i].Trans[:]); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
	}
	return nil
}

// Compose sets dst[i] = a[i]∘b[i] for every i (see Rigid.Compose). dst may
// be a or b. It checks lengths and finiteness.
func Compose[T num.Float](dst, a, b []Rigid[T]) error {
	if len(a) != len(b) || len(dst) != len(a) {
		return fmt.Errorf("rigid: compose of %d and %d frames into %d: %w", len(a), len(b), len(dst), num.ErrShape)
	}
	if err := checkFrames("rigid: compose a", a); err != nil {
		return err
	}
	if err := checkFrames("rigid: compose b", b); err != nil {
		return err
	}
	for i := range a {
		dst[i] = a[i].Compose(b[i])
	}
	return nil
}

// Invert sets dst[i] to the inverse of src[i] (see Rigid.Invert). dst may be
// src.
func Invert[T num.Float](dst, src []Rigid[T]) error {
	if len(dst) != len(src) {
		return fmt.Errorf("rigid: invert %d frames into %d: %w", len(src), len(dst), num.ErrShape)
	}
	if err := checkFrames("rigid: invert", src); err != nil {
		return err
	}
	for i := range src {
		dst[i] = src[i].Invert()
	}
	return nil
}

// pointsPerFrame checks that points (and dst) hold n·m 3-vectors for the n
// frames and returns m.
func pointsPerFrame[T num.Float](op string, dst []T, frames []Rigid[T], points []T) (int, error) {
	n := len(frames)
	if n == 0 {
		if len(points) != 0 || len(dst) != 0 {
			return 0, fmt.Errorf("rigid: %s: %d points for 0 frames: %w", op, len(points), num.ErrShape)
		}
		return 0, nil
	}
	m := len(points) / (3 * n)
	if len(points) != 3*n*m {
		return 0, fmt.Errorf("rigid: %s: points has %d elements, want [%d,m,3]: %w", op, len(points), n, num.ErrShape)
	}
	if len(dst) != len(points) {
		return 0, fmt.Errorf("rigid: %s: dst has %d elements, want %d: %w", op, len(dst), len(points), num.ErrShape)
	}
	if err := checkFrames("rigid: "+op+" frames", frames); err != nil {
		return 0, err
	}
	if !allFinite(points) {
		return 0, num.CheckFinite("rigid: "+op+" points", points)
	}
	return m, nil
}

// Apply maps points from local to global coordinates: points is [n,m,3]
// for the n frames (frame i applies to its m points), and dst[i,k] =
// R_i·points[i,k] + t_i. dst may be points.
func Apply[T num.Float](dst []T, frames []Rigid[T], points []T) error {
	m, err := pointsPerFrame("apply", dst, frames, points)
	if err != nil {
		return err
	}
	for i, f := range frames {
		for k := 0; k < m; k++ {
			o := 3 * (i*m + k)
			p := f.Apply([3]T{points[o], points[o+1], points[o+2]})
			dst[o], dst[o+1], dst[o+2] = p[0], p[1], p[2]
		}
	}
	return nil
}

// ApplyVec rotates vectors from local to global coordinates, as Apply
// without the translation.
func ApplyVec[T num.Float](dst []T, frames []Rigid[T], vecs []T) error {
	m, err := pointsPerFrame("apply vec", dst, frames, vecs)
	if err != nil {
		return err
	}
	for i, f := range frames {
		for k := 0; k < m; k++ {
			o := 3 * (i*m + k)
			p := f.ApplyVec([3]T{vecs[o], vecs[o+1], vecs[o+2]})
			dst[o], dst[o+1], dst[o+2] = p[0], p[1], p[2]
		}
	}
	return nil
}

// InvertApply maps points from global to local coordinates: points is
// [n,m,3], and dst[i,k] = R_iᵀ·(points[i,k] − t_i). dst may be points.
func InvertApply[T num.Float](dst []T, frames []Rigid[T], points []T) error {
	m, err := pointsPerFrame("invert apply", dst, frames, points)
	if err != nil {
		return err
	}
	for i, f := range frames {
		for k := 0; k < m; k++ {
			o := 3 * (i*m + k)
			p := f.InvertApply([3]T{points[o], points[o+1], points[o+2]})
			dst[o], dst[o+1], dst[o+2] = p[0], p[1], p[2]
		}
	}
	return nil
}

// allFinite reports whether every value of x is finite (see checkFrames).
func allFinite[T num.Float](x []T) bool {
	var acc T
	for _, v := range x {
		acc += v - v
	}
	return acc == 0
}

func matMul[T num.Float](a, b [9]T) [9]T {
	var c [9]T
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			c[3*i+j] = a[3*i]*b[j] + a[3*i+1]*b[3+j] + a[3*i+2]*b[6+j]
		}
	}
	return c
}

func matVec[T num.Float](a [9]T, v [3]T) [3]T {
	return [3]T{
		a[0]*v[0] + a[1]*v[1] + a[2]*v[2],
		a[3]*v[0] + a[4]*v[1] + a[5]*v[2],
		a[6]*v[0] + a[7]*v[1] + a[8]*v[2],
	}
}

// matTVec returns aᵀ·v.
func matTVec[T num.Float](a [9]T, v [3]T) [3]T {
	return [3]T{
		a[0]*v[0] + a[3]*v[1] + a[6]*v[2],
		a[1]*v[0] + a[4]*v[1] + a[7]*v[2],
		a[2]*v[0] + a[5]*v[1] + a[8]*v[2],
	}
}

func transpose[T num.Float](a [9]T) [9]T {
	return [9]T{a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8]}
}

// outer returns the row-major outer product a·bᵀ.
func outer[T num.Float](a, b [3]T) [9]T {
	return [9]T{
		a[0] * b[0], a[0] * b[1], a[0] * b[2],
		a[1] * b[0], a[1] * b[1], a[1] * b[2],
		a[2] * b[0], a[2] * b[1], a[2] * b[2],
	}
}

func add[T num.Float](a, b [3]T) [3]T { return [3]T{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }

func sub[T num.Float](a, b [3]T) [3]T { return [3]T{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }

func scale[T num.Float](s T, a [3]T) [3]T { return [3]T{s * a[0], s * a[1], s * a[2]} }

func dot[T num.Float](a, b [3]T) T { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

func cross[T num.Float](a, b [3]T) [3]T {
	return [3]T{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func addMat[T num.Float](a, b [9]T) [9]T {
	for i := range a {
		a[i] += b[i]
	}
	return a
}
