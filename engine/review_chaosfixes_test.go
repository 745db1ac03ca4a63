package engine_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// refreshFixture serves refreshSpec's paths from api.
func refreshFixture(t *testing.T, recs map[string][]map[string]any) (*fixture, *refreshAPI) {
	fx := newFixture(t, refreshSpec, "")
	api := &refreshAPI{sinces: map[string][]string{}, recs: recs}
	for _, p := range []string{"/projects", "/projects/p1/issues", "/projects/p2/issues", "/projects/p3/issues", "/events"} {
		fx.mu.Lock()
		fx.routes[p] = api.serve(p)
		fx.mu.Unlock()
	}
	return fx, api
}

// TestStreamsParentCursorWaitsForUnreadChildren: `--streams projects`
// (with or without --full-refresh) reads the incremental projects and
// writes them, but not their issues (for_each, left out). p1 changed, and
// its issue with it: had the run saved the projects cursor past p1, the
// next run would ask projects only since then, never read p1's issues
// again, and lose i1's change with exit 0. The cursor is kept.
func TestStreamsParentCursorWaitsForUnreadChildren(t *testing.T) {
	for _, refresh := range []bool{false, true} {
		fx, api := refreshFixture(t, map[string][]map[string]any{
			"/projects":           {{"id": "p1", "updated": "1"}, {"id": "p2", "updated": "2"}},
			"/projects/p1/issues": {{"id": "i1", "updated": "1"}},
			"/projects/p2/issues": {{"id": "i2", "updated": "1"}},
			"/events":             {},
		})
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		if _, err := fx.run(engine.RunOptions{Now: clock}); err != nil {
			t.Fatal(err)
		}
		// p1 changes, and with it its issue.
		api.mu.Lock()
		api.recs["/projects"][0] = map[string]any{"id": "p1", "updated": "5"}
		api.recs["/projects/p1/issues"] = []map[string]any{{"id": "i1", "updated": "5", "v": "changed"}}
		api.mu.Unlock()
		if _, err := fx.run(engine.RunOptions{Now: clock, Streams: []string{"projects"}, FullRefresh: refresh}); err != nil {
			t.Fatal(err)
		}
		if _, err := fx.run(engine.RunOptions{Now: clock}); err != nil {
			t.Fatal(err)
		}
		if got := fx.query(`SELECT id || ':' || updated FROM "nl__issues" ORDER BY id`); !slices.Equal(got, []string{"i1:5", "i2:1"}) {
			t.Errorf("refresh=%v: issues = %v, want i1 changed: the --streams projects run moved the projects cursor past p1, whose issues it did not read", refresh, got)
		}
	}
}

// TestShiftedRecordSharingAWitnessKeyIsAppended (7f12166 left this):
// a record shifted onto a replayed page is appended only if no keyed table
// of its stream saved its row's key; groups, keyed by a value many items
// share, saved G for a, so b (G too), shifted onto the committed page
// when a went away, was taken for committed and never appended to log,
// with exit 0. A keyed table cannot tell that its key is one record's:
// the checkpoint now holds the content hashes of its page's records,
// which tell.
func TestShiftedRecordSharingAWitnessKeyIsAppended(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    incremental: {cursor: .at, initial: "2026-01-01T00:00:00Z"}
    request: {path: /items, query: {since: '${ cursor }'}}
    paginate: {type: offset, param: offset}
  notes:
    for_each: items
    request: {path: '/items/${ parent.id }/notes'}
tables:
  groups: {from: items, primary_key: [g], row: '{g}', on_duplicate: warn}
  log: {from: items, mode: append, row: '{id, g}'}
`, "")
	a := map[string]any{"id": "a", "g": "G", "at": "2026-01-02T00:00:00Z"}
	b := map[string]any{"id": "b", "g": "G", "at": "2026-01-01T12:00:00Z"}
	fx.json("/items/a/notes", []any{})
	fx.json("/items/b/notes", []any{})
	fx.pages("/items", []any{a, b}, 1)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	fx.pages("/items", []any{b})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got, want := fx.query(`SELECT id FROM "nl__log" ORDER BY id`), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
}

// TestShiftedRecordOfAppendOnlyStreamIsAppended: a stream whose only
// table is an append table has no keyed table to tell which records of a
// replayed page were committed; every one was taken for committed, so b,
// shifted onto the committed page when a record before it went away, was
// never appended (the chain goes on after that page), with exit 0. Those
// that were committed are not appended again.
func TestShiftedRecordOfAppendOnlyStreamIsAppended(t *testing.T) {
	a := map[string]any{"id": "a", "at": "2026-01-02T00:00:00Z"}
	b := map[string]any{"id": "b", "at": "2026-01-01T12:00:00Z"}
	c := map[string]any{"id": "c", "at": "2026-01-01T13:00:00Z"}
	d := map[string]any{"id": "d", "at": "2026-01-01T14:00:00Z"}
	x := map[string]any{"id": "x", "at": "2026-01-01T15:00:00Z"}
	for _, tc := range []struct {
		name        string
		first, then []any
		fail        int // the offset the first run fails at
	}{
		// Page 1 (a) is committed; a goes away, b moves onto page 1.
		{"onto the last committed page", []any{a, b}, []any{b}, 1},
		// Pages 1 (a) and 2 (b) are committed; a goes away: b moves onto
		// page 1 (committed), c onto page 2.
		{"through two committed pages", []any{a, b, c}, []any{b, c}, 2},
		// Pages 1 (a), 2 (b) and 3 (c) are committed; a and b go away: c
		// moves onto page 1, d onto page 2, before the page whose records
		// the checkpoint holds.
		{"two gone", []any{a, b, c, d}, []any{c, d}, 3},
		// Pages 1 (a) and 2 (x) are committed; a goes away: x moves onto
		// page 1, and the second x, alike, onto page 2. The page held one
		// x: one is appended.
		{"alike", []any{a, x, x}, []any{x, x}, 2},
		// Nothing went away: each record once.
		{"unchanged", []any{a, b, c}, []any{a, b, c}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  items:
    incremental: {cursor: .at, initial: "2026-01-01T00:00:00Z"}
    request: {path: /items, query: {since: '${ cursor }'}}
    paginate: {type: offset, param: offset}
  notes:
    for_each: items
    request: {path: '/items/${ parent.id }/notes'}
tables:
  log: {from: items, mode: append, row: '{id}'}
`, "")
			for _, id := range []string{"a", "b", "c", "d", "x"} {
				fx.json("/items/"+id+"/notes", []any{})
			}
			fx.pages("/items", tc.first, tc.fail)
			runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
			fx.pages("/items", tc.then)
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			var want []string
			for _, r := range tc.first {
				want = append(want, r.(map[string]any)["id"].(string))
			}
			if got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`); !slices.Equal(got, want) {
				t.Errorf("log = %v, want %v: a record shifted onto a replayed page is appended, one committed is not appended again", got, want)
			}
		})
	}
}

// TestShiftedRecordOnRedoPageIsAppended: a stream without children reads
// again only the page whose next request could not be worked out (its
// records were committed, the cursor it gave repeated); a record shifted
// onto it since was taken for committed and never appended, and the chain
// went on after it, with exit 0.
func TestShiftedRecordOnRedoPageIsAppended(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
tables:
  log: {from: items, mode: append, row: '{id}'}
`, "")
	id := func(s string) map[string]any { return map[string]any{"id": s} }
	second := []any{id("b")}
	next := "t1" // page 2 names page 2 again: no progress
	fx.mu.Lock()
	fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
		fx.mu.Lock()
		defer fx.mu.Unlock()
		if r.URL.Query().Get("after") == "" {
			json.NewEncoder(w).Encode(map[string]any{"items": []any{id("a")}, "next": "t1"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"items": second, "next": next})
	}
	fx.mu.Unlock()
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	if got, want := fx.query(`SELECT id FROM "nl__log" ORDER BY id`), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("log after the failed run = %v, want %v", got, want)
	}
	// c, on a page after page 2 then, moved onto it; the list ends there.
	fx.mu.Lock()
	second, next = []any{id("b"), id("c")}, ""
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got, want := fx.query(`SELECT id FROM "nl__log" ORDER BY id`), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v: c, shifted onto the page read again, appended, and b not again", got, want)
	}
}

// TestReplayedPageOfOlderCheckpointIsSaid: a checkpoint written by a
// ferry from before checkpoints held their page's records cannot tell a
// record shifted onto the page from one committed: the resumed run keeps
// the rule from before (no record appended twice) and says, once, that it
// cannot vouch for such a record.
func TestReplayedPageOfOlderCheckpointIsSaid(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset}
  notes:
    for_each: items
    request: {path: '/items/${ parent.id }/notes'}
tables:
  log: {from: items, mode: append, row: '{id}'}
`, "")
	a := map[string]any{"id": "a"}
	b := map[string]any{"id": "b"}
	fx.json("/items/a/notes", []any{})
	fx.json("/items/b/notes", []any{})
	fx.pages("/items", []any{a, b}, 1)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	if got := fx.query(`SELECT count(*) FROM "nl___ferry_state" WHERE stream = 'items' AND json_extract(value, '$.recs') IS NOT NULL`); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("checkpoints of items holding their page's records: %v, want 1", got)
	}
	fx.query(`UPDATE "nl___ferry_state" SET value = json_remove(value, '$.recs') WHERE stream = 'items'`)
	fx.pages("/items", []any{a, b})
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := fx.run(engine.RunOptions{Logger: logger}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := strings.Count(logs.String(), "does not hold the records of its page"); got != 1 {
		t.Errorf("warnings that the checkpoint cannot tell a shifted record: %d, want 1; log:\n%s", got, logs.String())
	}
	if got, want := fx.query(`SELECT id FROM "nl__log" ORDER BY id`), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
}

// TestRefreshOfSomeStreamsInOpenSyncMarksDeleted: a sync left open (y
// failed) wrote x's a and b; b is deleted at the source, then
// `--full-refresh --streams x` reads x again. Its replace table is
// reconciled, so b must be marked deleted: the refresh took the table's
// sync generation on (ca8c809 kept the sync), in which b, written by the
// failed run, counted as seen, and the table was called reconciled with b
// live.
func TestRefreshOfSomeStreamsInOpenSyncMarksDeleted(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, strings.Replace(specHead, "\nname: nl\n", "\nname: "+name+"\n", 1)+`streams:
  x:
    request: {path: /x}
  y:
    request: {path: /y}
tables:
  t: {from: x, mode: replace, primary_key: [id], row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
			query := use(fx)
			fx.json("/x", []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}})
			fx.raw("/y", http.StatusBadRequest, `{"message": "no"}`)
			runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
			fx.json("/x", []any{map[string]any{"id": "a"}})
			res, err := fx.run(engine.RunOptions{Streams: []string{"x"}, FullRefresh: true})
			if err != nil {
				t.Fatal(err)
			}
			rep := engine.NewRunReport(fx.spec, "s.yaml", res, err, 0, false, time.Now())
			for _, tr := range rep.Tables {
				if tr.Name == "t" && !tr.Reconciled {
					t.Errorf("t not reconciled after a full refresh of x that read it whole")
				}
			}
			if got, want := query(`SELECT id || ':' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE 'live' END FROM %t ORDER BY id`), []string{"a:live", "b:deleted"}; !slices.Equal(got, want) {
				t.Errorf("t = %v, want %v: b, gone before the full refresh of x, marked", got, want)
			}
		})
	}
}

// TestPlanRefreshOfSomeStreamsInOpenSync: `--full-refresh --streams apps`
// goes on with an unfinished sync (ca8c809), so the run deletes no stale
// Port entity (c stays, a resumed run keeps it); the plan of that run said
// it would delete c, as a plan of a whole --full-refresh does.
func TestPlanRefreshOfSomeStreamsInOpenSync(t *testing.T) {
	fx := planFixture(t)
	fx.realRun()
	fx.raw("/apps/b/envs", http.StatusInternalServerError, "down")
	if _, err := engine.Run(t.Context(), fx.spec, fx.config(), engine.RunOptions{Dest: fx.db, Port: fx.portOptions()}); err == nil {
		t.Fatal("the failing run succeeded")
	}
	fx.json("/apps", []any{map[string]any{"id": "a", "name": "A", "tier": "gold"}, map[string]any{"id": "b", "name": "B", "tier": "silver"}})
	opts := engine.PlanOptions{FullRefresh: true, Streams: []string{"apps"}}
	p, err := fx.plan(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Run(t.Context(), fx.spec, fx.config(), engine.RunOptions{Dest: fx.db, Port: fx.portOptions(), FullRefresh: true, Streams: []string{"apps"}}); err != nil {
		t.Fatal(err)
	}
	kept := slices.Contains(fx.entities("app"), "c")
	app := p.Port.Blueprints[0]
	if planned := app.Delete == 1 && app.Refused == nil; planned == kept {
		t.Errorf("plan: delete %d refused %+v; the run kept c: %v", app.Delete, app.Refused, kept)
	}
}

// TestStreamsRunThenResumedSyncAppendsOnce: a sync is left open (y
// failed) after x, an append table, was read whole; `--streams x` ends
// x's part of the sync, clearing its checkpoints (9837704 kept only the
// drivers'), and the run that resumes the sync then reads x from its
// start within the same sync: a and b appended twice, exit 0. Now the
// sync records x's part as done (syncState.Parts) and keeps its
// checkpoints.
func TestStreamsRunThenResumedSyncAppendsOnce(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  x:
    request: {path: /x}
    paginate: {type: offset, param: offset}
  y:
    request: {path: /y}
tables:
  x: {from: x, mode: append, row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
	fx.pages("/x", []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}})
	fx.raw("/y", http.StatusBadRequest, `{"message": "no"}`)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	if _, err := fx.run(engine.RunOptions{Streams: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	fx.json("/y", []any{map[string]any{"id": "y1"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id FROM "nl__x" ORDER BY id`); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("x (append) = %v, want each once", got)
	}
}

// TestStreamsGrandparentCursorWaitsForUnreadGrandchildren: the rule of
// TestStreamsParentCursorWaitsForUnreadChildren at depth: `--streams
// projects,issues` leaves out comments, below issues; the projects cursor,
// saved, would pass p1 for good, and its issue's changed comment with it.
func TestStreamsGrandparentCursorWaitsForUnreadGrandchildren(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  projects:
    request: {path: /projects, query: {since: '${ cursor }'}}
    incremental: {cursor: .updated, initial: "0"}
  issues:
    for_each: projects
    request: {path: '/projects/${ parent.id }/issues'}
  comments:
    for_each: issues
    request: {path: '/issues/${ parent.id }/comments'}
tables:
  projects: {from: projects, primary_key: [id]}
  issues: {from: issues, primary_key: [id]}
  comments: {from: comments, primary_key: [id], row: '{id, v}'}
`, "")
	api := &refreshAPI{sinces: map[string][]string{}, recs: map[string][]map[string]any{
		"/projects": {{"id": "p1", "updated": "1"}},
	}}
	fx.mu.Lock()
	fx.routes["/projects"] = api.serve("/projects")
	fx.mu.Unlock()
	fx.json("/projects/p1/issues", []any{map[string]any{"id": "i1"}})
	fx.json("/issues/i1/comments", []any{map[string]any{"id": "c1", "v": "old"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	api.recs["/projects"] = []map[string]any{{"id": "p1", "updated": "5"}}
	api.mu.Unlock()
	fx.json("/issues/i1/comments", []any{map[string]any{"id": "c1", "v": "new"}})
	if _, err := fx.run(engine.RunOptions{Streams: []string{"projects", "issues"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id || ':' || v FROM "nl__comments"`); !slices.Equal(got, []string{"c1:new"}) {
		t.Errorf("comments = %v, want c1:new: the --streams run moved the projects cursor past p1, whose comments it did not read", got)
	}
}

// TestRefreshOfOneOfATablesStreamsKeepsItsGeneration: t takes rows from
// x and w (from: [x, w]); in a sync left open, `--full-refresh --streams
// x` must not end t's generation: w, complete in the sync, is not read
// again, and the sync reconciling t would mark w's row b deleted though w
// still lists it (exit 0).
func TestRefreshOfOneOfATablesStreamsKeepsItsGeneration(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, strings.Replace(specHead, "\nname: nl\n", "\nname: "+name+"\n", 1)+`streams:
  x:
    request: {path: /x}
  w:
    request: {path: /w}
  y:
    request: {path: /y}
tables:
  t: {from: [x, w], mode: replace, primary_key: [id], row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
			query := use(fx)
			fx.json("/x", []any{map[string]any{"id": "a"}})
			fx.json("/w", []any{map[string]any{"id": "b"}})
			fx.raw("/y", http.StatusBadRequest, `{"message": "no"}`)
			runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
			if _, err := fx.run(engine.RunOptions{Streams: []string{"x"}, FullRefresh: true}); err != nil {
				t.Fatal(err)
			}
			fx.json("/y", []any{map[string]any{"id": "y1"}})
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, want := query(`SELECT id || ':' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE 'live' END FROM %t ORDER BY id`), []string{"a:live", "b:live"}; !slices.Equal(got, want) {
				t.Errorf("t = %v, want %v: w still lists b", got, want)
			}
		})
	}
}

// TestStreamsPartBegunAnew: in a sync left open (y failed), each --streams
// x run reads x anew (an earlier one recorded x's part: its checkpoints
// kept, they would make this run read nothing), the run resuming the sync
// reads x no more, and the sync's end clears x's checkpoints: the next
// sync reads x again.
func TestStreamsPartBegunAnew(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  x:
    request: {path: /x}
    paginate: {type: offset, param: offset}
  y:
    request: {path: /y}
tables:
  x: {from: x, mode: append, row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
	x := func() []string { return fx.query(`SELECT id FROM "nl__x" ORDER BY id`) }
	fx.pages("/x", []any{map[string]any{"id": "a"}})
	fx.raw("/y", http.StatusBadRequest, `{"message": "no"}`)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	fx.pages("/x", []any{map[string]any{"id": "b"}})
	for range 2 {
		if _, err := fx.run(engine.RunOptions{Streams: []string{"x"}}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := x(), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("after two --streams x runs: x = %v, want %v (the first ends x's part of the open sync: nothing read; the second begins it anew)", got, want)
	}
	fx.json("/y", []any{map[string]any{"id": "y1"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := x(), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("after the run resuming the sync: x = %v, want %v (x's part is done)", got, want)
	}
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := x(), []string{"a", "b", "b"}; !slices.Equal(got, want) {
		t.Errorf("after a new sync: x = %v, want %v (the sync's end cleared x's checkpoints)", got, want)
	}
}

// TestPushedRecordOnReplayedPageNotAppendedAgain: a record inserted at
// the front pushes a, committed on page 1, onto page 2, the page the
// checkpoint holds the records of (the pages are read again to drive
// notes); a is not among them, but the stream's
// table keyed by id (a key one record has: two records sharing it would
// fail the run as a collision) saved a's key: a is committed, and is not
// appended again. n, new, is.
func TestPushedRecordOnReplayedPageNotAppendedAgain(t *testing.T) {
	rec := func(id string) map[string]any { return map[string]any{"id": id} }
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset}
  notes:
    for_each: items
    request: {path: '/items/${ parent.id }/notes'}
tables:
  items: {from: items, primary_key: [id], row: '{id}'}
  log: {from: items, mode: append, row: '{id}'}
`, "")
	for _, id := range []string{"n", "a", "b", "c"} {
		fx.json("/items/"+id+"/notes", []any{})
	}
	fx.pages("/items", []any{rec("a"), rec("b"), rec("c")}, 2)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	fx.pages("/items", []any{rec("n"), rec("a"), rec("b"), rec("c")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	count := map[string]int{}
	for _, id := range fx.query(`SELECT id FROM "nl__log"`) {
		count[id]++
	}
	if count["a"] != 1 || count["n"] != 1 || count["c"] != 1 {
		t.Errorf("log counts %v: want a once (committed, pushed onto the replayed page), n and c once", count)
	}
}

// TestStreamsPartOfAParentDrivesChildrenOnResume: x's part of an open
// sync is done by --streams runs (its checkpoints kept, the second run
// beginning it anew), while its child y, which failed, was read by none:
// the run resuming the sync reads x again, without writing it, to drive
// y, and every child is written.
func TestStreamsPartOfAParentDrivesChildrenOnResume(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  x:
    request: {path: /x}
  y:
    for_each: x
    request: {path: '/x/${ parent.id }/y'}
tables:
  x: {from: x, mode: append, row: '{id}'}
  y: {from: y, primary_key: [id], row: '{id}'}
`, "")
	fx.json("/x", []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}})
	fx.raw("/x/a/y", http.StatusBadRequest, `{"message": "no"}`)
	fx.raw("/x/b/y", http.StatusBadRequest, `{"message": "no"}`)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	for range 2 {
		if _, err := fx.run(engine.RunOptions{Streams: []string{"x"}}); err != nil {
			t.Fatal(err)
		}
	}
	fx.json("/x/a/y", []any{map[string]any{"id": "ya"}})
	fx.json("/x/b/y", []any{map[string]any{"id": "yb"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := fx.query(`SELECT id FROM "nl__y" ORDER BY id`), []string{"ya", "yb"}; !slices.Equal(got, want) {
		t.Errorf("y = %v, want %v: x's part done, its children still read", got, want)
	}
	if got, want := fx.query(`SELECT id FROM "nl__x" ORDER BY id`), []string{"a", "a", "b", "b"}; !slices.Equal(got, want) {
		t.Errorf("x (append) = %v, want %v: the first run's reading and the second --streams run's, none by the resuming run", got, want)
	}
}
