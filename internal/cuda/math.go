package cuda

import (
	"errors"
	"fmt"
)

// Math selects the arithmetic of float32 matrix products.
type Math int

const (
	// MathFP32 multiplies in float32 (CUDA cores), as the CPU does.
	MathFP32 Math = iota
	// MathTF32 rounds the inputs to TF32 (10-bit mantissa, relative
	// rounding error 2⁻¹¹) and multiplies on tensor cores, accumulating in
	// float32.
	MathTF32
	// MathBF16 rounds the inputs to bfloat16 (7-bit mantissa, relative
	// rounding error 2⁻⁸) and multiplies on tensor cores, accumulating in
	// float32; inputs and outputs stay float32 in memory.
	MathBF16
)

// String returns "fp32", "tf32" or "bf16".
func (m Math) String() string {
	switch m {
	case MathFP32:
		return "fp32"
	case MathTF32:
		return "tf32"
	case MathBF16:
		return "bf16"
	}
	return fmt.Sprintf("Math(%d)", int(m))
}

// errGemmDims is returned when a dimension exceeds cuBLAS's int32 range.
var errGemmDims = errors.New("a dimension or leading dimension exceeds 2³¹−1")
