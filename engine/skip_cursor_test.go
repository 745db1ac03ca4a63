package engine_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestSkippedWindowIsAskedAgain: a response rule skips a window in the
// middle (what it holds is unknown); the windows after it finish. The
// saved cursor must not move past the skipped window, or no later run
// ever asks for its events.
func TestSkippedWindowIsAskedAgain(t *testing.T) {
	api := &auditAPI{fail: map[string]bool{}}
	src := strings.Replace(auditSpec, "mode: append", "on_duplicate: warn", 1)
	src = strings.Replace(src, "  retry: {attempts: 1}\n", "  retry: {attempts: 1}\n  rules:\n    - {status: 500, action: skip}\n", 1)
	fx := newFixture(t, src, "")
	serveAudit(fx, api)
	day := auditDay
	api.fail[day(1, 0)] = true
	now := auditNow
	res, err1 := fx.run(engine.RunOptions{Now: now(3, 0)})
	if got := res.Summary.Skips; len(got) != 1 || got[0].Window != day(1, 0)+".."+day(2, 0) || got[0].Page != 1 || got[0].Reason == "" {
		t.Errorf("skips = %+v, want the window skipped, named", got)
	}
	delete(api.fail, day(1, 0))
	_, err2 := fx.run(engine.RunOptions{Now: now(3, 1)})
	if got := api.take(); !slices.Contains(got, day(0, 23)+".."+day(1, 23)) {
		t.Errorf("runs asked %v: the second never asked the skipped window again (less the lookback)", got)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("events = %v after the skipped window's API recovered: event 2 lost for good (runs: %v, %v)", got, err1, err2)
	}
}

// TestSkippedWindowHeldAcrossResume: a rule skips window 1 of 4, window 3
// fails, so the run keeps its checkpoint (at window 3, as after an
// interrupt); the resumed chain reads window 3 only. Its cursor must still
// stay before the skipped window, though that skip happened in the run
// before: moved to window 3's end, no later run asks for window 1 again.
func TestSkippedWindowHeldAcrossResume(t *testing.T) {
	api := &auditAPI{fail: map[string]bool{}, down: map[string]bool{}}
	src := strings.Replace(auditSpec, "mode: append", "on_duplicate: warn", 1)
	src = strings.Replace(src, "  retry: {attempts: 1}\n", "  retry: {attempts: 1}\n  rules:\n    - {status: 500, action: skip}\n", 1)
	fx := newFixture(t, src, "")
	serveAudit(fx, api)
	day := auditDay
	api.events = append(api.events, map[string]any{"id": 4, "at": day(3, 4)})
	api.fail[day(1, 0)] = true
	api.down[day(3, 0)] = true
	_, err := fx.run(engine.RunOptions{Now: auditNow(4, 0)})
	runErrorOf(t, err)
	if got := api.take(); len(got) != 4 {
		t.Fatalf("first run asked %v, want the 4 windows", got)
	}
	// The API recovers; the resumed run reads the window that failed.
	clear(api.fail)
	clear(api.down)
	res, err2 := fx.run(engine.RunOptions{Now: auditNow(4, 1)})
	if got := api.take(); !slices.Equal(got, []string{day(3, 0) + ".." + day(4, 0)}) {
		t.Fatalf("resumed run asked %v (%v), want only the window that failed", got, err2)
	}
	if res.Summary.Complete["events"] {
		t.Errorf("the resumed run calls events complete: the skipped window is still unread")
	}
	if len(res.Summary.Skips) != 1 || res.Summary.Skips[0].Stream != "events" {
		t.Errorf("the resumed run's skips %+v: its report does not name the request still unread", res.Summary.Skips)
	}
	_, err3 := fx.run(engine.RunOptions{Now: auditNow(4, 2)})
	if got := api.take(); !slices.Contains(got, day(0, 23)+".."+day(1, 23)) {
		t.Errorf("the run after asked %v: the window skipped before the resume was never asked again", got)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Errorf("events = %v: event 2, in the skipped window, lost for good (runs: %v, %v)", got, err2, err3)
	}
}

// TestSkippedChildHoldsParentCursor: a rule skips a child's request (what
// it holds is unknown); the incremental parent's cursor must not move past
// that parent record, or no later run asks for the child again.
func TestSkippedChildHoldsParentCursor(t *testing.T) {
	src := specHead + `streams:
  tickets:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /tickets
      query: {since: '${ cursor }'}
  comments:
    for_each: tickets
    http:
      rules:
        - {status: 503, action: skip}
    request:
      path: /tickets/${ parent.id }/comments
tables:
  comments: {from: comments, row: '{ticket: $parent.id, id}', primary_key: [ticket, id]}
`
	fx := newFixture(t, src, "")
	serveTicketsSince(fx)
	fx.json("/tickets/t1/comments", []any{map[string]any{"id": "c1"}})
	fx.raw("/tickets/t2/comments", http.StatusServiceUnavailable, "down")
	_, err1 := fx.run(engine.RunOptions{})
	fx.json("/tickets/t2/comments", []any{map[string]any{"id": "c2"}})
	_, err2 := fx.run(engine.RunOptions{})
	if got := fx.query(`SELECT ticket || ':' || id FROM "nl__comments" ORDER BY 1`); !slices.Equal(got, []string{"t1:c1", "t2:c2"}) {
		t.Errorf("comments = %v (runs: %v, %v): t2's were lost by a cursor saved past its skipped request", got, err1, err2)
	}
}

// TestSkippedWindowOfParentHeldAcrossResume: as
// TestSkippedWindowHeldAcrossResume, for a windowed stream with children,
// whose resumed chain reads its committed windows again (to drive the
// children) and so asks the skipped window again too, as a page committed
// before. Its records are not written by that run, so the cursor must still
// stay before the window: the next run writes them.
func TestSkippedWindowOfParentHeldAcrossResume(t *testing.T) {
	api := &auditAPI{fail: map[string]bool{}, down: map[string]bool{}}
	src := strings.Replace(auditSpec, "mode: append", "on_duplicate: warn", 1)
	src = strings.Replace(src, "  retry: {attempts: 1}\n", "  retry: {attempts: 1}\n  rules:\n    - {status: 500, action: skip}\n", 1)
	src = strings.Replace(src, "tables:\n", "  details:\n    for_each: events\n    request: {path: '/details/${ parent.id }'}\ntables:\n  details: {from: details, row: '{event: $parent.id, id}', primary_key: [event, id]}\n", 1)
	fx := newFixture(t, src, "")
	serveAudit(fx, api)
	for _, id := range []string{"1", "2", "3", "4"} {
		fx.json("/details/"+id, []any{map[string]any{"id": "d" + id}})
	}
	day := auditDay
	api.events = append(api.events, map[string]any{"id": 4, "at": day(3, 4)})
	api.fail[day(1, 0)] = true
	api.down[day(3, 0)] = true
	_, err := fx.run(engine.RunOptions{Now: auditNow(4, 0)})
	runErrorOf(t, err)
	clear(api.fail)
	clear(api.down)
	_, err2 := fx.run(engine.RunOptions{Now: auditNow(4, 1)})
	_, err3 := fx.run(engine.RunOptions{Now: auditNow(4, 2)})
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Errorf("events = %v (runs: %v, %v): event 2, in the skipped window, lost for good", got, err2, err3)
	}
	if got := fx.query(`SELECT event FROM "nl__details" ORDER BY 1`); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Errorf("details of events %v, want all 4", got)
	}
}
