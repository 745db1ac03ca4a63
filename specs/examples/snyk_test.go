package examples_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// snykSim answers the orgs, projects and issues lists of Snyk's REST API
// as the service does (facts in testdata/snyk.md): everything under
// /rest (any other path a 404); `Authorization: token …`; a `version`
// date on every request, given once, and `limit` 10 to 100 in steps of
// 10 (10 when not given), anything else a 400 "did not conform to
// OpenAPI specification"; JSON:API bodies as application/vnd.api+json;
// `starting_after` cursors (base64 with `=`) in relative links.next that
// carry the whole query, without the /rest prefix (with it for orgs),
// a string or (issues) the contract's {href, meta} object, present on
// every full page, so a full last page leads to an empty one;
// JSON:API errors; over the rate limit a 429 and every request refused
// until they stop for the interval (here snykInterval), each refused one
// starting it again.
type snykSim struct {
	token    string
	orgs     []map[string]any
	projects map[string][]map[string]any // org id -> projects
	issues   map[string][]map[string]any // project id -> issues

	mu       sync.Mutex
	requests []*http.Request // those not refused for the rate limit
	// faults[path + "|" + starting_after (+ "|" + scan_item.id)] are
	// answered, in order, to the first requests for that page.
	faults       map[string][]string
	blockedUntil time.Time
	limited      int // 429s answered (not in requests)
	outside      int // requests to a path outside /rest
}

// snykInterval is the simulator's rate limit interval: Snyk's is a
// minute, too long for a test; the spec's backoff (from 2s, growing past
// a minute) is meant for that. It is shorter than the spec's pacing (25
// a second): with a longer one the requests ferry goes on sending after
// a 429 without Retry-After are refused in turn, each restarting the
// interval, and each refusal cuts ferry's rate again (at 250ms: 5 to 34
// refused, the rest of the run at about a request a second, 20 to 130 s;
// nothing lost).
const snykInterval = 20 * time.Millisecond

const snykToken = "snyk-sim-0000aaaa-1111-2222-3333-444455556666"

var snykVersionRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(~beta|~experimental)?$`)

func snykID(kind byte, n int) string {
	return fmt.Sprintf("%08x-%04x-4000-8000-%012x", n, kind, n)
}

func newSnykSim(token string) *snykSim {
	s := &snykSim{token: token, projects: map[string][]map[string]any{}, issues: map[string][]map[string]any{}, faults: map[string][]string{}}
	base := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return base.Add(d).Format(time.RFC3339) }
	p, n := 0, 0
	// At the tests' limit of 10: 25 organizations (three pages, the last
	// short); projects: 23 in the first (three pages), exactly 10 in the
	// second (one full page and an empty one), none in the third, i%3 in
	// the rest; issues: 15 on the first project (two pages), exactly 10
	// on the second, j%4 on the others. (A 429 slows the rest of a run:
	// the data is kept small.)
	for i := range 25 {
		org := snykID('o', i)
		attrs := map[string]any{"name": fmt.Sprintf("Org %d", i), "slug": fmt.Sprintf("org-%d", i), "group_id": snykID('g', 1),
			"is_personal": i == 24, "created_at": ts(time.Duration(i) * time.Hour), "updated_at": ts(time.Duration(i)*time.Hour + time.Minute)}
		if i%7 == 0 {
			delete(attrs, "group_id") // an organization outside any group
		}
		s.orgs = append(s.orgs, map[string]any{"id": org, "type": "org", "attributes": attrs})
		np := map[int]int{0: 23, 1: 10, 2: 0}[i]
		if i > 2 {
			np = i % 3
		}
		list := []map[string]any{}
		for j := range np {
			proj := snykID('p', p)
			a := map[string]any{"name": fmt.Sprintf("acme/svc-%d:package.json", p), "type": "npm", "target_file": "package.json",
				"target_reference": "main", "origin": "github", "created": ts(time.Duration(p) * time.Minute), "status": "active",
				"read_only": false, "business_criticality": []any{"high"}, "environment": []any{"backend"}, "lifecycle": []any{"production"},
				"tags": []any{map[string]any{"key": "team", "value": "core"}}}
			if j%5 == 4 {
				// Optional attributes left out.
				for _, k := range []string{"target_reference", "business_criticality", "environment", "lifecycle", "tags"} {
					delete(a, k)
				}
			}
			list = append(list, map[string]any{"id": proj, "type": "project", "attributes": a,
				"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"id": org, "type": "org"}},
					"target": map[string]any{"data": map[string]any{"id": snykID('t', p), "type": "target"}}}})
			ni := map[int]int{0: 15, 1: 10}[p]
			if p > 1 {
				ni = j % 4
			}
			is := []map[string]any{}
			for k := range ni {
				is = append(is, map[string]any{"id": snykID('i', n), "type": "issue", "attributes": map[string]any{
					"key": fmt.Sprintf("SNYK-JS-LODASH-%d", 1000+k), "title": "Prototype Pollution", "type": "package_vulnerability",
					"status": []string{"open", "resolved"}[k%2], "effective_severity_level": []string{"low", "medium", "high", "critical"}[k%4],
					"ignored": k%9 == 8, "created_at": ts(time.Duration(k) * time.Minute), "updated_at": ts(time.Duration(k)*time.Minute + time.Second)},
					"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"id": org, "type": "org"}},
						"scan_item": map[string]any{"data": map[string]any{"id": proj, "type": "project"}}}})
				n++
			}
			s.issues[proj] = is
			p++
		}
		s.projects[org] = list
	}
	return s
}

// snykError answers a JSON:API error.
func snykError(w http.ResponseWriter, status int, title, detail, param string) {
	e := map[string]any{"id": "7c9d3b1e-0000-4000-8000-000000000001", "status": strconv.Itoa(status), "code": fmt.Sprintf("SNYK-%d", 9000+status),
		"title": title, "detail": detail}
	if param != "" {
		e["source"] = map[string]any{"parameter": param}
	}
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonapi": map[string]any{"version": "1.0"}, "errors": []any{e}})
}

func snykCursor(id string) string {
	b, _ := json.Marshal(map[string]string{"id": id})
	return "v1." + base64.StdEncoding.EncodeToString(b)
}

func snykCursorID(c string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(c, "v1."))
	var v struct{ ID string }
	if err != nil || !strings.HasPrefix(c, "v1.") || json.Unmarshal(b, &v) != nil || v.ID == "" {
		return "", false
	}
	return v.ID, true
}

func (s *snykSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := r.URL.Path + "|" + q.Get("starting_after")
	if id := q.Get("scan_item.id"); id != "" {
		key += "|" + id
	}
	now := time.Now()
	s.mu.Lock()
	blocked := now.Before(s.blockedUntil)
	fault := ""
	if f := s.faults[key]; len(f) > 0 && !blocked {
		fault, s.faults[key] = f[0], f[1:]
	}
	if blocked || fault == "429" || fault == "429ra" {
		// Every request in the interval starts it again.
		s.blockedUntil = now.Add(snykInterval)
		s.limited++
	} else {
		s.requests = append(s.requests, r.Clone(r.Context()))
	}
	s.mu.Unlock()

	if !strings.HasPrefix(r.URL.Path, "/rest/") {
		s.mu.Lock()
		s.outside++
		s.mu.Unlock()
		snykError(w, 404, "Not Found", "The requested resource was not found", "")
		return
	}
	if r.Header.Get("Authorization") != "token "+s.token {
		snykError(w, 401, "Unauthorized", "You must have the required permissions to access this resource", "")
		return
	}
	if blocked || fault == "429" || fault == "429ra" {
		if fault == "429ra" {
			w.Header().Set("Retry-After", "1") // whole seconds: above the interval here
		}
		snykError(w, 429, "Too Many Requests", "Too many requests, please try again later", "")
		return
	}
	switch fault {
	case "500":
		snykError(w, 500, "Internal Server Error", "An unexpected error occurred", "")
		return
	case "502":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
		return
	}
	nonconform := func(param string) {
		snykError(w, 400, "Bad Request", "Client request did not conform to OpenAPI specification", param)
	}
	for name, vs := range q {
		if len(vs) != 1 {
			nonconform(name)
			return
		}
	}
	version := q.Get("version")
	if !snykVersionRE.MatchString(version) {
		nonconform("version")
		return
	}
	limit, ok := queryInt(q, "limit", 10, 10)
	if !ok || limit > 100 || limit%10 != 0 {
		nonconform("limit")
		return
	}

	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var list []map[string]any
	prefix := "" // the next link's, before /orgs
	switch {
	case len(parts) == 2 && parts[1] == "orgs":
		list, prefix = s.orgs, "/rest"
	case len(parts) == 4 && parts[1] == "orgs" && parts[3] == "projects":
		l, known := s.projects[parts[2]]
		if !known {
			snykError(w, 404, "Not Found", "Org "+parts[2]+" was not found", "org_id")
			return
		}
		list = l
	case len(parts) == 4 && parts[1] == "orgs" && parts[3] == "issues":
		if version[:10] < "2024-01-23" {
			snykError(w, 404, "Not Found", "The requested version is not available for this endpoint", "version")
			return
		}
		if q.Get("scan_item.type") != "project" || q.Get("scan_item.id") == "" {
			nonconform("scan_item.type")
			return
		}
		s.mu.Lock()
		l, known := s.issues[q.Get("scan_item.id")]
		s.mu.Unlock()
		if !known {
			snykError(w, 404, "Not Found", "Project "+q.Get("scan_item.id")+" was not found", "scan_item.id")
			return
		}
		list = l
	default:
		snykError(w, 404, "Not Found", "The requested resource was not found", "")
		return
	}
	from := 0
	if c := q.Get("starting_after"); c != "" {
		id, ok := snykCursorID(c)
		i := slices.IndexFunc(list, func(m map[string]any) bool { return m["id"] == id })
		if !ok || i < 0 {
			nonconform("starting_after")
			return
		}
		from = i + 1
	}
	end := min(from+limit, len(list))
	data := list[from:end]
	link := func(cursor string) string {
		v := url.Values{}
		for name, vs := range q {
			if name != "starting_after" {
				v[name] = vs
			}
		}
		if cursor != "" {
			v.Set("starting_after", cursor)
		}
		return prefix + strings.TrimPrefix(r.URL.Path, "/rest") + "?" + v.Encode()
	}
	links := map[string]any{"self": link(q.Get("starting_after"))}
	if len(data) == limit {
		links["next"] = link(snykCursor(data[len(data)-1]["id"].(string)))
		if parts[len(parts)-1] == "issues" {
			// The contract's other form of a link: {href, meta}.
			links["next"] = map[string]any{"href": links["next"], "meta": map[string]any{}}
		}
	}
	w.Header().Set("Content-Type", "application/vnd.api+json")
	writeJSONAs(w, 200, map[string]any{"jsonapi": map[string]any{"version": "1.0"}, "data": data, "links": links})
}

func (s *snykSim) asked(path string) []*http.Request { return requestsTo(&s.mu, &s.requests, path) }

// Snyk: every organization, project and issue written once, each list
// followed by links.next taken as the next path under /rest (never
// resolved to the host's root, where the API is not), with the prefix or
// without, its query (version included, once) replacing the spec's; a
// full last page followed to the empty page after it; a 429 without
// Retry-After (every request in the interval refused), one with it, a
// 500 and a 502 mid-chain retried, not lost; the token never printed.
func TestSnyk(t *testing.T) {
	t.Parallel()
	sim := newSnykSim(snykToken)
	o0 := sim.orgs[0]["id"].(string)
	p0, p5 := sim.projects[o0][0]["id"].(string), sim.projects[o0][5]["id"].(string)
	sim.faults["/rest/orgs|"+snykCursor(sim.orgs[9]["id"].(string))] = []string{"500"}
	sim.faults["/rest/orgs/"+o0+"/projects|"+snykCursor(sim.projects[o0][9]["id"].(string))] = []string{"429"}
	sim.faults["/rest/orgs/"+o0+"/issues|"+snykCursor(sim.issues[p0][9]["id"].(string))+"|"+p0] = []string{"429ra"}
	sim.faults["/rest/orgs/"+o0+"/issues||"+p5] = []string{"502"}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, snykSpec(t), map[string]string{"api_url": srv.URL + "/rest", "token": snykToken, "page_size": "10"}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantOrgs, wantProjects, wantIssues []string
	for _, o := range sim.orgs {
		wantOrgs = append(wantOrgs, o["id"].(string))
		for _, p := range sim.projects[o["id"].(string)] {
			wantProjects = append(wantProjects, p["id"].(string))
			for _, is := range sim.issues[p["id"].(string)] {
				wantIssues = append(wantIssues, is["id"].(string))
			}
		}
	}
	sameIDs(t, "orgs, each once", wantOrgs, ids(r.rows["orgs"], "id"))
	sameIDs(t, "projects, each once", wantProjects, ids(r.rows["projects"], "id"))
	sameIDs(t, "issues, each once", wantIssues, ids(r.rows["issues"], "id"))
	if sim.outside > 0 {
		t.Errorf("%d requests outside /rest: a next link was resolved against the host's root", sim.outside)
	}
	for _, req := range sim.requests {
		q := req.URL.Query()
		if len(q["version"]) != 1 || q.Get("version") != "2024-10-15" || q.Get("limit") != "10" {
			t.Errorf("request %s: want version 2024-10-15 once and limit 10", req.URL)
			break
		}
	}
	// Organization 1's 10 projects: a full page, then the empty page
	// its next link leads to, and no more.
	if n := len(sim.asked("/rest/orgs/" + sim.orgs[1]["id"].(string) + "/projects")); n != 2 {
		t.Errorf("%d requests for organization 1's projects, want 2", n)
	}
	if sim.limited == 0 {
		t.Error("no request was refused for the rate limit")
	}
	t.Logf("%d requests served, %d refused by the rate limit", len(sim.requests), sim.limited)
	if s := stream(r.res, "issues"); s.Retries < 2 {
		t.Errorf("issues retries = %d, want at least 2 (the 429 with Retry-After, the 502)", s.Retries)
	}
	for _, row := range r.rows["issues"] {
		if row["org_id"] == nil || row["project_id"] == nil {
			t.Errorf("issue row without its organization or project: %v", row)
			break
		}
	}
	noDuplicates(t, r)
	noSecret(t, r, snykToken)
}

// Snyk's errors fail the run with their JSON:API status, title and
// detail, naming the stream and, for a project's issues, the project;
// the token is never printed.
func TestSnykErrors(t *testing.T) {
	t.Parallel()
	sim0 := newSnykSim(snykToken)
	p7 := sim0.projects[sim0.orgs[0]["id"].(string)][7]["id"].(string)
	cases := []struct {
		name string
		sets map[string]string
		sim  func(*snykSim)
		want []string
	}{
		{name: "a wrong token", sets: map[string]string{"token": "snyk-wrong-0000-0000-0000-000000000000"},
			want: []string{"orgs", "401 Unauthorized"}},
		{name: "a limit not in steps of 10", sets: map[string]string{"page_size": "15"},
			want: []string{"orgs", "400 Bad Request: Client request did not conform to OpenAPI specification (parameter limit)"}},
		{name: "a version before issues by project", sets: map[string]string{"version": "2023-06-01"},
			want: []string{"issues", "404 Not Found", "(parameter version)"}},
		{name: "a project deleted while read", sim: func(s *snykSim) { delete(s.issues, p7) },
			want: []string{"issues", p7, "Project " + p7 + " was not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newSnykSim(snykToken)
			if c.sim != nil {
				c.sim(sim)
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL + "/rest", "token": snykToken}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, snykSpec(t), sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, snykToken, sets["token"])
		})
	}
}

// snykSpec is snyk.yaml with its 429 rule's wait of a minute and a second
// (Snyk's interval) cut to just past the simulator's snykInterval.
func snykSpec(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("snyk.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "      wait: 61s\n", "      wait: 25ms\n", 1)
	if text == string(src) {
		t.Fatal("snyk.yaml has no 429 rule waiting 61s")
	}
	path := filepath.Join(t.TempDir(), "snyk.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
