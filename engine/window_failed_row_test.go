package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestWindowFailedRowHoldsCursor: a record of the first time window fails
// its row while the windows after it complete. The cursor must not move to
// a later window's end past it: the run exits 1, and the next run writes
// the record, whether it resumes the sync or starts a new one (the
// unfinished sync too old to resume) from the saved cursor.
func TestWindowFailedRowHoldsCursor(t *testing.T) {
	for _, resume := range []bool{true, false} {
		t.Run(map[bool]string{true: "resumed", false: "new sync"}[resume], func(t *testing.T) {
			api := &auditAPI{fail: map[string]bool{}}
			spec := strings.Replace(auditSpec, "mode: append}", `row: 'if .bad then error("bad event") else {id} end'}`, 1)
			fx := newFixture(t, spec, "")
			serveAudit(fx, api)
			api.events[0]["bad"] = true
			_, err := fx.run(engine.RunOptions{Now: auditNow(3, 0)})
			runErrorOf(t, err)
			if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"2", "3"}) {
				t.Fatalf("first run wrote %v, want 2 3", got)
			}
			api.take()
			delete(api.events[0], "bad")
			opts := engine.RunOptions{Now: auditNow(3, 1)}
			if !resume {
				opts.Now, opts.ResumeWithin = auditNow(6, 1), time.Hour
			}
			if _, err := fx.run(opts); err != nil {
				t.Fatalf("second run: %v", err)
			}
			if got := api.take(); len(got) == 0 || !strings.HasPrefix(got[0], auditDay(0, 0)+"..") {
				t.Errorf("second run asked %v: want the failed record's window again", got)
			}
			if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3"}) {
				t.Errorf("events = %v, want 1 2 3", got)
			}
		})
	}
}
