package backend

import "github.com/foldkit/foldkit/internal/num"

// Pair holds one backend for each element type, for code that chooses
// float32 or float64 at run time (a command's -dtype flag, a reference
// case's dtype) and must be handed its backend before it knows which.
// Either field may be nil when that type is not wanted.
type Pair struct {
	F32 Kernels[float32]
	F64 Kernels[float64]
}

// CPUPair returns the CPU backend for both element types.
func CPUPair() Pair { return Pair{F32: CPU[float32](), F64: CPU[float64]()} }

// For returns p's backend for T, or nil when p has none.
func For[T num.Float](p Pair) Kernels[T] {
	var z T
	switch any(z).(type) {
	case float32:
		k, _ := any(p.F32).(Kernels[T])
		return k
	default:
		k, _ := any(p.F64).(Kernels[T])
		return k
	}
}

// Close closes both backends (they may be one device's: closing a backend
// from OnDevice leaves the device open) and returns the first error.
func (p Pair) Close() error {
	var err error
	if p.F32 != nil {
		err = p.F32.Close()
	}
	if p.F64 != nil {
		if e := p.F64.Close(); err == nil {
			err = e
		}
	}
	return err
}
