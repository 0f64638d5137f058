package alphafold

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// Haiku names of the two transitions of an Evoformer block.
const (
	// MSATransitionName is the module name of the MSA transition
	// (Algorithm 9) under evoformer_iteration/ and extra_msa_stack/.
	MSATransitionName = "msa_transition"
	// PairTransitionName is the module name of the pair transition
	// (Algorithm 15).
	PairTransitionName = "pair_transition"
)

// TransitionConfig holds the sizes of a transition layer, the two-layer MLP
// AF2 applies to every row of the MSA (Algorithm 9) and pair (Algorithm 15)
// representations.
type TransitionConfig struct {
	// C is the width of the representation the layer acts on: c_m = 256
	// for the MSA transition, c_e = 64 in the extra-MSA stack, c_z = 128
	// for the pair transition.
	C int
	// Factor is n, the widening of the hidden layer (AF2's
	// num_intermediate_factor = 4): the hidden width is Factor·C.
	Factor int
	// Chunk is the number of rows evaluated at once; the hidden activations
	// of only that many rows exist at a time. 0 picks a chunk whose hidden
	// layer holds about 2²² values (16 MiB in float32).
	Chunk int
}

// DefaultMSATransitionConfig returns AF2's MSA transition: c_m = 256, n = 4.
func DefaultMSATransitionConfig() TransitionConfig { return TransitionConfig{C: 256, Factor: 4} }

// DefaultPairTransitionConfig returns AF2's pair transition: c_z = 128, n = 4.
func DefaultPairTransitionConfig() TransitionConfig { return TransitionConfig{C: 128, Factor: 4} }

// Validate returns an error wrapping ErrConfig if a size is not positive or
// Chunk is negative.
func (c TransitionConfig) Validate() error {
	if c.C < 1 || c.Factor < 1 || c.Chunk < 0 {
		return fmt.Errorf("alphafold: transition config C = %d, Factor = %d, Chunk = %d: want C, Factor ≥ 1 and Chunk ≥ 0: %w",
			c.C, c.Factor, c.Chunk, ErrConfig)
	}
	return nil
}

// chunkRows returns the number of rows a transition evaluates at once.
func (c TransitionConfig) chunkRows(rows int) int {
	ch := c.Chunk
	if ch == 0 {
		ch = max(1, (1<<22)/(c.Factor*c.C))
	}
	return max(1, min(ch, rows))
}

// TransitionParams holds the parameters of one transition layer in AF2's
// layouts (supplement Algorithms 9 and 15; AF2's Transition), with C =
// Config.C and n = Config.Factor.
type TransitionParams[T num.Float] struct {
	// Config gives the sizes of every array below.
	Config TransitionConfig
	// InputLayerNorm (input_layer_norm) normalises the C input channels.
	InputLayerNorm nn.LayerNormParams[T]
	// Transition1 (transition1) is [C, n·C], followed by a ReLU.
	Transition1 nn.LinearParams[T]
	// Transition2 (transition2) is [n·C, C].
	Transition2 nn.LinearParams[T]
}

// NewTransitionParams returns a transition for cfg initialised as AF2 does:
// layer norm scale 1 and offset 0, transition1 with the "relu" initialiser
// (truncated normal, variance 2/fan_in) and transition2 with zeros (AF2's
// "final"), so that a fresh transition returns a zero update.
//
// The error wraps ErrConfig for an invalid cfg or a nil rng.
func NewTransitionParams[T num.Float](cfg TransitionConfig, rng *rand.Rand) (*TransitionParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("alphafold: NewTransitionParams: nil random source: %w", ErrConfig)
	}
	h := cfg.Factor * cfg.C
	return &TransitionParams[T]{
		Config:         cfg,
		InputLayerNorm: nn.NewLayerNorm[T](cfg.C),
		Transition1:    nn.NewLinear[T](rng, cfg.C, h, nn.InitRelu, true),
		Transition2:    nn.NewLinear[T](rng, h, cfg.C, nn.InitZeros, true),
	}, nil
}

// LoadTransitionParams reads the transition called name (MSATransitionName
// or PairTransitionName) from s, which holds AF2's names relative to the
// Evoformer block: name+"/input_layer_norm//scale",
// name+"/transition1//weights" and so on. Every shape is checked against
// cfg; the error names the key and wraps params.ErrMissing, num.ErrShape or
// num.ErrNaN, or wraps ErrConfig for an invalid cfg.
func LoadTransitionParams[T num.Float](s *params.Set, name string, cfg TransitionConfig) (*TransitionParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &TransitionParams[T]{Config: cfg}
	var err error
	if p.InputLayerNorm, err = nn.LoadLayerNorm[T](s, name+"/input_layer_norm", cfg.C); err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	h := cfg.Factor * cfg.C
	if p.Transition1, err = nn.LoadLinear[T](s, name+"/transition1", cfg.C, h, true); err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	if p.Transition2, err = nn.LoadLinear[T](s, name+"/transition2", h, cfg.C, true); err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	return p, nil
}

// tensors lists p's arrays under name with their AF2 shapes.
func (p *TransitionParams[T]) tensors(name string) []evoTensor[T] {
	c, h := p.Config.C, p.Config.Factor*p.Config.C
	ts := evoLayerNormTensors(&p.InputLayerNorm, name+"/input_layer_norm", c)
	ts = append(ts, evoLinearTensors(&p.Transition1, name+"/transition1", c, h)...)
	return append(ts, evoLinearTensors(&p.Transition2, name+"/transition2", h, c)...)
}

// Save stores p in s under AF2's names, name being the transition's module
// name and prefix prepended to every key, so that
// LoadTransitionParams(s.Sub(prefix), name, p.Config) reads it back.
func (p *TransitionParams[T]) Save(s *params.Set, prefix, name string) error {
	return evoSaveTensors(s, prefix, p.tensors(name))
}

// ZerosLike returns parameters of p's shapes filled with zeros, the starting
// point of the gradient that Backward accumulates.
func (p *TransitionParams[T]) ZerosLike() *TransitionParams[T] {
	return &TransitionParams[T]{
		Config:         p.Config,
		InputLayerNorm: p.InputLayerNorm.ZerosLike(),
		Transition1:    p.Transition1.ZerosLike(),
		Transition2:    p.Transition2.ZerosLike(),
	}
}

// check reports an invalid Config or an array whose length does not match it.
func (p *TransitionParams[T]) check() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	return evoCheckTensors("transition", p.tensors("transition"))
}

// TransitionCache holds what TransitionBackward needs from one Forward call:
// a reference to the input (which must not change until Backward has run)
// and the layer-norm statistics of each row. The hidden activations are
// recomputed chunk by chunk in Backward, so the cache holds only O(rows)
// values besides the input. A zero TransitionCache is ready to use.
type TransitionCache[T num.Float] struct {
	x, mask     []T
	rows        int
	mean, rstd  []T
	hasForward  bool
	cfg         TransitionConfig
	maskApplied bool
}

// Forward computes the transition layer (supplement Algorithms 9 and 15),
//
//	out_r = relu(LN(x_r)·W1 + b1)·W2 + b2,
//
// for each of the rows rows of x [rows, C] (a tensor [S, N, c_m] or
// [N, N, c_z] is passed as rows = S·N or N·N), and writes the update to out
// [rows, C]; the residual is added by the caller. AF2 does not mask the
// transitions' output: pass mask = nil for that. A non-nil mask [rows]
// multiplies each output row by its entry (the masked variant stored by the
// reference cases).
//
// Rows are evaluated Config.Chunk at a time, so the hidden layer never
// exists for more than a chunk. If cache is not nil it is filled for
// Backward. The error wraps num.ErrShape for a length that does not match,
// num.ErrNaN for a non-finite x or mask, and ErrConfig for invalid
// parameters. out must not overlap x.
func (p *TransitionParams[T]) Forward(x []T, rows int, mask, out []T, cache *TransitionCache[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	c := p.Config.C
	if rows < 0 {
		return fmt.Errorf("alphafold: transition: %d rows: %w", rows, num.ErrShape)
	}
	shp := fmt.Sprintf("[rows C] = [%d %d]", rows, c)
	if err := evoCheckInput("transition", "input", x, rows*c, shp); err != nil {
		return err
	}
	if mask != nil {
		if err := evoCheckInput("transition", "mask", mask, rows, fmt.Sprintf("[rows] = [%d]", rows)); err != nil {
			return err
		}
	}
	if err := num.CheckLen("transition output", out, rows*c, shp); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	p.forward(x, rows, mask, out, cache)
	return nil
}

// forward is Forward on validated arguments.
func (p *TransitionParams[T]) forward(x []T, rows int, mask, out []T, cache *TransitionCache[T]) {
	c, h := p.Config.C, p.Config.Factor*p.Config.C
	ch := p.Config.chunkRows(rows)
	var mean, rstd []T
	if cache != nil {
		*cache = TransitionCache[T]{x: x, mask: mask, rows: rows, cfg: p.Config, hasForward: true, maskApplied: mask != nil}
		cache.mean, cache.rstd = make([]T, rows), make([]T, rows)
		mean, rstd = cache.mean, cache.rstd
	}
	ln := make([]T, ch*c)
	hid := make([]T, ch*h)
	for r0 := 0; r0 < rows; r0 += ch {
		r1 := min(r0+ch, rows)
		nr := r1 - r0
		var mu, rs []T
		if mean != nil {
			mu, rs = mean[r0:r1], rstd[r0:r1]
		}
		p.InputLayerNorm.Forward(ln[:nr*c], x[r0*c:r1*c], nr, mu, rs)
		p.Transition1.Forward(hid[:nr*h], ln[:nr*c], nr)
		nn.ReLU(hid[:nr*h], hid[:nr*h])
		o := out[r0*c : r1*c]
		p.Transition2.Forward(o, hid[:nr*h], nr)
		if mask != nil {
			for r := range nr {
				m := mask[r0+r]
				or := o[r*c : (r+1)*c]
				for k := range or {
					or[k] *= m
				}
			}
		}
	}
}

// Backward computes the gradients of the transition for the Forward call
// that filled cache, given dout = ∂L/∂out [rows, C]. It accumulates (+=) the
// gradient with respect to x into dx [rows, C] (nil to skip) and, when g is
// not nil, the parameter gradients into g (start from p.ZerosLike()). The
// hidden layer is recomputed chunk by chunk. p must be the parameters of the
// Forward call and its input unchanged. The error wraps num.ErrShape for a
// length that does not match, num.ErrNaN for a non-finite dout, and
// ErrConfig if the cache holds no forward pass of p's configuration.
func (p *TransitionParams[T]) Backward(cache *TransitionCache[T], dout, dx []T, g *TransitionParams[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	if cache == nil || !cache.hasForward || cache.cfg.C != p.Config.C || cache.cfg.Factor != p.Config.Factor {
		return fmt.Errorf("alphafold: transition Backward without a matching Forward pass in the cache: %w", ErrConfig)
	}
	rows, c := cache.rows, p.Config.C
	shp := fmt.Sprintf("[rows C] = [%d %d]", rows, c)
	if err := evoCheckInput("transition", "dout", dout, rows*c, shp); err != nil {
		return err
	}
	if dx != nil {
		if err := num.CheckLen("transition dx", dx, rows*c, shp); err != nil {
			return fmt.Errorf("alphafold: %w", err)
		}
	}
	if g != nil {
		if g.Config.C != p.Config.C || g.Config.Factor != p.Config.Factor {
			return fmt.Errorf("alphafold: transition gradient has config %+v, want %+v: %w", g.Config, p.Config, ErrConfig)
		}
		if err := g.check(); err != nil {
			return err
		}
	}
	p.backward(cache, dout, dx, g)
	return nil
}

// backward is Backward on validated arguments.
func (p *TransitionParams[T]) backward(cache *TransitionCache[T], dout, dx []T, g *TransitionParams[T]) {
	c, h := p.Config.C, p.Config.Factor*p.Config.C
	rows, x, mask := cache.rows, cache.x, cache.mask
	ch := p.Config.chunkRows(rows)
	ln := make([]T, ch*c)
	pre := make([]T, ch*h)
	act := make([]T, ch*h)
	dact := make([]T, ch*h)
	dpre := make([]T, ch*h)
	dln := make([]T, ch*c)
	dmo := make([]T, ch*c)
	var g1, g2 *nn.LinearParams[T]
	var gln *nn.LayerNormParams[T]
	if g != nil {
		g1, g2, gln = &g.Transition1, &g.Transition2, &g.InputLayerNorm
	}
	for r0 := 0; r0 < rows; r0 += ch {
		r1 := min(r0+ch, rows)
		nr := r1 - r0
		xs := x[r0*c : r1*c]
		mu, rs := cache.mean[r0:r1], cache.rstd[r0:r1]
		p.InputLayerNorm.Forward(ln[:nr*c], xs, nr, nil, nil)
		p.Transition1.Forward(pre[:nr*h], ln[:nr*c], nr)
		nn.ReLU(act[:nr*h], pre[:nr*h])
		d := dout[r0*c : r1*c]
		if cache.maskApplied {
			dm := dmo[:nr*c]
			for r := range nr {
				m := mask[r0+r]
				for k := range c {
					dm[r*c+k] = d[r*c+k] * m
				}
			}
			d = dm
		}
		clear(dact[:nr*h])
		p.Transition2.Backward(dact[:nr*h], g2, act[:nr*h], d, nr)
		clear(dpre[:nr*h])
		nn.ReLUBackward(dpre[:nr*h], pre[:nr*h], dact[:nr*h])
		clear(dln[:nr*c])
		p.Transition1.Backward(dln[:nr*c], g1, ln[:nr*c], dpre[:nr*h], nr)
		var dxs []T
		if dx != nil {
			dxs = dx[r0*c : r1*c]
		}
		p.InputLayerNorm.Backward(dxs, gln, xs, mu, rs, dln[:nr*c], nr)
	}
}
