package engine_test

import (
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
