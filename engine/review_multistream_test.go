package engine_test

import (
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestLookupInAsyncRequest: an async stream whose create request reads a
// lookup waits for the stream filling it.
func TestLookupInAsyncRequest(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  users:
    request: {path: /users}
  exports:
    async:
      create:
        path: /exports/${ lookups.first["k"] }
        id: .id
      poll:
        path: /jobs/${ job.id }
        every: 1ms
        done: .done
      download:
        path: /dl/${ job.id }
lookups:
  first: {from: users, key: '"k"', value: .id}
tables:
  e: {from: exports, primary_key: [id]}
`, "")
	fx.json("/users", []any{map[string]any{"id": "u1"}})
	fx.json("/exports/u1", map[string]any{"id": "j1"})
	fx.json("/jobs/j1", map[string]any{"done": true})
	fx.json("/dl/j1", []any{map[string]any{"id": "r1"}})
	_, err := fx.run(engine.RunOptions{})
	t.Logf("requests %v", fx.takeRequests())
	if err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id FROM "nl__e"`); !slices.Equal(got, []string{"r1"}) {
		t.Errorf("e = %v", got)
	}
}
