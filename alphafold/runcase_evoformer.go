package alphafold

import (
	"fmt"
	"strings"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// EvoformerCases returns the reference-case kinds (meta.case) that
// RunEvoformerCase runs.
func EvoformerCases() []string {
	return []string{"outer_product_mean", "msa_transition", "pair_transition", "evoformer_block"}
}

// RunEvoformerCase runs one reference case of an Evoformer part (the kinds
// EvoformerCases lists: outer product mean, MSA and pair transitions, one
// Evoformer block) in dtype "float32" or "float64" and returns its results:
// out/<name> for every output and, with grad, grad/in/<name> and
// grad/params/<AF2 name>, the gradients of Σ out·cot over the outputs that
// have a cotangent in/cot_<name>.
//
// cs is a whole case file as params.Open reads it: its meta (JSON with
// "case" and "config"), parameters under params/ (AF2 names relative to
// meta.af2_prefix) and inputs under in/. The configuration (widths, heads)
// comes from meta.config, so reduced-width cases run as they are. The error
// names a missing or mis-shaped key, an unknown case, or any params/ or in/
// key the case did not use (the in/cot_ keys are used only with grad).
func RunEvoformerCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	return RunEvoformerCaseOn(cs, dtype, grad, backend.Pair{})
}

// RunEvoformerCaseOn is RunEvoformerCase with the forward pass on the
// backend of k for dtype (Transition, OuterProductMean or EvoformerBlock on
// that backend); with no backend for dtype in k it is RunEvoformerCase.
// Gradients are computed on the CPU only: grad with a backend gives an
// error wrapping casekit.ErrGradBackend.
func RunEvoformerCaseOn(cs *params.Set, dtype string, grad bool, k backend.Pair) (*params.Set, error) {
	c := casekit.New(cs, "alphafold", ErrConfig)
	m, err := c.Meta()
	if err != nil {
		return nil, err
	}
	c.Prefix = "alphafold: " + m.Case + " case"
	type runner func(*casekit.Case, *casekit.Meta, bool) error
	run, err := casekit.ByDType[runner](c, dtype,
		func(c *casekit.Case, m *casekit.Meta, grad bool) error {
			return runEvoCase(c, m, grad, backend.For[float32](k))
		},
		func(c *casekit.Case, m *casekit.Meta, grad bool) error {
			return runEvoCase(c, m, grad, backend.For[float64](k))
		})
	if err != nil {
		return nil, err
	}
	if err := run(c, m, grad); err != nil {
		return nil, err
	}
	if err := c.CheckUsed(grad); err != nil {
		return nil, err
	}
	return c.Result()
}

// runEvoCase dispatches on the case kind.
func runEvoCase[T num.Float](c *casekit.Case, m *casekit.Meta, grad bool, k backend.Kernels[T]) error {
	if grad && k != nil {
		return c.Fail(fmt.Errorf("on %s: %w", k.Name(), casekit.ErrGradBackend))
	}
	r := &evoRun[T]{c: c, meta: m, prm: c.In.Sub("params/"), grad: grad, k: k}
	switch m.Case {
	case "outer_product_mean":
		return r.outerProductMean()
	case "msa_transition":
		return r.transition(MSATransitionName, "c_m", "msa", "msa_mask", "msa_update")
	case "pair_transition":
		return r.transition(PairTransitionName, "c_z", "z", "pair_mask", "z_update")
	case "evoformer_block":
		return r.evoformerBlock()
	}
	return c.ConfigErrorf("case %q is not an Evoformer part (want one of %s)", m.Case, strings.Join(EvoformerCases(), ", "))
}

// evoRun is one case run: the case, its meta and its parameters.
type evoRun[T num.Float] struct {
	c    *casekit.Case
	meta *casekit.Meta
	prm  *params.Set
	grad bool
	k    backend.Kernels[T] // the forward pass's backend; nil: the CPU code
}

// outerProductMean runs outer_product_mean.npz.
func (r *evoRun[T]) outerProductMean() error {
	m := r.meta
	cz := m.Int("c_z")
	cfg := OuterProductMeanConfig{CM: m.Int("c_m"), C: m.Int("c_hidden"), CZ: cz, Eps: m.FloatOr("eps", 1e-3)}
	if err := r.c.Err(); err != nil {
		return err
	}
	p, err := LoadOuterProductMeanParams[T](r.prm, cfg)
	if err != nil {
		return err
	}
	shape, err := r.c.Dims("in/msa", casekit.Any, casekit.Any, casekit.Any)
	if err != nil {
		return err
	}
	s, n := shape[0], shape[1]
	msa := casekit.Get[T](r.c, "in/msa", shape...)
	mask := casekit.Get[T](r.c, "in/msa_mask", s, n)
	if err := r.c.Err(); err != nil {
		return err
	}
	out := make([]T, n*n*cz)
	var cache *OuterProductMeanCache[T]
	if r.grad {
		cache = new(OuterProductMeanCache[T])
	}
	if r.k != nil {
		res, err := runOnBackend(r.k, func() (*OuterProductMean[T], error) { return NewOuterProductMean(r.k, cfg, p) },
			[][]T{msa, mask}, []int{len(out)}, func(d *OuterProductMean[T], in, o []backend.Tensor[T]) error {
				return d.Forward(in[0], in[1], s, n, o[0])
			})
		if err != nil {
			return err
		}
		copy(out, res[0])
	} else if err := p.Forward(msa, mask, s, n, out, cache); err != nil {
		return err
	}
	casekit.Put(r.c, "out/z_update", []int{n, n, cz}, out)
	if !r.grad {
		return r.c.Err()
	}
	cot := casekit.Get[T](r.c, "in/cot_z_update", n, n, cz)
	if err := r.c.Err(); err != nil {
		return err
	}
	dmsa := make([]T, len(msa))
	g := p.ZerosLike()
	if err := p.Backward(cache, cot, dmsa, g); err != nil {
		return err
	}
	casekit.Put(r.c, "grad/in/msa", shape, dmsa)
	if err := g.Save(r.c.Out, "grad/params/"); err != nil {
		return err
	}
	return r.c.Err()
}

// transition runs msa_transition.npz or pair_transition.npz: the masked
// output <out> and AF2's unmasked <out>_nomask, and gradients of the sum of
// both cotangent products.
func (r *evoRun[T]) transition(name, widthKey, xName, maskName, outName string) error {
	c := r.meta.Int(widthKey)
	cfg := TransitionConfig{C: c, Factor: r.meta.Int("n")}
	if err := r.c.Err(); err != nil {
		return err
	}
	p, err := LoadTransitionParams[T](r.prm, name, cfg)
	if err != nil {
		return err
	}
	shape, err := r.c.Dims("in/"+xName, casekit.Any, casekit.Any, c)
	if err != nil {
		return err
	}
	rows := shape[0] * shape[1]
	x := casekit.Get[T](r.c, "in/"+xName, shape...)
	mask := casekit.Get[T](r.c, "in/"+maskName, shape[0], shape[1])
	if err := r.c.Err(); err != nil {
		return err
	}
	var cm, cu *TransitionCache[T]
	if r.grad {
		cm, cu = new(TransitionCache[T]), new(TransitionCache[T])
	}
	masked, nomask := make([]T, rows*c), make([]T, rows*c)
	if r.k != nil {
		res, err := runOnBackend(r.k, func() (*Transition[T], error) { return NewTransition(r.k, cfg, p) },
			[][]T{x, mask}, []int{len(masked), len(nomask)}, func(d *Transition[T], in, o []backend.Tensor[T]) error {
				if err := d.Forward(in[0], in[1], rows, o[0]); err != nil {
					return err
				}
				return d.Forward(in[0], nil, rows, o[1])
			})
		if err != nil {
			return err
		}
		copy(masked, res[0])
		copy(nomask, res[1])
	} else {
		if err := p.Forward(x, rows, mask, masked, cm); err != nil {
			return err
		}
		if err := p.Forward(x, rows, nil, nomask, cu); err != nil {
			return err
		}
	}
	casekit.Put(r.c, "out/"+outName, shape, masked)
	casekit.Put(r.c, "out/"+outName+"_nomask", shape, nomask)
	if !r.grad {
		return r.c.Err()
	}
	cotM := casekit.Get[T](r.c, "in/cot_"+outName, shape...)
	cotU := casekit.Get[T](r.c, "in/cot_"+outName+"_nomask", shape...)
	if err := r.c.Err(); err != nil {
		return err
	}
	dx := make([]T, len(x))
	g := p.ZerosLike()
	if err := p.Backward(cm, cotM, dx, g); err != nil {
		return err
	}
	if err := p.Backward(cu, cotU, dx, g); err != nil {
		return err
	}
	casekit.Put(r.c, "grad/in/"+xName, shape, dx)
	if err := g.Save(r.c.Out, "grad/params/", name); err != nil {
		return err
	}
	return r.c.Err()
}

// evoformerBlock runs evoformer_block.npz: one block with the widths of
// meta.config (OpenFold's names: c_m, c_z, c_hidden_msa_att, no_heads_msa,
// c_hidden_pair_att, no_heads_pair, c_hidden_mul, c_hidden_opm,
// transition_n), parameters under params/evoformer_iteration/.
func (r *evoRun[T]) evoformerBlock() error {
	m := r.meta
	// AF2's monomer block: these OpenFold switches must be off.
	for _, k := range []string{"opm_first", "no_column_attention", "fuse_projection_weights"} {
		m.Want(k, false)
	}
	cfg := EvoformerConfig{
		MSAChannels: m.Int("c_m"), PairChannels: m.Int("c_z"),
		MSAHeads: m.Int("no_heads_msa"), MSAHeadChannels: m.Int("c_hidden_msa_att"),
		PairHeads: m.Int("no_heads_pair"), PairHeadChannels: m.Int("c_hidden_pair_att"),
		TriMulChannels: m.Int("c_hidden_mul"), OuterChannels: m.Int("c_hidden_opm"), TransitionFactor: m.Int("transition_n"),
	}
	if err := r.c.Err(); err != nil {
		return err
	}
	p, err := LoadEvoformerBlockParams[T](r.prm.Sub(EvoformerStackName+"/"), cfg)
	if err != nil {
		return err
	}
	shape, err := r.c.Dims("in/msa", casekit.Any, casekit.Any, cfg.MSAChannels)
	if err != nil {
		return err
	}
	s, n := shape[0], shape[1]
	msa := casekit.Get[T](r.c, "in/msa", shape...)
	pair := casekit.Get[T](r.c, "in/pair", n, n, cfg.PairChannels)
	msaMask := casekit.Get[T](r.c, "in/msa_mask", s, n)
	pairMask := casekit.Get[T](r.c, "in/pair_mask", n, n)
	if err := r.c.Err(); err != nil {
		return err
	}
	var cache *EvoformerBlockCache[T]
	if r.grad {
		cache = new(EvoformerBlockCache[T])
	}
	if r.k != nil {
		res, err := runOnBackend(r.k, func() (*EvoformerBlock[T], error) { return NewEvoformerBlock(r.k, p) },
			[][]T{msa, pair, msaMask, pairMask}, []int{len(msa), len(pair)}, func(d *EvoformerBlock[T], in, o []backend.Tensor[T]) error {
				if err := d.Forward(in[0], in[1], in[2], in[3], s, n); err != nil {
					return err
				}
				if err := r.k.Copy(o[0], in[0]); err != nil {
					return err
				}
				return r.k.Copy(o[1], in[1])
			})
		if err != nil {
			return err
		}
		copy(msa, res[0])
		copy(pair, res[1])
	} else if err := p.Forward(msa, pair, msaMask, pairMask, s, n, nil, cache); err != nil {
		return err
	}
	pairShape := []int{n, n, cfg.PairChannels}
	casekit.Put(r.c, "out/msa", shape, msa)
	casekit.Put(r.c, "out/pair", pairShape, pair)
	if !r.grad {
		return r.c.Err()
	}
	dmsa := casekit.Get[T](r.c, "in/cot_msa", shape...)
	dpair := casekit.Get[T](r.c, "in/cot_pair", pairShape...)
	if err := r.c.Err(); err != nil {
		return err
	}
	g := p.ZerosLike()
	if err := p.Backward(cache, dmsa, dpair, g); err != nil {
		return err
	}
	casekit.Put(r.c, "grad/in/msa", shape, dmsa)
	casekit.Put(r.c, "grad/in/pair", pairShape, dpair)
	if err := g.Save(r.c.Out, "grad/params/"+EvoformerStackName+"/"); err != nil {
		return err
	}
	return r.c.Err()
}

// runOnBackend builds a module on backend k, runs fwd on the host inputs in
// (backend.Run) and closes the module, returning the outputs of outLens
// elements.
func runOnBackend[T num.Float, D interface{ Close() }](k backend.Kernels[T], build func() (D, error), in [][]T, outLens []int, fwd func(d D, in, out []backend.Tensor[T]) error) ([][]T, error) {
	d, err := build()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return backend.Run(k, in, outLens, func(din, dout []backend.Tensor[T]) error { return fwd(d, din, dout) })
}
