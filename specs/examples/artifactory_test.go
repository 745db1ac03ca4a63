package examples_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// artifactorySim answers Artifactory's repository list and AQL search as
// the facts in testdata/artifactory.md say, kept unkind where the docs
// are silent: a bearer access token; AQL only as text/plain (else 415);
// a query it cannot parse, or a field it does not know, a 400 in plain
// text; .limit read before permissions, so files the token may not see
// are taken out of a page afterwards (a short page while more follow),
// and at most cap rows served whatever limit asks (a user query limit);
// offset counting rows before permissions; range.total the page's count
// (limit left out of range by older servers, every other page); at most
// 3 searches at once, a fourth a 429; the hard limit's notification in a
// 200; errors {"errors": [{status, message}]}.
type artifactorySim struct {
	token  string
	repos  []map[string]any
	files  map[string][]map[string]any // repo -> files, sorted by path, name
	hidden map[string]bool             // repo/path/name the token may not read
	cap    int
	// hardLimit: a search whose offset + limit passes it is cut there
	// and says so in range.notification (0: none).
	hardLimit int
	fields    map[string]bool // fields include may name

	mu       sync.Mutex
	bodies   []string
	inFlight int
	over     int // searches refused for running more than 3 at once
	faults   map[string][]int
}

const artifactoryToken = "SimOnlyJfrogRefTok.cmVmdGtuOjAxOjE3MzU2ODk2MDA6c2ltb25seQ"

var aqlQuery = regexp.MustCompile(`^items\.find\(\{"repo": \{"\$eq": "([^"]+)"\}, "type": "file"\}\) \.include\(([^)]*)\) \.sort\(\{"\$asc": \["path", "name"\]\}\) \.offset\((\d+)\)\.limit\((\d+)\)$`)

func newArtifactorySim() *artifactorySim {
	s := &artifactorySim{token: artifactoryToken, files: map[string][]map[string]any{}, hidden: map[string]bool{}, cap: 250, faults: map[string][]int{},
		fields: map[string]bool{}}
	for _, f := range []string{"repo", "path", "name", "type", "size", "created", "created_by", "modified", "modified_by", "updated", "sha256", "actual_sha1", "actual_md5", "depth"} {
		s.fields[f] = true
	}
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	counts := map[string]int{"libs-release": 1234, "docker-local": 0, "npm-local": 5}
	keys := []string{"libs-release", "docker-local", "npm-local"}
	for i := range 6 {
		// More repositories than AQL runs searches at once.
		k := fmt.Sprintf("generic-%d-local", i)
		keys, counts[k] = append(keys, k), 300+i
	}
	for _, key := range keys {
		repo := map[string]any{"key": key, "type": "LOCAL", "packageType": "Generic", "url": "https://acme.jfrog.io/artifactory/" + key, "description": "local " + key}
		if key == "npm-local" {
			delete(repo, "description") // optional: left out
			repo["packageType"] = "Npm"
		}
		s.repos = append(s.repos, repo)
		var list []map[string]any
		for i := range counts[key] {
			dir := fmt.Sprintf("com/acme/lib%02d/%d.0", i%40, i/40)
			f := map[string]any{"repo": key, "path": dir, "name": fmt.Sprintf("lib-%04d.jar", i), "type": "file", "size": int64(1000 + i),
				"created": base.Add(time.Duration(i) * time.Minute).Format("2006-01-02T15:04:05.000Z"), "modified": base.Add(time.Duration(i)*time.Minute + time.Second).Format("2006-01-02T15:04:05.000Z"),
				"updated": base.Add(time.Duration(i)*time.Minute + 2*time.Second).Format("2006-01-02T15:04:05.000Z"),
				"sha256":  fmt.Sprintf("%064x", i), "actual_sha1": fmt.Sprintf("%040x", i)}
			if i%11 == 0 {
				delete(f, "sha256") // stored before sha256 was computed
			}
			if i%97 == 5 {
				// A path a permission target leaves out for this token.
				s.hidden[key+"/"+dir+"/"+f["name"].(string)] = true
			}
			list = append(list, f)
		}
		slices.SortFunc(list, func(a, b map[string]any) int {
			if c := strings.Compare(a["path"].(string), b["path"].(string)); c != 0 {
				return c
			}
			return strings.Compare(a["name"].(string), b["name"].(string))
		})
		s.files[key] = list
	}
	// Other kinds of repository, listed only without type=local.
	s.repos = append(s.repos, map[string]any{"key": "maven-remote", "type": "REMOTE", "packageType": "Maven", "url": "https://acme.jfrog.io/artifactory/maven-remote"})
	return s
}

func artifactoryError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"errors": []any{map[string]any{"status": status, "message": message}}})
}

func (s *artifactorySim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		artifactoryError(w, 401, "Bad credentials")
		return
	}
	switch r.URL.Path {
	case "/artifactory/api/repositories":
		var out []map[string]any
		for _, repo := range s.repos {
			if t := r.URL.Query().Get("type"); t == "" || strings.EqualFold(t, repo["type"].(string)) {
				out = append(out, repo)
			}
		}
		writeJSON(w, 200, out)
	case "/artifactory/api/search/aql":
		s.aql(w, r)
	default:
		artifactoryError(w, 404, "Not Found")
	}
}

func (s *artifactorySim) aql(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		artifactoryError(w, 405, "Method Not Allowed")
		return
	}
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	s.inFlight++
	busy := s.inFlight > 3
	if busy {
		s.over++
	}
	m := aqlQuery.FindStringSubmatch(string(b))
	fault := 0
	if m != nil {
		key := m[1] + "|" + m[3]
		if f := s.faults[key]; len(f) > 0 {
			fault, s.faults[key] = f[0], f[1:]
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	time.Sleep(2 * time.Millisecond) // a search takes a while: overlaps show
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		artifactoryError(w, 415, "Unsupported Media Type: "+ct)
		return
	}
	if busy || fault == http.StatusTooManyRequests {
		artifactoryError(w, 429, "Too many concurrent AQL queries, try again later")
		return
	}
	if fault != 0 {
		w.WriteHeader(fault)
		_, _ = io.WriteString(w, "<html><body>Bad Gateway</body></html>")
		return
	}
	if m == nil {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(400)
		_, _ = io.WriteString(w, "Failed to parse query: "+string(b))
		return
	}
	for _, f := range strings.Split(m[2], ",") {
		if f = strings.Trim(strings.TrimSpace(f), `"`); !s.fields[f] {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(400)
			_, _ = fmt.Fprintf(w, "Failed to parse query: unknown field %s in include", f)
			return
		}
	}
	offset, _ := strconv.Atoi(m[3])
	limit, _ := strconv.Atoi(m[4])
	limit = min(limit, s.cap)
	list := s.files[m[1]]
	end := min(offset+limit, len(list))
	var notification any
	if s.hardLimit > 0 && end > s.hardLimit {
		end, notification = max(s.hardLimit, offset), "AQL query reached the search hard limit, results are trimmed."
	}
	results := []map[string]any{}
	for _, f := range list[min(offset, len(list)):end] {
		if !s.hidden[f["repo"].(string)+"/"+f["path"].(string)+"/"+f["name"].(string)] {
			results = append(results, f)
		}
	}
	rng := map[string]any{"start_pos": offset, "end_pos": offset + len(results), "total": len(results)}
	if (offset/limit)%2 == 0 {
		rng["limit"] = limit
	}
	if notification != nil {
		rng["notification"] = notification
	}
	writeJSON(w, 200, map[string]any{"results": results, "range": rng})
}

func artifactorySets(url string) map[string]string {
	return map[string]string{"url": url, "token": artifactoryToken}
}

// Artifactory: every file the token can read in every local repository
// written, read by AQL in text bodies whose .offset moves by the results
// served: pages capped below the limit asked, and made shorter by
// permissions, are no end; files a page's permissions hid are read again
// and stay hidden, the visible ones read again counted as duplicates; a
// 429 (too many searches at once) and a 502 retried mid-chain; no more
// than 3 searches at once; the token never printed.
func TestArtifactory(t *testing.T) {
	t.Parallel()
	sim := newArtifactorySim()
	// The second page (at the visible files of the first 250) fails
	// twice.
	second := 0
	for _, f := range sim.files["libs-release"][:250] {
		if !sim.hidden["libs-release/"+f["path"].(string)+"/"+f["name"].(string)] {
			second++
		}
	}
	sim.faults["libs-release|"+strconv.Itoa(second)] = []int{502, 429}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "artifactory.yaml", artifactorySets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantRepos []string
	for key := range sim.files {
		wantRepos = append(wantRepos, key)
	}
	sameIDs(t, "repositories, local only", wantRepos, ids(r.rows["repositories"], "key"))
	var want []string
	for repo, files := range sim.files {
		for _, f := range files {
			if id := repo + "/" + f["path"].(string) + "/" + f["name"].(string); !sim.hidden[id] {
				want = append(want, id)
			}
		}
	}
	var got []string
	for _, row := range r.rows["files"] {
		got = append(got, fmt.Sprintf("%v/%v/%v", row["repo"], row["path"], row["name"]))
	}
	sameIDs(t, "files the token can read (repeats aside)", want, unique(got))
	if len(want) < 1200 {
		t.Fatalf("the simulator holds %d visible files, want more than 1200", len(want))
	}
	dup := map[string]int{}
	for _, d := range r.res.Summary.Duplicates {
		dup[d.Name] = d.Count
	}
	if dup["files"] != len(got)-len(unique(got)) {
		t.Errorf("duplicates = %+v, want files: %d (the rows written again)", r.res.Summary.Duplicates, len(got)-len(unique(got)))
	}
	for _, row := range r.rows["files"] {
		if row["name"] == "lib-0000.jar" && (row["sha256"] != nil || row["sha1"] == nil || row["size"] == nil) {
			t.Errorf("a file without sha256: row %v", row)
		}
	}
	sim.mu.Lock()
	offsets := []string{}
	for _, b := range sim.bodies {
		if m := aqlQuery.FindStringSubmatch(b); m != nil && m[1] == "libs-release" {
			offsets = append(offsets, m[3])
			if m[4] != "1000" {
				t.Errorf("a search asked limit %s, want the page_size 1000", m[4])
			}
		} else if m == nil {
			t.Errorf("a search the simulator could not read: %q", b)
		}
	}
	over := sim.over
	sim.mu.Unlock()
	// Offsets move by the results served (at most 250, fewer where
	// files were hidden), never by the 1000 asked: none is skipped.
	for i := 1; i < len(offsets); i++ {
		a, _ := strconv.Atoi(offsets[i-1])
		b, _ := strconv.Atoi(offsets[i])
		if b < a || b-a > 250 {
			t.Errorf("libs-release offsets %v: a step past the 250 a page serves", offsets)
			break
		}
	}
	t.Logf("libs-release offsets %v; %d file rows for %d files", offsets, len(got), len(want))
	if over > 0 {
		t.Errorf("%d searches refused for running more than 3 at once", over)
	}
	if s := stream(r.res, "files"); s.Retries < 2 {
		t.Errorf("files retries = %d, want at least 2 (the 502, the 429)", s.Retries)
	}
	noSecret(t, r, artifactoryToken)
}

// Artifactory's failures fail the run, naming the stream and repository:
// a bad token, an older server that does not know a field the query
// includes (a 400 in plain text), a search cut at the server's hard limit
// (said only in range.notification, in a 200); the token is never
// printed.
func TestArtifactoryErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		sets  map[string]string
		setup func(*artifactorySim)
		want  []string
	}{
		{name: "a wrong token", sets: map[string]string{"token": "WrongJfrogTokenWrongWrong"}, want: []string{"repositories", "Bad credentials"}},
		{name: "a field the server does not know", setup: func(s *artifactorySim) { delete(s.fields, "sha256") },
			want: []string{"files", "libs-release", "400", "unknown field sha256"}},
		{name: "the hard limit", setup: func(s *artifactorySim) { s.hardLimit = 600 },
			want: []string{"files", "libs-release", "AQL: AQL query reached the search hard limit"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newArtifactorySim()
			if c.setup != nil {
				c.setup(sim)
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := artifactorySets(srv.URL)
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "artifactory.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, artifactoryToken, sets["token"])
		})
	}
}
