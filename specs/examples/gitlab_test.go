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

// gitlabSim answers /projects and /projects/{id}/issues as GitLab's REST
// API v4 does (facts from its REST API "Pagination" and "Rate limits"
// pages and the Projects and Issues references): /projects lists every
// visible project unless membership=true; keyset paging
// (pagination=keyset, order_by=id) links the next page in Link rel="next",
// none on the last page; offset paging of /projects fails past offset
// 50,000 with a 405; issues are paged by page number with X-Page,
// X-Per-Page, X-Next-Page (empty on the last page) and X-Prev-Page,
// X-Total and X-Total-Pages only up to 10,000 items; per_page at most 100,
// default 20; issues newest first unless sort=asc; 429 with a plain-text
// body, Retry-After and RateLimit-*; errors {"message": …}; the token in
// PRIVATE-TOKEN.
type gitlabSim struct {
	token    string
	projects []map[string]any // the user's; others are public ones
	public   []map[string]any
	issues   map[int][]map[string]any // project id -> its issues, oldest first
	// created[project id] is an issue created once that project's
	// second issues page has been asked for.
	created map[int]map[string]any
	// bigTotal: a project's issue count above which X-Total is left out.
	bigTotal int
	// stopEarly: a path whose second page links to no next one, as a
	// server that ends paging early does.
	stopEarly string

	mu       sync.Mutex
	requests []*http.Request
	// faults[path + "|" + page or id_after] are answered, in order, to
	// the first requests for that page.
	faults map[string][]int
}

func newGitLabSim(token string) *gitlabSim {
	s := &gitlabSim{token: token, issues: map[int][]map[string]any{}, created: map[int]map[string]any{}, faults: map[string][]int{}, bigTotal: 10000}
	base := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return base.Add(d).Format("2006-01-02T15:04:05.000Z") }
	issueID := 900000
	// 230 member projects (three keyset pages); issues: 250 on the first
	// (three pages, the last short), exactly 200 on the second (two full
	// pages, X-Next-Page empty on the second), none on the third.
	for i := range 230 {
		id := 5000 + i*3
		p := map[string]any{"id": id, "name": fmt.Sprintf("svc-%d", i), "path_with_namespace": fmt.Sprintf("acme/svc-%d", i),
			"default_branch": "main", "visibility": "private", "created_at": ts(time.Duration(i) * time.Hour),
			"last_activity_at": ts(time.Duration(i)*time.Hour + time.Minute), "web_url": fmt.Sprintf("https://gitlab.example/acme/svc-%d", i)}
		if i%9 == 0 {
			p["default_branch"] = nil // an empty repository has none
		}
		s.projects = append(s.projects, p)
		n := map[int]int{0: 250, 1: 200, 2: 0}[i]
		if i > 2 {
			n = i % 4
		}
		s.issues[id] = []map[string]any{}
		for j := range n {
			issueID++
			s.issues[id] = append(s.issues[id], gitlabIssue(issueID, id, j+1, ts(time.Duration(j)*time.Minute)))
		}
	}
	s.created[5000] = gitlabIssue(999999, 5000, 251, ts(time.Hour*24*365))
	for i := range 40 {
		s.public = append(s.public, map[string]any{"id": 100 + i, "name": fmt.Sprintf("public-%d", i), "path_with_namespace": fmt.Sprintf("else/public-%d", i),
			"visibility": "public", "created_at": ts(0), "last_activity_at": ts(0), "web_url": "https://gitlab.example/else"})
	}
	return s
}

func gitlabIssue(id, project, iid int, created string) map[string]any {
	is := map[string]any{"id": id, "iid": iid, "project_id": project, "title": fmt.Sprintf("Issue %d", iid),
		"state": "opened", "created_at": created, "updated_at": created, "closed_at": nil,
		"labels": []string{}, "author": map[string]any{"id": 7, "username": "ada"}, "assignees": []any{},
		"web_url": fmt.Sprintf("https://gitlab.example/-/issues/%d", id)}
	if iid%3 == 0 {
		is["state"], is["closed_at"] = "closed", created
		is["labels"] = []string{"bug", "p2"}
		is["assignees"] = []any{map[string]any{"id": 8, "username": "grace"}}
	}
	return is
}

func gitlabError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg})
}

func (s *gitlabSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pos := q.Get("page") + q.Get("id_after")
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	key := r.URL.Path + "|" + pos
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	s.mu.Unlock()

	w.Header().Set("RateLimit-Limit", "2000")
	w.Header().Set("RateLimit-Observed", "12")
	w.Header().Set("RateLimit-Remaining", "1988")
	reset := time.Now().Add(time.Second).Truncate(time.Second)
	w.Header().Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	w.Header().Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
	if r.Header.Get("PRIVATE-TOKEN") != s.token {
		gitlabError(w, 401, "401 Unauthorized")
		return
	}
	switch fault {
	case 0:
	case http.StatusTooManyRequests:
		w.Header().Set("RateLimit-Remaining", "0")
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(fault)
		_, _ = w.Write([]byte("Retry later\n"))
		return
	default:
		gitlabError(w, fault, strconv.Itoa(fault)+" Bad Gateway")
		return
	}
	perPage := 20
	if v := q.Get("per_page"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			perPage = min(n, 100)
		}
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/projects":
		list := s.projects
		if q.Get("membership") != "true" {
			list = append(slices.Clone(s.public), s.projects...)
		}
		if q.Get("pagination") != "keyset" {
			page, _ := strconv.Atoi(q.Get("page"))
			if max(page-1, 0)*perPage >= 50000 {
				gitlabError(w, 405, "Offset pagination has a maximum allowed offset of 50000 for requests that return objects of type Project. Remaining records can be retrieved using keyset pagination.")
				return
			}
			s.offsetPage(w, r, list, perPage, len(list))
			return
		}
		if q.Get("order_by") != "id" {
			gitlabError(w, 405, "This endpoint does not support keyset pagination with the given ordering")
			return
		}
		from := 0
		if after := q.Get("id_after"); after != "" {
			a, err := strconv.Atoi(after)
			if err != nil {
				gitlabError(w, 400, "id_after is invalid")
				return
			}
			from = slices.IndexFunc(list, func(p map[string]any) bool { return p["id"].(int) > a })
			if from < 0 {
				from = len(list)
			}
		}
		end := min(from+perPage, len(list))
		if end < len(list) {
			next := *r.URL
			next.Scheme, next.Host = "http", r.Host
			nq := next.Query()
			nq.Set("id_after", strconv.Itoa(list[end-1]["id"].(int)))
			next.RawQuery = nq.Encode()
			w.Header().Set("Link", "<"+next.String()+`>; rel="next"`)
		}
		writeJSON(w, 200, list[from:end])
	case len(parts) == 3 && parts[0] == "projects" && parts[2] == "issues":
		id, _ := strconv.Atoi(parts[1])
		s.mu.Lock()
		list, ok := s.issues[id]
		if q.Get("page") == "2" && s.created[id] != nil {
			// Created while the project is read: the newest issue.
			list = append(list, s.created[id])
			s.issues[id], s.created[id] = list, nil
		}
		list = slices.Clone(list)
		s.mu.Unlock()
		if !ok {
			gitlabError(w, 404, "404 Project Not Found")
			return
		}
		if q.Get("sort") != "asc" {
			slices.Reverse(list)
		}
		s.offsetPage(w, r, list, perPage, s.bigTotal)
	default:
		gitlabError(w, 404, "404 Not Found")
	}
}

// offsetPage answers one page of list by page number, with GitLab's
// pagination headers; X-Total and X-Total-Pages only up to maxTotal items.
func (s *gitlabSim) offsetPage(w http.ResponseWriter, r *http.Request, list []map[string]any, perPage, maxTotal int) {
	page := 1
	if v := r.URL.Query().Get("page"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			page = n
		}
	}
	from := min((page-1)*perPage, len(list))
	end := min(from+perPage, len(list))
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Prev-Page", "")
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
	}
	h.Set("X-Next-Page", "")
	if end < len(list) && (r.URL.Path != s.stopEarly || page != 2) {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
	}
	if len(list) <= maxTotal {
		h.Set("X-Total", strconv.Itoa(len(list)))
		h.Set("X-Total-Pages", strconv.Itoa(max((len(list)+perPage-1)/perPage, 1)))
	}
	writeJSON(w, 200, list[from:end])
}

func (s *gitlabSim) asked(path string) []*http.Request {
	return requestsTo(&s.mu, &s.requests, path)
}

const gitlabToken = "glpat-SimulatorOnlyExampleToken01"

// GitLab: every member project over keyset pages (no public project of
// others), every issue of every project each written once, the one created
// mid-read too, paged by X-Next-Page also where X-Total is left out; a 502
// and a 429 of a spent budget on a keyset page (early in the run: it must
// not pace the rest to the handful of requests sent before it), and a 429
// with a plain-text body mid-chain are retried,
// not lost; the token is never printed.
func TestGitLab(t *testing.T) {
	t.Parallel()
	sim := newGitLabSim(gitlabToken)
	sim.bigTotal = 220 // the first project's 250 issues come without X-Total
	sim.faults["/projects|"+strconv.Itoa(sim.projects[99]["id"].(int))] = []int{502, 429}
	sim.faults["/projects/5003/issues|2"] = []int{429}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "gitlab.yaml", map[string]string{"api_url": srv.URL, "token": gitlabToken}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantProjects []string
	for _, p := range sim.projects {
		wantProjects = append(wantProjects, strconv.Itoa(p["id"].(int)))
	}
	sameIDs(t, "projects", wantProjects, column(r.rows["projects"], "id"))
	var wantIssues []string
	for _, list := range sim.issues {
		for _, is := range list {
			wantIssues = append(wantIssues, strconv.Itoa(is["id"].(int)))
		}
	}
	slices.Sort(wantIssues)
	gotIssues := ids(r.rows["issues"], "id")
	slices.Sort(gotIssues)
	if d := cmp.Diff(wantIssues, gotIssues); d != "" {
		t.Errorf("issues, each once (-want +got):\n%s", d)
	}
	if !slices.Contains(gotIssues, "999999") {
		t.Errorf("the issue created while its project was read is missing")
	}

	// 230 projects at 100 a keyset page: three, the second retried twice.
	pages := sim.asked("/projects")
	if len(pages) != 5 {
		t.Errorf("%d project requests, want 5 (three keyset pages, the second retried twice)", len(pages))
	}
	for i, p := range pages {
		if q := p.URL.Query(); q.Get("pagination") != "keyset" || q.Get("order_by") != "id" || q.Get("membership") != "true" {
			t.Errorf("project request %d: %s, want keyset paging by id over the user's projects", i, p.URL.RawQuery)
		}
	}
	for id, want := range map[int]int{5000: 3, 5003: 3, 5006: 1} {
		if n := len(sim.asked(fmt.Sprintf("/projects/%d/issues", id))); n != want {
			t.Errorf("%d requests for project %d's issues, want %d", n, id, want)
		}
	}
	if s := stream(r.res, "projects"); s.Retries != 2 {
		t.Errorf("projects retries = %d, want 2 (the 502, the 429)", s.Retries)
	}
	if s := stream(r.res, "issues"); s.Retries != 1 {
		t.Errorf("issues retries = %d, want 1 (the 429)", s.Retries)
	}
	for _, row := range r.rows["issues"] {
		if fmt.Sprint(row["id"]) == "900003" {
			if row["state"] != "closed" || row["labels"] != "bug,p2" || row["assignees"] != "grace" || row["author"] != "ada" {
				t.Errorf("issue 900003 row = %v, want closed, labels bug,p2, assignee grace, author ada", row)
			}
		}
	}
	noSecret(t, r, gitlabToken)
}

// GitLab: a project whose issue pages stop early (X-Next-Page empty on the
// second of three pages while X-Total says 250) fails the run naming the
// project and the counts, with the issues read written; the spec's
// total_header is what catches it (without it the run exits 0, 50 issues
// unread).
func TestGitLabStopsEarly(t *testing.T) {
	t.Parallel()
	sim := newGitLabSim(gitlabToken)
	sim.stopEarly = "/projects/5000/issues" // 250 issues, 100 a page
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "gitlab.yaml", map[string]string{"api_url": srv.URL, "token": gitlabToken}, time.Time{})
	failedRun(t, r, []string{"issues", "id=5000", "paging ended after 200 items, but page 1 said the list holds 250"})
	n := 0
	for _, row := range r.rows["issues"] {
		if fmt.Sprint(row["project_id"]) == "5000" {
			n++
		}
	}
	if n != 200 {
		t.Errorf("%d issues of project 5000 written, want the 200 read", n)
	}
}

// GitLab's errors fail the run with its message, naming the stream; the
// token is never printed.
func TestGitLabErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong token", sets: map[string]string{"token": "glpat-WrongWrongWrongWrong00"},
			want: []string{"projects", "401", "401 Unauthorized"}},
		{name: "a 502 on every attempt",
			faults: map[string][]int{"/projects/5006/issues|": {502, 502, 502, 502, 502, 502, 502, 502}},
			want:   []string{"issues", "5006", "502"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newGitLabSim(gitlabToken)
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL, "token": gitlabToken}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "gitlab.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, gitlabToken, sets["token"])
		})
	}
}
