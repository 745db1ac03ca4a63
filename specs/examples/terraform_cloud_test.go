package examples_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tfcSim answers the workspaces and runs lists of HCP Terraform's API v2
// as the service does (facts from its API docs: "Pagination", "Rate
// Limiting", Workspaces and Runs references; fixture shapes in
// testdata/terraform-cloud.md): JSON:API bodies as
// application/vnd.api+json; page[number] and page[size] (at most 100,
// default 20); links.next a full URL, null on the last page;
// meta.pagination with next-page null on the last page; 30 requests a
// second per token, over it a 429 with x-ratelimit-reset in seconds as a
// decimal and no Retry-After; errors {"errors": [{status, title}]}; a
// bearer token.
type tfcSim struct {
	token, org string
	workspaces []map[string]any
	runs       map[string][]map[string]any // workspace id -> runs, newest first

	mu       sync.Mutex
	requests []*http.Request
	window   []time.Time // requests accepted in the last second
	limited  int         // 429s for the rate limit
	// notBefore[path + "|" + page number] is when a 429's reset ends
	// for that page; early counts the pages asked again before it.
	notBefore map[string]time.Time
	early     int
	// faults[path + "|" + page number] are answered, in order, to the
	// first requests for that page.
	faults map[string][]int
}

const tfcToken = "SimOnlyTfcTok.atlasv1.q9W8e7R6t5Y4u3I2o1P0aSdFgHjKlZxCv"

func newTFCSim(token, org string) *tfcSim {
	s := &tfcSim{token: token, org: org, runs: map[string][]map[string]any{}, faults: map[string][]int{}, notBefore: map[string]time.Time{}}
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return base.Add(d).Format("2006-01-02T15:04:05.000Z") }
	run := 0
	// 130 workspaces (two pages of 100); runs: 230 on the first (three
	// pages, the last short), exactly 100 on the second (one full page,
	// links.next null), none on the third, a few on the rest.
	for i := range 130 {
		id := fmt.Sprintf("ws-%016d", i)
		attrs := map[string]any{"name": fmt.Sprintf("infra-%d", i), "terraform-version": "1.9.5", "execution-mode": "remote",
			"locked": i%7 == 0, "resource-count": i * 3, "created-at": ts(time.Duration(i) * time.Hour), "updated-at": ts(time.Duration(i)*time.Hour + time.Minute)}
		rel := map[string]any{"organization": map[string]any{"data": map[string]any{"id": org, "type": "organizations"}}}
		if i%5 != 0 {
			// Older workspaces' answers carry no project.
			rel["project"] = map[string]any{"data": map[string]any{"id": "prj-main", "type": "projects"}}
		}
		if i%11 == 0 {
			delete(attrs, "terraform-version") // optional: omitted
		}
		s.workspaces = append(s.workspaces, map[string]any{"id": id, "type": "workspaces", "attributes": attrs, "relationships": rel,
			"links": map[string]any{"self": "/api/v2/organizations/" + org + "/workspaces/" + attrs["name"].(string)}})
		n := map[int]int{0: 230, 1: 100, 2: 0}[i]
		if i > 2 {
			n = i % 3
		}
		list := []map[string]any{}
		for j := range n {
			run++
			a := map[string]any{"status": "applied", "source": "tfe-api", "message": fmt.Sprintf("Run %d", j),
				"is-destroy": j%13 == 0, "created-at": ts(time.Duration(j) * time.Minute), "trigger-reason": "manual"}
			if j%4 == 0 {
				delete(a, "trigger-reason")
				a["status"] = "errored"
			}
			list = append(list, map[string]any{"id": fmt.Sprintf("run-%016d", run), "type": "runs", "attributes": a,
				"relationships": map[string]any{"workspace": map[string]any{"data": map[string]any{"id": id, "type": "workspaces"}}}})
		}
		slices.Reverse(list) // newest first
		s.runs[id] = list
	}
	return s
}

func tfcError(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"status":"%d","title":%q}]}`, status, title)
}

// limit keeps 30 requests in any second; it returns the seconds until a
// place frees up when the request is over the limit, and sets the rate
// limit headers every answer carries.
func (s *tfcSim) limit(w http.ResponseWriter) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	kept := s.window[:0]
	for _, t := range s.window {
		if now.Sub(t) < time.Second {
			kept = append(kept, t)
		}
	}
	s.window = kept
	h := w.Header()
	h.Set("X-RateLimit-Limit", "30")
	if len(s.window) >= 30 {
		reset := time.Second - now.Sub(s.window[0])
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatFloat(reset.Seconds(), 'f', 3, 64))
		s.limited++
		return reset.Seconds(), false
	}
	s.window = append(s.window, now)
	h.Set("X-RateLimit-Remaining", strconv.Itoa(30-len(s.window)))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat((time.Second-now.Sub(s.window[0])).Seconds(), 'f', 3, 64))
	return 0, true
}

func (s *tfcSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	key := r.URL.Path + "|" + q.Get("page[number]")
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	if t, ok := s.notBefore[key]; ok && time.Now().Before(t) {
		s.early++
	}
	s.mu.Unlock()

	if r.Header.Get("Authorization") != "Bearer "+s.token {
		tfcError(w, 401, "unauthorized")
		return
	}
	if wait, ok := s.limit(w); !ok || fault == http.StatusTooManyRequests {
		if ok {
			wait = 0.766
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", "0.766")
		}
		s.mu.Lock()
		s.notBefore[key] = time.Now().Add(time.Duration(wait * float64(time.Second)))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/vnd.api+json")
		w.WriteHeader(429)
		_, _ = w.Write([]byte(`{"errors":[{"status":"429","title":"Too many requests","detail":"You have exceeded the API's rate limit."}]}`))
		return
	}
	if fault != 0 {
		tfcError(w, fault, http.StatusText(fault))
		return
	}
	size, ok := queryInt(q, "page[size]", 20, 1)
	if !ok {
		tfcError(w, 400, "invalid page[size]")
		return
	}
	size = min(size, 100)
	number, ok := queryInt(q, "page[number]", 1, 1)
	if !ok {
		tfcError(w, 400, "invalid page[number]")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var list []map[string]any
	switch {
	case len(parts) == 5 && parts[2] == "organizations" && parts[4] == "workspaces":
		if parts[3] != s.org {
			tfcError(w, 404, "not found")
			return
		}
		list = s.workspaces
	case len(parts) == 5 && parts[2] == "workspaces" && parts[4] == "runs":
		var ok bool
		if list, ok = s.runs[parts[3]]; !ok {
			tfcError(w, 404, "not found")
			return
		}
	default:
		tfcError(w, 404, "not found")
		return
	}
	pages := max((len(list)+size-1)/size, 1)
	from := min((number-1)*size, len(list))
	end := min(from+size, len(list))
	link := func(n int) any {
		if n < 1 || n > pages {
			return nil
		}
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		u.RawQuery = url.Values{"page[number]": {strconv.Itoa(n)}, "page[size]": {strconv.Itoa(size)}}.Encode()
		return u.String()
	}
	var next, prev any
	if number < pages {
		next = number + 1
	}
	if number > 1 {
		prev = number - 1
	}
	body := map[string]any{"data": list[from:end],
		"links": map[string]any{"self": link(number), "first": link(1), "prev": link(number - 1), "next": link(number + 1), "last": link(pages)},
		"meta": map[string]any{"pagination": map[string]any{"current-page": number, "page-size": size, "prev-page": prev, "next-page": next,
			"total-pages": pages, "total-count": len(list)}}}
	w.Header().Set("Content-Type", "application/vnd.api+json")
	writeJSONAs(w, 200, body)
}

func (s *tfcSim) asked(path string) []*http.Request { return requestsTo(&s.mu, &s.requests, path) }

// HCP Terraform: every workspace and every run of each written once,
// followed by links.next over bracketed page[number]/page[size] params
// from vnd.api+json answers; the 30-a-second limit's 429s (reset a
// decimal of seconds, no Retry-After) and a 503 mid-chain retried, not
// lost, none before its reset; the token never printed.
func TestTerraformCloud(t *testing.T) {
	t.Parallel()
	sim := newTFCSim(tfcToken, "acme")
	sim.faults["/api/v2/workspaces/ws-0000000000000000/runs|2"] = []int{503, 429}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "terraform-cloud.yaml", map[string]string{"api_url": srv.URL, "token": tfcToken, "organization": "acme"}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantWS, wantRuns []string
	for _, ws := range sim.workspaces {
		wantWS = append(wantWS, ws["id"].(string))
		for _, run := range sim.runs[ws["id"].(string)] {
			wantRuns = append(wantRuns, run["id"].(string))
		}
	}
	sameIDs(t, "workspaces", wantWS, column(r.rows["workspaces"], "id"))
	sameIDs(t, "runs, each once", wantRuns, column(r.rows["runs"], "id"))
	for _, row := range r.rows["runs"] {
		if row["workspace_id"] == nil || !strings.HasPrefix(fmt.Sprint(row["workspace_id"]), "ws-") {
			t.Errorf("run %v has no workspace id: %v", row["id"], row)
			break
		}
	}
	for _, row := range r.rows["workspaces"] {
		if row["id"] == "ws-0000000000000001" && (row["created_at"] == nil || row["terraform_version"] != "1.9.5" || row["resource_count"] == nil) {
			t.Errorf("workspace 1 row = %v, want its dash-named attributes", row)
		}
	}
	// 130 workspaces at 100 a page: two pages; each asks page[size]=100.
	if n := len(sim.asked("/api/v2/organizations/acme/workspaces")); n < 2 {
		t.Errorf("%d workspace requests, want at least 2", n)
	}
	for _, p := range sim.asked("/api/v2/workspaces/ws-0000000000000000/runs") {
		if p.URL.Query().Get("page[size]") != "100" {
			t.Errorf("runs request %s: page[size] is not 100", p.URL.RawQuery)
		}
	}
	if s := stream(r.res, "runs"); s.Retries < 2 {
		t.Errorf("runs retries = %d, want at least 2 (the 503, the 429)", s.Retries)
	}
	t.Logf("%d requests, %d refused by the 30-a-second limit", len(sim.requests), sim.limited)
	if sim.early > 0 {
		t.Errorf("%d pages asked again before the reset (x-ratelimit-reset, decimal seconds) of their 429", sim.early)
	}
	noDuplicates(t, r)
	noSecret(t, r, tfcToken)
}

// HCP Terraform's errors fail the run with their status and title, naming
// the stream; the token is never printed.
func TestTerraformCloudErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong token", sets: map[string]string{"token": "WrongWrongWrong.atlasv1.0000000000000"},
			want: []string{"workspaces", "401 unauthorized"}},
		{name: "an organization the token cannot see", sets: map[string]string{"organization": "other"},
			want: []string{"workspaces", "404 not found"}},
		{name: "a 502 on every attempt",
			faults: map[string][]int{"/api/v2/workspaces/ws-0000000000000004/runs|": {502, 502, 502, 502, 502, 502, 502, 502}},
			want:   []string{"runs", "ws-0000000000000004", "502"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newTFCSim(tfcToken, "acme")
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL, "token": tfcToken, "organization": "acme"}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "terraform-cloud.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, tfcToken, sets["token"])
		})
	}
}

// writeJSONAs answers v with status, keeping the Content-Type already set
// (JSON:API's application/vnd.api+json).
func writeJSONAs(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
