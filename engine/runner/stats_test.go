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

// TestStatsDriverReadAgainCountsOnce: a stream read again in a later stage,
// only to drive children that read a lookup, sends its requests again
// (counted: they were sent), but its records, chains and skipped parents
// are the API's once: counted twice, the summary showed more records than
// outputs for a stream that lost none, and chains done beyond the parents.
func TestStatsDriverReadAgainCountsOnce(t *testing.T) {
	s := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/orgs", Items: []any{map[string]any{"id": "o1", "active": true}, map[string]any{"id": "o2", "active": false}}},
		{Path: "/orgs/{o}/groups", ItemsFunc: func(p map[string]string) []any {
			return []any{map[string]any{"id": p["o"] + "-g1", "name": "one"}, map[string]any{"id": p["o"] + "-g2", "name": "two"}}
		}},
		{Path: "/groups/{g}/users", ItemsFunc: func(p map[string]string) []any {
			return []any{map[string]any{"id": p["g"] + "-u"}}
		}},
	}})
	t.Cleanup(s.Close)
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL()+`}
streams:
  orgs:
    request: {path: /orgs}
  groups:
    for_each: orgs
    when: parent.active
    request: {path: '/orgs/${ parent.id }/groups'}
  members:
    for_each: groups
    request: {path: '/groups/${ parent.id }/users'}
lookups:
  gname: {from: groups, key: .id, value: .name}
tables:
  groups: {from: groups}
  members: {from: members, row: '{id, g: $lookups.gname[$parent.id]}'}
`)
	out := newCollector()
	sum, err := runSpec(t, f, nil, out)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.rows["members"]); n != 2 {
		t.Fatalf("members rows = %d, want 2 (the stage that reads the lookup did not run?)", n)
	}
	type counts struct{ Requests, Pages, Records, Outputs, Skipped, Chains, ChainsDone int64 }
	got := map[string]counts{}
	for _, sn := range sum.Streams {
		got[sn.Stream] = counts{sn.Requests, sn.Pages, sn.Records, sn.Outputs, sn.Skipped, sn.Chains, sn.ChainsDone}
	}
	// orgs and groups are read twice (stage 0, then to drive members):
	// requests and pages twice, the rest once.
	want := map[string]counts{
		"orgs":    {Requests: 2, Pages: 2, Records: 2, Chains: 1, ChainsDone: 1},
		"groups":  {Requests: 2, Pages: 2, Records: 2, Outputs: 2, Skipped: 1, Chains: 2, ChainsDone: 2},
		"members": {Requests: 2, Pages: 2, Records: 2, Outputs: 2, Chains: 2, ChainsDone: 2},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("stream %s = %+v, want %+v", k, got[k], w)
		}
	}
}

// TestStatsDriverSkipListedOnce: a request a rule skipped in a parent's own
// stage is skipped again when a later stage reads the parent again to
// drive its children: it is the same request, counted and listed once.
func TestStatsDriverSkipListedOnce(t *testing.T) {
	s := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/orgs", Items: []any{map[string]any{"id": "o1"}, map[string]any{"id": "o2"}}},
		{Path: "/orgs/o1/groups", Items: []any{map[string]any{"id": "g1", "name": "one"}}},
		{Path: "/orgs/o2/groups", Status: 403, Body: map[string]any{"message": "no"}},
		{Path: "/groups/{g}/users", ItemsFunc: func(p map[string]string) []any {
			return []any{map[string]any{"id": p["g"] + "-u"}}
		}},
	}})
	t.Cleanup(s.Close)
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+s.URL()+`, rules: [{status: 403, action: skip}]}
streams:
  orgs:
    request: {path: /orgs}
  groups:
    for_each: orgs
    request: {path: '/orgs/${ parent.id }/groups'}
  members:
    for_each: groups
    request: {path: '/groups/${ parent.id }/users'}
lookups:
  gname: {from: groups, key: .id, value: .name}
tables:
  groups: {from: groups}
  members: {from: members, row: '{id, g: $lookups.gname[$parent.id] // "?"}'}
`)
	sum, _ := runSpec(t, f, nil, newCollector())
	if n := s.Count("GET", "/orgs/o2/groups"); n != 2 {
		t.Fatalf("o2's groups asked %d times, want 2 (its own stage, then to drive members)", n)
	}
	if sn := snapshot(sum, "groups"); sn.Skipped != 1 {
		t.Errorf("groups skipped = %d, want 1", sn.Skipped)
	}
	if len(sum.Skips) != 1 || sum.Skips[0].Parents != "orgs[id=o2]" {
		t.Errorf("skipped requests = %+v, want o2's groups once", sum.Skips)
	}
	if sum.Complete["groups"] || sum.Complete["members"] {
		t.Errorf("complete = %v, want groups and members not", sum.Complete)
	}
}
