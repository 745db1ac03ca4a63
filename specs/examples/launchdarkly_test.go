package examples_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ldSim answers LaunchDarkly's REST API v2 projects, environments and
// flags lists as the service does (facts in testdata/launchdarkly.md):
// {items, totalCount, _links: {self, next}} lists paged by limit and
// offset, the next link relative to the host and carrying the query,
// missing on the last page; flags at most 100 a page, archived flags only
// under filter=state:archived; the access token in Authorization as it is
// (a "Bearer" one refused); LD-API-Version required for this shape; rate
// limit headers on every answer, X-Ratelimit-Reset in epoch
// milliseconds; 429s with Retry-After or with only the reset; a 503 now
// and then; errors {code, message}; optional fields left out (a flag's
// _maintainer, an environment's tags).
type ldSim struct {
	key      string
	projects []map[string]any
	envs     map[string][]map[string]any // project key -> environments
	flags    map[string][]map[string]any // project key -> flags, oldest first, archived too

	mu       sync.Mutex
	requests []*http.Request
	// faults[path + "?" + offset + "|" + filter] are answered, in order,
	// to the first requests for that page: a status; -429 for a 429 with
	// only X-Ratelimit-Reset; 200 for a 200 without items.
	faults map[string][]int
	// cut[path + "|" + filter]: the page at that offset has no next link.
	cut   map[string]int
	early int // requests sent again before their 429's wait was over
	after map[string]time.Time

	// The account's global limit: globalMax requests in each fixed
	// window of globalWindow (LaunchDarkly's is ten seconds, its number
	// unpublished), counted as they arrive. Every answer announces what
	// is left of it once the request is counted and the window's end in
	// epoch milliseconds; a request past it is refused (429, not
	// counted) with remaining 0 and no Retry-After.
	globalMax     int
	globalWindow  time.Duration
	windowEnd     time.Time
	used          int
	globalLimited int // requests refused by the global limit
}

const ldKey = "api-5f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f" // simulator only

func newLDSim() *ldSim {
	s := &ldSim{key: ldKey, envs: map[string][]map[string]any{}, flags: map[string][]map[string]any{},
		faults: map[string][]int{}, cut: map[string]int{}, after: map[string]time.Time{},
		globalMax: 1000, globalWindow: 10 * time.Second}
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := range 45 { // three pages of projects
		pk := fmt.Sprintf("proj-%02d", i)
		p := map[string]any{"_id": fmt.Sprintf("%024x", i+1), "key": pk, "name": fmt.Sprintf("Project %d", i), "tags": []any{"team-" + strconv.Itoa(i%3)},
			"_links": map[string]any{"self": map[string]any{"href": "/api/v2/projects/" + pk}}}
		if i%4 == 0 {
			delete(p, "tags")
		}
		s.projects = append(s.projects, p)
		ne := 1 + i%3
		if i == 0 {
			ne = 23 // two pages of environments
		}
		for e := range ne {
			env := map[string]any{"_id": fmt.Sprintf("%024x", 1000*(i+1)+e), "key": fmt.Sprintf("env-%02d", e), "name": fmt.Sprintf("Env %d", e),
				"color": "417505", "critical": e == 0, "tags": []any{}}
			if e%2 == 1 {
				delete(env, "tags")
				delete(env, "critical")
			}
			s.envs[pk] = append(s.envs[pk], env)
		}
		nf, na := i%5, i%2
		switch i {
		case 0:
			nf, na = 250, 130 // three pages of current flags, two of archived
		case 1:
			nf, na = 100, 0 // exactly one page
		}
		s.flags[pk] = []map[string]any{}
		for f := range nf + na {
			flag := map[string]any{"key": fmt.Sprintf("flag-%03d", f), "name": fmt.Sprintf("Flag %d", f), "kind": "boolean", "temporary": f%2 == 0,
				"archived": f >= nf, "deprecated": f%11 == 3, "creationDate": base + int64(f)*60_000, "tags": []any{}, "_version": 1,
				"_maintainer": map[string]any{"_id": "m1", "email": "ada@example.com"}}
			if f%3 == 0 {
				delete(flag, "_maintainer")
				flag["kind"] = "multivariate"
			}
			s.flags[pk] = append(s.flags[pk], flag)
		}
	}
	return s
}

func ldError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg})
}

func (s *ldSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := r.URL.Path + "?" + q.Get("offset") + "|" + q.Get("filter")
	now := time.Now()
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	if t, ok := s.after[key]; ok && now.Before(t) {
		s.early++
	}
	if !now.Before(s.windowEnd) {
		// A new window; its end a whole millisecond, as announced.
		s.windowEnd, s.used = time.UnixMilli(now.Add(s.globalWindow).UnixMilli()), 0
	}
	// Only authenticated requests count against the account's limit.
	authed := r.Header.Get("Authorization") == s.key
	spent := authed && s.used >= s.globalMax
	switch {
	case !authed:
	case spent:
		s.globalLimited++
	default:
		s.used++
	}
	left, reset := s.globalMax-s.used, s.windowEnd.UnixMilli()
	s.mu.Unlock()
	w.Header().Set("X-Ratelimit-Global-Remaining", strconv.Itoa(left))
	w.Header().Set("X-Ratelimit-Route-Remaining", "40")
	w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(reset, 10))
	if !authed {
		ldError(w, 401, "unauthorized", "Invalid access token")
		return
	}
	if spent {
		ldError(w, 429, "rate_limited", "You've exceeded the API rate limit. Try again later.")
		return
	}
	if r.Header.Get("LD-API-Version") != "20240415" {
		ldError(w, 400, "invalid_request", "this simulator answers API version 20240415 only")
		return
	}
	switch fault {
	case 0:
	case 429:
		s.mu.Lock()
		s.after[key] = now.Add(time.Second)
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("X-Ratelimit-Route-Remaining", "0")
		ldError(w, 429, "rate_limited", "You've exceeded the API rate limit. Try again later.")
		return
	case -429:
		// The header holds whole milliseconds: the wait is over at the
		// millisecond it names.
		at := time.UnixMilli(now.Add(1200 * time.Millisecond).UnixMilli())
		s.mu.Lock()
		s.after[key] = at
		s.mu.Unlock()
		w.Header().Set("X-Ratelimit-Route-Remaining", "0")
		w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(at.UnixMilli(), 10))
		ldError(w, 429, "rate_limited", "You've exceeded the API rate limit. Try again later.")
		return
	case 200:
		writeJSON(w, 200, map[string]any{"message": "upstream request timeout"})
		return
	default:
		ldError(w, fault, "internal_server_error", http.StatusText(fault))
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var list []map[string]any
	most := 20
	switch {
	case len(parts) == 3 && parts[2] == "projects":
		list = s.projects
	case len(parts) == 5 && parts[2] == "projects" && parts[4] == "environments":
		envs, ok := s.envs[parts[3]]
		if !ok {
			ldError(w, 404, "not_found", "Unknown project key")
			return
		}
		list = envs
	case len(parts) == 4 && parts[2] == "flags":
		all, ok := s.flags[parts[3]]
		if !ok {
			ldError(w, 404, "not_found", "Unknown project key")
			return
		}
		archived := q.Get("filter") == "state:archived"
		if f := q.Get("filter"); f != "" && !archived {
			ldError(w, 400, "invalid_request", "unsupported filter "+f)
			return
		}
		for _, f := range all {
			if f["archived"] == archived {
				list = append(list, f)
			}
		}
		most = 100
		if q.Get("sort") != "creationDate" {
			ldError(w, 400, "invalid_request", "the simulator lists flags by creationDate only")
			return
		}
	default:
		ldError(w, 404, "not_found", "Not found")
		return
	}
	limit, ok := queryInt(q, "limit", 20, 1)
	offset, ok2 := queryInt(q, "offset", 0, 0)
	if !ok || !ok2 {
		ldError(w, 400, "invalid_request", "limit and offset must be whole numbers")
		return
	}
	limit = min(limit, most)
	end := min(offset+limit, len(list))
	items := []map[string]any{}
	if offset < len(list) {
		items = list[offset:end]
	}
	links := map[string]any{"self": map[string]any{"href": r.URL.RequestURI(), "type": "application/json"}}
	if c, ok := s.cut[r.URL.Path+"|"+q.Get("filter")]; end < len(list) && (!ok || c != offset) {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("offset", strconv.Itoa(end))
		next.Set("limit", strconv.Itoa(limit))
		links["next"] = map[string]any{"href": r.URL.Path + "?" + next.Encode(), "type": "application/json"}
	}
	writeJSON(w, 200, map[string]any{"items": items, "totalCount": len(list), "_links": links})
}

func runLD(t *testing.T, s *ldSim, sets map[string]string) vendorRun {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	all := map[string]string{"api_url": srv.URL, "api_key": ldKey}
	for k, v := range sets {
		all[k] = v
	}
	return runVendor(t, "launchdarkly.yaml", all, time.Time{})
}

func (s *ldSim) want() (projects, envs, flags []string) {
	for _, p := range s.projects {
		pk := p["key"].(string)
		projects = append(projects, pk)
		for _, e := range s.envs[pk] {
			envs = append(envs, pk+"/"+e["key"].(string))
		}
		for _, f := range s.flags[pk] {
			flags = append(flags, fmt.Sprintf("%s/%s/%v", pk, f["key"], f["archived"]))
		}
	}
	return projects, envs, flags
}

func pairs(rows []map[string]any, cols ...string) []string {
	var out []string
	for _, r := range rows {
		var parts []string
		for _, c := range cols {
			parts = append(parts, fmt.Sprint(r[c]))
		}
		out = append(out, strings.Join(parts, "/"))
	}
	return out
}

// LaunchDarkly: every project, environment and flag (archived ones too,
// from the archived list) written once; next links followed and checked
// against totalCount; the key sent as it is with LD-API-Version on every
// request; a 429 with only an epoch-millisecond X-Ratelimit-Reset waited
// out to it (not early; not read as seconds, which would wait for
// millennia), a 500 and a 502 retried; the global budget every answer
// announces kept to, no request refused by it; the key never printed.
func TestLaunchDarkly(t *testing.T) {
	t.Parallel()
	s := newLDSim()
	// One rate limit in the run: two within two seconds would cut the
	// host's pace, which TestLaunchDarklyRetryAfter keeps apart.
	s.faults["/api/v2/projects?20|"] = []int{500}
	s.faults["/api/v2/flags/proj-00?100|"] = []int{-429}
	s.faults["/api/v2/flags/proj-00?100|state:archived"] = []int{502}
	s.faults["/api/v2/projects/proj-00/environments?20|"] = []int{500}
	// The global limit scaled down (30 in each 1 s window, so the test is
	// short): the run meets several windows, and keeps to what every
	// answer says is left (rate_limit_headers), none refused.
	s.globalMax, s.globalWindow = 30, time.Second
	r := runLD(t, s, nil)
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.said)
	}
	wantP, wantE, wantF := s.want()
	sameIDs(t, "projects", wantP, ids(r.rows["projects"], "key"))
	sameIDs(t, "environments", wantE, pairs(r.rows["environments"], "project", "key"))
	sameIDs(t, "flags", wantF, pairs(r.rows["flags"], "project", "key", "archived"))
	if len(wantF) < 500 {
		t.Fatalf("the simulator has %d flags", len(wantF))
	}
	for _, row := range r.rows["flags"] {
		if row["project"] == "proj-00" && row["key"] == "flag-001" && (row["maintainer"] != "ada@example.com" || row["created_at"] == nil) {
			t.Errorf("flag row %v: want its maintainer and creation time", row)
		}
	}
	for _, req := range s.requests {
		if req.Header.Get("Authorization") != ldKey || req.Header.Get("LD-API-Version") != "20240415" {
			t.Errorf("request %s: Authorization %q, LD-API-Version %q", req.URL, req.Header.Get("Authorization"), req.Header.Get("LD-API-Version"))
		}
		if strings.HasPrefix(req.URL.Path, "/api/v2/flags/") && req.URL.Query().Has("filter") && req.URL.Query().Get("filter") != "state:archived" {
			t.Errorf("flags request %s: want no filter, or state:archived", req.URL)
		}
	}
	// proj-00: 3 pages of current flags (+1 retried), 2 of archived (+1).
	if n := len(requestsTo(&s.mu, &s.requests, "/api/v2/flags/proj-00")); n != 7 {
		t.Errorf("%d flag requests for proj-00, want 7", n)
	}
	if s.early > 0 {
		t.Errorf("%d requests sent again before their 429's wait was over", s.early)
	}
	if n := len(s.requests); n < 3*s.globalMax {
		t.Errorf("%d requests: want several windows' worth (%d each)", n, s.globalMax)
	}
	if s.globalLimited > 0 {
		t.Errorf("%d requests refused by the global limit, whose budget every answer announced (X-Ratelimit-Global-Remaining, X-Ratelimit-Reset): want none", s.globalLimited)
	}
	for _, name := range []string{"projects", "flags", "environments"} {
		if st := stream(r.res, name); st.Retries < 1 {
			t.Errorf("%s retries = %d, want its 429 or 503 retried", name, st.Retries)
		}
	}
	noDuplicates(t, r)
	noSecret(t, r, ldKey)
}

// A 429 with Retry-After is retried after it, not before.
func TestLaunchDarklyRetryAfter(t *testing.T) {
	t.Parallel()
	s := newLDSim()
	s.faults["/api/v2/projects/proj-00/environments?20|"] = []int{429}
	r := runLD(t, s, nil)
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	_, wantE, _ := s.want()
	sameIDs(t, "environments", wantE, pairs(r.rows["environments"], "project", "key"))
	if st := stream(r.res, "environments"); st.Retries != 1 {
		t.Errorf("environments retries = %d, want the 429 retried once", st.Retries)
	}
	if s.early > 0 {
		t.Errorf("%d requests sent again before Retry-After", s.early)
	}
}

// A flag archived between the project's two lists is listed in both: one
// row, the archived one (read second), warned of as a duplicate.
func TestLaunchDarklyArchivedMidRead(t *testing.T) {
	t.Parallel()
	s := newLDSim()
	// The two lists are read concurrently: the archived one waits until
	// the current one was served and the flag archived.
	archived := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/flags/proj-03" {
			s.ServeHTTP(w, r)
			return
		}
		if r.URL.Query().Get("filter") != "" {
			select {
			case <-archived:
			case <-time.After(10 * time.Second):
			}
			s.ServeHTTP(w, r)
			return
		}
		s.ServeHTTP(w, r)
		s.mu.Lock()
		if !s.flags["proj-03"][0]["archived"].(bool) {
			s.flags["proj-03"][0]["archived"] = true
			close(archived)
		}
		s.mu.Unlock()
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r := runVendor(t, "launchdarkly.yaml", map[string]string{"api_url": srv.URL, "api_key": ldKey}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var got []map[string]any
	for _, row := range r.rows["flags"] {
		if row["project"] == "proj-03" && row["key"] == "flag-000" {
			got = append(got, row)
		}
	}
	if len(got) != 2 || got[1]["archived"] != true {
		t.Errorf("proj-03/flag-000 rows %v: want it listed twice, the archived last", got)
	}
	if d := r.res.Summary.Duplicates; len(d) != 1 || d[0].Name != "flags" || d[0].Count != 1 {
		t.Errorf("duplicates = %+v, want flags: 1", d)
	}
}

// LaunchDarkly's failures fail the run naming the stream and the
// project: a list whose next link stops short of totalCount, a 200
// without items, a wrong key, a Bearer key; the key is never printed.
func TestLaunchDarklyErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		sets  map[string]string
		setup func(s *ldSim)
		want  []string
	}{
		{name: "next link dropped early", setup: func(s *ldSim) { s.cut["/api/v2/flags/proj-00|state:archived"] = 0 },
			want: []string{"flags", "proj-00", "archived", "paging ended after 100 items, but page 1 said the list holds 130"}},
		{name: "a 200 without items", setup: func(s *ldSim) { s.faults["/api/v2/projects/proj-01/environments?|"] = []int{200} },
			want: []string{"environments", "proj-01", "a 200 without an items list: upstream request timeout"}},
		{name: "a wrong key", sets: map[string]string{"api_key": "api-00000000-0000-4000-8000-000000000000"},
			want: []string{"projects", "401", "unauthorized: Invalid access token"}},
		{name: "an old API version", sets: map[string]string{"api_version": "20191212"},
			want: []string{"projects", "400", "invalid_request"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newLDSim()
			if c.setup != nil {
				c.setup(s)
			}
			r := runLD(t, s, c.sets)
			failedRun(t, r, c.want)
			noSecret(t, r, ldKey)
			if k := c.sets["api_key"]; k != "" {
				noSecret(t, r, k)
			}
		})
	}
}
