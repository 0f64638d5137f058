// Package gemm is the one place where foldkit chooses its BLAS.
//
// Every matrix product in foldkit goes through Gemm (or GemmBatched), which
// calls gonum's blas.Float32Level3 / blas.Float64Level3 interface on the
// implementation chosen at build time:
//
//   - default build: gonum's pure-Go implementation (gonum.org/v1/gonum/blas/gonum),
//     no system library needed (about 19 GFLOP/s sgemm on 2 AVX-512 cores);
//   - -tags openblas: OpenBLAS through cgo (gonum.org/v1/netlib/blas/netlib),
//     which needs Debian's libopenblas-dev (`apt-get install libopenblas-dev`)
//     and is about 17× faster (≈ 330 GFLOP/s at 1024³ on the same machine).
//
// To turn the fast path on:
//
//	apt-get install -y libopenblas-dev
//	go test -tags openblas ./...
//	go run -tags openblas ./cmd/foldkit bench -module sgemm -n 1024
//
// The choice is fixed for the binary (Name reports it); nothing is chosen at
// run time or by global state. Matrices are row-major, as in gonum's blas
// interfaces.
package gemm
