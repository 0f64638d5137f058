package params

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"unsafe"

	"codeberg.org/sbinet/npyio/npz"
)

// Open reads the .npz archive at path into a new Set.
func Open(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	s, err := Read(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return s, nil
}

// parseDescr returns the byte size of one element of an npy descr such as
// "<f4" or "<U12", and the DType it is read as.
func parseDescr(descr string) (DType, int, error) {
	descr = strings.Trim(descr, "'\"")
	if len(descr) < 3 {
		return 0, 0, fmt.Errorf("unknown dtype %q", descr)
	}
	kind, size := descr[1:2], 0
	if _, err := fmt.Sscanf(descr[2:], "%d", &size); err != nil {
		return 0, 0, fmt.Errorf("unknown dtype %q", descr)
	}
	switch {
	case kind == "f" && size == 4:
		return Float32, 4, nil
	case kind == "f" && size == 8:
		return Float64, 8, nil
	case kind == "i" && size == 8:
		return Int64, 8, nil
	case kind == "i" && size == 4:
		return Int32, 4, nil
	case kind == "b" && size == 1:
		return Bool, 1, nil
	case kind == "U":
		return String, 4 * size, nil
	}
	return 0, 0, fmt.Errorf("unsupported dtype %q (want float32, float64, int32, int64, bool or unicode)", descr)
}

// Read reads an .npz archive of size bytes from r into a new Set. Every
// array's header is checked against the size stored in the archive before
// any data is allocated, so a truncated or corrupt file gives an error
// wrapping ErrFormat, never a panic or a huge allocation.
func Read(r io.ReaderAt, size int64) (s *Set, err error) {
	defer func() {
		// npyio is not hardened against every corrupt input; a panic
		// inside it means a malformed file, never a bug of the caller.
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("params: reading npz: %v: %w", p, ErrFormat)
		}
	}()
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("params: not an npz archive: %v: %w", err, ErrFormat)
	}
	sizes := map[string]uint64{}
	for _, f := range zr.File {
		sizes[f.Name] = f.UncompressedSize64
	}
	nr, err := npz.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("params: not an npz archive: %v: %w", err, ErrFormat)
	}
	s = New()
	for _, key := range nr.Keys() {
		name := strings.TrimSuffix(key, ".npy")
		h := nr.Header(key)
		if h == nil {
			return nil, fmt.Errorf("params: %q: unreadable npy header: %w", name, ErrFormat)
		}
		dt, item, err := parseDescr(h.Descr.Type)
		if err != nil {
			return nil, fmt.Errorf("params: %q: %v: %w", name, err, ErrDType)
		}
		shape := append([]int{}, h.Descr.Shape...)
		n := 1
		for _, d := range shape {
			if d < 0 || (d > 0 && n > (1<<40)/d) {
				return nil, fmt.Errorf("params: %q: bad shape %v: %w", name, shape, ErrFormat)
			}
			n *= d
		}
		if need := uint64(n) * uint64(item); need > sizes[key] {
			return nil, fmt.Errorf("params: %q: header says %v %s (%d bytes) but the entry holds %d bytes (truncated?): %w",
				name, shape, dt, need, sizes[key], ErrFormat)
		}
		a, err := readArray(nr, key, dt, shape, n)
		if err != nil {
			return nil, fmt.Errorf("params: %q: %v: %w", name, err, ErrFormat)
		}
		if h.Descr.Fortran && len(shape) > 1 {
			a.Data = fromFortran(a.Data, shape)
		}
		s.entries[name] = entry{full: name, arr: a}
	}
	return s, nil
}

func readArray(nr *npz.Reader, key string, dt DType, shape []int, n int) (*Array, error) {
	a := &Array{Shape: shape}
	switch dt {
	case Float32:
		x := make([]float32, 0, n)
		if err := nr.Read(key, &x); err != nil {
			return nil, err
		}
		a.Data = x
	case Float64:
		x := make([]float64, 0, n)
		if err := nr.Read(key, &x); err != nil {
			return nil, err
		}
		a.Data = x
	case Int64:
		x := make([]int64, 0, n)
		if err := nr.Read(key, &x); err != nil {
			return nil, err
		}
		a.Data = x
	case Int32:
		x := make([]int32, 0, n)
		if err := nr.Read(key, &x); err != nil {
			return nil, err
		}
		a.Data = x
	case Bool:
		x := make([]bool, 0, n)
		if err := nr.Read(key, &x); err != nil {
			return nil, err
		}
		a.Data = x
	case String:
		if len(shape) == 0 {
			var x string
			if err := nr.Read(key, &x); err != nil {
				return nil, err
			}
			a.Data = []string{x}
		} else {
			var x []string
			if err := nr.Read(key, &x); err != nil {
				return nil, err
			}
			a.Data = x
		}
	}
	if got := reflect.ValueOf(a.Data).Len(); got != n {
		return nil, fmt.Errorf("read %d elements, header says %d", got, n)
	}
	return a, nil
}

// fromFortran returns the row-major copy of column-major data of the given shape.
func fromFortran(data any, shape []int) any {
	v := reflect.ValueOf(data)
	n := v.Len()
	out := reflect.MakeSlice(v.Type(), n, n)
	nd := len(shape)
	idx := make([]int, nd)
	// Walk row-major output positions; compute the column-major source offset.
	for o := 0; o < n; o++ {
		src, stride := 0, 1
		for d := 0; d < nd; d++ {
			src += idx[d] * stride
			stride *= shape[d]
		}
		out.Index(o).Set(v.Index(src))
		for d := nd - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out.Interface()
}

// Write writes s to path as an .npz archive (deflate-compressed like numpy's
// savez_compressed is not required by readers; entries are stored as npz
// writes them). Keys are written sorted.
func (s *Set) Write(path string) error {
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	return nil
}

// Encode writes s as an .npz archive to w.
func (s *Set) Encode(w io.Writer) error {
	zw := npz.NewWriter(w)
	keys := s.Keys()
	sort.Strings(keys)
	for _, k := range keys {
		v, err := shaped(s.entries[k].arr)
		if err != nil {
			return fmt.Errorf("params: write %q: %w", k, err)
		}
		if err := zw.Write(k+".npy", v); err != nil {
			return fmt.Errorf("params: write %q: %w", k, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	return nil
}

// shaped returns a value whose Go type carries the array's shape, so that
// npyio writes an npy header with that shape: a 0-d array becomes a scalar,
// a k-d array a slice of nested fixed-size arrays aliasing the data.
func shaped(a *Array) (any, error) {
	v := reflect.ValueOf(a.Data)
	if len(a.Shape) == 0 {
		if v.Len() != 1 {
			return nil, fmt.Errorf("0-d array with %d elements", v.Len())
		}
		return v.Index(0).Interface(), nil
	}
	if len(a.Shape) == 1 || v.Len() == 0 {
		if len(a.Shape) > 1 {
			// numpy needs the full shape even when empty.
			return nil, fmt.Errorf("cannot write empty array of shape %v", a.Shape)
		}
		return a.Data, nil
	}
	if v.Type().Elem().Kind() == reflect.String {
		return nil, fmt.Errorf("string arrays of rank %d are not supported for writing", len(a.Shape))
	}
	t := v.Type().Elem()
	for d := len(a.Shape) - 1; d >= 1; d-- {
		t = reflect.ArrayOf(a.Shape[d], t)
	}
	ptr := unsafe.Pointer(v.Pointer())
	return reflect.SliceAt(t, ptr, a.Shape[0]).Interface(), nil
}
