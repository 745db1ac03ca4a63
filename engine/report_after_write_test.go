package engine_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestReportReconciledAfterLateError: a run that read, wrote and
// reconciled everything, then failed to save its cassette, exits 1, but
// its report must say what the destinations did: the table and the
// blueprint were reconciled (b's row marked deleted, its entity
// deleted). Only a dry run's output, cut short, reconciles nothing.
func TestReportReconciledAfterLateError(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
tables:
  items: {from: items, primary_key: [id], mode: replace}
port:
  blueprints: bp.json
  entities:
    - {blueprint: team, from: items, identifier: .id}
`, relBlueprints)
	fx.json("/items", []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	fx.json("/items", []any{map[string]any{"id": "a"}})
	// A cassette directory that cannot be made: a file holds its place.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := fx.run(engine.RunOptions{Record: filepath.Join(blocker, "cassette")})
	if err == nil {
		t.Fatal("want the cassette's save to fail the run")
	}
	rep := engine.NewRunReport(fx.spec, "s.yaml", res, err, engine.ExitCode(err, false), false, time.Now())
	for _, tr := range rep.Tables {
		if !tr.Reconciled || tr.RowsDeleted != 1 {
			t.Errorf("table %+v: want reconciled, b's row deleted", tr)
		}
	}
	for _, br := range rep.Blueprints {
		if !br.Reconciled || br.Deleted != 1 {
			t.Errorf("blueprint %+v: want reconciled, b's entity deleted", br)
		}
	}
}
