package engine_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestNoStubForUnreadTarget: under missing_relations stub, a relation to
// an item the run did not write because the items stream failed (its
// second page) is dropped and warned of, not stubbed: the item may be in
// the source, and a stub, no one's, would be a conflict once a run reads
// it. A target whose stream completed is stubbed as before.
func TestNoStubForUnreadTarget(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
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
`, itemBlueprint)
	fx.mu.Lock()
	fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("page") {
		case "1":
			json.NewEncoder(w).Encode([]any{map[string]any{"id": "i1"}})
		default:
			http.Error(w, "down", http.StatusBadGateway)
		}
	}
	fx.mu.Unlock()
	fx.json("/groups", []any{map[string]any{"id": "g1", "members": []any{"i1", "i2"}}})
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("the run passed with the items stream failed")
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1"}) {
		t.Errorf("items in Port = %v, want i1 alone: i2, on the page not read, must not be stubbed", got)
	}
	if got := fx.entities("group"); !slices.Equal(got, []string{"g1"}) {
		t.Errorf("groups = %v, want g1 written (its relation to i2 dropped)", got)
	}

	// The items stream reads whole now: a member it does not list is
	// stubbed, as the spec asks.
	fx.json("/items", []any{})
	fx.mu.Lock()
	fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
		out := []any{}
		if r.URL.Query().Get("page") == "1" {
			out = append(out, map[string]any{"id": "i1"})
		}
		json.NewEncoder(w).Encode(out)
	}
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1", "i2"}) {
		t.Errorf("items in Port = %v, want i2 stubbed once the items stream completed", got)
	}
}
