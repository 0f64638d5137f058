package alphafold

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/recycle"
)

// ModelPrefix is the haiku path under which every parameter of a released
// AF2 model sits.
const ModelPrefix = "alphafold/alphafold_iteration/"

// TemplatePrefix is the prefix of the template stack's parameters in the
// released files that have one (model_1 and model_2: template_embedding/…,
// template_single_embedding, template_projection).
const TemplatePrefix = ModelPrefix + "evoformer/template_"

// ErrUnexpectedParams is wrapped by a ParamsError for a parameter file that
// holds arrays the model does not have.
var ErrUnexpectedParams = errors.New("unexpected parameter")

// ParamSpec names one parameter array of a whole model: its full AF2 name
// and shape. Every parameter is float32 in AF2's released files.
type ParamSpec struct {
	Name  string
	Shape []int
}

// ModelParamSpecs returns every parameter of the model cfg describes, with
// cfg.EvoformerBlocks and cfg.ExtraMSABlocks layers in the stacks, under the
// full names of a released parameter file (ModelPrefix + …), sorted by
// name. It is the key set LoadModel requires (besides a template stack).
func ModelParamSpecs(cfg Config) []ParamSpec {
	return ldSpecs(cfg, cfg.EvoformerBlocks, cfg.ExtraMSABlocks)
}

// ldSpecs lists the parameters of cfg with the given stack lengths.
func ldSpecs(cfg Config, evoBlocks, extraBlocks int) []ParamSpec {
	var out []ParamSpec
	add := func(prefix string, lead []int, name string, shape []int) {
		out = append(out, ParamSpec{Name: prefix + name, Shape: append(slices.Clone(lead), shape...)})
	}
	evo := ModelPrefix + "evoformer/"
	for _, t := range (&InputEmbedderParams[float32]{Config: cfg.Embedder}).tensors() {
		add(evo, nil, t.name, t.shape)
	}
	rc := cfg.Recycle
	add(evo, nil, recycle.PrevPosLinearName+"//weights", []int{rc.NumBins, rc.CZ})
	add(evo, nil, recycle.PrevPosLinearName+"//bias", []int{rc.CZ})
	add(evo, nil, recycle.PrevMSAFirstRowNormName+"//scale", []int{rc.CM})
	add(evo, nil, recycle.PrevMSAFirstRowNormName+"//offset", []int{rc.CM})
	add(evo, nil, recycle.PrevPairNormName+"//scale", []int{rc.CZ})
	add(evo, nil, recycle.PrevPairNormName+"//offset", []int{rc.CZ})
	for _, st := range []struct {
		cfg    EvoformerConfig
		name   string
		layers int
	}{{cfg.ExtraMSA, ExtraMSAStackName, extraBlocks}, {cfg.Evoformer, EvoformerStackName, evoBlocks}} {
		for _, t := range (&EvoformerBlockParams[float32]{Config: st.cfg}).tensors() {
			add(evo+st.name+"/", []int{st.layers}, t.name, t.shape)
		}
	}
	cs := cfg.StructureModule.IPA.CS
	add(evo, nil, SingleActivationsName+"//weights", []int{cfg.Embedder.MSAChannels, cs})
	add(evo, nil, SingleActivationsName+"//bias", []int{cs})
	for _, t := range (&StructureModuleParams[float32]{Config: cfg.StructureModule}).tensors() {
		add(ModelPrefix, nil, t.name, t.shape)
	}
	for _, t := range (&HeadsParams[float32]{Config: cfg.Heads}).tensors() {
		add(ModelPrefix, nil, t.name, t.shape)
	}
	slices.SortFunc(out, func(a, b ParamSpec) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ParamsError reports every way a parameter file fails to match the model:
// missing arrays, arrays the model does not have, arrays of the wrong shape
// and arrays of the wrong element type (AF2's files are float32). Its
// message names them; errors.Is matches params.ErrMissing,
// ErrUnexpectedParams, num.ErrShape and params.ErrDType for the kinds
// present.
type ParamsError struct {
	// Missing and Unexpected hold full names; Shape and DType hold one
	// line per array: its name, what it is and what the model wants.
	Missing, Unexpected, Shape, DType []string
	// Hint, when not empty, suggests the likely cause (a _ptm file loaded
	// with a non-ptm configuration, or the other way round).
	Hint string
}

// Error lists the problems, at most ten names of each kind.
func (e *ParamsError) Error() string {
	var b strings.Builder
	b.WriteString("alphafold: parameter file does not match the model")
	list := func(kind string, xs []string) {
		if len(xs) == 0 {
			return
		}
		fmt.Fprintf(&b, "; %d %s: ", len(xs), kind)
		const most = 10
		for i, x := range xs[:min(len(xs), most)] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(x)
		}
		if len(xs) > most {
			fmt.Fprintf(&b, ", … and %d more", len(xs)-most)
		}
	}
	list("missing", e.Missing)
	list("unexpected", e.Unexpected)
	list("with the wrong shape", e.Shape)
	list("with the wrong dtype", e.DType)
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

// Unwrap returns the sentinel errors of the kinds of problem present.
func (e *ParamsError) Unwrap() []error {
	var errs []error
	if len(e.Missing) > 0 {
		errs = append(errs, params.ErrMissing)
	}
	if len(e.Unexpected) > 0 {
		errs = append(errs, ErrUnexpectedParams)
	}
	if len(e.Shape) > 0 {
		errs = append(errs, num.ErrShape)
	}
	if len(e.DType) > 0 {
		errs = append(errs, params.ErrDType)
	}
	return errs
}

// LoadReport describes what LoadModel found in a parameter file.
type LoadReport struct {
	// EvoformerBlocks and ExtraMSABlocks are the stack lengths read from
	// the file's arrays.
	EvoformerBlocks, ExtraMSABlocks int
	// PredictedAlignedError reports a predicted aligned error head.
	PredictedAlignedError bool
	// TemplateKeys lists the template stack's arrays, which were not
	// loaded (foldkit runs without templates).
	TemplateKeys []string
	// Notices are messages for the user, such as the template notice.
	Notices []string
}

// ldStackLength returns the length of the layer axis of the stack under
// prefix in s: the leading dimension most of its arrays share (0 when the
// file has none), so that one mis-shaped array is reported as such rather
// than changing the expected shapes of all the others.
func ldStackLength(s *params.Set, prefix string) int {
	count := map[int]int{}
	for _, k := range s.Keys() {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if shape, err := s.Shape(k); err == nil && len(shape) > 0 {
			count[shape[0]]++
		}
	}
	best, bestN := 0, 0
	for l, c := range count {
		if c > bestN || (c == bestN && l < best) {
			best, bestN = l, c
		}
	}
	return best
}

// CheckModelParams compares the parameter file s (full AF2 names, as
// params.Open reads a released file) with the model cfg describes, with
// the stack lengths read from the file's arrays. It returns the stack
// lengths, the template stack's keys (which are allowed and skipped) and a
// *ParamsError naming every missing, unexpected, mis-shaped or non-float32
// array, or nil when the file matches.
func CheckModelParams(s *params.Set, cfg Config) (evoBlocks, extraBlocks int, templateKeys []string, err error) {
	evo := ModelPrefix + "evoformer/"
	evoBlocks = ldStackLength(s, evo+EvoformerStackName+"/")
	extraBlocks = ldStackLength(s, evo+ExtraMSAStackName+"/")
	// A stack with no arrays at all is reported with the configuration's
	// length in the expected shapes.
	eb, xb := evoBlocks, extraBlocks
	if eb == 0 {
		eb = cfg.EvoformerBlocks
	}
	if xb == 0 {
		xb = cfg.ExtraMSABlocks
	}
	want := map[string][]int{}
	for _, p := range ldSpecs(cfg, eb, xb) {
		want[p.Name] = p.Shape
	}
	pe := &ParamsError{}
	for _, k := range s.Keys() {
		if strings.HasPrefix(k, TemplatePrefix) {
			templateKeys = append(templateKeys, k)
			continue
		}
		shape, ok := want[k]
		if !ok {
			pe.Unexpected = append(pe.Unexpected, k)
			continue
		}
		got, _ := s.Shape(k)
		if !slices.Equal(got, shape) {
			pe.Shape = append(pe.Shape, fmt.Sprintf("%s is %v, want %v", k, got, shape))
		}
		if dt, _ := s.DTypeOf(k); dt != params.Float32 {
			pe.DType = append(pe.DType, fmt.Sprintf("%s is %v, want float32", k, dt))
		}
	}
	for _, p := range ldSpecs(cfg, eb, xb) {
		if !s.Has(p.Name) {
			pe.Missing = append(pe.Missing, p.Name)
		}
	}
	if len(pe.Missing)+len(pe.Unexpected)+len(pe.Shape)+len(pe.DType) == 0 {
		return evoBlocks, extraBlocks, templateKeys, nil
	}
	pae := ModelPrefix + PredictedAlignedErrorHeadName + "/"
	has := func(xs []string) bool {
		return slices.ContainsFunc(xs, func(x string) bool { return strings.HasPrefix(x, pae) })
	}
	switch {
	case has(pe.Unexpected) && !cfg.Heads.PredictedAlignedError:
		pe.Hint = "the file has a predicted aligned error head: load it with a _ptm configuration"
	case has(pe.Missing) && cfg.Heads.PredictedAlignedError:
		pe.Hint = "the file has no predicted aligned error head: load it with a configuration without _ptm"
	}
	return evoBlocks, extraBlocks, templateKeys, pe
}

// LoadModel reads a whole AF2 monomer model from s, which holds a released
// parameter file (params_model_{1..5}[_ptm].npz as params.Open reads it)
// under AF2's own names: alphafold/alphafold_iteration/evoformer/…,
// …/structure_module/…, the heads, with the Evoformer's and the extra-MSA
// stack's layers stacked on a leading axis. The arrays are used as they
// are, without a conversion step; the number of blocks of each stack is
// read from the arrays (48 and 4 in a released file) and replaces cfg's.
// cfg gives the sizes and whether the predicted aligned error head is
// present (the _ptm presets).
//
// The file must match the model exactly: a missing array, an array the
// model does not have, a wrong shape or an element type other than float32
// is refused with a *ParamsError that names every such array. The one
// exception is the template stack of model_1 and model_2 (names starting
// with TemplatePrefix): foldkit runs without templates, so those arrays are
// skipped, listed in the report and announced in its Notices. Non-finite
// values are refused with an error wrapping num.ErrNaN.
func LoadModel[T num.Float](s *params.Set, cfg Config) (*Model[T], *LoadReport, error) {
	if s == nil {
		return nil, nil, fmt.Errorf("alphafold: LoadModel: nil parameter set: %w", ErrConfig)
	}
	evoBlocks, extraBlocks, tkeys, err := CheckModelParams(s, cfg)
	if err != nil {
		return nil, nil, err
	}
	cfg.EvoformerBlocks, cfg.ExtraMSABlocks = evoBlocks, extraBlocks
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	rep := &LoadReport{EvoformerBlocks: evoBlocks, ExtraMSABlocks: extraBlocks,
		PredictedAlignedError: cfg.Heads.PredictedAlignedError, TemplateKeys: tkeys}
	if len(tkeys) > 0 {
		rep.Notices = append(rep.Notices, fmt.Sprintf(
			"the parameter file holds a template stack (%d arrays under %s…): foldkit runs AlphaFold2 without templates, so the model is loaded without its template stack and predicts from features that have no templates",
			len(tkeys), TemplatePrefix))
	}
	all := s.Sub(ModelPrefix)
	evo := all.Sub("evoformer/")
	m := &Model[T]{Config: cfg}
	if m.Embedder, err = LoadInputEmbedderParams[T](evo, cfg.Embedder); err != nil {
		return nil, nil, err
	}
	if m.Recycle, err = recycle.LoadParams[T](evo, cfg.Recycle); err != nil {
		return nil, nil, fmt.Errorf("alphafold: %w", err)
	}
	if m.ExtraMSAStack, err = LoadEvoformerStack[T](evo, cfg.ExtraMSA); err != nil {
		return nil, nil, err
	}
	if m.Evoformer, err = LoadEvoformerStack[T](evo, cfg.Evoformer); err != nil {
		return nil, nil, err
	}
	single := &m.SingleActivations
	if err := evoLoadTensors(evo, evoLinearTensors(single, SingleActivationsName, cfg.Embedder.MSAChannels, cfg.StructureModule.IPA.CS)); err != nil {
		return nil, nil, err
	}
	if m.StructureModule, err = LoadStructureModuleParams[T](all, cfg.StructureModule); err != nil {
		return nil, nil, err
	}
	if m.Heads, err = LoadHeadsParams[T](all, cfg.Heads); err != nil {
		return nil, nil, err
	}
	// Every array but the template stack must have been read; this guards
	// the key table above against a part that reads other names.
	var unused []string
	for _, k := range s.Unused() {
		if !strings.HasPrefix(k, TemplatePrefix) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		return nil, nil, &ParamsError{Unexpected: unused}
	}
	if err := m.check(); err != nil {
		return nil, nil, err
	}
	return m, rep, nil
}

// Load replaces m's parameters with those of the parameter file s, read by
// LoadModel with m.Config (whose block counts it then takes from the
// file), and returns LoadModel's report. On error m is unchanged.
//
//	m := &alphafold.Model[float32]{Config: cfg}
//	rep, err := m.Load(file)
func (m *Model[T]) Load(s *params.Set) (*LoadReport, error) {
	l, rep, err := LoadModel[T](s, m.Config)
	if err != nil {
		return nil, err
	}
	*m = *l
	return rep, nil
}

// LoadModelFile opens the parameter file at path and loads it with
// LoadModel. With an empty cfg.Name and no sizes (the zero Config) the
// preset is taken from the file name (PresetForFile).
func LoadModelFile[T num.Float](path string, cfg Config) (*Model[T], *LoadReport, error) {
	if cfg.Iterations == 0 && cfg.Embedder == (EmbedderConfig{}) {
		name, err := PresetForFile(path)
		if err != nil {
			return nil, nil, err
		}
		if cfg, err = Preset(name); err != nil {
			return nil, nil, err
		}
	}
	s, err := params.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("alphafold: %w", err)
	}
	return LoadModel[T](s, cfg)
}

// PresetForFile returns the preset of a released parameter file from its
// name: "params_model_3_ptm.npz" gives "model_3_ptm". The error wraps
// ErrConfig for a name that is not of that form.
func PresetForFile(path string) (string, error) {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	name := strings.TrimPrefix(base, "params_")
	if !slices.Contains(Presets(), name) {
		return "", fmt.Errorf("alphafold: cannot tell the model preset from the file name %q (want params_model_{1..5}[_ptm].npz): %w", filepath.Base(path), ErrConfig)
	}
	return name, nil
}
