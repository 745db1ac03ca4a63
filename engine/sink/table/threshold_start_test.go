package table

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/sink"
)

// idRows are rows of tab, one per id.
func idRows(tab string, ids ...string) []sink.Row {
	var rs []sink.Row
	for _, id := range ids {
		rs = append(rs, rowsOf(tab, row("id", id))...)
	}
	return rs
}

// others are n ids no seed row has.
func others(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("n%02d", i))
	}
	return out
}

// execRaw runs q on d's connection, as another tool (or an older ferry)
// would.
func execRaw(t *testing.T, d *DB, q string) {
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

// syncTable is d's _ferry_sync, ready for SQL.
func syncTable(d *DB) string {
	switch be := d.be.(type) {
	case *pgBackend:
		return be.syncT
	case *sqliteBackend:
		return be.syncT
	}
	return ""
}

// planRefused is the plan of a complete sync of tab listing ids: its line
// and the reason it refuses deletions, without the plan's own ending.
func planRefused(t *testing.T, e *env, tab Table, ids ...string) (string, string) {
	t.Helper()
	p, err := e.reader(t, tab).Plan(t.Context(), tab.Name, idRows(tab.Name, ids...), true)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return planLine(p), strings.TrimSuffix(p.Refused, ": no row is marked deleted")
}

// TestDeleteThresholdCountsRowsLiveAtStart: the share a sync would mark
// is counted over the rows live when the sync began, not diluted by the
// rows it inserts: a source now listing 30 other rows (another org, a
// wrong answer) into a table of 3 would mark 3 of the 3 there were,
// which is refused, though they are 3 of the 33 live at the end; the plan
// says the same. The next sync judges afresh, over the 33.
func TestDeleteThresholdCountsRowsLiveAtStart(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace}
		syncOnce(t, e, tab, "a", "b", "c")
		const want = "would delete 3 of 3 live rows, above the 90% threshold (tables.r.delete_threshold)"
		e.clock.Add(time.Minute)
		if line, refused := planRefused(t, e, tab, others(30)...); line != "+30 ~0 =0 -0 | kept 3" || refused != want {
			t.Errorf("plan: %s, refused %q; want +30 kept 3, %q", line, refused, want)
		}
		m, sk := syncOnce(t, e, tab, others(30)...)
		if m != 0 || sk == nil || sk.Stale != 3 || sk.Live != 3 || sk.Reason != want {
			t.Fatalf("30 others into 3: marked %d, skipped %+v; want none marked, %q", m, sk, want)
		}
		if live, all := liveRows(t, e, tab); live != 33 || all != 33 {
			t.Errorf("rows after: %d live of %d, want 33 of 33", live, all)
		}
		if !strings.Contains(e.logs.String(), "stale=3 live=3 ") {
			t.Errorf("the warning does not count 3 of 3:\n%s", e.logs.String())
		}
		if m, sk := syncOnce(t, e, tab, others(30)...); m != 3 || sk != nil {
			t.Errorf("the next sync of the 30: marked %d, skipped %+v; want 3 (of 33)", m, sk)
		}
	})
}

// TestDeleteThresholdNewRowsStillMark: a sync that inserts many rows
// still marks the few it did not see, the rows it saw again counting as
// live (1 of 10; 8 of 10); plan and run agree.
func TestDeleteThresholdNewRowsStillMark(t *testing.T) {
	for _, tc := range []struct {
		name   string
		seen   []string
		marked int
	}{
		{name: "one unseen, a hundred new", seen: seedIDs[:9], marked: 1},
		{name: "eight unseen, thirty new", seen: seedIDs[:2], marked: 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace}
				syncOnce(t, e, tab, seedIDs...)
				ids := append(append([]string{}, tc.seen...), others(100)[:len(tc.seen)*10+10]...)
				e.clock.Add(time.Minute)
				if line, refused := planRefused(t, e, tab, ids...); refused != "" || !strings.HasSuffix(line, fmt.Sprintf(" -%d", tc.marked)) {
					t.Errorf("plan: %s, refused %q; want -%d", line, refused, tc.marked)
				}
				if m, sk := syncOnce(t, e, tab, ids...); m != tc.marked || sk != nil {
					t.Errorf("marked %d, skipped %+v; want %d", m, sk, tc.marked)
				}
			})
		})
	}
}

// TestDeleteThresholdResumedSync: a sync interrupted after inserting 30
// rows and resumed by another run counts the rows live when its first
// run began (3), not those live when the resuming run began (33); a plan
// between the two says what the resuming run does, counting as seen what
// the interrupted run wrote.
func TestDeleteThresholdResumedSync(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace}
		syncOnce(t, e, tab, "a", "b", "c")
		e.clock.Add(time.Hour)
		d := e.open(t, tab)
		mustWrite(t, d, idRows("r", others(30)...))
		d.Close() // interrupted: no FinishRun

		const want = "would delete 3 of 3 live rows, above the 90% threshold (tables.r.delete_threshold)"
		e.clock.Add(time.Hour)
		// The source no longer lists n29, which the interrupted run wrote:
		// the sync saw it, and the resuming run (reading only what that run
		// did not) keeps it.
		if line, refused := planRefused(t, e, tab, others(29)...); line != "+0 ~0 =29 -0 | kept 3" || refused != want {
			t.Errorf("plan of the resuming run: %s, refused %q; want =29 kept 3, %q", line, refused, want)
		}
		d = e.open(t, tab)
		defer d.Close()
		mustWrite(t, d, idRows("r", others(1)...)) // the resuming run writes too
		if _, err := d.FinishRun(t.Context(), map[string]bool{"r": true}, nil); err != nil {
			t.Fatal(err)
		}
		sk, ok := d.SkippedDeletes()["r"]
		if !ok || sk.Stale != 3 || sk.Live != 3 || sk.Reason != want {
			t.Errorf("resumed sync: skipped %+v (%v); want %q", sk, ok, want)
		}
		if live, _ := liveRows(t, e, tab); live != 33 {
			t.Errorf("%d live rows after, want 33", live)
		}
	})
}

// TestDeleteThresholdOlderSync: a sync begun by a ferry that saved no
// count (its _ferry_sync lacks the column) is finished by today's: the
// column is added, and the share is counted over the rows live at the end
// (3 of 33: marked), by the plan as by the run.
func TestDeleteThresholdOlderSync(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace}
		syncOnce(t, e, tab, "a", "b", "c")
		e.clock.Add(time.Hour)
		d := e.open(t, tab)
		mustWrite(t, d, idRows("r", others(30)...))
		execRaw(t, d, `ALTER TABLE `+syncTable(d)+` DROP COLUMN live_at_start`)
		d.Close()

		e.clock.Add(time.Hour)
		if line, refused := planRefused(t, e, tab, others(30)...); line != "+0 ~0 =30 -3" || refused != "" {
			t.Errorf("plan of the resuming run: %s, refused %q; want =30 -3", line, refused)
		}
		d = e.open(t, tab)
		defer d.Close()
		if m, err := d.FinishRun(t.Context(), map[string]bool{"r": true}, nil); err != nil || m["r"] != 3 {
			t.Errorf("FinishRun = %v, %v; want r: 3 (of 33)", m, err)
		}
		// The next sync saves its count.
		if line, refused := planRefused(t, e, tab); refused != "would delete 30 of 30 live rows, above the 90% threshold (tables.r.delete_threshold)" {
			t.Errorf("plan after: %s, %q", line, refused)
		}
		if m, sk := syncOnce(t, e, tab, "z"); m != 0 || sk == nil || sk.Live != 30 {
			t.Errorf("next sync: marked %d, skipped %+v; want 30 of 30 refused", m, sk)
		}
	})
}

// TestPlanEndedGeneration: a plan whose run would end the open sync
// (--full-refresh, a sync too old to resume) counts the rows live now,
// as that run does.
func TestPlanEndedGeneration(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace}
		syncOnce(t, e, tab, "a", "b", "c")
		e.clock.Add(time.Hour)
		d := e.open(t, tab)
		mustWrite(t, d, idRows("r", others(30)...))
		d.Close()

		e.clock.Add(time.Hour)
		for _, all := range []bool{true, false} {
			r := e.reader(t, tab)
			if all {
				r.EndGenerations(true, nil)
			} else {
				r.EndGenerations(false, []string{"r"})
			}
			p, err := r.Plan(t.Context(), "r", idRows("r", others(30)...), true)
			if err != nil {
				t.Fatal(err)
			}
			if got := planLine(p); got != "+0 ~0 =30 -3" || p.Refused != "" {
				t.Errorf("plan, generations ended (all %v): %s, %q; want =30 -3", all, got, p.Refused)
			}
		}
		d = e.open(t, tab)
		defer d.Close()
		if err := d.Restart(t.Context(), func(string) bool { return false }); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, d, idRows("r", others(30)...))
		if m, err := d.FinishRun(t.Context(), map[string]bool{"r": true}, nil); err != nil || m["r"] != 3 {
			t.Errorf("FinishRun after Restart = %v, %v; want r: 3 (of 33)", m, err)
		}
	})
}

// TestPlanReplaceByIDNewColumn: a plan of a replace table keyed by
// _ferry_id whose rows bring a new column reads the stored keys at the
// plan's width (it panicked, reading the id past the stored columns).
func TestPlanReplaceByIDNewColumn(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tab := Table{Name: "r", Mode: ModeReplace, DeleteThreshold: 1}
		d := e.open(t, tab)
		mustWrite(t, d, rowsOf("r", row("a", 1), row("a", 2)))
		if _, err := d.FinishRun(t.Context(), map[string]bool{"r": true}, nil); err != nil {
			t.Fatal(err)
		}
		d.Close()
		p, err := e.reader(t, tab).Plan(t.Context(), "r", rowsOf("r", row("a", 1), row("a", 3, "b", 2)), true)
		if err != nil {
			t.Fatal(err)
		}
		if got := planLine(p); got != "+1 ~0 =1 -1" || p.Refused != "" {
			t.Errorf("plan: %s (%q); want +1 =1 -1", got, p.Refused)
		}
	})
}
