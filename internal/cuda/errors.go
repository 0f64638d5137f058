package cuda

import (
	"errors"
	"fmt"
)

// Error is a failed call into the CUDA driver, cuBLAS or a kernel launch.
// Its message names the call and why it failed, for example
//
//	cuda: cuMemAlloc(1073741824 bytes): out of memory
//	cuda: cublasSgemmStridedBatched(m=4 n=4 k=4 batch=1): CUBLAS_STATUS_INVALID_VALUE (7)
//	cuda: cuStreamSynchronize (after fk_attn_fwd_f32_d32): an illegal memory access was encountered
type Error struct {
	Call string // the call, with its salient arguments
	Err  error  // the driver's CUresult, a BLASStatus, or another cause
}

func (e *Error) Error() string { return "cuda: " + e.Call + ": " + e.Err.Error() }

// Unwrap returns the cause, so that errors.Is can test for a CUresult such
// as gorgonia.org/cu's OutOfMemory.
func (e *Error) Unwrap() error { return e.Err }

// callErr wraps err, if not nil, in an *Error naming call.
func callErr(call string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Call: call, Err: err}
}

// ErrClosed is returned by calls on a Device after Close.
var ErrClosed = errors.New("cuda: device is closed")

// ErrNoCUBLAS is wrapped by Open's error when no cuBLAS library can be
// loaded.
var ErrNoCUBLAS = errors.New("no cuBLAS library found")

// BLASStatus is a cublasStatus_t other than CUBLAS_STATUS_SUCCESS.
type BLASStatus int

// blasStatusNames are the names of the statuses in cublas_api.h (the same in
// CUDA 11, 12 and 13).
var blasStatusNames = map[BLASStatus]string{
	0:  "CUBLAS_STATUS_SUCCESS",
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func (s BLASStatus) Error() string {
	if n, ok := blasStatusNames[s]; ok {
		return fmt.Sprintf("%s (%d)", n, int(s))
	}
	return fmt.Sprintf("cublasStatus %d", int(s))
}

// blasErr returns nil for status 0 (success) and the BLASStatus otherwise.
func blasErr(status int) error {
	if status == 0 {
		return nil
	}
	return BLASStatus(status)
}
