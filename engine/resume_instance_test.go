package engine_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// runWithOrg runs fx with config org set, as a second instance of the
// same spec (another organisation of the API) would be run.
func runWithOrg(fx *fixture, org string, opts engine.RunOptions) (*engine.Result, error) {
	fx.t.Helper()
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL, "org": org}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		fx.t.Fatal(err)
	}
	opts.Dest = fx.db
	return engine.Run(fx.t.Context(), fx.spec, cfg, opts)
}

const orgPagedSpec = `version: 1
name: nl
config:
  url: {required: true}
  org: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  apps:
    request:
      path: /orgs/${ config.org }/apps
    records: .items[]
    paginate: {type: next_url, url: .next}
tables:
  apps: {from: apps, primary_key: [id], mode: replace}
`

// TestResumeUnderAnotherInstanceMarksNothing: a run that fails leaves its
// sync open, with the checkpoints of the chains it read. A run with
// another organisation in the config (another instance of the source)
// must not take that sync for its own: resumed, its chains go on from
// the other organisation's checkpoints (here the next page of the list),
// the pages before it are never read, and the replace table, "complete",
// marks deleted the rows of those pages, which the source still holds.
func TestResumeUnderAnotherInstanceMarksNothing(t *testing.T) {
	fx := newFixture(t, orgPagedSpec, "")
	page := func(org string, n int, ids []string, last bool) {
		body := map[string]any{"items": []any{}}
		for _, id := range ids {
			body["items"] = append(body["items"].([]any), map[string]any{"id": id})
		}
		if !last {
			body["next"] = fmt.Sprintf("/orgs/%s/apps/p%d", org, n+1)
		}
		path := fmt.Sprintf("/orgs/%s/apps/p%d", org, n)
		if n == 1 {
			path = "/orgs/" + org + "/apps"
		}
		fx.json(path, body)
	}
	page("B", 1, []string{"b1", "b2"}, false)
	page("B", 2, []string{"b3", "b4"}, false)
	page("B", 3, []string{"b5", "b6"}, true)
	if _, err := runWithOrg(fx, "B", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// Organisation A: its first page is read, its second fails.
	page("A", 1, []string{"a1", "a2"}, false)
	fx.raw("/orgs/A/apps/p2", http.StatusBadRequest, `{"message": "no"}`)
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err == nil {
		t.Fatal("the run with a failed page exited 0")
	}
	// B again: its six apps are all still there (and A's server is well
	// again).
	page("A", 2, []string{"a3", "a4"}, true)
	_, err := runWithOrg(fx, "B", engine.RunOptions{})
	var ce *engine.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "another source instance") {
		t.Errorf("B's run resuming A's sync: err = %v, want a config error saying the sync is another instance's", err)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
		t.Errorf("rows marked deleted after B's run: %v; B's source still holds every one", got)
	}
	// ferry plan says so too: it shows what a run would do.
	cfg, cerr := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL, "org": "B"}, Getenv: func(string) (string, bool) { return "", false }})
	if cerr != nil {
		t.Fatal(cerr)
	}
	if _, err := engine.PlanRun(t.Context(), fx.spec, cfg, engine.PlanOptions{Dest: fx.db}); !errors.As(err, &ce) {
		t.Errorf("plan of B's run: err = %v, want the config error a run gives", err)
	}
	// B starting a new sync reads its own list whole; A's rows are not
	// B's source's, so they go.
	if _, err := runWithOrg(fx, "B", engine.RunOptions{FullRefresh: true}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE NOT _ferry_deleted ORDER BY id`); !slices.Equal(got, []string{"b1", "b2", "b3", "b4", "b5", "b6"}) {
		t.Errorf("live apps %v after B's new sync, want b1..b6", got)
	}
}

// TestResumeBySameInstanceStillResumes: the instance check does not stop
// the run that finishes its own sync.
func TestResumeBySameInstanceStillResumes(t *testing.T) {
	fx := newFixture(t, orgPagedSpec, "")
	fx.json("/orgs/A/apps", map[string]any{"items": []any{map[string]any{"id": "a1"}}, "next": "/orgs/A/apps/p2"})
	fx.raw("/orgs/A/apps/p2", http.StatusBadRequest, `{"message": "no"}`)
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err == nil {
		t.Fatal("the run with a failed page exited 0")
	}
	fx.takeRequests()
	fx.json("/orgs/A/apps/p2", map[string]any{"items": []any{map[string]any{"id": "a2"}}})
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.takeRequests(); !slices.Equal(got, []string{"/orgs/A/apps/p2"}) {
		t.Errorf("the resumed run asked %v, want only the page it failed on", got)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE NOT _ferry_deleted ORDER BY id`); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("live apps %v, want a1 a2", got)
	}
}

// TestAnotherInstanceMarksNothing is a design question, not settled: a
// complete sync of another instance (the config's org changed, or a
// second org run into the same destination) marks deleted every row of
// the first that it did not read, though the first's source still holds
// them. The delete threshold stops it only when the second instance is
// small: the share is of the live rows, the second's own new rows
// included (3 of 33 here), where Port, which owns its entities per
// instance, would delete none. A table has no owner column; the fix is a
// choice: keep the instance with the destination's state and refuse
// (as for an unfinished sync) a run of another one until --full-refresh,
// or count the threshold over the rows live before the sync.
func TestAnotherInstanceMarksNothing(t *testing.T) {
	t.Skip("design question: a replace table has no owner; see the comment and the audel report")
	fx := newFixture(t, orgPagedSpec, "")
	fx.json("/orgs/A/apps", map[string]any{"items": []any{map[string]any{"id": "a1"}, map[string]any{"id": "a2"}, map[string]any{"id": "a3"}}})
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	var items []any
	for i := range 30 {
		items = append(items, map[string]any{"id": fmt.Sprintf("b%d", i)})
	}
	fx.json("/orgs/B/apps", map[string]any{"items": items})
	_, _ = runWithOrg(fx, "B", engine.RunOptions{})
	if got := fx.query(`SELECT id FROM nl__apps WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
		t.Errorf("rows of A marked deleted by B's sync: %v; A's source still holds them", got)
	}
}

// TestAnotherInstanceReadsFromItsOwnCursor is the same design question
// for incremental cursors, which outlive a sync and are not the
// instance's either: a run of organisation B reads from the cursor A's
// run saved, and B's events before it are never written (exit 0).
func TestAnotherInstanceReadsFromItsOwnCursor(t *testing.T) {
	t.Skip("design question: the destination's state is not kept per source instance; see TestAnotherInstanceMarksNothing")
	fx := newFixture(t, `version: 1
name: nl
config:
  url: {required: true}
  org: {required: true}
http:
  base_url: ${ config.url }
streams:
  events:
    incremental: {cursor: .at, initial: "1970-01-01T00:00:00Z"}
    request:
      path: /orgs/${ config.org }/events
      query: {since: "${ cursor }"}
tables:
  events: {from: events, primary_key: [id]}
`, "")
	fx.mu.Lock()
	fx.routes["/orgs/A/events"] = func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id":"a1","at":"2026-06-01T00:00:00Z"}]`))
	}
	fx.routes["/orgs/B/events"] = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("since") >= "2026-01-01T00:00:00Z" {
			w.Write([]byte(`[]`))
			return
		}
		w.Write([]byte(`[{"id":"b1","at":"2026-01-01T00:00:00Z"}]`))
	}
	fx.mu.Unlock()
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := runWithOrg(fx, "B", engine.RunOptions{}); err == nil {
		if got := fx.query(`SELECT id FROM nl__events WHERE id = 'b1'`); len(got) == 0 {
			t.Error("B's event b1 never written: B's run read from A's cursor, exit 0")
		}
	}
}
