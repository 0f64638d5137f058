//go:build foldkit_cuda && !foldkit_cudaemu

package cuda

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"

	"gorgonia.org/cu"
)

// ptxFS holds the PTX that go generate makes from kernels/*.cu (see
// generate.go); it is committed, so building never needs nvcc.
//
//go:embed kernels/*.ptx
var ptxFS embed.FS

// loadModules loads every embedded PTX module (the driver JIT-compiles it
// for this GPU) and looks up each kernel it defines. The context is current.
func (d *Device) loadModules() error {
	names, err := fs.Glob(ptxFS, "kernels/*.ptx")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		src, err := ptxFS.ReadFile(name)
		if err != nil {
			return err
		}
		mod, err := cu.LoadData(string(src))
		if err != nil {
			return callErr(fmt.Sprintf("cuModuleLoadData(%s)", name), err)
		}
		d.drv.mods = append(d.drv.mods, mod)
		for _, k := range ptxEntries(src) {
			fn, err := mod.Function(k)
			if err != nil {
				return callErr(fmt.Sprintf("cuModuleGetFunction(%s in %s)", k, name), err)
			}
			d.drv.fns[k] = fn
		}
	}
	return nil
}

// Kernels returns the names of the loaded kernels, sorted.
func (d *Device) Kernels() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	ks := make([]string, 0, len(d.drv.fns))
	for k := range d.drv.fns {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
