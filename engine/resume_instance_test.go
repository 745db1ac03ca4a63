package engine_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// runWithOrg runs fx with config org set, as a second instance of the
// same spec (another organisation of the API) would be run.
func runWithOrg(fx *fixture, org string, opts engine.RunOptions) (*engine.Result, error) {
	fx.t.Helper()
	return runAt(fx, fx.api.URL, org, opts)
}

// orgHead is the head of the specs of two organisations' runs: the url
// and org inputs, one attempt a request, up to the streams.
const orgHead = `version: 1
name: nl
config:
  url: {required: true}
  org: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
`

const orgPagedSpec = orgHead + `  apps:
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
	// Organisation A, started over in B's destination: its first page is
	// read, its second fails.
	page("A", 1, []string{"a1", "a2"}, false)
	fx.raw("/orgs/A/apps/p2", http.StatusBadRequest, `{"message": "no"}`)
	if _, err := runWithOrg(fx, "A", engine.RunOptions{FullRefresh: true}); err == nil {
		t.Fatal("the run with a failed page exited 0")
	}
	// B again: its six apps are all still there (and A's server is well
	// again).
	page("A", 2, []string{"a3", "a4"}, true)
	_, err := runWithOrg(fx, "B", engine.RunOptions{})
	var ce *engine.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "another source instance") {
		t.Errorf("B's run resuming A's sync: err = %v, want a config error saying the destination is another instance's", err)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
		t.Errorf("rows marked deleted after B's run: %v; B's source still holds every one", got)
	}
	// ferry plan says so too: it shows what a run would do.
	if _, err := planWithOrg(fx, fx.api.URL, "B", engine.PlanOptions{}); !errors.As(err, &ce) {
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

// runAt runs fx with config url and org set: an instance of the source
// (org) at an address (url).
func runAt(fx *fixture, url, org string, opts engine.RunOptions) (*engine.Result, error) {
	fx.t.Helper()
	opts.Dest = fx.db
	if fx.port != nil {
		opts.Port = engine.PortOptions{BaseURL: fx.port.URL(), ClientID: fx.port.ClientID(), ClientSecret: fx.port.ClientSecret()}
	}
	return engine.Run(fx.t.Context(), fx.spec, orgConfig(fx, url, org), opts)
}

// planWithOrg plans a run of runAt's.
func planWithOrg(fx *fixture, url, org string, opts engine.PlanOptions) (*engine.Plan, error) {
	fx.t.Helper()
	opts.Dest = fx.db
	return engine.PlanRun(fx.t.Context(), fx.spec, orgConfig(fx, url, org), opts)
}

func orgConfig(fx *fixture, url, org string) *engine.Config {
	fx.t.Helper()
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": url, "org": org}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		fx.t.Fatal(err)
	}
	return cfg
}

// wantOtherInstance checks err is the refusal of a run (or plan) into a
// destination another instance wrote: a config error naming what tells
// instances apart (config org, not the address url) and the way out.
func wantOtherInstance(t *testing.T, what string, err error) {
	t.Helper()
	var ce *engine.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: err = %v, want a config error: the destination holds another source instance's state", what, err)
	}
	msg := err.Error()
	for _, want := range []string{"another source instance", "tells them apart: config org)", "--full-refresh"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s: error %q does not say %q", what, msg, want)
		}
	}
}

// TestAnotherInstanceMarksNothing: a complete sync of another instance
// (the config's org changed, or a second org run into the same
// destination) would mark deleted every row of the first it did not
// read, though the first's source still holds them (the delete
// threshold stops that only where they are most of the rows live when
// the sync began). The destination keeps the instance that wrote it: the
// run of another one is refused before reading anything, and only
// --full-refresh (without --streams) starts the destination over for it,
// replacing the first's rows: those the threshold allows at once, here
// (3 of the 3 live when it began) with the next sync (3 of 33).
func TestAnotherInstanceMarksNothing(t *testing.T) {
	fx := newFixture(t, orgPagedSpec, "")
	fx.json("/orgs/A/apps", map[string]any{"items": []any{map[string]any{"id": "a1"}, map[string]any{"id": "a2"}, map[string]any{"id": "a3"}}})
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	var items []any
	var bs []string
	for i := range 30 {
		items = append(items, map[string]any{"id": fmt.Sprintf("b%02d", i)})
		bs = append(bs, fmt.Sprintf("b%02d", i))
	}
	fx.json("/orgs/B/apps", map[string]any{"items": items})
	fx.takeRequests()
	_, err := runWithOrg(fx, "B", engine.RunOptions{})
	wantOtherInstance(t, "B's run into A's destination", err)
	if got := fx.takeRequests(); len(got) > 0 {
		t.Errorf("the refused run asked %v, want nothing", got)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
		t.Errorf("rows of A marked deleted by B's sync: %v; A's source still holds them", got)
	}
	// A full refresh of some streams keeps the others' state: the
	// destination stays A's.
	_, err = runWithOrg(fx, "B", engine.RunOptions{FullRefresh: true, Streams: []string{"apps"}})
	wantOtherInstance(t, "B's --full-refresh --streams run", err)
	if got := fx.takeRequests(); len(got) > 0 {
		t.Errorf("the refused run asked %v, want nothing", got)
	}
	// --full-refresh starts it over for B: B's rows are live; A's, all
	// the rows live when the sync began, are over the delete threshold,
	// kept and reported.
	res, err := runWithOrg(fx, "B", engine.RunOptions{FullRefresh: true})
	if err != nil {
		t.Fatalf("B's --full-refresh run: %v", err)
	}
	if sk, ok := res.Dest.SkippedDeletes["apps"]; !ok || sk.Stale != 3 || sk.Live != 3 {
		t.Errorf("B's full refresh: skipped %+v (%v); want 3 of 3 kept over the delete threshold", sk, ok)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE NOT _ferry_deleted ORDER BY id`); !slices.Equal(got, append([]string{"a1", "a2", "a3"}, bs...)) {
		t.Errorf("live apps %v after B's full refresh, want a1 a2 a3 b00..b29", got)
	}
	// The destination is B's now: B runs (its next sync marks A's rows,
	// 3 of 33), A is refused.
	if _, err := runWithOrg(fx, "B", engine.RunOptions{}); err != nil {
		t.Fatalf("B's next run: %v", err)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE _ferry_deleted ORDER BY id`); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Errorf("deleted apps %v after B's next sync, want A's a1 a2 a3", got)
	}
	_, err = runWithOrg(fx, "A", engine.RunOptions{})
	wantOtherInstance(t, "A's run into the destination B started over", err)
	// B's own full refresh keeps the destination B's.
	if _, err := runWithOrg(fx, "B", engine.RunOptions{FullRefresh: true}); err != nil {
		t.Fatalf("B's second --full-refresh run: %v", err)
	}
	_, err = runWithOrg(fx, "A", engine.RunOptions{})
	wantOtherInstance(t, "A's run after B's second full refresh", err)
}

const orgEventsSpec = `version: 1
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
`

// serveEvents serves each org's events after ?since=; asked lists the
// requests so far, as org>since.
func serveEvents(fx *fixture, events map[string][]map[string]any) (asked func() []string) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var seen []string
	for org, evs := range events {
		fx.routes["/orgs/"+org+"/events"] = func(w http.ResponseWriter, r *http.Request) {
			since := r.URL.Query().Get("since")
			fx.mu.Lock()
			seen = append(seen, org+">"+since)
			fx.mu.Unlock()
			out := []any{}
			for _, e := range evs {
				if e["at"].(string) > since {
					out = append(out, e)
				}
			}
			json.NewEncoder(w).Encode(out)
		}
	}
	return func() []string {
		fx.mu.Lock()
		defer fx.mu.Unlock()
		return slices.Clone(seen)
	}
}

// TestAnotherInstanceReadsFromItsOwnCursor: incremental cursors outlive
// a sync, and are the instance's that read them: a run of organisation B
// must not read from the cursor A's run saved (B's events before it would
// never be written, exit 0). It is refused before reading; with
// --full-refresh it reads from the initial cursor.
func TestAnotherInstanceReadsFromItsOwnCursor(t *testing.T) {
	fx := newFixture(t, orgEventsSpec, "")
	asked := serveEvents(fx, map[string][]map[string]any{
		"A": {{"id": "a1", "at": "2026-06-01T00:00:00Z"}},
		"B": {{"id": "b1", "at": "2026-01-01T00:00:00Z"}},
	})
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	fx.takeRequests()
	_, err := runWithOrg(fx, "B", engine.RunOptions{})
	wantOtherInstance(t, "B's run into A's destination", err)
	if got := fx.takeRequests(); len(got) > 0 {
		t.Errorf("the refused run asked %v, want nothing", got)
	}
	if _, err := runWithOrg(fx, "B", engine.RunOptions{FullRefresh: true}); err != nil {
		t.Fatalf("B's --full-refresh run: %v", err)
	}
	if got := fx.query(`SELECT id FROM nl__events WHERE id = 'b1'`); len(got) == 0 {
		t.Errorf("B's event b1 never written after its full refresh (asked %v)", asked())
	}
	if got, want := asked(), []string{"A>1970-01-01T00:00:00Z", "B>1970-01-01T00:00:00Z"}; !slices.Equal(got, want) {
		t.Errorf("asked %v, want %v: B's full refresh reads from the initial cursor", got, want)
	}
}

// TestPlanRefusesAnotherInstance: ferry plan of a run another instance
// would be refused fails as that run would; with --full-refresh it shows
// the run that starts the destination over (A's rows deleted).
func TestPlanRefusesAnotherInstance(t *testing.T) {
	fx := newFixture(t, orgPagedSpec, "")
	// Some ids in both, so that the plan's delete share stays below the
	// threshold: it counts the rows live before the run.
	a := []any{map[string]any{"id": "a1"}, map[string]any{"id": "a2"}}
	b := []any{map[string]any{"id": "b1"}}
	for i := range 8 {
		a = append(a, map[string]any{"id": fmt.Sprintf("c%d", i)})
		b = append(b, map[string]any{"id": fmt.Sprintf("c%d", i)})
	}
	fx.json("/orgs/A/apps", map[string]any{"items": a})
	fx.json("/orgs/B/apps", map[string]any{"items": b})
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	fx.takeRequests()
	_, err := planWithOrg(fx, fx.api.URL, "B", engine.PlanOptions{})
	wantOtherInstance(t, "plan of B's run", err)
	_, err = planWithOrg(fx, fx.api.URL, "B", engine.PlanOptions{FullRefresh: true, Streams: []string{"apps"}})
	wantOtherInstance(t, "plan of B's --full-refresh --streams run", err)
	if got := fx.takeRequests(); len(got) > 0 {
		t.Errorf("the refused plans asked %v, want nothing", got)
	}
	p, err := planWithOrg(fx, fx.api.URL, "B", engine.PlanOptions{FullRefresh: true})
	if err != nil {
		t.Fatalf("plan of B's --full-refresh run: %v", err)
	}
	if len(p.Tables) != 1 || p.Tables[0].Create != 1 || p.Tables[0].Delete != 2 {
		t.Errorf("plan of B's --full-refresh run: %+v, want b1 created, a1 a2 deleted", p.Tables)
	}
	// A's own plan is no refusal.
	if _, err := planWithOrg(fx, fx.api.URL, "A", engine.PlanOptions{}); err != nil {
		t.Errorf("plan of A's run: %v", err)
	}
}

// TestLegacyDestinationTakesTheRunsInstance: a destination written before
// its instance was kept (state without it) is not refused: the run takes
// it for its instance, and from then on another is refused.
func TestLegacyDestinationTakesTheRunsInstance(t *testing.T) {
	fx := newFixture(t, orgEventsSpec, "")
	serveEvents(fx, map[string][]map[string]any{
		"A": {{"id": "a1", "at": "2026-06-01T00:00:00Z"}},
		"B": {{"id": "b1", "at": "2026-01-01T00:00:00Z"}},
	})
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", strings.TrimPrefix(fx.db, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`DELETE FROM nl___ferry_state WHERE stream = '@instance'`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("the run kept its instance in %d state rows, want 1", n)
	}
	if _, err := runWithOrg(fx, "B", engine.RunOptions{}); err != nil {
		t.Fatalf("B's run into a destination that keeps no instance: %v", err)
	}
	_, err = runWithOrg(fx, "A", engine.RunOptions{})
	wantOtherInstance(t, "A's run after B took the destination", err)
	if _, err := runWithOrg(fx, "B", engine.RunOptions{}); err != nil {
		t.Fatalf("B's next run: %v", err)
	}
}

// TestNewAddressIsNotAnotherInstance: an input read only by http.base_url
// is the API's address (the --demo simulator's port, a test server, a
// proxy, a region), not whose data it is: the same org at another address
// is the same instance, and goes on from its cursor.
func TestNewAddressIsNotAnotherInstance(t *testing.T) {
	fx := newFixture(t, orgEventsSpec, "")
	asked := serveEvents(fx, map[string][]map[string]any{"A": {{"id": "a1", "at": "2026-06-01T00:00:00Z"}}})
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	moved := httptest.NewServer(fx.api.Config.Handler)
	defer moved.Close()
	if _, err := runAt(fx, moved.URL, "A", engine.RunOptions{}); err != nil {
		t.Fatalf("A's run at another address: %v", err)
	}
	if got, want := asked(), []string{"A>1970-01-01T00:00:00Z", "A>2026-06-01T00:00:00Z"}; !slices.Equal(got, want) {
		t.Errorf("asked %v, want %v: the second run goes on from the first's cursor", got, want)
	}
	if _, err := planWithOrg(fx, moved.URL, "A", engine.PlanOptions{}); err != nil {
		t.Errorf("plan of A's run at another address: %v", err)
	}

	// An unfinished sync, too, is resumed at another address.
	fx = newFixture(t, orgPagedSpec, "")
	fx.json("/orgs/A/apps", map[string]any{"items": []any{map[string]any{"id": "a1"}}, "next": "/orgs/A/apps/p2"})
	fx.raw("/orgs/A/apps/p2", http.StatusBadRequest, `{"message": "no"}`)
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err == nil {
		t.Fatal("the run with a failed page exited 0")
	}
	fx.takeRequests()
	fx.json("/orgs/A/apps/p2", map[string]any{"items": []any{map[string]any{"id": "a2"}}})
	moved = httptest.NewServer(fx.api.Config.Handler)
	defer moved.Close()
	if _, err := runAt(fx, moved.URL, "A", engine.RunOptions{}); err != nil {
		t.Fatalf("A's run resuming its sync at another address: %v", err)
	}
	if got := fx.takeRequests(); !slices.Equal(got, []string{"/orgs/A/apps/p2"}) {
		t.Errorf("the resumed run asked %v, want only the page it failed on", got)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE NOT _ferry_deleted ORDER BY id`); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("live apps %v, want a1 a2", got)
	}
}

const orgPortSpec = orgHead + `  items:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /orgs/${ config.org }/items
      query: {since: '${ cursor }'}
tables:
  items: {from: items, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - blueprint: item
      from: items
      identifier: .id
      properties: {v: .v}
`

// TestAnotherInstancePortCursors: Port keeps each instance's entities
// apart (their owner), but the cursors of the streams feeding it are kept
// in the table destination: B's run there must not read from A's cursor
// (B's items below it would never reach Port). It is refused before
// reading or writing anything; B's full refresh reads from the initial
// cursor and writes B's entities beside A's.
func TestAnotherInstancePortCursors(t *testing.T) {
	fx := newFixture(t, orgPortSpec, itemBlueprint)
	serveSince(fx, "/orgs/A/items", map[string]any{"id": "a1", "updated": "5", "v": "a"})
	serveSince(fx, "/orgs/B/items", map[string]any{"id": "b1", "updated": "3", "v": "b"})
	if _, err := runAt(fx, fx.api.URL, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	fx.takeRequests()
	catalog := string(fx.port.Catalog().JSON())
	_, err := runAt(fx, fx.api.URL, "B", engine.RunOptions{})
	wantOtherInstance(t, "B's run into A's destination", err)
	if got := fx.takeRequests(); len(got) > 0 {
		t.Errorf("the refused run asked %v, want nothing", got)
	}
	if string(fx.port.Catalog().JSON()) != catalog {
		t.Error("the refused run changed the Port catalog")
	}
	if _, err := runAt(fx, fx.api.URL, "B", engine.RunOptions{FullRefresh: true}); err != nil {
		t.Fatalf("B's --full-refresh run: %v", err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"a1", "b1"}) {
		t.Errorf("item entities %v, want A's a1 and B's b1", got)
	}
}
