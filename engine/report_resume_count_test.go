package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestReportCountsRowOfKeyAnEarlierRunWrote: a run that resumes a sync
// writes a row whose key a run before it committed (a duplicate of the
// sync, counted so). The report of this run counts that row as written:
// this run wrote it (warn: over the stored one; merge: into it), and its
// first was counted by the run that wrote it. Under fail it is not
// written, and not counted. A key repeated within the resumed run itself
// still counts once.
func TestReportCountsRowOfKeyAnEarlierRunWrote(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want int64
	}{
		{"warn", 2},
		{"merge", 2},
		{"fail", 1},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			fx := newFixture(t, dupSpec("nl", tc.mode, ""), "")
			fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}})
			fx.pages("/parents/p1/items", []any{rec("k", "a1", nil)})
			fx.pages("/parents/p2/items", []any{rec("k", nil, "b1")}, 0)
			_, err := fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			// The resumed run reads p2 alone: k (the first run's key), then
			// m twice (a key of its own, repeated).
			fx.pages("/parents/p2/items", []any{rec("k", nil, "b1"), rec("m", "a2", nil), rec("m", "a2", nil)})
			fx.takeRequests()
			res, err := fx.run(engine.RunOptions{})
			if got := fx.takeRequests(); slices.Contains(got, "/parents/p1/items") {
				t.Fatalf("the resumed run read p1's items again (%v): the test needs a run that does not", got)
			}
			rep := engine.NewRunReport(fx.spec, "s.yaml", res, err, engine.ExitCode(err, false), false, time.Now())
			if len(rep.Tables) != 1 || rep.Tables[0].RowsWritten != tc.want {
				t.Errorf("tables %+v, want t with %d rows written (duplicates %+v)", rep.Tables, tc.want, rep.Duplicates)
			}
		})
	}
}
