// Package features builds AlphaFold2's monomer input features from a query
// sequence and an optional A3M alignment (supplement §1.2, Table 1), as AF2's
// data pipeline does: sequence features, MSA de-duplication, the HHblits
// profile, cluster-centre sampling with the rest kept as the extra MSA,
// optional masked-MSA (BERT) corruption for training, nearest-neighbour
// cluster assignment and cluster summaries, and the final msa_feat (49
// channels), target_feat (22 channels) and extra-MSA features.
//
// Random steps (sampling the cluster centres, cropping the extra MSA, the
// masked-MSA corruption) draw from a PCG generator seeded by Config.Seed, so
// a run is deterministic. They are not bit-compatible with TensorFlow's
// random streams in AF2's pipeline, which cannot be reproduced outside it.
//
// Features are float64 (exact for every value the pipeline produces up to
// rounding of the divisions) and row-major: [S, L, C] for MSA features.
package features
