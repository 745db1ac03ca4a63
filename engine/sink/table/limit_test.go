package table

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/sink"
)

// limitCase is a value written to a column whose native type a user made.
type limitCase struct {
	native string
	v      any
	stored string // the column's text after the write; "" when the row must be refused
}

// nativeTable makes table name with key id (text) and column v of type
// native, as a user (or an earlier spec version) would, and opens it.
func nativeTable(t *testing.T, e *env, name, native string) *DB {
	t.Helper()
	d := e.open(t, Table{Name: name, PrimaryKey: []string{"id"}})
	ctx := t.Context()
	switch be := d.be.(type) {
	case *pgBackend:
		if err := d.Write(ctx, []sink.Row{{Table: name, Data: row("id", "0", "v", "x")}}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := be.conn.Exec(ctx, `ALTER TABLE `+be.schemaQ+`.`+quoteIdent(name)+` ALTER COLUMN v TYPE `+native+` USING NULL`); err != nil {
			t.Fatal(err)
		}
	case *sqliteBackend:
		_, phys := be.tableNames(name)
		if _, err := be.conn.ExecContext(ctx, `CREATE TABLE `+quoteIdent(phys)+` (id TEXT NOT NULL PRIMARY KEY, v `+native+
			`, _ferry_synced DATETIME NOT NULL, _ferry_deleted BOOLEAN NOT NULL DEFAULT 0)`); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	return e.open(t, Table{Name: name, PrimaryKey: []string{"id"}})
}

// storedText reads column v of the row with id as text.
func storedText(t *testing.T, d *DB, name, id string) (string, bool) {
	t.Helper()
	var got *string
	var err error
	switch be := d.be.(type) {
	case *pgBackend:
		err = be.conn.QueryRow(t.Context(), `SELECT v::text FROM `+be.schemaQ+`.`+quoteIdent(name)+` WHERE id = $1`, id).Scan(&got)
	case *sqliteBackend:
		_, phys := be.tableNames(name)
		err = be.conn.QueryRowContext(t.Context(), `SELECT CAST(v AS TEXT) FROM `+quoteIdent(phys)+` WHERE id = ?`, id).Scan(&got)
	}
	if err != nil || got == nil {
		return "", false
	}
	return *got, true
}

// TestNativeColumnLimits: a column a user made of a type narrower than
// ferry's (numeric(10,2), real, timestamp(0), varchar(5); on SQLite, a
// numeric affinity) would store some values changed without an error
// (checked on PostgreSQL 15: 1.2345 as 1.23, a 17-digit number as a
// float32, .678 s rounded up, a longer string cut). Such a row is refused
// alone, its reason naming table, column, type and value; the rows around
// it are written, and a value the type holds is stored as given.
func TestNativeColumnLimits(t *testing.T) {
	cases := map[string][]limitCase{
		"postgres": {
			{"numeric(10,2)", json.Number("1.2345"), ""},
			{"numeric(10,2)", json.Number("1e30"), ""},
			{"numeric(10,2)", "0.001", ""},
			{"numeric(10,2)", json.Number("12345678.9"), "12345678.90"},
			{"numeric(10,2)", json.Number("1.20"), "1.20"},
			{"numeric(10,2)", json.Number("-1.5e2"), "-150.00"},
			{"real", json.Number("1.2345678901234567"), ""},
			{"real", json.Number("16777217"), ""},
			{"real", json.Number("0.1"), "0.1"},
			{"real", json.Number("16777216"), "1.6777216e+07"},
			{"timestamp(0) with time zone", "2024-01-02T03:04:05.678Z", ""},
			{"timestamp(0) without time zone", "2024-01-02T03:04:05.5", ""},
			{"timestamp(3) with time zone", "2024-01-02T03:04:05.6781Z", ""},
			{"timestamp without time zone", "2024-01-02T03:04:05.1234567", ""},
			{"timestamp(0) with time zone", "2024-01-02T03:04:05.000Z", "2024-01-02 03:04:05+00"},
			{"timestamp(3) with time zone", "2024-01-02T03:04:05.678Z", "2024-01-02 03:04:05.678+00"},
			{"varchar(5)", "abcdefgh", ""},
			{"varchar(5)", "abcde ", ""},
			{"character(5)", "abcdefgh", ""},
			{"varchar(5)", "ñññññ", "ñññññ"},
			{"varchar(5)", json.Number("1.25"), "1.25"},
			{"time(0) without time zone", "10:00:00.5", ""},
			{"time(3) with time zone", "10:00:00.1234+02", ""},
			{"time without time zone", "10:00:00.1234567", ""},
			{"time(0) without time zone", "10:00:00", "10:00:00"},
			{"time(3) with time zone", "10:00:00.123+02", "10:00:00.123+02"},
			{"time without time zone", "10:00:00+02", ""},
			{"time(0) without time zone", "10:00:00Z", "10:00:00"},
			{"timestamp without time zone", "2024-01-02 10:00:00 PST", ""},
			{"timestamp without time zone", "2024-01-02 10:00:00 +02", ""},
			{"timestamp without time zone", "2024-01-02 10:00:00 GMT", "2024-01-02 10:00:00"},
			{"time without time zone", "10:00:00 CET", ""},
			{"time without time zone", "2024-01-02 10:00:00", ""},
			{"time(3) with time zone", "2024-01-02 10:00:00+02", ""},
			{"timestamp(0) without time zone", "2024-01-02 10:00:00.5 UTC", ""},
			{"timestamp(0) with time zone", "01/02/2024 10:00:00.5", ""},
			{"time(0) without time zone", "9:00:00.5", ""},
			{"time without time zone", "01/02/2024 10:00:00", ""},
			{"time(0) without time zone", "9:00:00", "09:00:00"},
			{"timestamp without time zone", "20240101T100000+0200", ""},
			{"timestamp without time zone", "20240101T100000Z", "2024-01-01 10:00:00"},
			{"timestamp(0) without time zone", "01/02/2024 10:00:00", "2024-01-02 10:00:00"},
			{"bit(3)", "1011", ""},
			{"bit(3)", "10", ""},
			{"bit varying(3)", "1011", ""},
			{"bit(4)", "x1F", ""},
			{"bit(3)", "101", "101"},
			{"bit varying(3)", "10", "10"},
			{"bit(8)", "x1F", "00011111"},
			{"money", json.Number("1.005"), ""},
			{"money", "1.234", ""},
			{"money", json.Number("1.5"), "$1.50"},
			{"money", "-1.20", "-$1.20"},
			{"interval(3)", "PT1.2345S", ""},
			{"interval second(3)", json.Number("1.2345"), ""},
			{"interval day to second(2)", "1 day 00:00:01.2345", ""},
			{"interval", "PT0.0000001S", ""},
			{"interval day", "1 day 02:00:00", ""},
			{"interval hour to minute", "01:02:03", ""},
			{"interval year", "1 year 2 months", ""},
			{"interval(3)", "PT1.234S", "00:00:01.234"},
			{"interval day to second(2)", "1 day 00:00:01.25", "1 day 00:00:01.25"},
			{"interval hour to minute", "PT1H2M", "01:02:00"},
			{"interval", "1h30m0.5s", "01:30:00.5"},
			{"character(3)", "abc   ", "abc"},
			{"interval hour to minute", "1 day, 2:30:00", "1 day 02:30:00"},
			{"interval", "-1h30m0s", ""},
			{"timestamp without time zone", "2024-01-01T10:00:00+02:00", ""},
			{"timestamp(3) without time zone", "2024-01-01T10:00:00.5-05:00", ""},
			{"timestamp without time zone", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00"},
			{"timestamp(0) without time zone", "2024-01-01T10:00:00+00:00", "2024-01-01 10:00:00"},
			{"timestamp(0) with time zone", "2024-01-01T12:00:00+02:00", "2024-01-01 10:00:00+00"},
			{"date", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"}, // not a limit: widened to text
		},
		"sqlite": {
			{"NUMERIC(10,2)", json.Number("0.1000000000000000000001"), ""},
			{"INT", json.Number("12345678901234567890"), ""},
			{"INT", "007", ""},
			{"FLOAT", "+5", ""},
			{"NUMERIC(10,2)", json.Number("1.2345"), "1.2345"},
			{"INT", json.Number("42"), "42"},
			{"INT", "abc", "abc"},
			{"FLOAT", json.Number("1.5"), "1.5"},
			{"VARCHAR(5)", "abcdefgh", "abcdefgh"},
			{"VARCHAR(5)", "007", "007"},
		},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		for i, c := range cases[e.kind] {
			name := fmt.Sprintf("t%d", i)
			d := nativeTable(t, e, name, c.native)
			rows := []sink.Row{
				{Table: name, Data: row("id", "1", "v", nil)},
				{Table: name, Data: row("id", "2", "v", c.v)},
				{Table: name, Data: row("id", "3", "v", nil)},
			}
			err := d.Write(t.Context(), rows, nil)
			if c.stored != "" {
				if err != nil {
					t.Errorf("%s <- %v: Write = %v, want it stored", c.native, c.v, err)
				} else if got, _ := storedText(t, d, name, "2"); got != c.stored {
					t.Errorf("%s <- %v: stored %q, want %q", c.native, c.v, got, c.stored)
				}
				continue
			}
			if !errors.Is(err, ErrRefused) {
				got, _ := storedText(t, d, name, "2")
				t.Errorf("%s <- %v: Write = %v (stored %q), want ErrRefused", c.native, c.v, err, got)
				continue
			}
			at, reason, err := d.FindRefused(t.Context(), rows)
			if err != nil || at != 1 {
				t.Errorf("%s <- %v: FindRefused = %d, %v, %v; want row 1", c.native, c.v, at, reason, err)
				continue
			}
			lit := fmt.Sprint(c.v)
			typ := strings.Replace(c.native, "varchar", "character varying", 1) // as format_type names it
			for _, want := range []string{`table "` + name + `"`, `column "v"`, typ, lit} {
				if !strings.Contains(reason.Error(), want) {
					t.Errorf("%s <- %v: reason %q does not say %q", c.native, c.v, reason, want)
				}
			}
			if err := d.Write(t.Context(), []sink.Row{rows[0], rows[2]}, nil); err != nil {
				t.Errorf("%s <- %v: the other rows: %v", c.native, c.v, err)
			}
			if _, ok := storedText(t, d, name, "2"); ok {
				t.Errorf("%s <- %v: the refused row is stored", c.native, c.v)
			}
			if n := count(t, d, name); n != 2 && e.kind == "sqlite" || n != 3 && e.kind == "postgres" {
				t.Errorf("%s <- %v: %d rows stored", c.native, c.v, n)
			}
		}
	})
}

// TestNativeColumnOfEmptyTableKeepsType: in a table holding no row yet,
// a column whose type was not declared takes the type of its first value
// (the table may be one EnsureTables made) — but not a user's
// numeric(10,2), which reads as DECIMAL and is not ferry's: it keeps its
// type, and refuses what it would round.
func TestNativeColumnOfEmptyTableKeepsType(t *testing.T) {
	e := newPGEnv(t)
	d := nativeTable(t, e, "e", "numeric(10,2)")
	be := d.be.(*pgBackend)
	if _, err := be.conn.Exec(t.Context(), `DELETE FROM `+be.schemaQ+`.e`); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = e.open(t, Table{Name: "e", PrimaryKey: []string{"id"}})
	rows := []sink.Row{{Table: "e", Data: row("id", "1", "v", json.Number("1.5"))}, {Table: "e", Data: row("id", "2", "v", json.Number("1.2345"))}}
	if err := d.Write(t.Context(), rows, nil); !errors.Is(err, ErrRefused) {
		t.Errorf("Write = %v, want ErrRefused (1.2345 in numeric(10,2))", err)
	}
	if err := d.Write(t.Context(), rows[:1], nil); err != nil {
		t.Fatal(err)
	}
	if got := nativeTypes(t, d, "e")["v"]; got != "numeric(10,2)" {
		t.Errorf("column v is %s, want numeric(10,2) kept", got)
	}
}

// TestNativeKeyKeepsRounding: a key column of a type that stores several
// forms as one (numeric(10,2)) keeps its type's rounding: the runner keys
// rows by it (KeyTypes), so the value is not refused.
func TestNativeKeyKeepsRounding(t *testing.T) {
	e := newPGEnv(t)
	d := e.open(t, Table{Name: "k", PrimaryKey: []string{"id"}})
	ctx := t.Context()
	if err := d.Write(ctx, []sink.Row{{Table: "k", Data: row("id", json.Number("1"))}}, nil); err != nil {
		t.Fatal(err)
	}
	be := d.be.(*pgBackend)
	if _, err := be.conn.Exec(ctx, `ALTER TABLE `+be.schemaQ+`.k ALTER COLUMN id TYPE numeric(10,2)`); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = e.open(t, Table{Name: "k", PrimaryKey: []string{"id"}})
	if err := d.Write(ctx, []sink.Row{{Table: "k", Data: row("id", json.Number("2.004"))}}, nil); err != nil {
		t.Fatalf("Write of a key numeric(10,2) rounds: %v", err)
	}
}

func TestNumericHolds(t *testing.T) {
	for _, c := range []struct {
		lit  string
		p, s int
		want bool
	}{
		{"1.23", 10, 2, true},
		{"1.230", 10, 2, true},
		{"1.2345", 10, 2, false},
		{"0.001", 10, 2, false},
		{"12345678.99", 10, 2, true},
		{"123456789", 10, 2, false},
		{"99999999.99", 10, 2, true},
		{"100000000", 10, 2, false},
		{"1e7", 10, 2, true},
		{"1e8", 10, 2, false},
		{"123e-2", 10, 2, true},
		{"123e-3", 10, 2, false},
		{"-0.00", 3, 2, true},
		{"0e99999", 3, 2, true},
		{"1000", 2, -3, true},
		{"1500", 2, -3, false},
		{"0.00123", 3, 5, true},
		{"0.123", 3, 5, false},
		{"1e9999999999", 10, 2, false},
	} {
		if got := numericHolds(c.lit, c.p, c.s); got != c.want {
			t.Errorf("numericHolds(%q, %d, %d) = %v, want %v", c.lit, c.p, c.s, got, c.want)
		}
	}
}

// TestLimitHolds: the values PostgreSQL 15 (lc_monetary C, IntervalStyle
// postgres) was seen to store changed, and some it stores as given, for
// money, interval and timestamp without time zone; pgLimit reads the
// type as format_type names it.
func TestLimitHolds(t *testing.T) {
	for _, c := range []struct {
		native, v string
		want      bool
	}{
		{"money", "1.005", false}, // $1.01
		{"money", "1.234", false}, // $1.23
		{"money", "0.001", false}, // $0.00
		{"money", "1.230001", false},
		{"money", "$1.23,4", false}, // the separator is skipped: $1.23
		{"money", "1.23", true},
		{"money", "1.2300", true},
		{"money", "$1,234.5", true},
		{"money", "(1.23)", true},
		{"money", "12", true},
		{"money", "1e2", true}, // refused by PostgreSQL: invalid input syntax
		{"interval", "PT1.2345S", true},
		{"interval", "PT1.2345678S", false}, // 00:00:01.234568
		{"interval", "1:02:03.1234567", false},
		{"interval", "0.00000001 minutes", false}, // 00:00:00.000001
		{"interval", "0.55 years", false},         // 7 mons
		{"interval", "P0.5Y", true},               // 6 mons
		{"interval", "1.5 decades", true},
		{"interval", "1.5 microseconds", false},
		{"interval", "1.5 ms", true},
		{"interval", "0.1 months", true}, // 3 days
		{"interval", "1 day 1.5 hours ago", true},
		{"interval", "- 1.0000001", false}, // a form ferry does not read, with a point
		{"interval", "P0001-02-03", true},  // a form ferry does not read, whole numbers
		{"interval(3)", "PT1.2345S", false},
		{"interval(3)", "PT1.234S", true},
		{"interval(3)", "PT1.2340S", true},
		{"interval(3)", "P1DT1.5H", true},
		{"interval(3)", "PT1e-4S", false},
		{"interval(0)", "1.5", false},
		{"interval(0)", "0.01 minutes", false}, // 0.6 s rounded to 00:00:01
		{"interval(0)", "1.5 hours", true},
		{"interval(3)", "12:34.5678", false}, // minutes and seconds
		{"interval(3)", "12:34.567", true},
		{"interval(3)", "@ 1 day -02:00:00.5", true},
		{"interval(3)", "1.2345 seconds", false},
		{"interval(3)", "1:2:3.4567", false},
		{"interval second(3)", "1.2345", false},
		{"interval second(3)", "1.234", true},
		{"interval day to second(2)", "1 day 00:00:01.2345", false},
		{"interval day to second(2)", "1 day 00:00:01.23", true},
		{"interval minute to second(0)", "1:02.5", false},
		{"interval day", "1 day 02:03:04", false}, // 1 day
		{"interval day", "1.5 days", false},
		{"interval day", "P3D", true},
		{"interval day", "1", false}, // a second: 00:00:00
		{"interval hour", "1", false},
		{"interval hour", "PT1.5H", false},
		{"interval hour", "2 days 3 hours", true},
		{"interval hour to minute", "1 day 02:03:04", false},
		{"interval hour to minute", "1.5 minutes", false},
		{"interval hour to minute", "02:03", true},
		{"interval day to hour", "1 day 02:30", false},
		{"interval year", "1 year 2 months", false},
		{"interval year", "P2Y", true},
		{"interval year", "1.5 years", false}, // 1 year
		{"interval month", "1 mon 2 days", false},
		{"interval year to month", "P1Y2M", true},
		{"interval year to month", "P1Y2M3D", false},
		{"interval year to month", "1-2", true}, // SQL's year-month
		{"interval year", "1-2", false},
		{"interval(3)", "P0001-02-03T04:05:06.5", false}, // a form ferry does not read, with a point
		{"interval day", "P0001-02-03", false},           // the same, in a column of fields
		// character(n): trailing blanks are no part of the value.
		{"character(3)", "ab   ", true},
		{"character(3)", "abc  ", true},
		{"character(3)", "abcd ", false},
		{"character(3)", "  abc", false},
		{"character(3)", "abc\t", false},         // cut: only blanks are no part of it
		{"character varying(3)", "ab   ", false}, // stored "ab "
		// Go's durations and Python's timedeltas, as PostgreSQL reads them.
		{"interval", "1h30m0.5s", true},
		{"interval", "1 day, 2:00:00.5", true},
		{"interval hour to minute", "1h30m0s", true},
		{"interval hour to minute", "2 days, 3:30:00", true},
		{"interval(0)", "1h30m0.5s", false},
		{"interval", "1m30.123456789s", false},
		{"interval", "-1 day, 22:30:00", true}, // -1 days +22:30:00, as Python means it
		{"interval", "-1h30m0s", false},        // PostgreSQL: -00:30:00; Go: -01:30:00
		{"interval", "-1h", true},
		{"timestamp without time zone", "2024-01-01T10:00:00+02:00", false}, // stored 10:00
		{"timestamp without time zone", "2024-01-01 10:00:00-0130", false},
		{"timestamp without time zone", "2024-01-01T10:00:00+02", false},
		{"timestamp without time zone", "2024-01-01T10:00:00Z", true},
		{"timestamp without time zone", "2024-01-01T10:00:00+00:00", true},
		{"timestamp without time zone", "2024-01-01T10:00:00", true},
		{"timestamp without time zone", "2024-01-01", true},
		{"timestamp(3) without time zone", "2024-01-01T10:00:00.123+01:00", false},
		{"timestamp(3) without time zone", "2024-01-01T10:00:00.123Z", true},
		{"timestamp(3) with time zone", "2024-01-01T10:00:00.123+01:00", true},
		{"timestamp with time zone", "2024-01-01T10:00:00+01:00", true}, // ferry's own: no limit
		{"time without time zone", "10:00:00+02", false},                // stored 10:00:00
		{"time without time zone", "10:00:00.5 -01:30", false},
		{"time(0) without time zone", "10:00:00+0200", false},
		{"time without time zone", "2024-01-01 10:00:00+02:00", false},
		{"time without time zone", "10:00:00Z", true},
		// A zone named, or an offset after a blank: PostgreSQL drops it too.
		{"timestamp without time zone", "2024-01-01 10:00:00 PST", false},
		{"timestamp without time zone", "2024-01-01 10:00:00 America/New_York", false},
		{"timestamp without time zone", "2024-01-01 10:00:00 +02", false},
		{"timestamp without time zone", "2024-01-01 10:00:00 UTC+2", false},
		{"timestamp(3) without time zone", "Jan 1 2024 10:00 EST", false},
		{"timestamp without time zone", "2024-01-01 10:00:00 UTC", true},
		{"timestamp without time zone", "2024-01-01 10:00:00 GMT", true},
		{"timestamp without time zone", "2024-01-01 10:00:00 -00", true},
		{"timestamp without time zone", "Mon Jan 01 10:00:00 2024", true},
		{"timestamp without time zone", "Sunday, January 07 10:00:00 2024", true},
		{"timestamp without time zone", "2024-01-01 10:00:00 PM", true},
		{"timestamp without time zone", "2024-01-01 10:00:00 BC", true},
		{"timestamp with time zone", "2024-01-01 10:00:00 PST", true}, // ferry's own: no limit
		{"time without time zone", "10:00:00 CET", false},
		{"time without time zone", "10:00 PM -05", false},
		{"time without time zone", "10:00 am", true},
		{"time with time zone", "10:00:00 CET", true},
		// A date and a time: PostgreSQL stores the time of day alone.
		{"time without time zone", "2024-01-01 10:00:00", false},
		{"time without time zone", "2024-01-01 10:00", false},
		{"time with time zone", "2024-01-01 10:00:00+02", false},
		{"time(3) with time zone", "2024-01-01 10:00:00.1+02", false},
		{"time without time zone", "10:00:00+00", true},
		{"time without time zone", "10:00:00-00:00", true},
		{"time without time zone", "10:00:00", true},
		{"time without time zone", "10:00:00 PM", true},
		{"time with time zone", "10:00:00+02", true},
		{"time(3) with time zone", "10:00:00.123-05", true},
		// A fraction or a date in a form ferry does not parse as a
		// datetime: PostgreSQL 15 rounds the one and drops the other.
		{"timestamp(0) without time zone", "2024-01-01 10:00:00.5 UTC", false}, // 10:00:01
		{"timestamp without time zone", "2024-01-01 10:00:00.1234567 UTC", false},
		{"timestamp(0) with time zone", "2024-01-01 10:00:00.5 UTC", false},
		{"timestamp(0) without time zone", "01/02/2024 10:00:00.5", false},
		{"timestamp(0) with time zone", "Jan 1 2024 10:00:00.5", false},
		{"timestamp(0) without time zone", "01/02/2024 10:00:00", true},
		{"timestamp(3) with time zone", "2024-01-01 10:00:00.123 UTC", true},
		{"time(0) without time zone", "9:00:00.5", false}, // 09:00:01
		{"time(0) without time zone", "T10:00:00.5", false},
		{"time(0) without time zone", "10:00.5", false}, // minutes and seconds: 00:10:01
		{"time(0) with time zone", "9:00:00.5+02", false},
		{"time(0) without time zone", "9:00:00", true},
		{"time without time zone", "T10:00:00", true},
		{"time without time zone", "01/02/2024 10:00:00", false}, // 10:00:00
		{"time without time zone", "2024/01/02 10:00", false},
		{"time without time zone", "02.01.2024 10:00:00", false},
		{"time with time zone", "01/02/2024 10:00:00+02", false},
		// ISO 8601's basic form: the time without colons.
		{"timestamp without time zone", "20240101T100000+0200", false}, // 10:00
		{"timestamp(0) without time zone", "20240101T100000.5", false},
		{"time(0) without time zone", "100000.5", false}, // 10:00:01
		{"timestamp without time zone", "20240101T100000Z", true},
		{"timestamp(0) without time zone", "20240101T100000", true},
		{"time(0) without time zone", "100000", true},
	} {
		if got := pgLimit(c.native).holds(c.v); got != c.want {
			t.Errorf("%s holds %q = %v, want %v", c.native, c.v, got, c.want)
		}
	}
	for native, want := range map[string]limit{
		"money":                          {kind: limitMoney, p: 2},
		"interval":                       {kind: limitInterval, p: 6},
		"interval(3)":                    {kind: limitInterval, p: 3},
		"interval second(3)":             {kind: limitInterval, p: 3},
		"interval second":                {kind: limitInterval, p: 6},
		"interval day to second(2)":      {kind: limitInterval, p: 2},
		"interval minute to second(0)":   {kind: limitInterval, p: 0},
		"interval year":                  {kind: limitInterval, p: 6, s: ivYear},
		"interval year to month":         {kind: limitInterval, p: 6, s: ivMonth},
		"interval month":                 {kind: limitInterval, p: 6, s: ivMonth},
		"interval day":                   {kind: limitInterval, p: 6, s: ivDay},
		"interval day to hour":           {kind: limitInterval, p: 6, s: ivHour},
		"interval hour":                  {kind: limitInterval, p: 6, s: ivHour},
		"interval day to minute":         {kind: limitInterval, p: 6, s: ivMinute},
		"interval hour to minute":        {kind: limitInterval, p: 6, s: ivMinute},
		"interval minute":                {kind: limitInterval, p: 6, s: ivMinute},
		"timestamp without time zone":    {kind: limitTime, p: 6, local: true},
		"timestamp(3) without time zone": {kind: limitTime, p: 3, local: true},
		"timestamp(3) with time zone":    {kind: limitTime, p: 3},
		"time without time zone":         {kind: limitClock, p: 6, local: true},
		"time(0) without time zone":      {kind: limitClock, p: 0, local: true},
		"time with time zone":            {kind: limitClock, p: 6},
		"time(3) with time zone":         {kind: limitClock, p: 3},
		"intervals":                      {},
	} {
		if got := pgLimit(native); got != want {
			t.Errorf("pgLimit(%q) = %#v, want %#v", native, got, want)
		}
	}
}

func TestSQLiteNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"1": true, "007": true, " 5 ": true, "+5": true, ".5": true, "5.": true, "1e3": true, "-1.5E-3": true,
		"": false, ".": false, "e3": false, "1e": false, "abc": false, "0x10": false, "1,5": false, "inf": false,
	} {
		if got := sqliteNumber(s); got != want {
			t.Errorf("sqliteNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestParseIntervalAsPostgres: parseInterval reads 835 interval texts
// (units, ISO 8601, clocks, Go's durations, Python's timedeltas; fractions that PostgreSQL rounds and ones it
// keeps) into the months, days and seconds PostgreSQL 15 stores, or
// flags the value inexact where what it stores differs. testdata/
// interval_pg15.tsv holds what the server stored, read per text s as
// extract(year)*12+extract(month), extract(day), and extract(epoch) less
// the seconds of those (365.25 days a year, 30 a month).
func TestParseIntervalAsPostgres(t *testing.T) {
	b, err := os.ReadFile("testdata/interval_pg15.tsv")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if strings.HasPrefix(line, "#") || len(f) < 4 {
			continue // a comment, or text PostgreSQL refuses
		}
		v, ok := parseInterval(f[0])
		if !ok {
			t.Errorf("%q: not read", f[0])
			continue
		}
		months, _ := new(big.Rat).SetString(f[1])
		days, _ := new(big.Rat).SetString(f[2])
		secs, _ := new(big.Rat).SetString(f[3])
		same := months.Cmp(&v.months) == 0 && days.Cmp(&v.days) == 0 && secs.Cmp(&v.secs) == 0
		if same == v.inexact {
			t.Errorf("%q: PostgreSQL stores %s months, %s days, %s s; read as %s, %s, %s (inexact %v)",
				f[0], f[1], f[2], f[3], v.months.RatString(), v.days.RatString(), v.secs.FloatString(7), v.inexact)
		}
		n++
	}
	if n < 800 {
		t.Errorf("%d texts compared, want the file's 835", n)
	}
}

// TestNativeDomainColumnLimits: a column whose type is a domain over a
// narrower type (CREATE DOMAIN price AS numeric(10,2); a domain over
// that one; over varchar(5), over money) stores values as its base type does: a value the base type
// would store changed is refused, one it holds is stored.
func TestNativeDomainColumnLimits(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		if e.kind != "postgres" {
			t.Skip("PostgreSQL's domains")
		}
		d := e.open(t, Table{Name: "dom", PrimaryKey: []string{"id"}})
		be := d.be.(*pgBackend)
		for _, q := range []string{
			`CREATE DOMAIN ` + be.schemaQ + `.price AS numeric(10,2)`,
			`CREATE DOMAIN ` + be.schemaQ + `.price2 AS ` + be.schemaQ + `.price CHECK (VALUE >= 0)`,
			`CREATE DOMAIN ` + be.schemaQ + `.short AS varchar(5)`,
			`CREATE DOMAIN ` + be.schemaQ + `.cash AS money`,
		} {
			if _, err := be.conn.Exec(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
		d.Close()
		for i, c := range []limitCase{
			{be.schemaQ + ".price", json.Number("1.2345"), ""},
			{be.schemaQ + ".price2", json.Number("1.2345"), ""},
			{be.schemaQ + ".short", "abcdefgh", ""},
			{be.schemaQ + ".price2", json.Number("1.25"), "1.25"},
			{be.schemaQ + ".short", "abcde", "abcde"},
			{be.schemaQ + ".cash", json.Number("1.005"), ""},
			{be.schemaQ + ".cash", json.Number("1.5"), "$1.50"},
		} {
			name := fmt.Sprintf("d%d", i)
			d := nativeTable(t, e, name, c.native)
			err := d.Write(t.Context(), []sink.Row{{Table: name, Data: row("id", "1", "v", c.v)}}, nil)
			got, _ := storedText(t, d, name, "1")
			if c.stored == "" && !errors.Is(err, ErrRefused) {
				t.Errorf("%s <- %v: Write = %v (stored %q), want ErrRefused", c.native, c.v, err, got)
			}
			if c.stored != "" && (err != nil || got != c.stored) {
				t.Errorf("%s <- %v: Write = %v, stored %q; want %q", c.native, c.v, err, got, c.stored)
			}
		}
	})
}
