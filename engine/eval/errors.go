package eval

import (
	"slices"

	"github.com/ferry-etl/ferry/engine/internal/suggest"
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

// closest picks the likely intended name; candidates often come from a
// map, so they are sorted first to make the choice between equals stable.
func closest(name string, candidates []string) string {
	sorted := slices.Clone(candidates)
	slices.Sort(sorted)
	return suggest.Closest(name, sorted)
}
