package engine_test

import (
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestLookupInRecurseWhenAndPartitions: a recursive stream's recurse.when
// and a partitions stream's values may read a lookup; each waits for the
// stream filling it, as any other program of the stream does. Before,
// neither counted as a read: they ran in stage 0 and read the lookup
// before it was filled (null), so a tree descended into nodes the lookup
// named (reading them twice) and partitions gave no value at all, exit 0.
func TestLookupInRecurseWhenAndPartitions(t *testing.T) {
	const lookupAndTable = `lookups:
  listed: {from: listed, key: .id, value: 'true'}
tables:
  nodes: {from: nodes, row: '{id, under: ($parent.id // $parent.value)}', primary_key: [id]}
`
	cases := []struct {
		name, streams string
	}{
		{name: "recurse.when reads the lookup", streams: `streams:
  listed:
    request: {path: /listed}
  nodes:
    for_each: listed
    recurse: {when: '.kids and ($lookups.listed[.id] | not)', max_depth: 5}
    request:
      path: /nodes/${ parent.id }
`},
		{name: "partitions.values reads the lookup", streams: `streams:
  listed:
    request: {path: /listed}
  roots:
    partitions:
      values: ${ sort(keys(lookups.listed)) }
  nodes:
    for_each: roots
    recurse: {when: '.kids and ($lookups.listed[.id] | not)', max_depth: 5}
    request:
      path: '/nodes/${ parents.nodes == nil ? parent.value : parent.id }'
`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, specHead+c.streams+lookupAndTable, "")
			// a lists b (not listed: descended) and c (listed: read as a
			// root of its own, never below a).
			fx.json("/listed", []any{map[string]any{"id": "a"}, map[string]any{"id": "c"}})
			fx.json("/nodes/a", []any{map[string]any{"id": "b", "kids": true}, map[string]any{"id": "c", "kids": true}})
			fx.json("/nodes/b", []any{map[string]any{"id": "d"}})
			fx.json("/nodes/c", []any{map[string]any{"id": "e"}})
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, want := fx.query(`SELECT id || '<' || under FROM "nl__nodes" ORDER BY 1`), []string{"b<a", "c<a", "d<b", "e<c"}; !slices.Equal(got, want) {
				t.Errorf("nodes = %v, want %v", got, want)
			}
			if n := countOf(fx.takeRequests(), "/nodes/c"); n != 1 {
				t.Errorf("/nodes/c asked %d times, want once (c is listed: a root, not descended into)", n)
			}
		})
	}
}
