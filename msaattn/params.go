package msaattn

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// Tensor describes one parameter array of a module: its AF2 name relative
// to the module's parent (as the ParamNames functions give it, for example
// "msa_row_attention_with_pair_bias/query_norm//scale"), its shape in AF2's
// layout, and the field of a Params struct that holds its values, row-major.
//
// The Tensors methods list a module's arrays in ParamNames order. A model
// built from these modules (the Evoformer blocks) walks them to save, check,
// allocate and accumulate the modules' parameters and gradients without
// writing their names down a second time.
type Tensor[T num.Float] struct {
	Name  string
	Shape []int
	Data  *[]T
}

// tensorsOf converts a module's listing to Tensors named relative to the
// module's parent.
func tensorsOf[T num.Float](prefix string, ts []param[T]) []Tensor[T] {
	out := make([]Tensor[T], len(ts))
	for i, t := range ts {
		out[i] = Tensor[T]{Name: prefix + t.name, Shape: t.shape, Data: t.data}
	}
	return out
}

// Tensors lists p's arrays, in RowParamNames order, with their shapes for
// cfg and pointers to p's fields; it sets the sizes recorded in p's layer
// norms and gated attention from cfg. Arrays still nil (a new(RowParams))
// can be allocated through the pointers.
func (p *RowParams[T]) Tensors(cfg RowConfig) []Tensor[T] {
	return tensorsOf(RowPrefix, p.tensors(cfg))
}

// Tensors lists p's arrays, in ColumnParamNames order (see
// RowParams.Tensors).
func (p *ColumnParams[T]) Tensors(cfg ColumnConfig) []Tensor[T] {
	return tensorsOf(ColumnPrefix, p.tensors(cfg))
}

// Tensors lists p's arrays, in GlobalColumnParamNames order (see
// RowParams.Tensors).
func (p *GlobalColumnParams[T]) Tensors(cfg GlobalColumnConfig) []Tensor[T] {
	return tensorsOf(GlobalColumnPrefix, p.tensors(cfg))
}

// config returns the sizes recorded in p's layer norms and gated attention
// (set by NewRowParams, LoadRowParams and Backward).
func (p *RowParams[T]) config() RowConfig {
	return RowConfig{
		MSAChannels:  p.QueryNorm.C,
		PairChannels: p.FeatTwoDNorm.C,
		Heads:        p.Attention.Heads,
		HeadChannels: p.Attention.C,
	}
}

// config returns the sizes recorded in p's layer norm and gated attention.
func (p *ColumnParams[T]) config() ColumnConfig {
	return ColumnConfig{MSAChannels: p.QueryNorm.C, Heads: p.Attention.Heads, HeadChannels: p.Attention.C}
}

// config returns the sizes of p: c_e from its layer norm, c from key_w
// [c_e, c] and H from gating_b [H, c]. Sizes that the lengths do not give
// are 0 (an invalid configuration).
func (p *GlobalColumnParams[T]) config() GlobalColumnConfig {
	cfg := GlobalColumnConfig{MSAChannels: p.QueryNorm.C}
	if cfg.MSAChannels > 0 {
		cfg.HeadChannels = len(p.KeyW) / cfg.MSAChannels
	}
	if cfg.HeadChannels > 0 {
		cfg.Heads = len(p.GatingB) / cfg.HeadChannels
	}
	return cfg
}

// Save stores copies of p's arrays in s under their AF2 names relative to
// the parent of msa_row_attention_with_pair_bias/ (the RowParamNames), with
// prefix prepended, so that LoadRowParams(s.Sub(prefix+RowPrefix), cfg)
// reads p back. The sizes are those recorded in p (as NewRowParams and
// LoadRowParams set them). The error wraps num.ErrShape or num.ErrNaN if an
// array does not match them or holds a non-finite value.
func (p *RowParams[T]) Save(s *params.Set, prefix string) error {
	cfg := p.config()
	if err := cfg.Validate(); err != nil {
		return err
	}
	q := *p // list a copy: the sizes Tensors would set are p's own
	return saveTensors(s, "row attention", prefix+RowPrefix, q.tensors(cfg))
}

// Save stores copies of p's arrays in s under their AF2 names relative to
// the parent of msa_column_attention/, with prefix prepended (see
// RowParams.Save).
func (p *ColumnParams[T]) Save(s *params.Set, prefix string) error {
	cfg := p.config()
	if err := cfg.Validate(); err != nil {
		return err
	}
	q := *p
	return saveTensors(s, "column attention", prefix+ColumnPrefix, q.tensors(cfg))
}

// Save stores copies of p's arrays in s under their AF2 names relative to
// the parent of msa_column_global_attention/, with prefix prepended (see
// RowParams.Save).
func (p *GlobalColumnParams[T]) Save(s *params.Set, prefix string) error {
	cfg := p.config()
	if err := cfg.Validate(); err != nil {
		return err
	}
	q := *p
	return saveTensors(s, "global column attention", prefix+GlobalColumnPrefix, q.tensors(cfg))
}

// saveTensors checks the tensors of ts and stores copies of them in s under
// prefix + their names.
func saveTensors[T num.Float](s *params.Set, module, prefix string, ts []param[T]) error {
	if err := checkTensors(module, prefix, ts); err != nil {
		return err
	}
	for _, t := range ts {
		if err := params.Put(s, prefix+t.name, t.shape, *t.data); err != nil {
			return fmt.Errorf("msaattn: %w", err)
		}
	}
	return nil
}

// ZerosLike returns parameters of p's sizes filled with zeros, the starting
// point of a gradient accumulated over several Backward calls.
func (p *RowParams[T]) ZerosLike() *RowParams[T] {
	g := new(RowParams[T])
	allocTensors(g.tensors(p.config()))
	return g
}

// ZerosLike returns parameters of p's sizes filled with zeros.
func (p *ColumnParams[T]) ZerosLike() *ColumnParams[T] {
	g := new(ColumnParams[T])
	allocTensors(g.tensors(p.config()))
	return g
}

// ZerosLike returns parameters of p's sizes filled with zeros.
func (p *GlobalColumnParams[T]) ZerosLike() *GlobalColumnParams[T] {
	g := new(GlobalColumnParams[T])
	allocTensors(g.tensors(p.config()))
	return g
}
