package examples_test

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// ddSim answers Datadog's API v2 incidents list and logs search as the
// service does (facts in testdata/datadog.md): both keys required on every
// request (DD-API-KEY, DD-APPLICATION-KEY; a 403 {"errors": ["Forbidden"]}
// otherwise); incidents by page[size] (default 10, at most 100) and
// page[offset], meta.pagination {offset, size, next_offset} with
// next_offset = offset + size on every page, the last too; logs by
// filter[from]/filter[to], sort and page[limit] (default 10, at most
// 1000), the next page's cursor in meta.page.after (absent on the last
// page) and links.next, meta.status "done" or "timeout"; every answer
// announces the endpoint's budget in X-RateLimit-Limit, -Period,
// -Remaining and -Reset (seconds until the calendar-aligned period ends),
// and a request over it is a 429 {"errors": [...]}.
type ddSim struct {
	apiKey, appKey string
	incidents      []map[string]any
	logs           []map[string]any // by timestamp
	// late are logs not searchable yet: indexed minutes after their
	// timestamp.
	late map[string]bool

	mu       sync.Mutex
	requests []*http.Request
	used     map[string]int // endpoint|period -> requests accepted
	limited  int
	// notBefore[key] is when a 429's reset ends for that page; early
	// counts the pages asked again before it.
	notBefore map[string]time.Time
	early     int
	// faults[path + "|" + page[offset] or page[cursor]] are answered, in
	// order, to the first requests for that page: a status, or ddTimeout
	// (a 200 with part of the page and meta.status "timeout") or
	// ddWarning (a 200 with meta.warnings).
	faults map[string][]int
}

const (
	ddAPIKey  = "SimOnlyDdApiKey0123456789abcdef01"
	ddAppKey  = "SimOnlyDdAppKey0123456789abcdef0123456789"
	ddTimeout = -1
	ddWarning = -2
	// ddLimit requests per ddPeriod seconds, per endpoint.
	ddLimit  = 4
	ddPeriod = 2
)

// ddStart is the first log window of the spec (its incremental.initial).
var ddStart = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func newDDSim() *ddSim {
	s := &ddSim{apiKey: ddAPIKey, appKey: ddAppKey, used: map[string]int{}, notBefore: map[string]time.Time{}, faults: map[string][]int{}, late: map[string]bool{}}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// 230 incidents: three pages of 100, the last short.
	for i := range 230 {
		created := base.Add(time.Duration(i) * 7 * time.Hour)
		a := map[string]any{"public_id": i + 1, "title": fmt.Sprintf("Incident %d", i+1), "severity": []string{"SEV-1", "SEV-2", "SEV-3", "UNKNOWN"}[i%4],
			"state": "resolved", "customer_impacted": i%3 == 0, "created": created.Format("2006-01-02T15:04:05.000000+00:00"),
			"detected": created.Format("2006-01-02T15:04:05+00:00"), "modified": created.Add(2 * time.Hour).Format("2006-01-02T15:04:05.000000+00:00"),
			"resolved": created.Add(time.Hour).Format("2006-01-02T15:04:05+00:00")}
		if i%5 == 0 {
			a["state"], a["resolved"] = "active", nil
		}
		if i%7 == 0 {
			delete(a, "detected") // optional: omitted
		}
		s.incidents = append(s.incidents, map[string]any{"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "type": "incidents", "attributes": a,
			"relationships": map[string]any{"commander_user": map[string]any{"data": nil}}})
	}
	// Logs in the six hours the test reads: 2,500 in the first (three
	// pages of 1,000), none in the second, exactly 1,000 in the third (one
	// full page, no cursor after it), a few in the rest; one at 01:00:00
	// sharp, the boundary of two windows.
	add := func(at time.Time, i int) {
		a := map[string]any{"timestamp": at.Format("2006-01-02T15:04:05.000Z"), "status": []string{"info", "warn", "error"}[i%3],
			"service": "web", "host": fmt.Sprintf("i-%04x", i%17), "message": fmt.Sprintf("GET /items/%d 200", i),
			"tags": []string{"env:prod", "service:web"}, "attributes": map[string]any{"http": map[string]any{"status_code": 200}}}
		if i%11 == 0 {
			delete(a, "host")
		}
		s.logs = append(s.logs, map[string]any{"id": fmt.Sprintf("AQAAAZ%018d", len(s.logs)), "type": "log", "attributes": a})
	}
	n := 0
	for i := range 2500 {
		add(ddStart.Add(time.Duration(i)*1400*time.Millisecond), n)
		n++
	}
	add(ddStart.Add(time.Hour), n) // the boundary: in the second window only
	n++
	for i := range 1000 {
		add(ddStart.Add(2*time.Hour+time.Duration(i)*3*time.Second), n)
		n++
	}
	for h := 3; h < 6; h++ {
		for i := range h * 4 {
			add(ddStart.Add(time.Duration(h)*time.Hour+time.Duration(i)*time.Minute), n)
			n++
		}
	}
	return s
}

func ddError(w http.ResponseWriter, status int, msgs ...string) {
	writeJSON(w, status, map[string]any{"errors": msgs})
}

// limit counts the request against its endpoint's budget for the current
// period and sets the rate limit headers; it reports false when the
// budget is spent.
func (s *ddSim) limit(w http.ResponseWriter, endpoint string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	period := now.Unix() / ddPeriod
	reset := (period+1)*ddPeriod - now.Unix()
	key := endpoint + "|" + strconv.FormatInt(period, 10)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(ddLimit))
	h.Set("X-RateLimit-Period", strconv.Itoa(ddPeriod))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	h.Set("X-RateLimit-Name", endpoint)
	if s.used[key] >= ddLimit {
		h.Set("X-RateLimit-Remaining", "0")
		s.limited++
		return false
	}
	s.used[key]++
	h.Set("X-RateLimit-Remaining", strconv.Itoa(ddLimit-s.used[key]))
	return true
}

func (s *ddSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := q.Get("page[offset]") + q.Get("page[cursor]")
	key := r.URL.Path + "|" + page
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	if t, ok := s.notBefore[key]; ok && time.Now().Before(t) {
		s.early++
	}
	s.mu.Unlock()

	if r.Header.Get("DD-API-KEY") != s.apiKey || r.Header.Get("DD-APPLICATION-KEY") != s.appKey {
		ddError(w, 403, "Forbidden")
		return
	}
	if !s.limit(w, r.URL.Path) || fault == http.StatusTooManyRequests {
		reset, _ := strconv.Atoi(w.Header().Get("X-RateLimit-Reset"))
		w.Header().Set("X-RateLimit-Remaining", "0")
		s.mu.Lock()
		s.notBefore[key] = time.Now().Add(time.Duration(reset) * time.Second).Truncate(time.Second)
		s.mu.Unlock()
		ddError(w, 429, "Too many requests")
		return
	}
	if fault > 0 {
		ddError(w, fault, http.StatusText(fault))
		return
	}
	switch r.URL.Path {
	case "/api/v2/incidents":
		s.serveIncidents(w, q)
	case "/api/v2/logs/events":
		s.serveLogs(w, r, q, fault)
	default:
		ddError(w, 404, "Not found")
	}
}

func (s *ddSim) serveIncidents(w http.ResponseWriter, q map[string][]string) {
	size, ok := queryInt(q, "page[size]", 10, 1)
	if !ok || size > 100 {
		ddError(w, 400, "page[size] must be between 1 and 100")
		return
	}
	offset, ok := queryInt(q, "page[offset]", 0, 0)
	if !ok {
		ddError(w, 400, "invalid page[offset]")
		return
	}
	from := min(offset, len(s.incidents))
	end := min(from+size, len(s.incidents))
	writeJSON(w, 200, map[string]any{"data": s.incidents[from:end], "included": []any{},
		"meta": map[string]any{"pagination": map[string]any{"offset": offset, "size": size, "next_offset": offset + size}}})
}

func (s *ddSim) serveLogs(w http.ResponseWriter, r *http.Request, q map[string][]string, fault int) {
	limit, ok := queryInt(q, "page[limit]", 10, 1)
	if !ok || limit > 1000 {
		ddError(w, 400, "page[limit] must be at most 1000")
		return
	}
	from, err1 := time.Parse(time.RFC3339, first(q, "filter[from]"))
	to, err2 := time.Parse(time.RFC3339, first(q, "filter[to]"))
	if err1 != nil || err2 != nil {
		ddError(w, 400, "invalid filter[from] or filter[to]")
		return
	}
	if fq := first(q, "filter[query]"); fq != "*" && fq != "" {
		ddError(w, 400, "the simulator only answers the query *")
		return
	}
	var match []map[string]any
	s.mu.Lock()
	logs := slices.Clone(s.logs)
	late := maps.Clone(s.late)
	s.mu.Unlock()
	for _, l := range logs {
		at, _ := time.Parse(time.RFC3339, l["attributes"].(map[string]any)["timestamp"].(string))
		if !at.Before(from) && at.Before(to) && !late[l["id"].(string)] {
			match = append(match, l)
		}
	}
	switch first(q, "sort") {
	case "timestamp":
	case "-timestamp", "":
		slices.Reverse(match)
	default:
		ddError(w, 400, "invalid sort")
		return
	}
	at := 0
	if c := first(q, "page[cursor]"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "pos:"))
		if err != nil || err2 != nil || n > len(match) {
			ddError(w, 400, "invalid page[cursor]")
			return
		}
		at = n
	}
	end := min(at+limit, len(match))
	data := append([]map[string]any{}, match[at:end]...) // [] when none, as Datadog sends
	meta := map[string]any{"elapsed": 42, "request_id": "pddv1ChZTaW0", "status": "done"}
	switch fault {
	case ddTimeout:
		// Part of the page, and a cursor past all of it.
		data = data[:len(data)/2]
		meta["status"] = "timeout"
	case ddWarning:
		meta["warnings"] = []map[string]any{{"code": "unknown_index", "title": "One or several indexes are missing or invalid, results hold data from the other indexes", "detail": "indexes: main2"}}
	}
	body := map[string]any{"data": data, "meta": meta}
	if end < len(match) {
		cursor := base64.RawURLEncoding.EncodeToString([]byte("pos:" + strconv.Itoa(end)))
		meta["page"] = map[string]any{"after": cursor}
		next := *r.URL
		next.Scheme, next.Host = "http", r.Host
		nq := next.Query()
		nq.Set("page[cursor]", cursor)
		next.RawQuery = nq.Encode()
		body["links"] = map[string]any{"next": next.String()}
	}
	writeJSON(w, 200, body)
}

func first(q map[string][]string, name string) string {
	if v := q[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *ddSim) asked(path string) []*http.Request { return requestsTo(&s.mu, &s.requests, path) }

// ddNow is the run's clock: six hourly log windows after ddStart.
var ddNow = ddStart.Add(6 * time.Hour)

func ddSets(url string) map[string]string {
	return map[string]string{"api_url": url, "api_key": ddAPIKey, "app_key": ddAppKey}
}

// Datadog: every incident and every log of the six windows written once:
// incidents read to an empty page (next_offset never ends), logs followed
// by meta.page.after over pages of 1,000; a timed-out (partial) logs page
// asked again, not written as whole; the endpoints' budgets kept and
// their 429s waited out, a 503 retried; neither key ever printed.
func TestDatadog(t *testing.T) {
	t.Parallel()
	sim := newDDSim()
	c1 := base64.RawURLEncoding.EncodeToString([]byte("pos:1000"))
	sim.faults["/api/v2/logs/events|"+c1] = []int{ddTimeout, 503}
	sim.faults["/api/v2/incidents|100"] = []int{503, 429}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "datadog.yaml", ddSets(srv.URL), ddNow)
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantInc, wantLogs []string
	for _, i := range sim.incidents {
		wantInc = append(wantInc, i["id"].(string))
	}
	for _, l := range sim.logs {
		wantLogs = append(wantLogs, l["id"].(string))
	}
	sameIDs(t, "incidents", wantInc, column(r.rows["incidents"], "id"))
	sameIDs(t, "logs, each once", wantLogs, column(r.rows["logs"], "id"))
	for _, row := range r.rows["incidents"] {
		if row["id"] == "00000000-0000-4000-8000-000000000001" && (row["public_id"] == nil || row["created"] == nil || row["severity"] != "SEV-2") {
			t.Errorf("incident 1 row = %v, want its attributes", row)
		}
	}
	// 230 incidents at 100 a page, and an empty page to end on: four
	// pages, the second asked three times.
	if n := len(sim.asked("/api/v2/incidents")); n != 6 {
		t.Errorf("%d incident requests, want 6 (4 pages, the 503 and the 429)", n)
	}
	for _, p := range sim.asked("/api/v2/logs/events") {
		if got := p.URL.Query().Get("page[limit]"); got != "1000" {
			t.Errorf("logs request %s: page[limit] %q, want 1000", p.URL.RawQuery, got)
		}
	}
	if s := stream(r.res, "logs"); s.Retries < 2 {
		t.Errorf("logs retries = %d, want at least 2 (the timeout, the 503)", s.Retries)
	}
	t.Logf("%d requests, %d refused by the budget", len(sim.requests), sim.limited)
	if sim.early > 0 {
		t.Errorf("%d pages asked again before the X-RateLimit-Reset of their 429", sim.early)
	}
	noDuplicates(t, r)
	noSecret(t, r, ddAPIKey, ddAppKey)
}

// Datadog's errors, a page that stays partial and one with warnings fail
// the run, naming the stream; the keys are never printed.
func TestDatadogErrors(t *testing.T) {
	t.Parallel()
	c1 := base64.RawURLEncoding.EncodeToString([]byte("pos:1000"))
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong application key", sets: map[string]string{"app_key": "WrongWrongWrongWrongWrong000000000000000"},
			want: []string{"incidents", "403", "Forbidden"}},
		{name: "a search that times out on every attempt",
			faults: map[string][]int{"/api/v2/logs/events|" + c1: {ddTimeout, ddTimeout, ddTimeout, ddTimeout, ddTimeout, ddTimeout, ddTimeout, ddTimeout}},
			want:   []string{"logs", "2026-11-30T00:00:00Z", "timed out"}},
		{name: "partial results with a warning",
			faults: map[string][]int{"/api/v2/logs/events|" + c1: {ddWarning}},
			want:   []string{"logs", "partial results", "unknown_index"}},
		{name: "a 502 on every attempt",
			faults: map[string][]int{"/api/v2/incidents|200": {502, 502, 502, 502, 502, 502, 502, 502}},
			want:   []string{"incidents", "502"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newDDSim()
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := ddSets(srv.URL)
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "datadog.yaml", sets, ddNow)
			failedRun(t, r, c.want)
			noSecret(t, r, ddAPIKey, ddAppKey, sets["app_key"])
		})
	}
}

// Datadog indexes logs late: a log stamped 05:55 that is not searchable
// when the 06:00 run reads its window is read by the next run, which
// starts 15 minutes before the first one's cursor (lookback) rather than
// at it; that run asks for no window before 05:45, and the table holds
// every log once.
func TestDatadogLateLogs(t *testing.T) {
	t.Parallel()
	sim := newDDSim()
	lateLog := map[string]any{"id": "AQAAAZlate00000000000001", "type": "log", "attributes": map[string]any{
		"timestamp": ddStart.Add(5*time.Hour + 55*time.Minute).Format("2006-01-02T15:04:05.000Z"), "status": "error", "service": "web",
		"message": "indexed late", "tags": []string{"env:prod"}}}
	sim.logs = append(sim.logs, lateLog)
	sim.late["AQAAAZlate00000000000001"] = true
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "dd.db")

	run := func(now time.Time) vendorRun {
		t.Helper()
		r := runVendorOpts(t, "datadog.yaml", ddSets(srv.URL), engine.RunOptions{Dest: "sqlite:" + db, Now: func() time.Time { return now }})
		if r.err != nil {
			t.Fatalf("run at %s: %v", now, r.err)
		}
		return r
	}
	run(ddNow)
	if got := query(t, db, `SELECT count(*) FROM datadog__logs WHERE id = 'AQAAAZlate00000000000001'`); !slices.Equal(got, []string{"0"}) {
		t.Fatalf("the late log is in the table before it was searchable: %v", got)
	}
	// Indexed now; and a log in the hours after the first run.
	sim.mu.Lock()
	delete(sim.late, "AQAAAZlate00000000000001")
	sim.mu.Unlock()
	sim.logs = append(sim.logs, map[string]any{"id": "AQAAAZnext00000000000001", "type": "log", "attributes": map[string]any{
		"timestamp": ddNow.Add(30 * time.Minute).Format("2006-01-02T15:04:05.000Z"), "status": "info", "service": "web", "message": "after"}})
	n := len(sim.asked("/api/v2/logs/events"))
	run(ddNow.Add(2 * time.Hour))

	var want []string
	for _, l := range sim.logs {
		want = append(want, l["id"].(string))
	}
	sameIDs(t, "logs after two runs, each once", want, query(t, db, `SELECT id FROM datadog__logs`))
	sim.mu.Lock()
	second := slices.Clone(sim.requests)
	sim.mu.Unlock()
	var froms []string
	for _, r := range second {
		if r.URL.Path == "/api/v2/logs/events" {
			froms = append(froms, r.URL.Query().Get("filter[from]"))
		}
	}
	froms = froms[n:]
	slices.Sort(froms)
	if len(froms) == 0 || froms[0] != "2026-11-30T05:45:00Z" {
		t.Errorf("the second run's windows start at %v, want 2026-11-30T05:45:00Z (15 minutes before the first run's end)", froms)
	}
}
