package runner_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/runner"
)

// TestObjectCursorOfAPlainStream: a stream without a batch whose cursor is
// an object is read back whole, even one whose members are named as a
// batch stream's saved cursor ({cursor, list}): that wrapper is a batch
// stream's only.
func TestObjectCursorOfAPlainStream(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/events", Query: map[string]string{"since": "2026-02-01T00:00:00Z", "shard": "l"}, Items: []any{map[string]any{"id": "b", "at": "2026-02-02T00:00:00Z"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sy := newSyncs(t, `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  events:
    incremental: {cursor: '{cursor: .at, list: "l"}', initial: {cursor: "2026-01-01T00:00:00Z", list: "l"}}
    request:
      path: /events
      query: {since: "${ cursor.cursor }", shard: "${ cursor.list }"}
tables:
  events: {from: events, primary_key: [id]}
`, s.URL())
	sy.state["events"+runner.WatermarkSuffix] = map[string]json.RawMessage{"": json.RawMessage(`{"cursor": "2026-02-01T00:00:00Z", "list": "l"}`)}
	out, _ := sy.run(true)
	if got := out.field("events", "id"); !slices.Equal(got, []string{"b"}) {
		t.Errorf("rows = %v, want b (asked since the saved object cursor)", got)
	}
}
