package engine_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestResumedRunSaysStaleEntitiesStay: a run that resumes an unfinished
// sync deletes no stale Port entity (README "Ownership of Port
// entities"). Found by TestChaosPort: it exited 0 saying the blueprint
// was reconciled while the stale entity stayed. The run must say so: its
// blueprint is not reconciled, and skipped_deletes names it with the
// reason. The next run, of a new sync, deletes it.
func TestResumedRunSaysStaleEntitiesStay(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
  groups:
    request: {path: /groups}
tables:
  items: {from: items, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id}
    - {blueprint: group, from: groups, identifier: .id}
`, itemBlueprint)
	fx.json("/items", []any{map[string]any{"id": "i1"}, map[string]any{"id": "i2"}, map[string]any{"id": "i3"}})
	fx.json("/groups", []any{map[string]any{"id": "g1"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// groups fails: the sync stays open.
	fx.raw("/groups", http.StatusBadRequest, `{"message": "no"}`)
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("the run with a failed stream exited 0")
	}
	// i3 is gone from the source; the next run resumes the sync.
	fx.json("/items", []any{map[string]any{"id": "i1"}, map[string]any{"id": "i2"}})
	fx.json("/groups", []any{map[string]any{"id": "g1"}})
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1", "i2", "i3"}) {
		t.Fatalf("items = %v after the resumed run; this test needs i3 kept (a resumed run deletes nothing)", got)
	}
	rep := engine.NewRunReport(fx.spec, "s.yaml", res, err, 0, false, time.Now())
	for _, b := range rep.Blueprints {
		if b.Name == "item" && b.Reconciled {
			t.Errorf("blueprint item reported reconciled, but the resumed run kept stale i3")
		}
	}
	named := false
	for _, s := range rep.Port.SkippedDeletes {
		named = named || strings.HasPrefix(s, "item: ") && strings.Contains(s, "resume")
	}
	if !named {
		t.Errorf("skipped_deletes %q, want item named: the resumed run kept its stale entity", rep.Port.SkippedDeletes)
	}
	// A new sync deletes it.
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1", "i2"}) {
		t.Errorf("items = %v after a new sync, want i3 deleted", got)
	}
}
