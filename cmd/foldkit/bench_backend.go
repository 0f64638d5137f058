package main

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/ipa"
	"github.com/foldkit/foldkit/msaattn"
	"github.com/foldkit/foldkit/triangle"
)

// backendBenchModules lists the modules `foldkit bench -backend cuda`
// times: those with a backend path.
func backendBenchModules() []string {
	return []string{"tri_att_starting", "tri_att_ending", "tri_mul_outgoing", "tri_mul_incoming",
		"msa_row_attention", "msa_column_attention", "msa_column_global_attention",
		"ipa", "evoformer_block", "extra_msa_block", "model_reduced", "model_full"}
}

// backendBench builds module on the backend of k for dtype, with AF2's
// default configuration, AF2's initialisers and standard normal inputs
// (every mask 1), resident on the backend, and returns a run that calls
// its Forward and waits for the backend (Sync), the FLOP count of the CPU
// bench of the same module and sizes (the same convention), and a function
// that frees everything. s = 0 takes 128 sequences (1024 for the global
// column attention and the extra-MSA block). model_reduced and model_full
// time one Predict pass with PredictOptions.Backend (the two stacks on the
// backend, everything else on the CPU).
func backendBench(k backend.Pair, module string, n, s int, dtype string) (run func() error, flops float64, done func(), err error) {
	known := false
	for _, m := range backendBenchModules() {
		known = known || m == module
	}
	if !known {
		return nil, 0, nil, fmt.Errorf("module %q has no backend path to time (those with one: %v)", module, backendBenchModules())
	}
	if s == 0 {
		s = 128
		if module == "msa_column_global_attention" || module == "extra_msa_block" {
			s = 1024
		}
	}
	if config, ok := strings.CutPrefix(module, "model_"); ok {
		// One Predict pass with its two stacks on the backend (s·4 extra
		// sequences, as the CPU model bench).
		run, flops, err := alphafold.NewModelBenchOptions(config, n, s, 4*s, dtype, alphafold.PredictOptions{Backend: k})
		return run, flops, func() {}, err
	}
	f, ok := benchModules()[module]
	if !ok {
		return nil, 0, nil, fmt.Errorf("module %q has no FLOP count", module)
	}
	if _, flops, err = f(n, s, dtype, false); err != nil {
		return nil, 0, nil, err
	}
	switch dtype {
	case "float32":
		run, done, err = backendBenchT(backend.For[float32](k), module, n, s)
	case "float64":
		run, done, err = backendBenchT(backend.For[float64](k), module, n, s)
	default:
		err = fmt.Errorf("-dtype %q: want float32 or float64", dtype)
	}
	return run, flops, done, err
}

func backendBenchT[T float32 | float64](k backend.Kernels[T], module string, n, s int) (func() error, func(), error) {
	if k == nil {
		return nil, nil, fmt.Errorf("no backend for this dtype")
	}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(s)))
	a := backend.NewArena(k)
	normal := func(m int) backend.Tensor[T] {
		x := make([]T, m)
		for i := range x {
			x[i] = T(rng.NormFloat64())
		}
		return a.FromHost(x)
	}
	ones := func(m int) backend.Tensor[T] {
		x := make([]T, m)
		for i := range x {
			x[i] = 1
		}
		return a.FromHost(x)
	}
	var fwd func() error
	var closer interface{ Close() }
	err := func() error {
		switch module {
		case "tri_att_starting", "tri_att_ending":
			cfg := triangle.DefaultAttConfig()
			cfg.Ending = module == "tri_att_ending"
			p, err := triangle.NewAttParams[T](cfg, rng)
			if err != nil {
				return err
			}
			m, err := triangle.NewAtt(k, p)
			if err != nil {
				return err
			}
			closer = m
			cz := cfg.PairChannels
			z, mask, out := normal(n*n*cz), ones(n*n), a.Alloc(n*n*cz)
			fwd = func() error { return m.Forward(z, mask, n, out) }
		case "tri_mul_outgoing", "tri_mul_incoming":
			cfg := triangle.DefaultMulConfig()
			cfg.Incoming = module == "tri_mul_incoming"
			p, err := triangle.NewMulParams[T](cfg, rng)
			if err != nil {
				return err
			}
			m, err := triangle.NewMul(k, p)
			if err != nil {
				return err
			}
			closer = m
			cz := cfg.PairChannels
			z, mask, out := normal(n*n*cz), ones(n*n), a.Alloc(n*n*cz)
			fwd = func() error { return m.Forward(z, mask, n, out) }
		case "msa_row_attention":
			cfg := msaattn.DefaultRowConfig()
			p, err := msaattn.NewRowParams[T](cfg, rng)
			if err != nil {
				return err
			}
			m, err := msaattn.NewRow(k, &msaattn.RowAttention[T]{Config: cfg, Params: p})
			if err != nil {
				return err
			}
			closer = m
			msa, z, mask, out := normal(s*n*cfg.MSAChannels), normal(n*n*cfg.PairChannels), ones(s*n), a.Alloc(s*n*cfg.MSAChannels)
			fwd = func() error { return m.Forward(msa, z, mask, s, n, out) }
		case "msa_column_attention":
			cfg := msaattn.DefaultColumnConfig()
			p, err := msaattn.NewColumnParams[T](cfg, rng)
			if err != nil {
				return err
			}
			m, err := msaattn.NewColumn(k, &msaattn.ColumnAttention[T]{Config: cfg, Params: p})
			if err != nil {
				return err
			}
			closer = m
			msa, mask, out := normal(s*n*cfg.MSAChannels), ones(s*n), a.Alloc(s*n*cfg.MSAChannels)
			fwd = func() error { return m.Forward(msa, mask, s, n, out) }
		case "msa_column_global_attention":
			cfg := msaattn.DefaultGlobalColumnConfig()
			p, err := msaattn.NewGlobalColumnParams[T](cfg, rng)
			if err != nil {
				return err
			}
			m, err := msaattn.NewGlobalColumn(k, &msaattn.GlobalColumnAttention[T]{Config: cfg, Params: p})
			if err != nil {
				return err
			}
			closer = m
			msa, mask, out := normal(s*n*cfg.MSAChannels), ones(s*n), a.Alloc(s*n*cfg.MSAChannels)
			fwd = func() error { return m.Forward(msa, mask, s, n, out) }
		case "ipa":
			cfg := ipa.DefaultConfig()
			p, err := ipa.NewParams[T](cfg, rng)
			if err != nil {
				return err
			}
			m, err := ipa.NewIPA(k, p)
			if err != nil {
				return err
			}
			closer = m
			sv, z, mask, out := normal(n*cfg.CS), normal(n*n*cfg.CZ), ones(n), a.Alloc(n*cfg.CS)
			frames := a.FromHost(backend.FrameData(randomFrames[T](rng, n)))
			fwd = func() error { return m.Forward(sv, z, frames, mask, n, out) }
		case "evoformer_block", "extra_msa_block":
			cfg := alphafold.DefaultEvoformerConfig()
			if module == "extra_msa_block" {
				cfg = alphafold.DefaultExtraMSAConfig()
			}
			p, err := alphafold.NewEvoformerBlockParams[T](cfg, rng)
			if err != nil {
				return err
			}
			m, err := alphafold.NewEvoformerBlock(k, p)
			if err != nil {
				return err
			}
			closer = m
			msa, pair := normal(s*n*cfg.MSAChannels), normal(n*n*cfg.PairChannels)
			msaMask, pairMask := ones(s*n), ones(n*n)
			fwd = func() error { return m.Forward(msa, pair, msaMask, pairMask, s, n) }
		}
		return a.Err()
	}()
	done := func() {
		if closer != nil {
			closer.Close()
		}
		a.Free()
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	run := func() error {
		if err := fwd(); err != nil {
			return err
		}
		return k.Sync()
	}
	return run, done, nil
}
