package engine_test

import (
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
// by k of declared type typ, with the on_duplicate mode (none: "").
func keyTypeSpec(name, typ, mode string) string {
	dup := ""
	if mode != "" {
		dup = ", on_duplicate: " + mode
	}
	return strings.Replace(specHead, "\nname: nl\n", "\nname: "+name+"\n", 1) + `streams:
  s:
    request: {path: /s}
tables:
  t: {from: s, primary_key: [k], row: '{k, a}', columns: {k: ` + typ + `, a: STRING}` + dup + `}
`
}

// keyTypeOutcome is what a run of keyTypeSpec tells of two records with
// keys k1 and k2 (JSON literals), a = "first" and "second": its failures
// (-1: the run succeeded), its duplicates (count and modes) and the rows
// t holds (their a).
type keyTypeOutcome struct {
	failures int
	failure  string
	dups     string
	rows     []string
}

func runKeyTypes(t *testing.T, be dupBackend, typ, mode, k1, k2 string) keyTypeOutcome {
	t.Helper()
	name, use := be.setup(t)
	fx := newFixture(t, keyTypeSpec(name, typ, mode), "")
	query := use(fx)
	fx.raw("/s", 200, `[{"k": `+k1+`, "a": "first"}, {"k": `+k2+`, "a": "second"}]`)
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
// number given as a string and as a number), are one row in the table:
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
// given ("2.0" and "2"; its numbers 2.0 and 2 are one key, a false
// duplicate said rather than a missed one, see
// TestDeclaredTypeChangedOverExistingColumn); an INT column widens to STRING for "2.0", which it
// cannot hold; a UTC_DATETIME key past the microsecond widens its column
// to STRING, which keeps each text. No duplicate, no failure, both rows.
func TestDistinctStoredKeysNoDuplicates(t *testing.T) {
	cases := []struct{ typ, k1, k2 string }{
		{"STRING", `"2.0"`, `"2"`},
		{"STRING", `"2024-01-01T00:00:00Z"`, `"2024-01-01T01:00:00+01:00"`},
		{"INT", `"2.0"`, `2`},
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
	t.Skip("design question: the duplicate check keys by the declared type, not the type an existing column keeps")
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
