package examples_test

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bitbucketSim answers a workspace's repositories and their pull requests
// as Bitbucket Cloud's REST API 2.0 does (facts from its "Pagination",
// "Rate limits" and Pullrequests reference pages; shapes in
// testdata/bitbucket.md): {values, pagelen, page, size, next}, next a full
// URL carrying the request's query on (state repeated), absent on the
// last page, size left out of pull request lists; pagelen at most 100
// for repositories and 50 for pull requests, served capped without a
// word; pull requests without state are the OPEN ones only, most recently
// updated first unless sort says otherwise (one of svc-0's is updated
// while svc-0 is read); 429 without
// Retry-After; errors {"type": "error", "error": {"message"}}; basic auth.
type bitbucketSim struct {
	user, password, workspace string
	repos                     []map[string]any
	prs                       map[string][]map[string]any // repo slug -> its pull requests, oldest first
	touched                   bool                        // svc-0's pull request updated mid-read

	mu       sync.Mutex
	requests []*http.Request
	// faults[path + "|" + page] are answered, in order, to the first
	// requests for that page.
	faults map[string][]int
}

const (
	bitbucketUser     = "ada-lovelace"
	bitbucketPassword = "ATBBsimOnlyAppPassword0123456789AB"
)

var bitbucketStates = []string{"OPEN", "MERGED", "DECLINED", "SUPERSEDED"}

func newBitbucketSim(user, password, workspace string) *bitbucketSim {
	s := &bitbucketSim{user: user, password: password, workspace: workspace, prs: map[string][]map[string]any{}, faults: map[string][]int{}}
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return base.Add(d).Format("2006-01-02T15:04:05.000000+00:00") }
	// 230 repositories (three pages of 100); pull requests: 120 on the
	// first (three pages of 50, the last short), exactly 100 on the
	// second (two full pages, no next on the second), none on the third.
	for i := range 230 {
		slug := fmt.Sprintf("svc-%d", i)
		uuid := fmt.Sprintf("{00000000-0000-4000-8000-%012d}", i)
		r := map[string]any{"type": "repository", "uuid": uuid, "full_name": workspace + "/" + slug, "name": slug, "slug": slug,
			"is_private": i%3 != 0, "language": "go", "created_on": ts(time.Duration(i) * time.Hour), "updated_on": ts(time.Duration(i)*time.Hour + time.Minute),
			"mainbranch": map[string]any{"type": "branch", "name": "main"}}
		if i%9 == 0 {
			delete(r, "mainbranch") // an empty repository has none
			r["language"] = ""
		}
		s.repos = append(s.repos, r)
		n := map[int]int{0: 120, 1: 100, 2: 0}[i]
		if i > 2 {
			n = i % 5
		}
		for j := range n {
			state := bitbucketStates[j%4]
			pr := map[string]any{"type": "pullrequest", "id": j + 1, "title": fmt.Sprintf("Change %d", j+1), "state": state,
				"author":        map[string]any{"display_name": "Ada Lovelace", "uuid": "{a1}"},
				"source":        map[string]any{"branch": map[string]any{"name": fmt.Sprintf("feature/%d", j+1)}},
				"destination":   map[string]any{"branch": map[string]any{"name": "main"}, "repository": map[string]any{"full_name": workspace + "/" + slug, "uuid": uuid}},
				"comment_count": j % 6, "task_count": 0, "close_source_branch": true,
				"merge_commit": nil, "closed_by": nil, "created_on": ts(time.Duration(j) * time.Minute), "updated_on": ts(time.Duration(j)*time.Minute + time.Second)}
			switch state {
			case "MERGED":
				pr["merge_commit"] = map[string]any{"hash": fmt.Sprintf("%012x", j)}
				pr["closed_by"] = map[string]any{"display_name": "Grace Hopper"}
			case "DECLINED":
				pr["closed_by"] = map[string]any{"display_name": "Grace Hopper"}
			}
			s.prs[slug] = append(s.prs[slug], pr)
		}
	}
	return s
}

func bitbucketError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"message": msg}})
}

func (s *bitbucketSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	key := r.URL.Path + "|" + q.Get("page")
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	s.mu.Unlock()

	user, pass, ok := r.BasicAuth()
	if !ok || user != s.user || pass != s.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="Bitbucket.org HTTP"`)
		bitbucketError(w, 401, "Unauthorized")
		return
	}
	switch fault {
	case 0:
	case http.StatusTooManyRequests:
		// No Retry-After on this endpoint: the client must back off.
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(fault)
		_, _ = w.Write([]byte("Rate limit for this resource has been exceeded"))
		return
	default:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fault)
		_, _ = w.Write([]byte("<html><body>Something went wrong</body></html>"))
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var (
		list     = []map[string]any{}
		maxLen   int
		withSize bool
	)
	switch {
	case len(parts) == 3 && parts[0] == "2.0" && parts[1] == "repositories":
		if parts[2] != s.workspace {
			bitbucketError(w, 404, "No workspace with identifier '"+parts[2]+"'.")
			return
		}
		list, maxLen, withSize = s.repos, 100, true
	case len(parts) == 5 && parts[1] == "repositories" && parts[4] == "pullrequests":
		s.mu.Lock()
		if parts[3] == "svc-0" && q.Get("page") == "2" && !s.touched {
			// Updated while the repository is read: by default
			// (most recently updated first) it moves to the first page,
			// read already, from the last, not read yet.
			s.touched = true
			pr := maps.Clone(s.prs["svc-0"][5])
			pr["updated_on"] = "2026-01-01T00:00:00.000000+00:00"
			s.prs["svc-0"][5] = pr
		}
		all, ok := s.prs[parts[3]]
		all = slices.Clone(all)
		s.mu.Unlock()
		switch q.Get("sort") {
		case "", "-updated_on":
			slices.SortStableFunc(all, func(a, b map[string]any) int {
				return strings.Compare(b["updated_on"].(string), a["updated_on"].(string))
			})
		case "created_on", "id":
		case "-created_on", "-id":
			slices.Reverse(all)
		default:
			bitbucketError(w, 400, "Invalid field name: "+q.Get("sort"))
			return
		}
		if !ok && !slices.ContainsFunc(s.repos, func(r map[string]any) bool { return r["slug"] == parts[3] }) {
			bitbucketError(w, 404, "Repository "+parts[2]+"/"+parts[3]+" not found")
			return
		}
		states := q["state"]
		if len(states) == 0 {
			states = []string{"OPEN"}
		}
		for _, st := range states {
			if !slices.Contains(bitbucketStates, st) {
				w.Header().Set("Content-Type", "application/json")
				bitbucketError(w, 400, "Invalid state: "+st)
				return
			}
		}
		for _, pr := range all {
			if slices.Contains(states, pr["state"].(string)) {
				list = append(list, pr)
			}
		}
		maxLen = 50
	default:
		bitbucketError(w, 404, "Resource not found")
		return
	}
	pagelen, ok := queryInt(q, "pagelen", 10, 1)
	if !ok {
		bitbucketError(w, 400, "Invalid pagelen")
		return
	}
	pagelen = min(pagelen, maxLen)
	page, ok := queryInt(q, "page", 1, 1)
	if !ok {
		bitbucketError(w, 400, "Invalid page")
		return
	}
	from := min((page-1)*pagelen, len(list))
	end := min(from+pagelen, len(list))
	body := map[string]any{"pagelen": pagelen, "page": page, "values": list[from:end]}
	if withSize {
		body["size"] = len(list)
	}
	if end < len(list) {
		next := *r.URL
		next.Scheme, next.Host = "http", r.Host
		nq := next.Query()
		nq.Set("page", strconv.Itoa(page+1))
		next.RawQuery = nq.Encode()
		body["next"] = next.String()
	}
	writeJSON(w, 200, body)
}

func (s *bitbucketSim) asked(path string) []*http.Request {
	return requestsTo(&s.mu, &s.requests, path)
}

// Bitbucket: every repository and every pull request of every state
// written once (state repeated on every request, next links followed
// over pages capped at 50 without size; sorted by creation, so the one
// updated mid-read does not move to a page read already), a 429 without Retry-After and a
// 500 mid-chain retried, not lost; neither the app password nor its basic
// header is ever printed.
func TestBitbucket(t *testing.T) {
	t.Parallel()
	sim := newBitbucketSim(bitbucketUser, bitbucketPassword, "acme")
	sim.faults["/2.0/repositories/acme/svc-0/pullrequests|2"] = []int{429, 500}
	sim.faults["/2.0/repositories/acme|2"] = []int{429}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "bitbucket.yaml", map[string]string{"api_url": srv.URL, "username": bitbucketUser, "app_password": bitbucketPassword, "workspace": "acme"}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantRepos, wantPRs []string
	for _, repo := range sim.repos {
		wantRepos = append(wantRepos, repo["uuid"].(string))
		for _, pr := range sim.prs[repo["slug"].(string)] {
			wantPRs = append(wantPRs, fmt.Sprintf("%s#%d", repo["uuid"], pr["id"]))
		}
	}
	sameIDs(t, "repositories", wantRepos, column(r.rows["repositories"], "uuid"))
	var gotPRs []string
	for _, row := range r.rows["pullrequests"] {
		gotPRs = append(gotPRs, fmt.Sprintf("%v#%v", row["repository_uuid"], row["id"]))
	}
	sameIDs(t, "pull requests of every state, each once", wantPRs, gotPRs)
	for _, p := range sim.asked("/2.0/repositories/acme/svc-0/pullrequests") {
		if got := p.URL.Query()["state"]; !slices.Equal(got, bitbucketStates) {
			t.Errorf("pull request request %s: state %v, want every state", p.URL.RawQuery, got)
		}
	}
	// 120 pull requests at 50 a page: three pages, the second asked
	// three times (the 429, the 500).
	if n := len(sim.asked("/2.0/repositories/acme/svc-0/pullrequests")); n != 5 {
		t.Errorf("%d requests for svc-0's pull requests, want 5", n)
	}
	if s := stream(r.res, "pullrequests"); s.Retries != 2 {
		t.Errorf("pullrequests retries = %d, want 2 (the 429, the 500)", s.Retries)
	}
	if s := stream(r.res, "repositories"); s.Retries != 1 {
		t.Errorf("repositories retries = %d, want 1 (the 429)", s.Retries)
	}
	noDuplicates(t, r)
	basic := base64.StdEncoding.EncodeToString([]byte(bitbucketUser + ":" + bitbucketPassword))
	noSecret(t, r, bitbucketPassword, basic)
}

// Bitbucket's errors fail the run with its message, naming the stream and
// the repository; the app password is never printed.
func TestBitbucketErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong app password", sets: map[string]string{"app_password": "ATBBwrongWrongWrongWrong000000"},
			want: []string{"repositories", "401", "Unauthorized"}},
		{name: "an unknown workspace", sets: map[string]string{"workspace": "nowhere"},
			want: []string{"repositories", "404", "No workspace with identifier 'nowhere'."}},
		// A 503 to every attempt of one request cuts no rate: the rest of the
		// run keeps its pace (this case took 105 s when each retry cut).
		{name: "a 503 on every attempt",
			faults: map[string][]int{"/2.0/repositories/acme/svc-7/pullrequests|": {503, 503, 503, 503, 503, 503, 503, 503}},
			want:   []string{"pullrequests", "svc-7", "503"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newBitbucketSim(bitbucketUser, bitbucketPassword, "acme")
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL, "username": bitbucketUser, "app_password": bitbucketPassword, "workspace": "acme"}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "bitbucket.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, bitbucketPassword, sets["app_password"])
		})
	}
}
