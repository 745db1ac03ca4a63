package engine_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
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

// TestStreamsRunOfOneOfATablesStreamsInAFinishedSync: t takes rows from x
// and w; with the sync finished, `--streams x` begins a new sync, writes c
// to t and does x's part of it (its checkpoints kept, t's generation left
// open). The full run after it resumes that sync: x's part done, it reads
// only w, and t, reconciled at the sync's end, keeps a and c (x's reading
// in this sync) and b live; a generation the --streams run ended (as
// 5d3bcd2 did, before the sync's parts) marked a deleted though x lists
// it. The next sync reads x again, and c, listed no more, is marked.
func TestStreamsRunOfOneOfATablesStreamsInAFinishedSync(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, strings.Replace(specHead, "\nname: nl\n", "\nname: "+name+"\n", 1)+`streams:
  x:
    request: {path: /x}
  w:
    request: {path: /w}
tables:
  t: {from: [x, w], mode: replace, primary_key: [id], row: '{id}'}
`, "")
			query := use(fx)
			fx.json("/x", []any{map[string]any{"id": "a"}})
			fx.json("/w", []any{map[string]any{"id": "b"}})
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			fx.json("/x", []any{map[string]any{"id": "a"}, map[string]any{"id": "c"}})
			if _, err := fx.run(engine.RunOptions{Streams: []string{"x"}}); err != nil {
				t.Fatal(err)
			}
			fx.json("/x", []any{map[string]any{"id": "a"}})
			rows := func() []string {
				return query(`SELECT id || ':' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE 'live' END FROM %t ORDER BY id`)
			}
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, want := rows(), []string{"a:live", "b:live", "c:live"}; !slices.Equal(got, want) {
				t.Errorf("after the run resuming the sync: t = %v, want %v (x's part of the sync listed a and c)", got, want)
			}
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, want := rows(), []string{"a:live", "b:live", "c:deleted"}; !slices.Equal(got, want) {
				t.Errorf("after a new sync: t = %v, want %v: x lists no c", got, want)
			}
		})
	}
}

// TestParentReadAgainInALaterStageListsLess: p is written in stage 0 and
// read again in stage 1 to drive d, which reads a lookup. A source whose
// second listing leaves out a record (a search index that changed) makes
// stage 1 never read that record's children: its row is written, its
// children are not, and nothing says so (exit 0). The other way, a record
// the second listing adds has its children read and its own row never
// written. Known, not fixed: the runner would have to keep the keys each
// chain of p gave in its own stage and fail (or write) what the re-read
// lists differently; specs/examples/notion.yaml avoids it by driving its
// stage-1 streams from a lookup (partitions), not from a second search.
func TestParentReadAgainInALaterStageListsLess(t *testing.T) {
	t.Skip("known loss: a parent read again in a later stage may list other records than it wrote (see comment)")
	fx := newFixture(t, specHead+`streams:
  l:
    request: {path: /l}
  p:
    request: {path: /p}
  d:
    for_each: p
    request: {path: '/d/${ parent.id }/${ lookups.names["k"] }'}
lookups:
  names: {from: l, key: '"k"', value: .v}
tables:
  p: {from: p, primary_key: [id], row: '{id}'}
  d: {from: d, primary_key: [id], row: '{id}'}
`, "")
	fx.json("/l", []any{map[string]any{"v": "n"}})
	listings := 0
	fx.mu.Lock()
	fx.routes["/p"] = func(w http.ResponseWriter, r *http.Request) {
		fx.mu.Lock()
		listings++
		n := listings
		fx.mu.Unlock()
		recs := []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}}
		if n > 1 {
			recs = recs[:1]
		}
		json.NewEncoder(w).Encode(recs)
	}
	fx.mu.Unlock()
	fx.json("/d/a/n", []any{map[string]any{"id": "da"}})
	fx.json("/d/b/n", []any{map[string]any{"id": "db"}})
	_, err := fx.run(engine.RunOptions{})
	p, d := fx.query(`SELECT id FROM "nl__p" ORDER BY id`), fx.query(`SELECT id FROM "nl__d" ORDER BY id`)
	t.Logf("listings %d, p %v, d %v, err %v", listings, p, d, err)
	if err == nil && slices.Contains(p, "b") && !slices.Contains(d, "db") {
		t.Errorf("p has b but d has not db (%v), exit 0: b's children were never read", d)
	}
}
