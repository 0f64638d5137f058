package protein

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/residue"
)

// ErrUnsupported is returned (wrapped with the place and the reason) for
// structure files that are well formed but hold something the readers do
// not represent: more than one model, or residues with insertion codes.
var ErrUnsupported = errors.New("protein: unsupported structure")

// AllChains selects every chain of a file in ReadPDB and ReadMMCIF. The
// blank chain identifier of PDB files is " " (one space), not AllChains.
const AllChains = ""

// Structure is one model of a protein in AlphaFold2's atom37 layout (AF2's
// Protein): per residue its type, the coordinates of the atom37 heavy atoms
// that were read, the residue number and the chain. N is the number of
// residues; arrays are row-major.
//
// Positions read from a file hold the float32 number nearest the text, as
// Biopython (and so AF2's data pipeline) stores coordinates. That keeps
// every digit of the three-decimal coordinate columns of PDB files: float32
// numbers are less than 1e-3 apart below 16384 Å, so each value is within
// 5e-4 Å of its text and prints back as it was written.
type Structure struct {
	// AAType is the residue type of each residue [N] in AF2's order
	// (residue.Restypes, 0..19); residue.Unk (20) for every other residue
	// name, modified residues such as MSE included.
	AAType []int
	// Positions are the atom coordinates [N,37,3] in ångström, in atom37
	// order (residue.AtomTypes); 0 where Mask is 0.
	Positions []float64
	// Mask is 1 for every atom37 atom read and 0 otherwise [N,37].
	Mask []float64
	// ResidueIndex is the residue number of each residue as written in the
	// file [N] (PDB columns 23–26, mmCIF auth_seq_id): not renumbered, gaps
	// kept.
	ResidueIndex []int
	// ChainID is the chain identifier of each residue [N] (" " for PDB's
	// blank chain column).
	ChainID []string
	// BFactors are the per-atom B factors [N,37], 0 where Mask is 0. The
	// writers put them in the B-factor column, so a prediction sets them to
	// its pLDDT (SetPLDDT).
	BFactors []float64
}

// Len returns the number of residues.
func (s *Structure) Len() int { return len(s.AAType) }

// Sequence returns the one-letter sequence of the residues, 'X' for unknown
// residue types.
func (s *Structure) Sequence() string {
	b := make([]byte, len(s.AAType))
	for i, a := range s.AAType {
		b[i] = residue.Letter(a)
	}
	return string(b)
}

// Chains returns the distinct chain identifiers in the order they first
// occur.
func (s *Structure) Chains() []string {
	var ids []string
	seen := map[string]bool{}
	for _, c := range s.ChainID {
		if !seen[c] {
			seen[c] = true
			ids = append(ids, c)
		}
	}
	return ids
}

// Validate checks that every array has the length N implies, that residue
// types are in [0, 20], that masks are 0 or 1 and that positions and B
// factors are finite. Errors wrap num.ErrShape, num.ErrNaN or ErrFormat.
func (s *Structure) Validate() error {
	n := len(s.AAType)
	for _, c := range []struct {
		what string
		got  int
		want int
		dims string
	}{
		{"positions", len(s.Positions), n * residue.NumAtomTypes * 3, fmt.Sprintf("[%d,37,3]", n)},
		{"mask", len(s.Mask), n * residue.NumAtomTypes, fmt.Sprintf("[%d,37]", n)},
		{"residue index", len(s.ResidueIndex), n, fmt.Sprintf("[%d]", n)},
		{"chain ids", len(s.ChainID), n, fmt.Sprintf("[%d]", n)},
		{"B factors", len(s.BFactors), n * residue.NumAtomTypes, fmt.Sprintf("[%d,37]", n)},
	} {
		if c.got != c.want {
			return fmt.Errorf("protein: structure %s has %d elements, want %s = %d: %w", c.what, c.got, c.dims, c.want, num.ErrShape)
		}
	}
	for i, a := range s.AAType {
		if a < 0 || a >= residue.NumRestypesWithX {
			return fmt.Errorf("protein: structure residue %d has type %d outside [0,%d]: %w", i, a, residue.Unk, ErrFormat)
		}
	}
	for i, m := range s.Mask {
		if m != 0 && m != 1 {
			return fmt.Errorf("protein: structure mask[%d] = %v, want 0 or 1: %w", i, m, ErrFormat)
		}
	}
	if err := num.CheckFinite("protein: structure positions", s.Positions); err != nil {
		return err
	}
	return num.CheckFinite("protein: structure B factors", s.BFactors)
}

// SetPLDDT sets the B factors to a per-residue confidence, as AF2 writes
// its predictions: BFactors[i,a] = plddt[i]·Mask[i,a]. plddt is [N], on
// AF2's scale of 0 to 100.
func (s *Structure) SetPLDDT(plddt []float64) error {
	n := len(s.AAType)
	if err := num.CheckLen("protein: pLDDT", plddt, n, fmt.Sprintf("[%d]", n)); err != nil {
		return err
	}
	if err := num.CheckFinite("protein: pLDDT", plddt); err != nil {
		return err
	}
	if err := num.CheckLen("protein: structure mask", s.Mask, n*residue.NumAtomTypes, fmt.Sprintf("[%d,37]", n)); err != nil {
		return err
	}
	s.BFactors = make([]float64, n*residue.NumAtomTypes)
	for i := range n {
		for a := range residue.NumAtomTypes {
			s.BFactors[i*residue.NumAtomTypes+a] = plddt[i] * s.Mask[i*residue.NumAtomTypes+a]
		}
	}
	return nil
}

// atomRecord is one atom line of a PDB file or one _atom_site row of an
// mmCIF file, as the builder consumes it.
type atomRecord struct {
	het      bool   // HETATM
	name     string // atom name, white space removed unless it has inner spaces
	fullname string // the name as written (PDB columns 13–16)
	altloc   string // "" when blank
	resname  string
	chain    string
	resseq   int
	icode    string // "" when blank
	pos      [3]float32
	occ      float64
	bfactor  float64
}

// resKey identifies a residue within a chain as Biopython does: the hetero
// field (" ", "W" for waters, "H_"+name for other HETATM groups), the number
// and the insertion code.
type resKey struct {
	field string
	seq   int
	icode string
}

// bAtom is an atom of a residue under construction; for an atom with
// alternate locations it holds the one kept so far.
type bAtom struct {
	fullname   string
	pos        [3]float32
	bfactor    float64
	occ        float64
	disordered bool
}

// bResidue is a residue under construction.
type bResidue struct {
	key      resKey
	name     string
	atoms    map[string]*bAtom
	hasBlank bool // an atom with a blank alternate location was added
}

// bSlot is one residue position of a chain: one residue, or several
// residues of different names sharing a number (microheterogeneity), of
// which the selected one counts.
type bSlot struct {
	variants map[string]*bResidue // by residue name; nil for a plain slot
	selected *bResidue
}

type bChain struct {
	id    string
	slots []*bSlot
	byKey map[resKey]*bSlot
}

// builder assembles residues from atom records with the rules of
// Biopython's PDBParser and StructureBuilder, which AF2 and OpenFold read
// structures through:
//
//   - a new residue starts when the chain, the residue key or the residue
//     name changes from the previous atom;
//   - a standard residue whose key reappears later in its chain takes the
//     new atoms when the name is the same; with another name the residue
//     becomes a set of variants (point mutation) and the variant named last
//     is kept, provided every atom of the first has an alternate location
//     (otherwise the new atoms are dropped);
//   - a HETATM group whose key reappears loses the new atoms;
//   - an atom name that repeats with a blank alternate location is dropped
//     (the first is kept); with alternate locations the one of highest
//     occupancy is kept, the first listed on a tie.
type builder struct {
	chains  []*bChain
	byID    map[string]*bChain
	chain   *bChain
	slot    *bSlot    // target slot; nil with res set means an orphan residue
	res     *bResidue // orphan target (hetero key defined twice)
	discard bool      // atoms of the current residue are dropped

	haveCur bool
	curKey  resKey
	curName string
}

func newBuilder() *builder { return &builder{byID: map[string]*bChain{}} }

// resetResidue forgets the current residue, so the next atom starts one
// (Biopython does this at MODEL and ENDMDL).
func (b *builder) resetResidue() { b.haveCur = false; b.chain = nil }

func (b *builder) add(r *atomRecord) {
	field := " "
	if r.het {
		if r.resname == "HOH" || r.resname == "WAT" {
			field = "W"
		} else {
			field = "H_" + r.resname
		}
	}
	key := resKey{field: field, seq: r.resseq, icode: r.icode}
	if b.chain == nil || b.chain.id != r.chain {
		b.initChain(r.chain)
		b.initResidue(key, r.resname)
	} else if !b.haveCur || b.curKey != key || b.curName != r.resname {
		b.initResidue(key, r.resname)
	}
	b.initAtom(r)
}

func (b *builder) initChain(id string) {
	c, ok := b.byID[id]
	if !ok {
		c = &bChain{id: id, byKey: map[resKey]*bSlot{}}
		b.byID[id] = c
		b.chains = append(b.chains, c)
	}
	b.chain = c
}

func newResidue(key resKey, name string) *bResidue {
	return &bResidue{key: key, name: name, atoms: map[string]*bAtom{}}
}

func (b *builder) initResidue(key resKey, name string) {
	b.haveCur, b.curKey, b.curName = true, key, name
	b.slot, b.res, b.discard = nil, nil, false
	c := b.chain
	dup, exists := c.byKey[key]
	switch {
	case !exists:
		r := newResidue(key, name)
		s := &bSlot{selected: r}
		c.byKey[key] = s
		c.slots = append(c.slots, s)
		b.slot = s
	case key.field != " ":
		// Biopython: "residue defined twice"; the atoms go to a residue
		// that is not in the chain.
		b.res = newResidue(key, name)
	case dup.variants != nil:
		if v, ok := dup.variants[name]; ok {
			dup.selected = v
		} else {
			v := newResidue(key, name)
			dup.variants[name] = v
			dup.selected = v
		}
		b.slot = dup
	case dup.selected.name == name:
		b.slot = dup
	case dup.selected.hasBlank:
		// Biopython: "blank altlocs in duplicate residue"; atoms dropped.
		b.discard = true
	default:
		v := newResidue(key, name)
		dup.variants = map[string]*bResidue{dup.selected.name: dup.selected, name: v}
		dup.selected = v
		b.slot = dup
	}
}

func (b *builder) initAtom(r *atomRecord) {
	var res *bResidue
	switch {
	case b.discard:
		return
	case b.slot != nil:
		res = b.slot.selected
	default:
		res = b.res
	}
	name := r.name
	if d, ok := res.atoms[name]; ok && d.fullname != r.fullname {
		// Names that differ only in spaces: Biopython keeps the new atom
		// under its full name, which is never an atom37 name.
		name = r.fullname
	}
	a := &bAtom{fullname: r.fullname, pos: r.pos, bfactor: r.bfactor, occ: r.occ}
	d, ok := res.atoms[name]
	switch {
	case r.altloc == "":
		if ok {
			return // defined twice: the first is kept
		}
		res.atoms[name] = a
		res.hasBlank = true
	case !ok:
		a.disordered = true
		res.atoms[name] = a
	case d.disordered:
		if a.occ > d.occ {
			res.atoms[name] = a
			a.disordered = true
		}
	default:
		// A blank-altloc atom followed by alternates: the new atom is
		// selected first, the old one only if its occupancy is higher.
		a.disordered = true
		if d.occ > a.occ {
			d.disordered = true
		} else {
			res.atoms[name] = a
		}
	}
}

// structure returns the residues of the selected chain (AllChains for all)
// with at least one atom37 atom, in file order. format names the reader in
// errors.
func (b *builder) structure(format, chain string) (*Structure, error) {
	s := &Structure{}
	var present []string
	for _, c := range b.chains {
		present = append(present, fmt.Sprintf("%q", c.id))
		if chain != AllChains && c.id != chain {
			continue
		}
		for _, slot := range c.slots {
			r := slot.selected
			if r.key.icode != "" {
				return nil, fmt.Errorf("protein: %s: residue %s %d%s of chain %q has an insertion code: %w",
					format, r.name, r.key.seq, r.key.icode, c.id, ErrUnsupported)
			}
			var pos [residue.NumAtomTypes * 3]float64
			var mask, bf [residue.NumAtomTypes]float64
			found := false
			for name, a := range r.atoms {
				k, ok := residue.AtomTypeIndex(name)
				if !ok {
					continue
				}
				found = true
				mask[k] = 1
				bf[k] = a.bfactor
				for j := range 3 {
					pos[3*k+j] = float64(a.pos[j])
				}
			}
			if !found {
				continue
			}
			s.AAType = append(s.AAType, residue.FromThreeLetter(r.name))
			s.Positions = append(s.Positions, pos[:]...)
			s.Mask = append(s.Mask, mask[:]...)
			s.BFactors = append(s.BFactors, bf[:]...)
			s.ResidueIndex = append(s.ResidueIndex, r.key.seq)
			s.ChainID = append(s.ChainID, c.id)
		}
	}
	if s.Len() == 0 {
		if len(b.chains) == 0 {
			return nil, fmt.Errorf("protein: %s: no atoms: %w", format, ErrFormat)
		}
		what := "has no residue with a protein heavy atom"
		if chain != AllChains {
			what = fmt.Sprintf("chain %q has no residue with a protein heavy atom", chain)
		}
		sort.Strings(present)
		return nil, fmt.Errorf("protein: %s: %s (chains in the file: %s): %w", format, what, strings.Join(present, ", "), ErrFormat)
	}
	return s, nil
}

// parseCoord parses one coordinate and rounds it to float32, as Biopython
// stores coordinates.
func parseCoord(field string) (float32, bool) {
	v, ok := parseFloat(field)
	if !ok || math.Abs(v) > math.MaxFloat32 {
		return 0, false
	}
	return float32(v), true
}
