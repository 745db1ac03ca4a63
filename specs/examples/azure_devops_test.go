package examples_test

import (
	"encoding/base64"
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

// azureSim answers /{org}/_apis/projects and
// /{org}/{project}/_apis/build/builds as Azure DevOps Services does (facts
// from its REST API reference, "Authenticate with personal access tokens"
// and "Rate and usage limits"): lists as {"count", "value"} paged by a
// continuation token in the x-ms-continuationtoken response header (absent
// on the last page), sent back as continuationToken; $top asks a page size
// (this simulator serves at most 100 projects and 500 builds a page,
// whatever is asked); api-version is required (a 400
// VssVersionNotSpecifiedException without it); optional fields are left
// out (a project's description, a running build's result and finishTime);
// the PAT as Basic auth with any user name (empty, as documented); no
// credentials answer a 203 with an HTML sign-in page, a wrong PAT a 401;
// 429 with Retry-After and X-RateLimit-*; errors {"$id", "innerException",
// "message", "typeName", "typeKey", "errorCode", "eventId"}. Its tokens
// hold "+", "/" and "=", as opaque base64-like values do.
type azureSim struct {
	pat      string
	org      string
	projects []map[string]any
	builds   map[string][]map[string]any // project id -> builds

	mu       sync.Mutex
	requests []*http.Request
	tokens   map[string]int // continuation token -> offset
	// faults[path + "|" + token] are answered, in order, to the first
	// requests for that page ("" is the first page's token).
	faults map[string][]int
}

func newAzureSim(pat string) *azureSim {
	s := &azureSim{pat: pat, org: "contoso", builds: map[string][]map[string]any{}, tokens: map[string]int{}, faults: map[string][]int{}}
	base := time.Date(2026, 2, 1, 8, 0, 0, 0, time.UTC)
	// 230 projects: three pages. Builds: 1203 on one (three pages of 500,
	// the last short), exactly 500 on another (one full page, no token),
	// none on a third, one on the rest.
	counts := map[int]int{0: 1203, 1: 500, 2: 0}
	n := 0
	for i := range 230 {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", 0x5a000000+i, i)
		p := map[string]any{"id": id, "name": fmt.Sprintf("Project %d", i), "url": "https://dev.azure.com/contoso/_apis/projects/" + id,
			"state": "wellFormed", "revision": 400 + i, "visibility": "private",
			"lastUpdateTime": base.Add(time.Duration(i) * time.Hour).Format("2006-01-02T15:04:05.000Z")}
		if i%3 != 0 {
			p["description"] = fmt.Sprintf("The team of project %d", i)
		}
		s.projects = append(s.projects, p)
		c, ok := counts[i]
		if !ok {
			c = 1
		}
		s.builds[id] = []map[string]any{}
		for j := range c {
			n++
			b := map[string]any{"id": 90000 + n, "buildNumber": fmt.Sprintf("20260201.%d", j+1), "status": "completed", "result": "succeeded",
				"queueTime": base.Add(time.Duration(j) * time.Minute).Format(time.RFC3339Nano), "startTime": base.Add(time.Duration(j)*time.Minute + 10*time.Second).Format(time.RFC3339Nano),
				"finishTime": base.Add(time.Duration(j)*time.Minute + 5*time.Minute).Format(time.RFC3339Nano), "sourceBranch": "refs/heads/main",
				"definition": map[string]any{"id": 7, "name": "CI"}, "project": map[string]any{"id": id, "name": p["name"]},
				"requestedFor": map[string]any{"displayName": "Ada", "uniqueName": "ada@contoso.example"}}
			if j%10 == 9 {
				// Still running: no result, no finishTime.
				b["status"] = "inProgress"
				delete(b, "result")
				delete(b, "finishTime")
			}
			s.builds[id] = append(s.builds[id], b)
		}
	}
	return s
}

func azureError(w http.ResponseWriter, status int, typeKey, msg string) {
	writeJSON(w, status, map[string]any{"$id": "1", "innerException": nil, "message": msg,
		"typeName": "Microsoft.VisualStudio.Services.WebApi." + typeKey + ", Microsoft.VisualStudio.Services.WebApi",
		"typeKey":  typeKey, "errorCode": 0, "eventId": 3000})
}

func (s *azureSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("continuationToken")
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	key := r.URL.Path + "|" + token
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	s.mu.Unlock()
	switch fault {
	case 0:
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
		w.Header().Set("X-RateLimit-Resource", "ATCPU")
		w.Header().Set("X-RateLimit-Limit", "1000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
		azureError(w, 429, "RequestBlockedException", "Request was blocked due to exceeding usage of resource 'ATCPU'.")
		return
	default:
		azureError(w, fault, "ServiceUnavailableException", "The service is temporarily unavailable.")
		return
	}
	user, pass, ok := r.BasicAuth()
	_ = user // any user name is accepted with a PAT
	switch {
	case !ok:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNonAuthoritativeInfo)
		_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body></body></html>"))
		return
	case pass != s.pat:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("<html><head><title>Access Denied: the Personal Access Token used has expired.</title></head></html>"))
		return
	}
	if q.Get("api-version") == "" {
		azureError(w, 400, "VssVersionNotSpecifiedException", `No api-version was supplied for the "GET" request. The version "7.1" is recommended.`)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var list []map[string]any
	maxTop := 0
	switch {
	case len(parts) == 3 && parts[0] == s.org && parts[1] == "_apis" && parts[2] == "projects":
		list, maxTop = s.projects, 100
	case len(parts) == 5 && parts[0] == s.org && parts[2] == "_apis" && parts[3] == "build" && parts[4] == "builds":
		b, ok := s.builds[parts[1]]
		if !ok {
			azureError(w, 404, "ProjectDoesNotExistWithNameException", "TF200016: The following project does not exist: "+parts[1]+".")
			return
		}
		list, maxTop = b, 500
	default:
		azureError(w, 404, "ControllerNotFoundException", "The controller for path '"+r.URL.Path+"' was not found or does not implement IController.")
		return
	}
	top, ok := queryInt(q, "$top", maxTop, 1)
	if !ok {
		azureError(w, 400, "InvalidArgumentValueException", "The value specified for the following variable must be a positive integer: $top.")
		return
	}
	top = min(top, maxTop)
	from := 0
	if token != "" {
		s.mu.Lock()
		off, ok := s.tokens[r.URL.Path+"|"+token]
		s.mu.Unlock()
		if !ok {
			azureError(w, 400, "InvalidContinuationTokenException", "The continuation token is not valid.")
			return
		}
		from = off
	}
	end := min(from+top, len(list))
	if end < len(list) {
		// Opaque, with the characters a query must escape.
		next := base64.StdEncoding.EncodeToString([]byte{0xfb, 0xef, byte(end), byte(end >> 8)}) + "+/" + strconv.Itoa(end) + "=="
		s.mu.Lock()
		s.tokens[r.URL.Path+"|"+next] = end
		s.mu.Unlock()
		w.Header().Set("x-ms-continuationtoken", next)
	}
	page := list[from:end]
	if page == nil {
		page = []map[string]any{}
	}
	writeJSON(w, 200, map[string]any{"count": len(page), "value": page})
}

func (s *azureSim) asked(path string) []*http.Request {
	return requestsTo(&s.mu, &s.requests, path)
}

const azurePAT = "3xampl3patq7w2k4n5b6v8c9x0z1a2s3d4f5g6h7j8k9l0mnbvc"

// Azure DevOps: every project and every build, each written once, over
// pages whose continuation tokens come in a response header and hold
// characters a query must escape; the PAT goes as Basic auth with an
// empty user; a 429 and a 503 mid-chain are retried, not lost; a build
// still running keeps no result; the PAT is never printed.
func TestAzureDevOps(t *testing.T) {
	t.Parallel()
	sim := newAzureSim(azurePAT)
	first := sim.projects[0]["id"].(string)
	buildsPath := "/contoso/" + first + "/_apis/build/builds"
	// The tokens are made as pages are served; fault the first page of
	// the projects and of one build list.
	sim.faults["/contoso/_apis/projects|"] = []int{429}
	sim.faults[buildsPath+"|"] = []int{503}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "azure-devops.yaml", map[string]string{"api_url": srv.URL, "organization": "contoso", "pat": azurePAT}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantProjects, wantBuilds []string
	for _, p := range sim.projects {
		id := p["id"].(string)
		wantProjects = append(wantProjects, id)
		for _, b := range sim.builds[id] {
			wantBuilds = append(wantBuilds, fmt.Sprint(id, "/", b["id"]))
		}
	}
	if d := cmp.Diff(wantProjects, column(r.rows["projects"], "id")); d != "" {
		t.Errorf("projects, each once (-want +got):\n%s", d)
	}
	var gotBuilds []string
	for _, b := range r.rows["builds"] {
		gotBuilds = append(gotBuilds, fmt.Sprint(b["project_id"], "/", b["id"]))
	}
	slices.Sort(wantBuilds)
	slices.Sort(gotBuilds)
	if d := cmp.Diff(wantBuilds, gotBuilds); d != "" {
		t.Errorf("builds, each once (-want +got):\n%s", d)
	}

	// 230 projects at most 100 a page: three pages, and the 429 sent again.
	pages := sim.asked("/contoso/_apis/projects")
	if len(pages) != 4 {
		t.Errorf("%d project requests, want 4 (three pages, one retried)", len(pages))
	}
	// 1203 builds at most 500 a page: three pages, and the 503 sent again.
	if n := len(sim.asked(buildsPath)); n != 4 {
		t.Errorf("%d requests for the first project's builds, want 4 (three pages, one retried)", n)
	}
	for _, p := range append(pages, sim.asked(buildsPath)...) {
		user, pass, ok := p.BasicAuth()
		if !ok || user != "" || pass != azurePAT {
			t.Errorf("%s: Authorization %q, want Basic with an empty user and the PAT", p.URL, p.Header.Get("Authorization"))
		}
		if v := p.URL.Query().Get("api-version"); v != "7.1" {
			t.Errorf("%s: api-version=%q, want 7.1", p.URL, v)
		}
	}
	if s := stream(r.res, "projects"); s.Retries != 1 {
		t.Errorf("projects retries = %d, want 1 (the 429)", s.Retries)
	}
	if s := stream(r.res, "builds"); s.Retries != 1 {
		t.Errorf("builds retries = %d, want 1 (the 503)", s.Retries)
	}
	var running map[string]any
	for _, b := range r.rows["builds"] {
		if b["build_number"] == "20260201.10" && b["project_id"] == first {
			running = b
		}
	}
	if running["status"] != "inProgress" || running["result"] != nil || running["finish_time"] != nil {
		t.Errorf("running build row = %v, want status inProgress, result and finish_time null", running)
	}
	noSecret(t, r, azurePAT, base64.StdEncoding.EncodeToString([]byte(":"+azurePAT)))
}

// Azure DevOps' refusals fail the run, naming the stream; the PAT is
// never printed.
func TestAzureDevOpsErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong PAT", sets: map[string]string{"pat": "wrongwrongwrongwrongwrongwrongwrongwrongwrongwrong"},
			want: []string{"projects", "401"}},
		{name: "an unknown organization", sets: map[string]string{"organization": "fabrikam"},
			want: []string{"projects", "404", "ControllerNotFoundException"}},
		{name: "a 503 on every attempt",
			faults: map[string][]int{"/contoso/_apis/projects|": {503, 503, 503, 503, 503, 503, 503, 503}},
			want:   []string{"projects", "503"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newAzureSim(azurePAT)
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL, "organization": "contoso", "pat": azurePAT}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "azure-devops.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, azurePAT, sets["pat"], base64.StdEncoding.EncodeToString([]byte(":"+sets["pat"])))
		})
	}
}
