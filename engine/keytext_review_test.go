package engine_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestDuplicateRowsAcrossNumberForms: keys 1 and 1.0 (or 1e0) are one row
// in a number column (the table dedupes them by value), so they are one key
// to the duplicate check: the second row must not overwrite the first with
// no word.
func TestDuplicateRowsAcrossNumberForms(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  s:
    request: {path: /s}
tables:
  t: {from: s, primary_key: [id], on_duplicate: fail}
`, "")
	fx.raw("/s", 200, `[{"id": 1, "a": "a1"}, {"id": 1.0, "a": "b1"}, {"id": 2, "a": "a2"}, {"id": 2e0, "a": "b2"}]`)
	res, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 2 || !strings.Contains(re.Failures[0].Error(), "already written by this sync") {
		t.Errorf("failures = %v, want the second rows failed as duplicates", re.Failures)
	}
	if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Count != 2 {
		t.Errorf("duplicates = %+v, want 2", res.Summary.Duplicates)
	}
	if got := fx.query(`SELECT a FROM "nl__t" ORDER BY a`); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("rows = %v, want the first rows kept", got)
	}
}
