package examples_test

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// confluenceSim answers a Confluence Cloud site as it does (facts from
// its REST API v1 and v2 references and "Pagination in the REST API";
// shapes in testdata/confluence.md): everything under the /wiki context
// path, anything else a 404 page; v2 lists {results, _links} paged by an
// opaque cursor, _links.next relative to the host (/wiki/api/v2/...)
// and the same link in a Link header beside rel="base", limit at most 250
// (default 25); v1 content {results, start, limit, size, _links} paged by
// start, limit served at most 25, _links.next relative to _links.base
// (which ends with /wiki), carrying the whole query; 429 with
// Retry-After; errors {"statusCode", "message"} (v1) and {"errors":
// [{"status", "title"}]} (v2); basic auth with an email and an API token.
type confluenceSim struct {
	email, token string
	spaces       []map[string]any
	pages        map[string][]map[string]any // space id -> its pages
	blogs        map[string][]map[string]any // space key -> its blog posts
	// foreign, when set, is the origin (http://host:port) the pages
	// list's next link of the first space points to.
	foreign string

	mu       sync.Mutex
	requests []*http.Request
	// faults[path + "|" + cursor or start] are answered, in order, to
	// the first requests for that page.
	faults map[string][]int
	// move, when set, moves a page to another space once its space's
	// pages list gave it; the other space's list waits for that.
	// moveBlog moves a blog post so (spaces by key).
	move, moveBlog *confluenceMove
}

// confluenceMove is a page moved between spaces while they are read: it
// keeps its id, its spaceId changes.
type confluenceMove struct {
	from, to string // space ids
	page     string // page id
	done     chan struct{}
}

const (
	confluenceEmail = "ada@example.com"
	confluenceToken = "ATATTsimOnlyConfluenceToken0123456789abcdef"
)

func newConfluenceSim(email, token string) *confluenceSim {
	s := &confluenceSim{email: email, token: token, pages: map[string][]map[string]any{}, blogs: map[string][]map[string]any{}, faults: map[string][]int{}}
	base := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return base.Add(d).Format("2006-01-02T15:04:05.000Z") }
	pageID, blogID := 100000, 500000
	// 260 spaces (two v2 pages at 250); pages: 600 in the first space
	// (three pages at 250), exactly 250 in the second (one page), none
	// in the third, a few in the rest; blog posts: 60 in the first
	// space (three v1 pages at the 25 served), a few in the rest.
	for i := range 260 {
		id := strconv.Itoa(30000 + i)
		key := fmt.Sprintf("SP%d", i)
		sp := map[string]any{"id": id, "key": key, "name": fmt.Sprintf("Space %d", i), "type": "global", "status": "current",
			"createdAt": ts(time.Duration(i) * time.Hour), "homepageId": strconv.Itoa(900000 + i)}
		if i%6 == 0 {
			sp["type"] = "personal"
			delete(sp, "homepageId") // optional: omitted
		}
		s.spaces = append(s.spaces, sp)
		n := map[int]int{0: 600, 1: 250, 2: 0}[i]
		if i > 2 {
			n = i % 3
		}
		s.pages[id] = []map[string]any{}
		for j := range n {
			pageID++
			p := map[string]any{"id": strconv.Itoa(pageID), "status": "current", "title": fmt.Sprintf("Page %d", j), "spaceId": id,
				"parentId": strconv.Itoa(pageID - 1), "parentType": "page", "authorId": "5b10ac8d82e05b22cc7d4ef5",
				"createdAt": ts(time.Duration(j) * time.Minute), "version": map[string]any{"number": j%5 + 1, "createdAt": ts(time.Duration(j) * time.Minute)}}
			if j == 0 {
				delete(p, "parentId") // the space's top page has no parent
				delete(p, "parentType")
			}
			s.pages[id] = append(s.pages[id], p)
		}
		b := map[int]int{0: 60}[i]
		if i > 2 {
			b = i % 2
		}
		s.blogs[key] = []map[string]any{}
		for j := range b {
			blogID++
			s.blogs[key] = append(s.blogs[key], map[string]any{"id": strconv.Itoa(blogID), "type": "blogpost", "status": "current",
				"title":   fmt.Sprintf("Post %d", j),
				"history": map[string]any{"latest": true, "createdBy": map[string]any{"type": "known", "displayName": "Ada Lovelace"}, "createdDate": ts(time.Duration(j) * time.Hour)},
				"_links":  map[string]any{"webui": fmt.Sprintf("/spaces/%s/blog/%d", key, blogID)}})
		}
	}
	return s
}

func confluenceV2Error(w http.ResponseWriter, status int, title string) {
	writeJSON(w, status, map[string]any{"errors": []any{map[string]any{"status": status, "code": strings.ToUpper(strings.ReplaceAll(title, " ", "_")), "title": title, "detail": nil}}})
}

func confluenceV1Error(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"statusCode": status, "data": map[string]any{"authorized": true, "valid": true, "errors": []any{}, "successful": false}, "message": msg})
}

func (s *confluenceSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	key := r.URL.Path + "|" + q.Get("cursor") + q.Get("start")
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	s.mu.Unlock()

	rest, ok := strings.CutPrefix(r.URL.Path, "/wiki/")
	if !ok {
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		w.WriteHeader(404)
		_, _ = w.Write([]byte("<!DOCTYPE html><html><title>Page not found</title></html>"))
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != s.email || pass != s.token {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(401)
		_, _ = w.Write([]byte("Basic authentication with passwords is deprecated."))
		return
	}
	switch fault {
	case 0:
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
		w.Header().Set("X-RateLimit-NearLimit", "true")
		confluenceV2Error(w, 429, "Too Many Requests")
		return
	default:
		confluenceV2Error(w, fault, http.StatusText(fault))
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case rest == "api/v2/spaces":
		s.v2List(w, r, s.spaces, "")
	case len(parts) == 5 && parts[0] == "api" && parts[1] == "v2" && parts[2] == "spaces" && parts[4] == "pages":
		s.mu.Lock()
		mv := s.move
		s.mu.Unlock()
		if mv != nil && parts[3] == mv.to {
			select {
			case <-mv.done:
			case <-time.After(10 * time.Second): // the test then finds the page not moved
			case <-r.Context().Done():
				return
			}
		}
		s.mu.Lock()
		list, ok := s.pages[parts[3]]
		s.mu.Unlock()
		if !ok {
			confluenceV2Error(w, 404, "Not Found")
			return
		}
		foreign := ""
		if s.foreign != "" && parts[3] == s.spaces[0]["id"] {
			foreign = s.foreign
		}
		s.v2List(w, r, list, foreign)
		if mv != nil && parts[3] == mv.from && slices.ContainsFunc(list, func(p map[string]any) bool { return p["id"] == mv.page }) {
			s.movePage(mv)
		}
	case rest == "rest/api/content":
		s.mu.Lock()
		mv := s.moveBlog
		s.mu.Unlock()
		if mv != nil && q.Get("spaceKey") == mv.to {
			select {
			case <-mv.done:
			case <-time.After(10 * time.Second): // the test then finds the post not moved
			case <-r.Context().Done():
				return
			}
		}
		s.mu.Lock()
		list, ok := s.blogs[q.Get("spaceKey")]
		s.mu.Unlock()
		if !ok || q.Get("type") != "blogpost" {
			confluenceV1Error(w, 404, "No space with key : "+q.Get("spaceKey"))
			return
		}
		s.v1List(w, r, list)
		if mv != nil && q.Get("spaceKey") == mv.from && slices.ContainsFunc(list, func(p map[string]any) bool { return p["id"] == mv.page }) {
			s.moveBlogPost(mv)
		}
	default:
		confluenceV2Error(w, 404, "Not Found")
	}
}

// v2List answers one cursor page of list; the cursor is an opaque
// encoding of the offset. A next link goes to foreign's host when set.
func (s *confluenceSim) v2List(w http.ResponseWriter, r *http.Request, list []map[string]any, foreign string) {
	q := r.URL.Query()
	limit := 25
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 250 {
			confluenceV2Error(w, 400, "Invalid limit")
			return
		}
		limit = n
	}
	from := 0
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			confluenceV2Error(w, 400, "Invalid cursor")
			return
		}
		if from, err = strconv.Atoi(strings.TrimPrefix(string(raw), "offset:")); err != nil {
			confluenceV2Error(w, 400, "Invalid cursor")
			return
		}
	}
	from = min(from, len(list))
	end := min(from+limit, len(list))
	links := map[string]any{"base": "http://" + r.Host + "/wiki"}
	if end < len(list) {
		nq := url.Values{"limit": {strconv.Itoa(limit)}, "cursor": {base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))}}
		next := r.URL.Path + "?" + nq.Encode()
		links["next"] = foreign + next
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next", <%s>; rel="base"`, foreign+next, links["base"]))
	}
	writeJSON(w, 200, map[string]any{"results": list[from:end], "_links": links})
}

// v1List answers one start/limit page of list, at most 25 items, with
// _links.next relative to _links.base.
func (s *confluenceSim) v1List(w http.ResponseWriter, r *http.Request, list []map[string]any) {
	q := r.URL.Query()
	limit, ok := queryInt(q, "limit", 25, 0)
	if !ok {
		confluenceV1Error(w, 400, "limit must be a positive number")
		return
	}
	limit = min(limit, 25)
	start, ok := queryInt(q, "start", 0, 0)
	if !ok {
		confluenceV1Error(w, 400, "start must be a positive number")
		return
	}
	from := min(start, len(list))
	end := min(from+limit, len(list))
	base := "http://" + r.Host + "/wiki"
	links := map[string]any{"base": base, "context": "/wiki", "self": base + "/rest/api/content"}
	if end < len(list) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("limit", strconv.Itoa(limit))
		nq.Set("start", strconv.Itoa(end))
		links["next"] = "/rest/api/content?" + nq.Encode()
	}
	writeJSON(w, 200, map[string]any{"results": list[from:end], "start": from, "limit": limit, "size": end - from, "_links": links})
}

// movePage moves mv's page to its new space and lets that space's list go
// on.
func (s *confluenceSim) movePage(mv *confluenceMove) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.pages[mv.from], func(p map[string]any) bool { return p["id"] == mv.page })
	if i < 0 {
		return
	}
	moved := maps.Clone(s.pages[mv.from][i])
	moved["spaceId"] = mv.to
	delete(moved, "parentId") // a top page of its new space
	delete(moved, "parentType")
	s.pages[mv.from] = slices.Delete(slices.Clone(s.pages[mv.from]), i, i+1)
	s.pages[mv.to] = append(slices.Clone(s.pages[mv.to]), moved)
	close(mv.done)
}

// moveBlogPost moves mv's blog post to its new space and lets that
// space's list go on.
func (s *confluenceSim) moveBlogPost(mv *confluenceMove) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.blogs[mv.from], func(p map[string]any) bool { return p["id"] == mv.page })
	if i < 0 {
		return
	}
	moved := s.blogs[mv.from][i]
	s.blogs[mv.from] = slices.Delete(slices.Clone(s.blogs[mv.from]), i, i+1)
	s.blogs[mv.to] = append(slices.Clone(s.blogs[mv.to]), moved)
	close(mv.done)
}

func (s *confluenceSim) asked(path string) []*http.Request {
	return requestsTo(&s.mu, &s.requests, path)
}

// Confluence: every space, page and blog post written once; v2's
// host-relative next links (body and Link header) and v1's links relative
// to the /wiki base each resolved under /wiki, never outside it; a 429
// with Retry-After, a 502 and a 500 mid-chain retried; the API token
// never printed.
func TestConfluence(t *testing.T) {
	t.Parallel()
	sim := newConfluenceSim(confluenceEmail, confluenceToken)
	cursor := func(n int) string { return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(n))) }
	sim.faults["/wiki/api/v2/spaces/30000/pages|"+cursor(250)] = []int{429, 502}
	// Two 429s on the first chains' second pages, a handful of requests
	// into the run, are a pair: a cut to that handful a second. It counted
	// too few requests to be sure of a limit, so its rate doubles back
	// (before, it probed slowly past it, and the run took 117 s, not 1.4;
	// now about 15: the third 429, above, cuts the rate it has doubled to,
	// and that cut counts enough requests to be taken for a limit).
	sim.faults["/wiki/rest/api/content|25"] = []int{429}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "confluence.yaml", map[string]string{"site_url": srv.URL, "email": confluenceEmail, "api_token": confluenceToken}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantSpaces, wantPages, wantBlogs []string
	for _, sp := range sim.spaces {
		wantSpaces = append(wantSpaces, sp["id"].(string))
		for _, p := range sim.pages[sp["id"].(string)] {
			wantPages = append(wantPages, p["id"].(string))
		}
		for _, b := range sim.blogs[sp["key"].(string)] {
			wantBlogs = append(wantBlogs, b["id"].(string))
		}
	}
	for _, l := range [][]string{wantSpaces, wantPages, wantBlogs} {
		slices.Sort(l)
	}
	for table, want := range map[string][]string{"spaces": wantSpaces, "pages": wantPages, "blogposts": wantBlogs} {
		if d := cmp.Diff(want, column(r.rows[table], "id")); d != "" {
			t.Errorf("%s, each once (-want +got):\n%s", table, d)
		}
	}
	sim.mu.Lock()
	for _, req := range sim.requests {
		if !strings.HasPrefix(req.URL.Path, "/wiki/") || strings.HasPrefix(req.URL.Path, "/wiki/wiki/") {
			t.Errorf("request %s outside the /wiki context path, or under it twice", req.URL)
		}
	}
	sim.mu.Unlock()
	// 60 blog posts in SP0 at 25 served: three pages, the second twice
	// (the 500), each with the whole query.
	blogs := 0
	for _, req := range sim.asked("/wiki/rest/api/content") {
		if q := req.URL.Query(); q.Get("spaceKey") == "SP0" {
			blogs++
			if q.Get("type") != "blogpost" || q.Get("expand") != "history" {
				t.Errorf("blog post request %s lost its query", req.URL.RawQuery)
			}
		}
	}
	if blogs != 4 {
		t.Errorf("%d requests for SP0's blog posts, want 4", blogs)
	}
	if n := len(sim.asked("/wiki/api/v2/spaces/30000/pages")); n != 5 {
		t.Errorf("%d requests for space 30000's pages, want 5 (three pages, the second three times)", n)
	}
	if n := len(sim.asked("/wiki/api/v2/spaces")); n != 2 {
		t.Errorf("%d requests for spaces, want 2", n)
	}
	for _, row := range r.rows["blogposts"] {
		if row["created_by"] != "Ada Lovelace" || row["space_key"] == nil {
			t.Errorf("blog post row %v: want its creator and space", row)
			break
		}
	}
	noDuplicates(t, r)
	basic := base64.StdEncoding.EncodeToString([]byte(confluenceEmail + ":" + confluenceToken))
	noSecret(t, r, confluenceToken, basic)
}

// A next link to another host is followed without the credentials (the
// basic header goes only to base_url's origin), and the run says so: the
// other host refuses it and the run fails naming the stream and space,
// never handing the API token to that host.
func TestConfluenceForeignNext(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		seen    []string
		gotAuth []string
	)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.String())
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(401)
		_, _ = w.Write([]byte("Unauthorized"))
	}))
	defer other.Close()
	sim := newConfluenceSim(confluenceEmail, confluenceToken)
	sim.foreign = other.URL
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "confluence.yaml", map[string]string{"site_url": srv.URL, "email": confluenceEmail, "api_token": confluenceToken}, time.Time{})
	failedRun(t, r, []string{"pages", "30000", "401", "another origin"})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatalf("the other host was never asked: want the next link followed")
	}
	for i, a := range gotAuth {
		if a != "" {
			t.Errorf("request %s to the other host carried Authorization %q", seen[i], a)
		}
	}
	noSecret(t, r, confluenceToken, base64.StdEncoding.EncodeToString([]byte(confluenceEmail+":"+confluenceToken)))
}

// A page, and a blog post, moved to another space while the spaces are
// read (listed under one, then the other): each keeps its id, so it is one
// page or post, nothing is
// lost and the run succeeds, the page in its new space (the last one
// written wins). The default duplicate rule took it for two records under
// one key: a collision, exit 1.
func TestConfluenceMovedWhileRead(t *testing.T) {
	t.Parallel()
	sim := newConfluenceSim(confluenceEmail, confluenceToken)
	page := sim.pages["30004"][0]["id"].(string)
	sim.move = &confluenceMove{from: "30004", to: "30005", page: page, done: make(chan struct{})}
	post := sim.blogs["SP3"][0]["id"].(string)
	sim.moveBlog = &confluenceMove{from: "SP3", to: "SP5", page: post, done: make(chan struct{})}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "confluence.yaml", map[string]string{"site_url": srv.URL, "email": confluenceEmail, "api_token": confluenceToken}, time.Time{})
	for _, mv := range []*confluenceMove{sim.move, sim.moveBlog} {
		select {
		case <-mv.done:
		default:
			t.Fatalf("%s was not moved: its space's list never gave it", mv.page)
		}
	}
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var rows []map[string]any
	for _, row := range r.rows["pages"] {
		if row["id"] == page {
			rows = append(rows, row)
		}
	}
	// Rows as written: the last one of a key is what the table keeps.
	if len(rows) != 2 || rows[1]["space_id"] != "30005" {
		t.Errorf("page %s rows written = %v, want two, the last in space 30005", page, rows)
	}
	rows = nil
	for _, row := range r.rows["blogposts"] {
		if row["id"] == post {
			rows = append(rows, row)
		}
	}
	if len(rows) != 2 || rows[1]["space_key"] != "SP5" {
		t.Errorf("blog post %s rows written = %v, want two, the last in SP5", post, rows)
	}
}
