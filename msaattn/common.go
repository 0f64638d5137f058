package msaattn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// The AF2 module paths of the three modules, relative to the stack that
// holds them: "alphafold/alphafold_iteration/evoformer/evoformer_iteration/"
// for row and column attention, ".../evoformer/extra_msa_stack/" for global
// column attention and for the extra-MSA stack's own row attention (with
// c_m = 64 and 8 heads of 8 channels). Release files give every array of a
// stack a leading layer axis (params.Set.Layer takes one layer). The Load
// functions read names relative to these paths.
const (
	RowPrefix          = "msa_row_attention_with_pair_bias/"
	ColumnPrefix       = "msa_column_attention/"
	GlobalColumnPrefix = "msa_column_global_attention/"
)

// maskBias is the factor of AF2's additive mask bias 1e9·(mask − 1).
const maskBias = attn.EvoformerMaskBias

// chunkRows is the number of rows (MSA positions, or residue pairs) whose
// intermediate values — layer-normed inputs, gates — are held at a time
// where a module streams over a large input: 4096 rows × 64 channels is
// 1 MiB in float32.
const chunkRows = 4096

// param names one parameter array of a module: its AF2 name relative to the
// module (for example "attention//query_w"), its shape in AF2's layout, and
// the field of a Params struct that holds it. A module's list of params is
// the single place where its names and shapes are written down: loading,
// checking, the reference-case runner and the gorgonia adapters all walk it.
type param[T num.Float] struct {
	name  string
	shape []int
	data  *[]T
}

func (t param[T]) size() int {
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// layerNormTensors lists the scale and offset of the layer norm called name.
func layerNormTensors[T num.Float](p *nn.LayerNormParams[T], name string, c int) []param[T] {
	p.C = c
	return []param[T]{
		{name + "//scale", []int{c}, &p.Scale},
		{name + "//offset", []int{c}, &p.Offset},
	}
}

// gatedTensors lists the parameters of AF2's gated attention under
// "attention//" (refcases README §2): query_w, key_w, value_w and gating_w
// [cin, h, c], gating_b [h, c], output_w [h, c, cout], output_b [cout].
func gatedTensors[T num.Float](p *attn.GatedParams[T], cin, h, c, cout int) []param[T] {
	p.CIn, p.Heads, p.C, p.COut = cin, h, c, cout
	return []param[T]{
		{"attention//query_w", []int{cin, h, c}, &p.QueryW},
		{"attention//key_w", []int{cin, h, c}, &p.KeyW},
		{"attention//value_w", []int{cin, h, c}, &p.ValueW},
		{"attention//gating_w", []int{cin, h, c}, &p.GatingW},
		{"attention//gating_b", []int{h, c}, &p.GatingB},
		{"attention//output_w", []int{h, c, cout}, &p.OutputW},
		{"attention//output_b", []int{cout}, &p.OutputB},
	}
}

// loadTensors reads every tensor of ts from s by its name and shape and
// checks that its values are finite. Errors name the key, with the module
// path prefix (for example "msa_column_attention/") that s is narrowed to.
func loadTensors[T num.Float](s *params.Set, prefix string, ts []param[T]) error {
	for _, t := range ts {
		x, err := params.Get[T](s, t.name, t.shape...)
		if err != nil {
			return fmt.Errorf("msaattn: loading %s: %w", prefix, err)
		}
		if err := num.CheckFinite("msaattn: parameter "+prefix+t.name, x); err != nil {
			return err
		}
		*t.data = x
	}
	return nil
}

// storeTensors writes copies of the tensors of ts into s under their names,
// after checking them.
func storeTensors[T num.Float](s *params.Set, module, prefix string, ts []param[T]) error {
	if err := checkTensors(module, prefix, ts); err != nil {
		return err
	}
	for _, t := range ts {
		if err := params.Put(s, t.name, t.shape, *t.data); err != nil {
			return fmt.Errorf("msaattn: %w", err)
		}
	}
	return nil
}

// checkTensors reports a parameter whose length does not match its shape
// (num.ErrShape) or which holds NaN or an infinity (num.ErrNaN). module
// names the module and prefix is its AF2 path, for the message.
func checkTensors[T num.Float](module, prefix string, ts []param[T]) error {
	for _, t := range ts {
		if len(*t.data) != t.size() {
			return fmt.Errorf("msaattn: %s parameter %s has %d elements, want %v = %d: %w",
				module, prefix+t.name, len(*t.data), t.shape, t.size(), num.ErrShape)
		}
		if err := num.CheckFinite("msaattn: "+module+" parameter "+prefix+t.name, *t.data); err != nil {
			return err
		}
	}
	return nil
}

// allocTensors gives every tensor of ts a zeroed array of its size, the
// starting point of a gradient.
func allocTensors[T num.Float](ts []param[T]) {
	for _, t := range ts {
		*t.data = make([]T, t.size())
	}
}

// checkInput reports a wrong length (num.ErrShape) or a non-finite value
// (num.ErrNaN) of the input what of the given shape.
func checkInput[T num.Float](module, what string, x []T, shape ...int) error {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if len(x) != n {
		return fmt.Errorf("msaattn: %s: %s has %d elements, want %v = %d: %w", module, what, len(x), shape, n, num.ErrShape)
	}
	return num.CheckFinite("msaattn: "+module+": "+what, x)
}

// checkSizes reports a non-positive number of sequences or residues.
func checkSizes(module string, s, n int) error {
	if s < 1 || n < 1 {
		return fmt.Errorf("msaattn: %s: %d sequences and %d residues, want at least 1 of each: %w", module, s, n, num.ErrShape)
	}
	return nil
}

// positive reports the first of the named sizes that is not positive.
func positive(module string, names []string, vals ...int) error {
	for i, v := range vals {
		if v < 1 {
			return fmt.Errorf("msaattn: %s config: %s = %d, want a positive size", module, names[i], v)
		}
	}
	return nil
}

// axpy sets y += a·x; len(x) ≥ len(y).
func axpy[T num.Float](y []T, a T, x []T) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += a * v
	}
}

// scal sets x *= a.
func scal[T num.Float](x []T, a T) {
	for i := range x {
		x[i] *= a
	}
}

// mulInto sets y *= x elementwise; len(x) ≥ len(y).
func mulInto[T num.Float](y, x []T) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] *= v
	}
}

// glorot fills w, of the given shape, with haiku's glorot_uniform
// (VarianceScaling(1, "fan_avg", "uniform"), AF2's initialiser of attention
// queries, keys and values): uniform on ±√(6/(fan_in + fan_out)), where for
// a shape [..., a, b] fan_in = a·r and fan_out = b·r with r the product of
// the leading axes (haiku's _compute_fans).
func glorot[T num.Float](rng *rand.Rand, w []T, shape ...int) {
	r := 1
	for _, d := range shape[:len(shape)-2] {
		r *= d
	}
	fanIn, fanOut := float64(shape[len(shape)-2]*r), float64(shape[len(shape)-1]*r)
	lim := math.Sqrt(6 / (fanIn + fanOut))
	for i := range w {
		w[i] = T(lim * (2*rng.Float64() - 1))
	}
}
