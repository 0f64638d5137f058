// Package graphop makes a foldkit module a node of a gorgonia expression
// graph whose gradient is the module's own backward pass.
//
// A Module describes the computation: its inputs (rank, and whether a
// gradient flows to each), how its output shapes follow from its input
// shapes, a Forward function and a Backward function on plain row-major
// slices. Apply adds it to a graph as one op and returns one node per
// output. The op's symbolic gradient (gorgonia's SDOp) is one node of a
// second op that runs Backward once and returns the gradients of every
// differentiable input concatenated into one vector, and one small node per
// input that reads its part; so gorgonia.Grad works through the module and
// gorgonia's solvers train its parameter nodes. Gorgonia ops hold no state
// between calls, so a Backward that needs Forward's intermediate values
// runs Forward again with a cache.
//
// A module with several outputs is one op with a flat output (the outputs
// concatenated in order) and one node per output reading its part; the
// gradient of each part scatters back into a zero vector, so the outputs
// can feed separate consumers and gorgonia sums their gradients before the
// module's Backward runs.
//
// ParamNodes and Bind move a module's parameter arrays, listed as Params
// under their AF2 names, into graph nodes and back out of the op's values.
// StopGradient is AF2's stop_gradient as a graph node.
//
// Values are dense tensors of float32 or float64; a module is written once,
// generic over the element type, and ApplyFloat picks the instance that
// matches the input nodes.
package graphop
