package runner_test

import (
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/runner"
)

// A window a rule skipped holds the cursor even when the run that skipped
// it fails in a later window and the next run resumes after it: the
// resumed windows do not move the cursor past the skipped one.
func TestSkippedWindowKeepsTheCursorWhenResumed(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/events", Query: map[string]string{"since": "2026-01-29T00:00:00Z"}, Status: 404, Body: map[string]any{"message": "not found"}},
		{Path: "/events", Query: map[string]string{"since": "2026-01-30T00:00:00Z"}, Items: []any{map[string]any{"id": "b"}}},
		// The first run fails here; the second reads it.
		{Path: "/events", Query: map[string]string{"since": "2026-01-31T00:00:00Z"}, Items: []any{map[string]any{"id": "c"}}, Faults: []apitest.Fault{{Status: 400}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  rules:
    - {status: 404, action: skip}
streams:
  events:
    incremental:
      initial: "2026-01-29T00:00:00Z"
      window: {step: 24h}
    request:
      path: /events
      query: {since: "${ window.start }", until: "${ window.end }"}
tables:
  events: {from: events, primary_key: [id]}
`)
	first, again, _ := failThenResume(t, f, s.URL(), "the third window's 400")
	if cur, ok := first.state["events"+runner.WatermarkSuffix][""]; ok {
		t.Fatalf("first run saved a cursor past the skipped window: %s", cur)
	}
	if got := again.field("events", "id"); len(got) != 1 || got[0] != "c" {
		t.Errorf("second run rows = %v, want the third window's (resumed after the second)", got)
	}
	if cur, ok := again.state["events"+runner.WatermarkSuffix][""]; ok {
		t.Errorf("cursor saved past a window the first run skipped: %s", cur)
	}
}
