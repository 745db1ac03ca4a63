package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/spec"
)

// These tests drive the real runner against the simulator: paging must
// never stop early by accident, whatever page size the server picks.

// rows collects the rows and checkpoints a run writes.
type rows struct {
	mu  sync.Mutex
	ids []string
	cps []sink.Checkpoint
}

func (r *rows) Row(_ context.Context, row sink.Row) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, fmt.Sprint(row.Data["id"]))
	return nil
}

func (r *rows) Entity(context.Context, sink.Entity) error { return nil }

func (r *rows) Checkpoint(_ context.Context, cp sink.Checkpoint) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cps = append(r.cps, cp)
	return nil
}

// runStream runs a spec with one stream x (given as its YAML body) and a
// table x keyed by id against s.
func runStream(t *testing.T, s *Server, stream string, state map[string]map[string]json.RawMessage) (*rows, error) {
	t.Helper()
	src := "version: 1\nname: t\nhttp: {base_url: " + s.URL() + "}\nstreams:\n  x:\n" + stream + "\ntables:\n  x: {from: x, primary_key: [id]}\n"
	f, err := spec.Parse("spec.yaml", []byte(src), nil)
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	pool := fetch.NewPool(fetch.Options{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	r, err := runner.New(f, runner.Options{Pool: pool, State: state})
	if err != nil {
		t.Fatalf("runner: %v", err)
	}
	out := &rows{}
	_, err = r.Run(t.Context(), out)
	return out, err
}

func TestRunnerPagingLosesNothing(t *testing.T) {
	tests := []struct {
		name   string
		route  Route
		stream string
		want   []string // recorded requests
		header []string // "X-Offset X-Limit" of each request, when the paging is in headers
		rows   int      // rows written: ids 0..rows-1
	}{
		{
			// Jira: POST /search with startAt and maxResults in the body;
			// asked for 100, it returns 50, and says the total.
			name: "offset in body, server caps 100 to 50, stops at total",
			route: Route{Method: "POST", Path: "/rest/api/3/search", Items: numbered(120), Paginate: &Paging{
				Type: PageOffset, BodyField: "startAt", SizeParam: "maxResults", PageSize: 50, MaxSize: 50, Clamp: true,
				Envelope: "issues", Meta: map[string]string{"total": "total_items", "startAt": "offset", "maxResults": "page_size"}}},
			stream: `    request:
      method: POST
      path: /rest/api/3/search
      body: {jql: project = X}
    records: .issues[]
    paginate: {type: offset, param: startAt, in: body, size: 100, size_param: maxResults, total: .total}`,
			want: []string{
				`POST /rest/api/3/search {"jql":"project = X","maxResults":100,"startAt":0}`,
				`POST /rest/api/3/search {"jql":"project = X","maxResults":100,"startAt":50}`,
				`POST /rest/api/3/search {"jql":"project = X","maxResults":100,"startAt":100}`,
			},
			rows: 120,
		},
		{
			name:  "offset in query without size or total, server caps 100 to 30, stops on the empty page",
			route: Route{Path: "/items", Items: numbered(75), Paginate: &Paging{Type: PageOffset, PageSize: 30, MaxSize: 30, Clamp: true}},
			stream: `    request:
      path: /items
      query: {limit: 100}
    paginate: {type: offset, param: offset}`,
			want: []string{
				"GET /items?limit=100&offset=0",
				"GET /items?limit=100&offset=30",
				"GET /items?limit=100&offset=60",
				"GET /items?limit=100&offset=75",
			},
			rows: 75,
		},
		{
			// The server reads the size from the header too: were it sent
			// in the query, it would serve its default of 10, a short page.
			name:  "offset and size in headers",
			route: Route{Path: "/items", Items: numbered(45), Paginate: &Paging{Type: PageOffset, Header: "X-Offset", SizeParam: "X-Limit", PageSize: 10}},
			stream: `    request:
      path: /items
    paginate: {type: offset, param: X-Offset, in: header, size: 20, size_param: X-Limit}`,
			want:   []string{"GET /items", "GET /items", "GET /items"},
			header: []string{"0 20", "20 20", "40 20"},
			rows:   45,
		},
		{
			name:  "stop_when ends paging after the records of its page",
			route: Route{Path: "/items", Items: numbered(45), Paginate: &Paging{Type: PageCursor, Param: "c", PageSize: 10, TokenPath: "next", Envelope: "data"}},
			stream: `    request:
      path: /items
    records: .data[]
    paginate: {type: cursor, token: .next, param: c, stop_when: "page == 2"}`,
			want: []string{"GET /items", "GET /items?" + q("c", encodeToken(10))},
			rows: 20, // pages 1 and 2, whole
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startT(t, Fixture{Routes: []Route{tc.route}})
			out, err := runStream(t, s, tc.stream, nil)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			reqs := s.Requests()
			if diff := cmp.Diff(tc.want, describeAll(reqs)); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if tc.header != nil {
				var got []string
				for _, r := range reqs {
					got = append(got, r.Header.Get("X-Offset")+" "+r.Header.Get("X-Limit"))
				}
				if diff := cmp.Diff(tc.header, got); diff != "" {
					t.Errorf("paging headers (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(seq(0, tc.rows), out.ids); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if err := s.Err(); err != nil {
				t.Errorf("simulator: %v", err)
			}
		})
	}
}

// TestRunnerOffsetResume: a run resumed from the checkpoint of page 1 of a
// capped offset chain asks for exactly the pages left, with the offset a
// JSON number, and writes their rows.
func TestRunnerOffsetResume(t *testing.T) {
	s := startT(t, Fixture{Routes: []Route{{Method: "POST", Path: "/search", Items: numbered(120), Paginate: &Paging{
		Type: PageOffset, BodyField: "startAt", SizeParam: "maxResults", PageSize: 50, MaxSize: 50, Clamp: true,
		Envelope: "issues", Meta: map[string]string{"total": "total_items"}}}}})
	stream := `    request:
      method: POST
      path: /search
      body: {jql: x}
    records: .issues[]
    paginate: {type: offset, param: startAt, in: body, size: 100, size_param: maxResults, total: .total}`
	full, err := runStream(t, s, stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.cps) != 3 {
		t.Fatalf("%d checkpoints, want one per page (3)", len(full.cps))
	}
	before := len(s.Requests())
	resumed, err := runStream(t, s, stream, map[string]map[string]json.RawMessage{"x": {"": full.cps[0].Value}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`POST /search {"jql":"x","maxResults":100,"startAt":50}`, `POST /search {"jql":"x","maxResults":100,"startAt":100}`}
	if diff := cmp.Diff(want, describeAll(s.Requests()[before:])); diff != "" {
		t.Errorf("resumed requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(seq(50, 120), resumed.ids); diff != "" {
		t.Errorf("resumed rows (-want +got):\n%s", diff)
	}
}
