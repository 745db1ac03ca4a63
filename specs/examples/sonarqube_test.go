package examples_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// sonarSim answers /api/projects/search and /api/issues/search as a
// SonarQube Server does (facts in testdata/sonarqube.md, from the Web API
// docs and the server's source): p from 1, ps 100 by default and at most
// 500 (more is a 400); paging {pageIndex, pageSize, total} beside the
// deprecated top-level p, ps and total (shape); issues/search refuses
// p*ps > 10000 with a 400 "Can return only the first 10000 results. …",
// sorts by creation date then key (s=CREATION_DATE, asc), filters by
// createdAfter (inclusive, at the second the date names) and
// createdBefore (exclusive) and gives dates
// as 2013-05-13T17:55:39+0200; optional fields left out (line, effort,
// author, resolution, closeDate, a project's lastAnalysisDate); the token
// as basic auth's user name with an empty password (else a 401 with no
// body); errors {"errors": [{"msg"}]}. With org set it is SonarQube
// Cloud: organization required, and a total of 10,000 or more said as
// 10000.
type sonarSim struct {
	token, org string
	shape      string // "paging" (10.x), "both" (up to 9.x), "top" (old servers: top-level only)
	projects   []map[string]any
	issues     map[string][]sonarIssue // project key -> issues by creation then key

	mu       sync.Mutex
	requests []*http.Request
	capped   int // requests refused by the 10,000 cap
	// faults[project key] are answered, in order, to the first issue
	// requests of that project (a status; 429 without Retry-After, as
	// Cloud's docs name none).
	faults map[string][]int
	// brokenAfter[project key] = n: the project's issue requests after
	// its n-th are answered 502, every time.
	brokenAfter map[string]int
	served      map[string]int // issue requests answered, by project
}

type sonarIssue struct {
	created time.Time // with milliseconds: the index keeps them, answers do not
	body    map[string]any
}

const sonarToken = "squ_SimOnly4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5"

// sonarZone is the server's time zone: dates are written in it.
var sonarZone = time.FixedZone("CEST", 2*3600)

// newSonarSim builds n projects; sizes gives some of them (by index)
// their issue count, the rest have i%4. Issues come 7 to a second, a
// few milliseconds apart (so pages end inside a second); tie[i] of
// project i's issues are created in one second (the same instant), from
// its first third on (or earlier, to fit).
func newSonarSim(n int, sizes map[int]int, tie map[int]int) *sonarSim {
	s := &sonarSim{token: sonarToken, shape: "both", issues: map[string][]sonarIssue{}, faults: map[string][]int{},
		brokenAfter: map[string]int{}, served: map[string]int{}}
	base := time.Date(2021, 6, 1, 9, 0, 0, 0, sonarZone)
	seq := 0
	for i := range n {
		key := fmt.Sprintf("com.acme:svc-%03d", i)
		p := map[string]any{"key": key, "name": fmt.Sprintf("Service %d", i), "qualifier": "TRK", "visibility": "private"}
		if i%6 != 5 {
			// Never analysed: no lastAnalysisDate, no revision.
			p["lastAnalysisDate"] = base.Add(time.Duration(i) * time.Hour).Format("2006-01-02T15:04:05-0700")
			p["revision"] = fmt.Sprintf("%040x", i)
		}
		s.projects = append(s.projects, p)
		count, ok := sizes[i]
		if !ok {
			count = i % 4
		}
		var list []sonarIssue
		at := base
		t0 := min(count/3, count-tie[i]) // where the issues of one second begin
		for j := range count {
			seq++
			inTie := tie[i] > 0 && j >= t0 && j < t0+tie[i]
			switch {
			case inTie && j == t0:
				at = at.Add(time.Hour)
			case inTie:
				// the same second, the same millisecond
			case j%7 == 0:
				at = at.Add(time.Duration(1+j%5) * time.Second)
			}
			created := at
			if !inTie {
				created = at.Add(time.Duration(j%7) * 100 * time.Millisecond)
			}
			b := map[string]any{"key": fmt.Sprintf("AY%010d", seq), "rule": "java:S1192", "severity": "MAJOR", "component": key + ":src/Main.java",
				"project": key, "status": "OPEN", "message": fmt.Sprintf("Issue %d", j), "type": "CODE_SMELL", "tags": []any{"convention"},
				"creationDate": created.Format("2006-01-02T15:04:05-0700"), "updateDate": created.Add(time.Hour).Format("2006-01-02T15:04:05-0700")}
			if j%3 != 0 {
				b["line"] = 10 + j%500
				b["effort"] = "5min"
				b["author"] = "ada@acme.example"
			}
			if j%9 == 4 {
				b["status"], b["resolution"], b["closeDate"] = "CLOSED", "FIXED", created.Add(48*time.Hour).Format("2006-01-02T15:04:05-0700")
			}
			list = append(list, sonarIssue{created: created, body: b})
		}
		slices.SortStableFunc(list, func(a, b sonarIssue) int {
			if c := a.created.Compare(b.created); c != 0 {
				return c
			}
			return strings.Compare(a.body["key"].(string), b.body["key"].(string))
		})
		s.issues[key] = list
	}
	return s
}

func sonarError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"errors": []any{map[string]any{"msg": msg}}})
}

// paged writes one page of items under name, in the server's shape.
func (s *sonarSim) paged(w http.ResponseWriter, name string, items []map[string]any, p, ps, total int) {
	body := map[string]any{name: items}
	if s.shape != "top" {
		body["paging"] = map[string]any{"pageIndex": p, "pageSize": ps, "total": total}
	}
	if s.shape != "paging" {
		body["p"], body["ps"], body["total"] = p, ps, total
	}
	writeJSON(w, 200, body)
}

func (s *sonarSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	fault := 0
	if r.URL.Path == "/api/issues/search" {
		k := q.Get("componentKeys")
		if f := s.faults[k]; len(f) > 0 {
			fault, s.faults[k] = f[0], f[1:]
		} else if n, ok := s.brokenAfter[k]; ok && s.served[k] >= n {
			fault = 502
		} else {
			s.served[k]++
		}
	}
	s.mu.Unlock()

	if user, pass, ok := r.BasicAuth(); !ok || user != s.token || pass != "" {
		w.WriteHeader(401) // no body
		return
	}
	switch fault {
	case 0:
	case 503:
		sonarError(w, 503, "Results are temporarily unavailable. Indexing of issues is in progress.")
		return
	default:
		sonarError(w, fault, http.StatusText(fault))
		return
	}
	if s.org != "" && r.URL.Path == "/api/projects/search" && q.Get("organization") != s.org {
		sonarError(w, 400, "The 'organization' parameter is missing")
		return
	}
	p, ok := queryInt(q, "p", 1, 1)
	if !ok {
		sonarError(w, 400, fmt.Sprintf("'p' value (%s) must be greater than 0", q.Get("p")))
		return
	}
	ps, ok := queryInt(q, "ps", 100, 1)
	if !ok || ps > 500 {
		sonarError(w, 400, fmt.Sprintf("'ps' value (%s) must be less than 500", q.Get("ps")))
		return
	}
	switch r.URL.Path {
	case "/api/projects/search":
		if q.Get("qualifiers") != "" && q.Get("qualifiers") != "TRK" {
			sonarError(w, 400, "unexpected qualifiers "+q.Get("qualifiers"))
			return
		}
		from := min((p-1)*ps, len(s.projects))
		s.paged(w, "components", s.projects[from:min(from+ps, len(s.projects))], p, ps, len(s.projects))
	case "/api/issues/search":
		if p*ps > 10000 {
			s.mu.Lock()
			s.capped++
			s.mu.Unlock()
			sonarError(w, 400, fmt.Sprintf("Can return only the first 10000 results. %dth result asked.", p*ps))
			return
		}
		all, ok := s.issues[q.Get("componentKeys")]
		if !ok {
			sonarError(w, 404, fmt.Sprintf("Component key '%s' not found", q.Get("componentKeys")))
			return
		}
		var after time.Time
		if v := q.Get("createdAfter"); v != "" {
			var err error
			if after, err = time.Parse("2006-01-02T15:04:05-0700", v); err != nil {
				sonarError(w, 400, fmt.Sprintf("'%s' cannot be parsed as either a date or date+time", v))
				return
			}
		}
		var before time.Time // createdBefore: exclusive
		if v := q.Get("createdBefore"); v != "" {
			var err error
			if before, err = time.Parse("2006-01-02T15:04:05-0700", v); err != nil {
				sonarError(w, 400, fmt.Sprintf("'%s' cannot be parsed as either a date or date+time", v))
				return
			}
		}
		list := []map[string]any{} // an empty list is [], never null
		for _, is := range all {
			if !is.created.Before(after) && (before.IsZero() || is.created.Before(before)) {
				list = append(list, is.body)
			}
		}
		if q.Get("s") != "CREATION_DATE" || q.Get("asc") != "true" {
			slices.Reverse(list) // the default order: newest first
		}
		total := len(list)
		if s.org != "" {
			total = min(total, 10000) // Cloud says 10000 when there are more
		}
		from := min((p-1)*ps, len(list))
		s.paged(w, "issues", list[from:min(from+ps, len(list))], p, ps, total)
	default:
		sonarError(w, 404, "Unknown url : "+r.URL.Path)
	}
}

func (s *sonarSim) asked(path string) []*http.Request { return requestsTo(&s.mu, &s.requests, path) }

// issueIDs are the keys of every issue the simulator holds.
func (s *sonarSim) issueIDs() []string {
	var out []string
	for _, p := range s.projects {
		for _, is := range s.issues[p["key"].(string)] {
			out = append(out, is.body["key"].(string))
		}
	}
	return out
}

func runSonar(t *testing.T, s *sonarSim, sets map[string]string) vendorRun {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	all := map[string]string{"api_url": srv.URL, "token": s.token}
	if s.org != "" {
		all["organization"] = s.org
	}
	for k, v := range sets {
		all[k] = v
	}
	return runVendor(t, "sonarqube.yaml", all, time.Time{})
}

// onceEach checks the issue rows: every issue of the simulator is
// there, and an issue written more than once is one asked again because
// it was created in the second a page ended in (createdAfter is
// inclusive and counts seconds), with the same values each time, and
// counted as a duplicate in the summary.
func onceEach(t *testing.T, s *sonarSim, r vendorRun) {
	t.Helper()
	rows := r.rows["issues"]
	seen := map[string]map[string]any{}
	again := 0
	for _, row := range rows {
		k := fmt.Sprint(row["key"])
		if before, ok := seen[k]; ok {
			again++
			if fmt.Sprint(before) != fmt.Sprint(row) {
				t.Errorf("issue %s written twice with other values:\n%v\n%v", k, before, row)
			}
			continue
		}
		seen[k] = row
	}
	sameIDs(t, "issues", s.issueIDs(), slices.Collect(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	}))
	counted := 0
	if r.res != nil && r.res.Summary != nil {
		for _, d := range r.res.Summary.Duplicates {
			if d.Name != "issues" {
				t.Errorf("duplicates in %s %s: %+v", d.Kind, d.Name, d)
			}
			counted += d.Count
		}
	}
	if counted != again {
		t.Errorf("%d issues written again, the summary counts %d duplicates", again, counted)
	}
	t.Logf("%d issues, %d asked again (created in a second a page ended in)", len(seen), again)
}

// SonarQube Server: 520 projects over two pages of projects/search; a
// project of 23,000 issues (more than issues/search's 10,000 cap, with a
// run of 1,234 created in one second) read in full by creation date, no
// request past the cap; two 503s (issues being indexed) on its chain
// retried; optional fields left out; the token never printed. (The 429s
// are TestSonarQubeCloud's: here one would slow the host's 500 other
// chains down, as it should.)
func TestSonarQube(t *testing.T) {
	t.Parallel()
	s := newSonarSim(520, map[int]int{7: 23000, 8: 500, 9: 0}, map[int]int{7: 1234})
	s.faults["com.acme:svc-007"] = []int{503, 503}
	r := runSonar(t, s, nil)
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantProjects []string
	for _, p := range s.projects {
		wantProjects = append(wantProjects, p["key"].(string))
	}
	sameIDs(t, "projects", wantProjects, column(r.rows["projects"], "key"))
	onceEach(t, s, r)
	for _, row := range r.rows["issues"] {
		if row["project"] == nil || !strings.HasPrefix(fmt.Sprint(row["key"]), "AY") {
			t.Errorf("issue row without its project: %v", row)
			break
		}
	}
	if s.capped > 0 {
		t.Errorf("%d issue requests past the 10,000 cap", s.capped)
	}
	big := 0
	for _, req := range s.asked("/api/issues/search") {
		q := req.URL.Query()
		ps := "500"
		if q.Has("createdBefore") {
			ps = "499" // inside one second
		}
		if q.Get("componentKeys") == "" || q.Get("ps") != ps || q.Get("s") != "CREATION_DATE" {
			t.Errorf("issues request %s: want componentKeys, ps=%s, s=CREATION_DATE", req.URL.RawQuery, ps)
		}
		if q.Get("componentKeys") == "com.acme:svc-007" {
			big++
		}
		if q.Has("organization") {
			t.Errorf("issues request %s: organization sent to a Server", req.URL.RawQuery)
		}
	}
	// 23,000 at 500 a page is 46 pages; the seconds asked again add a few.
	if big > 60 {
		t.Errorf("%d requests for the 23,000 issues, want at most 60", big)
	}
	if n := len(s.asked("/api/projects/search")); n != 2 {
		t.Errorf("%d projects requests, want 2", n)
	}
	if st := stream(r.res, "issues"); st.Retries < 2 {
		t.Errorf("issues retries = %d, want at least 2 (the 503s)", st.Retries)
	}
	noSecret(t, r, sonarToken, base64.StdEncoding.EncodeToString([]byte(sonarToken+":")))
}

// Servers before paging was added answer p, ps and total at the top only:
// read as well, a project past the cap included.
func TestSonarQubeTopLevelPaging(t *testing.T) {
	t.Parallel()
	s := newSonarSim(30, map[int]int{3: 12000}, map[int]int{3: 600})
	s.shape = "top"
	r := runSonar(t, s, nil)
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantProjects []string
	for _, p := range s.projects {
		wantProjects = append(wantProjects, p["key"].(string))
	}
	sameIDs(t, "projects", wantProjects, column(r.rows["projects"], "key"))
	onceEach(t, s, r)
}

// SonarQube Cloud: organization on every request, and a total of 10,000
// or more said as 10000; a project of 15,000 issues read in full; two
// 429s without Retry-After retried.
func TestSonarQubeCloud(t *testing.T) {
	t.Parallel()
	s := newSonarSim(12, map[int]int{4: 15000}, map[int]int{4: 700})
	s.org, s.shape = "acme", "paging"
	s.faults["com.acme:svc-004"] = []int{429, 429}
	r := runSonar(t, s, nil)
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	onceEach(t, s, r)
	if s.capped > 0 {
		t.Errorf("%d issue requests past the 10,000 cap", s.capped)
	}
	if st := stream(r.res, "issues"); st.Retries < 2 {
		t.Errorf("issues retries = %d, want at least 2 (the 429s)", st.Retries)
	}
}

// The cap is where no other reading is left: more than 9,980 issues
// created in one second are paged by p in that second (499 a page), and the 21st
// page's 400 fails the project's chain with the server's words, naming
// it, on the Server (whose total says more) and on Cloud (whose total
// says 10000: the chain must not take that for the end). The other
// projects are read.
func TestSonarQubeCapFails(t *testing.T) {
	t.Parallel()
	for _, org := range []string{"", "acme"} {
		t.Run("org="+org, func(t *testing.T) {
			s := newSonarSim(6, map[int]int{2: 10300}, map[int]int{2: 10250})
			s.org = org
			r := runSonar(t, s, nil)
			failedRun(t, r, []string{"issues", "com.acme:svc-002", "Can return only the first 10000 results. 10479th result asked."})
			if s.capped != 1 {
				t.Errorf("%d requests refused by the cap, want 1", s.capped)
			}
			for _, k := range []string{"com.acme:svc-001", "com.acme:svc-003", "com.acme:svc-005"} {
				if !slices.ContainsFunc(r.rows["issues"], func(row map[string]any) bool { return row["project"] == k }) {
					t.Errorf("no issue of %s written", k)
				}
			}
			noSecret(t, r, sonarToken)
		})
	}
}

// SonarQube's errors fail the run with their msg, naming the stream; the
// token is never printed.
func TestSonarQubeErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong token (401, no body)", sets: map[string]string{"token": "squ_WrongWrongWrongWrong000000000000000000"},
			want: []string{"projects", "401"}},
		{name: "a token without Administer System",
			faults: map[string][]int{}, want: []string{"projects", "Insufficient privileges"}},
		{name: "a 502 on every attempt",
			faults: map[string][]int{"com.acme:svc-003": {502, 502, 502, 502, 502, 502, 502, 502}},
			want:   []string{"issues", "com.acme:svc-003", "502"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSonarSim(6, nil, nil)
			var h http.Handler = s
			if c.faults != nil {
				s.faults = c.faults
			}
			if strings.HasPrefix(c.name, "a token without") {
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/api/projects/search" {
						sonarError(w, 403, "Insufficient privileges")
						return
					}
					s.ServeHTTP(w, r)
				})
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL, "token": sonarToken}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "sonarqube.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, sonarToken, sets["token"])
		})
	}
}

// A run that fails in the middle of a big project's issues (the server
// answers 502 from its 12th request on) keeps what it read; the next run
// resumes the chain at its saved path, createdAfter and all, and the table
// holds every issue once.
func TestSonarQubeResume(t *testing.T) {
	t.Parallel()
	s := newSonarSim(8, map[int]int{3: 14000}, map[int]int{3: 900})
	s.brokenAfter["com.acme:svc-003"] = 12
	srv := httptest.NewServer(s)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "sonar.db")
	sets := map[string]string{"api_url": srv.URL, "token": sonarToken}
	first := runVendorOpts(t, "sonarqube.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db})
	failedRun(t, first, []string{"issues", "com.acme:svc-003", "502"})
	before := query(t, db, `SELECT count(*) FROM sonarqube__issues`)

	s.mu.Lock()
	delete(s.brokenAfter, "com.acme:svc-003")
	n := len(s.requests)
	s.mu.Unlock()
	second := runVendorOpts(t, "sonarqube.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db})
	if second.err != nil {
		t.Fatalf("resumed run: %v", second.err)
	}
	sameIDs(t, "issues after the resumed run", s.issueIDs(), query(t, db, `SELECT key FROM sonarqube__issues`))
	s.mu.Lock()
	var resumed []string
	for _, r := range s.requests[n:] {
		if r.URL.Query().Get("componentKeys") == "com.acme:svc-003" {
			resumed = append(resumed, r.URL.Query().Get("createdAfter"))
		}
	}
	s.mu.Unlock()
	if len(resumed) == 0 || resumed[0] == "" {
		t.Errorf("the resumed run asked the big project from its start (createdAfter %q), want the saved position", resumed)
	}
	t.Logf("%v issues written by the failed run; the resumed one asked %d pages of the big project", before, len(resumed))
	noSecret(t, second, sonarToken)
}

// Two seconds of many issues each (a first analysis and the next, all
// stamped with their analysis date), the first exactly a page long: the
// page after it is all the second one's, and read by p inside "one
// second" it would be taken for more of the first and skip a page of the
// second (500 issues lost, exit 0). Every issue is read, and a page all
// of one second is known to be one by createdBefore.
func TestSonarQubeSecondsMeetAtAPageEnd(t *testing.T) {
	t.Parallel()
	s := newSonarSim(2, map[int]int{0: 0, 1: 3}, nil)
	key := "com.acme:svc-000"
	first := time.Date(2022, 3, 1, 10, 0, 0, 0, sonarZone)
	var list []sonarIssue
	for j, n := range []int{500, 1200, 40} {
		at := first.Add(time.Duration(j) * 24 * time.Hour)
		for i := range n {
			k := fmt.Sprintf("AZ%d%06d", j, i)
			created := at
			if j == 2 {
				created = at.Add(time.Duration(i) * time.Second) // one a second after the two analyses
			}
			list = append(list, sonarIssue{created: created, body: map[string]any{"key": k, "rule": "java:S1192", "severity": "MAJOR",
				"component": key + ":src/Main.java", "project": key, "status": "OPEN", "message": "Issue " + k, "type": "CODE_SMELL",
				"tags": []any{}, "creationDate": created.Format("2006-01-02T15:04:05-0700"), "updateDate": created.Format("2006-01-02T15:04:05-0700")}})
		}
	}
	s.issues[key] = list
	r := runSonar(t, s, nil)
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	onceEach(t, s, r)
}
