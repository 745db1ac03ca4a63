package table

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/jackc/pgx/v5/pgconn"
)

// wide is a row with n fields: more columns than a table may have (1600 on
// PostgreSQL, 2000 on SQLite) when n is large.
func wide(id string, n int) map[string]any {
	r := row("id", id)
	for i := range n {
		r[fmt.Sprintf("f%04d", i)] = "v"
	}
	return r
}

// longKey is a key too long for a PostgreSQL btree index (over ~2.7 kB,
// and random, so compression cannot save it).
func longKey(t *testing.T) string {
	buf := make([]byte, 10000)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf)
}

// poisoned is a batch of 40 rows, one of them (at index 23) one the
// database refuses.
func poisoned(bad map[string]any) []sink.Row {
	var data []map[string]any
	for i := range 40 {
		if i == 23 {
			data = append(data, bad)
			continue
		}
		data = append(data, row("id", fmt.Sprintf("r%02d", i), "x", n(fmt.Sprint(i))))
	}
	return rowsOf("a", data...)
}

// TestRefusedRowFound: a Write holding one row the database refuses fails
// as a whole with ErrRefused, commits nothing, and FindRefused names that
// row (by rolled-back trials that leave the table as it was); without it,
// the batch is written.
func TestRefusedRowFound(t *testing.T) {
	cases := []struct {
		name   string
		pgOnly bool
		bad    func(t *testing.T) map[string]any
	}{
		{"too many columns", false, func(*testing.T) map[string]any { return wide("bad", 2100) }},
		{"key too long for the index", true, func(t *testing.T) map[string]any { return row("id", longKey(t), "x", n("1")) }},
		{"key with a NUL byte", true, func(*testing.T) map[string]any { return row("id", "b\x00d", "x", n("1")) }},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				if c.pgOnly && e.kind != "postgres" {
					t.Skip("PostgreSQL only")
				}
				ctx := t.Context()
				d := e.open(t, Table{Name: "a", PrimaryKey: []string{"id"}}, Table{Name: "b", PrimaryKey: []string{"id"}})
				// Another table holds a row, and a checkpoint is stored:
				// the trials must leave both as they are.
				old := sink.Checkpoint{Stream: "a", Value: json.RawMessage(`"old"`)}
				mustWrite(t, d, rowsOf("b", row("id", "b0")), old)
				rows := append(poisoned(c.bad(t)), rowsOf("b", row("id", "b1"))...)
				cp := sink.Checkpoint{Stream: "a", Value: json.RawMessage(`"new"`)}
				err := d.Write(ctx, rows, []sink.Checkpoint{cp})
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("Write = %v, want ErrRefused", err)
				}
				unchanged := func(when string) {
					t.Helper()
					if got := count(t, d, "b"); got != 1 {
						t.Errorf("rows of b %s = %d, want 1", when, got)
					}
					if st, _ := d.State(ctx); string(st["a"][""]) != `"old"` {
						t.Errorf("state %s = %s, want \"old\"", when, st["a"][""])
					}
					if d.tables["a"] != nil && d.tables["a"].exists {
						t.Errorf("table a known to exist %s", when)
					}
				}
				unchanged("after the refused Write")
				i, reason, err := d.FindRefused(ctx, rows)
				if err != nil || i != 23 || reason == nil {
					t.Fatalf("FindRefused = %d, %v, %v; want 23, a reason, nil", i, reason, err)
				}
				if c.name == "too many columns" && !strings.Contains(reason.Error(), "the database allows") {
					// Refused by the sink before any column is added: the
					// database refuses only after adding them all, in
					// every trial (a few minutes under -race).
					t.Errorf("reason = %v, want the sink's own column count", reason)
				}
				t.Logf("reason: %v", reason)
				unchanged("after FindRefused (trials are rolled back)")
				ok := append(rows[:23:23], rows[24:]...)
				mustWrite(t, d, ok, cp)
				if got, gotB := count(t, d, "a"), count(t, d, "b"); got != 39 || gotB != 2 {
					t.Errorf("rows after writing the others = %d in a, %d in b; want 39, 2", got, gotB)
				}
				if i, reason, err := d.FindRefused(ctx, ok); i != -1 || reason != nil || err != nil {
					t.Errorf("FindRefused of rows all taken = %d, %v, %v; want -1, nil, nil", i, reason, err)
				}
			})
		})
	}
}

// TestRefusedNotOnCancel: a Write that fails once its context ended is not
// the data's fault, whatever the rows hold: neither when the database
// would refuse them, nor when the sink itself refuses a row (here, one
// without its key).
func TestRefusedNotOnCancel(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "a", PrimaryKey: []string{"id"}})
		mustWrite(t, d, rowsOf("a", row("id", "1")))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for name, rows := range map[string][]sink.Row{
			"too many columns": poisoned(wide("bad", 2100)),
			"no key":           rowsOf("a", row("x", "1")),
		} {
			err := d.Write(ctx, rows, nil)
			if err == nil || errors.Is(err, ErrRefused) {
				t.Errorf("%s: Write with a cancelled context = %v, want an error that is not ErrRefused", name, err)
			}
		}
	})
}

// TestRefusesPostgresClasses: PostgreSQL errors of classes 22, 23 and 54
// are the data's; a lost connection, an admin shutdown, an aborted
// transaction or a cancelled statement are not.
func TestRefusesPostgresClasses(t *testing.T) {
	s := &pgBackend{}
	for code, want := range map[string]bool{
		"22021": true, "23505": true, "54000": true, "54011": true,
		"08006": false, "57P01": false, "57014": false, "25P02": false, "42P01": false, "53100": false,
	} {
		err := fmt.Errorf("table %q: %w", "a", &pgconn.PgError{Code: code})
		if got := s.refuses(err); got != want {
			t.Errorf("refuses(SQLSTATE %s) = %v, want %v", code, got, want)
		}
	}
	if s.refuses(errors.New("conn closed")) {
		t.Error("refuses(a plain error) = true, want false")
	}
}

// TestRefusedNotOtherSQLiteErrors: a SQLite error that is no row's fault
// (here a table dropped behind the run's back: "no such table", the same
// result code as "too many columns") is not ErrRefused.
func TestRefusedNotOtherSQLiteErrors(t *testing.T) {
	e := newSQLiteEnv(t)
	d := e.open(t, Table{Name: "a", PrimaryKey: []string{"id"}})
	mustWrite(t, d, rowsOf("a", row("id", "1")))
	db, err := sql.Open("sqlite", strings.TrimPrefix(e.dest, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TABLE "spec__a"`); err != nil {
		t.Fatal(err)
	}
	err = d.Write(t.Context(), rowsOf("a", row("id", "2")), nil)
	if err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("Write into a dropped table = %v, want an error that is not ErrRefused", err)
	}
}

// TestFindRefusedKeepsFieldWarnings: a field the sink skips (its name is
// reserved) is said once, when a write first meets it. A trial of
// FindRefused is the first to meet it when the refused Write stopped
// before its table (the sink refused a row of another table first); the
// trial logs nothing, so the write after it must still say it.
func TestFindRefusedKeepsFieldWarnings(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d := e.open(t, Table{Name: "a", PrimaryKey: []string{"id"}}, Table{Name: "b", PrimaryKey: []string{"id"}})
		rows := append(rowsOf("a", row("id", "a0")), rowsOf("b", row("id", "b1", ColSynced, "x"))...)
		rows = append(rows, rowsOf("a", wide("bad", 2100))...)
		if err := d.Write(ctx, rows, nil); !errors.Is(err, ErrRefused) {
			t.Fatalf("Write = %v, want ErrRefused", err)
		}
		if strings.Contains(e.logs.String(), "row field skipped") {
			t.Fatal("the refused Write already planned table b: the test does not test the trials")
		}
		i, reason, err := d.FindRefused(ctx, rows)
		if err != nil || i != 2 || reason == nil {
			t.Fatalf("FindRefused = %d, %v, %v; want 2, a reason, nil", i, reason, err)
		}
		mustWrite(t, d, rows[:2])
		if !strings.Contains(e.logs.String(), "row field skipped") {
			t.Errorf("the skipped field %s of table b was never logged:\n%s", ColSynced, e.logs.String())
		}
	})
}

// TestColumnRefusalBlamesTheWideRow: when the rows of a write need more
// columns than the database allows together, the row refused is the one
// that needs too many alone, or else the one bringing the most columns no
// other row needs — not the row whose addition crossed the limit, which
// may be one of a single column (and then each row after it was refused
// in turn). Refusing row after row as the engine does, only the wide rows
// go; the others are written.
func TestColumnRefusalBlamesTheWideRow(t *testing.T) {
	narrow := func(i int) map[string]any {
		return row("id", fmt.Sprintf("r%02d", i), fmt.Sprintf("e%02d", i), "v")
	}
	half := func(i, n int) map[string]any {
		r := row("id", fmt.Sprintf("h%02d", i))
		for j := range n {
			r[fmt.Sprintf("h%02d_%04d", i, j)] = "v"
		}
		return r
	}
	narrows := func() []map[string]any {
		var data []map[string]any
		for i := range 40 {
			data = append(data, narrow(i))
		}
		return data
	}
	layouts := []struct {
		name string
		rows func(most int) []map[string]any
		want []string // the rows refused, in order
	}{
		{"one that fits alone, then rows of a column each", func(most int) []map[string]any {
			return append([]map[string]any{wide("bad", most-10)}, narrows()[1:]...)
		}, []string{"bad"}},
		{"two halves that fit together, then one too wide alone", func(most int) []map[string]any {
			data := narrows()
			data[5], data[10], data[23] = half(5, most/2-20), half(10, most/2-20), wide("bad", most+100)
			return data
		}, []string{"bad"}},
		{"too wide alone, last", func(most int) []map[string]any {
			return append(narrows()[1:], wide("bad", most+100))
		}, []string{"bad"}},
		{"two too wide alone, with the same columns", func(most int) []map[string]any {
			data := narrows()
			data[10], data[30] = wide("bad", most+100), wide("bad2", most+100)
			return data
		}, []string{"bad", "bad2"}},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		most := 2000
		if e.kind == "postgres" {
			most = 1600
		}
		for li, l := range layouts {
			t.Run(strings.ReplaceAll(l.name, " ", "_"), func(t *testing.T) {
				name := fmt.Sprintf("t%d", li)
				d := e.open(t, Table{Name: name, PrimaryKey: []string{"id"}})
				rows := rowsOf(name, l.rows(most)...)
				var refused []string
				for len(refused) <= len(l.want) {
					err := d.Write(t.Context(), rows, nil)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrRefused) {
						t.Fatalf("Write = %v, want ErrRefused", err)
					}
					i, reason, err := d.FindRefused(t.Context(), rows)
					if err != nil || i < 0 {
						t.Fatalf("FindRefused = %d, %v, %v", i, reason, err)
					}
					t.Logf("refused %v: %v", rows[i].Data["id"], reason)
					refused = append(refused, fmt.Sprint(rows[i].Data["id"]))
					rows = slices.Delete(rows, i, i+1)
				}
				if !slices.Equal(refused, l.want) {
					t.Errorf("refused %v, want %v", refused, l.want)
				}
				if got := count(t, d, name); got != len(rows) {
					t.Errorf("rows written %d, want the %d not refused", got, len(rows))
				}
			})
		}
	})
}

// TestColumnRefusalBlamesTheWideRowBesideAnotherTable: the write also
// holds a row of another table, written first, that is refused for its
// own fault (no primary key) and comes after the wide rows. The trials
// that look for it write fewer rows, some of which need too many columns
// together: the row they blame is refused, not the row whose addition
// crossed the limit (one of a single column, then each after it in turn).
func TestColumnRefusalBlamesTheWideRowBesideAnotherTable(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		most := 2000
		if e.kind == "postgres" {
			most = 1600
		}
		d := e.open(t, Table{Name: "a", PrimaryKey: []string{"id"}}, Table{Name: "b", PrimaryKey: []string{"id"}})
		rows := rowsOf("a", row("id", "a1", "v", 1))
		rows = append(rows, rowsOf("b", wide("bad", most-10))...)
		for i := range 40 {
			rows = append(rows, rowsOf("b", row("id", fmt.Sprintf("r%02d", i), fmt.Sprintf("e%02d", i), "v"))...)
		}
		rows = append(rows, rowsOf("a", row("v", 2))...) // no id
		var refused []string
		for len(refused) <= 2 {
			err := d.Write(t.Context(), rows, nil)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Write = %v, want ErrRefused", err)
			}
			i, reason, err := d.FindRefused(t.Context(), rows)
			if err != nil || i < 0 {
				t.Fatalf("FindRefused = %d, %v, %v", i, reason, err)
			}
			t.Logf("refused %s %v: %v", rows[i].Table, rows[i].Data["id"], reason)
			refused = append(refused, fmt.Sprint(rows[i].Table, ":", rows[i].Data["id"]))
			rows = slices.Delete(rows, i, i+1)
		}
		slices.Sort(refused)
		if want := []string{"a:<nil>", "b:bad"}; !slices.Equal(refused, want) {
			t.Errorf("refused %v, want %v", refused, want)
		}
		if got := count(t, d, "b"); got != 40 {
			t.Errorf("b rows written %d, want the 40 narrow ones", got)
		}
	})
}
