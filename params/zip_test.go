package params_test

import (
	"archive/zip"
	"bytes"
	"io"
	"math"
	"sort"
	"testing"
)

var mathFloat64bits = math.Float64bits

func mustZip(t *testing.T, entries map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := w.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(entries[n])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zipOf(t *testing.T, entries map[string][]byte) (io.ReaderAt, int64) {
	b := mustZip(t, entries)
	return bytes.NewReader(b), int64(len(b))
}
