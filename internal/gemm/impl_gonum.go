//go:build !openblas

package gemm

import "gonum.org/v1/gonum/blas/gonum"

const implName = "gonum"

// impl32 and impl64 are the pure-Go BLAS; they hold no state.
var (
	impl32 gonum.Implementation
	impl64 gonum.Implementation
)
