package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/port"
	"github.com/ferry-etl/ferry/engine/sink/table"
	"github.com/ferry-etl/ferry/engine/spec"
)

// refusedDest is destinations over a fresh SQLite file whose batches hold
// 10 rows, with an upsert table t (key id) and an append table log.
func refusedDest(t *testing.T) (*destinations, *table.DB, string) {
	t.Helper()
	ctx := context.Background()
	defs := []table.Table{{Name: "t", PrimaryKey: []string{"id"}}, {Name: "log", Mode: table.ModeAppend}}
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := table.Open(ctx, "sqlite:"+path, table.Options{Schema: "r", BatchRows: 10, Tables: defs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The streams the tests name: items and stuff fan out from roots.
	f, err := spec.Parse("r.yaml", []byte(`version: 1
name: r
http: {base_url: "http://127.0.0.1:1"}
streams:
  roots:
    request: {path: /roots}
  items:
    for_each: roots
    request: {path: /items}
  stuff:
    for_each: roots
    request: {path: /stuff}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &destinations{f: f, tables: db, batch: db.BatchRows(), pending: map[partKey][]sink.Row{}, log: slog.New(slog.DiscardHandler),
		defs: map[string]table.Table{"t": defs[0], "log": defs[1]}}
	return d, db, path
}

// tooWide is a row SQLite refuses: it would need more than 2000 columns.
func tooWide(id string) map[string]any {
	r := map[string]any{"id": id}
	for i := range 2100 {
		r[fmt.Sprintf("f%04d", i)] = "v"
	}
	return r
}

// TestRefusedRowBlocksItsPartition: a row the database refuses is found in
// its batch; the batch's other partitions are written with their
// checkpoints; its own partition commits no checkpoint more in the run,
// nor any row of an append table (the next run reads the partition again
// and would append them twice) — of that batch, of a page pending then, or
// of its later pages — nor the incremental cursors over it (its stream's,
// its parent's). Its rows of upsert tables are written (the next run's
// write over them); other cursors commit. The run fails with the record,
// and the sync is not ended.
func TestRefusedRowBlocksItsPartition(t *testing.T) {
	ctx := context.Background()
	d, db, path := refusedDest(t)
	var committed int
	d.onCommit(func(rows []sink.Row) { committed += len(rows) })
	rows := func(part string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			data := map[string]any{"id": id, "part": part}
			if id == "bad" {
				data = tooWide(id)
			}
			for _, tb := range []string{"t", "log"} {
				if err := d.Row(ctx, sink.Row{Table: tb, Stream: "items", Partition: part, Data: data}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	page := func(part string, n int, ids ...string) {
		t.Helper()
		rows(part, ids...)
		if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "items", Partition: part, Value: json.RawMessage(fmt.Sprint(n))}); err != nil {
			t.Fatalf("Checkpoint: %v", err)
		}
	}
	cursor := func(stream, part string) {
		t.Helper()
		if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: stream + runner.WatermarkSuffix, Partition: part, Value: json.RawMessage(`"2026"`)}); err != nil {
			t.Fatalf("Checkpoint: %v", err)
		}
	}
	// Batch 1 (8 rows): partitions p1 and p2, p2 poisoned, and cursors.
	page("roots=p1", 1, "a1", "a2")
	page("roots=p2", 1, "b1", "bad")
	cursor("items", "roots=p1")
	cursor("items", "roots=p2")
	cursor("roots", "")         // the parent stream's cursor, above p2
	cursor("other", "")         // another stream's
	cursor("stuff", "roots=p2") // a stream that is no ancestor of items
	rows("roots=p2", "b3")      // the next page of p2, waiting for its checkpoint
	if len(d.rows) != 8 {
		t.Fatalf("%d rows in the batch before it is flushed, want 8", len(d.rows))
	}
	if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "x", Value: json.RawMessage(`1`), Flush: true}); err != nil {
		t.Fatal(err)
	}
	st, err := db.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(st["items"]["roots=p1"]); got != "1" {
		t.Errorf("checkpoint of p1 = %q, want 1 (written with its rows)", got)
	}
	if got, ok := st["items"]["roots=p2"]; ok {
		t.Errorf("checkpoint of the poisoned partition p2 committed: %s", got)
	}
	cur := st["items"+runner.WatermarkSuffix]
	if _, ok := cur["roots=p1"]; !ok {
		t.Errorf("cursor of p1 not committed")
	}
	if _, ok := cur["roots=p2"]; ok {
		t.Errorf("cursor of the poisoned partition p2 committed")
	}
	if _, ok := st["roots"+runner.WatermarkSuffix][""]; ok {
		t.Errorf("cursor of the parent stream roots, above p2, committed")
	}
	if _, ok := st["other"+runner.WatermarkSuffix][""]; !ok {
		t.Errorf("cursor of another stream not committed")
	}
	if _, ok := st["stuff"+runner.WatermarkSuffix]["roots=p2"]; !ok {
		t.Errorf("cursor of a stream that is no ancestor of the refused row not committed")
	}
	// Later pages: p2's are dropped, p1's written; a cursor over p2 that
	// comes later stays too.
	page("roots=p2", 2)
	rows("roots=p2", "b4")
	for _, r := range d.pending[partKey{"items", "roots=p2"}] {
		if r.Table == "log" {
			t.Errorf("a row of the append table from the blocked partition p2 held in memory")
		}
	}
	page("roots=p2", 3)
	page("roots=p1", 2, "a3")
	cursor("items", "roots=p2")
	if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "x", Value: json.RawMessage(`2`), Flush: true}); err != nil {
		t.Fatal(err)
	}
	st, _ = db.State(ctx)
	if got := string(st["items"]["roots=p1"]); got != "2" {
		t.Errorf("checkpoint of p1 after its second page = %q, want 2", got)
	}
	if got, ok := st["items"]["roots=p2"]; ok {
		t.Errorf("a later checkpoint of the poisoned partition p2 committed: %s", got)
	}
	if _, ok := st["items"+runner.WatermarkSuffix]["roots=p2"]; ok {
		t.Errorf("a later cursor of the poisoned partition p2 committed")
	}
	sq, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	for tb, want := range map[string]string{"t": "a1 a2 a3 b1 b3 b4", "log": "a1 a2 a3"} {
		var got string
		if err := sq.QueryRow(fmt.Sprintf(`SELECT coalesce(group_concat(id, ' '), '') FROM (SELECT id FROM "r__%s" ORDER BY id)`, tb)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("table %s holds %q, want %q", tb, got, want)
		}
	}
	if committed != 9 {
		t.Errorf("%d rows counted written, want 9", committed)
	}
	sum := &runner.Summary{Streams: []runner.Snapshot{{Stream: "items"}}, Tables: map[string]bool{"t": true, "log": true}, Complete: map[string]bool{"items": true}}
	if _, err := d.finish(ctx, sum, nil); err != nil {
		t.Fatalf("finish: %v", err)
	}
	err = d.addRefused(sum, nil)
	var re *runner.RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 {
		t.Fatalf("run error = %v, want a RunError with the refused record", err)
	}
	f := re.Failures[0]
	if f.Stream != "items" || f.Table != "t" || f.Parents != `roots=p2 > items[id="bad"]` || !strings.Contains(f.Err.Error(), "too many columns") {
		t.Errorf("failure = %+v (%v), want items, table t, roots=p2 > items[id=\"bad\"], the database's message", f, f.Err)
	}
	if ExitCode(err, false) == ExitOK {
		t.Errorf("exit code 0 for a run with a refused record")
	}
	if len(sum.Failures) != 1 || sum.Tables["t"] || sum.Complete["items"] || sum.Streams[0].Errors != 1 {
		t.Errorf("summary: failures %d, table t reconciled %v, items complete %v, items errors %d; want 1, false, false, 1",
			len(sum.Failures), sum.Tables["t"], sum.Complete["items"], sum.Streams[0].Errors)
	}
	st, _ = db.State(ctx)
	if _, ok := st["items"]["roots=p1"]; !ok {
		t.Errorf("the sync was ended: checkpoints cleared although a record was refused")
	}
}

// TestRefusedRowJoinsRunFailures: the refused records join the failures
// the runner reported, in one RunError.
func TestRefusedRowJoinsRunFailures(t *testing.T) {
	d := &destinations{refused: []runner.Failure{{Stream: "s", Table: "t", Err: errors.New("refused")}}}
	runErr := &runner.RunError{Failures: []runner.Failure{{Stream: "s", Err: errors.New("HTTP 500")}}}
	err := d.addRefused(&runner.Summary{}, runErr)
	var re *runner.RunError
	if !errors.As(err, &re) || len(re.Failures) != 2 {
		t.Fatalf("run error = %v, want one RunError with 2 failures", err)
	}
	fatal := errors.New("interrupted")
	sum := &runner.Summary{}
	if err := d.addRefused(sum, fatal); err != fatal || len(sum.Failures) != 1 {
		t.Errorf("after a fatal error: %v and %d failures in the summary; want the fatal error, 1", err, len(sum.Failures))
	}
}

// TestWriteErrorNotRefusedFailsRun: a write that fails for another reason
// than the data (here, the destination closed) fails the run as it did,
// nothing probed or reported as a record.
func TestWriteErrorNotRefusedFailsRun(t *testing.T) {
	ctx := context.Background()
	d, db, _ := refusedDest(t)
	if err := d.Row(ctx, sink.Row{Table: "t", Stream: "items", Partition: "p", Data: tooWide("bad")}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "items", Partition: "p", Value: json.RawMessage(`1`), Flush: true})
	if err == nil || len(d.refused) != 0 {
		t.Fatalf("Checkpoint on a closed destination = %v with %d refused records, want an error and none", err, len(d.refused))
	}
}

// TestRefusedRowHoldsPortCursor: an incremental cursor feeding Port, held
// until Port took the run's entities, stays where it was when a row below
// it was refused after it was held; another one commits.
func TestRefusedRowHoldsPortCursor(t *testing.T) {
	ctx := context.Background()
	d, db, _ := refusedDest(t)
	cur := "items" + runner.WatermarkSuffix
	d.portCursors = map[string][]string{cur: {"bp"}}
	for _, part := range []string{"roots=p1", "roots=p2"} {
		if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: cur, Partition: part, Value: json.RawMessage(`"2026"`)}); err != nil {
			t.Fatal(err)
		}
	}
	// The refusal comes after the cursors were held (at the last flush).
	d.blocked = map[partKey]bool{{"items", "roots=p2"}: true}
	if err := d.commitPortCursors(ctx, nil, &port.Report{Blueprints: map[string]port.BlueprintCounts{"bp": {}}}, nil, true); err != nil {
		t.Fatal(err)
	}
	st, err := db.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st[cur]["roots=p1"]; !ok {
		t.Error("the held cursor of p1 not committed")
	}
	if _, ok := st[cur]["roots=p2"]; ok {
		t.Error("the held cursor over the refused row (p2) committed")
	}
}
