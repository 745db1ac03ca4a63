package examples_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// argoSim answers Argo CD's GET /api/v1/applications and /api/v1/projects
// as its API server does (facts in testdata/argocd.md): a bearer token;
// the whole list in one answer, sorted by name, no paging; `fields` paths
// from the list's root prune each item; applications in several
// namespaces, a name unique only within one; multi-source applications;
// new ones without status; the gRPC gateway's {"error", "code",
// "message"} errors; a gateway's 429 (Kong's JSON message) and an
// ingress's 502 with an HTML body.
type argoSim struct {
	token string

	mu       sync.Mutex
	apps     []map[string]any
	projects []map[string]any
	requests []*http.Request
	// faults[path] are answered, in order, to the first requests there.
	faults map[string][]int
	// ignoreFields answers whole applications whatever `fields` asks.
	ignoreFields bool
	// largest is the longest body answered, in bytes.
	largest int
}

const argoToken = "SimOnlyArgo.eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyZWFkZXI6YXBpS2V5In0.q9W8e7R6t5Y4"

// newArgoSim builds n applications over three namespaces (the same name
// in two of them), each managing resources resources, and a project for
// every tenth.
func newArgoSim(token string, n, resources int) *argoSim {
	s := &argoSim{token: token, faults: map[string][]int{}}
	namespaces := []string{"argocd", "team-a", "team-b"}
	base := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		ns := namespaces[i%3]
		name := fmt.Sprintf("app-%d", i/2) // pairs share a name, in two namespaces
		project := fmt.Sprintf("proj-%d", i%12)
		src := map[string]any{"repoURL": "https://git.example.com/apps.git", "path": "apps/" + name, "targetRevision": "HEAD"}
		spec := map[string]any{"project": project, "source": src,
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": name}}
		status := map[string]any{
			"sync":           map[string]any{"status": []string{"Synced", "OutOfSync", "Unknown"}[i%3], "revision": fmt.Sprintf("%040x", i)},
			"health":         map[string]any{"status": []string{"Healthy", "Progressing", "Degraded"}[i%3]},
			"operationState": map[string]any{"phase": "Succeeded", "finishedAt": base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)},
			"reconciledAt":   base.Add(time.Duration(i) * time.Hour).Format(time.RFC3339),
			"summary":        map[string]any{"images": []any{"registry.example.com/" + name + ":1.0"}},
			"history":        []any{map[string]any{"id": 1, "revision": fmt.Sprintf("%040x", i)}},
		}
		if i%3 == 2 {
			status["health"].(map[string]any)["message"] = "Deployment has not progressed"
		}
		switch {
		case i%10 == 3:
			// Multi-source: sources and revisions, no source nor revision.
			delete(spec, "source")
			spec["sources"] = []any{src, map[string]any{"repoURL": "https://charts.example.com", "chart": "base", "targetRevision": "1.2.3"}}
			sy := status["sync"].(map[string]any)
			delete(sy, "revision")
			sy["revisions"] = []any{fmt.Sprintf("%040x", i), "1.2.3"}
		case i%10 == 7:
			status = nil // just created: not reconciled yet
		}
		if status != nil {
			var res []any
			for j := range resources {
				res = append(res, map[string]any{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": name,
					"name": fmt.Sprintf("%s-deployment-%d", name, j), "status": "Synced",
					"health": map[string]any{"status": "Healthy", "message": strings.Repeat("all replicas are available ", 4)}})
			}
			status["resources"] = res
		}
		app := map[string]any{"metadata": map[string]any{"name": name, "namespace": ns, "uid": fmt.Sprintf("0b6c1d2e-%04d-4000-8000-%012d", i%10000, i),
			"creationTimestamp": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339), "resourceVersion": strconv.Itoa(1000 + i),
			"labels": map[string]any{"team": ns}}, "spec": spec}
		if status != nil {
			app["status"] = status
		}
		s.apps = append(s.apps, app)
	}
	for i := range 12 {
		p := map[string]any{"metadata": map[string]any{"name": fmt.Sprintf("proj-%d", i), "namespace": "argocd"},
			"spec": map[string]any{"sourceRepos": []any{"https://git.example.com/*"}, "destinations": []any{map[string]any{"server": "*", "namespace": "*"}}}}
		if i%4 == 0 {
			p["spec"].(map[string]any)["description"] = "Team project " + strconv.Itoa(i)
		}
		s.projects = append(s.projects, p)
	}
	return s
}

func argoError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg, "code": code, "message": msg})
}

func (s *argoSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	fault := 0
	if f := s.faults[r.URL.Path]; len(f) > 0 {
		fault, s.faults[r.URL.Path] = f[0], f[1:]
	}
	switch fault {
	case 0:
	case 429:
		// A gateway in front (Kong's rate limiting plugin): its JSON
		// message, which the rule failing Argo CD's 4xx would match.
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 429, map[string]any{"message": "API rate limit exceeded"})
		return
	case 502, 503:
		// The ingress while argocd-server restarts.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fault)
		fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center><hr><center>nginx</center></body></html>\n",
			fault, http.StatusText(fault), fault, http.StatusText(fault))
		return
	default:
		argoError(w, fault, 13, http.StatusText(fault))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		argoError(w, 401, 16, "invalid session: token signature is invalid")
		return
	}
	var items []map[string]any
	switch r.URL.Path {
	case "/api/v1/applications":
		items = slices.Clone(s.apps)
		slices.SortStableFunc(items, func(a, b map[string]any) int {
			return strings.Compare(a["metadata"].(map[string]any)["name"].(string), b["metadata"].(map[string]any)["name"].(string))
		})
	case "/api/v1/projects":
		items = s.projects
	default:
		argoError(w, 404, 5, "Not Found")
		return
	}
	var fields []string
	if f := r.URL.Query().Get("fields"); f != "" && !s.ignoreFields {
		for _, p := range strings.Split(f, ",") {
			if rest, ok := strings.CutPrefix(p, "items."); ok {
				fields = append(fields, rest)
			}
		}
	}
	out := make([]any, 0, len(items))
	for _, it := range items {
		out = append(out, bsPrune(it, fields))
	}
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": "73311"}, "items": out})
	s.largest = max(s.largest, len(body))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *argoSim) appKeys() []string {
	var out []string
	for _, a := range s.apps {
		m := a["metadata"].(map[string]any)
		out = append(out, m["namespace"].(string)+"/"+m["name"].(string))
	}
	return out
}

func argoAppRows(rows []map[string]any) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, fmt.Sprint(r["namespace"], "/", r["name"]))
	}
	return out
}

// Argo CD: every application written once, keyed by namespace and name
// (a name repeats across namespaces), sync and health status as columns,
// multi-source and not yet reconciled applications read; `fields` sent;
// an ingress's 502 (HTML) and a gateway's 429 (JSON) on the list, a 503 on the
// projects, retried; the token never printed.
func TestArgoCD(t *testing.T) {
	t.Parallel()
	sim := newArgoSim(argoToken, 250, 3)
	sim.faults["/api/v1/applications"] = []int{502, 429}
	sim.faults["/api/v1/projects"] = []int{503}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "argocd.yaml", map[string]string{"server_url": srv.URL, "token": argoToken}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	sameIDs(t, "applications, each once", sim.appKeys(), argoAppRows(r.rows["applications"]))
	var wantProjects []string
	for _, p := range sim.projects {
		wantProjects = append(wantProjects, p["metadata"].(map[string]any)["name"].(string))
	}
	sameIDs(t, "projects", wantProjects, ids(r.rows["projects"], "name"))
	byKey := map[string]map[string]any{}
	for _, row := range r.rows["applications"] {
		byKey[fmt.Sprint(row["namespace"], "/", row["name"])] = row
	}
	// i=3: argocd/app-1, multi-source; i=7: team-a/app-3, no status;
	// i=2: team-b/app-1, Degraded with a message.
	if row := byKey["argocd/app-1"]; row == nil || row["repo_url"] != "https://git.example.com/apps.git" || fmt.Sprint(row["source_count"]) != "2" ||
		row["sync_revision"] != fmt.Sprintf("%040x", 3)+",1.2.3" || row["sync_status"] != "Synced" {
		t.Errorf("multi-source row = %v: want the first source's repo, 2 sources, both revisions", row)
	}
	if row := byKey["team-a/app-3"]; row == nil || row["sync_status"] != nil || row["health_status"] != nil || row["project"] != "proj-7" {
		t.Errorf("unreconciled row = %v: want no status, its project", row)
	}
	if row := byKey["team-b/app-1"]; row == nil || row["health_status"] != "Degraded" || row["health_message"] != "Deployment has not progressed" ||
		row["uid"] == nil || row["reconciled_at"] == nil {
		t.Errorf("degraded row = %v: want health and its message, uid, reconciled_at", row)
	}
	for _, q := range sim.requests {
		if q.URL.Path == "/api/v1/applications" && !strings.Contains(q.URL.Query().Get("fields"), "items.status.sync.status") {
			t.Errorf("applications request %s: no fields", q.URL.RawQuery)
		}
	}
	if s := stream(r.res, "applications"); s.Retries < 2 {
		t.Errorf("applications retries = %d, want at least 2 (the 502, the 429)", s.Retries)
	}
	if s := stream(r.res, "projects"); s.Retries < 1 {
		t.Errorf("projects retries = %d, want at least 1 (the 503)", s.Retries)
	}
	noDuplicates(t, r)
	noSecret(t, r, argoToken)
}

// A list larger than a body read whole may be (32 MiB), whole
// applications with every resource (a server that answers them whatever
// `fields` asks): streamed from `.items[]`, every application written.
func TestArgoCDLargeList(t *testing.T) {
	// Not parallel: decoding 35 MB under the race detector beside other
	// tests can outlast the spec's 30 s attempt timeout.
	if testing.Short() {
		t.Skip("a 35 MB answer")
	}
	sim := newArgoSim(argoToken, 3000, 45)
	sim.ignoreFields = true
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "argocd.yaml", map[string]string{"server_url": srv.URL, "token": argoToken}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	if sim.largest <= 32<<20 {
		t.Fatalf("the list is %d bytes, want more than 32 MiB for the test to show it streamed", sim.largest)
	}
	sameIDs(t, "applications, each once", sim.appKeys(), argoAppRows(r.rows["applications"]))
	noDuplicates(t, r)
}

// Argo CD's errors fail the run with the gateway's message and gRPC code,
// naming the stream; the token is never printed.
func TestArgoCDErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		token  string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong token", token: "SimOnlyArgo.eyJhbGciOiJIUzI1NiJ9.wrong.wrongwrong",
			want: []string{"applications", "invalid session: token signature is invalid (gRPC code 16)"}},
		{name: "a 502 on every attempt", faults: map[string][]int{"/api/v1/projects": slices.Repeat([]int{502}, 12)},
			want: []string{"projects", "502"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newArgoSim(argoToken, 40, 2)
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"server_url": srv.URL, "token": argoToken}
			if c.token != "" {
				sets["token"] = c.token
			}
			r := runVendor(t, "argocd.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, argoToken, sets["token"])
		})
	}
}

// A token whose RBAC allows no application reads an empty list, a 200:
// the applications table's delete threshold keeps every row then (none
// marked deleted, a warning naming the table and the option), and the
// table is not reconciled; the run does not fail, as a Port deletion
// skipped does not. An application really deleted is marked by the next
// run that lists the others.
func TestArgoCDNoApplicationAllowed(t *testing.T) {
	t.Parallel()
	sim := newArgoSim(argoToken, 40, 1)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "argo.db")
	sets := map[string]string{"server_url": srv.URL, "token": argoToken}
	sp, err := engine.Load("argocd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := runVendorOpts(t, "argocd.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db}); r.err != nil {
		t.Fatalf("first run: %v", r.err)
	}
	all := sim.apps
	sim.mu.Lock()
	sim.apps = nil
	sim.mu.Unlock()
	r := runVendorOpts(t, "argocd.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db})
	if r.err != nil {
		t.Fatalf("empty list: %v", r.err)
	}
	if got := query(t, db, `SELECT count(*) FROM argocd__applications WHERE _ferry_deleted`); !slices.Equal(got, []string{"0"}) {
		t.Errorf("empty list: %v rows marked deleted, want none", got)
	}
	sk, ok := r.res.Dest.SkippedDeletes["applications"]
	if !ok || sk.Stale != 40 || sk.Live != 40 || !strings.Contains(r.said, "table deletion skipped") || !strings.Contains(r.said, "option=tables.applications.delete_threshold") {
		t.Errorf("empty list: skipped %+v, want 40 of 40 and a warning naming the option:\n%s", sk, r.said)
	}
	for _, tr := range engine.NewRunReport(sp, "argocd.yaml", r.res, r.err, engine.ExitCode(r.err, false), false, time.Now()).Tables {
		if tr.Name == "applications" && (tr.Reconciled || tr.SkippedDelete != sk.Reason) {
			t.Errorf("empty list: report %+v, want not reconciled, skipped_delete %q", tr, sk.Reason)
		}
	}

	gone := all[0]["metadata"].(map[string]any)
	sim.mu.Lock()
	sim.apps = all[1:]
	sim.mu.Unlock()
	if r := runVendorOpts(t, "argocd.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db}); r.err != nil {
		t.Fatalf("one application gone: %v", r.err)
	}
	want := []string{fmt.Sprint(gone["namespace"], "|", gone["name"])}
	if got := query(t, db, `SELECT namespace, name FROM argocd__applications WHERE _ferry_deleted`); !slices.Equal(got, want) {
		t.Errorf("one application gone: marked %v, want %v", got, want)
	}
}
