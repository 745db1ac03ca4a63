package examples_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// zendeskSim answers GET /api/v2/incremental/tickets/cursor.json as
// Zendesk's cursor-based incremental export does (facts in
// testdata/zendesk-facts.md): Basic auth "{email}/token:{token}";
// start_time (epoch seconds, at least a minute ago) on the first request,
// cursor on the later ones (both, or neither, is a 400); tickets in update
// order, at most per_page (1000) a page; every page has after_cursor,
// after_url (with the cursor), before_cursor, before_url and end_of_stream;
// a ticket updated while the export is read moves to the end, so it is
// listed again; a 429 with Retry-After; fields without a value are null.
type zendeskSim struct {
	email, token string

	mu       sync.Mutex
	seq      int                    // the account's update counter
	tickets  map[int]map[string]any // id -> ticket (its position in "_seq")
	requests []*http.Request
	asked    []string // what each request answered asked for: "start_time=…" or "cursor=…"
	// faults[cursor] are answered, in order, to the first requests with
	// that cursor ("" the first page).
	faults map[string][]int
	// during runs once, after the page number afterPage of a chain.
	during    func()
	afterPage int
	page      int
	// noAfterURL: the answer to that page of a chain (its number, from 1)
	// says end_of_stream false with after_url null.
	noAfterURL int
}

var zendeskBase = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

func newZendeskSim() *zendeskSim {
	s := &zendeskSim{email: "admin@acme.example", token: "zd1Sim0Token2Value3abcdefGHIJKLmnopQRSTuv", tickets: map[int]map[string]any{}, faults: map[string][]int{}}
	for i := 1; i <= 2350; i++ {
		s.put(i, fmt.Sprintf("Ticket %d", i))
	}
	return s
}

// put creates or updates ticket id (the caller holds mu, or no one runs).
func (s *zendeskSim) put(id int, subject string) {
	s.seq++
	at := zendeskBase.Add(time.Duration(s.seq) * time.Minute).Format(time.RFC3339)
	t := s.tickets[id]
	if t == nil {
		t = map[string]any{"id": id, "url": fmt.Sprintf("https://acme.zendesk.com/api/v2/tickets/%d.json", id), "created_at": at,
			"type": nil, "priority": nil, "status": "new", "requester_id": 9000 + id%50, "assignee_id": nil, "group_id": nil,
			"tags": []any{}, "via": map[string]any{"channel": "web"}}
		if id%3 == 0 {
			t["priority"], t["type"], t["assignee_id"], t["status"] = "normal", "incident", 500+id%7, "open"
			t["tags"] = []any{"billing"}
		}
		s.tickets[id] = t
	}
	t["subject"], t["updated_at"], t["_seq"] = subject, at, s.seq
}

func zendeskCursor(seq int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%d.0||%d", seq, seq)))
}

func (s *zendeskSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	q := r.URL.Query()
	cursor := q.Get("cursor")
	if f := s.faults[cursor]; len(f) > 0 {
		status := f[0]
		s.faults[cursor] = f[1:]
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, status, map[string]any{"error": "APIRateLimitExceeded", "description": "Number of allowed incremental export API requests per minute exceeded"})
			return
		}
		writeJSON(w, status, map[string]any{"error": "InternalError", "description": "simulated failure"})
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != s.email+"/token" || p != s.token {
		writeJSON(w, 401, map[string]any{"error": "Couldn't authenticate you"})
		return
	}
	if r.URL.Path != "/api/v2/incremental/tickets/cursor.json" {
		writeJSON(w, 404, map[string]any{"error": "InvalidEndpoint", "description": "Not found"})
		return
	}
	perPage, ok := queryInt(q, "per_page", 1000, 1)
	if !ok {
		writeJSON(w, 400, map[string]any{"error": "InvalidValue", "description": "per_page must be a positive integer"})
		return
	}
	perPage = min(perPage, 1000)
	after := 0
	switch st := q.Get("start_time"); {
	case (st == "") == (cursor == ""):
		writeJSON(w, 400, map[string]any{"error": "InvalidPaginationParameter", "description": "give start_time or cursor"})
		return
	case st != "":
		sec, err := strconv.ParseInt(st, 10, 64)
		if err != nil || time.Unix(sec, 0).After(time.Now().Add(-time.Minute)) {
			writeJSON(w, 400, map[string]any{"error": "InvalidValue", "description": "start_time must be more than one minute in the past"})
			return
		}
		s.asked = append(s.asked, "start_time="+st)
		for _, t := range s.tickets {
			if at, _ := time.Parse(time.RFC3339, t["updated_at"].(string)); at.Before(time.Unix(sec, 0)) {
				after = max(after, t["_seq"].(int))
			}
		}
	default:
		b, err := base64.StdEncoding.DecodeString(cursor)
		n, err2 := strconv.Atoi(strings.SplitN(string(b), ".", 2)[0])
		if err != nil || err2 != nil {
			writeJSON(w, 400, map[string]any{"error": "InvalidPaginationParameter", "description": "cursor is invalid"})
			return
		}
		s.asked = append(s.asked, "cursor="+cursor)
		after = n
	}
	var list []map[string]any
	for _, t := range s.tickets {
		if t["_seq"].(int) > after {
			list = append(list, t)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i]["_seq"].(int) < list[j]["_seq"].(int) })
	page := []map[string]any{}
	for _, t := range list[:min(perPage, len(list))] {
		out := map[string]any{}
		for k, v := range t {
			if k != "_seq" {
				out[k] = v
			}
		}
		page = append(page, out)
	}
	last := after
	if len(page) > 0 {
		last = list[len(page)-1]["_seq"].(int)
	}
	base := "http://" + r.Host + r.URL.Path
	ac := zendeskCursor(last)
	s.page++
	if s.during != nil && s.page == s.afterPage {
		s.during()
		s.during = nil
	}
	var afterURL any = base + "?cursor=" + ac + "&per_page=" + strconv.Itoa(perPage)
	if s.page == s.noAfterURL {
		afterURL = nil
	}
	writeJSON(w, 200, map[string]any{"tickets": page, "after_cursor": ac, "after_url": afterURL,
		"before_cursor": zendeskCursor(after), "before_url": base + "?cursor=" + zendeskCursor(after), "end_of_stream": len(page) == len(list)})
}

// A page that says end_of_stream false without an after_url ends the
// URLs, not the export: the tickets after it are unread, so the chain
// fails (and the cursor stays) rather than exit 0 with part of them.
func TestZendeskNoAfterURLFails(t *testing.T) {
	t.Parallel()
	sim := newZendeskSim()
	sim.noAfterURL = 1
	srv := httptest.NewServer(sim)
	defer srv.Close()
	r := runVendor(t, "zendesk.yaml", map[string]string{"subdomain": "acme", "email": sim.email, "api_token": sim.token, "api_url": srv.URL}, time.Time{})
	failedRun(t, r, []string{"end_of_stream"})
}

// zendeskRun runs zendesk.yaml into the SQLite file db; start is what the
// run's first answered request asked for (where its sync started).
func zendeskRun(t *testing.T, sim *zendeskSim, url, db string, opts engine.RunOptions) (r vendorRun, start string) {
	t.Helper()
	sim.mu.Lock()
	n := len(sim.asked)
	sim.mu.Unlock()
	opts.Dest = "sqlite:" + db
	r = runVendorOpts(t, "zendesk.yaml", map[string]string{"subdomain": "acme", "email": sim.email, "api_token": sim.token, "api_url": url}, opts)
	sim.mu.Lock()
	defer sim.mu.Unlock()
	if len(sim.asked) > n {
		start = sim.asked[n]
	}
	return r, start
}

// Zendesk: the first sync reads every ticket from start_time over capped
// pages to end_of_stream, a 429 waited out; a ticket updated mid-export is
// listed twice and the table holds its latest version (the repeat listed,
// the run not failed); the next sync asks from the last page's
// after_cursor, without start_time, and reads only what changed; a chain
// that fails keeps the cursor where it was; the token is never printed.
func TestZendesk(t *testing.T) {
	t.Parallel()
	sim := newZendeskSim()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "zd.db")
	sim.faults[zendeskCursor(1000)] = []int{429}
	sim.afterPage, sim.during = 1, func() { sim.put(5, "Ticket 5, updated mid-export") }

	r, start := zendeskRun(t, sim, srv.URL, db, engine.RunOptions{})
	if r.err != nil {
		t.Fatalf("first sync: %v\n%s", r.err, r.said)
	}
	if got := query(t, db, `SELECT count(*), count(DISTINCT id), min(id), max(id) FROM zendesk__tickets`); !slices.Equal(got, []string{"2350|2350|1|2350"}) {
		t.Errorf("tickets (count, distinct, min, max) = %v, want every one of 2350 once", got)
	}
	if got := query(t, db, `SELECT subject FROM zendesk__tickets WHERE id = 5`); !slices.Equal(got, []string{"Ticket 5, updated mid-export"}) {
		t.Errorf("ticket 5 = %q, want its latest version", got)
	}
	if s := stream(r.res, "tickets"); s.Records != 2351 || s.Retries != 1 {
		t.Errorf("tickets read %d (want 2351: ticket 5 twice), retries %d (want 1, the 429)", s.Records, s.Retries)
	}
	if d := r.res.Summary.Duplicates; len(d) != 1 || d[0].Name != "tickets" || d[0].Count != 1 {
		t.Errorf("duplicates = %+v, want ticket 5's repeat, in tickets", d)
	}
	if got := query(t, db, `SELECT priority, assignee_id FROM zendesk__tickets WHERE id = 1`); !slices.Equal(got, []string{"<nil>|<nil>"}) {
		t.Errorf("ticket 1's null fields: %q", got)
	}
	if start != "start_time="+strconv.FormatInt(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), 10) {
		t.Fatalf("the first sync started from %q, want the configured start_time", start)
	}

	// Changes, and a chain that fails on its second page: the cursor stays.
	sim.mu.Lock()
	for _, id := range []int{7, 8, 9} {
		sim.put(id, fmt.Sprintf("Ticket %d, changed", id))
	}
	sim.put(2351, "Ticket 2351")
	end := zendeskCursor(2351) // where the first sync ended
	sim.mu.Unlock()
	r, start = zendeskRun(t, sim, srv.URL, db, engine.RunOptions{})
	if r.err != nil {
		t.Fatalf("second sync: %v", r.err)
	}
	if start != "cursor="+end {
		t.Fatalf("the second sync started from %q, want the first's last after_cursor %q and no start_time", start, end)
	}
	if s := stream(r.res, "tickets"); s.Records != 4 {
		t.Errorf("second sync read %d tickets, want the 4 changed", s.Records)
	}
	if got := query(t, db, `SELECT subject FROM zendesk__tickets WHERE id IN (7, 2351) ORDER BY id`); !slices.Equal(got, []string{"Ticket 7, changed", "Ticket 2351"}) {
		t.Errorf("changed and new tickets: %q", got)
	}

	sim.mu.Lock()
	for id := 10; id < 1510; id++ {
		sim.put(id, fmt.Sprintf("Ticket %d, bulk", id))
	}
	end = zendeskCursor(2355)
	sim.faults[zendeskCursor(3355)] = []int{500, 500, 500, 500, 500, 500, 500, 500, 500, 500}
	sim.mu.Unlock()
	r, _ = zendeskRun(t, sim, srv.URL, db, engine.RunOptions{})
	failedRun(t, r, []string{"tickets", "page 2", "500"})
	sim.mu.Lock()
	sim.faults = map[string][]int{}
	sim.mu.Unlock()
	r, start = zendeskRun(t, sim, srv.URL, db, engine.RunOptions{ResumeWithin: time.Nanosecond})
	if r.err != nil {
		t.Fatalf("the sync after the failed one: %v", r.err)
	}
	if start != "cursor="+end {
		t.Errorf("the sync after a failed chain started from %q, want %q: the failed chain's first page must not move the cursor", start, end)
	}
	if got := query(t, db, `SELECT count(*) FROM zendesk__tickets WHERE subject LIKE '%bulk'`); !slices.Equal(got, []string{"1500"}) {
		t.Errorf("bulk-updated tickets written: %v, want 1500", got)
	}
	noSecret(t, r, sim.token, base64.StdEncoding.EncodeToString([]byte(sim.email+"/token:"+sim.token)))
}
