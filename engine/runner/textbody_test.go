package runner_test

import (
	"encoding/json"
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

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/google/go-cmp/cmp"
)

// aqlLike answers a text query that ends with .offset(N).limit(M), as
// Artifactory's AQL does: the items of repository repo from N, at most M
// (capped at 4), with the query's text kept for the test.
type aqlLike struct {
	mu      sync.Mutex
	bodies  []string
	types   []string
	items   map[string]int // repo -> items
	pattern *regexp.Regexp
}

func (s *aqlLike) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	s.types = append(s.types, r.Header.Get("Content-Type"))
	s.mu.Unlock()
	m := s.pattern.FindStringSubmatch(string(b))
	if m == nil {
		http.Error(w, `{"errors":[{"status":400,"message":"bad query"}]}`, http.StatusBadRequest)
		return
	}
	offset, _ := strconv.Atoi(m[2])
	limit, _ := strconv.Atoi(m[3])
	limit = min(limit, 4)
	n := s.items[m[1]]
	out := []any{}
	for i := offset; i < min(offset+limit, n); i++ {
		out = append(out, map[string]any{"repo": m[1], "name": fmt.Sprintf("%s-%d", m[1], i)})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"results": out})
}

// A text body (body_format: text) is sent as it is, as text/plain, and
// offset paging in: body gives the page's values to its template as
// paging.<param> (paging.limit for size_param): each page's request
// carries its own offset, and every item of every repository is read
// once, a short page (the server caps limit at 4) not taken for the end.
func TestTextBodyPaging(t *testing.T) {
	sim := &aqlLike{items: map[string]int{"libs": 10, "docker": 0, "npm": 4},
		pattern: regexp.MustCompile(`^items\.find\(\{"repo":"([a-z]+)"\}\)\.sort\(\{"\$asc":\["name"\]\}\)\.offset\((\d+)\)\.limit\((\d+)\)$`)}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  repos:
    partitions: {values: [libs, docker, npm]}
  items:
    for_each: repos
    request:
      method: POST
      path: /api/search/aql
      body_format: text
      body: 'items.find({"repo":"${ parent.value }"}).sort({"$asc":["name"]}).offset(${ paging.offset }).limit(${ paging.limit })'
    records: .results[]
    key: .name
    paginate: {type: offset, param: offset, in: body, size: 10, size_param: limit, stop_when: records == 0}
tables:
  items:
    from: items
    primary_key: [name]
    row: '{name, repo}'
`)
	out := newCollector()
	if _, err := runSpec(t, f, map[string]any{"url": srv.URL}, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	var want []string
	for _, repo := range []string{"docker", "libs", "npm"} {
		for i := range sim.items[repo] {
			want = append(want, fmt.Sprintf("%s-%d", repo, i))
		}
	}
	if d := cmp.Diff(want, sortedCopy(out.field("items", "name"))); d != "" {
		t.Errorf("items (-want +got):\n%s", d)
	}
	sim.mu.Lock()
	defer sim.mu.Unlock()
	libs := []string{}
	for _, b := range sim.bodies {
		if m := sim.pattern.FindStringSubmatch(b); m != nil && m[1] == "libs" {
			libs = append(libs, m[2]+"/"+m[3])
		}
	}
	// Offsets move by the items served (4 of the 10 asked), to the
	// empty page that ends the list.
	if d := cmp.Diff([]string{"0/10", "4/10", "8/10", "10/10"}, libs); d != "" {
		t.Errorf("libs' requests offset/limit (-want +got):\n%s", d)
	}
	for i, ct := range sim.types {
		if ct != "text/plain" {
			t.Errorf("request %d: Content-Type %q, want text/plain", i, ct)
		}
	}
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

// A text body chain resumed from a checkpoint sends the request the
// interrupted chain would have sent next: the saved offset rendered into
// the body, not the first page's again.
func TestTextBodyResume(t *testing.T) {
	sim := &aqlLike{items: map[string]int{"libs": 10},
		pattern: regexp.MustCompile(`^items\.find\(\{"repo":"([a-z]+)"\}\)\.offset\((\d+)\)\.limit\((\d+)\)$`)}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+srv.URL+`}
streams:
  items:
    request:
      method: POST
      path: /aql
      body_format: text
      body: 'items.find({"repo":"libs"}).offset(${ paging.offset }).limit(4)'
    records: .results[]
    key: .name
    paginate: {type: offset, param: offset, in: body}
tables:
  items: {from: items, primary_key: [name]}
`)
	state := map[string]map[string]json.RawMessage{"items": {"": json.RawMessage(`{"pages": 2, "next": {"n": 8}}`)}}
	r, err := runner.New(f, runner.Options{Pool: fetch.NewPool(fetch.Options{}), State: state})
	if err != nil {
		t.Fatal(err)
	}
	out := &checkpoints{collector: *newCollector()}
	if _, err := r.Run(t.Context(), out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if d := cmp.Diff([]string{"libs-8", "libs-9"}, sortedCopy(out.field("items", "name"))); d != "" {
		t.Errorf("items after the resume (-want +got):\n%s", d)
	}
	sim.mu.Lock()
	defer sim.mu.Unlock()
	if len(sim.bodies) == 0 || !strings.HasSuffix(sim.bodies[0], ".offset(8).limit(4)") {
		t.Errorf("the resumed chain's first body = %q, want offset 8", sim.bodies)
	}
}

// A cursor in a text body: paging.<param> is null on the first request
// (rendered as nothing), then each token the server gave.
func TestTextBodyCursor(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		next := map[string]any{"query x after ": "t1", "query x after t1": "t2"}[string(b)]
		_ = json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"id": string(b)}}, "next": next})
	}))
	defer srv.Close()
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+srv.URL+`}
streams:
  items:
    request:
      method: POST
      path: /q
      body_format: text
      body: 'query x after ${ paging.after }'
    records: .items[]
    paginate: {type: cursor, token: .next, param: after, in: body}
tables:
  items: {from: items, primary_key: [id]}
`)
	if _, err := runSpec(t, f, nil, newCollector()); err != nil {
		t.Fatalf("run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if d := cmp.Diff([]string{"query x after ", "query x after t1", "query x after t2"}, bodies); d != "" {
		t.Errorf("bodies (-want +got):\n%s", d)
	}
}

// A cursor's token goes into a text body as the server wrote it: a string
// token raw (nothing a query string or JSON would escape is escaped), a
// numeric one digit for digit, as in a query or a JSON body. Read as a
// float64, 1.50 went out as 1.5 and 1700000000.123456789 as
// 1700000000.1234567, a position the server never gave (rounded down it
// asks again; rounded up, what lies between is skipped).
func TestTextBodyTokenExact(t *testing.T) {
	tokens := []string{`"a+b/c==&x<y>é"`, `1.50`, `1700000000.123456789`, `0.29999999999999999`, `12345678901234567890123`}
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		n := len(bodies)
		mu.Unlock()
		next := "null"
		if n <= len(tokens) {
			next = tokens[n-1]
		}
		fmt.Fprintf(w, `{"items":[{"id":%d}],"next":%s}`, n, next)
	}))
	defer srv.Close()
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+srv.URL+`}
streams:
  items:
    request:
      method: POST
      path: /q
      body_format: text
      body: 'after ${ paging.after }'
    records: .items[]
    paginate: {type: cursor, token: .next, param: after, in: body}
tables:
  items: {from: items, primary_key: [id]}
`)
	out := newCollector()
	if _, err := runSpec(t, f, nil, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	want := []string{"after "}
	for _, tok := range tokens {
		want = append(want, "after "+strings.Trim(tok, `"`))
	}
	mu.Lock()
	defer mu.Unlock()
	if d := cmp.Diff(want, bodies); d != "" {
		t.Errorf("bodies (-want +got):\n%s", d)
	}
	if n := len(out.rows["items"]); n != len(tokens)+1 {
		t.Errorf("%d items written, want %d", n, len(tokens)+1)
	}
}
