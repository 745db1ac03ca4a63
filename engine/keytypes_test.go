package engine_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// keyTypeSpec is a table t fed by stream s (the body served at /s), keyed
// by k of declared type typ (none: ""), with the on_duplicate mode (none:
// "").
func keyTypeSpec(name, typ, mode string) string {
	dup := ""
	if mode != "" {
		dup = ", on_duplicate: " + mode
	}
	cols := "a: STRING"
	if typ != "" {
		cols = "k: " + typ + ", " + cols
	}
	return strings.Replace(specHead, "\nname: nl\n", "\nname: "+name+"\n", 1) + `streams:
  s:
    request: {path: /s}
tables:
  t: {from: s, primary_key: [k], row: '{k, a}', columns: {` + cols + `}` + dup + `}
`
}

// keyTypeOutcome is what a run of keyTypeSpec tells of records with the
// keys given (JSON literals), a = "first", "second", "third"…: its
// failures (-1: the run succeeded), its duplicates (count and modes) and
// the rows t holds (their a).
type keyTypeOutcome struct {
	failures int
	failure  string
	dups     string
	rows     []string
}

func runKeyTypes(t *testing.T, be dupBackend, typ, mode string, keys ...string) keyTypeOutcome {
	t.Helper()
	name, use := be.setup(t)
	fx := newFixture(t, keyTypeSpec(name, typ, mode), "")
	query := use(fx)
	names := []string{"first", "second", "third", "fourth"}
	var recs []string
	for i, k := range keys {
		recs = append(recs, `{"k": `+k+`, "a": "`+names[i]+`"}`)
	}
	fx.raw("/s", 200, "["+strings.Join(recs, ", ")+"]")
	res, err := fx.run(engine.RunOptions{})
	out := keyTypeOutcome{failures: -1}
	if err != nil {
		re := runErrorOf(t, err)
		out.failures = len(re.Failures)
		if len(re.Failures) > 0 {
			out.failure = re.Failures[0].Error()
		}
	}
	var dups []string
	for _, d := range res.Summary.Duplicates {
		modes := slices.Sorted(maps.Keys(d.Modes))
		var ms []string
		for _, m := range modes {
			ms = append(ms, fmt.Sprintf("%s=%d", m, d.Modes[m]))
		}
		dups = append(dups, fmt.Sprintf("%s %s: %d (%s)", d.Kind, d.Name, d.Count, strings.Join(ms, ",")))
	}
	out.dups = strings.Join(dups, "; ")
	out.rows = query(`SELECT a FROM %t ORDER BY a`)
	return out
}

// TestDuplicateKeyInAnotherForm: keys that differ only in form, which a
// column of the declared type stores as one value (a time in two zones, a
// number given as a string and as a number; a STRING column a number as
// written; an INT or LONG column widened to DECIMAL for 2.5, which then
// takes "2.50"; an undeclared column made DOUBLE or LONG by its first
// value), are one row in the table:
// the duplicate check must see one key, and the run end as it does for two
// records of the very same key (same failures, same duplicates, same row
// kept), under each on_duplicate mode and none, not with one record
// overwritten and nothing said.
func TestDuplicateKeyInAnotherForm(t *testing.T) {
	cases := []struct{ typ, k1, k2 string }{
		{"UTC_DATETIME", `"2024-01-01T00:00:00Z"`, `"2024-01-01T01:00:00+01:00"`},
		{"UTC_DATETIME", `"2024-01-01T00:00:00.5Z"`, `"2024-01-01 00:00:00.500000"`},
		{"DOUBLE", `"2.0"`, `2`},
		{"DOUBLE", `2.5`, `"25e-1"`},
		{"DECIMAL", `"2.0"`, `2`},
		{"DECIMAL", `1e50`, `10e49`},
		{"INT", `"2"`, `2.0`},
		{"LONG", `2`, `"2"`},
		{"BOOLEAN", `true`, `"true"`},
		{"STRING", `2.50`, `"2.50"`},
		{"STRING", `1e2`, `"1e2"`},
		{"LONG", `2.5`, `"2.50"`},
		{"INT", `2.5`, `"2.50"`},
		{"", `2.5`, `"2.50"`},
		{"", `2.50`, `"2.50"`},
	}
	for _, be := range dupBackends() {
		for _, mode := range []string{"fail", "warn", "merge", ""} {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/%s/%s/%s_%s", be.name, mode, tc.typ, tc.k1, tc.k2), func(t *testing.T) {
					same := runKeyTypes(t, be, tc.typ, mode, tc.k1, tc.k1)
					if same.dups == "" || len(same.rows) != 1 {
						t.Fatalf("baseline (one key twice): duplicates %q, rows %v: want one duplicate, one row", same.dups, same.rows)
					}
					got := runKeyTypes(t, be, tc.typ, mode, tc.k1, tc.k2)
					if got.failures != same.failures || got.dups != same.dups || !slices.Equal(got.rows, same.rows) {
						t.Errorf("keys %s and %s: failures %d (%s), duplicates %q, rows %v; want as for %s twice: failures %d (%s), duplicates %q, rows %v",
							tc.k1, tc.k2, got.failures, got.failure, got.dups, got.rows, tc.k1, same.failures, same.failure, same.dups, same.rows)
					}
				})
			}
		}
	}
}

// TestDistinctStoredKeysNoDuplicates: the reverse. Keys that the table
// stores as two rows are two keys: a STRING column keeps its text as
// given ("2.0" and "2", the numbers 2.0 and 2 as written); a UTC_DATETIME
// key past the microsecond widens its column to STRING, which keeps each
// text. No duplicate, no failure, both rows.
//
// Not here: an INT column given "2.0" and 2 widens to STRING, two rows,
// yet they are one key (a false duplicate, said): given 2.5 first it
// widens to DECIMAL, which stores them as one row
// (TestWidenedKeyColumnMergesForms), and the check, keying before a batch
// is written, keys a number column's numbers by their value.
func TestDistinctStoredKeysNoDuplicates(t *testing.T) {
	cases := []struct{ typ, k1, k2 string }{
		{"STRING", `"2.0"`, `"2"`},
		{"STRING", `2.0`, `2`},
		{"STRING", `"2024-01-01T00:00:00Z"`, `"2024-01-01T01:00:00+01:00"`},
		{"UTC_DATETIME", `"2024-01-01T00:00:00.0000001Z"`, `"2024-01-01T01:00:00.0000001+01:00"`},
	}
	for _, be := range dupBackends() {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%s/%s_%s", be.name, tc.typ, tc.k1, tc.k2), func(t *testing.T) {
				got := runKeyTypes(t, be, tc.typ, "fail", tc.k1, tc.k2)
				if got.failures != -1 || got.dups != "" || !slices.Equal(got.rows, []string{"first", "second"}) {
					t.Errorf("keys %s and %s: failures %d (%s), duplicates %q, rows %v; want no failure, no duplicate, both rows",
						tc.k1, tc.k2, got.failures, got.failure, got.dups, got.rows)
				}
			})
		}
	}
}

// TestDuplicateKeyInAnotherFormAcrossResumedRuns: p1's row, keyed by a
// time given in UTC, is committed by a run that fails on p2; the resumed
// run reads only p2, whose item gives the same instant in another zone.
// The key the first run saved is the stored value's, so the resumed run
// fails p2's row as a duplicate (on_duplicate: fail) and keeps p1's.
func TestDuplicateKeyInAnotherFormAcrossResumedRuns(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			src := strings.Replace(dupSpec(name, "fail", ""), "columns: {id: STRING,", "columns: {id: UTC_DATETIME,", 1)
			if !strings.Contains(src, "id: UTC_DATETIME") {
				t.Fatal("dupSpec declares no id column to retype")
			}
			fx := newFixture(t, src, "")
			query := use(fx)
			fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
			fx.pages("/parents/p1/items", []any{rec("2024-01-01T00:00:00Z", "a1", nil)})
			fx.pages("/parents/p2/items", []any{rec("2024-01-01T01:00:00+01:00", "a2", nil)}, 0)
			_, err := fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			const rows = `SELECT a FROM %t ORDER BY a`
			if got := query(rows); !slices.Equal(got, []string{"a1"}) {
				t.Fatalf("after the failed run, t = %v, want p1's row", got)
			}
			fx.pages("/parents/p2/items", []any{rec("2024-01-01T01:00:00+01:00", "a2", nil)})
			fx.takeRequests()
			res, err := fx.run(engine.RunOptions{})
			if got := fx.takeRequests(); slices.Contains(got, "/parents/p1/items") {
				t.Fatalf("the resumed run read p1's items again (%v): the test needs a run that does not", got)
			}
			re := runErrorOf(t, err)
			if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "on_duplicate: fail") {
				t.Errorf("failures = %v, want p2's row failed as a duplicate", re.Failures)
			}
			if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Count != 1 {
				t.Errorf("duplicates = %+v, want t: 1", res.Summary.Duplicates)
			}
			if got := query(rows); !slices.Equal(got, []string{"a1"}) {
				t.Errorf("t = %v, want p1's row kept", got)
			}
		})
	}
}

// TestDeclaredTypeChangedOverExistingColumn: a key column's declared type
// names the type of a column the table makes; a table made earlier keeps
// its column's type (a DOUBLE declared STRING since stores 2 and 2.0 as one
// value). The duplicate check must not key them apart, or the second
// record replaces the first's row with no duplicate counted and exit 0.
//
// A STRING key column's numbers are keyed by value, as an undeclared
// one's: in a new STRING column 2 and 2.0 are then a false duplicate,
// said, where keying them apart lost a record here without a word.
func TestDeclaredTypeChangedOverExistingColumn(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, keyTypeSpec(name, "DOUBLE", "fail"), "")
			query := use(fx)
			fx.raw("/s", 200, `[{"k": 1, "a": "zero"}]`)
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(fx.dir, "s2.yaml")
			if err := os.WriteFile(path, []byte(keyTypeSpec(name, "STRING", "fail")), 0o644); err != nil {
				t.Fatal(err)
			}
			sp, err := engine.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			fx.spec = sp
			fx.raw("/s", 200, `[{"k": 2, "a": "first"}, {"k": 2.0, "a": "second"}]`)
			res, err := fx.run(engine.RunOptions{})
			rows := query(`SELECT a FROM %t ORDER BY a`)
			if len(rows) == 3 {
				return // the column took the declared type: two rows, no loss
			}
			if err == nil || len(res.Summary.Duplicates) != 1 {
				t.Errorf("rows %v, duplicates %+v, err %v: keys 2 and 2.0 are one row of the DOUBLE column, want them a duplicate (on_duplicate: fail)", rows, res.Summary.Duplicates, err)
			}
		})
	}
}

// The same over other forms the check keys apart under STRING but the old
// column stores as one row: a UTC_DATETIME column given one instant in two
// zones, a DOUBLE column given "2.0" (a string) and 2. One record replaces
// the other, no duplicate, exit 0 (sqlite, postgres). Skipped: a design
// question (the check would need the column's type in the table, or key
// STRING text coarsely and report real STRING keys such as "1.0" and "1"
// as duplicates).
func TestDeclaredTypeChangedOverExistingColumnOtherForms(t *testing.T) {
	cases := []struct{ from, k0, k1, k2 string }{
		{"UTC_DATETIME", `"2024-01-01T00:00:00Z"`, `"2024-01-02T00:00:00Z"`, `"2024-01-02T01:00:00+01:00"`},
		{"DOUBLE", `1`, `"2.0"`, `2`},
	}
	for _, c := range cases {
		for _, be := range dupBackends() {
			t.Run(c.from+"/"+be.name, func(t *testing.T) {
				name, use := be.setup(t)
				fx := newFixture(t, keyTypeSpec(name, c.from, "fail"), "")
				query := use(fx)
				fx.raw("/s", 200, `[{"k": `+c.k0+`, "a": "zero"}]`)
				if _, err := fx.run(engine.RunOptions{}); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(fx.dir, "s2.yaml")
				if err := os.WriteFile(path, []byte(keyTypeSpec(name, "STRING", "fail")), 0o644); err != nil {
					t.Fatal(err)
				}
				sp, err := engine.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				fx.spec = sp
				fx.raw("/s", 200, `[{"k": `+c.k1+`, "a": "first"}, {"k": `+c.k2+`, "a": "second"}]`)
				res, err := fx.run(engine.RunOptions{})
				rows := query(`SELECT a FROM %t ORDER BY a`)
				if len(rows) == 3 {
					return // the column took the declared type: no loss
				}
				if err == nil || len(res.Summary.Duplicates) != 1 {
					t.Errorf("rows %v, duplicates %+v, err %v: keys %s and %s are one row of the %s column, want them a duplicate (on_duplicate: fail)", rows, res.Summary.Duplicates, err, c.k1, c.k2, c.from)
				}
			})
		}
	}
}

// TestWidenedKeyColumnMergesForms: an INT key column given 2.5 widens to
// DECIMAL, which then stores "2.0" and 2 as one row. The check keys a
// number column's numbers by value, not by the INT the column had when
// the batch was keyed: the third record is a duplicate of the second
// (on_duplicate: fail), not its silent replacement.
func TestWidenedKeyColumnMergesForms(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			got := runKeyTypes(t, be, "INT", "fail", `2.5`, `"2.0"`, `2`)
			if got.failures != 1 || got.dups != "table t: 1 (fail=1)" || !slices.Equal(got.rows, []string{"first", "second"}) {
				t.Errorf("failures %d (%s), duplicates %q, rows %v; want the third failed as a duplicate, rows first and second",
					got.failures, got.failure, got.dups, got.rows)
			}
		})
	}
}

// respec makes fx run keyTypeSpec(name, typ, mode) from now on.
func respec(t *testing.T, fx *fixture, name, typ, mode string) {
	t.Helper()
	path := filepath.Join(fx.dir, "s2.yaml")
	if err := os.WriteFile(path, []byte(keyTypeSpec(name, typ, mode)), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fx.spec = sp
}

// TestDeclaredTypeChangedOverExistingStringColumn: the reverse of
// TestDeclaredTypeChangedOverExistingColumnOtherForms. A STRING key
// column later declared UTC_DATETIME stays STRING and keeps one instant
// in two zones as two rows: the check keys by the column's type, so they
// are two keys, not a duplicate that fails the run.
func TestDeclaredTypeChangedOverExistingStringColumn(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, keyTypeSpec(name, "STRING", "fail"), "")
			query := use(fx)
			fx.raw("/s", 200, `[{"k": "x", "a": "zero"}]`)
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			respec(t, fx, name, "UTC_DATETIME", "fail")
			fx.raw("/s", 200, `[{"k": "2024-01-02T00:00:00Z", "a": "first"}, {"k": "2024-01-02T01:00:00+01:00", "a": "second"}]`)
			res, err := fx.run(engine.RunOptions{})
			rows := query(`SELECT a FROM %t ORDER BY a`)
			if err != nil || len(res.Summary.Duplicates) != 0 || !slices.Equal(rows, []string{"first", "second", "zero"}) {
				t.Errorf("err %v, duplicates %+v, rows %v: want no duplicate, three rows", err, res.Summary.Duplicates, rows)
			}
		})
	}
}

// TestKeyTypesKeptAcrossResumedRuns: the first run of a sync makes t,
// its key column undeclared: typed by its first value, which the check
// cannot know ahead, so it keys numbers and number strings by value. p1's
// "2.50" makes the column STRING; the run fails on p2. The run resuming
// the sync meets p2's 2.50, which the STRING column stores as "2.50", p1's
// row: it must key it as the sync began (by value), not by the STRING
// the column is now (as written), or its key misses the one p1 saved and
// p2's record replaces p1's without a word.
func TestKeyTypesKeptAcrossResumedRuns(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			src := strings.Replace(dupSpec(name, "fail", ""), "columns: {id: STRING,", "columns: {", 1)
			if strings.Contains(src, "id: STRING") {
				t.Fatal("dupSpec's id column is still declared")
			}
			fx := newFixture(t, src, "")
			query := use(fx)
			fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
			fx.pages("/parents/p1/items", []any{rec("2.50", "a1", nil)})
			p2 := []any{map[string]any{"id": json.Number("2.50"), "a": "a2", "b": nil}}
			fx.pages("/parents/p2/items", p2, 0)
			_, err := fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			const rows = `SELECT a FROM %t ORDER BY a`
			if got := query(rows); !slices.Equal(got, []string{"a1"}) {
				t.Fatalf("after the failed run, t = %v, want p1's row", got)
			}
			fx.pages("/parents/p2/items", p2)
			res, err := fx.run(engine.RunOptions{})
			if err == nil || len(res.Summary.Duplicates) != 1 {
				t.Errorf("err %v, duplicates %+v: want p2's row failed as a duplicate", err, res.Summary.Duplicates)
			}
			if got := query(rows); !slices.Equal(got, []string{"a1"}) {
				t.Errorf("t = %v, want p1's row kept", got)
			}
		})
	}
}

// TestEmptyTableKeyTypedByFirstValue: a run whose stream gave no rows made
// t empty, its undeclared key column STRING; the next run's first value,
// 2.5, types the column DOUBLE, as a new column's would, and "2.50" is
// then the same row. The check must not key by the STRING the column has
// before the run but as for a column its first value types: a duplicate.
func TestEmptyTableKeyTypedByFirstValue(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, keyTypeSpec(name, "", "fail"), "")
			query := use(fx)
			fx.raw("/s", 200, `[]`)
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			fx.raw("/s", 200, `[{"k": 2.5, "a": "first"}, {"k": "2.50", "a": "second"}]`)
			res, err := fx.run(engine.RunOptions{})
			rows := query(`SELECT a FROM %t ORDER BY a`)
			if err == nil || len(res.Summary.Duplicates) != 1 || !slices.Equal(rows, []string{"first"}) {
				t.Errorf("err %v, duplicates %+v, rows %v: want the second failed as a duplicate, the first kept", err, res.Summary.Duplicates, rows)
			}
		})
	}
}

// TestNativeKeyColumnKeyedByValue: a table made outside ferry whose key
// column has a type ferry does not make (SQLite's DOUBLE, REAL affinity:
// "2.50" stored as 2.5), holding a row, is written as it is; its type
// unknown to the check, which keys as for a column typed by its first
// value: 2.5 and "2.50" one key, not two that overwrite one row.
func TestNativeKeyColumnKeyedByValue(t *testing.T) {
	fx := newFixture(t, keyTypeSpec("nl", "", "fail"), "")
	fx.query(`CREATE TABLE "nl__t" (k DOUBLE PRIMARY KEY, a TEXT, _ferry_synced TEXT, _ferry_deleted BOOLEAN)`)
	fx.query(`INSERT INTO "nl__t" (k, a, _ferry_synced, _ferry_deleted) VALUES (1, 'zero', '2024-01-01T00:00:00.000000Z', false)`)
	fx.raw("/s", 200, `[{"k": 2.5, "a": "first"}, {"k": "2.50", "a": "second"}]`)
	res, err := fx.run(engine.RunOptions{})
	rows := fx.query(`SELECT a FROM "nl__t" ORDER BY a`)
	if err == nil || len(res.Summary.Duplicates) != 1 || !slices.Equal(rows, []string{"first", "zero"}) {
		t.Errorf("err %v, duplicates %+v, rows %v: want the second failed as a duplicate, the first kept", err, res.Summary.Duplicates, rows)
	}
}

// TestPlanKeysByExistingColumnType: ferry plan's duplicate check keys as
// the run's does, by the existing column's type: a DOUBLE key column
// declared STRING since stores "2.0" and 2 as one row, a duplicate the
// plan must show too.
func TestPlanKeysByExistingColumnType(t *testing.T) {
	fx := newFixture(t, keyTypeSpec("nl", "DOUBLE", "warn"), "")
	fx.raw("/s", 200, `[{"k": 1, "a": "zero"}]`)
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	respec(t, fx, "nl", "STRING", "warn")
	fx.raw("/s", 200, `[{"k": "2.0", "a": "first"}, {"k": 2, "a": "second"}]`)
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := engine.PlanRun(t.Context(), fx.spec, cfg, engine.PlanOptions{Dest: fx.db})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Summary.Duplicates; len(d) != 1 || d[0].Count != 1 {
		t.Errorf("plan duplicates = %+v, want t: 1", d)
	}
}

// TestKeyTypesOfTableAddedMidSync: a table the spec adds while a sync is
// open (u, its key undeclared) is keyed by the types the run that first
// meets it finds, saved with the sync as the others': u is made by the
// second run, typed STRING by p2's "2.50", and the third run, resuming
// the sync, still keys p3's 2.50 as that run did (by value), so it meets
// p2's saved key: a duplicate (on_duplicate: fail), not p2's row replaced.
func TestKeyTypesOfTableAddedMidSync(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			src := func(u bool) string {
				s := strings.Replace(specHead, "\nname: nl\n", "\nname: "+name+"\n", 1) + `streams:
  owners:
    request: {path: /parents}
  items:
    for_each: owners
    request:
      path: /parents/${ parent.id }/items
    paginate: {type: offset, param: offset, size: 1, size_param: limit}
tables:
  t: {from: items, primary_key: [a], row: '{a}', columns: {a: STRING}, on_duplicate: fail}
`
				if u {
					s += "  u: {from: items, primary_key: [id], row: '{id, a}', on_duplicate: fail}\n"
				}
				return s
			}
			fx := newFixture(t, src(false), "")
			query := use(fx)
			load := func(u bool) {
				path := filepath.Join(fx.dir, "s2.yaml")
				if err := os.WriteFile(path, []byte(src(u)), 0o644); err != nil {
					t.Fatal(err)
				}
				sp, err := engine.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				fx.spec = sp
			}
			fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}, map[string]any{"id": "p3"}})
			p2 := []any{map[string]any{"id": "2.50", "a": "a2"}}
			p3 := []any{map[string]any{"id": json.Number("2.50"), "a": "a3"}}
			fx.pages("/parents/p1/items", []any{map[string]any{"id": "x", "a": "a1"}})
			fx.pages("/parents/p2/items", p2, 0)
			fx.pages("/parents/p3/items", p3, 0)
			_, err := fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			load(true)
			fx.pages("/parents/p2/items", p2)
			_, err = fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			urows := strings.Replace(`SELECT a FROM %t ORDER BY a`, "%t", map[bool]string{true: `"` + name + `__u"`, false: `"` + name + `"."u"`}[be.name == "sqlite"], 1)
			if got := query(urows); !slices.Equal(got, []string{"a2"}) {
				t.Fatalf("after the second run, u = %v, want p2's row", got)
			}
			fx.pages("/parents/p3/items", p3)
			res, err := fx.run(engine.RunOptions{})
			if err == nil || len(res.Summary.Duplicates) != 1 {
				t.Errorf("err %v, duplicates %+v: want p3's row of u failed as a duplicate", err, res.Summary.Duplicates)
			}
			if got := query(urows); !slices.Equal(got, []string{"a2"}) {
				t.Errorf("u = %v, want p2's row kept", got)
			}
		})
	}
}

// TestKeyTypesOfTableMadeAnewMidSync: t, made by the sync's first run
// with its key column STRING, is dropped while the sync is open and
// declared UTC_DATETIME (to change a key column's type, the table is made
// anew): the run resuming the sync makes it anew, UTC_DATETIME, which
// stores one instant in two zones as one row. The check must key as that
// column does (one key: a duplicate, said), not by the STRING the sync
// saved (two keys, one record replacing the other without a word).
func TestKeyTypesOfTableMadeAnewMidSync(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, dupSpec(name, "fail", ""), "")
			query := use(fx)
			fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
			fx.pages("/parents/p1/items", []any{rec("x", "a1", nil)})
			p2 := []any{rec("2024-01-02T00:00:00Z", "a2", nil), rec("2024-01-02T01:00:00+01:00", "a3", nil)}
			fx.pages("/parents/p2/items", p2, 0)
			_, err := fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			query(`DROP TABLE %t`)
			src := strings.Replace(dupSpec(name, "fail", ""), "columns: {id: STRING,", "columns: {id: UTC_DATETIME,", 1)
			path := filepath.Join(fx.dir, "s2.yaml")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			if fx.spec, err = engine.Load(path); err != nil {
				t.Fatal(err)
			}
			fx.pages("/parents/p2/items", p2)
			res, err := fx.run(engine.RunOptions{})
			rows := query(`SELECT a FROM %t ORDER BY a`)
			if err == nil || len(res.Summary.Duplicates) != 1 || !slices.Equal(rows, []string{"a2"}) {
				t.Errorf("err %v, duplicates %+v, rows %v: want a3 failed as a duplicate of a2, a2 kept", err, res.Summary.Duplicates, rows)
			}
		})
	}
}

// TestFalseDuplicateSaysHowKeysCompared: an INT key column given "2.0"
// (p1) is made STRING and keeps it apart from p2's 2, which the check
// keys by value as the INT it was: a false duplicate, which fails the run
// (on_duplicate unset: a collision). Its failure must say so: the column,
// the value as given, the type it was compared by, and that the duplicate
// may be false — not only that a record was lost.
func TestFalseDuplicateSaysHowKeysCompared(t *testing.T) {
	be := dupBackends()[0]
	name, use := be.setup(t)
	src := strings.Replace(dupSpec(name, "warn", ""), "columns: {id: STRING,", "columns: {id: INT,", 1)
	src = strings.Replace(src, ", on_duplicate: warn", "", 1)
	fx := newFixture(t, src, "")
	query := use(fx)
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", []any{map[string]any{"id": "2.0", "a": "first"}})
	fx.pages("/parents/p2/items", []any{map[string]any{"id": 2, "a": "second"}})
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 {
		t.Fatalf("failures %v, want one", re.Failures)
	}
	msg := re.Failures[0].Error()
	for _, want := range []string{`table t: primary key "2"`, "id given as 2, compared as a column of type INT stores it", "this duplicate is false"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q: want %q in it", msg, want)
		}
	}
	if rows := query(`SELECT a FROM %t ORDER BY a`); !slices.Equal(rows, []string{"first", "second"}) {
		t.Errorf("rows %v, want both (the column keeps the two apart)", rows)
	}
}

// TestJSONKeyColumnObjectsByValue: a JSON key column (PostgreSQL's
// jsonb) stores {"a": 1.0} and {"a": 1} as one row, its numbers compared
// by value: the check must see one key (a duplicate, said; on SQLite,
// which stores the text, a false one), not two that let p2's record
// replace p1's with no word.
func TestJSONKeyColumnObjectsByValue(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			for _, typ := range []string{"JSON", ""} {
				src := strings.Replace(dupSpec(name, "fail", ""), "columns: {id: STRING,", "columns: {id: JSON,", 1)
				if typ == "" {
					src = strings.Replace(dupSpec(name, "fail", ""), "columns: {id: STRING,", "columns: {", 1)
				}
				fx := newFixture(t, src, "")
				query := use(fx)
				query(`DROP TABLE IF EXISTS %t`)
				query(`DROP TABLE IF EXISTS %s`)
				fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
				fx.pages("/parents/p1/items", []any{map[string]any{"id": map[string]any{"a": json.Number("1.0"), "b": []any{json.Number("2e1")}}, "a": "first"}})
				p2 := []any{map[string]any{"id": map[string]any{"b": []any{json.Number("20")}, "a": json.Number("1")}, "a": "second"}}
				fx.pages("/parents/p2/items", p2, 0)
				_, err := fx.run(engine.RunOptions{})
				runErrorOf(t, err)
				fx.pages("/parents/p2/items", p2)
				res, err := fx.run(engine.RunOptions{})
				rows := query(`SELECT a FROM %t ORDER BY a`)
				if err == nil || len(res.Summary.Duplicates) != 1 || !slices.Equal(rows, []string{"first"}) {
					t.Errorf("id %q: err %v, duplicates %+v, rows %v: want p2's record failed as a duplicate, p1's kept", typ, err, res.Summary.Duplicates, rows)
				}
			}
		})
	}
}
