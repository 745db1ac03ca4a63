package engine_test

import (
	"slices"
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
