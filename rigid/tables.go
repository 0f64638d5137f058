package rigid

import (
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/residue"
)

// groupTables holds the residue-type tables Alg. 24 and 25 read, in T.
type groupTables[T num.Float] struct {
	defaults [residue.NumRestypesWithX][residue.NumGroups]Rigid[T]
	group    [residue.NumRestypesWithX][residue.NumAtom14]int
	mask     [residue.NumRestypesWithX][residue.NumAtom14]T
	pos      [residue.NumRestypesWithX][residue.NumAtom14][3]T
}

// af2Tables returns residue's derived tables rounded to float32 and then
// converted to T: AF2 and OpenFold hold these constants as float32 arrays
// and cast them to the compute type, so a float64 run sees the float32
// values (residue's float64 derivation differs from them by up to half a
// float32 ulp, about 6e-8 relative).
func af2Tables[T num.Float]() *groupTables[T] {
	tb := new(groupTables[T])
	df := residue.RigidGroupDefaultFrame()
	for r := range df {
		for g := range df[r] {
			f := &tb.defaults[r][g]
			for i := 0; i < 3; i++ {
				for j := 0; j < 3; j++ {
					f.Rot[3*i+j] = T(float32(df[r][g][i][j]))
				}
				f.Trans[i] = T(float32(df[r][g][i][3]))
			}
		}
	}
	tb.group = residue.Atom14ToRigidGroup()
	m := residue.Atom14Mask()
	p := residue.Atom14RigidGroupPositions()
	for r := range m {
		for a := range m[r] {
			tb.mask[r][a] = T(float32(m[r][a]))
			for k := 0; k < 3; k++ {
				tb.pos[r][a][k] = T(float32(p[r][a][k]))
			}
		}
	}
	return tb
}
