package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// events is an incremental API: records changed after ?since=, sorted by
// their cursor (.at) and paged by offset, as most REST APIs are.
type events struct {
	mu  sync.Mutex
	all []map[string]any
}

func (e *events) set(id int, at, n string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.all {
		if r["id"] == id {
			r["at"], r["n"] = at, n
			return
		}
	}
	e.all = append(e.all, map[string]any{"id": id, "at": at, "n": n})
}

func (e *events) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []map[string]any
	for _, x := range e.all {
		if x["at"].(string) > r.URL.Query().Get("since") {
			out = append(out, x)
		}
	}
	slices.SortStableFunc(out, func(a, b map[string]any) int {
		return cmpString(a["at"].(string), b["at"].(string))
	})
	var off, limit int
	fmt.Sscan(r.URL.Query().Get("offset"), &off)
	fmt.Sscan(r.URL.Query().Get("limit"), &limit)
	if limit == 0 {
		limit = len(out)
	}
	json.NewEncoder(w).Encode(out[min(off, len(out)):min(off+limit, len(out))])
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

const incLossSpec = specHead + `streams:
  events:
    incremental: {cursor: .at, initial: "0"}
    request:
      path: /events
      query: {since: '${ cursor }'}
    paginate: {type: offset, param: offset, size: 2, size_param: limit}
tables:
  events: {from: events, primary_key: [id], row: '{id, n: (.n | tonumber)}'}
`

// TestIncrementalFailedRecordOutlivesStaleSync: a record of an incremental
// stream that failed its mapping is not passed by the saved cursor. A run
// that comes after --resume-within (a daily schedule: 24 h and a minute
// later) starts a new sync; it must still ask for that record, not start
// after it and exit 0 with the record never written.
func TestIncrementalFailedRecordOutlivesStaleSync(t *testing.T) {
	fx := newFixture(t, incLossSpec, "")
	src := &events{}
	src.set(1, "1", "1")
	src.set(2, "2", "two") // not a number: the row mapping fails
	src.set(3, "3", "3")
	fx.mu.Lock()
	fx.routes["/events"] = src.serve
	fx.mu.Unlock()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) func() time.Time { return func() time.Time { return start.Add(d) } }
	_, err := fx.run(engine.RunOptions{Now: at(0)})
	if re := runErrorOf(t, err); len(re.Failures) != 1 {
		t.Fatalf("failures = %v, want record 2", re.Failures)
	}
	// The next day, the record is still broken: the run must say so.
	_, err = fx.run(engine.RunOptions{Now: at(24*time.Hour + time.Minute)})
	if err == nil {
		t.Fatalf("a new sync after the stale one exited 0; events = %v: record 2 is lost for good",
			fx.query(`SELECT id FROM "nl__events" ORDER BY id`))
	}
	runErrorOf(t, err)
	// Fixed at the source: the day after, it is written.
	src.set(2, "2", "2")
	if _, err := fx.run(engine.RunOptions{Now: at(48*time.Hour + 2*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id || ':' || n FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1:1", "2:2", "3:3"}) {
		t.Errorf("events = %v, want 1:1 2:2 3:3", got)
	}
}

// TestRetriedRecordIsTheOneThatFailed: a resumed run tries again the
// record that failed, not whatever record now stands at its place. Between
// the runs a record of the first page changed, so it moved to the end of
// the list (sorted by cursor) and every record after it moved up one: the
// failed record is no longer where it was.
func TestRetriedRecordIsTheOneThatFailed(t *testing.T) {
	fx := newFixture(t, incLossSpec, "")
	src := &events{}
	src.set(1, "1", "1")
	src.set(2, "2", "2")
	src.set(3, "3", "three") // page 2, index 0: fails
	src.set(4, "4", "4")
	fx.mu.Lock()
	fx.routes["/events"] = src.serve
	fx.mu.Unlock()
	_, err := fx.run(engine.RunOptions{})
	if re := runErrorOf(t, err); len(re.Failures) != 1 {
		t.Fatalf("failures = %v, want record 3", re.Failures)
	}
	src.set(1, "5", "10") // record 1 changed: now last
	// Record 3 is still broken: the resumed run must say so, and write
	// record 1's change.
	_, err = fx.run(engine.RunOptions{})
	if err == nil {
		t.Errorf("resumed run exited 0 with record 3 still broken")
	}
	if got := fx.query(`SELECT id || ':' || n FROM "nl__events" ORDER BY id`); !slices.Contains(got, "1:10") {
		t.Errorf("events = %v: record 1's change (read by the resumed run) was not written", got)
	}
	src.set(3, "3", "3")
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id || ':' || n FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1:10", "2:2", "3:3", "4:4"}) {
		t.Errorf("events = %v, want 1:10 2:2 3:3 4:4", got)
	}
}

// TestResumedIncrementalParentWritesWhatChanged: a resumed run re-reads an
// incremental parent's committed pages to drive its children, without
// writing them again. A parent that changed in between is in those pages
// with its new cursor: the cursor saved at the end covers it, so its new
// version must be written and its children read again, or no later run
// asks for them again.
func TestResumedIncrementalParentWritesWhatChanged(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  tickets:
    incremental: {cursor: .at, initial: "0"}
    request:
      path: /events
      query: {since: '${ cursor }'}
  comments:
    for_each: tickets
    request: {path: '/tickets/${ parent.id }/comments'}
tables:
  tickets: {from: tickets, primary_key: [id], row: '{id, n}'}
  comments: {from: comments, primary_key: [id]}
`, "")
	src := &events{}
	src.set(1, "1", "a")
	src.set(2, "2", "a")
	var failing sync.Mutex
	broken := true
	fx.mu.Lock()
	fx.routes["/events"] = src.serve
	comments1 := []any{map[string]any{"id": 10}}
	fx.routes["/tickets/1/comments"] = func(w http.ResponseWriter, r *http.Request) {
		failing.Lock()
		defer failing.Unlock()
		json.NewEncoder(w).Encode(comments1)
	}
	fx.routes["/tickets/2/comments"] = func(w http.ResponseWriter, r *http.Request) {
		failing.Lock()
		defer failing.Unlock()
		if broken {
			http.Error(w, "down", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode([]any{map[string]any{"id": 20}})
	}
	fx.mu.Unlock()
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	failing.Lock()
	broken = false
	comments1 = append(comments1, map[string]any{"id": 11})
	failing.Unlock()
	src.set(1, "3", "b") // ticket 1 changed between the runs: a comment came
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Ticket 1 and its comment 10 are rewritten by the partitions that
	// committed them: no duplicate of the sync.
	if len(res.Summary.Duplicates) != 0 {
		t.Errorf("duplicates = %+v, want none", res.Summary.Duplicates)
	}
	// The next run asks only what changed after the saved cursor.
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id || ':' || n FROM "nl__tickets" ORDER BY id`); !slices.Equal(got, []string{"1:b", "2:a"}) {
		t.Errorf("tickets = %v, want 1:b 2:a (ticket 1's change lost)", got)
	}
	if got := fx.query(`SELECT id FROM "nl__comments" ORDER BY id`); !slices.Equal(got, []string{"10", "11", "20"}) {
		t.Errorf("comments = %v, want 10 11 20 (the comment that changed ticket 1 lost)", got)
	}
}
