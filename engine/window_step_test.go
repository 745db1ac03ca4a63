package engine_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestResumedWindowsAfterTheStepChanged: a run reading 12 h windows fails
// in its second window, [00-12:00, 01-00:00); before the next run the spec's
// step becomes 24 h (fewer requests, or a window found too small). The
// resumed chain read the window of the checkpoint's number among the new
// windows, [01, 02): the rest of day 0 was never asked, and the cursor
// saved at the end passed it, exit 0. The windows changed: the chain is
// read afresh from the saved cursor. So too when the checkpoint was written
// by a ferry that did not save the step: its windows are as unknown.
func TestResumedWindowsAfterTheStepChanged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		oldCkpt bool // the checkpoint saved no step
	}{{"the checkpoint saved its step", false}, {"an older checkpoint without its step", true}} {
		t.Run(tc.name, func(t *testing.T) {
			api := &auditAPI{fail: map[string]bool{}}
			src := strings.Replace(auditSpec, "mode: append", "on_duplicate: warn", 1)
			fx := newFixture(t, strings.Replace(src, "step: 24h", "step: 12h", 1), "")
			serveAudit(fx, api)
			day := auditDay
			api.events = append(api.events, map[string]any{"id": 4, "at": day(0, 18)})
			api.fail[day(0, 12)] = true
			runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{Now: auditNow(3, 0)}); return err }())
			delete(api.fail, day(0, 12))
			api.take()
			if tc.oldCkpt {
				forgetStep(t, fx)
			}
			path := filepath.Join(fx.dir, "s.yaml")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			sp, err := engine.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			fx.spec = sp
			if _, err := fx.run(engine.RunOptions{Now: auditNow(3, 1)}); err != nil {
				t.Fatal(err)
			}
			if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
				t.Errorf("events = %v, want 1 to 4 (event 4, in the window that failed, lost); asked %v", got, api.take())
			}
		})
	}
}

// forgetStep rewrites the saved checkpoints as a ferry that did not save
// the window step wrote them.
func forgetStep(t *testing.T, fx *fixture) {
	t.Helper()
	db, err := sql.Open("sqlite", strings.TrimPrefix(fx.db, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`UPDATE "nl___ferry_state" SET value = replace(value, '"step":"12h0m0s"', '"stepWas":"12h0m0s"') WHERE value LIKE '%"step":"12h0m0s"%'`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatal("no checkpoint saved the step: the test no longer writes an old one")
	}
}
