package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/port"
)

type discardOutput struct{}

func (discardOutput) Row(context.Context, sink.Row) error       { return nil }
func (discardOutput) Entity(context.Context, sink.Entity) error { return nil }

// TestDryRunCountsLastVersions: a dry run reports the entities Port would
// reject as the Port sink does: an entity whose earlier version is
// invalid but whose later one is valid is not among them (the last one
// wins), a merged invalid part still is, and entities without an
// identifier each count.
func TestDryRunCountsLastVersions(t *testing.T) {
	bp, err := port.ParseBlueprint([]byte(`{"identifier": "app", "title": "App", "schema": {"properties": {"createdAt": {"type": "string", "format": "date-time"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := &checkedOutput{Output: discardOutput{}, blueprints: map[string]*port.Blueprint{"app": bp}}
	app := func(id any, created string, merge bool) sink.Entity {
		return sink.Entity{Blueprint: "app", Merge: merge, Data: map[string]any{"identifier": id, "properties": map[string]any{"createdAt": created}}}
	}
	const good, bad = "2025-01-01T10:00:00Z", "not a date"
	for _, e := range []sink.Entity{
		app("fixed", bad, false), app("fixed", good, false), // replaced: valid
		app("broken", good, false), app("broken", bad, false), // last invalid
		app("merged", bad, false), app("merged", good, true), // a merged part does not replace
		app("twice", bad, false), app("twice", bad, false), // one entity
		app(nil, bad, false), app(nil, bad, false), // no identifier: two
	} {
		if err := c.Entity(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	var inv *InvalidEntitiesError
	if err := c.err(); !errors.As(err, &inv) {
		t.Fatalf("err = %v, want the invalid entities", err)
	}
	if inv.Count != 5 {
		t.Errorf("count %d, want 5 (broken, merged, twice, two without identifier): %v", inv.Count, inv.Examples)
	}
	all := strings.Join(inv.Examples, "\n")
	if strings.Contains(all, "entity fixed") {
		t.Errorf("fixed, valid in its last version, is reported: %v", inv.Examples)
	}
	for _, want := range []string{"entity broken", "entity merged", "entity twice"} {
		if strings.Count(all, want) != 1 {
			t.Errorf("%q reported %d times, want once: %v", want, strings.Count(all, want), inv.Examples)
		}
	}
}

// TestDryRunNamesOrigin: an entity a dry run finds Port would reject is
// named with the stream and parent chain of its record, as a real run's
// report names it.
func TestDryRunNamesOrigin(t *testing.T) {
	bp, err := port.ParseBlueprint([]byte(`{"identifier": "env", "title": "Env", "schema": {"properties": {"n": {"type": "number"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := &checkedOutput{Output: discardOutput{}, blueprints: map[string]*port.Blueprint{"env": bp}}
	e := sink.Entity{Blueprint: "env", Stream: "envs", Partition: "apps=a", Parents: "apps[id=a]",
		Data: map[string]any{"identifier": "prod", "properties": map[string]any{"n": "not a number"}}}
	if err := c.Entity(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	var inv *InvalidEntitiesError
	if err := c.err(); !errors.As(err, &inv) || len(inv.Examples) != 1 {
		t.Fatalf("err = %v, want prod invalid", err)
	}
	if got := inv.Examples[0]; !strings.Contains(got, "entity prod (stream envs, parents apps[id=a]):") {
		t.Errorf("example %q does not name prod's stream and parents", got)
	}
}
