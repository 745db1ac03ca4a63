package engine_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestNativePostgresColumnRefusesChangedValue: a table made outside ferry
// whose columns are narrower than the values (varchar(3), numeric(10,2))
// would store them cut or rounded, exit 0. Each such record fails alone,
// reported with its stream, table, column and value; the others are
// written, and the run exits non-zero.
func TestNativePostgresColumnRefusesChangedValue(t *testing.T) {
	pg := dupBackends()
	if len(pg) < 2 {
		t.Skip("no PostgreSQL")
	}
	name, use := pg[1].setup(t)
	src := strings.Replace(dupSpec(name, "fail", ""), ", columns: {id: STRING, a: STRING, b: STRING}", "", 1)
	fx := newFixture(t, src, "")
	query := use(fx)
	query(`CREATE SCHEMA "` + name + `"`)
	query(`CREATE TABLE %t (id text PRIMARY KEY, a varchar(3), b numeric(10,2), _ferry_synced timestamptz NOT NULL, _ferry_deleted boolean NOT NULL DEFAULT false)`)
	fx.json("/parents", []any{map[string]any{"id": "p1"}})
	fx.pages("/parents/p1/items", []any{
		rec("1", "abc", json.Number("1.5")),
		rec("2", "abcd", json.Number("1")),
		rec("3", "x", json.Number("1.2345")),
		rec("4", "y", json.Number("2")),
	})
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	var msgs []string
	for _, f := range re.Failures {
		msgs = append(msgs, f.Error())
	}
	if len(msgs) != 2 ||
		!strings.Contains(msgs[0], "stream items") || !strings.Contains(msgs[0], `column "a", of type character varying(3), cannot hold "abcd"`) ||
		!strings.Contains(msgs[1], "stream items") || !strings.Contains(msgs[1], `column "b", of type numeric(10,2), cannot hold "1.2345"`) {
		t.Errorf("failures = %q, want records 2 (a cut) and 3 (b rounded), each alone", msgs)
	}
	if got := query(`SELECT id || ' ' || a || ' ' || b FROM %t ORDER BY id`); !slices.Equal(got, []string{"1 abc 1.50", "4 y 2.00"}) {
		t.Errorf("rows = %q, want 1 and 4 as given", got)
	}
}
