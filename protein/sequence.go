package protein

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// ErrFormat is returned (wrapped with the line and the reason) for malformed
// FASTA, A3M or structure files.
var ErrFormat = errors.New("protein: malformed input")

// Record is one FASTA or A3M record.
type Record struct {
	Description string // the header line without '>'
	Sequence    string // the sequence as written, wrapped lines joined
}

// ParseFASTA reads FASTA records. Lines are stripped of surrounding white
// space; empty lines and lines starting with '#' or ';' are skipped; sequence
// lines may wrap. A sequence line before the first header, a header with no
// sequence, or an empty input is an error.
func ParseFASTA(r io.Reader) ([]Record, error) {
	recs, err := scanRecords(r, "FASTA")
	if err != nil {
		return nil, err
	}
	for i, rec := range recs {
		for j, c := range rec.Sequence {
			if !unicode.IsLetter(c) && c != '-' && c != '*' {
				return nil, fmt.Errorf("protein: FASTA record %d (%q): character %q at %d: %w", i+1, rec.Description, c, j, ErrFormat)
			}
		}
	}
	return recs, nil
}

// scanRecords splits the input into '>' records following the rules of
// ParseFASTA and ParseA3M.
func scanRecords(r io.Reader, format string) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<30)
	var recs []Record
	var seq strings.Builder
	line := 0
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		recs[len(recs)-1].Sequence = seq.String()
		if seq.Len() == 0 {
			return fmt.Errorf("protein: %s record %q has no sequence: %w", format, recs[len(recs)-1].Description, ErrFormat)
		}
		seq.Reset()
		return nil
	}
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "" || strings.HasPrefix(s, "#") || strings.HasPrefix(s, ";"):
			continue
		case strings.HasPrefix(s, ">"):
			if err := flush(); err != nil {
				return nil, err
			}
			recs = append(recs, Record{Description: strings.TrimSpace(s[1:])})
		default:
			if len(recs) == 0 {
				return nil, fmt.Errorf("protein: %s line %d: sequence before the first '>' header: %w", format, line, ErrFormat)
			}
			seq.WriteString(s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("protein: reading %s: %w", format, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("protein: %s input has no records: %w", format, ErrFormat)
	}
	return recs, nil
}

// Alignment is a multiple sequence alignment read from A3M: the aligned rows
// (insertions removed) and, per row and column, the number of insertions
// (lower-case letters) immediately before that column.
type Alignment struct {
	Descriptions []string
	Sequences    []string // upper-case letters and '-', all of the query's length
	Deletions    [][]int  // [row][column]
}

// ParseA3M reads an A3M alignment (the format HHblits, MMseqs2 and ColabFold
// write). The first record is the query. Lower-case letters are insertions:
// they are removed from the aligned row and counted in Deletions against
// the next aligned column; insertions after the last column are dropped (as
// AF2's parser does). Lines starting with '#' (ColabFold's "#L\t1" header)
// and empty lines are skipped; records may wrap. Every aligned row must have
// the query's length; '.' and characters other than letters and '-' are
// errors.
func ParseA3M(r io.Reader) (*Alignment, error) {
	recs, err := scanRecords(r, "A3M")
	if err != nil {
		return nil, err
	}
	a := &Alignment{}
	for i, rec := range recs {
		var row strings.Builder
		dels := make([]int, 0, len(rec.Sequence))
		pending := 0
		for j, c := range rec.Sequence {
			switch {
			case c >= 'a' && c <= 'z':
				pending++
			case (c >= 'A' && c <= 'Z') || c == '-':
				row.WriteRune(c)
				dels = append(dels, pending)
				pending = 0
			default:
				return nil, fmt.Errorf("protein: A3M record %d (%q): character %q at %d: %w", i+1, rec.Description, c, j, ErrFormat)
			}
		}
		if i > 0 && row.Len() != len(a.Sequences[0]) {
			return nil, fmt.Errorf("protein: A3M record %d (%q) has %d aligned columns, the query has %d: %w",
				i+1, rec.Description, row.Len(), len(a.Sequences[0]), ErrFormat)
		}
		if i == 0 && row.Len() == 0 {
			return nil, fmt.Errorf("protein: A3M query %q has no aligned columns: %w", rec.Description, ErrFormat)
		}
		a.Descriptions = append(a.Descriptions, rec.Description)
		a.Sequences = append(a.Sequences, row.String())
		a.Deletions = append(a.Deletions, dels)
	}
	return a, nil
}
