// Package protein reads and writes protein sequences and alignments: FASTA
// records and A3M multiple sequence alignments (with AF2's rules for
// insertions and deletion counts).
//
// It depends only on the standard library and is useful without the model:
// a researcher can parse an alignment without loading any compute package.
package protein
