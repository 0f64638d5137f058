// Package gemmitest finds a Python with gemmi, the structure parser that
// foldkit's tests use to read written PDB and mmCIF files back.
package gemmitest

import (
	"os/exec"
	"testing"
)

// Python returns a python3 that imports gemmi (Debian's python3-gemmi,
// which .ci/run installs), skipping the test without one.
func Python(t testing.TB) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import gemmi").Run() == nil {
			return path
		}
	}
	t.Skip("no python3 with gemmi found: install Debian's python3-gemmi to check written files with a real parser")
	return ""
}
