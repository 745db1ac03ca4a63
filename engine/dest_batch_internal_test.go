package engine

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

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
