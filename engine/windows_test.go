package engine_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// auditAPI serves events in [start, end) windows, refusing a window longer
// than 24 h as audit-log APIs do; events can be added between runs.
type auditAPI struct {
	mu sync.Mutex
	// clock and lag: an event is listed only once clock() is lag past its
	// time (CloudTrail and Okta list events minutes after they happen).
	clock   func() time.Time
	lag     time.Duration
	events  []map[string]any // {id, at}
	windows []string         // "start..end" asked, in order
	fail    map[string]bool  // window start -> answer 500
	down    map[string]bool  // window start -> answer 502
}

func (a *auditAPI) handle(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	q := r.URL.Query()
	start, err1 := time.Parse(time.RFC3339, q.Get("start_time"))
	end, err2 := time.Parse(time.RFC3339, q.Get("end_time"))
	if err1 != nil || err2 != nil || end.Sub(start) > 24*time.Hour || !start.Before(end) {
		http.Error(w, `{"error": "window must be at most 24h"}`, http.StatusBadRequest)
		return
	}
	a.windows = append(a.windows, q.Get("start_time")+".."+q.Get("end_time"))
	if a.clock != nil {
		w.Header().Set("Date", a.clock().UTC().Format(http.TimeFormat))
	}
	if a.fail[q.Get("start_time")] {
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	if a.down[q.Get("start_time")] {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	out := []any{}
	for _, e := range a.events {
		at, _ := time.Parse(time.RFC3339, e["at"].(string))
		if a.clock != nil && a.clock().Before(at.Add(a.lag)) {
			continue // not listed yet
		}
		if !at.Before(start) && at.Before(end) {
			out = append(out, e)
		}
	}
	json.NewEncoder(w).Encode(out)
}

func (a *auditAPI) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.windows
	a.windows = nil
	return out
}

const auditSpec = specHead + `streams:
  events:
    incremental:
      initial: "2026-01-01T00:00:00Z"
      window: {step: 24h, lookback: 1h}
    request:
      path: /audit
      query:
        start_time: ${ window.start }
        end_time: ${ window.end }
tables:
  events: {from: events, primary_key: [id], mode: append}
`

// TestTimeWindows: the first run asks every window from the initial time to
// now, one chain each, none longer than the API allows; a later run asks
// only the windows after the saved cursor (minus the lookback) and gets
// exactly the new events; a failed window is asked again by the next run,
// the finished ones are not.
func TestTimeWindows(t *testing.T) {
	api := &auditAPI{fail: map[string]bool{}}
	fx := newFixture(t, strings.Replace(auditSpec, "mode: append", "on_duplicate: warn", 1), "")
	serveAudit(fx, api)
	day := auditDay
	now := auditNow
	res, err := fx.run(engine.RunOptions{Now: now(3, 0)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{day(0, 0) + ".." + day(1, 0), day(1, 0) + ".." + day(2, 0), day(2, 0) + ".." + day(3, 0)}
	if got := api.take(); !slices.Equal(got, want) {
		t.Errorf("first run asked %v, want %v", got, want)
	}
	if s := res.Summary.Streams[0]; s.WindowsDone != 3 || s.WindowsTotal != 3 {
		t.Errorf("windows %d of %d, want 3 of 3", s.WindowsDone, s.WindowsTotal)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("events = %v", got)
	}
	// A day and a half later, two new events; the second window of the new
	// run fails.
	api.events = append(api.events, map[string]any{"id": 4, "at": day(3, 2)}, map[string]any{"id": 5, "at": day(4, 6)})
	api.fail[day(3, 23)] = true
	_, err = fx.run(engine.RunOptions{Now: now(4, 12)})
	runErrorOf(t, err)
	if got := api.take(); !slices.Equal(got, []string{day(2, 23) + ".." + day(3, 23), day(3, 23) + ".." + day(4, 12)}) {
		t.Errorf("second run asked %v: want the windows after the cursor less the 1h lookback", got)
	}
	delete(api.fail, day(3, 23))
	if _, err := fx.run(engine.RunOptions{Now: now(4, 13)}); err != nil {
		t.Fatalf("third run: %v", err)
	}
	if got := api.take(); !slices.Equal(got, []string{day(3, 23) + ".." + day(4, 12)}) {
		t.Errorf("third run asked %v: want only the window that failed", got)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("events = %v, want every event once", got)
	}
}

// TestPartitions: a stream of values (from config, or a range) drives its
// children like any parent: one chain per value, parent.value in
// templates, checkpointed.
func TestPartitions(t *testing.T) {
	fx := newFixture(t, `version: 1
name: nl
config:
  url: {required: true}
  regions: {default: "eu, us"}
http:
  base_url: ${ config.url }
streams:
  regions:
    partitions:
      values: ${ map(split(config.regions, ","), trim(#)) }
  accounts:
    for_each: regions
    request:
      path: /regions/${ parent.value }/accounts
  months:
    partitions:
      range: {from: 1, to: 3}
  invoices:
    for_each: months
    request:
      path: /invoices/${ parent.value }
tables:
  accounts: {from: accounts, row: '{region: $parent.value, id}', primary_key: [region, id]}
  invoices: {from: invoices, row: '{month: $parent.value, id}', primary_key: [month, id]}
  regions: {from: regions, primary_key: [value]}
`, "")
	fx.json("/regions/eu/accounts", []any{map[string]any{"id": "a1"}})
	fx.json("/regions/us/accounts", []any{map[string]any{"id": "a2"}, map[string]any{"id": "a3"}})
	for _, m := range []string{"1", "2", "3"} {
		fx.json("/invoices/"+m, []any{map[string]any{"id": "i" + m}})
	}
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT region || ':' || id FROM "nl__accounts" ORDER BY 1`); !slices.Equal(got, []string{"eu:a1", "us:a2", "us:a3"}) {
		t.Errorf("accounts = %v", got)
	}
	if got := fx.query(`SELECT month || ':' || id FROM "nl__invoices" ORDER BY 1`); !slices.Equal(got, []string{"1:i1", "2:i2", "3:i3"}) {
		t.Errorf("invoices = %v", got)
	}
	if got := fx.query(`SELECT value FROM "nl__regions" ORDER BY 1`); !slices.Equal(got, []string{"eu", "us"}) {
		t.Errorf("regions = %v", got)
	}
}

// TestIncrementalParent: a parent's cursor is saved only once every child
// chain of the records that moved it has finished: a failed child keeps it
// back, so the next run asks again and nothing is skipped; after a clean
// run, only changed parents are read.
func TestIncrementalParent(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  tickets:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /tickets
      query: {since: '${ cursor }'}
  comments:
    for_each: tickets
    request:
      path: /tickets/${ parent.id }/comments
tables:
  comments: {from: comments, row: '{ticket: $parent.id, id}', mode: append}
`, "")
	tickets := []map[string]any{{"id": "t1", "updated": "1"}, {"id": "t2", "updated": "2"}}
	fx.mu.Lock()
	fx.routes["/tickets"] = func(w http.ResponseWriter, r *http.Request) {
		fx.mu.Lock()
		var out []any
		for _, tk := range tickets {
			if tk["updated"].(string) > r.URL.Query().Get("since") {
				out = append(out, tk)
			}
		}
		fx.mu.Unlock()
		json.NewEncoder(w).Encode(out)
	}
	fx.mu.Unlock()
	fx.json("/tickets/t1/comments", []any{map[string]any{"id": "c1"}})
	fx.raw("/tickets/t2/comments", http.StatusBadGateway, "down")
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	fx.json("/tickets/t2/comments", []any{map[string]any{"id": "c2"}})
	fx.takeRequests()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := fx.takeRequests(); !slices.Equal(got, []string{"/tickets", "/tickets/t2/comments"}) {
		t.Errorf("second run asked %v, want the tickets again and t2's comments only", got)
	}
	if got := fx.query(`SELECT ticket || ':' || id FROM "nl__comments" ORDER BY 1`); !slices.Equal(got, []string{"t1:c1", "t2:c2"}) {
		t.Errorf("comments = %v, want each once", got)
	}
	// Clean now: the cursor moved to 2; only a ticket updated since is read.
	fx.mu.Lock()
	tickets = append(tickets, map[string]any{"id": "t3", "updated": "3"})
	fx.mu.Unlock()
	fx.json("/tickets/t3/comments", []any{map[string]any{"id": "c3"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.takeRequests(); !slices.Equal(got, []string{"/tickets", "/tickets/t3/comments"}) {
		t.Errorf("third run asked %v, want only t3's comments", got)
	}
}

// TestIncrementalParentCursorWaitsForChildren: even when the next run does
// not resume (the failed sync is too old), the parent's cursor did not move
// past the record whose child failed, so that child is asked for again.
func TestIncrementalParentCursorWaitsForChildren(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  tickets:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /tickets
      query: {since: '${ cursor }'}
  comments:
    for_each: tickets
    request:
      path: /tickets/${ parent.id }/comments
tables:
  comments: {from: comments, row: '{ticket: $parent.id, id}', primary_key: [ticket, id]}
`, "")
	serveTicketsSince(fx)
	fx.json("/tickets/t1/comments", []any{map[string]any{"id": "c1"}})
	fx.raw("/tickets/t2/comments", http.StatusBadGateway, "down")
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := fx.run(engine.RunOptions{Now: func() time.Time { return start }})
	runErrorOf(t, err)
	fx.json("/tickets/t2/comments", []any{map[string]any{"id": "c2"}})
	if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return start.Add(48 * time.Hour) }}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT ticket || ':' || id FROM "nl__comments" ORDER BY 1`); !slices.Equal(got, []string{"t1:c1", "t2:c2"}) {
		t.Errorf("comments = %v: t2's were skipped by a cursor saved past it", got)
	}
}

// serveTicketsSince serves tickets t1 (updated "1") and t2 (updated "2"),
// those updated after ?since=.
func serveTicketsSince(fx *fixture) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.routes["/tickets"] = func(w http.ResponseWriter, r *http.Request) {
		var out []any
		for _, tk := range []map[string]any{{"id": "t1", "updated": "1"}, {"id": "t2", "updated": "2"}} {
			if tk["updated"].(string) > r.URL.Query().Get("since") {
				out = append(out, tk)
			}
		}
		json.NewEncoder(w).Encode(out)
	}
}

// serveAudit serves api at /audit with three events: on days 0, 1 and 2
// (see auditDay).
func serveAudit(fx *fixture, api *auditAPI) {
	fx.mu.Lock()
	fx.routes["/audit"] = api.handle
	fx.mu.Unlock()
	api.events = []map[string]any{{"id": 1, "at": auditDay(0, 5)}, {"id": 2, "at": auditDay(1, 7)}, {"id": 3, "at": auditDay(2, 23)}}
}

// auditDay is hour h of day d of January 2026 (from 0), RFC 3339.
func auditDay(d, h int) string {
	return time.Date(2026, 1, 1+d, h, 0, 0, 0, time.UTC).Format(time.RFC3339)
}

// auditNow is a clock stopped at hour h of day d of January 2026.
func auditNow(d, h int) func() time.Time {
	return func() time.Time { return time.Date(2026, 1, 1+d, h, 0, 0, 0, time.UTC) }
}

// TestWindowLookbackReadsLateEvents: an audit API lists an event minutes
// after it happened, so a run can end its last window past an event it
// was not shown. The window's end is saved as the cursor: only the
// lookback makes the next run ask for that event, and a window without
// one is warned of.
func TestWindowLookbackReadsLateEvents(t *testing.T) {
	api := &auditAPI{lag: 5 * time.Minute}
	fx := newFixture(t, strings.Replace(auditSpec, "mode: append", "on_duplicate: warn", 1), "")
	serveAudit(fx, api)
	api.events = []map[string]any{{"id": 1, "at": auditDay(0, 5)}, {"id": 2, "at": time.Date(2026, 1, 1, 23, 58, 0, 0, time.UTC).Format(time.RFC3339)}}
	for _, now := range []func() time.Time{auditNow(1, 0), auditNow(1, 2)} {
		api.mu.Lock()
		api.clock = now
		api.mu.Unlock()
		if _, err := fx.run(engine.RunOptions{Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("events = %v, want 1 2 (event 2, listed late, lost)", got)
	}
	bare, err := engine.Parse("bare.yaml", []byte(strings.Replace(strings.Replace(auditSpec, "mode: append", "on_duplicate: warn", 1), ", lookback: 1h", "", 1)), "")
	if err != nil {
		t.Fatal(err)
	}
	if ws := bare.Warnings(); len(ws) != 1 || !strings.Contains(ws[0].Error(), "without lookback") {
		t.Errorf("a window without lookback warned %v, want one warning of it", ws)
	}
}

// TestWindowCursorStopsAtTheAPIsClock: ferry's host clock is two hours
// ahead of the API's (a clock kept in local time taken for UTC). The last
// window ends at the run's start by ferry's clock, in the API's future:
// events the API stamps in the two hours after it answered are before
// that end, and an hour of lookback does not reach them. The API's Date
// says when, by its clock, the window was read: the cursor stays there.
func TestWindowCursorStopsAtTheAPIsClock(t *testing.T) {
	apiNow := time.Date(2026, 1, 3, 10, 0, 0, 0, time.UTC)
	api := &auditAPI{clock: func() time.Time { return apiNow }}
	fx := newFixture(t, strings.Replace(auditSpec, "mode: append", "on_duplicate: warn", 1), "")
	serveAudit(fx, api)
	api.events = api.events[:2] // 1 and 2, before the first run
	ahead := 2 * time.Hour
	run := func() {
		t.Helper()
		api.mu.Lock()
		now := apiNow.Add(ahead)
		api.mu.Unlock()
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	api.mu.Lock()
	api.events = append(api.events, map[string]any{"id": 3, "at": time.Date(2026, 1, 3, 10, 30, 0, 0, time.UTC).Format(time.RFC3339)})
	apiNow = apiNow.Add(2 * time.Hour)
	api.mu.Unlock()
	run()
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("events = %v, want 1 2 3 (event 3, stamped by the API after the first run read, lost)", got)
	}
}
