package runner_test

import (
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
)

// emptyBatchAPI lists two envs, one of which has no resources, and echoes
// the graph request a batch of them makes.
func emptyBatchAPI() *apitest.Server {
	return apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/envs", Items: []any{map[string]any{"id": "dev"}, map[string]any{"id": "empty"}}},
		{Path: "/envs/{env}/resources", ItemsFunc: func(p map[string]string) []any {
			if p["env"] == "empty" {
				return []any{}
			}
			return []any{map[string]any{"id": p["env"] + "-db"}}
		}},
		{Method: "POST", Path: "/envs/{env}/graph", Echo: true},
	}})
}

// emptyBatchSpec reads emptyBatchAPI with a graph stream batched over the
// resources, its when (if any) given.
func emptyBatchSpec(url, when string) string {
	return `
version: 1
name: t
http: {base_url: ` + url + `}
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
` + when + `    request:
      method: POST
      path: /envs/${ parent.id }/graph
      body_jq: '{ids: [$batch[] | .id]}'
    records: .   # the echo answers one object
tables:
  graph: {from: graph, row: '{env: $parent.id, body: .body}'}
`
}

func TestRegressEmptyBatch(t *testing.T) {
	s := emptyBatchAPI()
	defer s.Close()
	f := mustSpec(t, emptyBatchSpec(s.URL(), "    when: len(batch) > 0\n"))
	out := newCollector()
	sum, err := runSpec(t, f, nil, out)
	t.Logf("err=%v complete=%v rows=%v", err, sum.Complete, out.rows["graph"])
	if err != nil {
		t.Errorf("a parent with no batch records failed the run: %v", err)
	}
}
