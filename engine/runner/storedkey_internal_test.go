package runner

import (
	"encoding/json"
	"testing"
)

// TestPrimaryKeyByStoredValue: a key column of a declared type is keyed by
// the value the table stores (table.StoredValue), every column of a
// composite key; a STRING column by its text (a number as written); an
// undeclared one (its type is the first value's) by value for a number or
// a string holding one; a value the column widens for as given.
func TestPrimaryKeyByStoredValue(t *testing.T) {
	f := parseItemsSpec(t, `
  t: {from: items, primary_key: [at, n, s, u], columns: {at: UTC_DATETIME, n: DOUBLE, s: STRING}}
`)
	tb := &f.Tables.Items[0].Value
	var types []string // nil: the declared ones
	key := func(at, n, s, u any) string {
		t.Helper()
		k, err := primaryKey(tb, types, map[string]any{"at": at, "n": n, "s": s, "u": u})
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
	// A STRING column stores a number as written: 2.0 and 2 two keys,
	// 2.50 and "2.50" one.
	if a, b := key("2024-01-01T00:00:00Z", num("2"), num("2.0"), "y"), key("2024-01-01T00:00:00Z", num("2"), num("2"), "y"); a == b {
		t.Errorf("STRING numbers 2.0 and 2: one key %s, want two", a)
	}
	if a, b := key("2024-01-01T00:00:00Z", num("2"), num("2.50"), "y"), key("2024-01-01T00:00:00Z", num("2"), "2.50", "y"); a != b {
		t.Errorf("STRING 2.50 and \"2.50\": keys %s and %s, want one", a, b)
	}
	// An undeclared column may be made a number column by its first
	// value: numbers and strings holding one by value.
	if a, b := key("2024-01-01T00:00:00Z", num("2"), "x", num("1.0")), key("2024-01-01T00:00:00Z", num("2"), "x", num("1")); a != b {
		t.Errorf("undeclared 1.0 and 1: keys %s and %s, want one", a, b)
	}
	if a, b := key("2024-01-01T00:00:00Z", num("2"), "x", "2.50"), key("2024-01-01T00:00:00Z", num("2"), "x", num("2.5")); a != b {
		t.Errorf("undeclared \"2.50\" and 2.5: keys %s and %s, want one", a, b)
	}
	// The destination's types, where given, rule over the declared ones:
	// at a STRING (declared UTC_DATETIME) keeps each time's text, s a
	// DOUBLE (declared STRING) keys "2.0" and 2 as one.
	types = []string{"STRING", "DOUBLE", "DOUBLE", ""}
	if a, b := key("2024-01-01T00:00:00Z", num("2"), "x", "y"), key("2024-01-01T01:00:00+01:00", num("2"), "x", "y"); a == b {
		t.Errorf("at in a STRING column, one instant in two zones: one key %s, want two", a)
	}
	if a, b := key("t", num("2"), "2.0", "y"), key("t", num("2"), num("2"), "y"); a != b {
		t.Errorf("s in a DOUBLE column, \"2.0\" and 2: keys %s and %s, want one", a, b)
	}
}

// TestKeyTypeOf: a sync keeps a key column's saved type, unless the
// column now merges forms it keys apart (cur), and STRING against JSON
// (each merges forms the other keeps apart) keys by value.
func TestKeyTypeOf(t *testing.T) {
	for _, c := range []struct{ saved, cur, want string }{
		{"DOUBLE", "STRING", "DOUBLE"},             // widened: kept
		{"UTC_DATETIME", "STRING", "UTC_DATETIME"}, // widened for a key past the microsecond
		{"INT", "DECIMAL", "INT"},
		{"", "LONG", ""},
		{"STRING", "UTC_DATETIME", "UTC_DATETIME"}, // made anew
		{"STRING", "", ""},
		{"STRING", "DOUBLE", "DOUBLE"},
		{"LONG", "UTC_DATETIME", "UTC_DATETIME"},
		{"STRING", "JSON", ""},
		{"JSON", "STRING", ""},
		{"JSON", "JSON", "JSON"},
		// A table made anew with a text key compared its way (a
		// collation, citext): the new column's way, or one row of two.
		{"STRING", "NOCASE", "NOCASE"},
		{"STRING", "LOWER", "LOWER"},
		{"DOUBLE", "RTRIM", "RTRIM"},
	} {
		if got := KeyTypeOf(c.saved, c.cur); got != c.want {
			t.Errorf("KeyTypeOf(%q, %q) = %q, want %q", c.saved, c.cur, got, c.want)
		}
	}
}

// TestNativeKey: the key types of PostgreSQL columns that store more
// forms as one (table.KeyTypes) key them as PostgreSQL stores them (the
// values below are what PostgreSQL 16 gave for each).
func TestNativeKey(t *testing.T) {
	for _, c := range []struct {
		typ  string
		v    any
		want string
	}{
		{"UUID", "{A0EEBC99-9c0b4ef8bb6d6bb9bd380a11}", "a0eebc999c0b4ef8bb6d6bb9bd380a11"},
		{"DECIMAL(10,2)", json.Number("-2.005"), "-2.01"},
		{"DECIMAL(10,2)", "2.005", "2.01"},
		{"DECIMAL(10,2)", json.Number("2.004"), "2"},
		{"DECIMAL(10,2)", json.Number("1e-3000"), "0"},
		{"DECIMAL(4)", json.Number("2.5"), "3"},
		{"DECIMAL(2,-1)", json.Number("125"), "130"},
		{"UTC_DATETIME(3)", "1999-12-31T23:59:59.9995Z", "1999-12-31T23:59:59.999000"},
		{"UTC_DATETIME(3)", "2024-01-02T01:00:00.0005+01:00", "2024-01-02T00:00:00.001000"},
		{"LOCAL_DATETIME(6)", "2024-01-02T00:00:00.0000005Z", "2024-01-02T00:00:00.000000"},
		{"LOCAL_DATETIME(6)", "2024-01-02 00:00:00.0000015", "2024-01-02T00:00:00.000002"},
		{"LOCAL_DATETIME(6)", "2024-01-02T05:00:00+05:00", "2024-01-02T05:00:00.000000"},
	} {
		got, ok := nativeKey(c.typ, c.v)
		if !ok || got != c.want {
			t.Errorf("nativeKey(%s, %v) = %q, %v; want %q", c.typ, c.v, got, ok, c.want)
		}
	}
	for _, c := range []struct {
		typ string
		v   any
	}{{"UUID", "not-a-uuid"}, {"UUID", json.Number("1")}, {"DECIMAL(10,2)", "x"}, {"UTC_DATETIME(3)", "x"}, {"STRING", "x"}} {
		if got, ok := nativeKey(c.typ, c.v); ok {
			t.Errorf("nativeKey(%s, %v) = %q, want none", c.typ, c.v, got)
		}
	}
	if got := KeyTypeOf("", "UUID"); got != "UUID" {
		t.Errorf("KeyTypeOf(\"\", UUID) = %q, want UUID", got)
	}
}
