package features

import (
	"fmt"
	"math"
	"strings"

	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/protein"
)

// RunCase runs an msa_features_* reference case (A3M text in, features out)
// for `foldkit run-module`: it parses in/a3m_text, builds the features of
// in/query_sequence with every de-duplicated row a cluster centre (as the
// case does) and returns out/… under the case's names. Features are exact
// in either dtype, so dtype only selects the float type written; there are
// no gradients (grad is refused).
func RunCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	if grad {
		return nil, fmt.Errorf("features: MSA features have no gradients")
	}
	text, err := cs.String("in/a3m_text")
	if err != nil {
		return nil, err
	}
	query, err := cs.String("in/query_sequence")
	if err != nil {
		return nil, err
	}
	aln, err := protein.ParseA3M(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	cfg := DefaultConfig()
	cfg.Sample = false
	cfg.MaxMSAClusters = len(aln.Sequences)
	f, err := Build(query, aln, cfg)
	if err != nil {
		return nil, err
	}
	l, n := f.L, f.S
	out := params.New()
	put := func(name string, shape []int, x []float64) error {
		if dtype == "float32" {
			y := make([]float32, len(x))
			for i, v := range x {
				y[i] = float32(v)
			}
			return params.Put(out, name, shape, y)
		}
		return params.Put(out, name, shape, x)
	}
	rows := make([]float64, n)
	onehot := make([]float64, n*l*NumMSAClasses)
	hasDel := make([]float64, n*l)
	delVal := make([]float64, n*l)
	meanVal := make([]float64, n*l)
	for i := range rows {
		rows[i] = 1
	}
	for i := 0; i < n*l; i++ {
		onehot[i*NumMSAClasses+f.MSA[i]] = 1
		hasDel[i] = math.Min(f.DeletionMatrix[i], 1)
		delVal[i] = DeletionValue(f.DeletionMatrix[i])
		meanVal[i] = DeletionValue(f.ClusterDeletionMean[i])
	}
	r := len(aln.Sequences)
	dm := make([]int, 0, r*l)
	for _, d := range aln.Deletions {
		dm = append(dm, d...)
	}
	steps := []error{
		params.PutInts(out, "out/aatype", []int{l}, f.AAType),
		params.PutInts(out, "out/residue_index", []int{l}, f.ResidueIndex),
		params.PutInts(out, "out/between_segment_residues", []int{l}, make([]int, l)),
		params.PutInts(out, "out/seq_length", []int{}, []int{l}),
		params.PutInts(out, "out/num_alignments", []int{}, []int{n}),
		params.PutInts(out, "out/msa", []int{n, l}, f.MSA),
		params.PutInts(out, "out/a3m/deletion_matrix", []int{r, l}, dm),
		out.PutArray("out/a3m/sequences", &params.Array{Shape: []int{r}, Data: aln.Sequences}),
		out.PutArray("out/a3m/descriptions", &params.Array{Shape: []int{r}, Data: aln.Descriptions}),
		put("out/deletion_matrix", []int{n, l}, f.DeletionMatrix),
		put("out/seq_mask", []int{l}, f.SeqMask),
		put("out/msa_mask", []int{n, l}, f.MSAMask),
		put("out/msa_row_mask", []int{n}, rows),
		put("out/hhblits_profile", []int{l, 22}, f.HHblitsProfile),
		put("out/msa_onehot", []int{n, l, NumMSAClasses}, onehot),
		put("out/has_deletion", []int{n, l}, hasDel),
		put("out/deletion_value", []int{n, l}, delVal),
		put("out/cluster_profile", []int{n, l, NumMSAClasses}, f.ClusterProfile),
		put("out/cluster_deletion_mean", []int{n, l}, f.ClusterDeletionMean),
		put("out/cluster_deletion_mean_value", []int{n, l}, meanVal),
		put("out/target_feat", []int{l, TargetFeatChannels}, f.TargetFeat),
		put("out/msa_feat", []int{n, l, MSAFeatChannels}, f.MSAFeat),
		put("out/relpos_onehot", []int{l, l, RelPosBins}, RelPos(f.ResidueIndex)),
	}
	for _, err := range steps {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
