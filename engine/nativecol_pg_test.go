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

// TestNativePostgresMoneyIntervalTimestamp: a table made outside ferry
// with a money, an interval second(3) and a timestamp without time zone
// column would store 1.005 as $1.01, PT1.2345S as 1.235 s and
// 10:00+02:00 as 10:00 (another instant), exit 0. Each such record fails
// alone, reported with its stream, table, column and value; the others
// are written as given, and the run exits non-zero.
func TestNativePostgresMoneyIntervalTimestamp(t *testing.T) {
	pg := dupBackends()
	if len(pg) < 2 {
		t.Skip("no PostgreSQL")
	}
	name, use := pg[1].setup(t)
	src := strings.Replace(dupSpec(name, "fail", ""), ", columns: {id: STRING, a: STRING, b: STRING}", "", 1)
	src = strings.Replace(src, "row: '{id, a, b}'", "row: '{id, a, b, c}'", 1)
	fx := newFixture(t, src, "")
	query := use(fx)
	query(`CREATE SCHEMA "` + name + `"`)
	query(`CREATE TABLE %t (id text PRIMARY KEY, a money, b interval second(3), c timestamp, _ferry_synced timestamptz NOT NULL, _ferry_deleted boolean NOT NULL DEFAULT false)`)
	fx.json("/parents", []any{map[string]any{"id": "p1"}})
	r := func(id string, a, b, c any) map[string]any { return map[string]any{"id": id, "a": a, "b": b, "c": c} }
	fx.pages("/parents/p1/items", []any{
		r("1", json.Number("1.5"), "PT1.5S", "2024-01-01T10:00:00Z"),
		r("2", json.Number("1.005"), "PT1S", "2024-01-01T10:00:00Z"),
		r("3", json.Number("1"), "PT1.2345S", "2024-01-01T10:00:00Z"),
		r("4", json.Number("1"), "PT1S", "2024-01-01T10:00:00+02:00"),
		r("5", "2.25", "1 day 00:00:01.25", "2024-01-01T11:00:00.5+00:00"),
	})
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	var msgs []string
	for _, f := range re.Failures {
		msgs = append(msgs, f.Error())
	}
	want := []string{
		`column "a", of type money, cannot hold "1.005"`,
		`column "b", of type interval second(3), cannot hold "PT1.2345S"`,
		`column "c", of type timestamp without time zone, cannot hold "2024-01-01T10:00:00+02:00"`,
	}
	ok := len(msgs) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.Contains(msgs[i], "stream items") && strings.Contains(msgs[i], `table "t"`) && strings.Contains(msgs[i], want[i])
	}
	if !ok {
		t.Errorf("failures = %q, want records 2 (a rounded), 3 (b rounded) and 4 (c's offset dropped), each alone", msgs)
	}
	if got := query(`SELECT id || ' ' || a || ' ' || b || ' ' || c FROM %t ORDER BY id`); !slices.Equal(got, []string{
		"1 $1.50 00:00:01.5 2024-01-01 10:00:00", "5 $2.25 1 day 00:00:01.25 2024-01-01 11:00:00.5"}) {
		t.Errorf("rows = %q, want 1 and 5 as given", got)
	}
}
