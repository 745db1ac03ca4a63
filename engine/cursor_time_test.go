package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
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

// githubIssues serves GET /issues as GitHub does: ?since= keeps the issues
// updated at or after it, sorted by creation, newest first (GitHub's
// default sort), per_page at a time with a Link header to the next page.
// afterPage runs once a page is served: the API's world goes on while a
// run reads.
type githubIssues struct {
	mu        sync.Mutex
	all       []map[string]any // {id, created_at, updated_at}
	afterPage func(page int)
	// clock, when set, is the API's: its Date header.
	clock func() time.Time
	// after: since keeps the issues updated after it, not at it (as
	// updated_after filters do elsewhere).
	after bool
	// layout, when set, is how updated_at and since are written (else
	// RFC 3339).
	layout string
}

func (g *githubIssues) set(id int, created, updated string) {
	for _, x := range g.all {
		if x["id"] == id {
			x["updated_at"] = updated
			return
		}
	}
	g.all = append(g.all, map[string]any{"id": id, "created_at": created, "updated_at": updated})
}

func (g *githubIssues) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := r.URL.Query()
	layout := time.RFC3339
	if g.layout != "" {
		layout = g.layout
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		var err error
		if since, err = time.Parse(layout, s); err != nil {
			http.Error(w, `{"message": "Validation Failed"}`, http.StatusUnprocessableEntity)
			return
		}
	}
	var out []map[string]any
	for _, x := range g.all {
		at, _ := time.Parse(layout, x["updated_at"].(string))
		if at.After(since) || !g.after && at.Equal(since) {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b map[string]any) int { return -cmpString(a["created_at"].(string), b["created_at"].(string)) })
	per, page := 2, 1
	fmt.Sscan(q.Get("per_page"), &per)
	fmt.Sscan(q.Get("page"), &page)
	lo, hi := min((page-1)*per, len(out)), min(page*per, len(out))
	if hi < len(out) {
		next := *r.URL
		nq := next.Query()
		nq.Set("page", strconv.Itoa(page+1))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s>; rel="next"`, r.Host, next.String()))
	}
	if g.clock != nil {
		w.Header().Set("Date", g.clock().UTC().Format(http.TimeFormat))
	}
	json.NewEncoder(w).Encode(out[lo:hi])
	if g.afterPage != nil {
		g.afterPage(page)
	}
}

// TestCursorStopsAtTheRunsStart: while a run reads, an issue is opened
// (it goes to the first page, already read) and an old one is commented
// on (read on a later page). The largest updated_at read is the comment's,
// after the new issue's: saved as the cursor, it passes the new issue and
// no run ever reads it. A time cursor is saved no later than the time the
// run started, so the next run asks for what changed while it read.
func TestCursorStopsAtTheRunsStart(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  issues:
    incremental: {cursor: .updated_at, initial: "2026-01-01T00:00:00Z"}
    request:
      path: /issues
      query: {since: '${ cursor }', state: all}
    paginate: {type: link_header, size: 2, size_param: per_page}
tables:
  issues: {from: issues, primary_key: [id], row: '{id, updated_at}'}
`, "")
	api := &githubIssues{}
	api.serveFour(fx)
	api.afterPage = func(page int) {
		if page == 1 {
			api.set(5, "2026-03-05T10:00:05Z", "2026-03-05T10:00:05Z") // opened
			api.set(1, "2026-03-01T09:00:00Z", "2026-03-05T10:00:06Z") // commented
			api.afterPage = nil
		}
	}
	start := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	for _, now := range []time.Time{start, start.Add(time.Hour)} {
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__issues" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("issues = %v, want 1 to 5 (issue 5, opened while the first run read, lost)", got)
	}
}

// TestResumedCursorStopsAtTheFirstRunsStart: the run that read the first
// page failed on the second; an issue opened after that first page went
// onto it. The run that resumes the chain an hour later reads on from the
// second page: its own start is after the new issue, so the cursor is held
// at the start of the run that began the chain, which the checkpoint keeps.
func TestResumedCursorStopsAtTheFirstRunsStart(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  issues:
    incremental: {cursor: .updated_at, initial: "2026-01-01T00:00:00Z"}
    request:
      path: /issues
      query: {since: '${ cursor }', state: all}
    paginate: {type: link_header, size: 2, size_param: per_page}
tables:
  issues: {from: issues, primary_key: [id], row: '{id, updated_at}'}
`, "")
	api := &githubIssues{}
	api.fourIssues()
	down := true
	fx.mu.Lock()
	fx.routes["/issues"] = func(w http.ResponseWriter, r *http.Request) {
		api.mu.Lock()
		fail := down && r.URL.Query().Get("page") == "2"
		api.mu.Unlock()
		if fail {
			http.Error(w, `{"message": "Server Error"}`, http.StatusBadGateway)
			return
		}
		api.serve(w, r)
	}
	fx.mu.Unlock()
	api.afterPage = func(page int) {
		if page == 1 {
			api.set(5, "2026-03-05T10:00:05Z", "2026-03-05T10:00:05Z") // opened
			api.set(1, "2026-03-01T09:00:00Z", "2026-03-05T10:00:06Z") // commented
			api.afterPage = nil
		}
	}
	start := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) engine.RunOptions {
		return engine.RunOptions{Now: func() time.Time { return start.Add(d) }}
	}
	runErrorOf(t, func() error { _, err := fx.run(at(0)); return err }())
	api.mu.Lock()
	down = false
	api.mu.Unlock()
	for _, d := range []time.Duration{time.Hour, 2 * time.Hour} {
		if _, err := fx.run(at(d)); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__issues" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("issues = %v, want 1 to 5 (issue 5, opened while the first run read, lost)", got)
	}
}

// TestCursorStopsAtTheAPIsClock: ferry's clock is five minutes ahead of
// the API's. An issue opened while the run read is stamped by the API
// before the run's start by ferry's clock, so holding the cursor at that
// start does not cover it; the API's Date header on the first page says
// when, by its own clock, the run began to read.
func TestCursorStopsAtTheAPIsClock(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  issues:
    incremental: {cursor: .updated_at, initial: "2026-01-01T00:00:00Z"}
    request:
      path: /issues
      query: {since: '${ cursor }', state: all}
    paginate: {type: link_header, size: 2, size_param: per_page}
tables:
  issues: {from: issues, primary_key: [id], row: '{id, updated_at}'}
`, "")
	apiNow := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	api := &githubIssues{clock: func() time.Time { return apiNow }}
	api.serveFour(fx)
	api.afterPage = func(page int) {
		if page == 1 {
			api.set(5, "2026-03-05T10:00:05Z", "2026-03-05T10:00:05Z") // opened
			api.set(1, "2026-03-01T09:00:00Z", "2026-03-05T10:00:06Z") // commented
			apiNow = apiNow.Add(10 * time.Second)
			api.afterPage = nil
		}
	}
	ahead := 5 * time.Minute
	for _, d := range []time.Duration{ahead, time.Hour + ahead} {
		now := apiNow.Add(d)
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__issues" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("issues = %v, want 1 to 5 (issue 5, opened while the first run read, lost)", got)
	}
}

// TestUnreadableCursorIsNotTheLargest: one record's updated_at is "Invalid
// date" (what moment.js formats an invalid date as), which sorts after
// every time as text. Saved as the cursor, it would be sent back as since,
// where a JavaScript API's new Date("Invalid date") matches nothing: every
// later run reads nothing and exits 0. A value that is not a time never
// passes one: the record is written, and the cursor stays a time.
func TestUnreadableCursorIsNotTheLargest(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  issues:
    incremental: {cursor: .updated_at, initial: "2026-01-01T00:00:00Z"}
    request:
      path: /issues
      query: {since: '${ cursor }'}
tables:
  issues: {from: issues, primary_key: [id], row: '{id, updated_at}'}
`, "")
	var mu sync.Mutex
	all := []map[string]any{
		{"id": 1, "updated_at": "2026-03-01T09:00:00.000Z"},
		{"id": 2, "updated_at": "Invalid date"},
		{"id": 3, "updated_at": "2026-03-02T09:00:00.000Z"},
	}
	fx.mu.Lock()
	fx.routes["/issues"] = func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		// new Date(since): an unreadable one compares false with all.
		since, err := time.Parse(time.RFC3339, r.URL.Query().Get("since"))
		out := []any{}
		for _, x := range all {
			at, e := time.Parse(time.RFC3339, x["updated_at"].(string))
			if err == nil && (e != nil || !at.Before(since)) {
				out = append(out, x)
			}
		}
		json.NewEncoder(w).Encode(out)
	}
	fx.mu.Unlock()
	start := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	for i := range 2 {
		now := start.Add(time.Duration(i) * time.Hour)
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		all = append(all, map[string]any{"id": 4 + i, "updated_at": now.Add(time.Minute).Format("2006-01-02T15:04:05.000Z")})
		mu.Unlock()
	}
	if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return start.Add(3 * time.Hour) }}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id FROM "nl__issues" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("issues = %v, want 1 to 5 (the issues after the unreadable cursor lost)", got)
	}
}

// TestCursorHeldBeforeTheRunsStartSecond: the API stamps to the second and
// filters since exclusively. An issue opened in the very second the run
// started (stamped with it) goes onto the first page, already read: the
// cursor held at the run's start would leave it out of the next run's
// answer; it is held a second before.
func TestCursorHeldBeforeTheRunsStartSecond(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  issues:
    incremental: {cursor: .updated_at, initial: "2026-01-01T00:00:00Z"}
    request:
      path: /issues
      query: {since: '${ cursor }', state: all}
    paginate: {type: link_header, size: 2, size_param: per_page}
tables:
  issues: {from: issues, primary_key: [id], row: '{id, updated_at}'}
`, "")
	api := &githubIssues{after: true}
	api.serveFour(fx)
	api.afterPage = func(page int) {
		if page == 1 {
			api.set(5, "2026-03-05T10:00:00Z", "2026-03-05T10:00:00Z") // opened
			api.set(1, "2026-03-01T09:00:00Z", "2026-03-05T10:00:01Z") // commented
			api.afterPage = nil
		}
	}
	start := time.Date(2026, 3, 5, 10, 0, 0, 200_000_000, time.UTC)
	for _, now := range []time.Time{start, start.Add(time.Hour)} {
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__issues" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("issues = %v, want 1 to 5 (issue 5, opened in the second the run started, lost)", got)
	}
}

// TestRecordsWithoutCursor: records whose cursor is missing or null are
// written, and the cursor is the largest of the others; a stream none of
// whose records has one (a cursor program naming the wrong field) keeps
// asking from where it started: read again, never passed.
func TestRecordsWithoutCursor(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  issues:
    incremental: {cursor: .updated_at, initial: "2026-01-01T00:00:00Z"}
    request:
      path: /issues
      query: {since: '${ cursor }'}
  other:
    incremental: {cursor: .updatedAt, initial: "2026-01-01T00:00:00Z"}
    request:
      path: /other
      query: {since: '${ cursor }'}
tables:
  issues: {from: issues, primary_key: [id]}
  other: {from: other, primary_key: [id]}
`, "")
	recs := []any{
		map[string]any{"id": 1, "updated_at": "2026-03-01T09:00:00Z"},
		map[string]any{"id": 2},
		map[string]any{"id": 3, "updated_at": nil},
	}
	var mu sync.Mutex
	var asked []string
	fx.mu.Lock()
	for _, path := range []string{"/issues", "/other"} {
		fx.routes[path] = func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			asked = append(asked, r.URL.Path+" "+r.URL.Query().Get("since"))
			mu.Unlock()
			json.NewEncoder(w).Encode(recs)
		}
	}
	fx.mu.Unlock()
	for range 2 {
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC) }}); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{"issues", "other"} {
		if got := fx.query(`SELECT id FROM "nl__` + table + `" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3"}) {
			t.Errorf("%s = %v, want 1 2 3", table, got)
		}
	}
	want := []string{
		"/issues 2026-01-01T00:00:00Z", "/issues 2026-03-01T09:00:00Z",
		"/other 2026-01-01T00:00:00Z", "/other 2026-01-01T00:00:00Z",
	}
	mu.Lock()
	slices.Sort(asked)
	mu.Unlock()
	if !slices.Equal(asked, want) {
		t.Errorf("asked %v, want %v", asked, want)
	}
}

// fourIssues holds issues 1 to 4, opened and last updated on March 1 to 4
// at 09:00 UTC.
func (g *githubIssues) fourIssues() {
	for i, d := range []string{"01", "02", "03", "04"} {
		g.set(i+1, "2026-03-"+d+"T09:00:00Z", "2026-03-"+d+"T09:00:00Z")
	}
}

// serveFour serves the four issues at fx's /issues.
func (g *githubIssues) serveFour(fx *fixture) {
	g.fourIssues()
	fx.mu.Lock()
	fx.routes["/issues"] = g.serve
	fx.mu.Unlock()
}

// TestSpacedCursorStopsAtTheRunsStart: TestCursorStopsAtTheRunsStart with
// the times as Python's str of a datetime writes them, a space for the "T"
// ("2026-03-05 10:00:06.000000+00:00"). Compared as text and never held at
// the run's start, the cursor taken from the issue commented on while the
// run read passed the one opened then.
func TestSpacedCursorStopsAtTheRunsStart(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  issues:
    incremental: {cursor: .updated_at, initial: "2026-01-01 00:00:00.000000+00:00"}
    request:
      path: /issues
      query: {since: '${ cursor }', state: all}
    paginate: {type: link_header, size: 2, size_param: per_page}
tables:
  issues: {from: issues, primary_key: [id], row: '{id, updated_at}'}
`, "")
	const py = "2006-01-02 15:04:05.000000-07:00"
	api := &githubIssues{layout: py}
	stamp := func(d, h, m, s int) string { return time.Date(2026, 3, d, h, m, s, 0, time.UTC).Format(py) }
	for i := range 4 {
		api.set(i+1, stamp(1+i, 9, 0, 0), stamp(1+i, 9, 0, 0))
	}
	fx.mu.Lock()
	fx.routes["/issues"] = api.serve
	fx.mu.Unlock()
	api.afterPage = func(page int) {
		if page == 1 {
			api.set(5, stamp(5, 10, 0, 5), stamp(5, 10, 0, 5)) // opened
			api.set(1, stamp(1, 9, 0, 0), stamp(5, 10, 0, 6))  // commented
			api.afterPage = nil
		}
	}
	start := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	for _, now := range []time.Time{start, start.Add(time.Hour)} {
		if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__issues" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("issues = %v, want 1 to 5 (issue 5, opened while the first run read, lost)", got)
	}
}
