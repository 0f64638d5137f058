package residue_test

import (
	"fmt"

	"github.com/foldkit/foldkit/residue"
)

func ExampleAtom14Names() {
	r := residue.Index('F')
	fmt.Println(residue.ThreeLetter(r), residue.Atom14Names(r))
	i, _ := residue.AtomTypeIndex("CZ")
	fmt.Println("CZ is atom37 slot", i, "and atom14 slot", residue.Atom37ToAtom14()[r][i])
	// Output:
	// PHE [N CA C O CB CG CD1 CD2 CE1 CE2 CZ   ]
	// CZ is atom37 slot 32 and atom14 slot 10
}

func ExampleRigidGroupDefaultFrame() {
	// The χ1 frame of serine in the backbone frame: origin at CB, x axis
	// along CA→CB.
	f := residue.RigidGroupDefaultFrame()[residue.Ser][4]
	for _, row := range f {
		fmt.Printf("%7.4f\n", row)
	}
	// Output:
	// [-0.3387 -0.5140  0.7881 -0.5180]
	// [-0.5081  0.8049  0.3065 -0.7770]
	// [-0.7919 -0.2966 -0.5338 -1.2110]
	// [ 0.0000  0.0000  0.0000  1.0000]
}
