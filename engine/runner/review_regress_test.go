package runner_test

import (
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
)

func TestRegressEmptyBatch(t *testing.T) {
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
    when: len(batch) > 0
    request:
      method: POST
      path: /envs/${ parent.id }/graph
      body_jq: '[$batch[] | {id}]'
    records: .   # the echo answers one object
tables:
  graph: {from: graph, row: '{env: $parent.id, body: .body}'}
`)
	out := newCollector()
	sum, err := runSpec(t, f, nil, out)
	t.Logf("err=%v complete=%v rows=%v", err, sum.Complete, out.rows["graph"])
	if err != nil {
		t.Errorf("a parent with no batch records failed the run: %v", err)
	}
}
