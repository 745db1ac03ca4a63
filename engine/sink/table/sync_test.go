package table

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/sink"
)

// TestMergeKeepsColumnsWrittenThisSync: in a merge table, a row whose key
// the sync already wrote keeps the stored values where the new row has
// null, within one Write, across Writes and across an interrupted run (the
// sync's generation); a row from an earlier sync is replaced whole.
func TestMergeKeepsColumnsWrittenThisSync(t *testing.T) {
	tab := Table{Name: "m", PrimaryKey: []string{"id"}, Merge: true}
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		get := func(d *DB) map[string]map[string]any {
			t.Helper()
			out := map[string]map[string]any{}
			for _, r := range dump(t, d, "m", "id") {
				out[r["id"].(string)] = map[string]any{"a": r["a"], "b": r["b"]}
			}
			return out
		}
		d := e.open(t, tab)
		// One Write holding both halves of "x", then another with a third.
		mustWrite(t, d, rowsOf("m", row("id", "x", "a", "a1", "b", nil), row("id", "x", "a", nil, "b", "b1"), row("id", "y", "a", "ya", "b", "yb")))
		mustWrite(t, d, rowsOf("m", row("id", "y", "a", nil, "b", "yb2")))
		want := map[string]map[string]any{"x": {"a": "a1", "b": "b1"}, "y": {"a": "ya", "b": "yb2"}}
		if diff := cmp.Diff(want, get(d)); diff != "" {
			t.Errorf("merged rows (-want +got):\n%s", diff)
		}
		d.Close()
		// Interrupted (no FinishRun): the next run continues the sync.
		e.clock.Add(time.Hour)
		d = e.open(t, tab)
		mustWrite(t, d, rowsOf("m", row("id", "x", "a", nil, "b", "b2")))
		want["x"] = map[string]any{"a": "a1", "b": "b2"}
		if diff := cmp.Diff(want, get(d)); diff != "" {
			t.Errorf("merged across an interruption (-want +got):\n%s", diff)
		}
		if _, err := d.FinishRun(ctx, map[string]bool{"m": true}, nil); err != nil {
			t.Fatal(err)
		}
		d.Close()
		// A new sync: the stored row is replaced, nulls included.
		e.clock.Add(time.Hour)
		d = e.open(t, tab)
		defer d.Close()
		mustWrite(t, d, rowsOf("m", row("id", "x", "a", nil, "b", "b3")))
		want["x"] = map[string]any{"a": nil, "b": "b3"}
		if diff := cmp.Diff(want, get(d)); diff != "" {
			t.Errorf("a new sync merged into the old one (-want +got):\n%s", diff)
		}
	})
}

// TestUpsertWithoutMergeReplacesWhole is the control: the same rows in a
// table without merge end as the last row, nulls included.
func TestUpsertWithoutMergeReplacesWhole(t *testing.T) {
	tab := Table{Name: "u", PrimaryKey: []string{"id"}}
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, tab)
		defer d.Close()
		mustWrite(t, d, rowsOf("u", row("id", "x", "a", "a1", "b", nil)))
		mustWrite(t, d, rowsOf("u", row("id", "x", "a", nil, "b", "b1")))
		got := dump(t, d, "u", "id")
		if len(got) != 1 || got[0]["a"] != nil || got[0]["b"] != "b1" {
			t.Errorf("rows = %v, want x with a null, b b1", got)
		}
	})
}

// TestEnsureTables: declared tables that got no rows exist afterwards, with
// their declared columns and key (an undeclared key column as STRING), and
// a later run writes into them.
func TestEnsureTables(t *testing.T) {
	tables := []Table{
		{Name: "empty", PrimaryKey: []string{"ou", "stage"}, Columns: map[string]string{"ou": "STRING", "mean": "DOUBLE"}},
		{Name: "nokey", Mode: ModeAppend},
		{Name: "full", PrimaryKey: []string{"id"}},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d := e.open(t, tables...)
		mustWrite(t, d, rowsOf("full", row("id", 1)))
		if err := d.EnsureTables(ctx); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"empty", "nokey", "full"} {
			want := 0
			if name == "full" {
				want = 1
			}
			if n := count(t, d, name); n != want {
				t.Errorf("table %s has %d rows, want %d", name, n, want)
			}
		}
		got := nativeTypes(t, d, "empty")
		for _, c := range []string{"ou", "stage", "mean", ColSynced, ColDeleted} {
			if _, ok := got[c]; !ok {
				t.Errorf("empty table lacks column %s: %v", c, got)
			}
		}
		if err := d.EnsureTables(ctx); err != nil {
			t.Fatalf("second EnsureTables: %v", err)
		}
		d.Close()
		// The next run's first row types the key column it had to guess:
		// the table ends as it would have without being made empty first.
		d = e.open(t, tables...)
		defer d.Close()
		mustWrite(t, d, rowsOf("empty", row("ou", "o", "stage", 3, "mean", 1.5)))
		if n := count(t, d, "empty"); n != 1 {
			t.Errorf("empty table after a write has %d rows", n)
		}
		ref := e.open(t, Table{Name: "ref", PrimaryKey: []string{"ou", "stage"}, Columns: map[string]string{"ou": "STRING", "mean": "DOUBLE"}})
		defer ref.Close()
		mustWrite(t, ref, rowsOf("ref", row("ou", "o", "stage", 3, "mean", 1.5)))
		if diff := cmp.Diff(nativeTypes(t, ref, "ref"), nativeTypes(t, d, "empty")); diff != "" {
			t.Errorf("column types of a table made empty first (-made with rows +made empty):\n%s", diff)
		}
		if got := dump(t, d, "empty", "ou"); len(got) != 1 || got[0]["stage"] != int64(3) {
			t.Errorf("rows = %v, want stage 3 as a number", got)
		}
	})
}

// TestRestart: a restart drops the state of streams the caller does not
// keep and ends every generation (a replace table's next complete sync
// marks what only the abandoned sync wrote).
func TestRestart(t *testing.T) {
	// Threshold 1: the one row live when the new sync begins goes (the
	// delete threshold would keep it: 1 of 1).
	tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace, DeleteThreshold: 1}
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d := e.open(t, tab)
		cps := []sink.Checkpoint{
			{Stream: "s", Partition: "p", Value: json.RawMessage(`{"pages":1}`)},
			{Stream: "s@cursor", Partition: "p", Value: json.RawMessage(`"2024"`)},
		}
		mustWrite(t, d, rowsOf("r", row("id", "abandoned")), cps...)
		d.Close()
		e.clock.Add(time.Hour)
		d = e.open(t, tab)
		defer d.Close()
		if err := d.Restart(ctx, func(stream string) bool { return stream == "s@cursor" }); err != nil {
			t.Fatal(err)
		}
		st, err := d.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st["s"]; ok || string(st["s@cursor"]["p"]) != `"2024"` {
			t.Errorf("state after Restart = %v, want only s@cursor", st)
		}
		mustWrite(t, d, rowsOf("r", row("id", "new")))
		if m, err := d.FinishRun(ctx, map[string]bool{"r": true}, nil); err != nil || m["r"] != 1 {
			t.Errorf("FinishRun after Restart = %v, %v; want r: 1 (abandoned)", m, err)
		}
	})
}
