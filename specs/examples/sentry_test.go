package examples_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sentrySim answers /api/0/organizations/{org}/projects/ and
// /api/0/projects/{org}/{project}/issues/ as Sentry's API does (facts from
// its API reference, "Paginating Results" and "Rate Limits"): JSON arrays
// paged by a Link header that always carries both a rel="previous" and a
// rel="next" link, each with results="true"|"false" and its cursor
// ("value:offset:is_prev"); a cursor past the end answers an empty page
// whose next link again says results="false"; at most 100 objects a page
// (per_page above is served 100); an issue list without `query` holds only
// unresolved issues; X-Sentry-Rate-Limit-* headers on every answer; 429
// with Retry-After; errors {"detail": "…"}; the token as a bearer token.
type sentrySim struct {
	token    string
	org      string
	projects []map[string]any
	issues   map[string][]map[string]any // project slug -> its issues

	mu       sync.Mutex
	requests []*http.Request
	// faults[path + "|" + cursor] are answered, in order, to the first
	// requests for that page ("" is the first page's cursor).
	faults map[string][]int
}

func newSentrySim(token string) *sentrySim {
	s := &sentrySim{token: token, org: "acme", issues: map[string][]map[string]any{}, faults: map[string][]int{}}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// 130 projects: two pages. Issues: 250 on one (three pages, the last
	// short), exactly 100 on another (one full page, then results="false"),
	// none on a third.
	counts := map[int]int{0: 250, 1: 100, 2: 0, 3: 7}
	statuses := []string{"unresolved", "resolved", "ignored", "unresolved"}
	n := 0
	for i := range 130 {
		slug := fmt.Sprintf("svc-%03d", i)
		p := map[string]any{"id": strconv.Itoa(4500000 + i), "slug": slug, "name": fmt.Sprintf("Service %d", i),
			"dateCreated": base.Add(time.Duration(i) * time.Hour).Format("2006-01-02T15:04:05.000000Z")}
		if i%5 != 0 {
			p["platform"] = "go" // null for a project whose platform was never set
		} else {
			p["platform"] = nil
		}
		s.projects = append(s.projects, p)
		c, ok := counts[i]
		if !ok {
			c = 1
		}
		s.issues[slug] = []map[string]any{}
		for j := range c {
			n++
			is := map[string]any{"id": strconv.Itoa(6000000000 + n), "shortId": fmt.Sprintf("%s-%X", strings.ToUpper(slug), j+1),
				"title": fmt.Sprintf("Error %d in %s", j, slug), "culprit": fmt.Sprintf("handler.go in serve%d", j%4),
				"level": "error", "status": statuses[j%len(statuses)], "count": strconv.Itoa(10 * (j + 1)), "userCount": j % 3,
				"firstSeen": base.Add(time.Duration(j) * time.Minute).Format(time.RFC3339Nano), "lastSeen": base.Add(time.Duration(j)*time.Minute + time.Hour).Format(time.RFC3339Nano),
				"permalink": fmt.Sprintf("https://acme.sentry.io/issues/%d/", 6000000000+n), "assignedTo": nil,
				"project": map[string]any{"id": p["id"], "slug": slug, "name": p["name"]}}
			if j%4 == 1 {
				is["assignedTo"] = map[string]any{"type": "user", "id": "17", "name": "Ada"}
			}
			s.issues[slug] = append(s.issues[slug], is)
		}
	}
	return s
}

func sentryError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]any{"detail": detail})
}

func (s *sentrySim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	key := r.URL.Path + "|" + q.Get("cursor")
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	s.mu.Unlock()

	// Every answer reports the caller's budget on this endpoint.
	reset := time.Now().Add(time.Second).Unix()
	w.Header().Set("X-Sentry-Rate-Limit-Limit", "40")
	w.Header().Set("X-Sentry-Rate-Limit-Remaining", "39")
	w.Header().Set("X-Sentry-Rate-Limit-Reset", strconv.FormatInt(reset, 10))
	w.Header().Set("X-Sentry-Rate-Limit-ConcurrentLimit", "25")
	w.Header().Set("X-Sentry-Rate-Limit-ConcurrentRemaining", "24")
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		sentryError(w, 401, "Invalid token")
		return
	}
	switch fault {
	case 0:
	case http.StatusTooManyRequests:
		w.Header().Set("X-Sentry-Rate-Limit-Remaining", "0")
		w.Header().Set("Retry-After", "1")
		sentryError(w, fault, "You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds")
		return
	default:
		sentryError(w, fault, "Internal Error")
		return
	}
	var list []map[string]any
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 5 && parts[2] == "organizations" && parts[4] == "projects":
		if parts[3] != s.org {
			sentryError(w, 404, "The requested resource does not exist")
			return
		}
		list = s.projects
	case len(parts) == 6 && parts[2] == "projects" && parts[5] == "issues":
		issues, ok := s.issues[parts[4]]
		if parts[3] != s.org || !ok {
			sentryError(w, 404, "The requested resource does not exist")
			return
		}
		query, asked := q["query"]
		for _, is := range issues {
			// No query means is:unresolved; an empty one means everything.
			if (!asked && is["status"] == "unresolved") || (asked && query[0] == "") {
				list = append(list, is)
			}
		}
	default:
		sentryError(w, 404, "The requested resource does not exist")
		return
	}
	size := 100
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 && v < size {
		size = v
	}
	from := 0
	if c := q.Get("cursor"); c != "" {
		f := strings.Split(c, ":")
		n, err := strconv.Atoi(f[min(1, len(f)-1)])
		if len(f) != 3 || err != nil || n < 0 {
			sentryError(w, 400, "Invalid cursor parameter.")
			return
		}
		from = n
	}
	end := min(from+size, len(list))
	page := []map[string]any{}
	if from < len(list) {
		page = list[from:end]
	}
	// Both links are always there; results says whether following one
	// finds anything. The next cursor moves on even past the end.
	link := func(offset int, prev, results bool) string {
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		qq := u.Query()
		cursor := fmt.Sprintf("0:%d:%d", offset, map[bool]int{false: 0, true: 1}[prev])
		qq.Set("cursor", cursor)
		u.RawQuery = qq.Encode()
		rel := map[bool]string{false: "next", true: "previous"}[prev]
		return fmt.Sprintf(`<%s>; rel="%s"; results="%t"; cursor="%s"`, u.String(), rel, results, cursor)
	}
	w.Header().Set("Link", link(max(from-size, 0), true, from > 0 && from <= len(list))+", "+link(from+size, false, from+size < len(list)))
	writeJSON(w, 200, page)
}

func (s *sentrySim) asked(prefix string) []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*http.Request
	for _, r := range s.requests {
		if strings.HasPrefix(r.URL.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

const sentryToken = "sntrys_eyJpYXQiOjE3MDAwMDAwMDAsInNpbXVsYXRvciI6dHJ1ZX0_ExampleOnly"

// Sentry: every project over two pages and every issue of every project
// (resolved and ignored ones too), each written exactly once; the chain
// ends on the next link that says results="false" instead of following
// it; a 429 on a later page and a 502 are retried, not lost; the token is
// never printed.
func TestSentry(t *testing.T) {
	t.Parallel()
	sim := newSentrySim(sentryToken)
	issues := "/api/0/projects/acme/svc-000/issues/"
	sim.faults[issues+"|0:100:0"] = []int{429}
	sim.faults[issues+"|0:200:0"] = []int{502}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "sentry.yaml", map[string]string{"api_url": srv.URL, "auth_token": sentryToken, "organization": "acme"}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantProjects []string
	for _, p := range sim.projects {
		wantProjects = append(wantProjects, p["id"].(string))
	}
	gotProjects := ids(r.rows["projects"], "id")
	slices.Sort(gotProjects)
	if d := cmp.Diff(wantProjects, gotProjects); d != "" {
		t.Errorf("projects (-want +got):\n%s", d)
	}
	var wantIssues []string
	for _, list := range sim.issues {
		for _, is := range list {
			wantIssues = append(wantIssues, is["id"].(string))
		}
	}
	sameIDs(t, "issues, each once", wantIssues, ids(r.rows["issues"], "id"))

	// Each chain reads its pages and stops at results="false": projects
	// 2 pages; svc-000 3 pages (+ the 429 and the 502); svc-001 one full
	// page; svc-002 one empty page; the 126 others one page each.
	if n := len(sim.asked("/api/0/organizations/")); n != 2 {
		t.Errorf("%d project requests, want 2 (130 projects at 100 a page)", n)
	}
	for slug, want := range map[string]int{"svc-000": 5, "svc-001": 1, "svc-002": 1, "svc-003": 1} {
		if n := len(sim.asked("/api/0/projects/acme/" + slug + "/")); n != want {
			t.Errorf("%d requests for %s's issues, want %d", n, slug, want)
		}
	}
	if n := len(sim.asked("/api/0/projects/")); n != 130+4 {
		t.Errorf("%d issue requests, want %d (a page per project, two more for svc-000, two retries)", n, 130+4)
	}
	if s := stream(r.res, "issues"); s.Retries != 2 {
		t.Errorf("issues retries = %d, want 2 (the 429 and the 502)", s.Retries)
	}
	for _, req := range sim.asked("/api/0/projects/") {
		if q, ok := req.URL.Query()["query"]; !ok || q[0] != "" {
			t.Errorf("%s: query = %q, want an empty query (none means is:unresolved)", req.URL, q)
			break
		}
	}
	byID := map[string]map[string]any{}
	for _, row := range r.rows["issues"] {
		byID[fmt.Sprint(row["id"])] = row
	}
	first := sim.issues["svc-000"][1]
	if row := byID[first["id"].(string)]; row == nil || row["assignee"] != "Ada" || row["count"] != "20" || row["project"] != "svc-000" || row["status"] != "resolved" {
		t.Errorf("issue %s row = %v, want assignee Ada, count \"20\", project svc-000, status resolved", first["id"], row)
	}
	if !r.res.Summary.Tables["issues"] || !r.res.Summary.Tables["projects"] {
		t.Errorf("tables that may be reconciled = %v", r.res.Summary.Tables)
	}
	noSecret(t, r, sentryToken)
}

// Sentry's errors fail the run with its detail, naming the stream; a
// page cap is never mistaken for the end.
func TestSentryErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong token", sets: map[string]string{"auth_token": "sntrys_wrong_wrong_wrong_wrong"},
			want: []string{"projects", "401", "Invalid token"}},
		{name: "an unknown organization", sets: map[string]string{"organization": "nope"},
			want: []string{"projects", "404", "does not exist"}},
		{name: "a 500 on every attempt",
			faults: map[string][]int{"/api/0/projects/acme/svc-001/issues/|": {500, 500, 500, 500, 500, 500, 500, 500, 500, 500}},
			want:   []string{"issues", "svc-001", "500"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newSentrySim(sentryToken)
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL, "auth_token": sentryToken, "organization": "acme"}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "sentry.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, sentryToken, sets["auth_token"])
		})
	}
}
