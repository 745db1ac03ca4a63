package eval

import (
	"slices"
	"strings"
)

// Error is a compile error inside one embedded program. Offset is the 0-based
// byte offset in the source string given to the compile function, at the start
// of the offending token where it can be found (best effort: an error with no
// better place points at 0, an unexpected end of input at len(src)).
type Error struct {
	Lang   string // "jq" or "expr"
	Offset int
	Msg    string
}

func (e *Error) Error() string { return e.Lang + ": " + e.Msg }

// didYouMean returns "; did you mean X?" for the candidate closest to name, or
// "" when none is close enough to be a likely typo.
func didYouMean(name string, candidates []string) string {
	if s := closest(name, candidates); s != "" {
		return "; did you mean " + s + "?"
	}
	return ""
}

func closest(name string, candidates []string) string {
	best, bestDist := "", -1
	limit := max(1, len(name)/3)
	sorted := slices.Clone(candidates)
	slices.Sort(sorted)
	for _, c := range sorted {
		if c == name {
			continue
		}
		d := levenshtein(strings.ToLower(name), strings.ToLower(c))
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// levenshtein is the edit distance between a and b, in bytes (names are ASCII).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
