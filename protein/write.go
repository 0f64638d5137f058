package protein

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/foldkit/foldkit/residue"
)

// pdbAtomName returns an atom name as PDB columns 13–16 hold it: names of
// up to three characters start in column 14 (the element symbol of every
// atom37 name is one letter), four-character names in column 13.
func pdbAtomName(name string) string {
	if len(name) >= 4 {
		return name
	}
	return " " + name
}

// atomOrder returns the atom37 indices of residue type aa in writing order:
// its atom14 atoms (N, CA, C, O, CB, side chain, the order of PDB entries)
// and then every other atom37 atom (OXT) in atom37 order.
func atomOrder(aa int) []int {
	order := make([]int, 0, residue.NumAtomTypes)
	used := [residue.NumAtomTypes]bool{}
	for _, n := range residue.Atom14Names(aa) {
		if k, ok := residue.AtomTypeIndex(n); ok && n != "" {
			order = append(order, k)
			used[k] = true
		}
	}
	for k := range residue.NumAtomTypes {
		if !used[k] {
			order = append(order, k)
		}
	}
	return order
}

// fixed formats v with prec decimals and reports whether it fits width
// columns.
func fixed(v float64, width, prec int) (string, bool) {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if len(s) > width {
		return s, false
	}
	return strings.Repeat(" ", width-len(s)) + s, true
}

// WritePDB writes s as one model in PDB format: a MODEL record, one ATOM
// record per atom whose mask is 1 (occupancy 1.00, the B factor from
// s.BFactors, so a prediction's pLDDT after SetPLDDT, and the element
// symbol in columns 77–78), a TER record after the last atom of each run of
// residues of one chain, ENDMDL and END. Residue names are the standard
// three-letter codes of the residue types, UNK for unknown ones; atoms come
// in the usual PDB order (N, CA, C, O, CB, side chain, OXT); residues with
// no atom are left out.
//
// The fixed columns of the format bound what can be written: chain
// identifiers of one printable character (" " or "" is the blank chain), residue numbers in
// [−999, 9999], at most 99999 atoms, coordinates in (−1000, 10000) Å and
// B factors in (−100, 1000). Anything outside gives an error wrapping
// ErrUnsupported, and an invalid structure the error of Validate, before
// anything is written.
func WritePDB(w io.Writer, s *Structure) error {
	if err := s.Validate(); err != nil {
		return err
	}
	lines, err := pdbLines(s)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for _, l := range lines {
		bw.WriteString(l)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func pdbLines(s *Structure) ([]string, error) {
	const na = residue.NumAtomTypes
	lines := []string{fmt.Sprintf("%-80s", "MODEL        1")}
	serial := 0
	for i, aa := range s.AAType {
		chain := s.ChainID[i]
		if len(chain) > 1 || (chain != "" && (chain[0] < ' ' || chain[0] > '~')) {
			return nil, fmt.Errorf("protein: pdb: residue %d: chain id %q is not one printable ASCII character (PDB has one column for it): %w", i, chain, ErrUnsupported)
		}
		if chain == "" {
			chain = " "
		}
		num := s.ResidueIndex[i]
		if num < -999 || num > 9999 {
			return nil, fmt.Errorf("protein: pdb: residue %d: number %d does not fit columns 23–26: %w", i, num, ErrUnsupported)
		}
		name := residue.ThreeLetter(aa)
		wrote := false
		for _, k := range atomOrder(aa) {
			if s.Mask[i*na+k] == 0 {
				continue
			}
			serial++
			if serial > 99999 {
				return nil, fmt.Errorf("protein: pdb: more than 99999 atoms: %w", ErrUnsupported)
			}
			var xyz [3]string
			for j := range 3 {
				f, ok := fixed(s.Positions[3*(i*na+k)+j], 8, 3)
				if !ok {
					return nil, fmt.Errorf("protein: pdb: residue %d atom %s: coordinate %s does not fit 8 columns: %w", i, residue.AtomTypes()[k], f, ErrUnsupported)
				}
				xyz[j] = f
			}
			bf, ok := fixed(s.BFactors[i*na+k], 6, 2)
			if !ok {
				return nil, fmt.Errorf("protein: pdb: residue %d atom %s: B factor %s does not fit 6 columns: %w", i, residue.AtomTypes()[k], bf, ErrUnsupported)
			}
			atom := residue.AtomTypes()[k]
			lines = append(lines, fmt.Sprintf("%-6s%5d %-4s%1s%3s %1s%4d%1s   %s%s%s%6.2f%s          %2s%2s",
				"ATOM", serial, pdbAtomName(atom), "", name, chain, num, "", xyz[0], xyz[1], xyz[2], 1.0, bf, residue.Element(atom), ""))
			wrote = true
		}
		if !wrote {
			continue
		}
		// A chain ends where the next residue with atoms belongs to
		// another chain, or where no residue with atoms follows.
		last := true
		for j := i + 1; j < len(s.AAType); j++ {
			if hasAtoms(s, j) {
				last = s.ChainID[j] != s.ChainID[i]
				break
			}
		}
		if last {
			serial++
			if serial > 99999 {
				return nil, fmt.Errorf("protein: pdb: more than 99999 atoms: %w", ErrUnsupported)
			}
			lines = append(lines, fmt.Sprintf("%-80s", fmt.Sprintf("%-6s%5d      %3s %1s%4d", "TER", serial, name, chain, num)))
		}
	}
	lines = append(lines, fmt.Sprintf("%-80s", "ENDMDL"), fmt.Sprintf("%-80s", "END"))
	return lines, nil
}

// hasAtoms reports whether residue i has an atom with mask 1.
func hasAtoms(s *Structure, i int) bool {
	for _, m := range s.Mask[i*residue.NumAtomTypes : (i+1)*residue.NumAtomTypes] {
		if m != 0 {
			return true
		}
	}
	return false
}

// cifValue returns s as a CIF value, quoted where CIF syntax needs it.
func cifValue(s string) (string, error) {
	if s == "" {
		return "''", nil
	}
	plain := !strings.ContainsAny(s, " \t\n\r") && !strings.ContainsAny(s[:1], "_#$'\";[]") &&
		s != "." && s != "?" && !cifIsKeyword(s)
	switch {
	case plain:
		return s, nil
	case strings.ContainsAny(s, "\n\r"):
		return "", fmt.Errorf("value holds a line break: %w", ErrUnsupported)
	case !strings.Contains(s, "' ") && !strings.HasSuffix(s, "'"):
		return "'" + s + "'", nil
	case !strings.Contains(s, "\" ") && !strings.HasSuffix(s, "\""):
		return "\"" + s + "\"", nil
	}
	return "", fmt.Errorf("value cannot be quoted on one line: %w", ErrUnsupported)
}

// asymID returns the k-th label_asym_id: A..Z, then AA, AB, ...
func asymID(k int) string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	s := ""
	for k++; k > 0; k = (k - 1) / 26 {
		s = string(letters[(k-1)%26]) + s
	}
	return s
}

// WriteMMCIF writes s as one model in an mmCIF data block named name (white
// space replaced by '_'; "structure" if empty): _entry.id and an _atom_site
// loop with one ATOM row per atom whose mask is 1, with the same content
// and order as WritePDB (coordinates with three decimals, B factors with
// two, element symbols, model number 1). auth_asym_id and auth_seq_id hold
// the chain identifiers and residue numbers of s; label_asym_id names each
// run of residues of one chain A, B, ..., label_entity_id numbers them, and
// label_seq_id counts residues from 1 within each run. mmCIF has no fixed
// columns, so only an invalid structure (Validate) or a chain identifier
// that cannot be written as a CIF value gives an error.
func WriteMMCIF(w io.Writer, s *Structure, name string) error {
	if err := s.Validate(); err != nil {
		return err
	}
	name = strings.Join(strings.Fields(name), "_")
	if name == "" {
		name = "structure"
	}
	const na = residue.NumAtomTypes
	var sb strings.Builder
	fmt.Fprintf(&sb, "data_%s\n#\n_entry.id %s\n#\nloop_\n", name, name)
	for _, c := range []string{"group_PDB", "id", "type_symbol", "label_atom_id", "label_alt_id",
		"label_comp_id", "label_asym_id", "label_entity_id", "label_seq_id", "pdbx_PDB_ins_code",
		"Cartn_x", "Cartn_y", "Cartn_z", "occupancy", "B_iso_or_equiv",
		"auth_seq_id", "auth_comp_id", "auth_asym_id", "auth_atom_id", "pdbx_PDB_model_num"} {
		sb.WriteString("_atom_site." + c + "\n")
	}
	serial, run, seq := 0, -1, 0
	for i, aa := range s.AAType {
		if i == 0 || s.ChainID[i] != s.ChainID[i-1] {
			run++
			seq = 0
		}
		seq++
		auth, err := cifValue(s.ChainID[i])
		if err != nil {
			return fmt.Errorf("protein: mmcif: residue %d: chain id %q: %w", i, s.ChainID[i], err)
		}
		res := residue.ThreeLetter(aa)
		for _, k := range atomOrder(aa) {
			if s.Mask[i*na+k] == 0 {
				continue
			}
			serial++
			atom := residue.AtomTypes()[k]
			p := s.Positions[3*(i*na+k):]
			fmt.Fprintf(&sb, "ATOM %d %s %s . %s %s %d %d ? %.3f %.3f %.3f 1.00 %.2f %d %s %s %s 1\n",
				serial, residue.Element(atom), atom, res, asymID(run), run+1, seq,
				p[0], p[1], p[2], s.BFactors[i*na+k], s.ResidueIndex[i], res, auth, atom)
		}
	}
	sb.WriteString("#\n")
	_, err := io.WriteString(w, sb.String())
	return err
}
