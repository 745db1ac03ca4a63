package sink

import "fmt"

// DefaultDeleteThreshold is the largest share of what a destination holds
// for a run (a replace table's live rows, a blueprint's owned entities)
// that one run deletes, unless the spec says otherwise.
const DefaultDeleteThreshold = 0.9

// DeleteRefusal says why a run must not delete stale of held things (what
// names them: "live rows", "owned entities") under threshold, a share in
// (0, 1]: more than that share would go. It returns "" when the deletion
// is allowed. option is the spec option that sets threshold, named so
// the reader knows what to change when the source really lost them.
//
// There is no floor for small sets: an empty answer that looks complete
// (a token allowed to see nothing, a wrong org) empties a set of three as
// surely as one of thousands. At the default 0.9 a set of ten or fewer
// loses any part of itself but the whole.
func DeleteRefusal(stale, held int, threshold float64, what, option string) string {
	if float64(stale) <= threshold*float64(held) {
		return ""
	}
	return fmt.Sprintf("would delete %d of %d %s, above the %.0f%% threshold (%s)", stale, held, what, 100*threshold, option)
}
