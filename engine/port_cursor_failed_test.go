package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// failedEntitySpec: items feeds the item blueprint through a lookup that a
// test can make fail (/kinds), groups the group blueprint, whose members
// relate to items; both incremental, with a table.
const failedEntitySpec = specHead + `streams:
  items:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /items
      query: {since: '${ cursor }'}
  groups:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /groups
      query: {since: '${ cursor }'}
  kinds:
    request: {path: /kinds}
lookups:
  kind: {from: kinds, key: .id, value: .name}
tables:
  items: {from: items, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - blueprint: item
      from: items
      identifier: .id
      properties: {v: '$lookups.kind[.kind]'}
    - blueprint: group
      from: groups
      identifier: .id
      relations: {members: .members}
`

// TestEntityFailedBeforePortKeepsItsStreamsCursor: an entity that failed
// in the run itself (here: the lookup it reads could not be filled) never
// reached Port, so Port's report has nothing failed for its blueprint. The
// stream's cursor must still stay before its record: the next run, past
// --resume-within (a new sync), reads it again and sends the entity.
func TestEntityFailedBeforePortKeepsItsStreamsCursor(t *testing.T) {
	fx := newFixture(t, failedEntitySpec, itemBlueprint)
	serveSince(fx, "/items", map[string]any{"id": "i1", "updated": "1", "kind": "k"})
	serveSince(fx, "/groups")
	fx.raw("/kinds", 400, `{"message": "bad request"}`)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := fx.runCtx(t.Context(), engine.RunOptions{Now: func() time.Time { return start }})
	runErrorOf(t, err)
	if got := fx.entities("item"); len(got) != 0 {
		t.Fatalf("first run sent %v; this test needs the entity failed", got)
	}
	fx.json("/kinds", []any{map[string]any{"id": "k", "name": "x"}})
	if _, err := fx.runCtx(t.Context(), engine.RunOptions{Now: func() time.Time { return start.Add(48 * time.Hour) }}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1"}) {
		t.Errorf("item entities = %v, want i1: its stream's cursor moved past the record whose entity failed", got)
	}
}

// TestRelationToAFailedTargetKeepsItsStreamsCursor: i1's entity fails in
// the first run, so g1's relation to it is dropped (missing_relations:
// drop, the default) and g1 reaches Port without it. The next run sends
// i1; g1 must then get its relation too, so the cursor of the stream
// feeding g1 must not have moved past it.
func TestRelationToAFailedTargetKeepsItsStreamsCursor(t *testing.T) {
	fx := newFixture(t, failedEntitySpec, itemBlueprint)
	serveSince(fx, "/items", map[string]any{"id": "i1", "updated": "1", "kind": "k"})
	serveSince(fx, "/groups", map[string]any{"id": "g1", "updated": "1", "members": []any{"i1"}})
	fx.raw("/kinds", 400, `{"message": "bad request"}`)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := fx.runCtx(t.Context(), engine.RunOptions{Now: func() time.Time { return start }})
	runErrorOf(t, err)
	fx.json("/kinds", []any{map[string]any{"id": "k", "name": "x"}})
	if _, err := fx.runCtx(t.Context(), engine.RunOptions{Now: func() time.Time { return start.Add(48 * time.Hour) }}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1"}) {
		t.Fatalf("item entities = %v, want i1", got)
	}
	rels, _ := fx.port.Entity("group", "g1")["relations"].(map[string]any)
	if m, _ := rels["members"].([]any); !slices.Equal(m, []any{"i1"}) {
		t.Errorf("g1 members in Port = %v, want [i1]: the relation dropped while i1 had failed is never sent", rels["members"])
	}
}

// TestRelationToAnUnreadTargetKeepsItsStreamsCursor: the request of the
// items stream fails in the first run, so i1 is never produced and g1's
// relation to it is dropped (no entity of item failed: there was none).
// The next run reads i1; g1 must then get its relation too, so the cursor
// of the stream feeding g1 must not have moved past it.
func TestRelationToAnUnreadTargetKeepsItsStreamsCursor(t *testing.T) {
	fx := newFixture(t, failedEntitySpec, itemBlueprint)
	fx.raw("/items", 400, `{"message": "bad request"}`)
	serveSince(fx, "/groups", map[string]any{"id": "g1", "updated": "1", "members": []any{"i1"}})
	fx.json("/kinds", []any{map[string]any{"id": "k", "name": "x"}})
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := fx.runCtx(t.Context(), engine.RunOptions{Now: func() time.Time { return start }})
	runErrorOf(t, err)
	serveSince(fx, "/items", map[string]any{"id": "i1", "updated": "1", "kind": "k"})
	if _, err := fx.runCtx(t.Context(), engine.RunOptions{Now: func() time.Time { return start.Add(48 * time.Hour) }}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1"}) {
		t.Fatalf("item entities = %v, want i1", got)
	}
	rels, _ := fx.port.Entity("group", "g1")["relations"].(map[string]any)
	if m, _ := rels["members"].([]any); !slices.Equal(m, []any{"i1"}) {
		t.Errorf("g1 members in Port = %v, want [i1]: the relation dropped while items was not read is never sent", rels["members"])
	}
}
