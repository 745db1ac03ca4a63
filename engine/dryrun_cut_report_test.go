package engine_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// brokenPipe is a stdout whose reader has gone (`ferry run --dry-run | head`).
type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// TestDryRunCutShortReconcilesNothing: a dry run whose output was cut
// short printed only part of what it read. Its report calls the streams
// incomplete, so it must not say a real run would reconcile the tables
// and blueprints they feed.
func TestDryRunCutShortReconcilesNothing(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
tables:
  items: {from: items, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - {blueprint: team, from: items, identifier: .id}
`, relBlueprints)
	var items []any
	for i := range 50 {
		items = append(items, map[string]any{"id": fmt.Sprint("t", i)})
	}
	fx.json("/items", items)
	res, err := fx.run(engine.RunOptions{DryRun: true, Stdout: brokenPipe{}})
	if err == nil {
		t.Fatal("a dry run into a broken pipe succeeded")
	}
	rep := engine.NewRunReport(fx.spec, "s.yaml", res, err, engine.ExitCode(err, false), true, time.Now())
	for _, s := range rep.Streams {
		if s.State != "incomplete" {
			t.Errorf("stream %s: state %q, want incomplete", s.Name, s.State)
		}
	}
	for _, tr := range rep.Tables {
		if tr.Reconciled {
			t.Errorf("table %s: reconciled, though its output was cut short", tr.Name)
		}
	}
	for _, br := range rep.Blueprints {
		if br.Reconciled {
			t.Errorf("blueprint %s: reconciled, though its output was cut short", br.Name)
		}
	}
}
