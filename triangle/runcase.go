package triangle

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// Reference-case names (meta "case") that RunCase runs.
const (
	CaseMulOutgoing = "tri_mul_outgoing"
	CaseMulIncoming = "tri_mul_incoming"
	CaseAttStarting = "tri_att_starting"
	CaseAttEnding   = "tri_att_ending"
)

// Cases lists the reference-case names RunCase accepts.
func Cases() []string {
	return []string{CaseMulOutgoing, CaseMulIncoming, CaseAttStarting, CaseAttEnding}
}

// caseMeta is the part of a reference case's meta record that RunCase reads.
type caseMeta struct {
	Case   string `json:"case"`
	Config struct {
		CZ      *int     `json:"c_z"`
		CHidden *int     `json:"c_hidden"`
		Heads   *int     `json:"heads"`
		Eps     *float64 `json:"layer_norm_eps"`
		Inf     *float64 `json:"inf"`
	} `json:"config"`
}

// RunCase runs the triangle reference case cs (a whole case file: "meta"
// with case tri_mul_outgoing, tri_mul_incoming, tri_att_starting or
// tri_att_ending and the configuration, AF2-named parameters under
// "params/", inputs "in/z" [N, N, c_z] and "in/pair_mask" [N, N]) in dtype
// "float32" or "float64" and returns a new set with "out/z_update"
// [N, N, c_z]. With grad it also reads the cotangent "in/cot_z_update" and
// returns the gradients of Σ out·cot: "grad/in/z" and "grad/params/<name>"
// for every parameter, under the same names as the parameters.
//
// The error names the key for a missing or mis-shaped array, and RunCase
// fails if any "params/" or "in/" array is left unread (the cotangent may
// stay unread when grad is false). A configuration the module cannot run
// (a layer-norm epsilon other than 1e-5, a mask constant other than 1e9)
// is refused with ErrConfig.
func RunCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	return RunCaseOn(cs, dtype, grad, backend.Pair{})
}

// RunCaseOn is RunCase with the forward pass on the backend of k for dtype
// (Att or Mul on that backend); with no backend for dtype in k it is
// RunCase. Gradients are computed on the CPU only: grad with a backend
// gives an error wrapping casekit.ErrGradBackend.
func RunCaseOn(cs *params.Set, dtype string, grad bool, k backend.Pair) (*params.Set, error) {
	switch dtype {
	case "float32":
		return runCase(cs, grad, backend.For[float32](k))
	case "float64":
		return runCase(cs, grad, backend.For[float64](k))
	}
	return nil, fmt.Errorf("triangle: RunCase: dtype %q, want float32 or float64: %w", dtype, ErrConfig)
}

// caseModule is one triangle module made ready to run on a case's inputs.
type caseModule[T num.Float] interface {
	forward(z, mask []T, n int, out []T) error
	forwardOn(k backend.Kernels[T], z, mask []T, n int, out []T) error
	backward(dout, dz []T) error
	save(s *params.Set, prefix string) error
}

type mulCase[T num.Float] struct {
	p, g  *MulParams[T]
	cache MulCache[T]
}

func (m *mulCase[T]) forward(z, mask []T, n int, out []T) error {
	return MulForward(m.p, z, mask, n, out, &m.cache)
}

func (m *mulCase[T]) forwardOn(k backend.Kernels[T], z, mask []T, n int, out []T) error {
	mod, err := NewMul(k, m.p)
	if err != nil {
		return err
	}
	defer mod.Close()
	return runOn(k, z, mask, n, out, mod.Forward)
}

// runOn runs forward, a module's Forward on backend k, on host z and mask,
// writing out.
func runOn[T num.Float](k backend.Kernels[T], z, mask []T, n int, out []T, forward func(z, mask backend.Tensor[T], n int, out backend.Tensor[T]) error) error {
	res, err := backend.Run(k, [][]T{z, mask}, []int{len(out)}, func(in, o []backend.Tensor[T]) error {
		return forward(in[0], in[1], n, o[0])
	})
	if err != nil {
		return err
	}
	copy(out, res[0])
	return nil
}

func (m *mulCase[T]) backward(dout, dz []T) error {
	m.g = m.p.ZerosLike()
	return MulBackward(m.p, &m.cache, dout, dz, m.g)
}

func (m *mulCase[T]) save(s *params.Set, prefix string) error { return m.g.Save(s, prefix) }

type attCase[T num.Float] struct {
	p, g  *AttParams[T]
	cache AttCache[T]
}

func (m *attCase[T]) forward(z, mask []T, n int, out []T) error {
	return AttForward(m.p, z, mask, n, out, &m.cache)
}

func (m *attCase[T]) forwardOn(k backend.Kernels[T], z, mask []T, n int, out []T) error {
	mod, err := NewAtt(k, m.p)
	if err != nil {
		return err
	}
	defer mod.Close()
	return runOn(k, z, mask, n, out, mod.Forward)
}

func (m *attCase[T]) backward(dout, dz []T) error {
	m.g = m.p.ZerosLike()
	return AttBackward(m.p, &m.cache, dout, dz, m.g)
}

func (m *attCase[T]) save(s *params.Set, prefix string) error { return m.g.Save(s, prefix) }

func runCase[T num.Float](cs *params.Set, grad bool, k backend.Kernels[T]) (*params.Set, error) {
	if grad && k != nil {
		return nil, fmt.Errorf("triangle: RunCase on %s: %w", k.Name(), casekit.ErrGradBackend)
	}
	str, err := cs.String("meta")
	if err != nil {
		return nil, fmt.Errorf("triangle: RunCase: %w", err)
	}
	var m caseMeta
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		return nil, fmt.Errorf("triangle: RunCase: meta: %v: %w", err, ErrConfig)
	}
	if m.Config.Eps != nil && *m.Config.Eps != nn.LayerNormEps {
		return nil, fmt.Errorf("triangle: RunCase: layer_norm_eps %v, want %v: %w", *m.Config.Eps, nn.LayerNormEps, ErrConfig)
	}
	if m.Config.Inf != nil && *m.Config.Inf != MaskBias {
		return nil, fmt.Errorf("triangle: RunCase: inf %v, want %v: %w", *m.Config.Inf, MaskBias, ErrConfig)
	}
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	ps := cs.Sub("params/")
	var mod caseModule[T]
	var cz int
	switch m.Case {
	case CaseMulOutgoing, CaseMulIncoming:
		cfg := DefaultMulConfig()
		cfg.Incoming = m.Case == CaseMulIncoming
		set(&cfg.PairChannels, m.Config.CZ)
		set(&cfg.HiddenChannels, m.Config.CHidden)
		p, err := LoadMulParams[T](ps, cfg)
		if err != nil {
			return nil, err
		}
		mod, cz = &mulCase[T]{p: p}, cfg.PairChannels
	case CaseAttStarting, CaseAttEnding:
		cfg := DefaultAttConfig()
		cfg.Ending = m.Case == CaseAttEnding
		set(&cfg.PairChannels, m.Config.CZ)
		set(&cfg.HeadChannels, m.Config.CHidden)
		set(&cfg.Heads, m.Config.Heads)
		p, err := LoadAttParams[T](ps, cfg)
		if err != nil {
			return nil, err
		}
		mod, cz = &attCase[T]{p: p}, cfg.PairChannels
	default:
		return nil, fmt.Errorf("triangle: RunCase: case %q, want one of %s: %w", m.Case, strings.Join(Cases(), ", "), ErrConfig)
	}

	shape, err := cs.Shape("in/z")
	if err != nil {
		return nil, fmt.Errorf("triangle: RunCase: %w", err)
	}
	if len(shape) != 3 || shape[0] != shape[1] {
		return nil, fmt.Errorf("triangle: RunCase: in/z has shape %v, want [N N %d]: %w", shape, cz, num.ErrShape)
	}
	n := shape[0]
	get := func(name string, shape ...int) ([]T, error) {
		x, err := params.Get[T](cs, "in/"+name, shape...)
		if err != nil {
			return nil, fmt.Errorf("triangle: RunCase: %w", err)
		}
		return x, nil
	}
	z, err := get("z", n, n, cz)
	if err != nil {
		return nil, err
	}
	mask, err := get("pair_mask", n, n)
	if err != nil {
		return nil, err
	}
	var cot []T
	in := cs.Sub("in/")
	if grad {
		if cot, err = get("cot_z_update", n, n, cz); err != nil {
			return nil, err
		}
	} else {
		for _, k := range in.Keys() {
			if strings.HasPrefix(k, "cot_") {
				in.MarkUsed(k)
			}
		}
	}
	var unused []string
	for _, k := range cs.Unused() {
		if strings.HasPrefix(k, "params/") || strings.HasPrefix(k, "in/") {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		return nil, fmt.Errorf("triangle: RunCase: keys not used by %s: %s: %w", m.Case, strings.Join(unused, ", "), ErrConfig)
	}

	out := make([]T, n*n*cz)
	if k != nil {
		err = mod.forwardOn(k, z, mask, n, out)
	} else {
		err = mod.forward(z, mask, n, out)
	}
	if err != nil {
		return nil, err
	}
	res := params.New()
	if err := params.Put(res, "out/z_update", []int{n, n, cz}, out); err != nil {
		return nil, err
	}
	if !grad {
		return res, nil
	}
	dz := make([]T, len(z))
	if err := mod.backward(cot, dz); err != nil {
		return nil, err
	}
	if err := params.Put(res, "grad/in/z", []int{n, n, cz}, dz); err != nil {
		return nil, err
	}
	if err := mod.save(res, "grad/params/"); err != nil {
		return nil, err
	}
	return res, nil
}

// MaskBias is the magnitude of the mask bias of the triangle attentions:
// masked keys get MaskBias·(mask − 1) added to their logits, as in AF2
// (its 1e9 for the Evoformer attentions).
const MaskBias = 1e9
