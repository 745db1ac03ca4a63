package engine_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestNoContentOnLinkedPageFails: a 204 is an answer without records, right
// for a first page (a list with nothing in it). On a page the server
// itself linked to (a next URL: it said there was more), it is the server
// failing to give the rest, as a rule's "no data" there is: read as the
// list's end, the chain ended complete and the replace table marked
// deleted the rows of the pages not given, which the source still holds.
func TestNoContentOnLinkedPageFails(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: {type: next_url, url: .next}
tables:
  items: {from: items, primary_key: [id], mode: replace}
`, "")
	var first []any
	for _, id := range []string{"i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8"} {
		first = append(first, map[string]any{"id": id})
	}
	fx.json("/items", map[string]any{"items": first, "next": "/items/p2"})
	fx.json("/items/p2", map[string]any{"items": []any{map[string]any{"id": "i9"}, map[string]any{"id": "i10"}}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// Under load the server answers the second page with 204.
	fx.raw("/items/p2", http.StatusNoContent, "")
	_, err := fx.run(engine.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "page 2") || !strings.Contains(err.Error(), "204") {
		t.Errorf("a 204 on the page the server linked to: err = %v, want the chain failed naming page 2 and the 204", err)
	}
	if got := fx.query(`SELECT id FROM nl__items WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
		t.Errorf("rows marked deleted: %v; the source still holds them", got)
	}
	// The server well again, the next run asks that page again.
	fx.json("/items/p2", map[string]any{"items": []any{map[string]any{"id": "i9"}, map[string]any{"id": "i10"}}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT COUNT(*) FROM nl__items WHERE NOT _ferry_deleted`); len(got) != 1 || got[0] != "10" {
		t.Errorf("live rows %v, want 10", got)
	}
}
