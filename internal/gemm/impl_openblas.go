//go:build openblas

package gemm

// #cgo LDFLAGS: -lopenblas
import "C"

import "gonum.org/v1/netlib/blas/netlib"

const implName = "openblas"

// impl32 and impl64 call OpenBLAS's cblas through cgo; they hold no state.
var (
	impl32 netlib.Implementation
	impl64 netlib.Implementation
)
