package examples_test

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// circleSim answers CircleCI API v2's project pipelines, pipeline
// workflows and workflow jobs as the service does (facts in
// testdata/circleci.md, from its API developer's guide and reference):
// {items, next_page_token} lists, the token opaque (it holds "+", "/" and
// "="), sent back as page-token, null on the last page; 20 items a page,
// with no way to ask for more; pipelines newest first, a slug's "/"
// taken escaped or not; optional fields left out (vcs of a scheduled
// pipeline, vcs.branch of a tag's, job_number of an approval job,
// stopped_at of a running workflow); a pipeline whose configuration
// failed has errors and no workflow; the token in Circle-Token; a 429
// with Retry-After (or without, "in most cases" it has one); errors
// {"message"}.
type circleSim struct {
	token     string
	pipelines map[string][]map[string]any // project slug -> pipelines, newest first
	workflows map[string][]map[string]any // pipeline id -> workflows
	jobs      map[string][]map[string]any // workflow id -> jobs

	mu       sync.Mutex
	requests []*http.Request
	// faults[path + "|" + page-token] are answered, in order, to the
	// first requests for that page: a status, or -429 for a 429 without
	// Retry-After.
	faults map[string][]int
	early  int // requests sent again before their 429's Retry-After
	after  map[string]time.Time
}

const circleToken = "CCIPAT_SimOnly7Hq2Lx9Vb4Nm_0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"

func newCircleSim() *circleSim {
	s := &circleSim{token: circleToken, pipelines: map[string][]map[string]any{}, workflows: map[string][]map[string]any{},
		jobs: map[string][]map[string]any{}, faults: map[string][]int{}, after: map[string]time.Time{}}
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return base.Add(d).Format("2006-01-02T15:04:05.000Z") }
	projects := map[string]int{
		"gh/acme/api": 47, // three pages, the last short
		"circleci/4d8e6b5a-1f2c-4e3d-9a8b-7c6d5e4f3a2b/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d": 20, // one full page, then a null token
		"bb/acme/legacy": 0,
	}
	w, j := 0, 0
	// In a fixed order: ids count across projects, and a test that picks
	// one from one simulator finds it in the next.
	for _, slug := range slices.Sorted(maps.Keys(projects)) {
		n := projects[slug]
		var list []map[string]any
		for i := range n {
			id := fmt.Sprintf("%08x-0000-4000-8000-%012x", len(slug), i+1000*len(s.pipelines))
			p := map[string]any{"id": id, "project_slug": slug, "number": i + 1, "state": "created", "errors": []any{},
				"created_at": ts(time.Duration(i) * time.Hour), "updated_at": ts(time.Duration(i)*time.Hour + time.Minute),
				"trigger": map[string]any{"type": "webhook", "received_at": ts(time.Duration(i) * time.Hour), "actor": map[string]any{"login": "ada", "avatar_url": "https://avatars.example/ada"}},
				"vcs": map[string]any{"provider_name": "GitHub", "origin_repository_url": "https://github.com/acme/api", "target_repository_url": "https://github.com/acme/api",
					"revision": fmt.Sprintf("%040x", i), "branch": []string{"main", "feature/x"}[i%2]}}
			switch i % 11 {
			case 3: // a tag's pipeline: no branch
				delete(p["vcs"].(map[string]any), "branch")
				p["vcs"].(map[string]any)["tag"] = fmt.Sprintf("v1.%d.0", i)
			case 5: // scheduled: no vcs, no actor's avatar
				delete(p, "vcs")
				p["trigger"] = map[string]any{"type": "schedule", "received_at": ts(time.Duration(i) * time.Hour), "actor": map[string]any{"login": "scheduler"}}
			case 7: // its configuration failed: errors, no workflow
				p["state"] = "errored"
				p["errors"] = []any{map[string]any{"type": "config", "message": "Config does not conform to schema: missing jobs"}}
			}
			list = append(list, p)
			if p["state"] == "errored" {
				s.workflows[id] = []map[string]any{}
				continue
			}
			nw := 1 + i%3
			if i == 2 && slug == "gh/acme/api" {
				nw = 25 // two pages of workflows
			}
			var wfs []map[string]any
			for k := range nw {
				w++
				wid := fmt.Sprintf("%08x-1111-4000-8000-%012x", w, k)
				wf := map[string]any{"id": wid, "name": fmt.Sprintf("build-%d", k), "pipeline_id": id, "pipeline_number": i + 1, "project_slug": slug,
					"status": "success", "started_by": "0b1c2d3e-0000-4000-8000-000000000001", "created_at": ts(time.Duration(i)*time.Hour + time.Minute),
					"stopped_at": ts(time.Duration(i)*time.Hour + 9*time.Minute)}
				if k == 1 {
					wf["status"], wf["stopped_at"] = "running", nil
				}
				wfs = append(wfs, wf)
				nj := 1 + (i+k)%4
				if i == 0 && k == 0 && slug == "gh/acme/api" {
					nj = 43 // three pages of jobs
				}
				var jobs []map[string]any
				for m := range nj {
					j++
					job := map[string]any{"id": fmt.Sprintf("%08x-2222-4000-8000-%012x", j, m), "name": fmt.Sprintf("step-%d", m), "type": "build",
						"status": "success", "job_number": j, "project_slug": slug, "dependencies": []any{},
						"started_at": ts(time.Duration(i)*time.Hour + 2*time.Minute), "stopped_at": ts(time.Duration(i)*time.Hour + 5*time.Minute)}
					if m == 2 {
						// An approval job: no job_number.
						job["type"], job["status"], job["approval_request_id"] = "approval", "on_hold", job["id"]
						delete(job, "job_number")
						job["started_at"], job["stopped_at"] = nil, nil
					}
					jobs = append(jobs, job)
				}
				s.jobs[wid] = jobs
			}
			s.workflows[id] = wfs
		}
		// Newest first.
		for a, b := 0, len(list)-1; a < b; a, b = a+1, b-1 {
			list[a], list[b] = list[b], list[a]
		}
		s.pipelines[slug] = list
	}
	return s
}

// circleToken of the page at offset: opaque, as CircleCI's are.
func circlePageToken(path string, offset int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s?>%d~~", path, offset)))
}

func circleError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg})
}

func (s *circleSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := q.Get("page-token")
	key := r.URL.Path + "|" + page
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	if t, ok := s.after[key]; ok && time.Now().Before(t) {
		s.early++
	}
	s.mu.Unlock()

	if r.Header.Get("Circle-Token") != s.token {
		circleError(w, 401, "You must log in first.")
		return
	}
	switch fault {
	case 0:
	case 429:
		s.mu.Lock()
		s.after[key] = time.Now().Add(time.Second)
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		circleError(w, 429, "Rate limit exceeded")
		return
	case -429:
		circleError(w, 429, "Rate limit exceeded")
		return
	default:
		circleError(w, fault, http.StatusText(fault))
		return
	}
	var list []map[string]any
	path := r.URL.Path // the slug's escaped "/" decoded
	switch {
	case strings.HasPrefix(path, "/project/") && strings.HasSuffix(path, "/pipeline"):
		slug := strings.TrimSuffix(strings.TrimPrefix(path, "/project/"), "/pipeline")
		all, ok := s.pipelines[slug]
		if !ok {
			circleError(w, 404, "Project not found")
			return
		}
		list = []map[string]any{}
		for _, p := range all {
			if b := q.Get("branch"); b != "" {
				vcs, _ := p["vcs"].(map[string]any)
				if vcs == nil || vcs["branch"] != b {
					continue
				}
			}
			list = append(list, p)
		}
	case strings.HasPrefix(path, "/pipeline/") && strings.HasSuffix(path, "/workflow"):
		var ok bool
		if list, ok = s.workflows[strings.TrimSuffix(strings.TrimPrefix(path, "/pipeline/"), "/workflow")]; !ok {
			circleError(w, 404, "Pipeline not found")
			return
		}
	case strings.HasPrefix(path, "/workflow/") && strings.HasSuffix(path, "/job"):
		var ok bool
		if list, ok = s.jobs[strings.TrimSuffix(strings.TrimPrefix(path, "/workflow/"), "/job")]; !ok {
			circleError(w, 404, "Workflow not found")
			return
		}
	default:
		circleError(w, 404, "Not found")
		return
	}
	offset := 0
	if page != "" {
		found := false
		for o := 0; o <= len(list); o += 20 {
			if circlePageToken(path, o) == page {
				offset, found = o, true
				break
			}
		}
		if !found {
			circleError(w, 400, "Invalid page-token")
			return
		}
	}
	end := min(offset+20, len(list))
	var next any
	if end < len(list) {
		next = circlePageToken(path, end)
	}
	items := list[offset:end]
	if items == nil {
		items = []map[string]any{}
	}
	writeJSON(w, 200, map[string]any{"items": items, "next_page_token": next})
}

func (s *circleSim) asked(prefix string) []*http.Request {
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

const circleProjects = "gh/acme/api, circleci/4d8e6b5a-1f2c-4e3d-9a8b-7c6d5e4f3a2b/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d, bb/acme/legacy"

func runCircle(t *testing.T, s *circleSim, sets map[string]string) vendorRun {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	all := map[string]string{"api_url": srv.URL, "token": circleToken, "projects": circleProjects}
	for k, v := range sets {
		all[k] = v
	}
	return runVendor(t, "circleci.yaml", all, time.Time{})
}

// CircleCI: every pipeline of each project, every workflow of each
// pipeline and every job of each workflow, written once, followed by
// next_page_token sent back as page-token (opaque, escaped in the query);
// a pipeline whose configuration failed kept with its errors; approval
// jobs without job_number; a 429 with Retry-After waited out, one without
// and a 500 mid-chain retried; the token never printed.
func TestCircleCI(t *testing.T) {
	t.Parallel()
	s := newCircleSim()
	p1 := "/project/gh/acme/api/pipeline"
	s.faults[p1+"|"+circlePageToken(p1, 20)] = []int{429}
	var big, bigJobs string
	for _, p := range s.pipelines["gh/acme/api"] {
		if p["number"] == 3 {
			big = "/pipeline/" + p["id"].(string) + "/workflow"
		}
		if p["number"] == 1 {
			bigJobs = "/workflow/" + s.workflows[p["id"].(string)][0]["id"].(string) + "/job"
		}
	}
	s.faults[big+"|"+circlePageToken(big, 20)] = []int{-429}
	s.faults[bigJobs+"|"+circlePageToken(bigJobs, 40)] = []int{500}
	r := runCircle(t, s, nil)
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantP, wantW, wantJ []string
	errored := map[string]bool{}
	for _, ps := range s.pipelines {
		for _, p := range ps {
			wantP = append(wantP, p["id"].(string))
			if p["state"] == "errored" {
				errored[p["id"].(string)] = true
			}
			for _, wf := range s.workflows[p["id"].(string)] {
				wantW = append(wantW, wf["id"].(string))
				for _, j := range s.jobs[wf["id"].(string)] {
					wantJ = append(wantJ, j["id"].(string))
				}
			}
		}
	}
	sameIDs(t, "pipelines", wantP, column(r.rows["pipelines"], "id"))
	sameIDs(t, "workflows", wantW, column(r.rows["workflows"], "id"))
	sameIDs(t, "jobs", wantJ, column(r.rows["jobs"], "id"))
	if len(errored) == 0 {
		t.Fatal("the simulator has no errored pipeline")
	}
	for _, row := range r.rows["pipelines"] {
		if errored[fmt.Sprint(row["id"])] != (fmt.Sprint(row["error_count"]) == "1") || errored[fmt.Sprint(row["id"])] && !strings.Contains(fmt.Sprint(row["errors"]), "Config does not conform") {
			t.Errorf("pipeline row %v: want its errors (errored: %v)", row, errored[fmt.Sprint(row["id"])])
		}
	}
	approvals := 0
	for _, row := range r.rows["jobs"] {
		if row["type"] == "approval" {
			approvals++
			if row["job_number"] != nil {
				t.Errorf("approval job %v has a job_number", row)
			}
		}
		if row["workflow_id"] == nil {
			t.Errorf("job %v without its workflow", row)
		}
	}
	if approvals == 0 {
		t.Error("no approval job written")
	}
	if n := len(s.asked("/project/")); n < 6 {
		t.Errorf("%d pipeline requests, want at least 6 (3 pages, 1 page and its token, 1 empty, a 429)", n)
	}
	for _, req := range s.asked("/") {
		if req.Header.Get("Circle-Token") != circleToken {
			t.Errorf("request %s without the token", req.URL)
		}
	}
	if st := stream(r.res, "workflows"); st.Retries < 1 {
		t.Errorf("workflows retries = %d, want the 429 without Retry-After retried", st.Retries)
	}
	if st := stream(r.res, "jobs"); st.Retries < 1 {
		t.Errorf("jobs retries = %d, want the 500 retried", st.Retries)
	}
	if s.early > 0 {
		t.Errorf("%d requests sent again before their 429's Retry-After", s.early)
	}
	noDuplicates(t, r)
	noSecret(t, r, circleToken)
}

// A branch asks only that branch's pipelines (branch=, every page).
func TestCircleCIBranch(t *testing.T) {
	t.Parallel()
	s := newCircleSim()
	r := runCircle(t, s, map[string]string{"branch": "feature/x"})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var want []string
	for _, ps := range s.pipelines {
		for _, p := range ps {
			if vcs, ok := p["vcs"].(map[string]any); ok && vcs["branch"] == "feature/x" {
				want = append(want, p["id"].(string))
			}
		}
	}
	sameIDs(t, "pipelines of feature/x", want, column(r.rows["pipelines"], "id"))
	for _, req := range s.asked("/project/") {
		if req.URL.Query().Get("branch") != "feature/x" {
			t.Errorf("pipelines request %s without branch", req.URL)
		}
	}
}

// CircleCI's errors fail the run with their message, naming the stream
// and the project; the token is never printed.
func TestCircleCIErrors(t *testing.T) {
	t.Parallel()
	s0 := newCircleSim()
	var wf string
	for _, p := range s0.pipelines["gh/acme/api"] {
		if p["number"] == 2 {
			wf = "/workflow/" + s0.workflows[p["id"].(string)][0]["id"].(string) + "/job|"
		}
	}
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong token", sets: map[string]string{"token": "CCIPAT_Wrong0000000000000000000000"},
			want: []string{"pipelines", "401", "You must log in first."}},
		{name: "a project the token cannot see", sets: map[string]string{"projects": "gh/acme/api, gh/acme/secret"},
			want: []string{"pipelines", "gh/acme/secret", "Project not found"}},
		{name: "a 502 on every attempt", faults: map[string][]int{wf: {502, 502, 502, 502, 502, 502, 502, 502}},
			want: []string{"jobs", "502"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newCircleSim()
			if c.faults != nil {
				s.faults = c.faults
			}
			r := runCircle(t, s, c.sets)
			failedRun(t, r, c.want)
			noSecret(t, r, circleToken)
			if tok := c.sets["token"]; tok != "" {
				noSecret(t, r, tok)
			}
		})
	}
}
