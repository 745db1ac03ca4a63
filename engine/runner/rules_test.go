package runner_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
)

// jsonAPI serves a fixed JSON body per path (404 otherwise) and counts the
// requests per path.
func jsonAPI(t *testing.T, bodies map[string]string) (*httptest.Server, func(path string) int) {
	t.Helper()
	var mu sync.Mutex
	count := map[string]int{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count[r.URL.Path]++
		mu.Unlock()
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.Error(w, "nope", http.StatusNotFound)
			return
		}
		w.Write([]byte(b))
	}))
	t.Cleanup(s.Close)
	return s, func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return count[path]
	}
}

// TestFailedParentBlocksChildDeletion: when a parent chain fails, its
// children are missing records: the children's tables and blueprints are
// not complete, while a sibling stream's are.
func TestFailedParentBlocksChildDeletion(t *testing.T) {
	s, _ := jsonAPI(t, map[string]string{
		"/apps":                `[{"id": "a"}, {"id": "b"}]`,
		"/apps/a/envs":         `[{"id": "dev"}]`,
		"/other":               `[{"id": 1}]`,
		"/apps/a/envs/dev/res": `[{"id": "r1"}]`,
	})
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL+`, retry: {attempts: 1}}
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
  other:
    request: {path: /other}
tables:
  apps: {from: apps, primary_key: [id], mode: replace}
  res: {from: res, primary_key: [id], mode: replace}
  other: {from: other, primary_key: [id], mode: replace}
port:
  entities:
    - {blueprint: res, from: res, identifier: .id}
`)
	sum, err := runSpec(t, f, nil, newCollector())
	if err == nil || !strings.Contains(err.Error(), "1 failed request chain") {
		t.Fatalf("err = %v, want the envs of b to fail (only)", err)
	}
	want := map[string]bool{"apps": true, "res": false, "other": true}
	for table, ok := range want {
		if sum.Tables[table] != ok {
			t.Errorf("table %s complete = %v, want %v (all: %v)", table, sum.Tables[table], ok, sum.Tables)
		}
	}
	if sum.Blueprints["res"] {
		t.Errorf("blueprint res complete under a failed parent")
	}
}

// TestBatchNotSentAfterItsSourceFailed: a batch stream's request for a
// parent whose batch source failed would carry a partial list: it is not
// sent, and the skip is a failure.
func TestBatchNotSentAfterItsSourceFailed(t *testing.T) {
	s, count := jsonAPI(t, map[string]string{
		"/envs":               `[{"id": "dev"}, {"id": "prod"}]`,
		"/envs/dev/resources": `[{"id": "db"}]`,
		"/envs/dev/graph":     `{"nodes": []}`,
		"/envs/prod/graph":    `{"nodes": []}`,
	})
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL+`, retry: {attempts: 1}}
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
    request:
      method: POST
      path: /envs/${ parent.id }/graph
      body_jq: '[$batch[] | .id]'
    records: .nodes[]
`)
	_, err := runSpec(t, f, nil, newCollector())
	var re *runner.RunError
	if err == nil || !asRunError(err, &re) || len(re.Failures) != 2 {
		t.Fatalf("err = %v, want prod's resources and prod's graph", err)
	}
	if !strings.Contains(re.Failures[1].Error(), "stream graph (envs[id=prod]): skipped: batch stream resources failed for this parent") {
		t.Errorf("failures = %v", re.Failures)
	}
	if n := count("/envs/prod/graph"); n != 0 {
		t.Errorf("prod's graph was asked %d times with a partial batch", n)
	}
	if n := count("/envs/dev/graph"); n != 1 {
		t.Errorf("dev's graph was asked %d times, want 1", n)
	}
}

// TestBatchNotSentAfterItsSourceSkipped: a batch source's request that a
// response rule skipped read records no one knows: the batch stream's
// request for that parent would carry a partial list (here an empty one,
// which the API answers as "no resources") and its answer would be written
// as if whole. It is not sent, and the report names it as skipped.
func TestBatchNotSentAfterItsSourceSkipped(t *testing.T) {
	s, count := jsonAPI(t, map[string]string{
		"/envs":               `[{"id": "dev"}, {"id": "prod"}]`,
		"/envs/dev/resources": `[{"id": "db"}]`,
		"/envs/dev/graph":     `{"nodes": [{"id": "db"}]}`,
		"/envs/prod/graph":    `{"nodes": []}`,
	})
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL+`, retry: {attempts: 1}}
streams:
  envs:
    request: {path: /envs}
  resources:
    for_each: envs
    http: {rules: [{status: 404, action: skip}]}
    request:
      path: /envs/${ parent.id }/resources
  graph:
    for_each: envs
    batch: resources
    request:
      method: POST
      path: /envs/${ parent.id }/graph
      body_jq: '[$batch[] | .id]'
    records: .nodes[]
tables:
  graph: {from: graph, row: '{env: $parent.id, id}'}
`)
	out := newCollector()
	sum, err := runSpec(t, f, nil, out)
	if err != nil {
		t.Fatalf("run: %v (a skip is not a failure)", err)
	}
	if n := count("/envs/prod/graph"); n != 0 {
		t.Errorf("prod's graph was asked %d times with a partial batch", n)
	}
	if n := count("/envs/dev/graph"); n != 1 {
		t.Errorf("dev's graph was asked %d times, want 1", n)
	}
	if got := out.field("graph", "env"); len(got) != 1 || got[0] != "dev" {
		t.Errorf("graph rows for envs %v, want dev's only", got)
	}
	var named bool
	for _, sk := range sum.Skips {
		if sk.Stream == "graph" && sk.Parents == "envs[id=prod]" && sk.Page == 1 && strings.Contains(sk.Reason, "resources") {
			named = true
		}
	}
	if !named {
		t.Errorf("skips = %+v, want graph for envs[id=prod] named", sum.Skips)
	}
	if sn := snapshot(sum, "graph"); sn.Skipped != 1 {
		t.Errorf("graph skipped = %d, want 1", sn.Skipped)
	}
	if sum.Complete["graph"] || sum.Tables["graph"] {
		t.Errorf("graph complete = %v, table %v, want neither", sum.Complete["graph"], sum.Tables["graph"])
	}
}

func asRunError(err error, re **runner.RunError) bool {
	r, ok := err.(*runner.RunError)
	*re = r
	return ok
}

// TestNumericIncrementalCursorKeepsTheLargest: numeric cursors compare as
// numbers (30 > 7 although "30" < "7" as text), and the largest is saved.
func TestNumericIncrementalCursorKeepsTheLargest(t *testing.T) {
	s, _ := jsonAPI(t, map[string]string{"/events": `[{"id": 1, "seq": 5}, {"id": 2, "seq": 30}, {"id": 3, "seq": 7}]`})
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL+`}
streams:
  events:
    incremental: {cursor: .seq, initial: 0}
    request:
      path: /events
      query: {after: '${ cursor }'}
tables:
  events: {from: events, primary_key: [id]}
`)
	out := &checkpoints{collector: *newCollector()}
	if _, err := runSpec(t, f, nil, out); err != nil {
		t.Fatal(err)
	}
	var saved string
	for _, cp := range out.cps {
		if cp.Stream == "events"+runner.WatermarkSuffix {
			saved = string(cp.Value)
		}
	}
	if saved != "30" {
		t.Errorf("saved cursor %q, want 30", saved)
	}
}

// TestIDlessParentsHaveTheirOwnPartitions: parents without an id field are
// told apart by their content, so each child chain has its own checkpoint
// (sharing one would make a resumed run skip all but one).
func TestIDlessParentsHaveTheirOwnPartitions(t *testing.T) {
	s, _ := jsonAPI(t, map[string]string{
		"/teams":        `[{"slug": "red"}, {"slug": "blue"}]`,
		"/teams/red/m":  `[{"id": 1}]`,
		"/teams/blue/m": `[{"id": 2}]`,
	})
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL+`}
streams:
  teams:
    request: {path: /teams}
  members:
    for_each: teams
    request:
      path: /teams/${ parent.slug }/m
tables:
  members: {from: members, primary_key: [id]}
`)
	out := &checkpoints{collector: *newCollector()}
	if _, err := runSpec(t, f, nil, out); err != nil {
		t.Fatal(err)
	}
	parts := map[string]bool{}
	for _, cp := range out.cps {
		if cp.Stream == "members" {
			parts[cp.Partition] = true
		}
	}
	if len(parts) != 2 {
		t.Errorf("member chains checkpointed under %d partitions (%v), want 2", len(parts), parts)
	}
}

// TestStreamKeyNamesPartitions: a stream's `key` names its records in
// partitions and messages.
func TestStreamKeyNamesPartitions(t *testing.T) {
	s, _ := jsonAPI(t, map[string]string{
		"/teams":        `[{"slug": "red", "id": "same"}, {"slug": "blue", "id": "same"}]`,
		"/teams/red/m":  `[{"id": 1}]`,
		"/teams/blue/m": `not json`,
	})
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL+`, retry: {attempts: 1}}
streams:
  teams:
    key: .slug
    request: {path: /teams}
  members:
    for_each: teams
    request:
      path: /teams/${ parent.slug }/m
tables:
  members: {from: members, primary_key: [id]}
`)
	out := &checkpoints{collector: *newCollector()}
	_, err := runSpec(t, f, nil, out)
	if err == nil || !strings.Contains(err.Error(), "stream members (teams[key=blue])") {
		t.Errorf("err = %v, want the chain named by its key", err)
	}
	for _, cp := range out.cps {
		if cp.Stream == "members" && cp.Partition != "teams=red" {
			t.Errorf("partition %q, want teams=red", cp.Partition)
		}
	}
}

// cancelOnRow cancels the run at its nth row and counts what the runner
// hands over afterwards.
type cancelOnRow struct {
	n      int32
	rows   atomic.Int32
	after  atomic.Int32
	cancel context.CancelFunc
}

func (c *cancelOnRow) Row(ctx context.Context, r sink.Row) error {
	if c.rows.Add(1) > c.n {
		c.after.Add(1)
	} else if c.rows.Load() == c.n {
		c.cancel()
	}
	return nil
}
func (c *cancelOnRow) Entity(context.Context, sink.Entity) error { return nil }
func (c *cancelOnRow) Checkpoint(ctx context.Context, cp sink.Checkpoint) error {
	if c.rows.Load() >= c.n {
		c.after.Add(1)
	}
	return nil
}

// TestReleaseStopsAtCancellation: once the run is cancelled, the releaser
// hands over no more rows and, above all, no checkpoint that could cover
// rows not written.
func TestReleaseStopsAtCancellation(t *testing.T) {
	var items []string
	for i := range 50 {
		items = append(items, fmt.Sprintf(`{"id": %d}`, i))
	}
	body := "[" + strings.Join(items, ",") + "]"
	s, _ := jsonAPI(t, map[string]string{"/a": body, "/b": body})
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL+`}
streams:
  a:
    request: {path: /a}
  b:
    for_each: a
    request: {path: /b}
tables:
  b: {from: b, row: '{p: $parent.id, id}', primary_key: [p, id]}
`)
	ctx, cancel := context.WithCancel(t.Context())
	out := &cancelOnRow{n: 10, cancel: cancel}
	pool := fetch.NewPool(fetch.Options{Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	r, err := runner.New(f, runner.Options{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx, out); err == nil {
		t.Fatal("a cancelled run reported success")
	}
	if n := out.after.Load(); n != 0 {
		t.Errorf("%d rows or checkpoints handed over after the cancellation", n)
	}
}
