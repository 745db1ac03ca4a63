package engine_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestPageChainEndingBeforeItsTotalPagesFails: page paging ends on an
// empty page that gives no total_pages. One before the total_pages an
// earlier page gave (page 1 said 3) is the server failing to give the
// rest (a 204, or an empty list without the total, under load), not the
// list's end: read as its end, the chain was complete with page 3 never
// asked, and the replace table marked deleted the rows of pages 2 and 3,
// which the source still holds. The chain fails instead, naming both
// pages, and the next run asks that page again.
func TestPageChainEndingBeforeItsTotalPagesFails(t *testing.T) {
	for name, answer := range map[string]func(w http.ResponseWriter){
		"204":        func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) },
		"empty list": func(w http.ResponseWriter) { w.Write([]byte(`{"items": []}`)) },
		// A rule's "no data" (an API answering 404 past its last page) on
		// a page before the last one page 1 counted.
		"404 read as no data": func(w http.ResponseWriter) { http.Error(w, `{"message": "not found"}`, http.StatusNotFound) },
	} {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: {type: page, param: page, total_pages: .total_pages}
    http:
      rules:
        - {status: 404, action: empty}
tables:
  items: {from: items, primary_key: [id], mode: replace}
`, "")
			var broken, fixed atomic.Bool
			fx.mu.Lock()
			fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
				p := r.URL.Query().Get("page")
				if broken.Load() && p == "2" {
					answer(w)
					return
				}
				var items []any
				ids := map[string][]string{"1": {"i1", "i2"}, "2": {"i3", "i4"}, "3": {"i5", "i6"}}[p]
				if fixed.Load() && p == "2" {
					ids = append(ids, "i4b") // new since: the page asked again is written
				}
				for _, id := range ids {
					items = append(items, map[string]any{"id": id})
				}
				json.NewEncoder(w).Encode(map[string]any{"items": items, "total_pages": 3})
			}
			fx.mu.Unlock()
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			broken.Store(true)
			_, err := fx.run(engine.RunOptions{})
			if err == nil || !strings.Contains(err.Error(), "page 2") || !strings.Contains(err.Error(), "page 1 said the list has 3 pages") {
				t.Errorf("err = %v, want the chain failed at page 2, naming page 1's total_pages", err)
			}
			if got := fx.query(`SELECT id FROM nl__items WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
				t.Errorf("rows marked deleted: %v; the source still holds them", got)
			}
			// The server still broken, the resumed run, which asks page 2
			// again, fails there too: it knows the total from the checkpoint.
			if _, err := fx.run(engine.RunOptions{}); err == nil {
				t.Error("the resumed run ended the chain at the same page, exit 0")
			}
			if got := fx.query(`SELECT id FROM nl__items WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
				t.Errorf("rows marked deleted by the resumed run: %v", got)
			}
			broken.Store(false)
			fixed.Store(true)
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := fx.query(`SELECT COUNT(*) FROM nl__items WHERE NOT _ferry_deleted`); len(got) != 1 || got[0] != "7" {
				t.Errorf("live rows %v, want 7 (page 2 asked again and written)", got)
			}
		})
	}
}

// TestPageChainShortOfItsTotalPagesReadsAfresh: a chain failed as stopped
// short of the total_pages an earlier page gave is read again from its
// first page, as one short of its item total is, not from the empty page:
// the list may have shrunk since (items deleted), and a resumed run that
// asked that page again, knowing the old total from the checkpoint, failed
// there on every run, never to succeed (here page 2, past the list's one
// page now, answers 404, read as no data).
func TestPageChainShortOfItsTotalPagesReadsAfresh(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: {type: page, param: page, total_pages: .total_pages}
    http:
      rules:
        - {status: 404, action: empty}
tables:
  items: {from: items, primary_key: [id], mode: replace}
`, "")
	var broken, shrunk atomic.Bool
	fx.mu.Lock()
	fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("page")
		pages := map[string][]string{"1": {"i1", "i2"}, "2": {"i3", "i4"}, "3": {"i5", "i6"}}
		if shrunk.Load() {
			pages = map[string][]string{"1": {"i1", "i2"}}
		}
		ids, ok := pages[p]
		if !ok || broken.Load() && p == "2" {
			http.Error(w, `{"message": "not found"}`, http.StatusNotFound)
			return
		}
		var items []any
		for _, id := range ids {
			items = append(items, map[string]any{"id": id})
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items, "total_pages": len(pages)})
	}
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	broken.Store(true)
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("the chain that stopped at page 2 of 3 ended complete, exit 0")
	}
	// Items deleted since: the list is one page now.
	broken.Store(false)
	shrunk.Store(true)
	for i := 1; i <= 2; i++ {
		if _, err := fx.run(engine.RunOptions{}); err != nil {
			t.Fatalf("run %d after the list shrank: %v", i, err)
		}
	}
	if got := fx.query(`SELECT id FROM nl__items WHERE NOT _ferry_deleted ORDER BY id`); strings.Join(got, ",") != "i1,i2" {
		t.Errorf("live rows %v, want i1,i2 (the rest deleted at the source)", got)
	}
}

// TestResumedPageChainKeepsItsTotalPages: a run resumed after a failure
// of another kind (here page 2 refused) knows the total_pages a page
// before its checkpoint gave: page 2, empty and without a total when
// asked again, is no end before page 3 (read as one, the replace table
// marked deleted the rows of pages 2 and 3).
func TestResumedPageChainKeepsItsTotalPages(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: {type: page, param: page, total_pages: .total_pages}
    http:
      rules:
        - {status: 400, action: fail, message: '"refused"'}
tables:
  items: {from: items, primary_key: [id], mode: replace}
`, "")
	var stage atomic.Int32 // 1: page 2 refused; 2: page 2 empty, no total
	fx.mu.Lock()
	fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("page")
		switch {
		case p == "2" && stage.Load() == 1:
			http.Error(w, `{}`, http.StatusBadRequest)
			return
		case p == "2" && stage.Load() == 2:
			w.Write([]byte(`{"items": []}`))
			return
		}
		var items []any
		for _, id := range map[string][]string{"1": {"i1", "i2"}, "2": {"i3", "i4"}, "3": {"i5", "i6"}}[p] {
			items = append(items, map[string]any{"id": id})
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items, "total_pages": 3})
	}
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	stage.Store(1)
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("page 2 refused, exit 0")
	}
	stage.Store(2)
	if _, err := fx.run(engine.RunOptions{}); err == nil || !strings.Contains(err.Error(), "page 1 said the list has 3 pages") {
		t.Errorf("err = %v, want the resumed chain failed at page 2, naming page 1's total_pages", err)
	}
	if got := fx.query(`SELECT id FROM nl__items WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
		t.Errorf("rows marked deleted: %v; the source still holds them", got)
	}
}
