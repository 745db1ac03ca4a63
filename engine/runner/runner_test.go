package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/paginate"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/spec"
)

// collector records outputs per target, in arrival order.
type collector struct {
	mu       sync.Mutex
	rows     map[string][]map[string]any
	entities map[string][]map[string]any
}

func newCollector() *collector {
	return &collector{rows: map[string][]map[string]any{}, entities: map[string][]map[string]any{}}
}

func (c *collector) Row(_ context.Context, r sink.Row) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows[r.Table] = append(c.rows[r.Table], r.Data)
	return nil
}

func (c *collector) Entity(_ context.Context, e sink.Entity) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entities[e.Blueprint] = append(c.entities[e.Blueprint], e.Data)
	return nil
}

// field lists one field of every row of a table, in order.
func (c *collector) field(table, name string) []string {
	var out []string
	for _, r := range c.rows[table] {
		out = append(out, fmt.Sprint(r[name]))
	}
	return out
}

func parseSpec(src string) (*spec.File, error) { return spec.Parse("spec.yaml", []byte(src), nil) }

func mustSpec(t *testing.T, src string) *spec.File {
	t.Helper()
	f, err := spec.Parse("spec.yaml", []byte(src), nil)
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	return f
}

func runSpec(t *testing.T, f *spec.File, cfg map[string]any, out runner.Output) (*runner.Summary, error) {
	t.Helper()
	pool := fetch.NewPool(fetch.Options{Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	r, err := runner.New(f, runner.Options{Config: cfg, Pool: pool})
	if err != nil {
		t.Fatalf("runner: %v", err)
	}
	return r.Run(t.Context(), out)
}

const fanoutSpec = `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  concurrency: 4
streams:
  apps:
    request: {path: /apps}
  envs:
    for_each: apps
    request:
      path: /apps/${ parent.id }/envs
  res:
    for_each: envs
    request:
      path: /apps/${ parents.apps.id }/envs/${ parent.id }/res
      query:
        per_page: 2
    paginate: {type: link_header}
tables:
  res:
    from: res
    row: '{app: $apps.id, env: $parent.id, id, key: ($apps.id + "/" + $envs.id + "/" + .id)}'
`

func fanoutServer(t *testing.T, latency time.Duration) *apitest.Server {
	t.Helper()
	s := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/apps", Items: []any{map[string]any{"id": "a"}, map[string]any{"id": "b/c"}, map[string]any{"id": "d"}}},
		{Path: "/apps/{app}/envs", ItemsFunc: func(p map[string]string) []any {
			return []any{map[string]any{"id": "dev"}, map[string]any{"id": "prod"}}
		}},
		{Path: "/apps/{app}/envs/{env}/res", Latency: apitest.Duration{Duration: latency}, Paginate: &apitest.Paging{Type: "link", SizeParam: "per_page", Param: "page"},
			ItemsFunc: func(p map[string]string) []any {
				var out []any
				for i := range 5 {
					out = append(out, map[string]any{"id": fmt.Sprintf("r%d", i)})
				}
				return out
			}},
	}})
	t.Cleanup(s.Close)
	return s
}

func TestFanoutDeterministicAndComplete(t *testing.T) {
	f := mustSpec(t, fanoutSpec)
	var first []string
	for round := range 3 {
		s := fanoutServer(t, time.Duration(round)*time.Millisecond)
		out := newCollector()
		sum, err := runSpec(t, f, map[string]any{"url": s.URL()}, out)
		if err != nil {
			t.Fatal(err)
		}
		keys := out.field("res", "key")
		if len(keys) != 3*2*5 {
			t.Fatalf("got %d rows, want 30", len(keys))
		}
		if keys[0] != "a/dev/r0" || keys[29] != "d/prod/r4" {
			t.Errorf("order: first %s last %s", keys[0], keys[29])
		}
		if round == 0 {
			first = keys
		} else if diff := cmp.Diff(first, keys); diff != "" {
			t.Errorf("output order differs between runs (-first +now):\n%s", diff)
		}
		// An id holding "/" stays one path segment.
		if n := s.Count("GET", "/apps/b%2Fc/envs"); n != 1 {
			t.Errorf("GET /apps/b%%2Fc/envs: %d requests, want 1", n)
		}
		if peak := s.PeakConcurrency(); peak > 4 {
			t.Errorf("peak concurrency %d > limit 4", peak)
		}
		if !sum.Complete["res"] {
			t.Errorf("res not complete")
		}
		// 1 apps + 3 envs + 6 envs×3 pages of res.
		if got := len(s.Requests()); got != 1+3+6*3 {
			t.Errorf("%d requests, want %d", got, 1+3+6*3)
		}
	}
}

func TestPaginationKinds(t *testing.T) {
	items := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"id": i}
		}
		return out
	}
	tests := []struct {
		name     string
		route    apitest.Route
		stream   string
		requests int
	}{
		{
			name:  "cursor in query",
			route: apitest.Route{Path: "/x", Items: items(25), Paginate: &apitest.Paging{Type: "cursor", PageSize: 10, Param: "cursor", TokenPath: "next", Envelope: "data"}},
			stream: `
    request: {path: /x}
    records: .data[]
    paginate: {type: cursor, token: .next, param: cursor}`,
			requests: 3,
		},
		{
			name:  "cursor in POST body",
			route: apitest.Route{Method: "POST", Path: "/x", Items: items(25), Paginate: &apitest.Paging{Type: "cursor", PageSize: 10, BodyField: "page.after", TokenPath: "meta.next", Envelope: "items"}},
			stream: `
    request:
      method: POST
      path: /x
      body: {filter: {a: 1}}
    records: .items[]
    paginate: {type: cursor, token: .meta.next, param: page.after, in: body}`,
			requests: 3,
		},
		{
			name:  "cursor in header",
			route: apitest.Route{Path: "/x", Items: items(25), Paginate: &apitest.Paging{Type: "cursor", PageSize: 10, Header: "X-Cursor", TokenPath: "next", Envelope: "data"}},
			stream: `
    request: {path: /x}
    records: .data[]
    paginate: {type: cursor, token: .next, param: X-Cursor, in: header}`,
			requests: 3,
		},
		{
			name:  "next url",
			route: apitest.Route{Path: "/x", Items: items(25), Paginate: &apitest.Paging{Type: "next_url", PageSize: 10, NextPath: "links.next", Envelope: "results"}},
			stream: `
    request: {path: /x}
    records: .results[]
    paginate: {type: next_url, url: .links.next}`,
			requests: 3,
		},
		{
			name:  "relative next url",
			route: apitest.Route{Path: "/x", Items: items(25), Paginate: &apitest.Paging{Type: "next_url", PageSize: 10, NextPath: "next", Envelope: "results", RelativeURL: true}},
			stream: `
    request: {path: /x}
    records: .results[]
    paginate: {type: next_url, url: .next}`,
			requests: 3,
		},
		{
			name:  "link header",
			route: apitest.Route{Path: "/x", Items: items(25), Paginate: &apitest.Paging{Type: "link", PageSize: 10, SizeParam: "per_page", Param: "page"}},
			stream: `
    request:
      path: /x
      query: {per_page: 10}
    paginate: {type: link_header}`,
			requests: 3,
		},
		{
			name:  "page number with total pages",
			route: apitest.Route{Path: "/x", Items: items(25), Paginate: &apitest.Paging{Type: "page", PageSize: 10, Param: "pageIndex", Start: 0, Envelope: "data.content", Meta: map[string]string{"data.totalPages": "total_pages"}}},
			stream: `
    request: {path: /x}
    records: .data.content[]
    paginate: {type: page, param: pageIndex, start: 0, total_pages: .data.totalPages}`,
			requests: 3,
		},
		{
			name:  "page number until an empty page",
			route: apitest.Route{Path: "/x", Items: items(25), Paginate: &apitest.Paging{Type: "page", PageSize: 10, Param: "page", Start: 1}},
			stream: `
    request: {path: /x}
    paginate: {type: page, param: page}`,
			requests: 4,
		},
		{
			name:  "offset and limit",
			route: apitest.Route{Path: "/x", Items: items(25), Paginate: &apitest.Paging{Type: "offset", Param: "offset", SizeParam: "limit"}},
			stream: `
    request: {path: /x}
    paginate: {type: offset, param: offset, size: 10, size_param: limit}`,
			requests: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := apitest.New(apitest.Fixture{Routes: []apitest.Route{tc.route}})
			defer s.Close()
			f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL()+`}
streams:
  x:`+tc.stream+`
tables:
  x: {from: x, primary_key: [id]}
`)
			out := newCollector()
			if _, err := runSpec(t, f, nil, out); err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range 25 {
				want = append(want, fmt.Sprint(i))
			}
			if diff := cmp.Diff(want, out.field("x", "id")); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if got := len(s.Requests()); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if err := s.Err(); err != nil {
				t.Errorf("simulator: %v", err)
			}
		})
	}
}

func TestRepeatedTokenFailsTheChain(t *testing.T) {
	s := apitest.New(apitest.Fixture{Routes: []apitest.Route{{Path: "/x", Generate: &apitest.Generate{Count: 100, Item: map[string]any{"id": "{i}"}},
		Paginate: &apitest.Paging{Type: "cursor", PageSize: 10, Param: "c", TokenPath: "next", Envelope: "data", RepeatToken: true}}}})
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL()+`}
streams:
  x:
    request: {path: /x}
    records: .data[]
    paginate: {type: cursor, token: .next, param: c}
`)
	sum, err := runSpec(t, f, nil, newCollector())
	if !errors.Is(err, paginate.ErrNoProgress) {
		t.Fatalf("err = %v, want ErrNoProgress", err)
	}
	if !strings.Contains(err.Error(), "stream x") || !strings.Contains(err.Error(), "page 2") {
		t.Errorf("error does not name the stream and page: %v", err)
	}
	if sum.Complete["x"] {
		t.Error("x reported complete")
	}
	// Page 2 hands back the token page 1 gave: the chain stops there.
	if got := len(s.Requests()); got != 2 {
		t.Errorf("%d requests, want 2 (stop at the first repeat)", got)
	}
}

func TestFailingChildIsReportedAndOthersContinue(t *testing.T) {
	s := apitest.New(apitest.Fixture{
		Auth: &apitest.AuthCheck{Header: "Authorization", Value: "Bearer s3cret"},
		Routes: []apitest.Route{
			{Path: "/apps", Items: []any{map[string]any{"id": "a"}, map[string]any{"id": "bad"}, map[string]any{"id": "c"}}},
			{Path: "/apps/bad/envs", Status: 404, Body: map[string]any{"error": "API-404", "message": "no such app"}},
			{Path: "/apps/{app}/envs", Items: []any{map[string]any{"id": "dev"}}},
		}})
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  token: {secret: true, required: true}
http:
  base_url: `+s.URL()+`
  auth:
    type: bearer
    token: ${ config.token }
streams:
  apps:
    request: {path: /apps}
  envs:
    for_each: apps
    request:
      path: /apps/${ parent.id }/envs
tables:
  envs: {from: envs, row: '{app: $parent.id, id}'}
`)
	out := newCollector()
	sum, err := runSpec(t, f, map[string]any{"token": "s3cret"}, out)
	var re *runner.RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 {
		t.Fatalf("err = %v, want one failure", err)
	}
	msg := err.Error()
	for _, want := range []string{"stream envs", "apps[id=bad]", "page 1", "/apps/bad/envs", "404", "no such app"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("error leaks the token: %s", msg)
	}
	if diff := cmp.Diff([]string{"a", "c"}, out.field("envs", "app")); diff != "" {
		t.Errorf("rows of healthy parents (-want +got):\n%s", diff)
	}
	if sum.Complete["envs"] || !sum.Complete["apps"] {
		t.Errorf("complete = %v, want apps only", sum.Complete)
	}
}

func TestRetriesAndBadBodies(t *testing.T) {
	s := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/ok", Items: []any{map[string]any{"id": 1}}, Faults: []apitest.Fault{{Status: 429}, {Status: 503}}},
		{Path: "/html", Faults: []apitest.Fault{{NonJSON: true}, {NonJSON: true}}, Items: []any{1}},
	}})
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL()+`}
streams:
  ok:
    request: {path: /ok}
  html:
    request: {path: /html}
tables:
  ok: {from: ok}
  html: {from: html, row: '{v: .}'}
`)
	out := newCollector()
	sum, err := runSpec(t, f, nil, out)
	if err == nil || !strings.Contains(err.Error(), "stream html") || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("err = %v, want the html stream's invalid JSON", err)
	}
	if len(out.rows["ok"]) != 1 {
		t.Errorf("ok rows = %d, want 1 after two retried faults", len(out.rows["ok"]))
	}
	for _, sn := range sum.Streams {
		if sn.Stream == "ok" && sn.Retries != 2 {
			t.Errorf("ok retries = %d, want 2", sn.Retries)
		}
	}
}

func TestBatchFanoutAndWhen(t *testing.T) {
	s := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/envs", Items: []any{
			map[string]any{"id": "dev", "deployed": true},
			map[string]any{"id": "new", "deployed": false},
		}},
		{Path: "/envs/{env}/resources", ItemsFunc: func(p map[string]string) []any {
			return []any{map[string]any{"id": p["env"] + "-db", "type": "postgres"}, map[string]any{"id": p["env"] + "-dns", "type": "dns"}}
		}},
		{Method: "POST", Path: "/envs/{env}/graph", Echo: true},
	}})
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL()+`}
streams:
  envs:
    request: {path: /envs}
  resources:
    for_each: envs
    request:
      path: /envs/${ parent.id }/resources
  graph:
    for_each: envs
    batch: resources
    when: parent.deployed
    request:
      method: POST
      path: /envs/${ parent.id }/graph
      body_jq: '[$batch[] | {id, type}]'
    records: .   # the echo answers one object
tables:
  graph: {from: graph, row: '{env: $parent.id, body: .body}'}
`)
	out := newCollector()
	if _, err := runSpec(t, f, nil, out); err != nil {
		t.Fatal(err)
	}
	rows := out.rows["graph"]
	if len(rows) != 1 || rows[0]["env"] != "dev" {
		t.Fatalf("graph rows = %v, want one for dev (new is skipped by when)", rows)
	}
	want := []any{map[string]any{"id": "dev-db", "type": "postgres"}, map[string]any{"id": "dev-dns", "type": "dns"}}
	if diff := cmp.Diff(want, rows[0]["body"]); diff != "" {
		t.Errorf("batch body (-want +got):\n%s", diff)
	}
	if n := s.Count("POST", "/envs/new/graph"); n != 0 {
		t.Errorf("when=false still sent %d requests", n)
	}
}

func TestCancelStopsPromptly(t *testing.T) {
	s := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/x", Generate: &apitest.Generate{Count: 1000, Item: map[string]any{"id": "{i}"}},
			Latency:  apitest.Duration{Duration: 50 * time.Millisecond},
			Paginate: &apitest.Paging{Type: "page", PageSize: 1, Param: "page", Start: 1}},
	}})
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL()+`}
streams:
  x:
    request: {path: /x}
    paginate: {type: page, param: page}
tables:
  x: {from: x}
`)
	pool := fetch.NewPool(fetch.Options{})
	r, err := runner.New(f, runner.Options{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := &cancelAfter{n: 3, cancel: cancel}
	_, err = r.Run(ctx, out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := len(s.Requests()); got > 10 {
		t.Errorf("%d requests after cancelling at the 3rd record; want the run to stop", got)
	}
}

type cancelAfter struct {
	mu     sync.Mutex
	n      int
	cancel func()
}

func (c *cancelAfter) Row(context.Context, sink.Row) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n == 0 {
		c.cancel()
	}
	return nil
}
func (c *cancelAfter) Entity(context.Context, sink.Entity) error { return nil }

func TestStreamSelection(t *testing.T) {
	s := fanoutServer(t, 0)
	f := mustSpec(t, fanoutSpec+`  envs:
    from: envs
    row: '{app: $parent.id, id}'
`)
	pool := fetch.NewPool(fetch.Options{})
	r, err := runner.New(f, runner.Options{Config: map[string]any{"url": s.URL()}, Pool: pool, Streams: []string{"envs"}})
	if err != nil {
		t.Fatal(err)
	}
	out := newCollector()
	if _, err := r.Run(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	// envs is produced; apps is fetched to drive it; res is not fetched.
	if len(out.rows["envs"]) != 6 || len(out.rows["res"]) != 0 {
		t.Errorf("rows: envs %d (want 6), res %d (want 0)", len(out.rows["envs"]), len(out.rows["res"]))
	}
	if n := s.Count("GET", "/apps/{app}/envs/{env}/res"); n != 0 {
		t.Errorf("res fetched %d times", n)
	}
	if _, err := runner.New(f, runner.Options{Pool: pool, Streams: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `unknown stream "nope"`) {
		t.Errorf("unknown stream: err = %v", err)
	}
}
