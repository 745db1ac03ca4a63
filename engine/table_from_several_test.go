package engine_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// A table fed by two streams: items a search lists, and items fetched
// one by one (refs found elsewhere); VIA is a column's jq, set per test.
const severalSpec = specHead + `streams:
  listed:
    request: {path: /listed}
  refs:
    request: {path: /refs}
  fetched:
    for_each: refs
    request:
      path: /items/${ parent.id }
    records: .
tables:
  items:
    from: [listed, fetched]
    mode: replace
    primary_key: [id]
    row: '{id, name, via: VIA}'
`

// TestTableFromSeveralStreams: rows come from every stream the table
// names, once each; the table is complete (a replace table reconciles)
// only when every one of them read everything; the same key from both
// streams with different rows is a collision that fails the run.
func TestTableFromSeveralStreams(t *testing.T) {
	spec := strings.Replace(severalSpec, "VIA", `"x"`, 1)
	fx := newFixture(t, spec, "")
	fx.json("/listed", []any{map[string]any{"id": "a", "name": "A"}, map[string]any{"id": "b", "name": "B"}})
	fx.json("/refs", []any{map[string]any{"id": "c"}})
	fx.json("/items/c", map[string]any{"id": "c", "name": "C"})
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fx.query(`SELECT id || '=' || name FROM "nl__items" WHERE NOT _ferry_deleted ORDER BY 1`), []string{"a=A", "b=B", "c=C"}; !slices.Equal(got, want) {
		t.Errorf("items = %v, want %v", got, want)
	}
	if !res.Summary.Tables["items"] {
		t.Errorf("items not complete after a clean run of both streams")
	}

	// The fetched stream fails: the table is not complete, so b, gone
	// from the search, is marked deleted only in a complete run.
	fx.json("/listed", []any{map[string]any{"id": "a", "name": "A"}})
	fx.raw("/items/c", http.StatusInternalServerError, "boom")
	res, err = fx.run(engine.RunOptions{})
	if err == nil {
		t.Fatal("a failed chain of fetched: the run succeeded")
	}
	if res.Summary.Tables["items"] {
		t.Errorf("items complete although fetched failed")
	}
	if got := fx.query(`SELECT id FROM "nl__items" WHERE _ferry_deleted ORDER BY 1`); len(got) != 0 {
		t.Errorf("rows marked deleted by an incomplete run: %v", got)
	}

	// Both streams give item a, differently: a collision, not a row lost
	// in silence.
	fx.json("/refs", []any{map[string]any{"id": "a"}})
	fx.json("/items/a", map[string]any{"id": "a", "name": "other A"})
	if _, err = fx.run(engine.RunOptions{}); err == nil || !strings.Contains(err.Error(), "items") {
		t.Errorf("a collision between the two streams: err = %v", err)
	}
}

// TestTableFromSeveralStreamsVariables: the row program is compiled per
// stream: $lookups is the second variable of listed's programs and the
// fifth of fetched's ($config, $parent, $parents, $refs before it), and
// each stream's rows read it right.
func TestTableFromSeveralStreamsVariables(t *testing.T) {
	spec := strings.Replace(severalSpec, "VIA", `($lookups.tags[.id] // "none")`, 1)
	spec = strings.Replace(spec, "    from: [listed, fetched]\n", "    from: [fetched, listed]\n", 1)
	spec += `lookups:
  tags: {from: refs, key: .id, value: .tag}
`
	fx := newFixture(t, spec, "")
	fx.json("/listed", []any{map[string]any{"id": "a", "name": "A"}, map[string]any{"id": "b", "name": "B"}})
	fx.json("/refs", []any{map[string]any{"id": "c", "tag": "t-c"}, map[string]any{"id": "a", "tag": "t-a"}})
	fx.json("/items/c", map[string]any{"id": "c", "name": "C"})
	fx.json("/items/a", map[string]any{"id": "a", "name": "A"})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := fx.query(`SELECT id || '=' || via FROM "nl__items" ORDER BY 1`), []string{"a=t-a", "b=none", "c=t-c"}; !slices.Equal(got, want) {
		t.Errorf("items = %v, want %v", got, want)
	}
}
