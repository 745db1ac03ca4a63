package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
)

// TestSavedKeysFollowTheirCheckpoint: the key hashes of a partition's rows
// are committed with its checkpoint, as an entry of their own: those of a
// page whose checkpoint never came are not, nor those of a partition a
// refused row blocked (its checkpoint is not committed: the next run reads
// its rows again, from the checkpoint before). A partition's later Write
// adds an entry, numbered after every one saved; readKeys takes them out
// of the state, by table and partition.
func TestSavedKeysFollowTheirCheckpoint(t *testing.T) {
	ctx := context.Background()
	d, db, _ := refusedDest(t)
	page := func(part string, n int, ids ...string) {
		t.Helper()
		for _, id := range ids {
			data := map[string]any{"id": id}
			if id == "bad" {
				data = tooWide(id)
			}
			if err := d.Row(ctx, sink.Row{Table: "t", Stream: "items", Partition: part, Data: data, KeyHash: runner.KeyHash(id)}); err != nil {
				t.Fatal(err)
			}
		}
		if n > 0 {
			if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "items", Partition: part, Value: json.RawMessage(fmt.Sprint(n))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush := func() {
		t.Helper()
		if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "x", Value: json.RawMessage(`1`), Flush: true}); err != nil {
			t.Fatal(err)
		}
	}
	page("roots=p1", 1, "a1", "a2")
	page("roots=p2", 1, "b1")
	flush()
	page("roots=p1", 2, "a3")
	page("roots=p2", 2, "b2", "bad") // refused: p2 is blocked
	page("roots=p1", 0, "a4")        // no checkpoint yet
	flush()
	st, err := db.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for part := range st["items"+keysSuffix] {
		entries = append(entries, part)
	}
	slices.Sort(entries)
	if want := []string{"roots=p1|0", "roots=p1|2", "roots=p2|1"}; !slices.Equal(entries, want) {
		t.Errorf("entries = %q, want %q (p2's second page blocked)", entries, want)
	}
	r := &destinations{log: d.log}
	saved, next, _ := r.readKeys(st)
	if next != 3 {
		t.Errorf("next entry = %d, want 3", next)
	}
	if _, ok := st["items"+keysSuffix]; ok {
		t.Error("readKeys left the entries in the state the runner gets")
	}
	if saved.Len() != 4 {
		t.Errorf("%d keys saved, want 4 (a1 a2 a3 b1)", saved.Len())
	}
	for _, c := range []struct {
		id, part string
		want     bool
	}{
		{"a1", "roots=p1", true}, {"a3", "roots=p1", true}, {"b1", "roots=p2", true},
		{"a4", "roots=p1", false}, {"b2", "roots=p2", false}, {"bad", "roots=p2", false},
	} {
		if got := saved.Has("t", "items", c.part, runner.KeyHash(c.id)); got != c.want {
			t.Errorf("key %s of %s saved = %v, want %v", c.id, c.part, got, c.want)
		}
	}
}

// TestFreshCheckpointDropsSavedKeys: a partition read from its start again
// (Fresh) replaces the entries of keys it committed before, in the
// transaction of its new checkpoint; those of a partition a refused row
// blocks stay, as its old checkpoint does.
func TestFreshCheckpointDropsSavedKeys(t *testing.T) {
	ctx := context.Background()
	d, db, _ := refusedDest(t)
	page := func(part string, fresh bool, ids ...string) {
		t.Helper()
		for _, id := range ids {
			data := map[string]any{"id": id}
			if id == "bad" {
				data = tooWide(id)
			}
			if err := d.Row(ctx, sink.Row{Table: "t", Stream: "items", Partition: part, Data: data, KeyHash: runner.KeyHash(id)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "items", Partition: part, Value: json.RawMessage(`1`), Fresh: fresh}); err != nil {
			t.Fatal(err)
		}
	}
	flush := func() {
		t.Helper()
		if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "x", Value: json.RawMessage(`1`), Flush: true}); err != nil {
			t.Fatal(err)
		}
	}
	state := func() map[string]map[string]json.RawMessage {
		t.Helper()
		st, err := db.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// The first run.
	page("roots=p1", false, "a1")
	page("roots=p2", false, "b1")
	flush()
	page("roots=p1", false, "a2")
	flush()
	// The resumed run reads p1 and p2 afresh; p2's reading is refused.
	d.saved, d.keySeq, d.entries = d.readKeys(state())
	page("roots=p1", true, "a3")
	page("roots=p2", true, "b2", "bad")
	flush()
	saved, _, entries := d.readKeys(state())
	var got []string
	for k, es := range entries {
		for _, e := range es {
			got = append(got, k.partition+" "+e)
		}
	}
	slices.Sort(got)
	if want := []string{"roots=p1 roots=p1|3", "roots=p2 roots=p2|1"}; !slices.Equal(got, want) {
		t.Errorf("entries = %q, want p1's new one and p2's old one", got)
	}
	for _, c := range []struct {
		id, part string
		want     bool
	}{{"a1", "roots=p1", false}, {"a2", "roots=p1", false}, {"a3", "roots=p1", true}, {"b1", "roots=p2", true}, {"b2", "roots=p2", false}} {
		if got := saved.Has("t", "items", c.part, runner.KeyHash(c.id)); got != c.want {
			t.Errorf("key %s of %s saved = %v, want %v", c.id, c.part, got, c.want)
		}
	}
}

// TestFreshCheckpointDropsThisRunsKeys: a partition read afresh by a later
// chain of the same run (its parent listed twice, changed in between)
// replaces the keys the earlier chain saved in this run, committed (an
// earlier Write) or not yet: the resumed run goes on after the later
// reading's checkpoint, and would meet the earlier one's keys there as
// duplicates of its own partition's new records.
func TestFreshCheckpointDropsThisRunsKeys(t *testing.T) {
	ctx := context.Background()
	d, db, _ := refusedDest(t)
	page := func(part string, fresh bool, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if err := d.Row(ctx, sink.Row{Table: "t", Stream: "items", Partition: part, Data: map[string]any{"id": id}, KeyHash: runner.KeyHash(id)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "items", Partition: part, Value: json.RawMessage(`1`), Fresh: fresh}); err != nil {
			t.Fatal(err)
		}
	}
	flush := func() {
		t.Helper()
		if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "x", Value: json.RawMessage(`1`), Flush: true}); err != nil {
			t.Fatal(err)
		}
	}
	// The earlier chain: one page committed, one made ready.
	page("roots=p1", false, "a1")
	page("roots=p2", false, "b1")
	flush()
	page("roots=p1", false, "a2")
	// The later chain of p1, afresh.
	page("roots=p1", true, "a3")
	flush()
	st, err := db.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	saved, _, _ := d.readKeys(st)
	for _, c := range []struct {
		id, part string
		want     bool
	}{{"a1", "roots=p1", false}, {"a2", "roots=p1", false}, {"a3", "roots=p1", true}, {"b1", "roots=p2", true}} {
		if got := saved.Has("t", "items", c.part, runner.KeyHash(c.id)); got != c.want {
			t.Errorf("key %s of %s saved = %v, want %v", c.id, c.part, got, c.want)
		}
	}
}
