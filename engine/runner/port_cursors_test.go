package runner_test

import (
	"fmt"
	"testing"

	"github.com/ferry-etl/ferry/engine/runner"
)

// TestPortCursors: the cursors that wait for Port are those of incremental
// streams whose records, or those of a stream below them (for_each or
// batch), become entities, each with the blueprints it feeds; a stream
// feeding tables only keeps its cursor with its rows.
func TestPortCursors(t *testing.T) {
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: "https://x"}
streams:
  orgs:
    incremental: {cursor: .at, initial: "0"}
    request: {path: /orgs}
  repos:
    for_each: orgs
    incremental: {cursor: .at, initial: "0"}
    request: {path: "/orgs/${ parent.id }/repos"}
  changes:
    for_each: orgs
    batch: repos
    request: {method: POST, path: /search, body_jq: '{ids: [$batch[] | .id]}'}
  users:
    incremental: {cursor: .at, initial: "0"}
    request: {path: /users}
  teams:
    incremental: {cursor: .at, initial: "0"}
    request: {path: /teams}
tables:
  users: {from: users}
  teams: {from: teams}
port:
  entities:
    - {blueprint: change, from: changes, identifier: .id}
    - {blueprint: team, from: teams, identifier: .id}
    - {blueprint: lead, from: teams, identifier: .lead}
`)
	got := fmt.Sprint(runner.PortCursors(f))
	want := "map[orgs@cursor:[change] repos@cursor:[change] teams@cursor:[team lead]]"
	if got != want {
		t.Errorf("PortCursors = %s, want %s", got, want)
	}
}
