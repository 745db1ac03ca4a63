package engine

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/table"
)

// TestCheckpointBatching: checkpoints fill a batch as rows do, so a fan-out
// over thousands of parents with few rows each commits as it goes instead
// of holding every checkpoint until enough rows came; and within a batch
// only a partition's last checkpoint is written.
func TestCheckpointBatching(t *testing.T) {
	ctx := context.Background()
	db, err := table.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "b.db"), table.Options{Schema: "b", BatchRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := &destinations{tables: db, batch: db.BatchRows(), pending: map[partKey][]sink.Row{}, log: slog.New(slog.DiscardHandler)}
	cp := func(part, value string) {
		t.Helper()
		if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "s", Partition: part, Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	// One partition's pages: three checkpoints, one entry.
	cp("p0", `{"pages":1}`)
	cp("p0", `{"pages":2}`)
	cp("p0", `{"pages":3}`)
	for i := 1; i < 9; i++ {
		cp(fmt.Sprintf("p%d", i), `{"pages":1}`)
	}
	st, err := db.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st["s"]); n != 0 {
		t.Fatalf("%d checkpoints committed before the batch is full (9 partitions of 10)", n)
	}
	cp("p9", `{"pages":1}`) // the tenth partition fills the batch
	if st, err = db.State(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(st["s"]); n != 10 {
		t.Fatalf("%d checkpoints committed with a full batch of checkpoints and no rows, want 10", n)
	}
	if got := string(st["s"]["p0"]); got != `{"pages":3}` {
		t.Errorf("partition p0 = %s, want its last checkpoint", got)
	}
}

// TestRowsWithoutCheckpointFailTheRun: rows still waiting for their page's
// checkpoint when a run ends without an error are a broken promise of the
// runner (every page it produces rows for ends with a checkpoint). They
// were dropped with a warning while the sync was ended and its checkpoints
// cleared, so no later run fetched them again and the run exited 0.
// Instead the run fails and keeps its checkpoints.
func TestRowsWithoutCheckpointFailTheRun(t *testing.T) {
	ctx := context.Background()
	db, err := table.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "b.db"), table.Options{Schema: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := &destinations{tables: db, batch: db.BatchRows(), pending: map[partKey][]sink.Row{}, log: slog.New(slog.DiscardHandler)}
	if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "s", Partition: "p0", Value: []byte(`{"pages":1}`), Flush: true}); err != nil {
		t.Fatal(err)
	}
	if err := d.Row(ctx, sink.Row{Table: "t", Stream: "s", Partition: "p1", Data: map[string]any{"id": "x"}}); err != nil {
		t.Fatal(err)
	}
	sum := &runner.Summary{Streams: []runner.Snapshot{{Stream: "s"}}, Tables: map[string]bool{"t": true}}
	if _, err := d.finish(ctx, sum, nil); err == nil {
		t.Fatal("finish succeeded with a row neither written nor left for a resumed run")
	}
	st, err := db.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st["s"]["p0"]; !ok {
		t.Errorf("state = %v: the checkpoints were cleared, so no run fetches the row again", st)
	}
}
