package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestWindowEdges: cases of time windows that could lose an event, each
// shown not to. An event stamped exactly at a window's end is the next
// window's (windows are [start, end), as the simulator filters): read
// once. A lookback longer than a step (48 h of 24 h windows) asks the
// windows it covers again, and reads an event listed a day late; a run at
// the saved cursor's own time asks those windows only (no empty one past
// the cursor) and reads an event listed late in them.
func TestWindowEdges(t *testing.T) {
	api := &auditAPI{}
	src := strings.Replace(auditSpec, "mode: append", "on_duplicate: warn", 1)
	fx := newFixture(t, strings.Replace(src, "lookback: 1h", "lookback: 48h", 1), "")
	serveAudit(fx, api)
	day := auditDay
	api.events = []map[string]any{{"id": 1, "at": day(0, 5)}, {"id": 2, "at": day(1, 0)}, {"id": 3, "at": day(2, 0)}}
	if _, err := fx.run(engine.RunOptions{Now: auditNow(2, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := api.take(); !slices.Equal(got, []string{day(0, 0) + ".." + day(1, 0), day(1, 0) + ".." + day(2, 0)}) {
		t.Errorf("first run asked %v", got)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("events = %v, want 1 2 (2 at a window's end, read in the next; 3 at the run's start, not yet)", got)
	}
	// The next run starts 48 h before the cursor: before initial, at day 0.
	late := map[string]any{"id": 4, "at": time.Date(2026, 1, 2, 18, 0, 0, 0, time.UTC).Format(time.RFC3339)}
	api.mu.Lock()
	api.events = append(api.events, late)
	api.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{Now: auditNow(4, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := api.take(); !slices.Equal(got, []string{day(0, 0) + ".." + day(1, 0), day(1, 0) + ".." + day(2, 0), day(2, 0) + ".." + day(3, 0), day(3, 0) + ".." + day(4, 0)}) {
		t.Errorf("second run asked %v, want the four windows from 48 h before the cursor", got)
	}
	// An event listed late, stamped in a window read: the next run's
	// lookback reaches it.
	api.mu.Lock()
	api.events = append(api.events, map[string]any{"id": 5, "at": time.Date(2026, 1, 3, 22, 0, 0, 0, time.UTC).Format(time.RFC3339)})
	api.mu.Unlock()
	// A run at the saved cursor's own time: the lookback's windows only.
	if _, err := fx.run(engine.RunOptions{Now: auditNow(4, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := api.take(); len(got) != 2 || got[0] != day(2, 0)+".."+day(3, 0) {
		t.Errorf("a run at the cursor's time asked %v, want the lookback's two windows only", got)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("events = %v, want 1 to 5", got)
	}
}
