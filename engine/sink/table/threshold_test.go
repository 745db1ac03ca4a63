package table

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/sink"
)

// seedIDs are the ten rows every threshold case starts from.
var seedIDs = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}

// syncOnce is one complete sync of the replace table tab that lists ids:
// the rows marked and the deletion skipped, if any.
func syncOnce(t *testing.T, e *env, tab Table, ids ...string) (int, *SkippedDelete) {
	t.Helper()
	e.clock.Add(time.Hour)
	d := e.open(t, tab)
	defer d.Close()
	var rs []sink.Row
	for _, id := range ids {
		rs = append(rs, rowsOf(tab.Name, row("id", id))...)
	}
	if len(rs) > 0 {
		mustWrite(t, d, rs)
	}
	marked, err := d.FinishRun(t.Context(), map[string]bool{tab.Name: true}, nil)
	if err != nil {
		t.Fatalf("FinishRun: %v", err)
	}
	sk, ok := d.SkippedDeletes()[tab.Name]
	if !ok {
		return marked[tab.Name], nil
	}
	if _, ok := marked[tab.Name]; ok {
		t.Errorf("FinishRun counts %d rows marked in a table whose deletion it skipped", marked[tab.Name])
	}
	return marked[tab.Name], &sk
}

// liveRows counts the rows of tab not marked deleted, and all of them.
func liveRows(t *testing.T, e *env, tab Table) (live, all int) {
	t.Helper()
	d := e.open(t, tab)
	defer d.Close()
	for _, r := range dump(t, d, tab.Name, "id") {
		all++
		if r[ColDeleted] != true {
			live++
		}
	}
	return live, all
}

// TestDeleteThreshold: a complete sync of a replace table that would mark
// more than its delete threshold (default 0.9) of its live rows marks
// none, warns naming the table, the counts and the option, and reports
// the skip; one within it marks what it did not see.
func TestDeleteThreshold(t *testing.T) {
	tests := []struct {
		name      string
		threshold float64
		hard      bool
		lists     []string // the second sync's rows
		marked    int
		skipped   string // the skip's reason; "" none
	}{
		{name: "empty answer", lists: nil, marked: 0,
			skipped: "would delete 10 of 10 live rows, above the 90% threshold (tables.r.delete_threshold)"},
		{name: "half", lists: seedIDs[:5], marked: 5},
		{name: "nine of ten is the default's most", lists: seedIDs[:1], marked: 9},
		{name: "threshold 1 marks all", threshold: 1, lists: nil, marked: 10},
		{name: "threshold 0.5, six of ten", threshold: 0.5, lists: seedIDs[:4], marked: 0,
			skipped: "would delete 6 of 10 live rows, above the 50% threshold (tables.r.delete_threshold)"},
		{name: "hard delete, empty answer", hard: true, lists: nil, marked: 0,
			skipped: "would delete 10 of 10 live rows, above the 90% threshold (tables.r.delete_threshold)"},
		{name: "hard delete, half", hard: true, lists: seedIDs[:5], marked: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace, HardDelete: tc.hard, DeleteThreshold: tc.threshold}
				if m, sk := syncOnce(t, e, tab, seedIDs...); m != 0 || sk != nil {
					t.Fatalf("first sync: marked %d, skipped %+v", m, sk)
				}
				m, sk := syncOnce(t, e, tab, tc.lists...)
				reason := ""
				if sk != nil {
					reason = sk.Reason
				}
				if m != tc.marked || reason != tc.skipped {
					t.Errorf("second sync: marked %d, skipped %q; want %d, %q", m, reason, tc.marked, tc.skipped)
				}
				live, all := liveRows(t, e, tab)
				wantLive, wantAll := 10-tc.marked, 10
				if tc.hard {
					wantAll = wantLive
				}
				if live != wantLive || all != wantAll {
					t.Errorf("rows after: %d live of %d; want %d of %d", live, all, wantLive, wantAll)
				}
				logs := e.logs.String()
				warned := strings.Contains(logs, "table deletion skipped")
				if tc.skipped == "" {
					if warned {
						t.Errorf("warned of a skip that did not happen:\n%s", logs)
					}
					return
				}
				if sk.Stale != 10-len(tc.lists) || sk.Live != 10 {
					t.Errorf("skip counts %d of %d, want %d of 10", sk.Stale, sk.Live, 10-len(tc.lists))
				}
				for _, want := range []string{"level=WARN msg=\"table deletion skipped", "table=r", fmt.Sprintf("stale=%d", sk.Stale), "live=10", "option=tables.r.delete_threshold"} {
					if !strings.Contains(logs, want) {
						t.Errorf("logs lack %q:\n%s", want, logs)
					}
				}
				// The skipped sync ended: the next one that lists them all
				// marks nothing; one that lists half marks half.
				if m, sk := syncOnce(t, e, tab, seedIDs...); m != 0 || sk != nil {
					t.Errorf("sync after the skip, all listed: marked %d, skipped %+v", m, sk)
				}
				if m, sk := syncOnce(t, e, tab, seedIDs[:5]...); m != 5 || sk != nil {
					t.Errorf("sync after the skip, half listed: marked %d, skipped %+v", m, sk)
				}
			})
		})
	}
}

// TestDeleteThresholdCountsLiveRows: rows already marked deleted are not
// the table's any more: after half were marked, an empty answer would
// mark all five left, which is refused (against all ten rows it would
// pass as half).
func TestDeleteThresholdCountsLiveRows(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace}
		syncOnce(t, e, tab, seedIDs...)
		if m, sk := syncOnce(t, e, tab, seedIDs[:5]...); m != 5 || sk != nil {
			t.Fatalf("half: marked %d, skipped %+v", m, sk)
		}
		m, sk := syncOnce(t, e, tab)
		if m != 0 || sk == nil || sk.Stale != 5 || sk.Live != 5 {
			t.Errorf("empty after half: marked %d, skipped %+v; want none marked, 5 of 5 skipped", m, sk)
		}
	})
}

// TestDeleteThresholdTinyTables: no floor for small tables — an empty
// answer empties a table of one as surely as one of thousands — so the
// last row is never marked by default, while a table of two may lose
// one.
func TestDeleteThresholdTinyTables(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		one := Table{Name: "one", PrimaryKey: []string{"id"}, Mode: ModeReplace}
		syncOnce(t, e, one, "a")
		if m, sk := syncOnce(t, e, one); m != 0 || sk == nil || sk.Reason != "would delete 1 of 1 live rows, above the 90% threshold (tables.one.delete_threshold)" {
			t.Errorf("1 of 1: marked %d, skipped %+v", m, sk)
		}
		two := Table{Name: "two", PrimaryKey: []string{"id"}, Mode: ModeReplace}
		syncOnce(t, e, two, "a", "b")
		if m, sk := syncOnce(t, e, two, "a"); m != 1 || sk != nil {
			t.Errorf("1 of 2: marked %d, skipped %+v", m, sk)
		}
	})
}

// TestDeleteThresholdOpen: Open refuses a threshold outside (0, 1].
func TestDeleteThresholdOpen(t *testing.T) {
	e := newSQLiteEnv(t)
	for _, v := range []float64{-0.1, 1.5} {
		if _, err := e.tryOpen(t, Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace, DeleteThreshold: v}); err == nil || !strings.Contains(err.Error(), "want a share in (0, 1]") {
			t.Errorf("threshold %v: %v", v, err)
		}
	}
}

// TestPlanDeleteThreshold: a plan shows the deletions the threshold
// refuses, with the reason, and none as deletes.
func TestPlanDeleteThreshold(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace}
		syncOnce(t, e, tab, seedIDs...)
		r := e.reader(t, tab)
		p, err := r.Plan(t.Context(), "r", nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := planLine(p); got != "+0 ~0 =0 -0 | kept 10" || p.Refused != "would delete 10 of 10 live rows, above the 90% threshold (tables.r.delete_threshold): no row is marked deleted" {
			t.Errorf("empty answer: %s (%q)", got, p.Refused)
		}
		var half []sink.Row
		for _, id := range seedIDs[:5] {
			half = append(half, rowsOf("r", row("id", id))...)
		}
		if p, err = r.Plan(t.Context(), "r", half, true); err != nil {
			t.Fatal(err)
		}
		if got := planLine(p); got != "+0 ~0 =5 -5" || p.Refused != "" {
			t.Errorf("half: %s (%q)", got, p.Refused)
		}
		all := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace, DeleteThreshold: 1}
		if p, err = e.reader(t, all).Plan(t.Context(), "r", nil, true); err != nil {
			t.Fatal(err)
		}
		if got := planLine(p); got != "+0 ~0 =0 -10" || p.Refused != "" {
			t.Errorf("threshold 1: %s (%q)", got, p.Refused)
		}
	})
}
