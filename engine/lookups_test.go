package engine_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

const usersGroupsSpec = specHead + `streams:
  users:
    request: {path: /users}
    records: '.[] | select(.type == "user")'
  groups:
    request: {path: /users}
    records: '.[] | select(.type == "group")'
  members:
    for_each: groups
    request:
      path: /groups/${ parent.id }/users
lookups:
  member_of:
    from: members
    key: .id
    value: $parent.id
    many: true
port:
  blueprints: bp.json
  entities:
    - blueprint: group
      from: groups
      identifier: .id
    - blueprint: item
      from: users
      identifier: .id
      properties: {v: '$lookups.member_of[.id] // [] | join(",")'}
`

// TestLookupGathersRelationsFromTheOtherSide: a user's groups come from
// per-group member lists; the lookup collects every membership, so users
// in 0, 1 and 3 groups get exactly theirs, whatever the order of the lists.
func TestLookupGathersRelationsFromTheOtherSide(t *testing.T) {
	fx := newFixture(t, usersGroupsSpec, itemBlueprint)
	fx.json("/users", []any{
		map[string]any{"id": "u1", "type": "user"}, map[string]any{"id": "u2", "type": "user"},
		map[string]any{"id": "u3", "type": "user"}, map[string]any{"id": "svc", "type": "service"},
		map[string]any{"id": "g3", "type": "group"}, map[string]any{"id": "g1", "type": "group"},
		map[string]any{"id": "g2", "type": "group"}, map[string]any{"id": "g4", "type": "group"},
	})
	fx.json("/groups/g1/users", []any{map[string]any{"id": "u2"}, map[string]any{"id": "u1"}})
	fx.json("/groups/g2/users", []any{map[string]any{"id": "u1"}})
	fx.json("/groups/g3/users", []any{map[string]any{"id": "u1"}, map[string]any{"id": "u1"}})
	fx.json("/groups/g4/users", []any{})
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, id := range fx.entities("item") {
		got[id] = fmt.Sprint(fx.port.Entity("item", id)["properties"].(map[string]any)["v"])
	}
	want := map[string]string{"u1": "g1,g2,g3", "u2": "g1", "u3": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("memberships = %v, want %v", got, want)
	}
	if !res.Summary.Blueprints["item"] {
		t.Errorf("users' blueprint not complete after a clean run")
	}
}

// TestIncompleteLookupFailsWhatReadsIt: when one member list fails, the
// lookup is incomplete: every mapping reading it fails (it must not guess
// a user's groups), the users' blueprint deletes nothing, and the groups
// are still written.
func TestIncompleteLookupFailsWhatReadsIt(t *testing.T) {
	fx := newFixture(t, usersGroupsSpec, itemBlueprint)
	users := []any{
		map[string]any{"id": "u1", "type": "user"}, map[string]any{"id": "u2", "type": "user"},
		map[string]any{"id": "g1", "type": "group"}, map[string]any{"id": "g2", "type": "group"},
	}
	fx.json("/users", users)
	fx.json("/groups/g1/users", []any{map[string]any{"id": "u1"}})
	fx.json("/groups/g2/users", []any{map[string]any{"id": "u2"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	before := fx.port.Entity("item", "u2")["properties"]
	fx.json("/users", users[1:]) // u1 left: a clean run would delete it
	fx.raw("/groups/g2/users", http.StatusInternalServerError, "boom")
	res, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	var chain, records int
	for _, f := range re.Failures {
		switch {
		case f.Stream == "members" && !f.Record():
			chain++
		case f.Blueprint == "item" && strings.Contains(f.Error(), "lookup member_of is incomplete: stream members (or a stream it fans out from) failed"):
			records++
		default:
			t.Errorf("unexpected failure: %v", f)
		}
	}
	if chain != 1 || records != 1 {
		t.Errorf("failures = %v, want g2's member list and the one user's mapping", re.Failures)
	}
	if res.Dest.Port.Deleted != 0 || !slices.Equal(fx.entities("item"), []string{"u1", "u2"}) {
		t.Errorf("deleted %d, users %v: an incomplete lookup deleted entities", res.Dest.Port.Deleted, fx.entities("item"))
	}
	if after := fx.port.Entity("item", "u2")["properties"]; fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("u2 rewritten from a guess: %v, was %v", after, before)
	}
	if got := fx.entities("group"); !slices.Equal(got, []string{"g1", "g2"}) {
		t.Errorf("groups = %v", got)
	}
}

// TestLookupInTemplatesAndStages: a template reads a lookup (expr), and a
// stream reading a lookup filled from its own parent's child waits for it:
// the parent is read again to drive it, without writing twice.
func TestLookupInTemplatesAndStages(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  teams:
    request: {path: /teams}
  leads:
    for_each: teams
    request:
      path: /teams/${ parent.id }/lead
    records: .
  projects:
    for_each: teams
    request:
      path: /people/${ lookups.lead_of[parent.id] }/projects
lookups:
  lead_of:
    from: leads
    key: $parent.id
    value: .person
tables:
  teams: {from: teams, mode: append}
  projects: {from: projects, row: '{team: $parent.id, id}', primary_key: [team, id]}
`, "")
	fx.json("/teams", []any{map[string]any{"id": "red"}, map[string]any{"id": "blue"}})
	fx.json("/teams/red/lead", map[string]any{"person": "ann"})
	fx.json("/teams/blue/lead", map[string]any{"person": "bob"})
	fx.json("/people/ann/projects", []any{map[string]any{"id": 1}})
	fx.json("/people/bob/projects", []any{map[string]any{"id": 2}, map[string]any{"id": 3}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT team || ':' || id FROM "nl__projects" ORDER BY 1`); !slices.Equal(got, []string{"blue:2", "blue:3", "red:1"}) {
		t.Errorf("projects = %v", got)
	}
	if got := fx.query(`SELECT count(*) FROM "nl__teams"`); !slices.Equal(got, []string{"2"}) {
		t.Errorf("teams (append) has %v rows: the parent read again to drive a later stage was written twice", got)
	}
	reqs := fx.takeRequests()
	if n := countOf(reqs, "/teams"); n != 2 {
		t.Errorf("/teams asked %d times, want 2 (once per stage)", n)
	}
	if n := countOf(reqs, "/teams/red/lead"); n != 1 {
		t.Errorf("a lead asked %d times, want once", n)
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
