package examples_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine"
)

// pdSim answers /services and /incidents as PagerDuty's REST API v2 does
// (facts from its API reference and developer docs): `Authorization:
// Token token=KEY`; classic pagination {limit, offset, more, total} with
// limit capped at 100 (default 25) and total null unless total=true;
// offset + limit past maxOffset (10,000) is a 400; incidents without
// since/until are the last 30 days only, and a range over 6 months is a
// 400; since and until both inclusive here (the unkinder reading);
// errors {"error": {message, code, errors}}.
type pdSim struct {
	key       string
	now       time.Time
	maxOffset int
	services  []map[string]any
	incidents []map[string]any

	mu       sync.Mutex
	requests []*http.Request
	// limitSince, when set, is the since of the one incidents request
	// answered 429 (the first with it).
	limitSince string
}

func newPDSim(key string, now time.Time) *pdSim {
	s := &pdSim{key: key, now: now, maxOffset: 10000}
	for i := range 130 {
		s.services = append(s.services, map[string]any{"id": fmt.Sprintf("PSVC%03d", i), "type": "service", "name": fmt.Sprintf("service %d", i),
			"status": "active", "description": nil, "escalation_policy": map[string]any{"id": "PEP0001", "type": "escalation_policy_reference"},
			"created_at": "2025-06-01T00:00:00Z", "html_url": fmt.Sprintf("https://acme.pagerduty.com/service-directory/PSVC%03d", i)})
	}
	// Every 25 hours from the start of the year to a day before now, and
	// one exactly on the first window boundary (initial + 720h).
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var at []time.Time
	for t := start; t.Before(now.Add(-24 * time.Hour)); t = t.Add(25 * time.Hour) {
		at = append(at, t)
	}
	at = append(at, start.Add(720*time.Hour))
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	for i, t := range at {
		s.incidents = append(s.incidents, map[string]any{"id": fmt.Sprintf("PINC%04d", i), "type": "incident", "incident_number": i + 1,
			"title": fmt.Sprintf("incident %d", i), "status": "resolved", "urgency": "high",
			"service":    map[string]any{"id": fmt.Sprintf("PSVC%03d", i%130), "type": "service_reference"},
			"created_at": t.Format(time.RFC3339), "last_status_change_at": t.Add(time.Hour).Format(time.RFC3339),
			"resolved_at": t.Add(time.Hour).Format(time.RFC3339), "html_url": fmt.Sprintf("https://acme.pagerduty.com/incidents/PINC%04d", i)})
	}
	return s
}

func pdError(w http.ResponseWriter, status, code int, msg string, errs ...string) {
	e := map[string]any{"message": msg, "code": code}
	if len(errs) > 0 {
		e["errors"] = errs
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func (s *pdSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	limited := r.URL.Path == "/incidents" && s.limitSince != "" && r.URL.Query().Get("since") == s.limitSince
	if limited {
		s.limitSince = ""
	}
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Token token="+s.key {
		pdError(w, 401, 2006, "Unauthorized")
		return
	}
	if limited {
		pdError(w, 429, 2020, "rate limit exceeded")
		return
	}
	q := r.URL.Query()
	limit, offset := 25, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			pdError(w, 400, 2001, "Invalid Input Provided", "limit must be a positive integer")
			return
		}
		limit = min(n, 100)
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			pdError(w, 400, 2001, "Invalid Input Provided", "offset must be a non-negative integer")
			return
		}
		offset = n
	}
	if offset+limit > s.maxOffset {
		pdError(w, 400, 2001, "Invalid Input Provided", fmt.Sprintf("offset + limit must be at most %d", s.maxOffset))
		return
	}
	var list []map[string]any
	key := strings.TrimPrefix(r.URL.Path, "/")
	switch r.URL.Path {
	case "/services":
		list = s.services
	case "/incidents":
		since, until := s.now.Add(-30*24*time.Hour), s.now
		var err error
		if v := q.Get("since"); v != "" {
			if since, err = time.Parse(time.RFC3339, v); err != nil {
				pdError(w, 400, 2001, "Invalid Input Provided", "since is not a date")
				return
			}
		}
		if v := q.Get("until"); v != "" {
			if until, err = time.Parse(time.RFC3339, v); err != nil {
				pdError(w, 400, 2001, "Invalid Input Provided", "until is not a date")
				return
			}
		}
		if until.Sub(since) > 183*24*time.Hour {
			pdError(w, 400, 2001, "Invalid Input Provided", "the date range may span at most 6 months")
			return
		}
		for _, in := range s.incidents {
			at, _ := time.Parse(time.RFC3339, in["created_at"].(string))
			if !at.Before(since) && !at.After(until) {
				list = append(list, in)
			}
		}
	default:
		pdError(w, 404, 2100, "Not Found")
		return
	}
	end := min(offset+limit, len(list))
	page := append([]map[string]any{}, list[min(offset, len(list)):end]...)
	var total any
	if q.Get("total") == "true" {
		total = len(list)
	}
	writeJSON(w, 200, map[string]any{key: page, "limit": limit, "offset": offset, "more": end < len(list), "total": total})
}

func (s *pdSim) asked(path string) []*http.Request {
	return requestsTo(&s.mu, &s.requests, path)
}

const pdKey = "u+ExampleKeyForTheSimulatorOnly"

var pdNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// PagerDuty: every service though a page size of 500 is served 100 at a
// time; every incident since January (not only the last 30 days), each
// window at most 6 months, and once each though one lies on a window
// boundary; the 429 is retried; the key is never printed.
func TestPagerDuty(t *testing.T) {
	t.Parallel()
	sim := newPDSim(pdKey, pdNow)
	// The last window's first request is rate limited: after a 429 the
	// rate control paces the host, which would slow the windows after it.
	sim.limitSince = "2026-11-27T00:00:00Z"
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "pagerduty.yaml", map[string]string{"api_url": srv.URL, "api_token": pdKey, "page_size": "500"}, pdNow)
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var want []string
	for _, s := range sim.services {
		want = append(want, s["id"].(string))
	}
	if d := cmp.Diff(want, column(r.rows["services"], "id")); d != "" {
		t.Errorf("services (-want +got):\n%s", d)
	}
	if n := len(sim.asked("/services")); n != 2 {
		t.Errorf("%d service requests, want 2 (130 at the 100 PagerDuty serves)", n)
	}
	want = want[:0]
	for _, in := range sim.incidents {
		want = append(want, in["id"].(string))
	}
	// An incident on a window boundary is in both windows (until is
	// inclusive here): written twice, the same row, and reported as a
	// duplicate, never lost.
	got := slices.Compact(slices.Sorted(slices.Values(ids(r.rows["incidents"], "id"))))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("incidents (-want +got), %d written of %d:\n%s", len(got), len(want), d)
	}
	if n := len(r.rows["incidents"]) - len(got); n != 3 || len(r.res.Summary.Duplicates) == 0 {
		t.Errorf("%d incidents written twice, duplicates reported %v: want the 3 on window boundaries, reported", n, r.res.Summary.Duplicates)
	}
	for _, req := range append(sim.asked("/services"), sim.asked("/incidents")...) {
		if a := req.Header.Get("Accept"); a != "application/vnd.pagerduty+json;version=2" {
			t.Errorf("Accept = %q", a)
		}
		if req.URL.Path == "/incidents" && (req.URL.Query().Get("since") == "" || req.URL.Query().Get("until") == "") {
			t.Errorf("incidents asked without since and until: %s", req.URL)
		}
	}
	if s := stream(r.res, "incidents"); s.Retries != 1 || s.Errors != 0 {
		t.Errorf("incidents counters = %+v, want one retry (the 429)", s)
	}
	noSecret(t, r, pdKey)
}

// PagerDuty's errors fail the run, naming the stream, the status and
// PagerDuty's message; the key is never printed.
func TestPagerDutyErrors(t *testing.T) {
	t.Parallel()
	t.Run("a window past the offset cap", func(t *testing.T) {
		// 10,000 in the real API; 20 here, so a 30-day window (29 incidents)
		// passes it.
		sim := newPDSim(pdKey, pdNow)
		sim.maxOffset = 20
		srv := httptest.NewServer(sim)
		defer srv.Close()
		r := runVendor(t, "pagerduty.yaml", map[string]string{"api_url": srv.URL, "api_token": pdKey, "page_size": "10"}, pdNow)
		if r.err == nil {
			t.Fatalf("the run succeeded with %d incidents: want it to fail", len(r.rows["incidents"]))
		}
		if code := engine.ExitCode(r.err, false); code != engine.ExitFailed {
			t.Errorf("exit code %d, want %d", code, engine.ExitFailed)
		}
		for _, w := range []string{"stream incidents", "400", "Invalid Input Provided: offset + limit must be at most 20", "2026-01-01"} {
			if !strings.Contains(r.err.Error(), w) {
				t.Errorf("the error does not say %q:\n%v", w, r.err)
			}
		}
		noSecret(t, r, pdKey)
	})
	t.Run("a wrong key", func(t *testing.T) {
		sim := newPDSim(pdKey, pdNow)
		srv := httptest.NewServer(sim)
		defer srv.Close()
		wrong := "y_WrongKeyWrongKeyWrongKey"
		r := runVendor(t, "pagerduty.yaml", map[string]string{"api_url": srv.URL, "api_token": wrong}, pdNow)
		if r.err == nil || !strings.Contains(r.err.Error(), "401") || !strings.Contains(r.err.Error(), "Unauthorized") {
			t.Errorf("err = %v, want PagerDuty's 401 Unauthorized", r.err)
		}
		if code := engine.ExitCode(r.err, false); code != engine.ExitFailed {
			t.Errorf("exit code %d, want %d", code, engine.ExitFailed)
		}
		noSecret(t, r, wrong)
	})
}

// PagerDuty incidents change after the window that created them was read:
// a later run reads the 30 days before its cursor again, so an incident
// resolved ten days after it was first read is resolved in the table.
func TestPagerDutyRerunUpdatesStatus(t *testing.T) {
	t.Parallel()
	sim := newPDSim(pdKey, pdNow)
	late := map[string]any{"id": "PLATE01", "type": "incident", "incident_number": 9999, "title": "disk full", "status": "triggered",
		"urgency": "high", "service": map[string]any{"id": "PSVC001", "type": "service_reference"},
		"created_at": pdNow.Add(-10 * 24 * time.Hour).Format(time.RFC3339), "last_status_change_at": pdNow.Add(-10 * 24 * time.Hour).Format(time.RFC3339),
		"resolved_at": nil, "html_url": "https://acme.pagerduty.com/incidents/PLATE01"}
	sim.incidents = append(sim.incidents, late)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	f, err := engine.Load("pagerduty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"api_url": srv.URL, "api_token": pdKey},
		Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "pd.db")
	run := func(now time.Time) {
		t.Helper()
		if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: "sqlite:" + db, Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	status := func() string {
		t.Helper()
		conn, err := sql.Open("sqlite", db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var s string
		if err := conn.QueryRow(`SELECT status FROM "pagerduty__incidents" WHERE id = 'PLATE01'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	run(pdNow)
	if s := status(); s != "triggered" {
		t.Fatalf("after the first run PLATE01 is %q, want triggered", s)
	}
	sim.mu.Lock()
	late["status"], late["resolved_at"] = "resolved", pdNow.Add(24*time.Hour).Format(time.RFC3339)
	sim.mu.Unlock()
	run(pdNow.Add(48 * time.Hour))
	if s := status(); s != "resolved" {
		t.Errorf("after the second run PLATE01 is %q, want resolved (read again within the lookback)", s)
	}
}
