package runner_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
)

// checkpoints collects rows and checkpoints.
type checkpoints struct {
	collector
	mu  sync.Mutex
	cps []sink.Checkpoint
}

func (c *checkpoints) Checkpoint(_ context.Context, cp sink.Checkpoint) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cps = append(c.cps, cp)
	return nil
}

// TestCheckpointsHoldNoSecretAndResume: next links that echo a query API
// key are saved redacted, and a run resumed from such a checkpoint still
// authenticates and reads only the pages left.
func TestCheckpointsHoldNoSecretAndResume(t *testing.T) {
	const key = "k3y-s3cret-value"
	api := apitest.New(apitest.Fixture{
		Auth: &apitest.AuthCheck{Query: "api_key", Value: key},
		Routes: []apitest.Route{{Path: "/items", Generate: &apitest.Generate{Count: 9, Item: map[string]any{"id": "{i}"}},
			Paginate: &apitest.Paging{Type: "link", Param: "page", SizeParam: "per_page", PageSize: 3}}},
	})
	defer api.Close()
	f := mustSpec(t, `
version: 1
name: sec
config:
  key: {required: true, secret: true}
http:
  base_url: `+api.URL()+`
  auth:
    type: query
    param: api_key
    value: ${ config.key }
streams:
  items:
    request:
      path: /items
      query: {per_page: 3}
    paginate: {type: link_header}
tables:
  items: {from: items, primary_key: [id]}
`)
	cfg := map[string]any{"key": key}
	run := func(state map[string]map[string]json.RawMessage) *checkpoints {
		t.Helper()
		r, err := runner.New(f, runner.Options{Config: cfg, Pool: fetch.NewPool(fetch.Options{Secrets: []string{key}}), State: state})
		if err != nil {
			t.Fatal(err)
		}
		out := &checkpoints{collector: *newCollector()}
		if _, err := r.Run(t.Context(), out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	full := run(nil)
	if len(full.cps) != 3 {
		t.Fatalf("%d checkpoints, want one per page (3)", len(full.cps))
	}
	for _, cp := range full.cps {
		if strings.Contains(string(cp.Value), key) {
			t.Errorf("checkpoint holds the API key: %s", cp.Value)
		}
	}
	if !strings.Contains(string(full.cps[0].Value), "page=") {
		t.Fatalf("page 1's checkpoint has no next link: %s", full.cps[0].Value)
	}
	// Resume from page 1's checkpoint: pages 2 and 3 only, authenticated.
	before := len(api.Requests())
	resumed := run(map[string]map[string]json.RawMessage{"items": {"": full.cps[0].Value}})
	if got := resumed.field("items", "id"); strings.Join(got, ",") != "3,4,5,6,7,8" {
		t.Errorf("resumed run read %v, want ids 3..8", got)
	}
	if n := len(api.Requests()) - before; n != 2 {
		t.Errorf("resumed run sent %d requests, want 2", n)
	}
}

// A secret input in the request path comes back in every next link: the
// checkpoint holds it as a placeholder, not the value and not REDACTED,
// and a resumed run puts it back and reads the pages left (with REDACTED
// it asked a path that does not exist, run after run).
func TestCheckpointPathSecretResumes(t *testing.T) {
	const org = "org-s3cret-value"
	api := apitest.New(apitest.Fixture{
		Routes: []apitest.Route{{Path: "/orgs/" + org + "/items", Generate: &apitest.Generate{Count: 9, Item: map[string]any{"id": "{i}"}},
			Paginate: &apitest.Paging{Type: "link", Param: "page", SizeParam: "per_page", PageSize: 3}}},
	})
	defer api.Close()
	f := mustSpec(t, `
version: 1
name: sec
config:
  org: {required: true, secret: true}
http:
  base_url: `+api.URL()+`
streams:
  items:
    request:
      path: /orgs/${ config.org }/items
      query: {per_page: 3}
    paginate: {type: link_header}
tables:
  items: {from: items, primary_key: [id]}
`)
	run := func(state map[string]map[string]json.RawMessage) *checkpoints {
		t.Helper()
		r, err := runner.New(f, runner.Options{Config: map[string]any{"org": org}, Pool: fetch.NewPool(fetch.Options{Secrets: []string{org}}), State: state})
		if err != nil {
			t.Fatal(err)
		}
		out := &checkpoints{collector: *newCollector()}
		if _, err := r.Run(t.Context(), out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	full := run(nil)
	if len(full.cps) != 3 {
		t.Fatalf("%d checkpoints, want one per page (3)", len(full.cps))
	}
	for _, cp := range full.cps {
		if strings.Contains(string(cp.Value), "s3cret") {
			t.Errorf("checkpoint holds the secret: %s", cp.Value)
		}
	}
	before := len(api.Requests())
	resumed := run(map[string]map[string]json.RawMessage{"items": {"": full.cps[0].Value}})
	if got := resumed.field("items", "id"); strings.Join(got, ",") != "3,4,5,6,7,8" {
		t.Errorf("resumed run read %v, want ids 3..8", got)
	}
	if n := len(api.Requests()) - before; n != 2 {
		t.Errorf("resumed run sent %d requests, want 2", n)
	}
}
