package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink/port"
)

// TestReportStreamStateAfterPortRejects: Port rejecting some entities (or
// failing to list stale ones) fails the run but cuts no stream short: each
// stream read everything it should (complete), so its state is done, as a
// dry run's is when entities do not fit their blueprints. An error that
// did stop the run (an interrupt, a table write), alone or joined to
// Port's, leaves the streams incomplete.
func TestReportStreamStateAfterPortRejects(t *testing.T) {
	entities := fmt.Errorf("%w: 1 of 2 (first: blueprint item entity \"1\": properties.x: is required)", port.ErrEntitiesFailed)
	reconcile := fmt.Errorf("%w: 1 blueprints (first: item: 500)", port.ErrReconcileFailed)
	stopped := fmt.Errorf("write tables: %w", errors.New("disk full"))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"entities rejected", entities, "done"},
		{"reconciliation failed", errors.Join(entities, reconcile), "done"},
		{"dry run: entities do not fit", &engine.InvalidEntitiesError{Count: 1}, "done"},
		{"failures and entities rejected", errors.Join(&runner.RunError{}, entities), "done"},
		{"interrupted", context.Canceled, "incomplete"},
		{"table write failed", stopped, "incomplete"},
		{"table write failed and entities rejected", errors.Join(stopped, entities), "incomplete"},
		{"failures and table write failed", errors.Join(&runner.RunError{}, stopped), "incomplete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := &engine.Summary{Streams: []runner.Snapshot{{Stream: "items", Requests: 1, Pages: 1, Records: 2, Outputs: 2, Done: true}}, Complete: map[string]bool{"items": true}}
			rep := engine.NewRunReport(nil, "s.yaml", &engine.Result{Summary: sum}, tc.err, engine.ExitFailed, false, time.Now())
			if len(rep.Streams) != 1 || rep.Streams[0].State != tc.want || !rep.Streams[0].Complete {
				t.Errorf("streams %+v, want items %s (complete)", rep.Streams, tc.want)
			}
		})
	}
}
