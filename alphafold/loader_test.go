package alphafold

import (
	"errors"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// ldClone returns a set sharing s's arrays under the same names.
func ldClone(t *testing.T, s *params.Set) *params.Set {
	t.Helper()
	c := params.New()
	if err := c.Merge("", s); err != nil {
		t.Fatal(err)
	}
	return c
}

// ldWithout returns a set with every array of s except the named one.
func ldWithout(t *testing.T, s *params.Set, name string) *params.Set {
	t.Helper()
	c := params.New()
	for _, k := range s.Keys() {
		if k == name {
			continue
		}
		a, err := s.Array(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PutArray(k, a); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestLoadModelErrors damages a release-style parameter file in each way
// the loader must refuse and checks that the error names the array and
// wraps the matching sentinel, and that an intact file loads.
func TestLoadModelErrors(t *testing.T) {
	cfg := mdlTinyConfig()
	base := mdlRandomSet(t, cfg, 3)
	const (
		evoKey   = ModelPrefix + "evoformer/evoformer_iteration/triangle_multiplication_outgoing/left_projection//weights"
		smKey    = ModelPrefix + "structure_module/fold_iteration/affine_update//bias"
		extraKey = ModelPrefix + "evoformer/extra_msa_stack/outer_product_mean//output_b"
		newKey   = ModelPrefix + "evoformer/unknown_module//weights"
	)
	put := func(s *params.Set, name string, a *params.Array) *params.Set {
		if err := s.PutArray(name, a); err != nil {
			t.Fatal(err)
		}
		return s
	}
	shape := func(name string) []int {
		sh, err := base.Shape(name)
		if err != nil {
			t.Fatal(err)
		}
		return sh
	}
	zeros32 := func(sh ...int) *params.Array {
		n := 1
		for _, d := range sh {
			n *= d
		}
		return &params.Array{Shape: sh, Data: make([]float32, n)}
	}
	sh := shape(evoKey) // [2 8 8]
	f64 := make([]float64, sh[0]*sh[1]*sh[2])
	i64 := make([]int64, 6)
	for _, c := range []struct {
		name     string
		set      *params.Set
		sentinel error
		names    []string
	}{
		{"missing", ldWithout(t, base, smKey), params.ErrMissing, []string{smKey}},
		{"unexpected", put(ldClone(t, base), newKey, zeros32(3, 4)), ErrUnexpectedParams, []string{newKey}},
		{"shape", put(ldClone(t, base), smKey, zeros32(7)), num.ErrShape, []string{smKey, "[7]", "want [6]"}},
		{"layer axis", put(ldClone(t, base), evoKey, zeros32(3, sh[1], sh[2])), num.ErrShape, []string{evoKey, "[3 8 8]", "want [2 8 8]"}},
		{"dtype float64", put(ldClone(t, base), evoKey, &params.Array{Shape: sh, Data: f64}), params.ErrDType, []string{evoKey, "float64", "want float32"}},
		{"dtype int64", put(ldClone(t, base), smKey, &params.Array{Shape: []int{6}, Data: i64}), params.ErrDType, []string{smKey, "int64"}},
		{"two problems", put(ldWithout(t, base, smKey), extraKey, zeros32(5)), params.ErrMissing, []string{smKey, extraKey}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := LoadModel[float32](c.set, cfg)
			if err == nil {
				t.Fatal("damaged file loaded")
			}
			if !errors.Is(err, c.sentinel) {
				t.Errorf("error %v does not wrap %v", err, c.sentinel)
			}
			var pe *ParamsError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ParamsError", err)
			}
			for _, s := range c.names {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not name %q: %v", s, err)
				}
			}
			t.Log(err)
		})
	}
	if _, _, err := LoadModel[float32](base, cfg); err != nil {
		t.Fatalf("intact file: %v", err)
	}
}

// TestLoadModelTemplatesAndPTM checks the two variants of the released
// files: a template stack (model_1, model_2) is skipped with a notice, and
// a predicted aligned error head loads with a _ptm configuration only (the
// error without it says so).
func TestLoadModelTemplatesAndPTM(t *testing.T) {
	cfg := mdlTinyConfig()
	s := ldClone(t, mdlRandomSet(t, cfg, 4))
	tkeys := []string{
		TemplatePrefix + "embedding/single_template_embedding/embedding2d//weights",
		TemplatePrefix + "embedding/single_template_embedding/template_pair_stack/__layer_stack_no_state/triangle_attention_starting_node//feat_2d_weights",
		TemplatePrefix + "single_embedding//weights",
		TemplatePrefix + "projection//weights",
	}
	for _, k := range tkeys {
		if err := params.Put(s, k, []int{2, 3}, make([]float32, 6)); err != nil {
			t.Fatal(err)
		}
	}
	m, rep, err := LoadModel[float64](s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.TemplateKeys) != len(tkeys) || len(rep.Notices) != 1 || !strings.Contains(rep.Notices[0], "without its template stack") {
		t.Errorf("report %+v, want the %d template keys and a notice", rep, len(tkeys))
	}
	if rep.EvoformerBlocks != 2 || rep.ExtraMSABlocks != 1 || len(m.Evoformer.Blocks) != 2 || len(m.ExtraMSAStack.Blocks) != 1 {
		t.Errorf("stack lengths %d, %d, want 2 and 1", rep.EvoformerBlocks, rep.ExtraMSABlocks)
	}

	ptm := cfg
	ptm.Heads.PredictedAlignedError = true
	ps := mdlRandomSet(t, ptm, 5)
	_, _, err = LoadModel[float32](ps, cfg)
	if !errors.Is(err, ErrUnexpectedParams) || !strings.Contains(err.Error(), "_ptm") ||
		!strings.Contains(err.Error(), PredictedAlignedErrorHeadName+"/logits//weights") {
		t.Errorf("a _ptm file with a non-ptm configuration: %v", err)
	}
	_, _, err = LoadModel[float32](mdlRandomSet(t, cfg, 5), ptm)
	if !errors.Is(err, params.ErrMissing) || !strings.Contains(err.Error(), "without _ptm") {
		t.Errorf("a non-ptm file with a _ptm configuration: %v", err)
	}
	pm, rep, err := LoadModel[float64](ps, ptm)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.PredictedAlignedError || pm.Heads.PredictedAlignedError == nil {
		t.Fatal("PAE head not loaded")
	}
	f := mdlFeatures(t, 9, 6, 3, 6)
	res, err := pm.Predict(t.Context(), f, PredictOptions{Iterations: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := f.L
	if len(res.PAE) != n*n || len(res.PAELogits) != n*n*ptm.Heads.PAEBins || !(res.PTM > 0 && res.PTM <= 1) || res.MaxPAE != 31.75 {
		t.Errorf("PAE %d values, logits %d, pTM %v, max PAE %v; want %d, %d, pTM in (0, 1], 31.75",
			len(res.PAE), len(res.PAELogits), res.PTM, res.MaxPAE, n*n, n*n*ptm.Heads.PAEBins)
	}
}

// TestLoadModelRefcaseParams loads the full-model case's parameters (the
// key set of params_model_3.npz with 2 and 1 blocks) through LoadModel as
// a release file, and checks that the stack lengths come from the arrays
// and that Save writes back exactly the same key set.
func TestLoadModelRefcaseParams(t *testing.T) {
	cs := refcase.Open(t, "full_model.npz")
	s := cs.Sub("params/")
	m, rep, err := LoadModel[float32](s, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if rep.EvoformerBlocks != 2 || rep.ExtraMSABlocks != 1 || len(rep.Notices) != 0 {
		t.Errorf("report %+v, want 2 and 1 blocks and no notice", rep)
	}
	out := params.New()
	if err := m.Save(out); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(out.Keys(), "\n"), strings.Join(s.Keys(), "\n"); got != want {
		t.Errorf("Save writes another key set than the case's")
	}
	for _, k := range s.Keys() {
		a, _ := params.Get[float32](s, k)
		b, _ := params.Get[float32](out, k)
		if mdlMaxDiff(t, k, a, b) != 0 {
			t.Errorf("%s differs after Save", k)
		}
	}
	var m2 Model[float64]
	m2.Config = DefaultConfig()
	if rep, err := m2.Load(s); err != nil || len(m2.Evoformer.Blocks) != 2 || rep.ExtraMSABlocks != 1 {
		t.Errorf("Model.Load: %v", err)
	}
	specs := ModelParamSpecs(m.Config)
	if len(specs) != len(s.Keys()) {
		t.Errorf("ModelParamSpecs lists %d arrays, the file has %d", len(specs), len(s.Keys()))
	}
}

// TestPresets checks the released models' configurations.
func TestPresets(t *testing.T) {
	for _, name := range Presets() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		wantT := strings.HasPrefix(name, "model_1") || strings.HasPrefix(name, "model_2")
		wantPTM := strings.HasSuffix(name, "_ptm")
		if c.Templates != wantT || c.Heads.PredictedAlignedError != wantPTM || c.EvoformerBlocks != 48 || c.ExtraMSABlocks != 4 {
			t.Errorf("%s: templates %v, PAE %v, blocks %d/%d", name, c.Templates, c.Heads.PredictedAlignedError, c.EvoformerBlocks, c.ExtraMSABlocks)
		}
		got, err := PresetForFile("/x/params_" + name + ".npz")
		if err != nil || got != name {
			t.Errorf("PresetForFile(params_%s.npz) = %q, %v", name, got, err)
		}
	}
	if _, err := Preset("model_6"); !errors.Is(err, ErrConfig) {
		t.Errorf("model_6: %v", err)
	}
	if _, err := PresetForFile("weights.npz"); !errors.Is(err, ErrConfig) {
		t.Errorf("weights.npz: %v", err)
	}
	// A release file has 93.2 million parameters (48 + 4 blocks, AF2 widths,
	// no templates; the _ptm head adds 128·64 + 64).
	c, _ := Preset("model_3")
	var total int
	for _, p := range ModelParamSpecs(c) {
		k := 1
		for _, d := range p.Shape {
			k *= d
		}
		total += k
	}
	t.Logf("model_3: %d arrays, %d parameters", len(ModelParamSpecs(c)), total)
	if total < 90e6 || total > 95e6 {
		t.Errorf("model_3 has %d parameters, want about 93 million", total)
	}
}

// TestLoadModelStackLengths loads a file with 1 Evoformer and 2 extra-MSA
// blocks (the held-out twin's depths) with a configuration that says 2 and
// 1: the lengths come from the arrays.
func TestLoadModelStackLengths(t *testing.T) {
	cfg := mdlTinyConfig()
	file := cfg
	file.EvoformerBlocks, file.ExtraMSABlocks = 1, 2
	m, rep, err := LoadModel[float64](mdlRandomSet(t, file, 16), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EvoformerBlocks != 1 || rep.ExtraMSABlocks != 2 || len(m.Evoformer.Blocks) != 1 || len(m.ExtraMSAStack.Blocks) != 2 ||
		m.Config.EvoformerBlocks != 1 || m.Config.ExtraMSABlocks != 2 {
		t.Fatalf("loaded %d and %d blocks, report %+v", len(m.Evoformer.Blocks), len(m.ExtraMSAStack.Blocks), rep)
	}
	if _, err := m.Predict(t.Context(), mdlFeatures(t, 7, 5, 2, 17), PredictOptions{Iterations: 2}); err != nil {
		t.Fatal(err)
	}
}
