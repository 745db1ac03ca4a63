package examples_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// jenkinsSim answers a Jenkins controller's JSON API as Jenkins does
// (facts in testdata/jenkins.md, from the controller's /api pages): any
// object at …/api/json, rendered through the tree parameter (fields in
// brackets, nested to any depth, a range {M,N} on a list; _class always
// given; a field the object lacks left out, not null); folders
// (Folder, Multibranch, Organization Folder) hold their items in jobs,
// folders in folders; a job's allBuilds newest first and exact ranges
// (past the end short, never capped); lastBuild and firstBuild null for a
// job never built; basic auth with a user and an API token (401 with an
// HTML page otherwise); a reverse proxy's 503, 502 and 429 (Retry-After)
// now and then.
type jenkinsSim struct {
	user, token string
	root        map[string]any

	mu       sync.Mutex
	requests []*http.Request
	// faults[path + "|" + tree] are answered, in order, to the first
	// requests for that path and tree: a status, or 200 for a proxy's
	// sign-in page served as 200 HTML.
	faults map[string][]int
	// short[job path] cuts every allBuilds range of that job to so many
	// builds: a server that stops early.
	short map[string]int
}

const (
	jenkinsUser  = "platform-bot"
	jenkinsToken = "11a9c0ffee5eed0123456789abcdef0123" // simulator only
)

// jenkinsJob is a job with n builds, numbered 1..n, newest first.
func jenkinsJob(class, name, parent string, n int) map[string]any {
	full := name
	if parent != "" {
		full = parent + "/" + name
	}
	j := map[string]any{"_class": class, "name": name, "fullName": full, "url": "https://ci.example.com/" + jenkinsPath(full) + "/",
		"buildable": true, "color": "blue", "lastBuild": nil, "firstBuild": nil}
	base := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC).UnixMilli()
	var builds []any
	for k := n; k >= 1; k-- {
		b := map[string]any{"_class": "hudson.model.FreeStyleBuild", "number": k, "id": strconv.Itoa(k), "result": "SUCCESS", "building": false,
			"timestamp": base + int64(k)*3600_000, "duration": 60_000 + k, "url": j["url"].(string) + strconv.Itoa(k) + "/"}
		if k%7 == 0 {
			b["result"] = "FAILURE"
		}
		if k == n && n%2 == 1 {
			b["result"], b["building"] = nil, true // still running
		}
		builds = append(builds, b)
	}
	j["allBuilds"] = builds
	if n > 0 {
		j["lastBuild"] = builds[0]
		j["firstBuild"] = builds[n-1]
		j["builds"] = builds[:min(n, 100)]
	} else {
		j["color"] = "notbuilt"
		j["builds"] = []any{}
		j["allBuilds"] = []any{}
	}
	return j
}

// jenkinsFolder is a folder-like item of class holding items.
func jenkinsFolder(class, name, parent string, items ...map[string]any) map[string]any {
	full := name
	if parent != "" {
		full = parent + "/" + name
	}
	jobs := []any{}
	for _, it := range items {
		jobs = append(jobs, it)
	}
	// Folders have no color, buildable or builds.
	return map[string]any{"_class": class, "name": name, "fullName": full, "url": "https://ci.example.com/" + jenkinsPath(full) + "/", "jobs": jobs}
}

// jenkinsPath is a full name's URL path: job/a/job/b, each name escaped.
func jenkinsPath(full string) string {
	var parts []string
	for _, n := range strings.Split(full, "/") {
		parts = append(parts, "job", strings.ReplaceAll(n, "%", "%25"))
	}
	return strings.Join(parts, "/")
}

const (
	jFree     = "hudson.model.FreeStyleProject"
	jPipeline = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
	jMatrix   = "hudson.matrix.MatrixProject"
	jFolder   = "com.cloudbees.hudson.plugins.folder.Folder"
	jMulti    = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
	jOrg      = "jenkins.branch.OrganizationFolder"
)

func newJenkinsSim() *jenkinsSim {
	disabled := jenkinsJob(jFree, "old-deploy", "", 4)
	disabled["buildable"], disabled["color"] = false, "disabled"
	root := map[string]any{"_class": "hudson.model.Hudson", "jobs": []any{
		jenkinsJob(jFree, "deploy-prod", "", 250), // three ranges, the last short
		jenkinsJob(jPipeline, "api", "", 100),     // one full range ending with the first build
		jenkinsJob(jPipeline, "new-job", "", 0),   // never built
		disabled,
		jenkinsJob(jMatrix, "matrix", "", 5),
		jenkinsFolder(jFolder, "platform", "",
			jenkinsFolder(jFolder, "teams", "platform",
				jenkinsFolder(jFolder, "infra", "platform/teams",
					jenkinsJob(jPipeline, "terraform", "platform/teams/infra", 37)),
				jenkinsFolder(jMulti, "web", "platform/teams",
					jenkinsJob(jPipeline, "main", "platform/teams/web", 130),
					// A branch feature/x is the job feature%2Fx.
					jenkinsJob(jPipeline, "feature%2Fx", "platform/teams/web", 2))),
			jenkinsFolder(jFolder, "empty", "platform")),
		jenkinsFolder(jOrg, "acme-org", "",
			jenkinsFolder(jMulti, "repo1", "acme-org",
				jenkinsJob(jPipeline, "main", "acme-org/repo1", 3))),
	}}
	return &jenkinsSim{user: jenkinsUser, token: jenkinsToken, root: root, faults: map[string][]int{}, short: map[string]int{}}
}

// treeField is one field of a tree parameter: its name, its own fields
// (nil: the value as it is) and a range on a list.
type treeField struct {
	name     string
	sub      []treeField
	from, to int // to -1: to the end
	ranged   bool
}

// parseTree reads Jenkins' tree syntax: a,b[c,d[e]]{M,N},f.
func parseTree(s string) ([]treeField, error) {
	fields, rest, err := parseFields(s)
	if err == nil && rest != "" {
		err = fmt.Errorf("unexpected %q", rest)
	}
	return fields, err
}

func parseFields(s string) ([]treeField, string, error) {
	var out []treeField
	for {
		i := strings.IndexAny(s, ",[]{")
		if i < 0 {
			i = len(s)
		}
		f := treeField{name: s[:i], to: -1}
		if f.name == "" {
			return nil, s, fmt.Errorf("a field without a name at %q", s)
		}
		s = s[i:]
		if strings.HasPrefix(s, "[") {
			sub, rest, err := parseFields(s[1:])
			if err != nil {
				return nil, "", err
			}
			if !strings.HasPrefix(rest, "]") {
				return nil, "", fmt.Errorf("no ] at %q", rest)
			}
			f.sub, s = sub, rest[1:]
		}
		if strings.HasPrefix(s, "{") {
			end := strings.Index(s, "}")
			if end < 0 {
				return nil, "", fmt.Errorf("no } at %q", s)
			}
			m, n, two := strings.Cut(s[1:end], ",")
			var err error
			f.ranged = true
			if m != "" {
				if f.from, err = strconv.Atoi(m); err != nil {
					return nil, "", err
				}
			}
			switch {
			case !two:
				f.to = f.from + 1
			case n != "":
				if f.to, err = strconv.Atoi(n); err != nil {
					return nil, "", err
				}
			}
			s = s[end+1:]
		}
		out = append(out, f)
		if !strings.HasPrefix(s, ",") {
			return out, s, nil
		}
		s = s[1:]
	}
}

// render is v as the tree asks it: an object keeps _class and the fields
// asked that it has; a list keeps the range asked.
func render(v any, fields []treeField) any {
	switch x := v.(type) {
	case map[string]any:
		if fields == nil {
			fields = []treeField{}
			for k := range x {
				if k != "jobs" && k != "allBuilds" && k != "builds" {
					fields = append(fields, treeField{name: k, to: -1})
				}
			}
		}
		out := map[string]any{}
		if c, ok := x["_class"]; ok {
			out["_class"] = c
		}
		for _, f := range fields {
			val, ok := x[f.name]
			if !ok {
				continue
			}
			if list, isList := val.([]any); isList {
				from, to := min(f.from, len(list)), len(list)
				if f.to >= 0 {
					to = max(from, min(f.to, len(list)))
				}
				items := []any{}
				for _, it := range list[from:to] {
					items = append(items, render(it, f.sub))
				}
				out[f.name] = items
				continue
			}
			out[f.name] = render(val, f.sub)
		}
		return out
	case []any:
		items := []any{}
		for _, it := range x {
			items = append(items, render(it, fields))
		}
		return items
	}
	return v
}

// find is the item at a URL path /job/a/job/b (names decoded).
func (s *jenkinsSim) find(path string) (map[string]any, bool) {
	cur := s.root
	if strings.Trim(path, "/") == "" {
		return cur, true
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts)%2 != 0 {
		return nil, false
	}
	for i := 0; i < len(parts); i += 2 {
		if parts[i] != "job" {
			return nil, false
		}
		jobs, _ := cur["jobs"].([]any)
		var next map[string]any
		for _, j := range jobs {
			if j.(map[string]any)["name"] == parts[i+1] {
				next = j.(map[string]any)
			}
		}
		if next == nil {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

func jenkinsHTML(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><head><title>%s</title></head><body><h2>HTTP ERROR %d %s</h2></body></html>", title, status, title)
}

func (s *jenkinsSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tree := r.URL.Query().Get("tree")
	key := r.URL.Path + "|" + tree
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	s.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != s.user || p != s.token {
		w.Header().Set("WWW-Authenticate", `Basic realm="Jenkins"`)
		jenkinsHTML(w, 401, "Unauthorized")
		return
	}
	switch fault {
	case 0:
	case 200:
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!DOCTYPE html><html><body><form action="/sso/login">Sign in to continue</form></body></html>`)
		return
	case 429:
		w.Header().Set("Retry-After", "1")
		jenkinsHTML(w, 429, "Too Many Requests")
		return
	default:
		jenkinsHTML(w, fault, http.StatusText(fault))
		return
	}
	// The tree is read under the lock: a test changes it mid-run.
	s.mu.Lock()
	defer s.mu.Unlock()
	itemPath, ok := strings.CutSuffix(r.URL.Path, "/api/json")
	if !ok || r.Method != http.MethodGet {
		jenkinsHTML(w, 404, "Not Found")
		return
	}
	item, found := s.find(itemPath)
	if !found {
		jenkinsHTML(w, 404, "Not Found")
		return
	}
	var fields []treeField
	if tree != "" {
		var err error
		if fields, err = parseTree(tree); err != nil {
			jenkinsHTML(w, 400, "Bad Request: "+err.Error())
			return
		}
	}
	out := render(item, fields).(map[string]any)
	if cut, ok := s.short[itemPath]; ok {
		if b, ok := out["allBuilds"].([]any); ok && len(b) > cut {
			out["allBuilds"] = b[:cut]
		}
	}
	writeJSON(w, 200, out)
}

// jobsOf lists every item of the simulator (folders too) and every build
// as job#number.
func (s *jenkinsSim) all() (items, builds []string) {
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		jobs, _ := m["jobs"].([]any)
		for _, j := range jobs {
			jm := j.(map[string]any)
			items = append(items, jm["fullName"].(string))
			all, _ := jm["allBuilds"].([]any) // folders have none
			for _, b := range all {
				builds = append(builds, fmt.Sprintf("%s#%d", jm["fullName"], b.(map[string]any)["number"]))
			}
			walk(jm)
		}
	}
	walk(s.root)
	return items, builds
}

func runJenkins(t *testing.T, s *jenkinsSim, sets map[string]string) vendorRun {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	all := map[string]string{"jenkins_url": srv.URL + "/", "user": jenkinsUser, "api_token": jenkinsToken}
	for k, v := range sets {
		all[k] = v
	}
	return runVendor(t, "jenkins.yaml", all, time.Time{})
}

func jenkinsSecrets(token string) []string {
	return []string{token, base64.StdEncoding.EncodeToString([]byte(jenkinsUser + ":" + token))}
}

func buildKeys(rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%v#%v", r["job"], r["number"]))
	}
	return out
}

// Jenkins: every item of every folder level (folders, multibranch
// projects and organization folders too) and every build of every job,
// written once: allBuilds read in ranges of 100 ({0,100}, {100,200}, …)
// until a short range or one ending with firstBuild; a never-built job
// has no builds and null last build; a 503 on the item tree, a 502 and a
// 429 on build ranges retried; the token never printed.
func TestJenkins(t *testing.T) {
	t.Parallel()
	s := newJenkinsSim()
	rootTree := ""
	{
		// The tree the spec sends for the items, at folder_depth 10.
		rootTree = strings.Repeat("jobs[_class,name,fullName,url,color,buildable,lastBuild[number,result,timestamp],", 10) + "jobs[_class]" + strings.Repeat("]", 10)
	}
	rng := func(m, n int) string {
		return fmt.Sprintf("allBuilds[number,id,result,building,timestamp,duration,url]{%d,%d},firstBuild[number]", m, n)
	}
	s.faults["/api/json|"+rootTree] = []int{503}
	s.faults["/job/deploy-prod/api/json|"+rng(100, 200)] = []int{502}
	s.faults["/job/platform/job/teams/job/web/job/main/api/json|"+rng(100, 200)] = []int{429}
	r := runJenkins(t, s, nil)
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.said)
	}
	items, builds := s.all()
	sameIDs(t, "jobs", items, ids(r.rows["jobs"], "full_name"))
	sameIDs(t, "builds", builds, buildKeys(r.rows["builds"]))
	if len(builds) != 250+100+4+5+37+130+2+3 {
		t.Fatalf("the simulator has %d builds", len(builds))
	}
	byName := map[string]map[string]any{}
	for _, row := range r.rows["jobs"] {
		byName[fmt.Sprint(row["full_name"])] = row
	}
	if row := byName["new-job"]; row["last_build"] != nil || row["last_build_at"] != nil || row["folder"] != false {
		t.Errorf("never-built job row %v: want a job with null last build", row)
	}
	if row := byName["platform/teams/web"]; row["folder"] != true || row["class"] != jMulti {
		t.Errorf("multibranch row %v: want a folder of its class", row)
	}
	if row := byName["platform/teams/web/feature%2Fx"]; row == nil || row["last_build"] != float64(2) {
		t.Errorf("branch feature/x row %v: want its last build 2", row)
	}
	// Ranges: 3 for deploy-prod (+1 retried), 1 for api (full, ending at
	// build 1), 1 for a never-built job; none for folders.
	for path, want := range map[string]int{"/job/deploy-prod/api/json": 4, "/job/api/api/json": 1, "/job/new-job/api/json": 1,
		"/job/platform/job/teams/job/web/job/main/api/json": 3, "/job/platform/job/teams/job/web/job/feature%2Fx/api/json": 1,
		"/job/platform/api/json": 0, "/job/acme-org/job/repo1/api/json": 0} {
		if got := len(requestsTo(&s.mu, &s.requests, path)); got != want {
			t.Errorf("%d requests to %s, want %d", got, path, want)
		}
	}
	for _, row := range r.rows["builds"] {
		if row["job"] == "platform/teams/web/main" && fmt.Sprint(row["number"]) == "129" && row["result"] != "SUCCESS" {
			t.Errorf("build row %v: want its result", row)
		}
	}
	if st := stream(r.res, "builds"); st.Retries < 2 {
		t.Errorf("builds retries = %d, want the 502 and the 429 retried", st.Retries)
	}
	if st := stream(r.res, "jobs"); st.Retries < 1 {
		t.Errorf("jobs retries = %d, want the 503 retried", st.Retries)
	}
	noDuplicates(t, r)
	noSecret(t, r, jenkinsSecrets(jenkinsToken)...)
}

// A build started while a job is read pushes the newest-first list along:
// the build at the edge of a range is listed again in the next, written
// once and warned of as a duplicate; none is skipped.
func TestJenkinsBuildStartedMidRead(t *testing.T) {
	t.Parallel()
	s := newJenkinsSim()
	job, _ := s.find("/job/deploy-prod")
	first := fmt.Sprintf("allBuilds[number,id,result,building,timestamp,duration,url]{%d,%d},firstBuild[number]", 0, 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(w, r)
		if r.URL.Path == "/job/deploy-prod/api/json" && r.URL.Query().Get("tree") == first {
			s.mu.Lock()
			nb := map[string]any{"number": 251, "id": "251", "result": nil, "building": true, "timestamp": int64(1767600000000), "duration": 0, "url": "https://ci.example.com/job/deploy-prod/251/"}
			job["allBuilds"] = append([]any{nb}, job["allBuilds"].([]any)...)
			s.mu.Unlock()
		}
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, builds := newJenkinsSim().all()
	r := runVendor(t, "jenkins.yaml", map[string]string{"jenkins_url": srv.URL, "user": jenkinsUser, "api_token": jenkinsToken}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	got := map[string]int{}
	for _, k := range buildKeys(r.rows["builds"]) {
		got[k]++
	}
	for _, b := range builds {
		if got[b] == 0 {
			t.Errorf("build %s not written", b)
		}
	}
	if got["deploy-prod#151"] != 2 {
		t.Errorf("deploy-prod#151 written %d times, want twice (the edge of the range, listed again)", got["deploy-prod#151"])
	}
	if d := r.res.Summary.Duplicates; len(d) != 1 || d[0].Name != "builds" || d[0].Count != 1 || d[0].Modes["warn"] != 1 {
		t.Errorf("duplicates = %+v, want builds: 1, warned of (on_duplicate: warn)", d)
	}
}

// Jenkins failures fail the run naming the stream and the job: a
// folder deeper than folder_depth, a range cut short of the first build,
// a 200 sign-in page, a wrong token; the token is never printed.
func TestJenkinsErrors(t *testing.T) {
	t.Parallel()
	tree4 := strings.Repeat("jobs[_class,name,fullName,url,color,buildable,lastBuild[number,result,timestamp],", 10) + "jobs[_class]" + strings.Repeat("]", 10)
	cases := []struct {
		name  string
		sets  map[string]string
		setup func(s *jenkinsSim)
		want  []string
	}{
		{name: "a folder below folder_depth", sets: map[string]string{"folder_depth": "3"},
			want: []string{"jobs", "folder platform/teams/infra holds items below folder_depth 3"}},
		{name: "a range cut short", setup: func(s *jenkinsSim) { s.short["/job/platform/job/teams/job/web/job/main"] = 60 },
			want: []string{"builds", "platform/teams/web/main", "allBuilds ended at build 71, before the job's first build 1"}},
		{name: "a sign-in page as a 200", setup: func(s *jenkinsSim) { s.faults["/api/json|"+tree4] = []int{200} },
			want: []string{"jobs", "response is not valid JSON"}},
		{name: "a wrong token", sets: map[string]string{"api_token": "11ffffffffffffffffffffffffffffffff"},
			want: []string{"jobs", "401"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newJenkinsSim()
			if c.setup != nil {
				c.setup(s)
			}
			r := runJenkins(t, s, c.sets)
			failedRun(t, r, c.want)
			noSecret(t, r, jenkinsSecrets(jenkinsToken)...)
			if tok := c.sets["api_token"]; tok != "" {
				noSecret(t, r, jenkinsSecrets(tok)...)
			}
		})
	}
}

// folder_depth 4 reads the deepest job (platform/teams/infra/terraform,
// at level 4); an empty folder at the last level is no failure.
func TestJenkinsFolderDepth(t *testing.T) {
	t.Parallel()
	s := newJenkinsSim()
	r := runJenkins(t, s, map[string]string{"folder_depth": "4"})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	items, _ := s.all()
	sameIDs(t, "jobs", items, ids(r.rows["jobs"], "full_name"))
	r = runJenkins(t, newJenkinsSim(), map[string]string{"folder_depth": "2"})
	failedRun(t, r, []string{"folder platform/teams holds items below folder_depth 2"})
}
