package runner_test

import (
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
)

// A batch stream is not sent for a parent whose batch is empty: with no
// item to ask about, a request built from the list (ids: []) would lose
// its filter, and an API that reads an empty filter as none answers for
// every item, written under this parent. TestRegressEmptyBatch's spec
// says so with `when: len(batch) > 0`; no spec needs to.
func TestEmptyBatchNotSent(t *testing.T) {
	s := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/envs", Items: []any{map[string]any{"id": "dev"}, map[string]any{"id": "empty"}}},
		{Path: "/envs/{env}/resources", ItemsFunc: func(p map[string]string) []any {
			if p["env"] == "empty" {
				return []any{}
			}
			return []any{map[string]any{"id": p["env"] + "-db"}}
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
    request:
      method: POST
      path: /envs/${ parent.id }/graph
      body_jq: '{ids: [$batch[] | .id]}'
    records: .
tables:
  graph: {from: graph, row: '{env: $parent.id, body: .body}'}
`)
	out := newCollector()
	sum, err := runSpec(t, f, nil, out)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := s.Count("POST", "/envs/empty/graph"); n != 0 {
		t.Errorf("%d requests for the empty batch, want none", n)
	}
	if n := s.Count("POST", "/envs/dev/graph"); n != 1 {
		t.Errorf("%d requests for dev's batch, want 1", n)
	}
	if len(out.rows["graph"]) != 1 || !sum.Complete["graph"] {
		t.Errorf("graph rows %v, complete %v; want dev's one row, the stream complete", out.rows["graph"], sum.Complete["graph"])
	}
}
