// Package nn holds the elementwise and row kernels that every foldkit module
// is built from: the linear layer, layer normalisation, the row softmax, the
// sigmoid and ReLU activations and the elementwise (gating) product, each with
// its backward pass, together with AF2's parameter structs, loaders and
// initialisers for the linear and layer-norm layers.
//
// # Layouts
//
// Every tensor is a plain row-major slice with explicit dimensions, as in
// gonum's BLAS. A "row" is the last (contiguous) axis: LayerNorm normalises
// over it, SoftmaxRows normalises over it, and Linear maps it from in to out
// channels. A tensor [N, N, c] is therefore passed as rows = N·N, c.
//
// Linear weights are stored in AF2's layout [in, out] and applied as
// y = x·W + b (AF2 supplement §1.11.4 and haiku's Linear in AF2's code).
// LayerNorm uses AF2's form: the biased variance and eps = 1e-5 inside the
// square root (haiku's LayerNorm).
//
// # Backward passes
//
// Every Backward function accumulates (+=) into its gradient outputs, so the
// gradients of a tensor used in several places can be summed without extra
// buffers; a nil gradient output is skipped. Callers zero the gradients they
// start from.
//
// # Checking
//
// These are internal kernels, called in inner loops with shapes that the
// calling module has already validated and turned into errors. Like BLAS,
// they do not return errors: a slice whose length does not match the given
// dimensions makes them panic with an error that wraps num.ErrShape and names
// the function and argument. They do not look for NaN or infinities; they
// propagate them (except that SoftmaxRows gives a uniform row where every
// entry is −Inf, as it does for rows masked with −1e9). Matrix products go
// through package gemm, so the BLAS choice stays in one place.
//
// # Concurrency
//
// The row and elementwise kernels split their work across two goroutines
// when a call touches more than about 1e5 elements (the machines foldkit is
// tuned for have two cores); smaller calls run on the calling goroutine. No
// goroutine outlives the call, and the package has no global state, so
// concurrent calls on disjoint outputs are safe.
package nn
