package engine_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestPageRepeatsTheOneBefore: a server that ignores the paging parameter
// (a spec that names it wrongly: `page` where the API reads `pageIndex`)
// answers the first page again and again. Page-number paging with
// total_pages, or offsets with a total, then end on time with only the
// first page read, every later one a copy of it (exit 0, the rest lost); a
// cursor in a header goes on to max_pages. A page whose answer is the one
// before it, byte for byte (whatever else the body holds: each answer
// here has a request id of its own), fails the chain naming both pages.
func TestPageRepeatsTheOneBefore(t *testing.T) {
	for name, paginate := range map[string]string{
		"page, total_pages": `{type: page, param: page, total_pages: .pages}`,
		// More than a path: the document is read whole, its items compared.
		"page, total_pages read whole": `{type: page, param: page, total_pages: '.pages + 0'}`,
		"offset, total":                `{type: offset, param: offset, total: .total}`,
		"cursor in a header":           `{type: cursor, token_header: X-Next, param: cursor}`,
	} {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: `+paginate+`
tables:
  items: {from: items, primary_key: [id]}
`, "")
			asked := 0
			fx.mu.Lock()
			fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
				asked++
				w.Header().Set("X-Next", "c"+strconv.Itoa(asked)) // a new cursor, the same page
				// It reads pageIndex and start, never page or offset.
				// Each answer has an id of its own: the items are the copy.
				json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"id": 1}, map[string]any{"id": 2}}, "pages": 3, "total": 6, "request_id": asked})
			}
			fx.mu.Unlock()
			_, err := fx.run(engine.RunOptions{})
			re := runErrorOf(t, err)
			if asked != 2 {
				t.Errorf("%d requests, want 2: the chain stops at the copy", asked)
			}
			if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "page 2: GET") || !strings.Contains(re.Failures[0].Error(), "the page holds page 1's items again, byte for byte") {
				t.Fatalf("failures = %v, want page 2 named as a copy of page 1", re.Failures)
			}
		})
	}
}

// TestRepeatedPageResumed: a page answered as the one before once (a cache
// that served the first page's answer for the second) fails the chain; the
// next run resumes it and reads the second page as it is now. The copy's
// records were page 1's, not page 2's: had the checkpoint taken page 2 as
// read, the resumed run would have asked it only to learn what follows,
// writing nothing from it, and an append table (no keys saved to tell)
// lost its records, exit 0.
func TestRepeatedPageResumed(t *testing.T) {
	for _, table := range []string{"{from: items, mode: append}", "{from: items, primary_key: [id]}"} {
		t.Run(table, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: {type: page, param: page, total_pages: .pages}
tables:
  items: `+table+`
`, "")
			copied := false
			fx.mu.Lock()
			fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
				p, _ := strconv.Atoi(r.URL.Query().Get("page"))
				if p == 2 && !copied {
					copied, p = true, 1
				}
				json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"id": 2*p - 1}, map[string]any{"id": 2 * p}}, "pages": 3})
			}
			fx.mu.Unlock()
			if _, err := fx.run(engine.RunOptions{}); err == nil || !strings.Contains(err.Error(), "the page holds page 1's items again") {
				t.Fatalf("err = %v, want page 2 named as a copy of page 1", err)
			}
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatalf("the resumed run: %v", err)
			}
			if got := fx.query(`SELECT DISTINCT id FROM "nl__items" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5", "6"}) {
				t.Errorf("ids = %v, want 1 to 6", got)
			}
		})
	}
}
