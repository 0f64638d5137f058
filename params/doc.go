// Package params holds named parameter sets: arrays keyed by AlphaFold2's
// haiku module paths, read from and written to NumPy .npz archives.
//
// DeepMind's released parameter files (params_model_1.npz …) key every array
// by its haiku path, for example
//
//	alphafold/alphafold_iteration/evoformer/evoformer_iteration/triangle_multiplication_outgoing/left_projection//weights
//
// A Set holds such arrays unchanged (float32, float64 or integer data with
// its shape, row-major). Sub narrows a set to the keys under a prefix, so a
// module loads its own parameters by the names relative to it; Layer takes
// layer k of a stacked layer axis (the Evoformer's 48 blocks are stored with a
// leading axis of length 48). Get checks the shape it expects and converts
// float32 to float64 (exactly) or float64 to float32 (rounding); its errors
// name the key, the expected and the actual shape, and for a missing key the
// nearest keys present. Unused lists the keys never read, so a loader can
// refuse a file that does not match the model.
//
// Arrays stored in Fortran (column-major) order are transposed to row-major
// when read. The same format serves the reference cases of foldkit's tests and
// the `foldkit run-module` interchange command (keys `in/…`, `out/…`, `grad/…`
// and a JSON `meta` string).
//
// The package reads and writes npz through codeberg.org/sbinet/npyio.
package params
