package engine_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

const stubSpec = specHead + `streams:
  items:
    request: {path: /items}
    paginate: {type: page, param: page, stop_when: 'records == 0'}
  groups:
    request: {path: /groups}
port:
  blueprints: bp.json
  missing_relations: stub
  entities:
    - {blueprint: item, from: items, identifier: .id}
    - {blueprint: group, from: groups, identifier: .id, relations: {members: .members}}
`

// members is the relation g1 holds in Port.
func (fx *fixture) members(id string) map[string]bool {
	for _, e := range fx.port.Catalog().Entities {
		if e.Blueprint == "group" && e.Identifier == id {
			return idSet(e.Relations["members"])
		}
	}
	return nil
}

// TestUnreadTargetInPortKeepsRelation: under missing_relations stub, the
// items stream fails on its second page, so i2 (written to Port by the
// run before) is not read again. g1's relation to i2, which Port holds
// and whose target is in Port, must stay: not dropped as if i2 were
// missing (the stub policy looks nothing up in Port, so "missing" meant
// only "not written by this run").
func TestUnreadTargetInPortKeepsRelation(t *testing.T) {
	fx := newFixture(t, stubSpec, itemBlueprint)
	failPage2 := false
	fx.mu.Lock()
	fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("page") {
		case "1":
			json.NewEncoder(w).Encode([]any{map[string]any{"id": "i1"}})
		case "2":
			if failPage2 {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			json.NewEncoder(w).Encode([]any{map[string]any{"id": "i2"}})
		default:
			json.NewEncoder(w).Encode([]any{})
		}
	}
	fx.mu.Unlock()
	fx.json("/groups", []any{map[string]any{"id": "g1", "members": []any{"i1", "i2"}}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"i1": true, "i2": true}
	if got := fx.members("g1"); !maps.Equal(got, want) {
		t.Fatalf("g1 members after the first run = %v, want %v", got, want)
	}
	fx.mu.Lock()
	failPage2 = true
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("the run passed with the items stream failed")
	}
	if got := fx.entities("item"); len(got) != 2 {
		t.Errorf("items in Port = %v, want i1 and i2", got)
	}
	if got := fx.members("g1"); !maps.Equal(got, want) {
		t.Errorf("g1 members after a run that did not read i2 = %v, want %v: a relation to an entity Port holds was dropped", got, want)
	}
}

// TestNoStubForFailedTarget: i2's record fails (its v is not the string
// the blueprint asks for), so the run writes no i2. Under
// missing_relations stub g1's relation to i2 must not make a stub of it:
// i2 is in the source, and the run that writes it once fixed would meet
// a stub that is no one's. Then the fixed run writes i2 as the run's own.
func TestNoStubForFailedTarget(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
  groups:
    request: {path: /groups}
port:
  blueprints: bp.json
  missing_relations: stub
  entities:
    - {blueprint: item, from: items, identifier: .id, properties: {v: .v}}
    - {blueprint: group, from: groups, identifier: .id, relations: {members: .members}}
`, itemBlueprint)
	fx.json("/items", []any{map[string]any{"id": "i1", "v": "a"}, map[string]any{"id": "i2", "v": 5}})
	fx.json("/groups", []any{map[string]any{"id": "g1", "members": []any{"i1", "i2"}}})
	res, err := fx.run(engine.RunOptions{})
	if err == nil {
		t.Fatal("the run passed with i2 failed")
	}
	_ = res
	if got := fx.entities("item"); len(got) != 1 {
		t.Errorf("items in Port = %v, want i1 alone: i2 failed, and must not be stubbed", got)
	}
	if got, want := fx.members("g1"), map[string]bool{"i1": true}; !maps.Equal(got, want) {
		t.Errorf("g1 members = %v, want %v", got, want)
	}
	fx.json("/items", []any{map[string]any{"id": "i1", "v": "a"}, map[string]any{"id": "i2", "v": "b"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("the fixed run: %v", err)
	}
	if got := fx.entities("item"); len(got) != 2 {
		t.Errorf("items in Port = %v, want i1 and i2", got)
	}
	if got, want := fx.members("g1"), map[string]bool{"i1": true, "i2": true}; !maps.Equal(got, want) {
		t.Errorf("g1 members after the fixed run = %v, want %v", got, want)
	}
	// i2 fails again, now that Port holds it: g1's relation to it stays.
	fx.json("/items", []any{map[string]any{"id": "i1", "v": "a"}, map[string]any{"id": "i2", "v": 6}})
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("the run passed with i2 failed")
	}
	if got, want := fx.members("g1"), map[string]bool{"i1": true, "i2": true}; !maps.Equal(got, want) {
		t.Errorf("g1 members after i2 failed again = %v, want %v: the relation to an entity Port holds was dropped", got, want)
	}
}

// TestNoStubForTargetFailedInMapping: as TestNoStubForFailedTarget, i2's
// record failing the run's own mapping (its identifier), so no entity of
// it reaches the Port sink at all.
func TestNoStubForTargetFailedInMapping(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
  groups:
    request: {path: /groups}
port:
  blueprints: bp.json
  missing_relations: stub
  entities:
    - {blueprint: item, from: items, identifier: 'if .bad then error("bad record") else .id end'}
    - {blueprint: group, from: groups, identifier: .id, relations: {members: .members}}
`, itemBlueprint)
	fx.json("/items", []any{map[string]any{"id": "i1"}, map[string]any{"id": "i2", "bad": true}})
	fx.json("/groups", []any{map[string]any{"id": "g1", "members": []any{"i1", "i2"}}})
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("the run passed with i2 failed")
	}
	if got := fx.entities("item"); len(got) != 1 {
		t.Errorf("items in Port = %v, want i1 alone: i2 failed, and must not be stubbed", got)
	}
	fx.json("/items", []any{map[string]any{"id": "i1"}, map[string]any{"id": "i2"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("the fixed run: %v", err)
	}
	if got, want := fx.members("g1"), map[string]bool{"i1": true, "i2": true}; !maps.Equal(got, want) {
		t.Errorf("g1 members after the fixed run = %v, want %v", got, want)
	}
}

// TestStubUnderStreamsRun: a --streams groups run does not read items at
// all; as unreadBlueprints says, a stream not run is not counted, so g1's
// member i2 (in no run's items) is stubbed as the spec asks.
func TestStubUnderStreamsRun(t *testing.T) {
	fx := newFixture(t, stubSpec, itemBlueprint)
	fx.json("/items", []any{})
	fx.json("/groups", []any{map[string]any{"id": "g1", "members": []any{"i2"}}})
	if _, err := fx.run(engine.RunOptions{Streams: []string{"groups"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := fx.members("g1"), map[string]bool{"i2": true}; !maps.Equal(got, want) {
		t.Errorf("g1 members = %v, want %v (stubbed)", got, want)
	}
}
