package engine_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestChildOfFailedStreamIsIncomplete: items' second page fails, so notes
// is asked for the first page's items only. Its own chains all succeed,
// but it read part of what it should have: the summary and report call it
// incomplete, as its complete field says, not done; words below it too
// (declared first: the rule does not lean on the streams' order).
func TestChildOfFailedStreamIsIncomplete(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  words:
    for_each: notes
    request: {path: '/words/${ parent.id }'}
  notes:
    for_each: items
    request: {path: '/notes/${ parent.id }'}
  items:
    request: {path: /items}
    paginate: {type: next_url, url: .next}
    records: .items[]
tables:
  notes: {from: notes, primary_key: [id]}
`, "")
	fx.json("/items", map[string]any{"items": []any{map[string]any{"id": "a"}}, "next": fx.api.URL + "/items2"})
	fx.raw("/items2", http.StatusInternalServerError, `{"error": "boom"}`)
	fx.json("/notes/a", []any{map[string]any{"id": "n1"}})
	fx.json("/words/n1", []any{map[string]any{"id": "w1"}})
	res, err := fx.run(engine.RunOptions{})
	if err == nil {
		t.Fatal("want the failed page to fail the run")
	}
	rep := engine.NewRunReport(fx.spec, "s.yaml", res, err, engine.ExitCode(err, false), false, time.Now())
	want := map[string]string{"items": "failed", "notes": "incomplete", "words": "incomplete"}
	for _, s := range rep.Streams {
		if s.State != want[s.Name] {
			t.Errorf("stream %s: state %q (complete %v), want %q", s.Name, s.State, s.Complete, want[s.Name])
		}
	}
}
