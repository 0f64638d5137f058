// Package backend is the seam between foldkit's modules and the hardware
// they run on: an interface, Kernels[T], with the kernels every module is
// built from (matrix products, layer norm, softmax, activations and
// gating, the streamed attention core, rigid-frame operations, each with
// its backward pass; transposes and row scalings) and the memory they work
// on (Tensor[T]).
//
// Two implementations exist. CPU (always built) wraps the CPU kernels of
// packages gemm, nn, attn and rigid; its tensors are Host slices, so CPU
// code loses nothing by going through it. CUDA (built with the foldkit_cuda
// tag, see package cuda) runs the same kernels on a GPU; its tensors live
// in device memory and stay there between calls, so a chain of modules
// copies to the host only when asked (ToHost).
//
// The caller chooses the backend when it builds a module or a model:
//
//	k := backend.CPU[float32]()               // default build
//	k, err := backend.CUDA[float32](0, opts)  // -tags foldkit_cuda
//
// The modules take the backend in their constructors (triangle.NewAtt,
// msaattn.NewRow, ipa.NewIPA, alphafold.NewEvoformerBlock, ...) and keep
// their parameters on it; on the CPU backend they run their CPU code on the
// tensors' slices, on any other they compose these kernels. Modules that
// train on a backend record their activations with ForwardTape and
// differentiate them with Backward. Code that picks float32 or float64 at
// run time passes a Pair (CPUPair, or CUDAPair). Arena, HostSlices, Fill
// and Run are the small helpers such module code shares.
//
// There is no default backend, no global state and no init-time side
// effect. In foldkit_cuda builds, OnDevice puts backends for float32 and
// float64 on one open cuda.Device, DeviceBuffer returns a tensor's device
// buffer and Device a backend's device.
//
// # Semantics and tolerances
//
// Each kernel has the semantics of the CPU kernel it names (nn.Linear,
// attn.Forward, rigid.ComposeQUpdate, ...), including layouts, the handling
// of masked rows and the accumulation of gradients. The CUDA backend
// differs only by round-off, from summing in another order; package
// conformance holds the one suite of tests that every implementation
// passes, with the tolerances it guarantees:
//
//   - Transpose: exact (it moves data); ScaleRows and DivRows round as the
//     CPU does;
//   - elementwise kernels: float32 5e-7, float64 5e-15, and rigid-frame
//     operations: float32 1e-6, float64 1e-14, relative to max(1, |value|)
//     (a few ulp);
//   - row kernels (layer norm, softmax) and column sums: float32 2e-5,
//     float64 1e-12;
//   - attention: float32 5e-5, float64 1e-11;
//   - matrix products: 2e-5 (float32) and 4e-14 (float64) of Σ|a|·|b|;
//     with TF32 or BF16 arithmetic 2e-3 and 1.6e-2, the input rounding of
//     those formats.
//
// The suite runs on the CPU backend in every build, on a GPU with
// -tags foldkit_cuda, and on the CUDA backend's Go code over a CPU
// emulation of the kernels with -tags foldkit_cudaemu (see package cuda).
//
// # Checks
//
// Every kernel checks the lengths of its tensors against the dimensions
// and returns errors wrapping num.ErrShape rather than panicking; a tensor
// of another backend gives ErrForeign. Attention also checks its inputs'
// values (num.ErrNaN), as attn does; on CUDA this costs one small
// device-to-host copy per call and can be turned off (CUDAOptions).
package backend
