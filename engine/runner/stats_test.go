package runner_test

import (
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
)

// TestStatsChainsAndAttempts: each stream counts its chains (one per parent
// record) and marks itself done; the attempts of a chain that failed
// without an answer (connection dropped every time) count as requests and
// retries, like those of one that got an answer in the end.
func TestStatsChainsAndAttempts(t *testing.T) {
	drops := make([]apitest.Fault, 10)
	for i := range drops {
		drops[i] = apitest.Fault{Truncate: true}
	}
	s := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/apps", Items: []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}, map[string]any{"id": "c"}}},
		{Path: "/apps/a/envs", Faults: []apitest.Fault{{Status: 503}, {Status: 503}}, Items: []any{map[string]any{"id": "x"}}},
		{Path: "/apps/b/envs", Faults: drops, Items: []any{map[string]any{"id": "y"}}},
		{Path: "/apps/c/envs", Items: []any{}},
	}})
	t.Cleanup(s.Close)
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 3}
streams:
  apps:
    request: {path: /apps}
  envs:
    for_each: apps
    request:
      path: /apps/${ parent.id }/envs
tables:
  envs: {from: envs}
`)
	sum, err := runSpec(t, f, map[string]any{"url": s.URL()}, newCollector())
	if err == nil {
		t.Fatal("run: no error although app b's envs always fail")
	}
	got := map[string][4]int64{}
	for _, sn := range sum.Streams {
		if !sn.Done {
			t.Errorf("stream %s not done after the run", sn.Stream)
		}
		got[sn.Stream] = [4]int64{sn.Chains, sn.ChainsDone, sn.Requests, sn.Retries}
	}
	// envs: a 1+2 retries, b 1+2 retries (then fails), c 1.
	want := map[string][4]int64{"apps": {1, 1, 1, 0}, "envs": {3, 3, 7, 4}}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("stream %s [chains done requests retries] = %v, want %v", k, got[k], w)
		}
	}
}
