// Package suggest finds the likely intended name for a misspelt one, for
// "did you mean" advice in spec, expr and config errors.
package suggest

import "strings"

// Closest returns the candidate nearest to name: one differing in case only,
// else the nearest within an edit distance of a third of name's length, else
// one that name starts or is the start of ("lang" for "language").
func Closest(name string, candidates []string) string {
	if len(name) > 64 {
		return "" // not a typo of a name; and the distance is quadratic
	}
	lname := strings.ToLower(name)
	best, bestDist := "", max(1, len(name)/3)+1
	prefix := ""
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if c == name || lc == "" {
			continue
		}
		if lc == lname {
			return c
		}
		// The distance is at least the difference in length: most
		// candidates of a long list are ruled out without computing it.
		if d := len(lname) - len(lc); d < bestDist && -d < bestDist {
			if d := distance(lname, lc); d < bestDist {
				best, bestDist = c, d
			}
		}
		if prefix == "" && min(len(lname), len(lc)) >= 2 && (strings.HasPrefix(lc, lname) || strings.HasPrefix(lname, lc)) {
			prefix = c
		}
	}
	if best == "" {
		best = prefix
	}
	return best
}

// distance is the optimal-string-alignment distance (Levenshtein with
// adjacent transpositions, so "recrods" is one edit from "records"). Names
// compared here are a few dozen bytes at most.
func distance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			rows[i][j] = min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				rows[i][j] = min(rows[i][j], rows[i-2][j-2]+1)
			}
		}
	}
	return rows[len(a)][len(b)]
}
