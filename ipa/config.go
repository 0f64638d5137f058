package ipa

import (
	"errors"
	"fmt"
	"math"
)

// ErrConfig is returned (wrapped with the offending field) by Config.Validate
// and by every function that validates a configuration.
var ErrConfig = errors.New("invalid configuration")

// Config holds the sizes of one invariant point attention (Algorithm 22).
// DefaultConfig returns AlphaFold2's values; the reference cases and tests
// use the same sizes or smaller ones.
type Config struct {
	// CS is c_s, the width of the single representation (AF2: 384).
	CS int
	// CZ is c_z, the width of the pair representation (AF2: 128).
	CZ int
	// Heads is the number of attention heads N_head (AF2: 12).
	Heads int
	// Channels is C, the number of scalar query, key and value channels per
	// head (AF2's num_scalar_qk = num_scalar_v = 16).
	Channels int
	// QueryPoints is N_query_points, the number of query and key points per
	// head (AF2's num_point_qk = 4).
	QueryPoints int
	// ValuePoints is N_point_values, the number of value points per head
	// (AF2's num_point_v = 8).
	ValuePoints int
	// Eps is the ε inside the norm of the output points, √(ε + |o|²)
	// (AF2's dist_epsilon = 1e-8; in squared length units).
	Eps float64
	// Inf is the mask penalty: logits get −Inf·(1 − m_i·m_j) (AF2: 1e5).
	Inf float64
}

// DefaultConfig returns AlphaFold2's configuration of the structure module's
// IPA: c_s = 384, c_z = 128, 12 heads, 16 scalar channels, 4 query points,
// 8 value points, ε = 1e-8, mask penalty 1e5.
func DefaultConfig() Config {
	return Config{CS: 384, CZ: 128, Heads: 12, Channels: 16, QueryPoints: 4, ValuePoints: 8, Eps: 1e-8, Inf: 1e5}
}

// Validate returns an error wrapping ErrConfig naming the first field that is
// out of range: every width must be positive and Eps and Inf finite and
// non-negative (Inf positive).
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"CS", c.CS}, {"CZ", c.CZ}, {"Heads", c.Heads}, {"Channels", c.Channels},
		{"QueryPoints", c.QueryPoints}, {"ValuePoints", c.ValuePoints},
	} {
		if f.v <= 0 {
			return fmt.Errorf("ipa: config %s = %d, want > 0: %w", f.name, f.v, ErrConfig)
		}
	}
	if !(c.Eps >= 0) || math.IsInf(c.Eps, 0) {
		return fmt.Errorf("ipa: config Eps = %v, want finite and ≥ 0: %w", c.Eps, ErrConfig)
	}
	if !(c.Inf > 0) || math.IsInf(c.Inf, 0) {
		return fmt.Errorf("ipa: config Inf = %v, want finite and > 0: %w", c.Inf, ErrConfig)
	}
	return nil
}

// outputWidth returns the width of the concatenated features that
// output_projection reads: H·C scalar, 3·H·P_v point coordinates, H·P_v point
// norms and H·c_z pair channels (2112 for DefaultConfig).
func (c Config) outputWidth() int {
	return c.Heads*c.Channels + 4*c.Heads*c.ValuePoints + c.Heads*c.CZ
}

// scalarWeight is √(1/(3C)), the weight of the scalar term q·k (w_L/√C).
func (c Config) scalarWeight() float64 { return math.Sqrt(1 / (3 * float64(c.Channels))) }

// pointWeight is w_L·w_C = √(1/(3·P_q·9/2)); the point term of a logit is
// −½·pointWeight·γ_h·Σ_p |q − k|².
func (c Config) pointWeight() float64 {
	return math.Sqrt(1 / (3 * float64(c.QueryPoints) * 9 / 2))
}

// pairWeight is w_L = √(1/3), the weight of the pair bias.
func pairWeight() float64 { return math.Sqrt(1.0 / 3) }
