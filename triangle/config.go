package triangle

import (
	"errors"
	"fmt"
)

// ErrConfig is returned (wrapped with the offending field) by the Validate
// methods and by every function that validates a configuration.
var ErrConfig = errors.New("invalid configuration")

// AF2's haiku module names of the four triangle updates; their parameters sit
// under alphafold/alphafold_iteration/evoformer/evoformer_iteration/<name>/
// (with a leading layer axis in the released files).
const (
	NameMulOutgoing = "triangle_multiplication_outgoing"
	NameMulIncoming = "triangle_multiplication_incoming"
	NameAttStarting = "triangle_attention_starting_node"
	NameAttEnding   = "triangle_attention_ending_node"
)

// MulConfig holds the sizes of one triangle multiplicative update
// (Algorithm 11, outgoing edges, or Algorithm 12, incoming edges).
// DefaultMulConfig returns AlphaFold2's values.
type MulConfig struct {
	// Incoming selects Algorithm 12 (incoming edges, AF2's
	// triangle_multiplication_incoming); false selects Algorithm 11
	// (outgoing edges, triangle_multiplication_outgoing).
	Incoming bool
	// PairChannels is c_z, the width of the pair representation (AF2: 128).
	PairChannels int
	// HiddenChannels is c, the width of the left and right projections that
	// are contracted over the third residue (AF2: 128).
	HiddenChannels int
	// ChunkChannels is the number of hidden channels whose N×N projections
	// are held at once while contracting. 0 chooses it so that each such
	// [chunk, N, N] buffer stays under 128 MiB (all channels up to N = 512
	// in float32, 32 at N = 1024). It changes memory and speed, never
	// results.
	ChunkChannels int
}

// DefaultMulConfig returns AlphaFold2's configuration of the outgoing update:
// c_z = 128, c = 128, automatic chunking. Set Incoming for Algorithm 12.
func DefaultMulConfig() MulConfig {
	return MulConfig{PairChannels: 128, HiddenChannels: 128}
}

// Name returns the AF2 module name of the update:
// "triangle_multiplication_outgoing" or "triangle_multiplication_incoming".
func (c MulConfig) Name() string {
	if c.Incoming {
		return NameMulIncoming
	}
	return NameMulOutgoing
}

// Validate returns an error wrapping ErrConfig naming the first field out of
// range: the widths must be positive and ChunkChannels not negative.
func (c MulConfig) Validate() error {
	if c.PairChannels <= 0 {
		return fmt.Errorf("triangle: config PairChannels = %d, want > 0: %w", c.PairChannels, ErrConfig)
	}
	if c.HiddenChannels <= 0 {
		return fmt.Errorf("triangle: config HiddenChannels = %d, want > 0: %w", c.HiddenChannels, ErrConfig)
	}
	if c.ChunkChannels < 0 {
		return fmt.Errorf("triangle: config ChunkChannels = %d, want ≥ 0: %w", c.ChunkChannels, ErrConfig)
	}
	return nil
}

// chunkBytes bounds each of the [chunk, N, N] buffers of the contraction
// when MulConfig.ChunkChannels is 0.
const chunkBytes = 128 << 20

// chunk returns the number of hidden channels contracted together for n
// residues and elements of size bytes.
func (c MulConfig) chunk(n, size int) int {
	if c.ChunkChannels > 0 {
		return min(c.ChunkChannels, c.HiddenChannels)
	}
	per := max(n*n*size, 1)
	return max(1, min(c.HiddenChannels, chunkBytes/per))
}

// AttConfig holds the sizes of one triangle self-attention (Algorithm 13,
// around the starting node, or Algorithm 14, around the ending node).
// DefaultAttConfig returns AlphaFold2's values.
type AttConfig struct {
	// Ending selects Algorithm 14 (AF2's triangle_attention_ending_node);
	// false selects Algorithm 13 (triangle_attention_starting_node).
	Ending bool
	// PairChannels is c_z, the width of the pair representation (AF2: 128).
	PairChannels int
	// Heads is the number of attention heads N_head (AF2: 4).
	Heads int
	// HeadChannels is c, the query, key and value channels per head (AF2: 32).
	HeadChannels int
	// ChunkRows is the number of rows of the pair representation (batch
	// elements of the attention: residues i for the starting node) whose
	// queries, keys, values and gates are held at once. 0 chooses it so that
	// those four projections stay under 256 MiB together (in float32 at
	// AF2's widths: 256 rows at N = 512, 128 at N = 1024). It changes memory
	// and speed, never results.
	ChunkRows int
}

// DefaultAttConfig returns AlphaFold2's configuration of the starting-node
// attention: c_z = 128, 4 heads of 32 channels, automatic chunking. Set
// Ending for Algorithm 14.
func DefaultAttConfig() AttConfig {
	return AttConfig{PairChannels: 128, Heads: 4, HeadChannels: 32}
}

// Name returns the AF2 module name of the attention:
// "triangle_attention_starting_node" or "triangle_attention_ending_node".
func (c AttConfig) Name() string {
	if c.Ending {
		return NameAttEnding
	}
	return NameAttStarting
}

// Validate returns an error wrapping ErrConfig naming the first field out of
// range: the widths and head count must be positive and ChunkRows not
// negative.
func (c AttConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"PairChannels", c.PairChannels}, {"Heads", c.Heads}, {"HeadChannels", c.HeadChannels}} {
		if f.v <= 0 {
			return fmt.Errorf("triangle: config %s = %d, want > 0: %w", f.name, f.v, ErrConfig)
		}
	}
	if c.ChunkRows < 0 {
		return fmt.Errorf("triangle: config ChunkRows = %d, want ≥ 0: %w", c.ChunkRows, ErrConfig)
	}
	return nil
}

// rowBytes bounds the per-chunk projections of the attention when
// AttConfig.ChunkRows is 0.
const rowBytes = 256 << 20

// chunk returns the number of pair rows processed together for n residues
// and elements of size bytes.
func (c AttConfig) chunk(n, size int) int {
	if c.ChunkRows > 0 {
		return max(1, min(c.ChunkRows, n))
	}
	per := max(4*n*c.Heads*c.HeadChannels*size, 1)
	return max(1, min(n, rowBytes/per))
}
