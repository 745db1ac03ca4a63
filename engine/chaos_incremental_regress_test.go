package engine_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// Regressions found by TestChaosIncremental, each made small.

// TestReplayedPageShiftedRecordIsAppended (TestChaosIncremental seed 10: a
// windowed list sorted by id, an item that left its window between a
// cancelled run and the resumed one): a resumed run reads a committed page
// again, and the page now holds a record it did not hold when committed
// (the record before it went away). The record's row is written into the
// keyed table (its partition saved no key of it), and must be appended
// too: the chain goes on after the page as read now, so no later page
// holds it. The append table, which saves no keys, took every record of a
// replayed page for committed and never got it, and the run exited 0.
func TestReplayedPageShiftedRecordIsAppended(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    incremental: {cursor: .at, initial: "2026-01-01T00:00:00Z"}
    request: {path: /items, query: {since: '${ cursor }'}}
    paginate: {type: offset, param: offset}
  notes:
    for_each: items
    request: {path: '/items/${ parent.id }/notes'}
tables:
  items: {from: items, primary_key: [id], row: '{id, v}'}
  log: {from: items, mode: append, row: '{id, v}'}
`, "")
	a := map[string]any{"id": "a", "v": 1, "at": "2026-01-02T00:00:00Z"}
	b := map[string]any{"id": "b", "v": 1, "at": "2026-01-01T12:00:00Z"} // sorted by id: earlier than a, after it
	fx.json("/items/a/notes", []any{})
	fx.json("/items/b/notes", []any{})
	// Page 1 (a) is committed; page 2 fails. The resumed run reads page 1
	// again, for the children of its records.
	fx.pages("/items", []any{a, b}, 1)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	// a is deleted: the committed page 1 now holds b.
	fx.pages("/items", []any{b})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got, want := fx.query(`SELECT id FROM "nl__items" ORDER BY id`), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("items = %v, want %v", got, want)
	}
	if got, want := fx.query(`SELECT id FROM "nl__log" ORDER BY id`), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v: b, read on a replayed page that did not hold it when committed, was never appended", got, want)
	}
}

// TestResumedFullRefreshReconciles (TestChaosIncremental seed 198: a
// --full-refresh cancelled, then resumed twice): a sync that reads an
// incremental stream from its initial cursor reads it in full, whether or
// not a run of it was interrupted. The run that resumes it asks the same
// question (from initial), so the replace table is reconciled when the
// sync ends: the row of a record deleted before it began is marked. The
// resumed chain was taken for one read from a saved cursor (its
// checkpoint's question was), and the table was never reconciled.
func TestResumedFullRefreshReconciles(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    incremental: {cursor: .at, initial: "2026-01-01T00:00:00Z"}
    request: {path: /items, query: {since: '${ cursor }'}}
    paginate: {type: offset, param: offset}
tables:
  items: {from: items, mode: replace, primary_key: [id], row: '{id}'}
`, "")
	rec := func(id, at string) map[string]any { return map[string]any{"id": id, "at": at} }
	a, b, c := rec("a", "2026-01-02T00:00:00Z"), rec("b", "2026-01-03T00:00:00Z"), rec("c", "2026-01-04T00:00:00Z")
	fx.pages("/items", []any{a, b, c})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// c is deleted; a full refresh reads page 1 and fails on page 2.
	fx.pages("/items", []any{a, b}, 1)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{FullRefresh: true}); return err }())
	fx.pages("/items", []any{a, b})
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if !res.Summary.Tables["items"] {
		t.Errorf("the resumed full refresh's table is not reconciled: %v", res.Summary.Tables)
	}
	if got, want := fx.query(`SELECT id || ':' || _ferry_deleted FROM "nl__items" ORDER BY id`), []string{"a:0", "b:0", "c:1"}; !slices.Equal(got, want) {
		t.Errorf("items = %v, want %v: c, deleted before the full refresh, marked", got, want)
	}
}

// TestAfreshChainOfFullRefreshReconciles (TestChaosIncremental seed 7187):
// a --full-refresh reads p1's comments from the initial cursor, saves
// p1's comment cursor, and fails on p2's; p1 changes before the run that
// resumes the sync, which reads p1's comments afresh (its parent changed).
// It asked from the cursor the refresh saved: a chain that read only what
// changed, so the comments table, never reconciled, kept c2 (deleted
// before the refresh) live, exit 0. Read afresh, a chain the sync read
// whole asks from the initial cursor again.
func TestAfreshChainOfFullRefreshReconciles(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  posts:
    request: {path: /posts}
  comments:
    for_each: posts
    incremental: {cursor: .at, initial: "2026-01-01T00:00:00Z"}
    request: {path: '/posts/${ parent.id }/comments', query: {since: '${ cursor }'}}
tables:
  comments: {from: comments, mode: replace, primary_key: [id], row: '{id}'}
`, "")
	post := func(id, v string) map[string]any { return map[string]any{"id": id, "v": v} }
	comment := func(id, at string) map[string]any { return map[string]any{"id": id, "at": at} }
	since := func(list []any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var out []any
			for _, c := range list {
				if c.(map[string]any)["at"].(string) > r.URL.Query().Get("since") {
					out = append(out, c)
				}
			}
			json.NewEncoder(w).Encode(out)
		}
	}
	route := func(path string, h http.HandlerFunc) {
		fx.mu.Lock()
		fx.routes[path] = h
		fx.mu.Unlock()
	}
	c1, c2, c3 := comment("c1", "2026-01-02T00:00:00Z"), comment("c2", "2026-01-03T00:00:00Z"), comment("c3", "2026-01-04T00:00:00Z")
	fx.json("/posts", []any{post("p1", "1"), post("p2", "1")})
	route("/posts/p1/comments", since([]any{c1, c2}))
	route("/posts/p2/comments", since([]any{c3}))
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// c2 is deleted; a full refresh reads p1's comments and fails on p2's.
	route("/posts/p1/comments", since([]any{c1}))
	fx.raw("/posts/p2/comments", http.StatusBadRequest, `{"message": "no"}`)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{FullRefresh: true}); return err }())
	fx.json("/posts", []any{post("p1", "2"), post("p2", "1")})
	route("/posts/p2/comments", since([]any{c3}))
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if !res.Summary.Tables["comments"] {
		t.Errorf("the resumed full refresh's table is not reconciled: %v", res.Summary.Tables)
	}
	if got, want := fx.query(`SELECT id || ':' || _ferry_deleted FROM "nl__comments" ORDER BY id`), []string{"c1:0", "c2:1", "c3:0"}; !slices.Equal(got, want) {
		t.Errorf("comments = %v, want %v: c2, deleted before the full refresh, marked", got, want)
	}
}
