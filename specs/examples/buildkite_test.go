package examples_test

import (
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

	"github.com/ferry-etl/ferry/engine"
)

// bkSim answers as Buildkite's REST API v2 does (facts in
// testdata/buildkite.md): a bearer token; lists paged by page and per_page
// (30 when not asked, capped at 100 without a word), the next page named
// by a Link header rel="next" (with first, prev and last beside it),
// absent on the last page; builds newest first, each embedding its jobs,
// a retried job's earlier tries only with include_retried_jobs=true;
// created_from (on or after, RFC 3339) filtering builds; the
// organization's budget in RateLimit-Remaining, -Limit and -Reset
// (seconds to the window's end) and the token's user's in
// RateLimit-User-Remaining, -Limit and -Reset on every answer, a request
// past either a 429 naming its scope (rest, rest_user) with that
// remaining 0; errors {"message"}. Its windows are bkWindow seconds long
// and hold budget requests of the organization and userBudget of the
// user (Buildkite's: a minute, 200 and 50).
type bkSim struct {
	token      string
	budget     int
	userBudget int
	// other: the organization's requests another client (another user's
	// token) spends at the start of every other window, so the budget
	// that runs out first is the organization's in one window, the
	// user's in the next.
	other int

	mu        sync.Mutex
	orgs      []map[string]any
	pipelines map[string][]map[string]any // by org slug
	builds    map[string][]map[string]any // by "org/pipeline", newest first
	requests  []*url.URL
	window    int64 // the current window: the epoch second over bkWindow
	used      int
	overrun   int // requests answered 429 for a spent budget
	userUsed  int
	userOver  int // requests answered 429 for the user's spent budget
	// faults[path + "|" + page] are answered, in order, to the first
	// requests for that page: a status, or "cut" (a body cut short).
	faults map[string][]string
	// served, when set, is called after each page is answered.
	served func(path string, page int)
	n      int // builds and jobs made, for ids
}

// bkWindow is the simulator's rate limit window, in seconds.
const bkWindow = 2

var bkBase = time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Second)

func bkTime(d time.Duration) string { return bkBase.Add(d).Format("2006-01-02T15:04:05.000Z") }

func newBKSim(token string) *bkSim {
	s := &bkSim{token: token, budget: 80, userBudget: 40, pipelines: map[string][]map[string]any{}, builds: map[string][]map[string]any{}, faults: map[string][]string{}}
	// acme: 104 pipelines (two pages of 100); api holds 250 builds
	// (three pages), web exactly 100 (one full page, no next link), docs
	// none, the others i%3. globex: two pipelines of 5 builds.
	for _, org := range []struct {
		slug  string
		count int
	}{{"acme", 104}, {"globex", 2}} {
		s.orgs = append(s.orgs, map[string]any{"id": "org-" + org.slug, "graphql_id": "T3Jn" + org.slug, "slug": org.slug,
			"name": strings.ToUpper(org.slug[:1]) + org.slug[1:], "web_url": "https://buildkite.com/" + org.slug, "created_at": bkTime(0)})
		for i := range org.count {
			slug := fmt.Sprintf("p%03d", i)
			builds := i % 3
			switch {
			case org.slug == "globex":
				builds = 5
			case i == 0:
				slug, builds = "api", 250
			case i == 1:
				slug, builds = "web", 100
			case i == 2:
				slug, builds = "docs", 0
			}
			p := map[string]any{"id": "pl-" + org.slug + "-" + slug, "slug": slug, "name": "Pipeline " + slug,
				"repository": "git@github.com:" + org.slug + "/" + slug + ".git", "default_branch": "main",
				"web_url": "https://buildkite.com/" + org.slug + "/" + slug, "created_at": bkTime(time.Duration(i) * time.Minute)}
			if i%4 == 3 {
				delete(p, "default_branch") // optional, left out
			}
			if i == 5 {
				p["archived_at"] = bkTime(time.Hour)
			}
			s.pipelines[org.slug] = append(s.pipelines[org.slug], p)
			s.builds[org.slug+"/"+slug] = []map[string]any{}
			for range builds {
				s.add(org.slug, slug)
			}
		}
	}
	return s
}

// add makes a new build, the pipeline's newest, and returns it.
func (s *bkSim) add(org, pipeline string) map[string]any {
	key := org + "/" + pipeline
	number := len(s.builds[key]) + 1
	s.n++
	id := fmt.Sprintf("01890000-0000-4000-8000-%012d", s.n)
	created := bkTime(time.Duration(s.n) * time.Minute)
	b := map[string]any{"id": id, "number": number, "state": "passed", "blocked": false, "branch": "main",
		"commit": fmt.Sprintf("%040x", s.n), "message": fmt.Sprintf("Commit %d", number), "source": "webhook",
		"creator": map[string]any{"id": "u1", "name": "Ada"}, "created_at": created, "scheduled_at": created,
		"started_at": created, "finished_at": created, "web_url": "https://buildkite.com/" + key + "/builds/" + strconv.Itoa(number)}
	switch {
	case number%7 == 0:
		b["source"], b["creator"] = "api", nil // an API-triggered build has no creator
		delete(b, "message")
	case number%11 == 0:
		b["state"], b["finished_at"], b["started_at"] = "running", nil, created
	case number%13 == 0:
		b["state"], b["blocked"] = "blocked", true
	}
	var jobs []any
	for j := range number % 4 {
		s.n++
		job := map[string]any{"id": fmt.Sprintf("01890000-0000-4000-9000-%012d", s.n), "type": "script", "name": fmt.Sprintf("step %d", j),
			"step_key": fmt.Sprintf("s%d", j), "state": "passed", "command": "make test", "exit_status": 0, "soft_failed": false,
			"retried": false, "retried_in_job_id": nil, "retries_count": nil, "agent": map[string]any{"name": "agent-1"},
			"created_at": created, "started_at": created, "finished_at": created}
		if j == 1 && number%5 == 0 {
			// A try that failed and was retried: the new try is listed,
			// this one only with include_retried_jobs.
			s.n++
			retry := map[string]any{}
			for k, v := range job {
				retry[k] = v
			}
			retry["id"], retry["retries_count"] = fmt.Sprintf("01890000-0000-4000-9000-%012d", s.n), 1
			job["state"], job["exit_status"], job["retried"], job["retried_in_job_id"] = "failed", 1, true, retry["id"]
			jobs = append(jobs, job, retry)
			continue
		}
		jobs = append(jobs, job)
	}
	if number%3 == 0 {
		s.n++
		jobs = append(jobs, map[string]any{"id": fmt.Sprintf("01890000-0000-4000-9000-%012d", s.n), "type": "waiter"})
	}
	if jobs != nil || number%2 == 0 {
		b["jobs"] = jobs // an empty list, or left out, when none
	}
	s.builds[key] = append([]map[string]any{b}, s.builds[key]...)
	return b
}

func bkError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg})
}

func (s *bkSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := time.Now()
	s.mu.Lock()
	u := *r.URL
	s.requests = append(s.requests, &u)
	if win := now.Unix() / bkWindow; win != s.window {
		s.window, s.used, s.userUsed = win, 0, 0
		if win%2 == 0 {
			s.used = s.other
		}
	}
	// A request counts against both limits, refused or not.
	s.used++
	s.userUsed++
	orgSpent, userSpent := s.used > s.budget, s.userUsed > s.userBudget
	spent := orgSpent || userSpent
	if orgSpent {
		s.overrun++
	} else if userSpent {
		s.userOver++
	}
	page, okPage := queryInt(q, "page", 1, 1)
	key := r.URL.Path + "|" + strconv.Itoa(page)
	fault := ""
	if f := s.faults[key]; len(f) > 0 && !spent {
		fault, s.faults[key] = f[0], f[1:]
	}
	remaining, userRemaining, window := max(s.budget-s.used, 0), max(s.userBudget-s.userUsed, 0), s.window
	used, userUsed := s.used, s.userUsed
	s.mu.Unlock()

	h := w.Header()
	// Seconds to the window's end, rounded up.
	resetN := max((window+1)*bkWindow-now.Unix(), 1)
	reset := strconv.FormatInt(resetN, 10)
	h.Set("RateLimit-Scope", "rest")
	h.Set("RateLimit-Limit", strconv.Itoa(s.budget))
	h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("RateLimit-Reset", reset)
	h.Set("RateLimit-User-Scope", "rest_user")
	h.Set("RateLimit-User-Limit", strconv.Itoa(s.userBudget))
	h.Set("RateLimit-User-Remaining", strconv.Itoa(userRemaining))
	h.Set("RateLimit-User-Reset", reset)
	if orgSpent || fault == "429" {
		h.Set("RateLimit-Remaining", "0")
		writeJSON(w, 429, map[string]any{"message": "You have exceeded your API rate limit. Please wait " + reset + " seconds before making more requests.",
			"scope": "rest", "limit": s.budget, "current": used, "reset": resetN})
		return
	}
	if spent {
		writeJSON(w, 429, map[string]any{"message": "You have exceeded your API rate limit. Please wait " + reset + " seconds before making more requests.",
			"scope": "rest_user", "limit": s.userBudget, "current": userUsed, "reset": resetN})
		return
	}
	switch fault {
	case "500":
		bkError(w, 500, "Sorry, something went wrong.")
		return
	case "502":
		h.Set("Content-Type", "text/html")
		w.WriteHeader(502)
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		bkError(w, 401, "Authentication required. Please supply a valid API Access Token: https://buildkite.com/docs/apis/rest-api#authentication")
		return
	}
	perPage, okSize := queryInt(q, "per_page", 30, 1)
	if !okPage || !okSize {
		bkError(w, 400, "page and per_page must be positive numbers")
		return
	}
	perPage = min(perPage, 100)

	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	s.mu.Lock()
	var list []map[string]any
	found := true
	switch {
	case len(parts) == 1 && parts[0] == "organizations":
		list = s.orgs
	case len(parts) == 3 && parts[0] == "organizations" && parts[2] == "pipelines":
		list, found = s.pipelines[parts[1]]
	case len(parts) == 5 && parts[0] == "organizations" && parts[2] == "pipelines" && parts[4] == "builds":
		list, found = s.builds[parts[1]+"/"+parts[3]]
	default:
		found = false
	}
	list = slices.Clone(list)
	s.mu.Unlock()
	if !found {
		bkError(w, 404, "Not Found")
		return
	}
	if parts[len(parts)-1] == "builds" {
		var from time.Time
		if v := q.Get("created_from"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bkError(w, 422, "created_from must be an ISO 8601 time")
				return
			}
			from = t
		}
		retried := q.Get("include_retried_jobs") == "true"
		var kept []map[string]any
		for _, b := range list {
			created, _ := time.Parse(time.RFC3339, b["created_at"].(string))
			if created.Before(from) {
				continue
			}
			c := map[string]any{}
			for k, v := range b {
				c[k] = v
			}
			if jobs, ok := b["jobs"].([]any); ok && !retried {
				c["jobs"] = slices.DeleteFunc(slices.Clone(jobs), func(j any) bool { return j.(map[string]any)["retried"] == true })
			}
			kept = append(kept, c)
		}
		list = kept
	}
	from := min((page-1)*perPage, len(list))
	end := min(from+perPage, len(list))
	last := max((len(list)+perPage-1)/perPage, 1)
	link := func(p int, rel string) string {
		lq := url.Values{}
		for k, v := range q {
			lq[k] = v
		}
		lq.Set("page", strconv.Itoa(p))
		lq.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf(`<http://%s%s?%s>; rel="%s"`, r.Host, r.URL.Path, lq.Encode(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(1, "first"), link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if len(links) > 0 {
		h.Set("Link", strings.Join(links, ", "))
	}
	if fault == "cut" {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`[{"id": "01890000-0000-4000-8000-`))
		return
	}
	writeJSON(w, 200, list[from:end])
	if s.served != nil {
		s.served(r.URL.Path, page)
	}
}

// asked lists the requests sent to path.
func (s *bkSim) asked(path string) []*url.URL {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*url.URL
	for _, u := range s.requests {
		if u.Path == path {
			out = append(out, u)
		}
	}
	return out
}

// want lists the ids of every build (and of every job, retried tries
// included) of the pipelines the simulator lists now.
func (s *bkSim) want() (builds, jobs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, org := range s.orgs {
		for _, p := range s.pipelines[org["slug"].(string)] {
			for _, b := range s.builds[org["slug"].(string)+"/"+p["slug"].(string)] {
				builds = append(builds, b["id"].(string))
				if js, ok := b["jobs"].([]any); ok {
					for _, j := range js {
						jobs = append(jobs, j.(map[string]any)["id"].(string))
					}
				}
			}
		}
	}
	return builds, jobs
}

const bkToken = "bkua_SimulatorOnlyToken0123456789abcdef01234567"

// Buildkite: every organization, pipeline (two pages of 100), build (250
// in three pages, exactly 100 in one, none) and embedded job (retried
// tries too, include_retried_jobs sent) written once, per_page 100 asked;
// a build started while a pipeline's builds are read, which pushes the
// last build of a page onto the next, met twice and reported as one
// duplicate, none lost; both budgets kept, no request past either: the
// user's in RateLimit-User-Remaining, and the organization's, most of
// which another client spends (the run's share of it the lower); a
// 429 waited out to RateLimit-Reset, a 500 and a
// 502 retried mid-chain; the token never printed.
func TestBuildkite(t *testing.T) {
	t.Parallel()
	sim := newBKSim(bkToken)
	sim.other = 50 // 30 of the organization's 80 left every other window, the user's 40
	apiBuilds := "/organizations/acme/pipelines/api/builds"
	sim.faults[apiBuilds+"|2"] = []string{"429", "500"}
	sim.faults["/organizations/acme/pipelines|2"] = []string{"502"}
	wantBuilds, wantJobs := sim.want()
	var started map[string]any
	sim.served = func(path string, page int) {
		sim.mu.Lock()
		defer sim.mu.Unlock()
		if path == apiBuilds && page == 1 && started == nil {
			started = sim.add("acme", "api")
		}
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "buildkite.yaml", map[string]string{"api_url": srv.URL, "token": bkToken}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	sim.mu.Lock()
	if started == nil {
		sim.mu.Unlock()
		t.Fatal("no build was started mid-read")
	}
	// The build on the bottom of api's first page (index 99 before the
	// new build) is listed again at the top of its second.
	startedID, repeat := started["id"].(string), sim.builds["acme/api"][100]["id"].(string)
	sim.mu.Unlock()
	sameIDs(t, "organizations", []string{"org-acme", "org-globex"}, ids(r.rows["organizations"], "id"))
	var wantPipelines []string
	for _, org := range sim.orgs {
		for _, p := range sim.pipelines[org["slug"].(string)] {
			wantPipelines = append(wantPipelines, p["id"].(string))
		}
	}
	sameIDs(t, "pipelines, each once", wantPipelines, ids(r.rows["pipelines"], "id"))

	// The repeat is written twice and reported as a duplicate.
	gotBuilds := ids(r.rows["builds"], "id")
	if i := slices.Index(gotBuilds, repeat); i < 0 || slices.Index(gotBuilds[i+1:], repeat) < 0 {
		t.Errorf("build %s (the last of api's first page) written %d times, want twice", repeat, count(gotBuilds, repeat))
	}
	sameIDs(t, "builds, each once (the repeat aside)", wantBuilds, unique(gotBuilds))
	sameIDs(t, "jobs (retried tries too), each once", wantJobs, unique(ids(r.rows["jobs"], "id")))
	if slices.Contains(gotBuilds, startedID) {
		t.Errorf("the build started mid-read was written: it is on a page read before it came")
	}
	dup := map[string]int{}
	for _, d := range r.res.Summary.Duplicates {
		dup[d.Name] = d.Count
	}
	if dup["builds"] != 1 {
		t.Errorf("duplicates = %+v, want the repeated build counted once", r.res.Summary.Duplicates)
	}

	for _, u := range sim.asked(apiBuilds) {
		if u.Query().Get("include_retried_jobs") != "true" {
			t.Errorf("builds asked without include_retried_jobs=true: %s", u)
		}
		if u.Query().Get("per_page") != "100" {
			t.Errorf("builds asked with per_page=%q, want 100: %s", u.Query().Get("per_page"), u)
		}
		if u.Query().Has("created_from") {
			t.Errorf("a first sync asked created_from: %s", u)
		}
	}
	// api: three pages, the second refused twice (429, 500); web: one
	// full page and no more; docs: one empty page.
	for path, want := range map[string]int{apiBuilds: 5, "/organizations/acme/pipelines/web/builds": 1, "/organizations/acme/pipelines/docs/builds": 1, "/organizations/acme/pipelines": 3} {
		if n := len(sim.asked(path)); n != want {
			t.Errorf("%d requests to %s, want %d", n, path, want)
		}
	}
	sim.mu.Lock()
	overrun := sim.overrun
	sim.mu.Unlock()
	if overrun != 0 {
		t.Errorf("%d requests sent with the budget in RateLimit-Remaining spent, want none (held until RateLimit-Reset)", overrun)
	}
	sim.mu.Lock()
	userOver := sim.userOver
	sim.mu.Unlock()
	if userOver != 0 {
		t.Errorf("%d requests refused by the per-user limit (RateLimit-User-Remaining spent), want none (held until RateLimit-User-Reset)", userOver)
	}
	if s := stream(r.res, "builds"); s.Retries != 2 {
		t.Errorf("builds retries = %d, want 2 (the 429, the 500)", s.Retries)
	}

	rows := map[string]map[string]any{}
	for _, row := range r.rows["jobs"] {
		rows[row["id"].(string)] = row
	}
	var retried, waiter int
	for _, row := range rows {
		if row["retried"] == true {
			retried++
			if rows[row["retried_in_job_id"].(string)] == nil {
				t.Errorf("job %v was retried in a job not written", row["id"])
			}
		}
		if row["type"] == "waiter" {
			waiter++
			if row["name"] != nil || row["state"] != nil {
				t.Errorf("waiter job row = %v, want no name or state", row)
			}
		}
	}
	if retried == 0 || waiter == 0 {
		t.Errorf("%d retried tries and %d waiter jobs written, want some of each", retried, waiter)
	}
	for _, row := range r.rows["builds"] {
		if row["number"] == float64(7) && row["pipeline"] == "api" && (row["creator"] != nil || row["source"] != "api") {
			t.Errorf("build api#7 row = %v, want source api and no creator", row)
		}
	}
	noSecret(t, r, bkToken)
}

// count tells how often s is in list.
func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// unique is list with repeats dropped.
func unique(list []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(list)))
}

// Buildkite incremental: a second sync asks each pipeline's builds from
// created_from = the newest created_at written less the 3-day lookback,
// so a build still running at the first sync is written again finished,
// and new builds are added; nothing written twice as another row.
func TestBuildkiteIncremental(t *testing.T) {
	t.Parallel()
	sim := newBKSim(bkToken)
	sim.pipelines["acme"] = sim.pipelines["acme"][:4]
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := t.TempDir() + "/bk.db"
	sets := map[string]string{"api_url": srv.URL, "token": bkToken}

	if r := runVendorOpts(t, "buildkite.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db}); r.err != nil {
		t.Fatalf("first sync: %v", r.err)
	}
	sim.mu.Lock()
	newest, _ := time.Parse(time.RFC3339, sim.builds["acme/api"][0]["created_at"].(string))
	var running map[string]any
	for _, b := range sim.builds["acme/api"][:20] {
		if b["state"] == "running" {
			running = b
		}
	}
	if running == nil {
		sim.mu.Unlock()
		t.Fatal("no running build among api's newest")
	}
	running["state"], running["finished_at"] = "failed", running["started_at"]
	fresh := sim.add("acme", "api")
	sim.requests = nil
	sim.mu.Unlock()

	r := runVendorOpts(t, "buildkite.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db})
	if r.err != nil {
		t.Fatalf("second sync: %v", r.err)
	}
	asked := sim.asked("/organizations/acme/pipelines/api/builds")
	if len(asked) == 0 {
		t.Fatal("the second sync did not ask api's builds")
	}
	want := newest.Add(-72 * time.Hour).Format(time.RFC3339)
	if got := asked[0].Query().Get("created_from"); got != want {
		t.Errorf("second sync asked created_from=%q, want %q (the newest written, less 72h)", got, want)
	}
	if got := query(t, db, `SELECT state FROM buildkite__builds WHERE id = '`+running["id"].(string)+`'`); !slices.Equal(got, []string{"failed"}) {
		t.Errorf("the build running at the first sync has state %v, want [failed]", got)
	}
	if got := query(t, db, `SELECT count(*) FROM buildkite__builds WHERE id = '`+fresh["id"].(string)+`'`); !slices.Equal(got, []string{"1"}) {
		t.Errorf("the new build written %v times, want 1", got)
	}
	builds, jobs := sim.want()
	if got := query(t, db, `SELECT count(*) FROM buildkite__builds`); !slices.Equal(got, []string{strconv.Itoa(len(builds))}) {
		t.Errorf("%v builds in the table, want %d", got, len(builds))
	}
	if got := query(t, db, `SELECT count(*) FROM buildkite__jobs`); !slices.Equal(got, []string{strconv.Itoa(len(jobs))}) {
		t.Errorf("%v jobs in the table, want %d", got, len(jobs))
	}
	noSecret(t, r, bkToken)
}

// Buildkite's errors fail the run loudly, naming the stream and, for a
// pipeline's builds, the pipeline, with Buildkite's words: a wrong token,
// a pipeline gone while read (404), a server failing mid-chain on every
// try (the pages after it unread), a page cut short; the token never
// printed.
func TestBuildkiteErrors(t *testing.T) {
	t.Parallel()
	apiBuilds := "/organizations/acme/pipelines/api/builds"
	cases := []struct {
		name   string
		token  string
		faults map[string][]string
		sim    func(*bkSim)
		want   []string
	}{
		{name: "a wrong token", token: "bkua_WrongWrongWrongWrongWrong0000000000000000",
			want: []string{"organizations", "401", "Authentication required"}},
		{name: "a pipeline gone while read", sim: func(s *bkSim) { delete(s.builds, "acme/p007") },
			want: []string{"builds", "p007", "404", "Not Found"}},
		{name: "a 500 on every try mid-chain", faults: map[string][]string{apiBuilds + "|2": slices.Repeat([]string{"500"}, 10)},
			want: []string{"builds", "api", "500", "something went wrong"}},
		{name: "a page cut short", faults: map[string][]string{apiBuilds + "|3": {"cut"}},
			want: []string{"builds", "api"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newBKSim(bkToken)
			sim.faults = map[string][]string{}
			for k, v := range c.faults {
				sim.faults[k] = v
			}
			if c.sim != nil {
				c.sim(sim)
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			token := bkToken
			if c.token != "" {
				token = c.token
			}
			r := runVendor(t, "buildkite.yaml", map[string]string{"api_url": srv.URL, "token": token}, time.Time{})
			failedRun(t, r, c.want)
			if r.res != nil && r.res.Summary != nil && r.res.Summary.Complete["builds"] {
				t.Errorf("builds is complete after a failure")
			}
			noSecret(t, r, bkToken, token)
		})
	}
}
