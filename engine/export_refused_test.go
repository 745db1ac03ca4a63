package engine_test

import (
	"database/sql"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/export"
)

// TestExportJobResumedAfterRefusedRow: a row the database refuses blocks
// its partition, so none of its later checkpoints commit; the one that
// remembers the export job (committed when the job was created, before
// any row) stays. The next run polls that job rather than creating
// another, and reads the refused row's file again: the row is written.
func TestExportJobResumedAfterRefusedRow(t *testing.T) {
	s := export.New(export.Options{Events: 6, Parts: 2, Polls: 1, RetryAfter: -1})
	defer s.Close()
	fx := newFixture(t, specHead+`  auth: {type: bearer, token: "`+s.Token()+`"}
streams:
  events:
    async:
      create: {path: /exports, body: {format: ndjson}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "completed"}
      download: {urls: '[.files[].url]'}
    response: {format: ndjson}
tables:
  events: {from: events, primary_key: [id]}
`, "")
	fx.mu.Lock()
	for _, p := range []string{"/exports", "/exports/exp_0001", "/exports/exp_0002", "/exports/exp_0003"} {
		fx.routes[p] = proxy(s.URL())
	}
	fx.mu.Unlock()
	creates := func() int {
		n := 0
		for _, r := range s.Requests() {
			if r.Method == http.MethodPost && r.Path == "/exports" {
				n++
			}
		}
		return n
	}
	// Run 1 makes the table; the trigger then refuses the last event,
	// which is in the job's second file.
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		db, err := sql.Open("sqlite", strings.TrimPrefix(fx.db, "sqlite:"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`DELETE FROM "nl__events"`)
	exec(`CREATE TRIGGER refuse_last BEFORE INSERT ON "nl__events" WHEN NEW.id = 'evt_000006' BEGIN SELECT RAISE(ABORT, 'refused for the test'); END`)

	_, err := fx.run(engine.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "refused for the test") {
		t.Fatalf("run 2: err = %v, want the refused row", err)
	}
	if st := fx.query(`SELECT value FROM "nl___ferry_state" WHERE stream = 'events'`); len(st) != 1 || !strings.Contains(st[0], `"job":{"id":"exp_0002"`) {
		t.Fatalf("run 2 state = %v, want the job exp_0002 remembered", st)
	}
	if n := creates(); n != 2 {
		t.Fatalf("%d export jobs created by runs 1 and 2, want 2", n)
	}

	exec(`DROP TRIGGER refuse_last`)
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("run 3: %v", err)
	}
	if n := creates(); n != 2 {
		t.Errorf("run 3 created an export job (%d in all): want exp_0002 polled again", n)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"evt_000001", "evt_000002", "evt_000003", "evt_000004", "evt_000005", "evt_000006"}) {
		t.Errorf("events = %v, want all six, the refused one read again", got)
	}
	if st := fx.query(`SELECT stream FROM "nl___ferry_state" WHERE stream <> '@instance'`); len(st) != 0 {
		t.Errorf("state after run 3 = %v, want none but the instance (the sync ended)", st)
	}
}
