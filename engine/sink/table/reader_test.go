package table

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/sink"
)

func (e *env) reader(t *testing.T, tables ...Table) *Reader {
	t.Helper()
	r, err := OpenReader(t.Context(), e.dest, Options{Schema: e.schema, Tables: tables, Now: e.clock.Now})
	if err != nil {
		t.Fatalf("OpenReader: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// planLine is a table plan in one line, with every update's changes.
func planLine(p *TablePlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%d ~%d =%d -%d", len(p.Create), len(p.Update), p.Unchanged, len(p.Delete))
	for _, u := range p.Update {
		fmt.Fprintf(&b, " | %v:", u.Key)
		for _, c := range u.Changes {
			fmt.Fprintf(&b, " %s %v→%v", c.Column, c.Old, c.New)
		}
	}
	if p.Refused != "" {
		fmt.Fprintf(&b, " | kept %d", p.Kept)
	}
	return b.String()
}

// A destination that does not exist yet plans every row as a create, and
// the plan makes nothing: no file, no schema.
func TestPlanEmptyDestination(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reader(t, typedTable)
		p, err := r.Plan(t.Context(), "typed", typedRows(), true)
		if err != nil {
			t.Fatal(err)
		}
		if got := planLine(p); got != "+2 ~0 =0 -0" || fmt.Sprint(p.Create) != "[map[id:a] map[id:b]]" {
			t.Errorf("plan %s, creates %v", got, p.Create)
		}
		st, err := r.State(t.Context())
		if err != nil || len(st) != 0 {
			t.Errorf("state %v, %v", st, err)
		}
		switch e.kind {
		case "sqlite":
			if _, err := os.Stat(strings.TrimPrefix(e.dest, "sqlite:")); !os.IsNotExist(err) {
				t.Errorf("the plan made the database file: %v", err)
			}
		case "postgres":
			var n int
			rows, err := r.d.be.query(t.Context(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, []any{e.schema})
			if err == nil {
				n = int(rows[0][0].(int64))
			}
			if err != nil || n != 0 {
				t.Errorf("the plan made the schema (%d, %v)", n, err)
			}
		}
	})
}

// After a write, the same rows plan as unchanged — for every column type,
// exactly as the write's own change-only count says — and changed rows as
// updates with each column's old and new value; writing nothing.
func TestPlanAgainstStoredRows(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, typedTable)
		mustWrite(t, d, typedRows())
		d.Close()

		e.clock.Add(time.Hour)
		r := e.reader(t, typedTable)
		p, err := r.Plan(t.Context(), "typed", typedRows(), true)
		if err != nil {
			t.Fatal(err)
		}
		if got := planLine(p); got != "+0 ~0 =2 -0" {
			t.Errorf("same rows: %s", got)
		}
		rows := typedRows()
		rows[0].Data["i"] = n("43")
		rows[0].Data["j"] = row("k", []any{n("2"), "x"})
		rows[0].Data["ts"] = "2024-05-06T07:08:10.123456+02:00"
		rows[0].Data["dec"] = n("12.250") // the same number
		rows[0].Data["new"] = "fresh"     // a column the table does not have yet
		delete(rows[1].Data, "f")
		rows = append(rows, rowsOf("typed", row("id", "c"))...)
		p, err = r.Plan(t.Context(), "typed", rows, true)
		if err != nil {
			t.Fatal(err)
		}
		want := "+1 ~2 =0 -0 | map[id:a]: i 42→43 j map[k:[1 x]]→map[k:[2 x]] ts 2024-05-06T05:08:09.123456Z→2024-05-06T05:08:10.123456Z new <nil>→fresh | map[id:b]: f 2→<nil>"
		if got := planLine(p); got != want {
			t.Errorf("changed rows:\n%s\nwant\n%s", got, want)
		}
		r.Close()

		// The plan is what the write then does.
		d = e.open(t, typedTable)
		mustWrite(t, d, rows)
		if got := d.Unchanged()["typed"]; got != 0 {
			t.Errorf("write after the plan: %d unchanged, want 0", got)
		}
		d.Close()
		r = e.reader(t, typedTable)
		if p, err = r.Plan(t.Context(), "typed", rows, true); err != nil || planLine(p) != "+0 ~0 =3 -0" {
			t.Errorf("after the write: %s, %v", planLine(p), err)
		}
	})
}

// A replace table plans the rows a complete sync did not see as deletes;
// an incomplete one keeps them and says so. A row marked deleted that is
// seen again is an update.
func TestPlanReplace(t *testing.T) {
	tab := Table{Name: "r", PrimaryKey: []string{"org", "id"}, Mode: ModeReplace}
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, tab)
		mustWrite(t, d, rowsOf("r", row("org", "o", "id", n("1")), row("org", "o", "id", n("2")), row("org", "p", "id", n("1"))))
		if _, err := d.FinishRun(t.Context(), map[string]bool{"r": true}, nil); err != nil {
			t.Fatal(err)
		}
		d.Close()
		e.clock.Add(time.Hour)
		d = e.open(t, tab)
		mustWrite(t, d, rowsOf("r", row("org", "o", "id", n("1")), row("org", "o", "id", n("2"))))
		if _, err := d.FinishRun(t.Context(), map[string]bool{"r": true}, nil); err != nil {
			t.Fatal(err)
		}
		d.Close()

		r := e.reader(t, tab)
		seen := rowsOf("r", row("org", "o", "id", n("1")), row("org", "p", "id", n("1")))
		p, err := r.Plan(t.Context(), "r", seen, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := planLine(p); got != "+0 ~1 =1 -1 | map[id:1 org:p]: _ferry_deleted true→false" || fmt.Sprint(p.Delete) != "[map[id:2 org:o]]" {
			t.Errorf("complete: %s, deletes %v", got, p.Delete)
		}
		p, err = r.Plan(t.Context(), "r", seen, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := planLine(p); !strings.HasSuffix(got, "| kept 1") || len(p.Delete) != 0 || !strings.Contains(p.Refused, "not every stream") {
			t.Errorf("incomplete: %s (%q)", got, p.Refused)
		}
	})
}

// Rows repeating a key plan once: the last, or merged in a merge table;
// rows of an append table are all creates.
func TestPlanRepeatedKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tabs := []Table{{Name: "u", PrimaryKey: []string{"id"}}, {Name: "m", PrimaryKey: []string{"id"}, Merge: true}, {Name: "a", Mode: ModeAppend}}
		d := e.open(t, tabs...)
		for _, tab := range []string{"u", "m"} {
			mustWrite(t, d, rowsOf(tab, row("id", "x", "a", "1", "b", "2")))
		}
		mustWrite(t, d, rowsOf("a", row("v", "1")))
		d.Close()
		r := e.reader(t, tabs...)
		var got []string
		for _, tab := range []string{"u", "m", "a"} {
			rows := rowsOf(tab, row("id", "x", "a", "1", "b", nil), row("id", "x", "a", nil, "b", "2"))
			if tab == "a" {
				rows = rowsOf(tab, row("v", "1"), row("v", "2"))
			}
			p, err := r.Plan(t.Context(), tab, rows, true)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, tab+" "+planLine(p))
		}
		want := []string{"u +0 ~1 =0 -0 | map[id:x]: a 1→<nil>", "m +0 ~0 =1 -0", "a +2 ~0 =0 -0"}
		if !slices.Equal(got, want) {
			t.Errorf("plans\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// A reader writes nothing to an existing destination either: the SQLite
// file is opened read-only.
func TestReaderWritesNothing(t *testing.T) {
	e := newSQLiteEnv(t)
	d := e.open(t, typedTable)
	mustWrite(t, d, typedRows(), sink.Checkpoint{Stream: "s", Value: []byte(`1`)})
	d.Close()
	path := strings.TrimPrefix(e.dest, "sqlite:")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := e.reader(t, typedTable)
	if st, err := r.State(t.Context()); err != nil || string(st["s"][""]) != "1" {
		t.Errorf("state %v, %v", st, err)
	}
	if _, err := r.Plan(t.Context(), "typed", typedRows(), true); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Write(t.Context(), typedRows(), nil); err == nil {
		t.Error("a write through a reader succeeded")
	}
	r.Close()
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Error("the database file changed under a reader")
	}
	for _, suffix := range []string{"-wal", "-journal"} {
		if fi, err := os.Stat(filepath.Clean(path + suffix)); err == nil && fi.Size() > 0 {
			t.Errorf("%s%s holds %d bytes after a reader", path, suffix, fi.Size())
		}
	}
}
