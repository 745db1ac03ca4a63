package examples_test

import (
	"encoding/base32"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// vercelSim answers Vercel's projects and deployments lists as the facts
// in testdata/vercel.md say, kept unkind where the docs are silent: a
// bearer token and teamId on every request (else a 403 forbidden);
// limit 20 when not asked, more than 100 served as 100 without a word;
// deployments newest first, until read as "created strictly before" and
// since as "created strictly after", and
// pagination.next the last deployment's created (so a client that sends
// next back as until loses the rest of that millisecond, silently);
// projects newest updated first and paged by time like deployments: from
// read as "updated strictly before", pagination.next the last project's
// updatedAt (epoch ms, as Vercel's CLI pages them), so a client that sends
// next back as from loses the rest of that millisecond; with
// opaqueProjects, an opaque continuation token instead; a budget per
// endpoint in fixed one-second windows, every answer carrying
// X-RateLimit-Limit/-Remaining/-Reset (epoch seconds), over it a 429
// rate_limited; errors {"error": {code, message}}.
type vercelSim struct {
	token, team string
	projects    []map[string]any
	deployments []map[string]any // newest first; created ties in uid order
	perWindow   int
	// opaqueProjects: projects paged by an opaque token in from, not by
	// updatedAt.
	opaqueProjects bool

	mu       sync.Mutex
	requests []string // path?query of each request
	window   map[string][2]int64
	limited  int
	// notBefore[key] is a 429's reset (epoch seconds) for the request
	// key (path|until|from); early counts requests sent before it.
	notBefore map[string]int64
	early     int
	// faults[key] are answered, in order, to the first requests of key.
	faults map[string][]int
}

const vercelToken = "SimOnlyVercelTok9f8e7d6c5b4a3f2e1d0c"

// newVercelSim holds 250 projects, updated in groups of 7 that share one
// millisecond (a change made to several projects at once), and n
// deployments, created in groups of group that share one millisecond (a
// push that deploys several projects at once), so that page boundaries
// fall inside such groups.
func newVercelSim(n, group int) *vercelSim {
	s := &vercelSim{token: vercelToken, team: "team_acme", perWindow: 8, window: map[string][2]int64{}, notBefore: map[string]int64{}, faults: map[string][]int{}}
	base := int64(1735689600000) // 2025-01-01 in epoch ms
	for i := range 250 {
		p := map[string]any{"id": fmt.Sprintf("prj_%04d", i), "name": fmt.Sprintf("app-%d", i), "framework": "nextjs",
			"nodeVersion": "20.x", "createdAt": base - int64(i)*1000, "updatedAt": base - int64(i/7)*2000}
		if i%9 == 0 {
			p["framework"] = nil // no framework detected
			delete(p, "nodeVersion")
		}
		s.projects = append(s.projects, p)
	}
	for i := range n {
		d := map[string]any{"uid": fmt.Sprintf("dpl_%05d", i), "name": fmt.Sprintf("app-%d", i%250), "projectId": fmt.Sprintf("prj_%04d", i%250),
			"url": fmt.Sprintf("app-%d-%05d.vercel.app", i%250, i), "created": base - int64(i/group)*1000, "readyState": "READY",
			"state": "READY", "target": "production", "source": "git", "buildingAt": base - int64(i/group)*1000 + 50, "ready": base - int64(i/group)*1000 + 9000,
			"creator": map[string]any{"uid": "u1", "username": "dev"}, "meta": map[string]any{"githubCommitSha": "abc123", "githubCommitRef": "main"}}
		switch i % 6 {
		case 1:
			d["target"] = nil // a preview
		case 2:
			d["url"] = nil // still uploading
			d["readyState"], d["state"] = "INITIALIZING", "INITIALIZING"
			delete(d, "ready")
		case 3:
			delete(d, "meta") // deployed by the CLI
		case 4:
			delete(d, "readyState") // an older answer: state only
		}
		s.deployments = append(s.deployments, d)
	}
	return s
}

func vercelError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message}})
}

// limit counts the request against its endpoint's budget, in windows of
// one second aligned to the epoch, and sets the headers every answer
// carries; false: over the budget.
func (s *vercelSim) limit(w http.ResponseWriter, path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Unix()
	win := s.window[path]
	if win[0] != now {
		win = [2]int64{now, 0}
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.perWindow))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(now+1, 10))
	if win[1] >= int64(s.perWindow) {
		h.Set("X-RateLimit-Remaining", "0")
		s.limited++
		return false
	}
	win[1]++
	s.window[path] = win
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(int64(s.perWindow)-win[1], 10))
	return true
}

func (s *vercelSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := r.URL.Path + "|" + q.Get("until") + "|" + q.Get("from")
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.RequestURI())
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	if t, ok := s.notBefore[key]; ok && time.Now().Unix() < t {
		s.early++
	}
	s.mu.Unlock()

	if r.Header.Get("Authorization") != "Bearer "+s.token {
		vercelError(w, 403, "forbidden", "Not authorized")
		return
	}
	if q.Get("teamId") != s.team {
		vercelError(w, 403, "forbidden", "You don't have permission to access this team")
		return
	}
	if !s.limit(w, r.URL.Path) || fault == http.StatusTooManyRequests {
		reset := time.Now().Unix() + 1
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
		s.mu.Lock()
		s.notBefore[key] = reset
		s.mu.Unlock()
		writeJSON(w, 429, map[string]any{"error": map[string]any{"code": "rate_limited", "message": "Too many requests - try again in 1 second.",
			"limit": map[string]any{"remaining": 0, "reset": reset, "resetMs": reset * 1000, "total": s.perWindow}}})
		return
	}
	if fault == -1 {
		writeJSON(w, 200, map[string]any{"message": "maintenance"}) // a proxy's JSON: no list
		return
	}
	if fault != 0 {
		vercelError(w, fault, "internal_server_error", "An unexpected internal error occurred")
		return
	}
	limit, ok := queryInt(q, "limit", 20, 1)
	if !ok {
		vercelError(w, 400, "bad_request", "Invalid limit")
		return
	}
	limit = min(limit, 100)
	switch r.URL.Path {
	case "/v10/projects":
		if s.opaqueProjects {
			s.projectsByToken(w, q.Get("from"), limit)
			return
		}
		var in []map[string]any
		for _, p := range s.projects {
			if tok := q.Get("from"); tok != "" {
				before, err := strconv.ParseInt(tok, 10, 64)
				if err != nil {
					vercelError(w, 400, "bad_request", "Invalid from")
					return
				}
				if p["updatedAt"].(int64) >= before {
					continue // "updated before", strictly
				}
			}
			in = append(in, p)
		}
		page := in[:min(limit, len(in))]
		var next any
		if len(in) > len(page) {
			next = page[len(page)-1]["updatedAt"]
		}
		writeJSON(w, 200, map[string]any{"projects": page, "pagination": map[string]any{"count": len(page), "next": next, "prev": nil}})
	case "/v6/deployments":
		since := int64(-1)
		if v := q.Get("since"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				vercelError(w, 400, "bad_request", "Invalid since")
				return
			}
			since = n
		}
		var in []map[string]any
		s.mu.Lock()
		all := slices.Clone(s.deployments)
		s.mu.Unlock()
		for _, d := range all {
			if d["created"].(int64) <= since {
				continue // "created after"
			}
			if u := q.Get("until"); u != "" {
				until, err := strconv.ParseInt(u, 10, 64)
				if err != nil {
					vercelError(w, 400, "bad_request", "Invalid until")
					return
				}
				if d["created"].(int64) >= until {
					continue
				}
			}
			in = append(in, d)
		}
		page := in[:min(limit, len(in))]
		pg := map[string]any{"count": len(page), "next": nil, "prev": nil}
		if len(page) > 0 {
			pg["prev"] = page[0]["created"]
			if len(in) > len(page) {
				pg["next"] = page[len(page)-1]["created"]
			}
		}
		writeJSON(w, 200, map[string]any{"deployments": page, "pagination": pg})
	default:
		vercelError(w, 404, "not_found", "The requested URL was not found")
	}
}

// projectsByToken answers a page of projects from an opaque continuation
// token, as the docs' example next (a string) suggests some answers do.
func (s *vercelSim) projectsByToken(w http.ResponseWriter, tok string, limit int) {
	from := 0
	if tok != "" {
		b, err := base32.StdEncoding.DecodeString(tok)
		n, aerr := strconv.Atoi(strings.TrimPrefix(string(b), "p:"))
		if err != nil || aerr != nil {
			vercelError(w, 400, "bad_request", "Invalid continuation token")
			return
		}
		from = n
	}
	end := min(from+limit, len(s.projects))
	var next any
	if end < len(s.projects) {
		next = base32.StdEncoding.EncodeToString([]byte("p:" + strconv.Itoa(end)))
	}
	page := s.projects[min(from, len(s.projects)):end]
	writeJSON(w, 200, map[string]any{"projects": page, "pagination": map[string]any{"count": len(page), "next": next, "prev": nil}})
}

// timeRepeats counts the items a time-paged list (newest first, pages of
// 100, each asked from the last item's key + 1) serves twice: those of
// each page's last millisecond that the page held.
func timeRepeats(items []map[string]any, key string) int {
	n := 0
	until := int64(0)
	for {
		var in []map[string]any
		for _, it := range items {
			if until == 0 || it[key].(int64) < until {
				in = append(in, it)
			}
		}
		if len(in) <= 100 {
			return n
		}
		last := in[99][key].(int64)
		for _, it := range in[:100] {
			if it[key].(int64) == last {
				n++
			}
		}
		until = last + 1
	}
}

func (s *vercelSim) asked(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, u := range s.requests {
		if strings.HasPrefix(u, prefix) {
			out = append(out, u)
		}
	}
	return out
}

func vercelSets(url string) map[string]string {
	return map[string]string{"api_url": url, "token": vercelToken, "team_id": "team_acme"}
}

// Vercel: every project and every deployment of the team written, those
// that share the millisecond a page ends in included (that millisecond
// asked again whole: its projects or deployments read already are written
// again and counted as duplicates, exactly those); the per-endpoint
// budget kept, a 429 waited out to its X-RateLimit-Reset (epoch seconds),
// a 500 mid-chain retried; the token never printed.
func TestVercel(t *testing.T) {
	t.Parallel()
	sim := newVercelSim(1234, 7)
	// Deployments' third page: a 500, then a 429.
	third := strconv.FormatInt(sim.deployments[199]["created"].(int64)+1, 10)
	sim.faults["/v6/deployments|"+third+"|"] = []int{500, 429}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "vercel.yaml", vercelSets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantProjects, wantDeployments []string
	for _, p := range sim.projects {
		wantProjects = append(wantProjects, p["id"].(string))
	}
	for _, d := range sim.deployments {
		wantDeployments = append(wantDeployments, d["uid"].(string))
	}
	gotProjects := ids(r.rows["projects"], "id")
	sameIDs(t, "projects (repeats aside)", wantProjects, unique(gotProjects))
	got := ids(r.rows["deployments"], "uid")
	sameIDs(t, "deployments (repeats aside)", wantDeployments, unique(got))

	// The repeats are exactly the items of a page's last millisecond that
	// the page held: each page of 100 read from an until (a from for
	// projects) ends inside a group of 7 sharing one millisecond.
	wantP, want := timeRepeats(sim.projects, "updatedAt"), timeRepeats(sim.deployments, "created")
	if len(gotProjects)-len(wantProjects) != wantP || wantP == 0 {
		t.Errorf("%d project rows for %d projects, want %d repeats (a page's last millisecond asked again)", len(gotProjects), len(wantProjects), wantP)
	}
	if len(got)-len(wantDeployments) != want || want == 0 {
		t.Errorf("%d deployment rows for %d deployments, want %d repeats (a page's last millisecond asked again)", len(got), len(wantDeployments), want)
	}
	dup := map[string]int{}
	for _, d := range r.res.Summary.Duplicates {
		dup[d.Name] = d.Count
	}
	if dup["deployments"] != want || dup["projects"] != wantP {
		t.Errorf("duplicates = %+v, want projects: %d, deployments: %d", r.res.Summary.Duplicates, wantP, want)
	}
	rows := map[string]map[string]any{}
	for _, row := range r.rows["deployments"] {
		rows[row["uid"].(string)] = row
	}
	if row := rows["dpl_00004"]; row["state"] != "READY" {
		t.Errorf("a deployment answered with state only: row %v, want state READY", row)
	}
	if row := rows["dpl_00002"]; row["url"] != nil || row["state"] != "INITIALIZING" || row["ready"] != nil {
		t.Errorf("an uploading deployment: row %v, want url and ready null", row)
	}
	if row := rows["dpl_00003"]; row["commit_sha"] != nil || row["project_id"] != "prj_0003" {
		t.Errorf("a deployment without meta: row %v", row)
	}
	for _, u := range sim.asked("/v") {
		if !strings.Contains(u, "teamId=team_acme") || !strings.Contains(u, "limit=100") {
			t.Errorf("request %s: without teamId or limit=100", u)
		}
	}
	if s := stream(r.res, "deployments"); s.Retries < 2 {
		t.Errorf("deployments retries = %d, want at least 2 (the 500, the 429)", s.Retries)
	}
	t.Logf("%d requests, %d refused by the budget", len(sim.requests), sim.limited)
	// 13 pages of deployments at 8 a second: the budget is met, and kept
	// (without X-RateLimit-Remaining on its answers, one is refused).
	if sim.limited > 0 {
		t.Errorf("%d requests refused by a spent budget its X-RateLimit-Remaining/-Reset announced", sim.limited)
	}
	if sim.early > 0 {
		t.Errorf("%d requests sent again before their 429's X-RateLimit-Reset", sim.early)
	}
	noSecret(t, r, vercelToken)
}

// A spec that sends pagination.next back as until (as from for
// projects), as the docs suggest, loses the items of each page's last
// millisecond that did not fit on it, and exits 0: what the example's
// tokens (the last time + 1) are for. This checks the simulator is that
// unkind, so that TestVercel proves something.
func TestVercelNaiveUntilLoses(t *testing.T) {
	t.Parallel()
	sim := newVercelSim(1234, 7)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	b, err := os.ReadFile("vercel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	const ours = `token: 'if .pagination.next == null or (.deployments | length) == 0 then null else .deployments[-1].created + 1 end'`
	oursProjects := "token: >-\n" + `        if .pagination.next == null or (.projects | length) == 0 then null
        elif (.pagination.next | type) == "number" then ([.pagination.next, .projects[-1].updatedAt] | max) + 1
        else .pagination.next end`
	if !strings.Contains(spec, ours) || !strings.Contains(spec, oursProjects) {
		t.Fatal("vercel.yaml's tokens are not the ones this test replaces")
	}
	spec = strings.Replace(spec, ours, "token: .pagination.next", 1)
	spec = strings.Replace(spec, oursProjects, "token: .pagination.next", 1)
	naive := filepath.Join(t.TempDir(), "vercel.yaml")
	if err := os.WriteFile(naive, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runVendor(t, naive, vercelSets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	if got := len(unique(ids(r.rows["deployments"], "uid"))); got >= len(sim.deployments) {
		t.Errorf("the naive spec wrote %d of %d deployments: the simulator does not lose a millisecond's rest", got, len(sim.deployments))
	}
	if got := len(unique(ids(r.rows["projects"], "id"))); got >= len(sim.projects) {
		t.Errorf("the naive spec wrote %d of %d projects: the simulator does not lose a millisecond's rest", got, len(sim.projects))
	}
}

// Projects paged by an opaque continuation token (a string next, as the
// docs' example shows) are asked with it as it came: every project once,
// no repeats.
func TestVercelOpaqueProjectTokens(t *testing.T) {
	t.Parallel()
	sim := newVercelSim(10, 1)
	sim.opaqueProjects = true
	srv := httptest.NewServer(sim)
	defer srv.Close()
	r := runVendor(t, "vercel.yaml", vercelSets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var want []string
	for _, p := range sim.projects {
		want = append(want, p["id"].(string))
	}
	sameIDs(t, "projects, each once", want, ids(r.rows["projects"], "id"))
	tok := base32.StdEncoding.EncodeToString([]byte("p:100"))
	if asked := sim.asked("/v10/projects"); len(asked) != 3 || !strings.Contains(asked[1], "from="+tok+"&") {
		t.Errorf("projects asked %v: want 3 pages, the second from the token as it came (%s)", asked, tok)
	}
}

// More deployments in one millisecond than a page holds cannot be read
// past by time: the chain fails naming the stream, with what it read
// written, rather than skip the rest of that millisecond.
func TestVercelMillisecondOverPage(t *testing.T) {
	t.Parallel()
	sim := newVercelSim(400, 1)
	// The 60th to the 209th deployment share one millisecond: page 1 ends
	// with 40 of them, page 2 (until that millisecond + 1) holds 100 of
	// them and asks the same until again.
	same := sim.deployments[60]["created"]
	for _, d := range sim.deployments[60:210] {
		d["created"] = same
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	r := runVendor(t, "vercel.yaml", vercelSets(srv.URL), time.Time{})
	failedRun(t, r, []string{"deployments", "pagination made no progress"})
	if n := len(unique(ids(r.rows["deployments"], "uid"))); n == 0 || n >= 400 {
		t.Errorf("%d deployments written, want those read before the failure", n)
	}
	noSecret(t, r, vercelToken)
}

// More projects updated in one millisecond than a page holds fail the
// projects chain too, naming the stream, rather than skip the rest of it.
func TestVercelProjectsMillisecondOverPage(t *testing.T) {
	t.Parallel()
	sim := newVercelSim(10, 1)
	same := sim.projects[60]["updatedAt"]
	for _, p := range sim.projects[60:210] {
		p["updatedAt"] = same
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	r := runVendor(t, "vercel.yaml", vercelSets(srv.URL), time.Time{})
	failedRun(t, r, []string{"projects", "pagination made no progress"})
	noSecret(t, r, vercelToken)
}

// Vercel's errors fail the run with their code and message, naming the
// stream; a 200 without its list fails its chain; the token is never
// printed.
func TestVercelErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong token", sets: map[string]string{"token": "WrongVercelTokenWrongWrong"}, want: []string{"projects", "forbidden: Not authorized"}},
		{name: "a team the token cannot see", sets: map[string]string{"team_id": "team_other"}, want: []string{"deployments", "forbidden: You don't have permission"}},
		{name: "a 200 without deployments", faults: map[string][]int{"/v6/deployments||": {-1}}, want: []string{"deployments", "records"}},
		{name: "a 500 on every attempt", faults: map[string][]int{"/v10/projects||": slices.Repeat([]int{500}, 12)}, want: []string{"projects", "500"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newVercelSim(50, 3)
			for k, v := range c.faults {
				sim.faults[k] = v
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := vercelSets(srv.URL)
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "vercel.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, vercelToken, sets["token"])
		})
	}
}

// Vercel incremental: a second sync asks deployments since the newest
// created written less a day, so the deployment still initializing at
// the first sync is written again ready, and the new one is added once.
func TestVercelIncremental(t *testing.T) {
	t.Parallel()
	sim := newVercelSim(300, 7)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := t.TempDir() + "/vercel.db"
	sets := vercelSets(srv.URL)
	if r := runVendorOpts(t, "vercel.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db}); r.err != nil {
		t.Fatalf("first sync: %v", r.err)
	}
	if first := sim.asked("/v6/deployments"); len(first) == 0 || !strings.Contains(first[0], "since=1262304000000") {
		t.Errorf("the first sync's first deployments request %v: want since the initial 2010-01-01", first)
	}
	sim.mu.Lock()
	newest := sim.deployments[0]["created"].(int64)
	building := sim.deployments[2] // INITIALIZING, url null
	building["readyState"], building["state"], building["url"], building["ready"] = "READY", "READY", "app-2-00002.vercel.app", newest+60000
	fresh := map[string]any{"uid": "dpl_fresh", "name": "app-1", "projectId": "prj_0001", "url": "app-1-fresh.vercel.app", "created": newest + 3600000,
		"readyState": "READY", "state": "READY", "target": "production", "source": "git", "creator": map[string]any{"username": "dev"}}
	sim.deployments = append([]map[string]any{fresh}, sim.deployments...)
	sim.requests = nil
	sim.mu.Unlock()

	if r := runVendorOpts(t, "vercel.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db}); r.err != nil {
		t.Fatalf("second sync: %v", r.err)
	}
	asked := sim.asked("/v6/deployments")
	want := "since=" + strconv.FormatInt(newest-24*3600*1000, 10)
	if len(asked) == 0 || !strings.Contains(asked[0], want) {
		t.Errorf("second sync asked %v, want %s (the newest written, less a day)", asked, want)
	}
	if got := query(t, db, `SELECT state FROM vercel__deployments WHERE uid = 'dpl_00002'`); !slices.Equal(got, []string{"READY"}) {
		t.Errorf("the deployment initializing at the first sync has state %v, want [READY]", got)
	}
	if got := query(t, db, `SELECT count(*) FROM vercel__deployments WHERE uid = 'dpl_fresh'`); !slices.Equal(got, []string{"1"}) {
		t.Errorf("the new deployment written %v times, want 1", got)
	}
	if got := query(t, db, `SELECT count(*) FROM vercel__deployments`); !slices.Equal(got, []string{"301"}) {
		t.Errorf("%v deployments in the table, want 301", got)
	}
}
