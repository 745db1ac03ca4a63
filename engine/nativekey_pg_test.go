package engine_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestNativePostgresKeyColumnKeyedAsStored: a table made outside ferry
// (holding a row) whose key column has a PostgreSQL type ferry does not
// make, or makes without a precision, stores two forms of one key as one
// row: the duplicate check must see one key (a duplicate, said), not two
// (the later page's record replacing the earlier one's, exit 0).
func TestNativePostgresKeyColumnKeyedAsStored(t *testing.T) {
	pg := dupBackends()
	if len(pg) < 2 {
		t.Skip("no PostgreSQL")
	}
	for _, c := range []struct {
		native, seed string
		k1, k2       any
	}{
		{"uuid", "00000000-0000-0000-0000-000000000000", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"uuid", "00000000-0000-0000-0000-000000000000", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"numeric(10,2)", "0", json.Number("2.001"), json.Number("2")},
		{"numeric(4)", "0", "2.4", json.Number("2")},
		{"timestamp(3) with time zone", "2000-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-02T01:00:00+01:00"},
		{"timestamp(3) with time zone", "2000-01-01T00:00:00Z", "2024-01-02T00:00:00.0001Z", "2024-01-02T00:00:00Z"},
		{"timestamp without time zone", "2000-01-01T00:00:00", "2024-01-02T00:00:00Z", "2024-01-02T00:00:00+01:00"},
		{"timestamp without time zone", "2000-01-01T00:00:00", "2024-01-02T00:00:00", "2024-01-02T00:00:00.000Z"},
	} {
		t.Run(c.native, func(t *testing.T) {
			name, use := pg[1].setup(t)
			src := strings.Replace(dupSpec(name, "fail", ""), "columns: {id: STRING,", "columns: {", 1)
			fx := newFixture(t, src, "")
			query := use(fx)
			query(`CREATE SCHEMA "` + name + `"`)
			query(`CREATE TABLE %t (id ` + c.native + ` PRIMARY KEY, a text, b text, _ferry_synced text, _ferry_deleted boolean)`)
			query(`INSERT INTO %t VALUES ('` + c.seed + `', 'zero', null, '2024-01-01T00:00:00.000000Z', false)`)
			// Two parents: the rows are written apart (one statement would
			// be refused touching one row twice).
			fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
			fx.pages("/parents/p1/items", []any{map[string]any{"id": c.k1, "a": "first"}})
			fx.pages("/parents/p2/items", []any{map[string]any{"id": c.k2, "a": "second"}}, 0)
			_, err := fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			fx.pages("/parents/p2/items", []any{map[string]any{"id": c.k2, "a": "second"}})
			res, err := fx.run(engine.RunOptions{})
			rows := query(`SELECT a FROM %t ORDER BY a`)
			if err == nil || len(res.Summary.Duplicates) != 1 || !slices.Equal(rows, []string{"first", "zero"}) {
				t.Errorf("%s, keys %v and %v: err %v, duplicates %+v, rows %v: want the second failed as a duplicate, the first kept",
					c.native, c.k1, c.k2, err, res.Summary.Duplicates, rows)
			}
		})
	}
}
