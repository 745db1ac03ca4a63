package examples_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine"
)

// jiraSim answers /rest/api/3/project/search and /rest/api/3/search/jql as
// Jira Cloud does (facts from its REST API reference and its public issue
// tracker): basic auth with email and API token (a wrong one is a 401 with
// a body that is not JSON); project search paged by startAt with
// maxResults capped at 50 (default 50) and {startAt, maxResults, total,
// isLast, values}; issue search paged by an opaque nextPageToken that is
// absent on the last page, maxResults capped at 100 unless only id or key
// is asked (default 50), only the id of each issue unless `fields` is
// given, an unbounded JQL a 400; optional fields null, and `priority`
// absent in projects without it; errors {"errorMessages", "errors"}.
type jiraSim struct {
	email, token string
	projects     []map[string]any
	issues       map[string][]map[string]any // project id -> issues

	mu       sync.Mutex
	requests []*http.Request
	// faults[project id] answer that project's first search.
	faults map[string]jiraFault
	// move, when set, moves an issue to another project once its project's
	// search has listed it; the other project's search waits for that.
	move *jiraMove
}

// jiraMove is an issue moved between projects while they are read: Jira
// keeps its id and gives it a key of its new project.
type jiraMove struct {
	from, to string // project ids
	issue    string // issue id
	done     chan struct{}
}

type jiraFault struct {
	status  int // 429: rate limited; 400: the project is gone; 200: isLast false without a token
	message string
}

func newJiraSim(email, token string) *jiraSim {
	s := &jiraSim{email: email, token: token, issues: map[string][]map[string]any{}, faults: map[string]jiraFault{}}
	n := 0
	for i := range 120 {
		id := strconv.Itoa(10000 + i)
		key := fmt.Sprintf("P%03d", i)
		s.projects = append(s.projects, map[string]any{"id": id, "key": key, "name": fmt.Sprintf("Project %d", i),
			"projectTypeKey": "software", "style": "next-gen", "simplified": true,
			"self": "https://acme.atlassian.net/rest/api/3/project/" + id})
		count := i % 4
		switch i {
		case 0:
			count = 230
		case 1:
			count = 0
		}
		for j := range count {
			n++
			created := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour)
			fields := map[string]any{
				"summary":   fmt.Sprintf("%s issue %d", key, j+1),
				"status":    map[string]any{"name": "Done", "id": "10001"},
				"issuetype": map[string]any{"name": "Task", "id": "10002"},
				"reporter":  map[string]any{"accountId": "5b10ac8d82e05b22cc7d4ef5"},
				"created":   created.Format("2006-01-02T15:04:05.000-0700"),
				"updated":   created.Add(2 * time.Hour).Format("2006-01-02T15:04:05.000-0700"),
				// Optional fields: unset is null.
				"assignee":       nil,
				"resolutiondate": nil,
			}
			if j%3 != 0 {
				fields["assignee"] = map[string]any{"accountId": "5b10a2844c20165700ede21g"}
				fields["resolutiondate"] = created.Add(3 * time.Hour).Format("2006-01-02T15:04:05.000-0700")
			}
			if i%5 != 0 { // the others have no priority field at all
				fields["priority"] = map[string]any{"name": "Medium", "id": "3"}
			}
			issueID := strconv.Itoa(20000 + n)
			s.issues[id] = append(s.issues[id], map[string]any{"id": issueID, "key": fmt.Sprintf("%s-%d", key, j+1),
				"self": "https://acme.atlassian.net/rest/api/3/issue/" + issueID, "fields": fields})
		}
	}
	return s
}

func jiraError(w http.ResponseWriter, status int, msgs []string, errs map[string]string) {
	if errs == nil {
		errs = map[string]string{}
	}
	writeJSON(w, status, map[string]any{"errorMessages": msgs, "errors": errs})
}

var jqlProject = regexp.MustCompile(`^project = (\d+)( ORDER BY .*)?$`)

func (s *jiraSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	s.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != s.email || p != s.token {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(401)
		_, _ = w.Write([]byte("Client must be authenticated to access this resource."))
		return
	}
	q := r.URL.Query()
	size := func(def, capped int) (int, bool) {
		v := q.Get("maxResults")
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			jiraError(w, 400, []string{"maxResults must be a non-negative integer"}, nil)
			return 0, false
		}
		return min(n, capped), true
	}
	switch r.URL.Path {
	case "/rest/api/3/project/search":
		limit, ok := size(50, 50)
		if !ok {
			return
		}
		at, _ := strconv.Atoi(q.Get("startAt"))
		end := min(at+limit, len(s.projects))
		page := s.projects[min(at, len(s.projects)):end]
		writeJSON(w, 200, map[string]any{"self": r.URL.String(), "maxResults": limit, "startAt": at,
			"total": len(s.projects), "isLast": end >= len(s.projects), "values": page})
	case "/rest/api/3/search/jql":
		m := jqlProject.FindStringSubmatch(q.Get("jql"))
		if m == nil {
			jiraError(w, 400, []string{"unbounded JQL: add a search restriction such as a project"}, nil)
			return
		}
		project := m[1]
		s.mu.Lock()
		mv := s.move
		s.mu.Unlock()
		if mv != nil && project == mv.to {
			select {
			case <-mv.done:
			case <-time.After(10 * time.Second): // the test then finds the issue not moved
			case <-r.Context().Done():
				return
			}
		}
		s.mu.Lock()
		issues, known := s.issues[project]
		s.mu.Unlock()
		if !known && !slices.ContainsFunc(s.projects, func(p map[string]any) bool { return p["id"] == project }) {
			jiraError(w, 400, []string{"project " + project + " does not exist or you may not browse it"}, map[string]string{})
			return
		}
		s.mu.Lock()
		fault, faulty := s.faults[project]
		delete(s.faults, project)
		s.mu.Unlock()
		switch {
		case faulty && fault.status == 429:
			w.Header().Set("Retry-After", "1")
			w.Header().Set("X-RateLimit-Reset", time.Now().UTC().Add(time.Second).Format("2006-01-02T15:04Z"))
			jiraError(w, 429, []string{fault.message}, nil)
			return
		case faulty && fault.status == 200:
			writeJSON(w, 200, map[string]any{"issues": []any{}, "isLast": false})
			return
		case faulty:
			jiraError(w, fault.status, []string{fault.message}, map[string]string{"jql": "not valid any more"})
			return
		}
		var fields []string
		for _, f := range q["fields"] {
			fields = append(fields, strings.Split(f, ",")...)
		}
		capped := 100
		if !slices.ContainsFunc(fields, func(f string) bool { return f != "id" && f != "key" }) {
			capped = 5000
		}
		limit, ok := size(50, capped)
		if !ok {
			return
		}
		at := 0
		if tok := q.Get("nextPageToken"); tok != "" {
			raw, err := base64.URLEncoding.DecodeString(tok)
			after, found := strings.CutPrefix(string(raw), "jira-sim:"+project+":")
			if err != nil || !found {
				jiraError(w, 400, []string{"the nextPageToken is not valid"}, nil)
				return
			}
			at, _ = strconv.Atoi(after)
		}
		end := min(at+limit, len(issues))
		page := []map[string]any{}
		for _, in := range issues[min(at, len(issues)):end] {
			out := map[string]any{"id": in["id"]}
			if len(fields) > 0 {
				out["key"], out["self"] = in["key"], in["self"]
				got := map[string]any{}
				for _, f := range fields {
					if v, ok := in["fields"].(map[string]any)[f]; ok {
						got[f] = v
					}
				}
				out["fields"] = got
			}
			page = append(page, out)
		}
		body := map[string]any{"issues": page, "isLast": end >= len(issues)}
		if end < len(issues) {
			body["nextPageToken"] = base64.URLEncoding.EncodeToString([]byte(fmt.Sprintf("jira-sim:%s:%d", project, end)))
		}
		writeJSON(w, 200, body)
		if mv != nil && project == mv.from && slices.ContainsFunc(page, func(in map[string]any) bool { return in["id"] == mv.issue }) {
			s.moveIssue(mv)
		}
	default:
		jiraError(w, 404, []string{"not found"}, nil)
	}
}

// moveIssue moves mv's issue to its new project, under a new key, and
// lets that project's search go on.
func (s *jiraSim) moveIssue(mv *jiraMove) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.issues[mv.from], func(in map[string]any) bool { return in["id"] == mv.issue })
	if i < 0 {
		return
	}
	in := s.issues[mv.from][i]
	s.issues[mv.from] = slices.Delete(slices.Clone(s.issues[mv.from]), i, i+1)
	moved := map[string]any{"id": in["id"], "self": in["self"], "fields": in["fields"]}
	for _, p := range s.projects {
		if p["id"] == mv.to {
			moved["key"] = fmt.Sprintf("%s-%d", p["key"], len(s.issues[mv.to])+1)
		}
	}
	s.issues[mv.to] = append(slices.Clone(s.issues[mv.to]), moved)
	close(mv.done)
}

// searches lists the issue searches of one project, in order.
func (s *jiraSim) searches(project string) []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*http.Request
	for _, r := range s.requests {
		if r.URL.Path == "/rest/api/3/search/jql" && strings.HasPrefix(r.URL.Query().Get("jql"), "project = "+project+" ") {
			out = append(out, r)
		}
	}
	return out
}

const (
	jiraEmail = "ops@example.com"
	jiraToken = "ATATT3xFfGF0ExampleTokenForTheSimulatorOnly"
)

// Jira: every project though 1000 per page were asked and 50 served;
// every issue of every project (230 in one, over three pages of the 100
// served), with its fields (asked for: the search gives only ids
// otherwise) and null where an optional field is unset or absent; a 429
// is waited out; neither the token nor the basic credentials are printed.
func TestJira(t *testing.T) {
	t.Parallel()
	sim := newJiraSim(jiraEmail, jiraToken)
	sim.faults["10119"] = jiraFault{status: 429, message: "rate limit exceeded"}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "jira.yaml", map[string]string{"site": srv.URL, "email": jiraEmail, "api_token": jiraToken, "page_size": "1000"}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantProjects, wantIssues []string
	for _, p := range sim.projects {
		wantProjects = append(wantProjects, p["id"].(string))
		for _, in := range sim.issues[p["id"].(string)] {
			wantIssues = append(wantIssues, in["id"].(string))
		}
	}
	slices.Sort(wantProjects)
	slices.Sort(wantIssues)
	if d := cmp.Diff(wantProjects, column(r.rows["projects"], "id")); d != "" {
		t.Errorf("projects (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantIssues, column(r.rows["issues"], "id")); d != "" {
		t.Errorf("issues (-want +got), %d of %d:\n%s", len(r.rows["issues"]), len(wantIssues), d)
	}
	var starts []string
	for _, req := range sim.requests {
		if req.URL.Path == "/rest/api/3/project/search" {
			starts = append(starts, req.URL.Query().Get("startAt"))
		}
	}
	if d := cmp.Diff([]string{"0", "50", "100"}, starts); d != "" {
		t.Errorf("project pages' startAt (-want +got): by the 50 served, not the 1000 asked:\n%s", d)
	}
	if n := len(sim.searches("10000")); n != 3 {
		t.Errorf("%d searches of P000, want 3 (230 issues, 100 served a page)", n)
	}
	byKey := map[string]map[string]any{}
	for _, row := range r.rows["issues"] {
		byKey[fmt.Sprint(row["key"])] = row
		if row["summary"] == nil || row["status"] == nil || row["created"] == nil {
			t.Errorf("issue %v without summary, status or created: were its fields asked for?", row["key"])
		}
	}
	if row := byKey["P000-1"]; row == nil || row["priority"] != nil || row["assignee"] != nil || row["resolved"] != nil {
		t.Errorf("P000-1 = %v, want null priority (P000 has none), assignee and resolved (unset)", row)
	}
	if row := byKey["P003-2"]; row == nil || row["priority"] != "Medium" || row["assignee"] == nil || row["project"] != "P003" {
		t.Errorf("P003-2 = %v, want its priority, assignee and project", row)
	}
	if s := stream(r.res, "issues"); s.Retries != 1 || s.Errors != 0 {
		t.Errorf("issues counters = %+v, want one retry (the 429)", s)
	}
	if !r.res.Summary.Tables["issues"] || !r.res.Summary.Tables["projects"] {
		t.Errorf("tables that may be reconciled = %v", r.res.Summary.Tables)
	}
	noSecret(t, r, jiraToken, base64.StdEncoding.EncodeToString([]byte(jiraEmail+":"+jiraToken)))
}

// Jira's errors fail the run, naming the stream, the project, the status
// and Jira's messages; nothing secret is printed.
func TestJiraErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		token  string
		faults map[string]jiraFault
		want   []string
	}{
		{name: "a wrong token", token: "ATATT3xFfGF0WrongTokenWrongTokenWrong",
			want: []string{"stream projects", "401"}},
		{name: "a project gone between the listing and its search",
			faults: map[string]jiraFault{"10007": {status: 400, message: "project 10007 does not exist"}},
			want:   []string{"stream issues", "id=10007", "400", "project 10007 does not exist; jql: not valid any more"}},
		{name: "isLast false without a token",
			faults: map[string]jiraFault{"10002": {status: 200}},
			want:   []string{"stream issues", "id=10002", "isLast is false and there is no nextPageToken"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newJiraSim(jiraEmail, jiraToken)
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			token := jiraToken
			if c.token != "" {
				token = c.token
			}
			r := runVendor(t, "jira.yaml", map[string]string{"site": srv.URL, "email": jiraEmail, "api_token": token}, time.Time{})
			if r.err == nil {
				t.Fatalf("the run succeeded with %d issues: want it to fail", len(r.rows["issues"]))
			}
			if code := engine.ExitCode(r.err, false); code != engine.ExitFailed {
				t.Errorf("exit code %d, want %d", code, engine.ExitFailed)
			}
			for _, w := range c.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, r.err)
				}
			}
			noSecret(t, r, token, base64.StdEncoding.EncodeToString([]byte(jiraEmail+":"+token)))
		})
	}
}

// An issue moved to another project while the projects are read (listed
// under P003, then under P005 with a new key): it is the same issue, under
// its global id, so nothing is lost and the run succeeds, the issue in its
// new project (the last one read wins). The default duplicate rule took it
// for two records under one key: a collision, exit 1.
func TestJiraIssueMovedWhileRead(t *testing.T) {
	t.Parallel()
	sim := newJiraSim(jiraEmail, jiraToken)
	issue := sim.issues["10003"][1]["id"].(string)
	sim.move = &jiraMove{from: "10003", to: "10005", issue: issue, done: make(chan struct{})}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "jira.yaml", map[string]string{"site": srv.URL, "email": jiraEmail, "api_token": jiraToken}, time.Time{})
	select {
	case <-sim.move.done:
	default:
		t.Fatal("the issue was not moved: P003's search never listed it")
	}
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var rows []map[string]any
	for _, row := range r.rows["issues"] {
		if row["id"] == issue {
			rows = append(rows, row)
		}
	}
	// Rows as written: the last one of a key is what the table keeps.
	if len(rows) != 2 || rows[1]["project"] != "P005" || rows[1]["key"] != "P005-2" {
		t.Errorf("issue %s rows written = %v, want two, the last in P005 as P005-2", issue, rows)
	}
	if d := r.res.Summary.Duplicates; len(d) != 1 || d[0].Count != 1 {
		t.Errorf("duplicates = %+v, want the moved issue counted once", d)
	}
}
