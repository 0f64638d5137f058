package casekit

import (
	"math"

	"github.com/foldkit/foldkit/params"
)

// Meta is the common form of a case's meta: its kind and its configuration
// as decoded JSON. Its getters record their errors in the Case that read it.
type Meta struct {
	Case   string         `json:"case"`
	Config map[string]any `json:"config"`

	c *Case
}

// Meta reads the case's meta into a Meta.
func (c *Case) Meta() (*Meta, error) {
	m := &Meta{c: c}
	if err := c.ReadMeta(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Int returns meta.config[key], which must be present and a positive
// integer; it returns 0 after an error.
func (m *Meta) Int(key string) int {
	if m.c.err != nil {
		return 0
	}
	if _, ok := m.Config[key]; !ok {
		m.c.Errorf("meta.config has no %q: %w", key, params.ErrMissing)
		return 0
	}
	return m.IntOr(key, 0)
}

// IntOr returns meta.config[key], a positive integer, or def when the key
// is absent.
func (m *Meta) IntOr(key string, def int) int {
	v, ok := m.Config[key]
	if m.c.err != nil || !ok {
		return def
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 1 || f > math.MaxInt32 {
		m.c.ConfigErrorf("meta.config %q = %v, want a positive integer", key, v)
		return 0
	}
	return int(f)
}

// FloatOr returns meta.config[key], a number, or def when the key is
// absent.
func (m *Meta) FloatOr(key string, def float64) float64 {
	v, ok := m.Config[key]
	if m.c.err != nil || !ok {
		return def
	}
	f, ok := v.(float64)
	if !ok {
		m.c.ConfigErrorf("meta.config %q = %v, want a number", key, v)
		return 0
	}
	return f
}

// Want fails unless meta.config[key], when present, equals want: a
// configuration value the module cannot change. want is compared with the
// decoded JSON value, so a number must be given as a float64.
func (m *Meta) Want(key string, want any) error {
	if m.c.err != nil {
		return m.c.err
	}
	if v, ok := m.Config[key]; ok && v != want {
		return m.c.ConfigErrorf("meta.config %q = %v, but the module uses %v", key, v, want)
	}
	return nil
}
