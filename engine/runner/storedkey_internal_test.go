package runner

import (
	"encoding/json"
	"testing"
)

// TestPrimaryKeyByStoredValue: a key column of a declared type is keyed by
// the value the table stores (table.StoredValue), every column of a
// composite key; a STRING column, an undeclared one (its type is the
// first value's) and a value the column widens for keep the key text as
// given.
func TestPrimaryKeyByStoredValue(t *testing.T) {
	f := parseItemsSpec(t, `
  t: {from: items, primary_key: [at, n, s, u], columns: {at: UTC_DATETIME, n: DOUBLE, s: STRING}}
`)
	tb := &f.Tables.Items[0].Value
	key := func(at, n, s, u any) string {
		t.Helper()
		k, err := primaryKey(tb, map[string]any{"at": at, "n": n, "s": s, "u": u})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	num := func(s string) json.Number { return json.Number(s) }
	base := key("2024-01-01T00:00:00Z", num("2"), "x", "y")
	if want := `["2024-01-01T00:00:00.000000Z","2","x","y"]`; base != want {
		t.Errorf("key = %s, want %s", base, want)
	}
	if k := key("2024-01-01T01:00:00+01:00", "2.0", "x", "y"); k != base {
		t.Errorf("key = %s, want %s: one time, one DOUBLE", k, base)
	}
	for _, k := range []string{
		key("2024-01-01T00:00:00Z", num("2"), "x.0", "y"),
		key("2024-01-01T00:00:00Z", num("2"), "x", "y "),
		key("2024-01-01T00:00:00.0000001Z", num("2"), "x", "y"), // widens: stored as given
		key("2024-01-01T00:00:00Z", "two", "x", "y"),
	} {
		if k == base {
			t.Errorf("key %s: want another key than %s", k, base)
		}
	}
	// A STRING column, like an undeclared one, keeps keyText's key: the
	// numbers 2.0 and 2 one key (a table made before the declaration may
	// hold a DOUBLE there), the strings "2.0" and "2" two.
	if a, b := key("2024-01-01T00:00:00Z", num("2"), num("2.0"), "y"), key("2024-01-01T00:00:00Z", num("2"), num("2"), "y"); a != b {
		t.Errorf("STRING numbers 2.0 and 2: keys %s and %s, want one", a, b)
	}
	if a, b := key("2024-01-01T00:00:00Z", num("2"), "x", num("1.0")), key("2024-01-01T00:00:00Z", num("2"), "x", num("1")); a != b {
		t.Errorf("undeclared 1.0 and 1: keys %s and %s, want one", a, b)
	}
	if a, b := key("2024-01-01T00:00:00Z", num("2"), "x", "2.0"), key("2024-01-01T00:00:00Z", num("2"), "x", num("2")); a == b {
		t.Errorf("undeclared \"2.0\" and 2: one key %s, want two", a)
	}
}
