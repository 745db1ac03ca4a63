package spec

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Pos is a 1-based line and column in a spec file.
type Pos struct {
	Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// Error is one problem found in a spec file.
type Error struct {
	File string
	Pos  Pos
	Path string // YAML path, e.g. streams.envs.request.path
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Pos.Line, e.Pos.Col)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one or more spec files, sorted by
// file and position.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As reach each *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sorted returns the list ordered by file, line, column and message, with
// exact duplicates removed.
func (l ErrorList) sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Error() < b.Error()
	})
	out := l[:0]
	for i, e := range l {
		if i > 0 && e.Error() == l[i-1].Error() {
			continue
		}
		out = append(out, e)
	}
	return out
}

// AsList returns the spec errors inside err, or nil when err holds none.
func AsList(err error) ErrorList {
	var l ErrorList
	if errors.As(err, &l) {
		return l
	}
	var e *Error
	if errors.As(err, &e) {
		return ErrorList{e}
	}
	return nil
}

// didYouMean returns `; did you mean "x"?` advice for a misspelt name, or ""
// when no candidate is close enough to be a likely typo.
func didYouMean(name string, candidates []string) string {
	if best := closest(name, candidates); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}

// closest returns the candidate nearest to name: one differing in case only,
// else the nearest within an edit distance of a third of name's length, else
// one that name starts or is the start of ("lang" for "language").
func closest(name string, candidates []string) string {
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
		if d := editDistance(lname, lc); d < bestDist {
			best, bestDist = c, d
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

// editDistance is the optimal-string-alignment distance (Levenshtein with
// adjacent transpositions, so "recrods" is one edit from "records"). Names
// compared here are a few dozen bytes at most.
func editDistance(a, b string) int {
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
