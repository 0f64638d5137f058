package params

import (
	"fmt"
	"sort"
	"strings"
)

// missing returns the error for an absent key, naming up to three keys of s
// nearest to it (by edit distance, with shared path prefix as tie-breaker).
func (s *Set) missing(name string) error {
	near := s.Nearest(name, 3)
	if len(near) == 0 {
		return fmt.Errorf("params: %q not found (the set is empty): %w", name, ErrMissing)
	}
	return fmt.Errorf("params: %q not found; nearest keys: %s: %w", name, strings.Join(quoteAll(near), ", "), ErrMissing)
}

func quoteAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// Nearest returns up to k keys of s closest to name in Levenshtein distance.
func (s *Set) Nearest(name string, k int) []string {
	type cand struct {
		key  string
		dist int
	}
	var cs []cand
	for key := range s.entries {
		cs = append(cs, cand{key, editDistance(name, key)})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].dist != cs[j].dist {
			return cs[i].dist < cs[j].dist
		}
		return cs[i].key < cs[j].key
	})
	var out []string
	for i := 0; i < len(cs) && i < k; i++ {
		out = append(out, cs[i].key)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			c = min(c, prev[j]+1, cur[j-1]+1)
			cur[j] = c
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
