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

// zonedTickets is an incremental API that stamps records in the account's
// time zone with its offset, as Jira does ("2026-10-25T02:50:00.000+0200"
// in Europe/Berlin): the offset changes with daylight saving time, so the
// text of the stamps does not sort as the instants do. ?since= is an
// instant, inclusive (as GitHub's since is); records come sorted by it.
type zonedTickets struct {
	mu  sync.Mutex
	all map[int]map[string]any
	loc *time.Location
}

// jiraStamp is Jira's timestamp layout.
const jiraStamp = "2006-01-02T15:04:05.000-0700"

func (z *zonedTickets) set(id int, at time.Time, n string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.all[id] = map[string]any{"id": id, "updated": at.In(z.loc).Format(jiraStamp), "n": n}
}

func (z *zonedTickets) serve(w http.ResponseWriter, r *http.Request) {
	z.mu.Lock()
	defer z.mu.Unlock()
	since, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("since"))
	if err != nil {
		if since, err = time.Parse(jiraStamp, r.URL.Query().Get("since")); err != nil {
			http.Error(w, `{"message": "since is not a date"}`, http.StatusBadRequest)
			return
		}
	}
	type stamped struct {
		at  time.Time
		rec map[string]any
	}
	var out []stamped
	for _, x := range z.all {
		at, _ := time.Parse(jiraStamp, x["updated"].(string))
		if !at.Before(since) {
			out = append(out, stamped{at, x})
		}
	}
	slices.SortFunc(out, func(a, b stamped) int { return a.at.Compare(b.at) })
	recs := []any{}
	for _, s := range out {
		recs = append(recs, s.rec)
	}
	json.NewEncoder(w).Encode(recs)
}

// TestResumedCursorComparesInstants: a resumed run re-reads an incremental
// parent's committed pages and writes again the records that changed
// since (their cursor is later than any those pages held). Across the
// night the clocks go back, a ticket that changed after the last one
// committed reads earlier as text ("02:10+0100" after "02:50+0200"): it
// must still count as changed, or its new version and its new comment are
// never written (the cursor saved at the end, of a later ticket, passes
// it, and the next run does not ask for it again).
func TestResumedCursorComparesInstants(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	fx := newFixture(t, specHead+`streams:
  tickets:
    incremental: {cursor: .updated, initial: "2026-10-01T00:00:00Z"}
    request:
      path: /tickets
      query: {since: '${ cursor }'}
  comments:
    for_each: tickets
    request: {path: '/tickets/${ parent.id }/comments'}
tables:
  tickets: {from: tickets, primary_key: [id], row: '{id, n}'}
  comments: {from: comments, primary_key: [id]}
`, "")
	src := &zonedTickets{all: map[int]map[string]any{}, loc: berlin}
	utc := func(h, m int) time.Time { return time.Date(2026, 10, 25, h, m, 0, 0, time.UTC) }
	src.set(1, utc(0, 10), "a") // 02:10+0200, summer time
	src.set(2, utc(0, 50), "a") // 02:50+0200
	var mu sync.Mutex
	broken := true
	comments1 := []any{map[string]any{"id": 10}}
	fx.mu.Lock()
	fx.routes["/tickets"] = src.serve
	fx.routes["/tickets/1/comments"] = func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(comments1)
	}
	fx.routes["/tickets/2/comments"] = func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if broken {
			http.Error(w, "down", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode([]any{map[string]any{"id": 20}})
	}
	fx.routes["/tickets/3/comments"] = func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]any{})
	}
	fx.mu.Unlock()
	// Ticket 2's comments fail: the tickets page is committed, the cursor not.
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	mu.Lock()
	broken = false
	comments1 = append(comments1, map[string]any{"id": 11})
	mu.Unlock()
	src.set(1, utc(1, 10), "b") // 02:10+0100, winter time: after ticket 2
	src.set(3, utc(2, 0), "a")  // 03:00+0100
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id || ':' || n FROM "nl__tickets" ORDER BY id`); !slices.Equal(got, []string{"1:b", "2:a", "3:a"}) {
		t.Errorf("tickets = %v, want 1:b 2:a 3:a (ticket 1's change lost)", got)
	}
	if got := fx.query(`SELECT id FROM "nl__comments" ORDER BY id`); !slices.Equal(got, []string{"10", "11", "20"}) {
		t.Errorf("comments = %v, want 10 11 20 (the comment that changed ticket 1 lost)", got)
	}
}
