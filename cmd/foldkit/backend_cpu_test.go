//go:build !foldkit_cuda && !foldkit_cudaemu

package main

// testBackend is the -backend the backend tests use: none in this build.
const testBackend = ""
