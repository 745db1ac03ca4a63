package examples_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// ogSim answers Opsgenie's REST API v2 as testdata/opsgenie.md says:
// Authorization: GenieKey KEY; /v2/teams and /v2/schedules unpaged;
// /v2/alerts with a query of createdAt bounds in epoch milliseconds,
// sort and order, offset and limit (20 by default, at most 100 served),
// paging.next (absent on the last page), paging.first and paging.last
// as full URLs, offset + limit past maxDepth a 422; errors {message,
// took, requestId}; optional fields (owner, integration, description,
// ownerTeam, tags) left out where unset.
type ogSim struct {
	key      string
	maxDepth int
	alerts   []map[string]any // sorted by createdAt
	teams    []map[string]any
	scheds   []map[string]any

	mu     sync.Mutex
	asked  []string // every alerts request's query, decoded
	faults map[string][]string
	// stopEarly: windows (their start in ms) whose page at offset 10
	// leaves paging.next out, as a server that stops early.
	stopEarly map[int64]bool
	// noData: windows answered 200 with a message and no data.
	noData map[int64]bool
}

const ogKey = "eb243592-faa2-4ba2-a551-1afdf565c889"

var ogQuery = regexp.MustCompile(`^createdAt >= (\d+) AND createdAt < (\d+)$`)

func newOGSim(now time.Time) *ogSim {
	s := &ogSim{key: ogKey, maxDepth: 20000, faults: map[string][]string{}, stopEarly: map[int64]bool{}, noData: map[int64]bool{}}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	add := func(t time.Time) {
		n++
		a := map[string]any{"id": fmt.Sprintf("70413a06-38d6-4c85-92b8-%012d", n), "tinyId": strconv.Itoa(n), "alias": fmt.Sprintf("alias-%d", n),
			"message": fmt.Sprintf("disk full on host-%d", n%17), "status": []string{"open", "closed"}[n%2], "acknowledged": n%3 == 0,
			"isSeen": n%4 == 0, "snoozed": false, "count": 1 + n%5, "priority": "P" + strconv.Itoa(1+n%5), "source": "prometheus",
			"createdAt": t.Format("2006-01-02T15:04:05.000Z"), "updatedAt": t.Add(time.Hour).Format("2006-01-02T15:04:05.000Z"),
			"lastOccurredAt": t.Format("2006-01-02T15:04:05.000Z"), "tags": []any{}, "teams": []any{}, "responders": []any{},
			"ownerTeamId": ""}
		if n%3 != 0 {
			a["owner"] = "jane@acme.example"
			a["integration"] = map[string]any{"id": "4513b7ea-3b91-438f-b7e4-e3e54af9147c", "name": "Prometheus", "type": "Prometheus"}
			a["tags"] = []any{"disk", "prod"}
			a["teams"] = []any{map[string]any{"id": "8418d193-2dab-4490-b331-8c02cdd196b7"}}
		}
		s.alerts = append(s.alerts, a)
	}
	for t := start; t.Before(now.Add(-time.Hour)); t = t.Add(7 * time.Hour) {
		add(t)
	}
	// A busy day (Jan 10): 45 more alerts, and one at the window's first
	// millisecond.
	busy := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	add(busy)
	for i := range 44 {
		add(busy.Add(time.Duration(i*17+3) * time.Minute))
	}
	sortAlerts(s.alerts)
	for i := range 3 {
		tm := map[string]any{"id": fmt.Sprintf("8418d193-2dab-4490-b331-8c02cdd196b%d", i), "name": fmt.Sprintf("team-%d", i),
			"links": map[string]any{"web": "https://app.opsgenie.com/teams/dashboard/x", "api": "https://api.opsgenie.com/v2/teams/x"}}
		if i != 1 {
			tm["description"] = "on call for the platform"
		}
		s.teams = append(s.teams, tm)
		sc := map[string]any{"id": fmt.Sprintf("d875e654-9b4e-4219-a803-0c26ca0990a%d", i), "name": fmt.Sprintf("schedule-%d", i),
			"timezone": "Europe/Berlin", "enabled": i != 2, "rotations": []any{}}
		if i != 0 {
			sc["ownerTeam"] = map[string]any{"id": tm["id"], "name": tm["name"]}
		}
		s.scheds = append(s.scheds, sc)
	}
	return s
}

func sortAlerts(as []map[string]any) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0 && as[j]["createdAt"].(string) < as[j-1]["createdAt"].(string); j-- {
			as[j], as[j-1] = as[j-1], as[j]
		}
	}
}

func ogError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "took": 0.002, "requestId": "37daec35-2d65-4612-b568-711068e806a4"})
}

func (s *ogSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "GenieKey "+s.key {
		ogError(w, 401, "Could not authenticate")
		return
	}
	s.mu.Lock()
	key := r.URL.Path + "?" + r.URL.Query().Get("query") + "|" + r.URL.Query().Get("offset")
	var fault string
	if fs := s.faults[key]; len(fs) > 0 {
		fault, s.faults[key] = fs[0], fs[1:]
	}
	s.mu.Unlock()
	switch fault {
	case "429":
		w.Header().Set("X-RateLimit-State", "THROTTLED")
		w.Header().Set("X-RateLimit-Reason", "ACCOUNT")
		w.Header().Set("X-RateLimit-Period-In-Sec", "1")
		ogError(w, 429, "You are making too many requests! To avoid errors, we recommend you limit requests.")
		return
	case "503":
		ogError(w, 503, "Service Unavailable")
		return
	}
	switch r.URL.Path {
	case "/v2/teams":
		writeJSON(w, 200, map[string]any{"data": s.teams, "took": 0.08, "requestId": "r1"})
	case "/v2/schedules":
		writeJSON(w, 200, map[string]any{"data": s.scheds, "expandable": []string{"rotation"}, "took": 0.03, "requestId": "r2"})
	case "/v2/alerts":
		s.list(w, r)
	default:
		ogError(w, 404, "Could not find any handler for the request")
	}
}

func (s *ogSim) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.asked = append(s.asked, r.URL.RawQuery)
	s.mu.Unlock()
	offset, ok1 := queryInt(q, "offset", 0, 0)
	limit, ok2 := queryInt(q, "limit", 20, 1)
	if !ok1 || !ok2 {
		ogError(w, 422, "offset and limit must be non-negative integers")
		return
	}
	limit = min(limit, 100)
	if offset+limit > s.maxDepth {
		ogError(w, 422, fmt.Sprintf("Sum of offset and limit should be less than or equal to %d", s.maxDepth))
		return
	}
	m := ogQuery.FindStringSubmatch(q.Get("query"))
	if m == nil {
		ogError(w, 422, "Invalid query: "+q.Get("query"))
		return
	}
	from, _ := strconv.ParseInt(m[1], 10, 64)
	to, _ := strconv.ParseInt(m[2], 10, 64)
	if s.noData[from] {
		writeJSON(w, 200, map[string]any{"message": "Search could not be completed", "took": 0.5, "requestId": "r3"})
		return
	}
	var list []map[string]any
	for _, a := range s.alerts {
		t, _ := time.Parse(time.RFC3339, a["createdAt"].(string))
		if ms := t.UnixMilli(); ms >= from && ms < to {
			list = append(list, a)
		}
	}
	if q.Get("sort") != "createdAt" || q.Get("order") != "asc" {
		ogError(w, 422, "the simulator serves sort=createdAt&order=asc only")
		return
	}
	end := min(offset+limit, len(list))
	page := []map[string]any{}
	if offset < len(list) {
		page = list[offset:end]
	}
	link := func(off int) string {
		v := url.Values{"query": {q.Get("query")}, "offset": {strconv.Itoa(off)}, "limit": {strconv.Itoa(limit)}, "sort": {"createdAt"}, "order": {"asc"}}
		return "http://" + r.Host + "/v2/alerts?" + v.Encode()
	}
	body := map[string]any{"data": page, "took": 0.266, "requestId": "37daec35-2d65-4612-b568-711068e806a4"}
	if len(list) > 0 {
		paging := map[string]any{"first": link(0), "last": link((len(list) - 1) / limit * limit)}
		if end < len(list) && !(s.stopEarly[from] && offset == 10) {
			paging["next"] = link(end)
		}
		body["paging"] = paging
	}
	writeJSON(w, 200, body)
}

// alertIDs are the ids of the alerts created in [from, to).
func (s *ogSim) alertIDs(from, to time.Time) []string {
	var out []string
	for _, a := range s.alerts {
		t, _ := time.Parse(time.RFC3339, a["createdAt"].(string))
		if !t.Before(from) && t.Before(to) {
			out = append(out, a["id"].(string))
		}
	}
	return out
}

func ogWindowQuery(day int) string {
	from := time.Date(2026, 1, day, 0, 0, 0, 0, time.UTC)
	return fmt.Sprintf("createdAt >= %d AND createdAt < %d", from.UnixMilli(), from.Add(24*time.Hour).UnixMilli())
}

var ogNow = time.Date(2026, 1, 20, 12, 0, 0, 0, time.UTC)

func ogRun(t *testing.T, s *ogSim) vendorRun {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return runVendor(t, "opsgenie.yaml", map[string]string{"api_key": ogKey, "api_url": srv.URL, "page_size": "10"}, ogNow)
}

// Opsgenie: every alert created from the initial cursor to the run's
// start written once, read a day at a time by creation time, oldest
// first, pages followed by paging.next; a busy day of more than a page;
// a 429 waited out for its X-RateLimit-Period-In-Sec and a 503 retried;
// teams and schedules with fields left out; the key never printed.
func TestOpsgenie(t *testing.T) {
	t.Parallel()
	s := newOGSim(ogNow)
	s.faults["/v2/alerts?"+ogWindowQuery(10)+"|20"] = []string{"429"}
	s.faults["/v2/alerts?"+ogWindowQuery(3)+"|0"] = []string{"503"}
	s.faults["/v2/teams?|"] = []string{"429"}
	r := ogRun(t, s)
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.said)
	}
	want := s.alertIDs(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ogNow)
	if len(want) < 100 {
		t.Fatalf("the simulator holds %d alerts: too few to page", len(want))
	}
	sameIDs(t, "alerts, each once", want, ids(r.rows["alerts"], "id"))
	noDuplicates(t, r)
	sameIDs(t, "teams", []string{"8418d193-2dab-4490-b331-8c02cdd196b0", "8418d193-2dab-4490-b331-8c02cdd196b1", "8418d193-2dab-4490-b331-8c02cdd196b2"}, ids(r.rows["teams"], "id"))
	if n := len(r.rows["schedules"]); n != 3 {
		t.Errorf("%d schedules, want 3", n)
	}
	for _, row := range r.rows["alerts"] {
		if row["created_at"] == nil || row["status"] == nil {
			t.Errorf("alert row %v: no created_at or status", row)
			break
		}
	}
	// Every request of a window asks that window, sorted oldest first;
	// the busy day's 45 alerts (and its others) take five pages.
	busy := 0
	for _, raw := range s.asked {
		q, _ := url.ParseQuery(raw)
		if !ogQuery.MatchString(q.Get("query")) || q.Get("order") != "asc" || q.Get("limit") != "10" {
			t.Errorf("alerts asked with %s", raw)
		}
		if q.Get("query") == ogWindowQuery(10) {
			busy++
		}
	}
	if busy < 5 {
		t.Errorf("the busy day asked %d times, want 5 pages (and a 429's retry)", busy)
	}
	noSecret(t, r, ogKey)
}

// A day with more alerts than the list serves (offset + limit past the
// cap) fails the run with Opsgenie's message, naming the window; the
// other days are written.
func TestOpsgenieDepthCap(t *testing.T) {
	t.Parallel()
	s := newOGSim(ogNow)
	s.maxDepth = 40 // the busy day holds 48 alerts
	r := ogRun(t, s)
	failedRun(t, r, []string{"alerts", "2026-01-10T00:00:00Z", "Sum of offset and limit should be less than or equal to 40"})
	other := s.alertIDs(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC))
	got := map[string]bool{}
	for _, id := range ids(r.rows["alerts"], "id") {
		got[id] = true
	}
	for _, id := range other {
		if !got[id] {
			t.Errorf("alert %s of a day before the busy one not written", id)
			break
		}
	}
}

// A server that stops giving paging.next before the last page (paging.last
// says there is more) fails the window, with the records read written;
// a 200 without data fails its window instead of reading as empty.
func TestOpsgenieStopsEarly(t *testing.T) {
	t.Parallel()
	s := newOGSim(ogNow)
	s.stopEarly[time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC).UnixMilli()] = true
	r := ogRun(t, s)
	failedRun(t, r, []string{"alerts", "2026-01-10T00:00:00Z", "paginate.total", "stopped early"})

	s = newOGSim(ogNow)
	s.noData[time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC).UnixMilli()] = true
	r = ogRun(t, s)
	failedRun(t, r, []string{"alerts", "2026-01-04T00:00:00Z", "an answer without data: Search could not be completed"})
	for _, row := range r.rows["alerts"] {
		if row["id"] == nil {
			t.Errorf("a row without id (the error body read as an alert?): %v", row)
		}
	}
}

// A refused key fails the run with Opsgenie's message and never shows it.
func TestOpsgenieBadKey(t *testing.T) {
	t.Parallel()
	s := newOGSim(ogNow)
	s.key = "another-key"
	r := ogRun(t, s)
	failedRun(t, r, []string{"teams", "Could not authenticate"})
	noSecret(t, r, ogKey)
	if strings.Contains(r.said, "another-key") {
		t.Error("the server's key in the output")
	}
}

// Alerts change after their day was read: a later run reads the week
// before its cursor again (lookback), so an alert closed since is closed
// in the table, and alerts created since are added; no window before
// that week is asked again.
func TestOpsgenieRerun(t *testing.T) {
	t.Parallel()
	s := newOGSim(ogNow)
	srv := httptest.NewServer(s)
	defer srv.Close()
	f, err := engine.Load("opsgenie.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"api_url": srv.URL, "api_key": ogKey, "page_size": "10"},
		Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "og.db")
	run := func(now time.Time) {
		t.Helper()
		if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: "sqlite:" + db, Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	query := func(q string, args ...any) (out []string) {
		t.Helper()
		conn, err := sql.Open("sqlite", db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		rows, err := conn.Query(q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	run(ogNow)
	// An alert of three days before the first run, open then, closed
	// since; and alerts created after the first run.
	s.mu.Lock()
	var late map[string]any
	for _, a := range s.alerts {
		if at, _ := time.Parse(time.RFC3339, a["createdAt"].(string)); at.After(ogNow.Add(-72*time.Hour)) && a["status"] == "open" {
			late = a
			break
		}
	}
	late["status"] = "closed"
	for i := range 5 {
		at := ogNow.Add(time.Duration(i*7+1) * time.Hour).Format("2006-01-02T15:04:05.000Z")
		s.alerts = append(s.alerts, map[string]any{"id": fmt.Sprintf("new-%d", i), "tinyId": strconv.Itoa(900 + i), "message": "new", "status": "open",
			"acknowledged": false, "isSeen": false, "snoozed": false, "count": 1, "createdAt": at, "updatedAt": at, "lastOccurredAt": at})
	}
	s.asked = nil
	s.mu.Unlock()
	second := ogNow.Add(48 * time.Hour)
	run(second)

	if got := query(`SELECT status FROM "opsgenie__alerts" WHERE id = ?`, late["id"]); len(got) != 1 || got[0] != "closed" {
		t.Errorf("alert %s is %v after the second run, want closed (read again within the lookback)", late["id"], got)
	}
	sameIDs(t, "alerts after two runs, each once", s.alertIDs(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), second), query(`SELECT id FROM "opsgenie__alerts"`))
	for _, raw := range s.asked {
		q, _ := url.ParseQuery(raw)
		m := ogQuery.FindStringSubmatch(q.Get("query"))
		if from, _ := strconv.ParseInt(m[1], 10, 64); from < ogNow.Add(-168*time.Hour).UnixMilli() {
			t.Errorf("the second run asked %s, before its cursor less the lookback", q.Get("query"))
		}
	}
}
