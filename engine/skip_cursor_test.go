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
	_, err1 := fx.run(engine.RunOptions{Now: now(3, 0)})
	delete(api.fail, day(1, 0))
	_, err2 := fx.run(engine.RunOptions{Now: now(3, 1)})
	if got := api.take(); !slices.Contains(got, day(0, 23)+".."+day(1, 23)) {
		t.Errorf("runs asked %v: the second never asked the skipped window again (less the lookback)", got)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("events = %v after the skipped window's API recovered: event 2 lost for good (runs: %v, %v)", got, err1, err2)
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
