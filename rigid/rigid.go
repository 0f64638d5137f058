package rigid

import "github.com/foldkit/foldkit/internal/num"

// Rigid is one rigid transformation (a frame): x_global = Rot·x_local + Trans.
//
// Rot is a 3×3 rotation matrix stored row-major (Rot[3*i+j] is row i,
// column j) acting on column vectors; Trans is the translation. A frame maps
// the local coordinates of a residue or rigid group to global coordinates.
// Batches of frames are []Rigid[T].
type Rigid[T num.Float] struct {
	Rot   [9]T
	Trans [3]T
}
