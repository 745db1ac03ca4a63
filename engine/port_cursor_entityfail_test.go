package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestEntityFailedBeforePortKeepsItsStreamsCursor: an entity that failed
// in the run itself (here: the lookup it reads could not be filled) never
// reached Port, so Port's report has nothing failed for its blueprint. The
// stream's cursor must still stay before its record: the next run, past
// --resume-within (a new sync), reads it again and sends the entity.
func TestEntityFailedBeforePortKeepsItsStreamsCursor(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /items
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
`, itemBlueprint)
	serveSince(fx, "/items", map[string]any{"id": "i1", "updated": "1", "kind": "k"})
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
