package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// epochConversations serves GET /conversations as Intercom-style APIs do:
// updated_at in epoch seconds (or milliseconds, per unit), ?updated_since=
// keeping those updated at or after it (read in the same unit), sorted by
// creation, newest first, two a page with a Link header to the next.
// afterPage runs once a page is served: the API's world goes on while a
// run reads.
type epochConversations struct {
	mu        sync.Mutex
	unit      time.Duration // of updated_at and updated_since
	exclusive bool          // updated_since keeps those updated after it only
	all       []map[string]any
	afterPage func(page int)
}

func (e *epochConversations) stamp(at time.Time) json.Number {
	return json.Number(strconv.FormatInt(at.UnixNano()/int64(e.unit), 10))
}

// set opens conversation id at created, or updates it at updated.
func (e *epochConversations) set(id int, created, updated time.Time) {
	for _, x := range e.all {
		if x["id"] == id {
			x["updated_at"] = e.stamp(updated)
			return
		}
	}
	e.all = append(e.all, map[string]any{"id": id, "created_at": e.stamp(created), "updated_at": e.stamp(updated)})
}

func (e *epochConversations) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := r.URL.Query()
	since, err := strconv.ParseInt(q.Get("updated_since"), 10, 64)
	if err != nil {
		http.Error(w, `{"errors": [{"code": "parameter_invalid", "message": "updated_since must be an integer"}]}`, http.StatusBadRequest)
		return
	}
	var out []map[string]any
	for _, x := range e.all {
		if at, _ := x["updated_at"].(json.Number).Int64(); at > since || at == since && !e.exclusive {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b map[string]any) int {
		x, _ := a["created_at"].(json.Number).Int64()
		y, _ := b["created_at"].(json.Number).Int64()
		return -cmpInt(x, y)
	})
	page := 1
	fmt.Sscan(q.Get("page"), &page)
	lo, hi := min((page-1)*2, len(out)), min(page*2, len(out))
	if hi < len(out) {
		next := *r.URL
		nq := next.Query()
		nq.Set("page", strconv.Itoa(page+1))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s>; rel="next"`, r.Host, next.String()))
	}
	json.NewEncoder(w).Encode(out[lo:hi])
	if e.afterPage != nil {
		e.afterPage(page)
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

const epochSpec = specHead + `streams:
  conversations:
    incremental: {cursor: .updated_at, initial: %s}
    request:
      path: /conversations
      query: {updated_since: '${ cursor }'}
    paginate: {type: link_header}
tables:
  conversations: {from: conversations, primary_key: [id], row: '{id, updated_at}'}
`

// fourConversations opens conversations 1 to 4 on March 1 to 4, 09:00 UTC.
func (e *epochConversations) fourConversations() {
	for i := range 4 {
		at := time.Date(2026, 3, 1+i, 9, 0, 0, 0, time.UTC)
		e.set(i+1, at, at)
	}
}

// TestEpochCursorStopsAtTheRunsStart: TestCursorStopsAtTheRunsStart with
// the times written as epoch seconds. While a run reads, a conversation is
// opened (it goes to the first page, already read) and an old one is
// replied to (read on a later page). The largest updated_at read is the
// reply's, after the new conversation's: saved as the cursor, it passes
// the new one and no run ever reads it. An initial cursor in epoch seconds
// says the cursor is a time: it is held at the run's start as an RFC 3339
// one is.
func TestEpochCursorStopsAtTheRunsStart(t *testing.T) {
	fx := newFixture(t, fmt.Sprintf(epochSpec, "1767225600"), "")
	api := &epochConversations{unit: time.Second}
	api.fourConversations()
	fx.mu.Lock()
	fx.routes["/conversations"] = api.serve
	fx.mu.Unlock()
	start := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	api.afterPage = func(page int) {
		if page == 1 {
			api.set(5, start.Add(5*time.Second), start.Add(5*time.Second))                    // opened
			api.set(1, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), start.Add(6*time.Second)) // replied to
			api.afterPage = nil
		}
	}
	for _, now := range []time.Time{start, start.Add(time.Hour)} {
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__conversations" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("conversations = %v, want 1 to 5 (conversation 5, opened while the first run read, lost)", got)
	}
}

// TestEpochCursorFromTheFuture: a conversation stamped two hours ahead (a
// client's clock, in epoch milliseconds) is read; saved as the cursor, the
// next run would ask from two hours after it started, and every
// conversation updated in between would be passed. Held at the run's
// start, written in milliseconds.
func TestEpochCursorFromTheFuture(t *testing.T) {
	fx := newFixture(t, fmt.Sprintf(epochSpec, "1767225600000"), "")
	api := &epochConversations{unit: time.Millisecond}
	api.fourConversations()
	start := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	api.set(5, start.Add(-time.Hour), start.Add(2*time.Hour)) // skewed
	fx.mu.Lock()
	fx.routes["/conversations"] = api.serve
	fx.mu.Unlock()
	for i, now := range []time.Time{start, start.Add(time.Hour), start.Add(3 * time.Hour)} {
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
		api.mu.Lock()
		api.set(6+i, now.Add(time.Minute), now.Add(time.Minute))
		api.mu.Unlock()
	}
	if got := fx.query(`SELECT id FROM "nl__conversations" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5", "6", "7"}) {
		t.Errorf("conversations = %v, want 1 to 7 (6, updated before the skewed stamp, lost)", got)
	}
}

// TestEpochCursorInAnotherUnit: one conversation's updated_at is in
// milliseconds where the others' (and the API's filter) are in seconds, as
// after a field's migration. By value it is the largest by far: saved, the
// next run would ask from a time thousands of years ahead, read nothing and
// exit 0 every run after. Read in the initial cursor's unit it is a time
// after the run began: held there.
func TestEpochCursorInAnotherUnit(t *testing.T) {
	fx := newFixture(t, fmt.Sprintf(epochSpec, "1767225600"), "")
	api := &epochConversations{unit: time.Second}
	api.fourConversations()
	at := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	api.all = append(api.all, map[string]any{"id": 5, "created_at": api.stamp(at), "updated_at": json.Number(strconv.FormatInt(at.UnixMilli(), 10))})
	fx.mu.Lock()
	fx.routes["/conversations"] = api.serve
	fx.mu.Unlock()
	start := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	for i, now := range []time.Time{start, start.Add(time.Hour)} {
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
		api.mu.Lock()
		api.set(6+i, now.Add(time.Minute), now.Add(time.Minute))
		api.mu.Unlock()
	}
	if got := fx.query(`SELECT id FROM "nl__conversations" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5", "6"}) {
		t.Errorf("conversations = %v, want 1 to 6 (6, after the millisecond stamp was saved, lost)", got)
	}
}

// TestEpochCursorLookback: a lookback on a cursor in epoch seconds (an
// initial cursor written so) asks from that long before the saved one, in
// seconds, and reads a conversation the API listed only after the run
// that passed its time; it failed the second run as "not a time".
func TestEpochCursorLookback(t *testing.T) {
	fx := newFixture(t, strings.Replace(fmt.Sprintf(epochSpec, "1767225600"), "initial: 1767225600}", "initial: 1767225600, lookback: 1h}", 1), "")
	api := &epochConversations{unit: time.Second}
	api.fourConversations()
	start := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	api.set(5, start.Add(-5*time.Minute), start.Add(-5*time.Minute))
	var asked []string
	fx.mu.Lock()
	fx.routes["/conversations"] = func(w http.ResponseWriter, r *http.Request) {
		api.mu.Lock()
		if r.URL.Query().Get("page") == "" {
			asked = append(asked, r.URL.Query().Get("updated_since"))
		}
		api.mu.Unlock()
		api.serve(w, r)
	}
	fx.mu.Unlock()
	for i, now := range []time.Time{start, start.Add(time.Hour), start.Add(2 * time.Hour)} {
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if i == 0 {
			api.mu.Lock()
			api.set(6, start.Add(-10*time.Minute), start.Add(-10*time.Minute)) // listed late
			api.mu.Unlock()
		}
	}
	if got := fx.query(`SELECT id FROM "nl__conversations" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5", "6"}) {
		t.Errorf("conversations = %v, want 1 to 6 (6, listed late, lost)", got)
	}
	saved := strconv.FormatInt(start.Add(-5*time.Minute).Unix(), 10)
	looked := strconv.FormatInt(start.Add(-65*time.Minute).Unix(), 10)
	if want := []string{"1767225600", looked, looked}; !slices.Equal(asked, want) {
		t.Errorf("asked updated_since %v, want %v (an hour before the saved %s, which never moves back)", asked, want, saved)
	}
}

// TestEpochCursorInTheRunsFirstSecond: the API stamps in whole seconds and
// filters updated_since exclusively. The run starts at 10:00:00.3; a
// conversation replied to at 10:00:00.1 (stamped 10:00:00, the largest
// read) and one opened at 10:00:00.5 onto the first page, already read
// (stamped 10:00:00 too). The largest cursor, 10:00:00, is not after the
// run began, but saved as read the next run asks after it and never reads
// the new conversation: it is held a second before the run began, as a
// cursor after it is.
func TestEpochCursorInTheRunsFirstSecond(t *testing.T) {
	fx := newFixture(t, fmt.Sprintf(epochSpec, "1767225600"), "")
	api := &epochConversations{unit: time.Second, exclusive: true}
	api.fourConversations()
	second := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	start := second.Add(300 * time.Millisecond)
	api.set(1, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), second.Add(100*time.Millisecond)) // replied to
	api.afterPage = func(page int) {
		if page == 1 {
			api.set(5, second.Add(500*time.Millisecond), second.Add(500*time.Millisecond)) // opened
			api.afterPage = nil
		}
	}
	fx.mu.Lock()
	fx.routes["/conversations"] = api.serve
	fx.mu.Unlock()
	for _, now := range []time.Time{start, start.Add(time.Hour)} {
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__conversations" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("conversations = %v, want 1 to 5 (conversation 5, opened in the first run's first second, lost)", got)
	}
}
