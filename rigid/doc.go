// Package rigid holds batched rigid frames (rotation + translation) and unit
// quaternions in float32 and float64: composition, inversion, application to
// points and vectors, conversions between rotation matrices and quaternions,
// frames from three points (Alg. 21 of the AlphaFold2 supplement, and the
// regularised form AF2's code uses), the backbone update from a 6-vector
// (Alg. 23), torsion-angle frames (Alg. 24) and atom positions from frames
// (Alg. 25), uniform random rotations, and the vector-Jacobian products of
// all of them for backpropagation.
//
// # Conventions
//
// A frame Rigid[T] maps local to global coordinates, x_global = R·x_local + t,
// with R a 3×3 matrix stored row-major acting on column vectors. T1∘T2
// (T1.Compose(T2)) applies T2 first: (R1·R2, R1·t2 + t1). Quaternions are
// (w, x, y, z) with w the scalar part and the Hamilton product. Batches are
// []Rigid[T]; points are row-major [n, m, 3] slices, frame i acting on its m
// points. Coordinates are in whatever unit the caller uses; the residue
// tables of Alg. 24 and 25 are in ångström, and the structure module's
// nanometre scaling is left to the caller.
//
// Single-frame operations are methods and functions on values (Compose,
// Invert, Apply, QuatToRot, FromThreePoints, ComposeQUpdate, ...); they do
// not validate. The batched functions of the same names (Compose, Invert,
// Apply, ApplyVec, InvertApply) and TorsionFrames, Atom14Positions,
// FromArrays check shapes (num.ErrShape) and finiteness (num.ErrNaN), and the
// frame constructors report coincident or collinear points (ErrDegenerate).
//
// # Gradients
//
// Every differentiable operation has a vector-Jacobian product named
// <Op>VJP. It takes the forward inputs and the gradient of a loss with
// respect to the outputs, and returns the gradients with respect to the
// inputs. A gradient with respect to a frame is carried in a Rigid (dL/dRot
// entrywise, dL/dTrans); with respect to a quaternion, in a Quat. Rotation
// entries are treated as free variables (no projection onto rotations), as
// in AF2's and OpenFold's autodiff.
//
// gonum's num/quat and spatial/r3 are float64 only and do not carry the
// generic element type, so the arithmetic here is written once for both
// types; the tests check it against num/quat and r3 in float64. RotToQuat
// solves its 4×4 eigenproblem with gonum's mat.EigenSym.
package rigid
