package engine_test

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

const relBlueprints = `[{"identifier": "team", "title": "Team", "schema": {"properties": {}, "required": []}, "relations": {}},
 {"identifier": "svc", "title": "Service", "schema": {"properties": {}, "required": []},
  "relations": {"team": {"target": "team", "many": false, "required": false}}}]`

// TestMissingRelationsFromTheSpec: missing_relations reaches the Port
// sink: fail fails the entity whose team is nowhere, drop (the default)
// writes it without the relation.
func TestMissingRelationsFromTheSpec(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		written []string
		failed  int
	}{
		{"", []string{"s1", "s2"}, 0},
		{"fail", []string{"s1"}, 1},
	} {
		t.Run("policy="+tc.policy, func(t *testing.T) {
			extra := ""
			if tc.policy != "" {
				extra = "\n      missing_relations: {team: " + tc.policy + "}"
			}
			fx := newFixture(t, specHead+`streams:
  svcs:
    request: {path: /svcs}
port:
  blueprints: bp.json
  entities:
    - {blueprint: team, from: svcs, selector: '.team == "t1"', identifier: .team}
    - blueprint: svc
      from: svcs
      identifier: .id
      relations: {team: .team}`+extra+"\n", relBlueprints)
			fx.json("/svcs", []any{map[string]any{"id": "s1", "team": "t1"}, map[string]any{"id": "s2", "team": "ghost"}})
			res, err := fx.run(engine.RunOptions{})
			if tc.failed > 0 {
				if err == nil || res.Dest.Port.Failed != tc.failed {
					t.Fatalf("err = %v, failed %d; want %d entity failed", err, res.Dest.Port.Failed, tc.failed)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := fx.entities("svc"); !slices.Equal(got, tc.written) {
				t.Errorf("services = %v, want %v", got, tc.written)
			}
		})
	}
}

// TestDeleteThresholdFromTheSpec: port.delete_threshold caps deletion: 1
// stale of 2 owned is 50%, over a 0.4 threshold, so nothing is deleted.
func TestDeleteThresholdFromTheSpec(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  teams:
    request: {path: /teams}
port:
  blueprints: bp.json
  delete_threshold: 0.4
  entities:
    - {blueprint: team, from: teams, identifier: .id}
`, relBlueprints)
	fx.json("/teams", []any{map[string]any{"id": "t1"}, map[string]any{"id": "t2"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	fx.json("/teams", []any{map[string]any{"id": "t1"}})
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dest.Port.Deleted != 0 || len(res.Dest.Port.SkippedDeletes) != 1 || !strings.Contains(res.Dest.Port.SkippedDeletes[0].Reason, "40%") {
		t.Errorf("deleted %d, skipped %+v; want nothing deleted, above the 40%% threshold", res.Dest.Port.Deleted, res.Dest.Port.SkippedDeletes)
	}
	// The report does not call the blueprint reconciled: its stale entity
	// is still there.
	rep := engine.NewRunReport(fx.spec, "spec.yaml", res, nil, 0, false, time.Now())
	for _, bp := range rep.Blueprints {
		if bp.Name == "team" && bp.Reconciled {
			t.Errorf("report: team reconciled = true, want false (its deletion was skipped)")
		}
	}
}

// TestRetryPostFromTheSpec: retry.post false sends a failing POST once.
func TestRetryPostFromTheSpec(t *testing.T) {
	for _, post := range []string{"true", "false"} {
		t.Run("post="+post, func(t *testing.T) {
			fx := newFixture(t, `version: 1
name: nl
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 3, initial: 1ms, max: 1ms, post: `+post+`}
streams:
  jobs:
    request: {method: POST, path: /jobs, body: {kind: export}}
tables:
  jobs: {from: jobs, primary_key: [id]}
`, "")
			var calls atomic.Int32
			fx.mu.Lock()
			fx.routes["/jobs"] = func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				http.Error(w, "busy", http.StatusServiceUnavailable)
			}
			fx.mu.Unlock()
			fx.run(engine.RunOptions{})
			want := int32(3)
			if post == "false" {
				want = 1
			}
			if n := calls.Load(); n != want {
				t.Errorf("POST sent %d times, want %d", n, want)
			}
		})
	}
}
