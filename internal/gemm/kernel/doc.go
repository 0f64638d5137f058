// Package kernel holds the assembly micro-kernels behind gemm.Tile. It is
// a package of its own because Go assembly cannot sit in a package that
// uses cgo, as package gemm does in its openblas build.
package kernel
