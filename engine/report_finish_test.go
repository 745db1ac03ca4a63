package engine_test

import (
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestReportNotReconciledWhenFinishFails: a complete run whose sync end
// (FinishRun: marking unseen rows, clearing checkpoints) fails exits
// non-zero, and its report does not call the replace table reconciled:
// the unseen row was not marked. A trigger refusing the marking stands in
// for a table locked or altered under the run.
func TestReportNotReconciledWhenFinishFails(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  s:
    request: {path: /s}
tables:
  items: {from: s, primary_key: [id], mode: replace}
`, "")
	fx.json("/s", []any{map[string]any{"id": 1}, map[string]any{"id": 2}})
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep := tableReport(engine.NewRunReport(fx.spec, "s.yaml", res, err, 0, false, time.Now()), "items"); !rep.Reconciled {
		t.Fatalf("run 1: report %+v, want items reconciled", rep)
	}

	db, err := sql.Open("sqlite", strings.TrimPrefix(fx.db, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TRIGGER no_marking BEFORE UPDATE ON "nl__items" WHEN NEW._ferry_deleted
BEGIN SELECT RAISE(ABORT, 'table locked'); END`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	fx.json("/s", []any{map[string]any{"id": 1}})
	res, err = fx.run(engine.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "table locked") {
		t.Fatalf("run 2: err = %v, want the sync end's failure", err)
	}
	if got := fx.query(`SELECT id || ':' || _ferry_deleted FROM "nl__items" ORDER BY id`); !slices.Equal(got, []string{"1:0", "2:0"}) {
		t.Fatalf("items = %v, want nothing marked (the marking was refused)", got)
	}
	rep := engine.NewRunReport(fx.spec, "s.yaml", res, err, engine.ExitCode(err, false), false, time.Now())
	if rep.ExitCode == 0 {
		t.Errorf("run 2: report exit code 0 for a run whose sync end failed")
	}
	if tr := tableReport(rep, "items"); tr.Reconciled || tr.RowsDeleted != 0 {
		t.Errorf("run 2: report %+v, want items not reconciled, no row deleted (its sync did not end)", tr)
	}
}
