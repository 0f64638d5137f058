package features

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/protein"
	"github.com/foldkit/foldkit/residue"
)

// Token values of the MSA alphabet beyond the 21 residue types (0..20 in
// AF2's order, 20 = unknown).
const (
	Gap       = 21 // '-' in an alignment
	MaskToken = 22 // the masked-MSA replacement token
	// NumMSAClasses is the size of the one-hot MSA alphabet.
	NumMSAClasses = 23
	// MSAFeatChannels is the width of msa_feat: one-hot (23), has_deletion,
	// deletion_value, cluster profile (23), cluster deletion mean.
	MSAFeatChannels = 49
	// TargetFeatChannels is the width of target_feat: has_break and the
	// 21-class one-hot of aatype.
	TargetFeatChannels = 22
)

// ErrInput is returned (wrapped) for a query or alignment the pipeline cannot use.
var ErrInput = errors.New("features: bad input")

// Config sets the pipeline's sizes and random choices.
type Config struct {
	// MaxMSAClusters is the number of sampled cluster centres (the main
	// MSA; AF2's max_msa_clusters, 512 for the monomer models). The query is
	// always the first centre.
	MaxMSAClusters int
	// MaxExtraMSA is the number of extra sequences kept (AF2's max_extra_msa:
	// 5120 for model_1 and model_2, 1024 in AF2's common data config).
	MaxExtraMSA int
	// Sample shuffles the non-query sequences before choosing the centres,
	// as AF2 does; without it the first MaxMSAClusters sequences in file
	// order are the centres (as the reference case does).
	Sample bool
	// MaskedMSA applies AF2's BERT-style corruption (training; AF2's rates
	// below). Off in inference.
	MaskedMSA bool
	// Masked-MSA rates (AF2: 0.1, 0.1, 0.1 and replace fraction 0.15).
	UniformProb, ProfileProb, SameProb, ReplaceFraction float64
	// Seed seeds every random choice.
	Seed uint64
}

// DefaultConfig returns AF2's monomer inference configuration: 512 clusters,
// 5120 extra sequences, sampling on, masked-MSA corruption off.
func DefaultConfig() Config {
	return Config{
		MaxMSAClusters: 512, MaxExtraMSA: 5120, Sample: true,
		UniformProb: 0.1, ProfileProb: 0.1, SameProb: 0.1, ReplaceFraction: 0.15,
	}
}

// Validate reports a configuration the pipeline cannot run.
func (c Config) Validate() error {
	if c.MaxMSAClusters < 1 || c.MaxExtraMSA < 0 {
		return fmt.Errorf("features: MaxMSAClusters %d must be ≥ 1 and MaxExtraMSA %d ≥ 0: %w", c.MaxMSAClusters, c.MaxExtraMSA, ErrInput)
	}
	if c.MaskedMSA {
		for _, p := range []float64{c.UniformProb, c.ProfileProb, c.SameProb, c.ReplaceFraction} {
			if p < 0 || p > 1 || math.IsNaN(p) {
				return fmt.Errorf("features: masked-MSA probability %v outside [0, 1]: %w", p, ErrInput)
			}
		}
		if c.UniformProb+c.ProfileProb+c.SameProb > 1 {
			return fmt.Errorf("features: masked-MSA probabilities sum above 1: %w", ErrInput)
		}
	}
	return nil
}

// Features are one model input: L residues, S cluster centres, Se extra sequences.
type Features struct {
	L, S, Se int

	AAType       []int     // [L], AF2 order, 20 = unknown
	ResidueIndex []int     // [L], 0..L−1
	SeqMask      []float64 // [L]
	TargetFeat   []float64 // [L, 22]

	MSA                 []int     // [S, L] tokens 0..22 (after any corruption)
	TrueMSA             []int     // [S, L] before corruption
	BertMask            []float64 // [S, L], 1 where the corruption chose a position
	DeletionMatrix      []float64 // [S, L]
	MSAMask             []float64 // [S, L]
	ClusterProfile      []float64 // [S, L, 23]
	ClusterDeletionMean []float64 // [S, L]
	MSAFeat             []float64 // [S, L, 49]
	HHblitsProfile      []float64 // [L, 22], over the de-duplicated MSA

	ExtraMSA           []int     // [Se, L]
	ExtraHasDeletion   []float64 // [Se, L]
	ExtraDeletionValue []float64 // [Se, L]
	ExtraMSAMask       []float64 // [Se, L]
}

// AAType maps a query sequence to AF2's residue types: the 20 standard
// letters to 0..19 and every other letter to 20 (unknown).
func AAType(seq string) ([]int, error) {
	out := make([]int, len(seq))
	for i := 0; i < len(seq); i++ {
		c := seq[i]
		if c < 'A' || c > 'Z' {
			return nil, fmt.Errorf("features: query character %q at %d is not an upper-case letter: %w", c, i, ErrInput)
		}
		out[i] = residue.Index(c)
	}
	return out, nil
}

// MSAToken maps an aligned MSA letter to its token: the 20 standard letters
// to 0..19, B→D, Z→E, U→C (as AF2's HHblits table and correct_msa_restypes
// do), X, J, O to 20, and '-' to 21.
func MSAToken(c byte) (int, error) {
	switch c {
	case '-':
		return Gap, nil
	case 'B':
		return residue.Asp, nil
	case 'Z':
		return residue.Glu, nil
	case 'U':
		return residue.Cys, nil
	}
	if c < 'A' || c > 'Z' {
		return 0, fmt.Errorf("features: MSA character %q: %w", c, ErrInput)
	}
	return residue.Index(c), nil
}

// Dedup returns the rows of aln to keep: the first occurrence of each
// aligned string (insertions removed), in file order, with its own deletion
// row; later copies are dropped even when their insertions differ.
func Dedup(aln *protein.Alignment) []int {
	seen := map[string]bool{}
	var keep []int
	for i, s := range aln.Sequences {
		if !seen[s] {
			seen[s] = true
			keep = append(keep, i)
		}
	}
	return keep
}

// DeletionValue is AF2's squashing of a deletion count: 2/π·atan(d/3).
func DeletionValue(d float64) float64 { return 2 / math.Pi * math.Atan(d/3) }

// Build computes the features of query seq with alignment aln (nil for
// single-sequence mode). When aln is given its first row must equal the
// query.
func Build(seq string, aln *protein.Alignment, cfg Config) (*Features, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	aatype, err := AAType(seq)
	if err != nil {
		return nil, err
	}
	l := len(seq)
	if l == 0 {
		return nil, fmt.Errorf("features: empty query: %w", ErrInput)
	}
	if aln == nil {
		aln = &protein.Alignment{Descriptions: []string{"query"}, Sequences: []string{seq}, Deletions: [][]int{make([]int, l)}}
	}
	if len(aln.Sequences) == 0 || aln.Sequences[0] != seq {
		return nil, fmt.Errorf("features: the alignment's first row is not the query sequence: %w", ErrInput)
	}
	// De-duplicated MSA: tokens and deletions.
	keep := Dedup(aln)
	n := len(keep)
	msa := make([]int, n*l)
	del := make([]float64, n*l)
	for r, i := range keep {
		if len(aln.Sequences[i]) != l || len(aln.Deletions[i]) != l {
			return nil, fmt.Errorf("features: alignment row %d has %d columns, want %d: %w", i, len(aln.Sequences[i]), l, ErrInput)
		}
		for j := 0; j < l; j++ {
			t, err := MSAToken(aln.Sequences[i][j])
			if err != nil {
				return nil, fmt.Errorf("%w (row %d, column %d)", err, i, j)
			}
			msa[r*l+j] = t
			del[r*l+j] = float64(aln.Deletions[i][j])
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	f := &Features{L: l, AAType: aatype}
	f.ResidueIndex = make([]int, l)
	f.SeqMask = make([]float64, l)
	f.TargetFeat = make([]float64, l*TargetFeatChannels)
	for i := 0; i < l; i++ {
		f.ResidueIndex[i] = i
		f.SeqMask[i] = 1
		// Channel 0 is has_break (0 for one chain); 1 + aatype is the one-hot.
		f.TargetFeat[i*TargetFeatChannels+1+aatype[i]] = 1
	}
	f.HHblitsProfile = profile(msa, n, l)

	// Sample the cluster centres: the query first, then the others (shuffled
	// when Sample is set); the rest become the extra MSA.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if cfg.Sample && n > 2 {
		rest := order[1:]
		rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	}
	s := min(cfg.MaxMSAClusters, n)
	centres, extra := order[:s], order[s:]
	f.S = s
	f.MSA = gatherInts(msa, centres, l)
	f.TrueMSA = append([]int(nil), f.MSA...)
	f.DeletionMatrix = gatherFloats(del, centres, l)
	f.MSAMask = ones(s * l)
	f.BertMask = make([]float64, s*l)
	extraMSA := gatherInts(msa, extra, l)
	extraDel := gatherFloats(del, extra, l)
	extraMask := ones(len(extra) * l)

	if cfg.MaskedMSA {
		maskMSA(f, cfg, rng)
	}
	// Cluster summaries use every extra sequence, before the extra MSA is cropped.
	assign := nearestCentres(f.MSA, f.MSAMask, extraMSA, extraMask, s, len(extra), l)
	summarize(f, assign, extraMSA, extraDel, extraMask)

	// Crop the extra MSA.
	se := min(cfg.MaxExtraMSA, len(extra))
	pick := make([]int, len(extra))
	for i := range pick {
		pick[i] = i
	}
	if cfg.Sample {
		rng.Shuffle(len(pick), func(i, j int) { pick[i], pick[j] = pick[j], pick[i] })
	}
	pick = pick[:se]
	f.Se = se
	f.ExtraMSA = gatherInts(extraMSA, pick, l)
	ed := gatherFloats(extraDel, pick, l)
	f.ExtraMSAMask = gatherFloats(extraMask, pick, l)
	f.ExtraHasDeletion = make([]float64, se*l)
	f.ExtraDeletionValue = make([]float64, se*l)
	for i, d := range ed {
		f.ExtraHasDeletion[i] = math.Min(d, 1)
		f.ExtraDeletionValue[i] = DeletionValue(d)
	}
	f.MSAFeat = msaFeat(f)
	return f, nil
}

func ones(n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = 1
	}
	return x
}

func gatherInts(x []int, rows []int, l int) []int {
	out := make([]int, 0, len(rows)*l)
	for _, r := range rows {
		out = append(out, x[r*l:(r+1)*l]...)
	}
	return out
}

func gatherFloats(x []float64, rows []int, l int) []float64 {
	out := make([]float64, 0, len(rows)*l)
	for _, r := range rows {
		out = append(out, x[r*l:(r+1)*l]...)
	}
	return out
}

// profile is AF2's make_hhblits_profile: the mean over rows of the 22-class
// one-hot of the MSA (gaps counted in class 21).
func profile(msa []int, n, l int) []float64 {
	p := make([]float64, l*22)
	for r := 0; r < n; r++ {
		for j := 0; j < l; j++ {
			p[j*22+msa[r*l+j]]++
		}
	}
	for i := range p {
		p[i] /= float64(n)
	}
	return p
}

// maskMSA is AF2's make_masked_msa: each position is replaced with
// probability ReplaceFraction by a token drawn from uniform (over the 20
// amino acids), profile, same-token and mask-token mixtures.
func maskMSA(f *Features, cfg Config, rng *rand.Rand) {
	l := f.L
	maskProb := 1 - cfg.UniformProb - cfg.ProfileProb - cfg.SameProb
	var probs [NumMSAClasses]float64
	for i := 0; i < f.S*l; i++ {
		if rng.Float64() >= cfg.ReplaceFraction {
			continue
		}
		j := i % l
		for c := 0; c < 22; c++ {
			probs[c] = cfg.ProfileProb * f.HHblitsProfile[j*22+c]
			if c < 20 {
				probs[c] += cfg.UniformProb * 0.05
			}
			if c == f.MSA[i] {
				probs[c] += cfg.SameProb
			}
		}
		probs[MaskToken] = maskProb
		u := rng.Float64()
		tok := MaskToken
		acc := 0.0
		for c, p := range probs {
			acc += p
			if u < acc {
				tok = c
				break
			}
		}
		f.MSA[i] = tok
		f.BertMask[i] = 1
	}
}

// nearestCentres is AF2's nearest_neighbor_clusters with gap agreement
// weight 0: each extra sequence goes to the centre with which it agrees at
// the most (masked) positions, counting residue tokens 0..20 but not gaps or
// mask tokens; ties go to the first centre.
func nearestCentres(msa []int, msaMask []float64, extra []int, extraMask []float64, s, se, l int) []int {
	assign := make([]int, se)
	for e := 0; e < se; e++ {
		best, bestScore := 0, math.Inf(-1)
		for c := 0; c < s; c++ {
			score := 0.0
			for j := 0; j < l; j++ {
				t := extra[e*l+j]
				if t < Gap && t == msa[c*l+j] {
					score += extraMask[e*l+j] * msaMask[c*l+j]
				}
			}
			if score > bestScore {
				best, bestScore = c, score
			}
		}
		assign[e] = best
	}
	return assign
}

// summarize is AF2's summarize_clusters: per centre, the mean one-hot and
// mean deletion count over the centre and its assigned extra sequences, with
// AF2's 1e-6 in the denominator.
func summarize(f *Features, assign []int, extra []int, extraDel, extraMask []float64) {
	l, s := f.L, f.S
	counts := make([]float64, s*l)
	prof := make([]float64, s*l*NumMSAClasses)
	delSum := make([]float64, s*l)
	for i := 0; i < s*l; i++ {
		counts[i] = 1e-6 + f.MSAMask[i]
		prof[i*NumMSAClasses+f.MSA[i]] += 1
		delSum[i] = f.DeletionMatrix[i]
	}
	for e, c := range assign {
		for j := 0; j < l; j++ {
			m := extraMask[e*l+j]
			counts[c*l+j] += m
			prof[(c*l+j)*NumMSAClasses+extra[e*l+j]] += m
			delSum[c*l+j] += m * extraDel[e*l+j]
		}
	}
	for i := 0; i < s*l; i++ {
		for k := 0; k < NumMSAClasses; k++ {
			prof[i*NumMSAClasses+k] /= counts[i]
		}
		delSum[i] /= counts[i]
	}
	f.ClusterProfile = prof
	f.ClusterDeletionMean = delSum
}

// msaFeat is AF2's make_msa_feat: one-hot (23), has_deletion,
// deletion_value, cluster profile (23), cluster deletion mean value.
func msaFeat(f *Features) []float64 {
	n := f.S * f.L
	out := make([]float64, n*MSAFeatChannels)
	for i := 0; i < n; i++ {
		o := out[i*MSAFeatChannels : (i+1)*MSAFeatChannels]
		o[f.MSA[i]] = 1
		d := f.DeletionMatrix[i]
		o[23] = math.Min(d, 1)
		o[24] = DeletionValue(d)
		copy(o[25:48], f.ClusterProfile[i*NumMSAClasses:(i+1)*NumMSAClasses])
		o[48] = DeletionValue(f.ClusterDeletionMean[i])
	}
	return out
}
