package engine_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// refreshSpec: an incremental parent (projects, an append table), an
// incremental child (issues) below it, and another incremental stream
// (events) beside them.
const refreshSpec = specHead + `streams:
  projects:
    request: {path: /projects, query: {since: '${ cursor }'}}
    incremental: {cursor: .updated, initial: "0"}
  issues:
    for_each: projects
    request: {path: '/projects/${ parent.id }/issues', query: {since: '${ cursor }'}}
    incremental: {cursor: .updated, initial: "0"}
  events:
    request: {path: /events, query: {since: '${ cursor }'}}
    incremental: {cursor: .updated, initial: "0"}
tables:
  projects: {from: projects, mode: append}
  issues: {from: issues, primary_key: [id]}
  events: {from: events, mode: append}
`

// refreshAPI serves records updated after ?since= and keeps the since
// values each path was asked.
type refreshAPI struct {
	mu     sync.Mutex
	recs   map[string][]map[string]any // by path
	sinces map[string][]string
}

func (a *refreshAPI) serve(path string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		since := r.URL.Query().Get("since")
		a.sinces[path] = append(a.sinces[path], since)
		out := []any{}
		for _, rec := range a.recs[path] {
			if rec["updated"].(string) > since {
				out = append(out, rec)
			}
		}
		json.NewEncoder(w).Encode(out)
	}
}

// TestFullRefreshOfSomeStreams: `--streams issues --full-refresh` reads
// every project's issues again (the projects stream, their driver, read
// in full though incremental), and leaves the other streams' cursors as
// they were: the next run asks events and projects only since their
// cursors (cleared, it asked from the start, and the append tables got
// every row again). And a run that does not produce projects does not
// move their cursor past rows it did not write: the next run writes them.
func TestFullRefreshOfSomeStreams(t *testing.T) {
	fx := newFixture(t, refreshSpec, "")
	api := &refreshAPI{sinces: map[string][]string{}, recs: map[string][]map[string]any{
		"/projects":           {{"id": "p1", "updated": "1"}, {"id": "p2", "updated": "2"}},
		"/projects/p1/issues": {{"id": "i1", "updated": "1"}},
		"/projects/p2/issues": {{"id": "i2", "updated": "1"}},
		"/events":             {{"id": "e1", "updated": "1"}},
	}}
	for _, p := range []string{"/projects", "/projects/p1/issues", "/projects/p2/issues", "/projects/p3/issues", "/events"} {
		fx.mu.Lock()
		fx.routes[p] = api.serve(p)
		fx.mu.Unlock()
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	if _, err := fx.run(engine.RunOptions{Now: clock}); err != nil {
		t.Fatal(err)
	}
	// Meanwhile: a project added, an issue changed in a project that did
	// not change (its parent's cursor leaves it out), an event added.
	api.mu.Lock()
	api.recs["/projects"] = append(api.recs["/projects"], map[string]any{"id": "p3", "updated": "3"})
	api.recs["/projects/p3/issues"] = []map[string]any{{"id": "i3", "updated": "1"}}
	api.recs["/projects/p1/issues"] = []map[string]any{{"id": "i1", "updated": "5", "v": "changed"}}
	api.recs["/events"] = append(api.recs["/events"], map[string]any{"id": "e2", "updated": "2"})
	api.sinces = map[string][]string{}
	api.mu.Unlock()

	if _, err := fx.run(engine.RunOptions{Now: clock, Streams: []string{"issues"}, FullRefresh: true}); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	if got := api.sinces["/projects"]; !slices.Equal(got, []string{"0"}) {
		t.Errorf("projects asked since %v in the refresh of issues, want [0]: read in full, every project's issues are read again", got)
	}
	if got := api.sinces["/projects/p1/issues"]; !slices.Equal(got, []string{"0"}) {
		t.Errorf("p1's issues asked since %v, want [0] (refreshed)", got)
	}
	if got := api.sinces["/events"]; len(got) != 0 {
		t.Errorf("events asked %v in a run of issues alone", got)
	}
	api.sinces = map[string][]string{}
	api.mu.Unlock()
	if got := fx.query(`SELECT id || ':' || COALESCE(v, '') FROM "nl__issues" ORDER BY id`); !slices.Equal(got, []string{"i1:changed", "i2:", "i3:"}) {
		t.Errorf("issues after the refresh = %v", got)
	}

	if _, err := fx.run(engine.RunOptions{Now: clock}); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if got := api.sinces["/events"]; !slices.Equal(got, []string{"1"}) {
		t.Errorf("events asked since %v after a refresh of issues alone, want [1]: its cursor kept", got)
	}
	if got := api.sinces["/projects"]; !slices.Equal(got, []string{"2"}) {
		t.Errorf("projects asked since %v, want [2]: its cursor kept, not moved by the run that did not write projects", got)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"e1", "e2"}) {
		t.Errorf("events (append) = %v, want e1 once and e2", got)
	}
	if got := fx.query(`SELECT id FROM "nl__projects" ORDER BY id`); !slices.Equal(got, []string{"p1", "p2", "p3"}) {
		t.Errorf("projects (append) = %v, want each once, p3 included", got)
	}
}
