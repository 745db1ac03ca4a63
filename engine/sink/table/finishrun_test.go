package table

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/sink"
)

// TestFinishRun: one call marks every complete replace table, ends every
// named table's generation and clears the named streams' checkpoints
// together; incomplete tables are not marked, and other modes and other
// streams' state are left alone.
func TestFinishRun(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		tables := []Table{
			{Name: "r1", PrimaryKey: []string{"id"}, Mode: ModeReplace},
			{Name: "r2", PrimaryKey: []string{"id"}, Mode: ModeReplace},
			{Name: "log", Mode: ModeAppend},
		}
		cp := func(stream, v string) sink.Checkpoint {
			return sink.Checkpoint{Stream: stream, Partition: "p", Value: json.RawMessage(v)}
		}
		write := func(d *DB, cps []sink.Checkpoint, ids ...string) {
			t.Helper()
			var rs []sink.Row
			for _, id := range ids {
				for _, tb := range []string{"r1", "r2"} {
					rs = append(rs, sink.Row{Table: tb, Stream: "s", Data: row("id", id)})
				}
			}
			if err := d.Write(ctx, rs, cps); err != nil {
				t.Fatal(err)
			}
		}
		d := e.open(t, tables...)
		write(d, nil, "a", "b")
		if _, err := d.FinishRun(ctx, map[string]bool{"r1": true, "r2": true, "log": true}, nil); err != nil {
			t.Fatal(err)
		}
		d.Close()

		e.clock.Add(time.Hour)
		d = e.open(t, tables...)
		write(d, []sink.Checkpoint{cp("s", `{"pages":1}`), cp("s@cursor", `"x"`)}, "a")
		marked, err := d.FinishRun(ctx, map[string]bool{"r1": true, "r2": false, "log": true}, []string{"s"})
		if err != nil {
			t.Fatal(err)
		}
		if marked["r1"] != 1 || marked["r2"] != 0 || len(marked) != 1 {
			t.Errorf("marked = %v, want r1: 1 only (r2 incomplete, log not replace)", marked)
		}
		// r2's generation ended too: a later sync starts a new one, so b
		// (unseen since) is marked when it completes.
		e.clock.Add(time.Hour)
		write(d, nil, "a")
		if m, err := d.FinishRun(ctx, map[string]bool{"r2": true}, nil); err != nil || m["r2"] != 1 {
			t.Errorf("next sync of r2: marked %v, %v; want r2: 1 (b)", m, err)
		}
		st, err := d.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st["s"]; ok {
			t.Errorf("checkpoints of s survived FinishRun: %v", st)
		}
		if string(st["s@cursor"]["p"]) != `"x"` {
			t.Errorf("the cursor of s was cleared too: %v", st)
		}
		deleted := map[string]bool{}
		for _, r := range dump(t, d, "r1", "id") {
			deleted[r["id"].(string)] = r[ColDeleted].(bool)
		}
		if !deleted["b"] || deleted["a"] {
			t.Errorf("r1 deleted flags = %v, want b only", deleted)
		}
		if n := count(t, d, "r2"); n != 2 {
			t.Errorf("r2 has %d rows", n)
		}
	})
}
