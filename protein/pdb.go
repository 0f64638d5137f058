package protein

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ReadPDB reads one model of a protein from a PDB file into AF2's atom37
// layout, keeping the residues of the given chain (AllChains for every
// chain; " " is PDB's blank chain identifier).
//
// It reads the file the way AF2 and OpenFold do (from_pdb_string, through
// Biopython's PDBParser), so its arrays equal theirs:
//
//   - ATOM and HETATM records are both read; lines before the first ATOM,
//     HETATM or MODEL record (the header) and after the first CONECT or END
//     record are not. As in Biopython, END ends the atoms only when padded
//     to six columns ("END   ", as PDB files write it); TER records are
//     ignored, blank lines skipped, and lines may end in CRLF.
//   - Only atoms whose name is an atom37 name are kept; hydrogens and
//     ligand atoms are ignored. A residue with no atom37 atom is skipped.
//     A residue name outside the 20 standard amino acids (MSE, ACE, HOH,
//     UNK, ...) gives type residue.Unk with its atom37 atoms: a water in a
//     selected chain becomes an unknown residue with only O.
//   - Of the alternate locations of an atom the one with the highest
//     occupancy is kept (the first listed on a tie), atom by atom, so a
//     residue may mix alternates. A missing occupancy counts as 1.
//   - Residue numbers are kept as written; insertion codes in a selected
//     chain are refused (ErrUnsupported), as are files with more than one
//     model. Columns past 66 (segment identifier, element, charge, the old
//     columns 73–80) are not read.
//   - A missing B factor reads as 0.
//
// Malformed input gives an error wrapping ErrFormat that names the line: an
// ATOM or HETATM record too short to hold its coordinates, a residue number
// or coordinate that is not a number, an empty file, or no residue with a
// protein heavy atom in the selected chain.
func ReadPDB(r io.Reader, chain string) (*Structure, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	b := newBuilder()
	line, models := 0, 0
	inCoords, modelOpen := false, false
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		rec := text
		if len(rec) > 6 {
			rec = rec[:6]
		}
		// A record named ATOM but shorter than six columns is a
		// truncated atom line too.
		isAtom := rec == "ATOM  " || rec == "HETATM" || rec == "ATOM" || rec == "ATOM "
		if !inCoords {
			if !isAtom && rec != "MODEL " {
				continue // header
			}
			inCoords = true
		}
		switch {
		case isAtom:
			if !modelOpen {
				models++
				modelOpen = true
			}
			if models > 1 {
				return nil, fmt.Errorf("protein: pdb line %d: a second model starts; only single-model files are supported: %w", line, ErrUnsupported)
			}
			a, err := parsePDBAtom(text)
			if err != nil {
				return nil, fmt.Errorf("protein: pdb line %d: %v: %w", line, err, ErrFormat)
			}
			b.add(a)
		case rec == "MODEL ":
			models++
			modelOpen = true
			b.resetResidue()
			if models > 1 {
				return nil, fmt.Errorf("protein: pdb line %d: a second MODEL record; only single-model files are supported: %w", line, ErrUnsupported)
			}
		case rec == "ENDMDL":
			modelOpen = false
			b.resetResidue()
		case rec == "END   " || rec == "CONECT":
			return b.structure("pdb", chain)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("protein: reading pdb (line %d): %w", line+1, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("protein: pdb: empty input: %w", ErrFormat)
	}
	return b.structure("pdb", chain)
}

// parsePDBAtom reads the fixed columns of an ATOM or HETATM record.
func parsePDBAtom(line string) (*atomRecord, error) {
	const need = 54 // the z coordinate ends at column 54
	if len(line) < need {
		return nil, fmt.Errorf("%s record has %d columns, want at least %d (coordinates are columns 31–54)", strings.TrimSpace(column(line, 0, 6)), len(line), need)
	}
	a := &atomRecord{het: line[:6] == "HETATM", fullname: line[12:16], chain: line[21:22]}
	if f := strings.Fields(a.fullname); len(f) == 1 {
		a.name = f[0]
	} else {
		a.name = a.fullname
	}
	if c := line[16]; c != ' ' {
		a.altloc = string(c)
	}
	a.resname = strings.TrimSpace(line[17:20])
	f := strings.Fields(line[22:26])
	if len(f) == 0 {
		return nil, fmt.Errorf("residue number (columns 23–26) is blank")
	}
	seq, err := strconv.Atoi(f[0])
	if err != nil {
		return nil, fmt.Errorf("residue number %q (columns 23–26) is not an integer", line[22:26])
	}
	a.resseq = seq
	if c := line[26]; c != ' ' {
		a.icode = string(c)
	}
	for k := range 3 {
		field := line[30+8*k : 38+8*k]
		v, ok := parseCoord(field)
		if !ok {
			return nil, fmt.Errorf("coordinate %c %q (columns %d–%d) is not a finite number", 'x'+byte(k), field, 31+8*k, 38+8*k)
		}
		a.pos[k] = v
	}
	a.occ = 1
	if v, ok := parseFloat(column(line, 54, 60)); ok {
		a.occ = v
	}
	if v, ok := parseFloat(column(line, 60, 66)); ok {
		a.bfactor = v
	}
	return a, nil
}

// column returns line[from:to], shortened to the line's length.
func column(line string, from, to int) string {
	if from >= len(line) {
		return ""
	}
	return line[from:min(to, len(line))]
}

// parseFloat parses a finite number surrounded by optional white space.
func parseFloat(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}
