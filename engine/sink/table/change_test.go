package table

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/sink"
)

// typedTable has a column of every declared type.
var typedTable = Table{Name: "typed", PrimaryKey: []string{"id"}, Columns: map[string]string{
	"id": "STRING", "b": "BOOLEAN", "i": "INT", "l": "LONG", "f": "DOUBLE",
	"dec": "DECIMAL", "j": "JSON", "ts": "UTC_DATETIME", "day": "NAIVE_DATE",
}}

func typedRows() []sink.Row {
	return rowsOf("typed",
		row("id", "a", "b", true, "i", n("42"), "l", n("9007199254740993"), "f", n("1.5"),
			"dec", n("12.25"), "j", row("k", []any{n("1"), "x"}), "ts", "2024-05-06T07:08:09.123456+02:00", "day", "2024-05-06", "extra", "s"),
		row("id", "b", "b", "false", "i", "7", "l", n("3.0"), "f", n("2"),
			"dec", "0.50", "j", "plain", "ts", "2024-05-06 07:08:09", "day", nil),
	)
}

// In an upsert table a row identical to the stored one is left as it is,
// _ferry_synced included, and counted as unchanged: for every column type,
// on both databases. A changed row, a new one and one marked deleted are
// written.
func TestUnchangedRowsNotRewritten(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, typedTable)
		mustWrite(t, d, typedRows())
		if got := d.Unchanged()["typed"]; got != 0 {
			t.Errorf("first load: %d unchanged, want 0", got)
		}
		d.Close()

		e.clock.Add(time.Hour)
		synced1 := e.clock.Now().Format(datetimeFormat)
		d = e.open(t, typedTable)
		second := func() []sink.Row {
			rows := typedRows()
			rows[1].Data["i"] = n("8")
			return rows
		}
		mustWrite(t, d, append(second(), rowsOf("typed", row("id", "c", "i", n("1")))...))
		mustWrite(t, d, typedRows()[:1]) // again, in a second Write
		if got := d.Unchanged()["typed"]; got != 2 {
			t.Errorf("rerun: %d unchanged, want 2 (row a twice)", got)
		}
		synced := map[string]any{}
		for _, r := range dump(t, d, "typed", "id") {
			synced[r["id"].(string)] = r[ColSynced]
		}
		want := map[string]any{"a": synced0, "b": synced1, "c": synced1}
		if diff := cmp.Diff(want, synced); diff != "" {
			t.Errorf("_ferry_synced (-want +got):\n%s", diff)
		}
		d.Close()

		// A row marked deleted (the table was a replace table once) is
		// written even when its data is the same: it is seen again.
		e.clock.Add(time.Hour)
		d = e.open(t, typedTable)
		execSQL(t, d, `UPDATE `+ident(d, "typed")+` SET `+quoteIdent(ColDeleted)+` = `+boolLit(e, true)+` WHERE id = 'a'`)
		mustWrite(t, d, second())
		if got := d.Unchanged()["typed"]; got != 1 {
			t.Errorf("after un-deleting: %d unchanged, want 1 (b)", got)
		}
		if r := dump(t, d, "typed", "id")[0]; r[ColDeleted] != false || r[ColSynced] == synced0 {
			t.Errorf("row a: %v", r)
		}
	})
}

// Without a primary key (rows keyed by their hash) an identical row is
// left as it is too.
func TestUnchangedRowsByHash(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tab := Table{Name: "h"}
		d := e.open(t, tab)
		mustWrite(t, d, rowsOf("h", row("a", "x"), row("a", "y")))
		d.Close()
		e.clock.Add(time.Hour)
		d = e.open(t, tab)
		mustWrite(t, d, rowsOf("h", row("a", "x"), row("a", "z")))
		if got := d.Unchanged()["h"]; got != 1 {
			t.Errorf("%d unchanged, want 1", got)
		}
		var synced []string
		for _, r := range dump(t, d, "h", "a") {
			synced = append(synced, fmt.Sprint(r["a"], " ", r[ColSynced] == synced0))
		}
		if fmt.Sprint(synced) != "[x true y true z false]" {
			t.Errorf("a, synced at the first run: %v", synced)
		}
	})
}

// Replace and merge tables rewrite every row they see: reconciliation
// marks rows whose _ferry_synced is older than the sync, and merging reads
// it too. Identical rows seen by a complete sync are therefore never
// marked deleted.
func TestReplaceRewritesIdenticalRows(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		for _, tab := range []Table{{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace}, {Name: "m", PrimaryKey: []string{"id"}, Merge: true}} {
			d := e.open(t, tab)
			mustWrite(t, d, rowsOf(tab.Name, row("id", "a", "v", "1"), row("id", "b", "v", "2")))
			if _, err := d.FinishRun(t.Context(), map[string]bool{tab.Name: true}, nil); err != nil {
				t.Fatal(err)
			}
			d.Close()
			e.clock.Add(time.Hour)
			d = e.open(t, tab)
			mustWrite(t, d, rowsOf(tab.Name, row("id", "a", "v", "1")))
			marked, err := d.FinishRun(t.Context(), map[string]bool{tab.Name: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			rows := dump(t, d, tab.Name, "id")
			if d.Unchanged()[tab.Name] != 0 || rows[0][ColSynced] == synced0 || rows[0][ColDeleted] != false {
				t.Errorf("%s: unchanged %d, row a %v: want it rewritten", tab.Name, d.Unchanged()[tab.Name], rows[0])
			}
			if tab.Mode == ModeReplace && (marked[tab.Name] != 1 || rows[1][ColDeleted] != true) {
				t.Errorf("replace: marked %v, row b %v", marked, rows[1])
			}
			d.Close()
			e.clock.Add(-time.Hour)
		}
	})
}

func ident(d *DB, table string) string {
	i, _ := d.be.tableNames(table)
	return i
}

func boolLit(e *env, b bool) string {
	switch {
	case e.kind == "postgres":
		return fmt.Sprint(b)
	case b:
		return "1"
	}
	return "0"
}

// execSQL runs one SQL statement on d's connection.
func execSQL(t *testing.T, d *DB, q string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	switch be := d.be.(type) {
	case *pgBackend:
		_, err = be.conn.Exec(t.Context(), q)
	case *sqliteBackend:
		_, err = be.conn.ExecContext(t.Context(), q)
	}
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
