package protein

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ReadMMCIF reads one model of a protein from the first data block of an
// mmCIF (PDBx/mmCIF) file into AF2's atom37 layout, keeping the residues of
// the given chain (AllChains for every chain).
//
// Atoms come from the _atom_site category (a loop, or single key-value
// pairs for one atom) and are assembled with the rules of ReadPDB
// (Biopython's, so both readers give the same arrays for the same
// structure). The columns read are, where a choice exists, the author's
// ones first, as Biopython's MMCIFParser reads them:
//
//	chain            auth_asym_id, else label_asym_id
//	residue number   auth_seq_id, else label_seq_id
//	residue name     label_comp_id, else auth_comp_id
//	atom name        label_atom_id, else auth_atom_id
//	alternate loc.   label_alt_id
//	insertion code   pdbx_PDB_ins_code
//	HETATM flag      group_PDB
//	model            pdbx_PDB_model_num
//	coordinates      Cartn_x, Cartn_y, Cartn_z (required)
//	occupancy, B     occupancy (1 if absent), B_iso_or_equiv (0 if absent)
//
// An empty or absent chain identifier reads as " ", PDB's blank chain (gemmi
// writes that chain as an empty quoted value), so AllChains keeps its
// meaning.
//
// CIF syntax handled: comments, data_ blocks (only the first is read),
// loop_, unquoted, single- and double-quoted values (a quote ends a value
// only before white space) and semicolon text fields; '.' and '?' are
// null. Errors wrap ErrFormat (syntax, a loop whose value count is not a
// multiple of its columns, missing columns, values that are not numbers)
// or ErrUnsupported (several models, insertion codes in a selected chain).
func ReadMMCIF(r io.Reader, chain string) (*Structure, error) {
	toks, err := cifTokenize(r)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("protein: mmcif: empty input: %w", ErrFormat)
	}
	tab, err := cifAtomSite(toks)
	if err != nil {
		return nil, err
	}
	if tab == nil {
		return nil, fmt.Errorf("protein: mmcif: no _atom_site category: %w", ErrFormat)
	}
	return tab.structure(chain)
}

// cifToken is one CIF value, tag or keyword. quoted is set for quoted
// values and text fields, which are never tags, keywords or nulls.
type cifToken struct {
	val    string
	quoted bool
	line   int
}

// cifTokenize splits CIF text into tokens.
func cifTokenize(r io.Reader) ([]cifToken, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	var toks []cifToken
	line := 0
	var text *strings.Builder // open semicolon text field
	textLine := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if text != nil {
			if strings.HasPrefix(s, ";") {
				toks = append(toks, cifToken{val: text.String(), quoted: true, line: textLine})
				text = nil
				s = s[1:]
			} else {
				text.WriteByte('\n')
				text.WriteString(s)
				continue
			}
		} else if strings.HasPrefix(s, ";") {
			text = &strings.Builder{}
			text.WriteString(s[1:])
			textLine = line
			continue
		}
		for i := 0; i < len(s); {
			c := s[i]
			switch {
			case c == ' ' || c == '\t':
				i++
			case c == '#':
				i = len(s)
			case c == '\'' || c == '"':
				// The value ends at the quote that is followed by white
				// space or the end of the line.
				j := i + 1
				for j < len(s) && !(s[j] == c && (j+1 == len(s) || s[j+1] == ' ' || s[j+1] == '\t')) {
					j++
				}
				if j == len(s) {
					return nil, fmt.Errorf("protein: mmcif line %d: unterminated quoted value: %w", line, ErrFormat)
				}
				toks = append(toks, cifToken{val: s[i+1 : j], quoted: true, line: line})
				i = j + 1
			default:
				j := i
				for j < len(s) && s[j] != ' ' && s[j] != '\t' {
					j++
				}
				toks = append(toks, cifToken{val: s[i:j], line: line})
				i = j
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("protein: reading mmcif (line %d): %w", line+1, err)
	}
	if text != nil {
		return nil, fmt.Errorf("protein: mmcif line %d: text field not closed by a line starting with ';': %w", textLine, ErrFormat)
	}
	return toks, nil
}

// cifIsKeyword reports whether an unquoted token is a reserved word.
func cifIsKeyword(v string) bool {
	l := strings.ToLower(v)
	return l == "loop_" || l == "global_" || l == "stop_" || strings.HasPrefix(l, "data_") || strings.HasPrefix(l, "save_")
}

// cifTable is the _atom_site category: column name (lower case, without
// the category) to its index, and rows of values.
type cifTable struct {
	cols map[string]int
	rows [][]cifToken
}

const atomSitePrefix = "_atom_site."

// cifAtomSite finds the _atom_site category in the first data block.
func cifAtomSite(toks []cifToken) (*cifTable, error) {
	var tab *cifTable
	single := map[string]cifToken{}
	var singleOrder []string
	blocks := 0
	for i := 0; i < len(toks); {
		t := toks[i]
		if t.quoted {
			return nil, fmt.Errorf("protein: mmcif line %d: value %q without a tag: %w", t.line, t.val, ErrFormat)
		}
		l := strings.ToLower(t.val)
		switch {
		case strings.HasPrefix(l, "data_"):
			blocks++
			if blocks > 1 {
				i = len(toks)
				continue
			}
			i++
		case l == "loop_":
			i++
			var tags []string
			for i < len(toks) && !toks[i].quoted && strings.HasPrefix(toks[i].val, "_") {
				tags = append(tags, strings.ToLower(toks[i].val))
				i++
			}
			if len(tags) == 0 {
				return nil, fmt.Errorf("protein: mmcif line %d: loop_ without tags: %w", t.line, ErrFormat)
			}
			start := i
			for i < len(toks) && (toks[i].quoted || !(strings.HasPrefix(toks[i].val, "_") || cifIsKeyword(toks[i].val))) {
				i++
			}
			vals := toks[start:i]
			if len(vals)%len(tags) != 0 {
				return nil, fmt.Errorf("protein: mmcif line %d: loop of %d columns (%s, ...) has %d values, not a multiple: %w",
					t.line, len(tags), tags[0], len(vals), ErrFormat)
			}
			if !strings.HasPrefix(tags[0], atomSitePrefix) {
				continue
			}
			if tab != nil || len(single) > 0 {
				return nil, fmt.Errorf("protein: mmcif line %d: _atom_site given twice: %w", t.line, ErrFormat)
			}
			tab = &cifTable{cols: map[string]int{}}
			for k, tag := range tags {
				if !strings.HasPrefix(tag, atomSitePrefix) {
					return nil, fmt.Errorf("protein: mmcif line %d: loop mixes %s with _atom_site: %w", t.line, tag, ErrFormat)
				}
				tab.cols[strings.TrimPrefix(tag, atomSitePrefix)] = k
			}
			for r := 0; r < len(vals); r += len(tags) {
				tab.rows = append(tab.rows, vals[r:r+len(tags)])
			}
		case strings.HasPrefix(l, "save_") || l == "global_" || l == "stop_":
			i++
		case strings.HasPrefix(l, "_"):
			if i+1 >= len(toks) || (!toks[i+1].quoted && (strings.HasPrefix(toks[i+1].val, "_") || cifIsKeyword(toks[i+1].val))) {
				return nil, fmt.Errorf("protein: mmcif line %d: tag %s has no value: %w", t.line, t.val, ErrFormat)
			}
			if strings.HasPrefix(l, atomSitePrefix) {
				if tab != nil {
					return nil, fmt.Errorf("protein: mmcif line %d: _atom_site given twice: %w", t.line, ErrFormat)
				}
				name := strings.TrimPrefix(l, atomSitePrefix)
				if _, dup := single[name]; !dup {
					singleOrder = append(singleOrder, name)
				}
				single[name] = toks[i+1]
			}
			i += 2
		default:
			return nil, fmt.Errorf("protein: mmcif line %d: value %q without a tag: %w", t.line, t.val, ErrFormat)
		}
	}
	if tab == nil && len(single) > 0 {
		tab = &cifTable{cols: map[string]int{}}
		row := make([]cifToken, len(singleOrder))
		for k, name := range singleOrder {
			tab.cols[name] = k
			row[k] = single[name]
		}
		tab.rows = [][]cifToken{row}
	}
	return tab, nil
}

// cifNull reports whether a value is CIF's null ('.' or '?', unquoted).
func cifNull(t cifToken) bool { return !t.quoted && (t.val == "." || t.val == "?") }

// get returns the value of the first of the named columns that exists and
// is not null in the row.
func (tab *cifTable) get(row []cifToken, names ...string) (cifToken, bool) {
	for _, n := range names {
		if k, ok := tab.cols[n]; ok && !cifNull(row[k]) {
			return row[k], true
		}
	}
	return cifToken{}, false
}

func (tab *cifTable) structure(chain string) (*Structure, error) {
	for _, c := range []string{"cartn_x", "cartn_y", "cartn_z"} {
		if _, ok := tab.cols[c]; !ok {
			return nil, fmt.Errorf("protein: mmcif: _atom_site has no %s column: %w", c, ErrFormat)
		}
	}
	b := newBuilder()
	model := ""
	for _, row := range tab.rows {
		line := row[0].line
		if m, ok := tab.get(row, "pdbx_pdb_model_num"); ok {
			if model == "" {
				model = m.val
			} else if m.val != model {
				return nil, fmt.Errorf("protein: mmcif line %d: model %s after model %s; only single-model files are supported: %w", line, m.val, model, ErrUnsupported)
			}
		}
		a := &atomRecord{occ: 1}
		if g, ok := tab.get(row, "group_pdb"); ok {
			a.het = strings.EqualFold(g.val, "HETATM")
		}
		name, ok := tab.get(row, "label_atom_id", "auth_atom_id")
		if !ok {
			return nil, fmt.Errorf("protein: mmcif line %d: atom without a name (label_atom_id): %w", line, ErrFormat)
		}
		a.name, a.fullname = name.val, name.val
		if v, ok := tab.get(row, "label_comp_id", "auth_comp_id"); ok {
			a.resname = v.val
		}
		if v, ok := tab.get(row, "auth_asym_id", "label_asym_id"); ok {
			a.chain = v.val
		}
		if a.chain == "" {
			a.chain = " " // gemmi writes PDB's blank chain as ''
		}
		seq, ok := tab.get(row, "auth_seq_id", "label_seq_id")
		if !ok {
			return nil, fmt.Errorf("protein: mmcif line %d: atom %s without a residue number (auth_seq_id): %w", line, a.name, ErrFormat)
		}
		n, err := strconv.Atoi(seq.val)
		if err != nil {
			return nil, fmt.Errorf("protein: mmcif line %d: residue number %q is not an integer: %w", line, seq.val, ErrFormat)
		}
		a.resseq = n
		if v, ok := tab.get(row, "pdbx_pdb_ins_code"); ok {
			a.icode = v.val
		}
		if v, ok := tab.get(row, "label_alt_id"); ok {
			a.altloc = v.val
		}
		for k, c := range []string{"cartn_x", "cartn_y", "cartn_z"} {
			v := row[tab.cols[c]]
			x, ok := parseCoord(v.val)
			if !ok || cifNull(v) {
				return nil, fmt.Errorf("protein: mmcif line %d: %s %q is not a finite number: %w", v.line, c, v.val, ErrFormat)
			}
			a.pos[k] = x
		}
		if v, ok := tab.get(row, "occupancy"); ok {
			x, ok := parseFloat(v.val)
			if !ok {
				return nil, fmt.Errorf("protein: mmcif line %d: occupancy %q is not a number: %w", v.line, v.val, ErrFormat)
			}
			a.occ = x
		}
		if v, ok := tab.get(row, "b_iso_or_equiv"); ok {
			x, ok := parseFloat(v.val)
			if !ok {
				return nil, fmt.Errorf("protein: mmcif line %d: B_iso_or_equiv %q is not a number: %w", v.line, v.val, ErrFormat)
			}
			a.bfactor = x
		}
		b.add(a)
	}
	return b.structure("mmcif", chain)
}
