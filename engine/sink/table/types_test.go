package table

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"
)

func TestFitsAndWiden(t *testing.T) {
	tests := []struct {
		typ   colType
		v     any
		fits  bool
		widen colType // when !fits
	}{
		{typeString, row("a", n("1")), true, 0},
		{typeJSON, "text", true, 0},
		{typeBool, true, true, 0},
		{typeBool, "false", true, 0},
		{typeBool, "yes", false, typeString},
		{typeBool, n("1"), false, typeString},
		{typeInt, n("2147483647"), true, 0},
		{typeInt, n("2147483648"), false, typeLong},
		{typeInt, "42", true, 0},
		{typeInt, "042", false, typeString},
		{typeInt, n("3.0"), true, 0},
		{typeInt, n("3.5"), false, typeDecimal},
		{typeLong, n("9223372036854775807"), true, 0},
		{typeLong, n("9223372036854775808"), false, typeDecimal},
		{typeLong, n("1e3"), true, 0},
		{typeLong, n("1.0000000000000000001"), false, typeDecimal}, // its float64 is 1
		{typeInt, n("1e-400"), false, typeDecimal},                 // its float64 is 0
		{typeLong, n("9007199254740993.0"), false, typeDecimal},    // its float64 is 2^53
		{typeLong, []any{}, false, typeJSON},
		{typeLong, 7, true, 0},
		{typeLong, big.NewInt(5), true, 0},
		{typeDouble, n("1e308"), true, 0},
		{typeDouble, n("1e400"), false, typeDecimal},
		{typeDouble, "2.5", true, 0},
		{typeDouble, "x", false, typeString},
		{typeDecimal, n("123456789012345678901234567890.5"), true, 0},
		{typeDecimal, true, false, typeString},
		{typeDatetime, "2024-01-02T03:04:05Z", true, 0},
		{typeDatetime, "2024-01-02T03:04:05.123+01:00", true, 0},
		{typeDatetime, "2024-01-02 03:04:05", true, 0},
		{typeDatetime, "2024-01-02T03:04:05.123456000Z", true, 0},
		{typeDatetime, "2024-01-02T03:04:05.1234567Z", true, 0}, // cut to microseconds, said (a key widens: see plan)
		{typeDatetime, "2024-01-02", true, 0},
		{typeDatetime, "02/01/2024", false, typeString},
		{typeDatetime, n("1700000000"), false, typeString},
		{typeDate, "2024-02-29", true, 0},
		{typeDate, "2023-02-29", false, typeString},
		{typeDate, "0000-01-01", false, typeString}, // PostgreSQL has no year 0
		{typeDate, row(), false, typeJSON},
		{typeInt, nil, true, 0},
		{typeLong, math.NaN(), false, typeString},
	}
	for _, tc := range tests {
		if got := fits(tc.typ, tc.v); got != tc.fits {
			t.Errorf("fits(%v, %#v) = %v, want %v", tc.typ, tc.v, got, tc.fits)
			continue
		}
		if !tc.fits {
			if got := widen(tc.typ, tc.v); got != tc.widen {
				t.Errorf("widen(%v, %#v) = %v, want %v", tc.typ, tc.v, got, tc.widen)
			}
		}
	}
}

func TestInfer(t *testing.T) {
	tests := []struct {
		v    any
		want colType
	}{
		{true, typeBool},
		{n("12"), typeLong},
		{n("-0"), typeLong},
		{n("99999999999999999999"), typeDecimal},
		{n("1.5"), typeDouble},
		{n("1e2"), typeDouble},
		{n("1e999"), typeDecimal},
		{2.0, typeLong},
		{2.5, typeDouble},
		{"2024-01-02", typeString},
		{[]any{}, typeJSON},
		{map[string]any{}, typeJSON},
		{json.Number("oops"), typeString},
	}
	for _, tc := range tests {
		if got := infer(tc.v); got != tc.want {
			t.Errorf("infer(%#v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestConvValue(t *testing.T) {
	tests := []struct {
		typ        colType
		v          any
		sqlite, pg any
	}{
		{typeBool, "true", true, "true"},
		{typeLong, n("3.0"), int64(3), "3"},
		{typeInt, "-12", int64(-12), "-12"},
		{typeDouble, n("1e2"), 100.0, "1e2"},
		{typeDecimal, n("0.10"), "0.10", "0.10"},
		{typeDatetime, "2024-01-02T04:04:05+01:00", "2024-01-02T03:04:05.000000Z", "2024-01-02T03:04:05.000000Z"},
		{typeString, n("5"), "5", "5"},
		{typeString, false, "false", "false"},
		{typeString, []any{"a"}, `["a"]`, `["a"]`},
		{typeString, "a\x00b", "a\x00b", "ab"},
		{typeJSON, "a\x00b", `"a\u0000b"`, `"ab"`},
		{typeJSON, nil, nil, nil},
	}
	for _, tc := range tests {
		lite, pg := &conv{}, &conv{text: true, pg: true}
		if got := lite.value(tc.typ, tc.v); got != tc.sqlite {
			t.Errorf("sqlite value(%v, %#v) = %#v, want %#v", tc.typ, tc.v, got, tc.sqlite)
		}
		if got := pg.value(tc.typ, tc.v); got != tc.pg {
			t.Errorf("postgres value(%v, %#v) = %#v, want %#v", tc.typ, tc.v, got, tc.pg)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	// Canonical form matches encoding/json (which sorts keys) for values
	// without HTML characters, and is byte-stable.
	vals := []any{
		map[string]any{"b": n("1"), "a": []any{"x", nil, true, 1.5, map[string]any{"z": "é\n\"\\\t\u0001"}}},
		map[string]any{"emoji": "🚀", "empty": map[string]any{}, "arr": []any{}},
		"plain",
		n("-0.5e10"),
		int64(42),
		1e21,
		1e-7,
	}
	for _, v := range vals {
		got := appendJSON(nil, v, false)
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("appendJSON(%#v) = %s, want %s", v, got, want.String())
		}
	}
	if got := string(appendJSON(nil, "<&>\u2028", false)); got != "\"<&>\u2028\"" {
		t.Errorf("HTML characters escaped: %s", got)
	}
	if got := string(appendJSON(nil, "a\xffb", false)); got != "\"a\ufffdb\"" {
		t.Errorf("invalid UTF-8: %s", got)
	}
	type point struct{ X, Y int }
	if got := string(appendJSON(nil, map[string]any{"p": point{1, 2}}, false)); got != `{"p":{"X":1,"Y":2}}` {
		t.Errorf("struct fallback: %s", got)
	}
	_, h1 := hashRow(nil, map[string]any{"a": n("1"), "b": "x"})
	_, h2 := hashRow(nil, map[string]any{"b": "x", "a": n("1")})
	if h1 != h2 || len(h1) != 64 {
		t.Errorf("hashRow not stable: %s %s", h1, h2)
	}
}

func TestParseDest(t *testing.T) {
	tests := []struct {
		dest, kind, target string
		err                bool
	}{
		{"sqlite:ferry.db", "sqlite", "ferry.db", false},
		{"sqlite:///tmp/x.db", "sqlite", "/tmp/x.db", false},
		{"out/ferry.db", "sqlite", "out/ferry.db", false},
		{"postgres://u@h/db", "postgres", "postgres://u@h/db", false},
		{"postgresql://u@h/db?sslmode=disable", "postgres", "postgresql://u@h/db?sslmode=disable", false},
		{"mysql://x", "", "", true},
		{"", "", "", true},
		{"sqlite:", "", "", true},
	}
	for _, tc := range tests {
		kind, target, err := parseDest(tc.dest)
		if (err != nil) != tc.err || kind != tc.kind || target != tc.target {
			t.Errorf("parseDest(%q) = %q, %q, %v", tc.dest, kind, target, err)
		}
	}
	if got := sqliteURI("/a b/x%?#.db"); got != "file:/a b/x%25%3f%23.db" {
		t.Errorf("sqliteURI = %s", got)
	}
	if got := pgName(strings.Repeat("é", 40)); len(got) != 62 {
		t.Errorf("pgName cut to %d bytes, want 62 (whole runes)", len(got))
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "\xff", "é", "\"\\", "\u2028", "🚀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSON(nil, map[string]any{s: s}, false)
		var back map[string]any
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("appendJSON made invalid JSON %q: %v", b, err)
		}
		pg := appendJSON(nil, s, true)
		if bytes.Contains(pg, []byte(`\u0000`)) {
			t.Fatalf("pg JSON holds NUL: %q", pg)
		}
	})
}

// TestStoredValue: the forms a column of the declared type stores as one
// value give one StoredValue (the runner's duplicate check keys on it);
// a STRING keeps its text, and a value the column does not take as it is
// (it widens and keeps the value as given), or a time past the
// microsecond (a key column widens to STRING for it), gives none.
func TestStoredValue(t *testing.T) {
	tests := []struct {
		typ  string
		a, b any
	}{
		{"UTC_DATETIME", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00"},
		{"utc_datetime", "2024-01-01 00:00:00.5", "2024-01-01T02:00:00.500000+02:00"},
		{"DOUBLE", "2.0", n("2")},
		{"DOUBLE", n("-0"), 0.0},
		{"DOUBLE", n("25e-1"), "2.50"},
		{"INT", "2", n("2.0")},
		{"LONG", n("1e3"), 1000},
		{"DECIMAL", "2.50", n("2.50")},
		{"BOOLEAN", true, "true"},
		{"STRING", "2", n("2")},
		{"NAIVE_DATE", "2024-01-01", "2024-01-01"},
	}
	for _, tc := range tests {
		a, aok := StoredValue(tc.typ, tc.a)
		b, bok := StoredValue(tc.typ, tc.b)
		if !aok || !bok || a != b {
			t.Errorf("%s: StoredValue(%#v) = %#v, %v and StoredValue(%#v) = %#v, %v: want one value", tc.typ, tc.a, a, aok, tc.b, b, bok)
		}
	}
	apart := []struct {
		typ  string
		a, b any
	}{
		{"STRING", "2.0", "2"},
		{"STRING", n("2.0"), n("2")},
		{"STRING", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00"},
		{"UTC_DATETIME", "2024-01-01T00:00:00.000001Z", "2024-01-01T00:00:00.000002Z"},
		{"DOUBLE", n("0.1"), n("0.2")},
	}
	for _, tc := range apart {
		a, aok := StoredValue(tc.typ, tc.a)
		b, bok := StoredValue(tc.typ, tc.b)
		if !aok || !bok || a == b {
			t.Errorf("%s: StoredValue(%#v) = %#v, %v and StoredValue(%#v) = %#v, %v: want two values", tc.typ, tc.a, a, aok, tc.b, b, bok)
		}
	}
	for _, tc := range []struct {
		typ string
		v   any
	}{
		{"JSON", n("1")},
		{"NOPE", "x"},
		{"DOUBLE", nil},
		{"INT", "2.0"},      // INT widens to STRING for it
		{"DOUBLE", "two"},   // so does DOUBLE
		{"UTC_DATETIME", 5}, // a number is no time
		{"UTC_DATETIME", "2024-01-01T00:00:00.0000001Z"},
	} {
		if got, ok := StoredValue(tc.typ, tc.v); ok {
			t.Errorf("%s: StoredValue(%#v) = %#v: want none (the value is stored as given)", tc.typ, tc.v, got)
		}
	}
}
