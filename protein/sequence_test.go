package protein

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

func TestParseA3M(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		seqs     []string
		dels     [][]int
		descs    []string
		wantErr  bool
		errMatch string
	}{
		{
			name:  "insertions, wrapping, trailing insertions, headers",
			in:    "#5\t1\n>query\nACDEF\n\n>hit1 wrapped\nmmA-D\nEFqqq  \n>hit2\nAcDeEF-\n",
			seqs:  []string{"ACDEF", "A-DEF", "ADEF-"},
			dels:  [][]int{{0, 0, 0, 0, 0}, {2, 0, 0, 0, 0}, {0, 1, 1, 0, 0}},
			descs: []string{"query", "hit1 wrapped", "hit2"},
		},
		{name: "row of wrong length", in: ">q\nACD\n>h\nAC\n", wantErr: true, errMatch: "2 aligned columns"},
		{name: "dot is refused", in: ">q\nAC.\n", wantErr: true, errMatch: "'.'"},
		{name: "empty", in: "\n\n", wantErr: true, errMatch: "no records"},
		{name: "sequence before header", in: "ACD\n>q\nACD\n", wantErr: true, errMatch: "before the first"},
		{name: "header without sequence", in: ">q\nACD\n>h\n", wantErr: true, errMatch: "no sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseA3M(strings.NewReader(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.errMatch) {
					t.Fatalf("err = %v, want ErrFormat mentioning %q", err, tt.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Sequences, tt.seqs) || !slices.Equal(a.Descriptions, tt.descs) {
				t.Errorf("got %q %q, want %q %q", a.Sequences, a.Descriptions, tt.seqs, tt.descs)
			}
			for i := range tt.dels {
				if !slices.Equal(a.Deletions[i], tt.dels[i]) {
					t.Errorf("deletions[%d] = %v, want %v", i, a.Deletions[i], tt.dels[i])
				}
			}
		})
	}
}

// TestParseA3MReference checks the parser against the reference parse of a
// hand-written A3M with every quirk (msa_features_a.npz, README §10).
func TestParseA3MReference(t *testing.T) {
	cs := refcase.Open(t, "msa_features_a.npz")
	text, err := cs.String("in/a3m_text")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseA3M(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := cs.Strings("out/a3m/sequences")
	if err != nil {
		t.Fatal(err)
	}
	descs, _ := cs.Strings("out/a3m/descriptions")
	if !slices.Equal(a.Sequences, seqs) {
		t.Errorf("sequences\n got %q\nwant %q", a.Sequences, seqs)
	}
	if !slices.Equal(a.Descriptions, descs) {
		t.Errorf("descriptions\n got %q\nwant %q", a.Descriptions, descs)
	}
	l := len(seqs[0])
	dm, err := params.Ints(cs, "out/a3m/deletion_matrix", len(seqs), l)
	if err != nil {
		t.Fatal(err)
	}
	for i := range seqs {
		if !slices.Equal(a.Deletions[i], dm[i*l:(i+1)*l]) {
			t.Errorf("deletions[%d] = %v, want %v", i, a.Deletions[i], dm[i*l:(i+1)*l])
		}
	}
}

func TestParseFASTA(t *testing.T) {
	recs, err := ParseFASTA(strings.NewReader(">seq1 test\nMKV\nLA\n\n>seq2\nGG\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{{"seq1 test", "MKVLA"}, {"seq2", "GG"}}
	if !slices.Equal(recs, want) {
		t.Errorf("got %v, want %v", recs, want)
	}
	if _, err := ParseFASTA(strings.NewReader(">x\nMK1V\n")); !errors.Is(err, ErrFormat) {
		t.Errorf("digit in sequence: err = %v, want ErrFormat", err)
	}
}
