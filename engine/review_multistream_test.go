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
// second listing leaves out a record (a search index that changed) made
// stage 1 never read that record's children: its row written, its
// children not, exit 0. The other way, a record the second listing adds
// had its children read and its own row never written, exit 0. Now the
// run remembers what each chain of p listed in stage 0 and fails, naming
// p, its parent chain and the record, for each one the re-read lists
// differently; the same listing passes. In "nested", p is below q (both
// stage 0) and q's second listing is the same: p's chain under q=x lists
// less the second time.
func TestParentReadAgainInALaterStageListsLess(t *testing.T) {
	ab := []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}}
	for _, tc := range []struct {
		name, p    string // p's stream, below q or not
		first, now []any  // p's listing in stage 0, in stage 1
		want       []string
		d          []string // d's rows
	}{
		{name: "same", first: ab, now: ab, d: []string{"da", "db"}},
		{name: "less", first: ab, now: ab[:1], d: []string{"da"},
			want: []string{"stream p: a record the stream listed when its rows were written (key hash ", "is not listed when read again in a later stage to drive its children: its children there (d) were not read"}},
		{name: "more", first: ab[:1], now: ab, d: []string{"da", "db"},
			want: []string{"stream p (p[id=b]): read again in a later stage to drive its children, the source lists this record, which it did not list when the stream's rows were written: its rows"}},
		{name: "nested", p: "\n    for_each: q", first: ab, now: ab[1:], d: []string{"db"},
			want: []string{"stream p (q[id=x]): a record the stream listed when its rows were written (key hash "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  l:
    request: {path: /l}
  q:
    request: {path: /q}
  p:`+tc.p+`
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
			fx.json("/q", []any{map[string]any{"id": "x"}})
			listings := 0
			fx.mu.Lock()
			fx.routes["/p"] = func(w http.ResponseWriter, r *http.Request) {
				fx.mu.Lock()
				listings++
				recs := tc.first
				if listings > 1 {
					recs = tc.now
				}
				fx.mu.Unlock()
				json.NewEncoder(w).Encode(recs)
			}
			fx.mu.Unlock()
			fx.json("/d/a/n", []any{map[string]any{"id": "da"}})
			fx.json("/d/b/n", []any{map[string]any{"id": "db"}})
			_, err := fx.run(engine.RunOptions{})
			p, d := fx.query(`SELECT id FROM "nl__p" ORDER BY id`), fx.query(`SELECT id FROM "nl__d" ORDER BY id`)
			t.Logf("listings %d, p %v, d %v, err %v", listings, p, d, err)
			if listings != 2 {
				t.Fatalf("p listed %d times, want 2 (stage 0, stage 1)", listings)
			}
			if want := []string{"a", "b"}[:len(tc.first)]; !slices.Equal(p, want) {
				t.Errorf("p = %v, want %v (the rows of stage 0's listing)", p, want)
			}
			if !slices.Equal(d, tc.d) {
				t.Errorf("d = %v, want %v", d, tc.d)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("the same listing twice: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("exit 0, want the record listed differently reported")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestParentReadAgainAfterAResumeIsNotCompared: the first run fails (d's
// request for b is refused), so its checkpoints stay and the next run
// resumes: p's chain, done before, lists nothing in stage 0 of that run
// (its rows are committed), and stage 1 reads it again whole. What stage
// 0 listed is then not all p's rows came from: the re-read is not
// compared with it (as before firstReadings), or a and b would be taken
// for records only the re-read lists.
func TestParentReadAgainAfterAResumeIsNotCompared(t *testing.T) {
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
	fx.json("/p", []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}})
	fx.json("/d/a/n", []any{map[string]any{"id": "da"}})
	fx.mu.Lock()
	fx.routes["/d/b/n"] = func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"no"}`, http.StatusBadRequest)
	}
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("the first run passed, want d's refused request failed")
	}
	fx.json("/d/b/n", []any{map[string]any{"id": "db"}})
	fx.takeRequests()
	_, err := fx.run(engine.RunOptions{})
	t.Logf("requests %v", fx.takeRequests())
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if d := fx.query(`SELECT id FROM "nl__d" ORDER BY id`); !slices.Equal(d, []string{"da", "db"}) {
		t.Errorf("d = %v, want [da db]", d)
	}
}

// TestParentReadAgainComparedPerChain: p is read below q's records x and
// y, a chain each, listing the same both times: each chain's second
// reading is compared with its own first (x's a, y's b), not with the
// stream's, and the run passes.
func TestParentReadAgainComparedPerChain(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  l:
    request: {path: /l}
  q:
    request: {path: /q}
  p:
    for_each: q
    request: {path: '/p/${ parent.id }'}
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
	fx.json("/q", []any{map[string]any{"id": "x"}, map[string]any{"id": "y"}})
	fx.json("/p/x", []any{map[string]any{"id": "a"}})
	fx.json("/p/y", []any{map[string]any{"id": "b"}})
	fx.json("/d/a/n", []any{map[string]any{"id": "da"}})
	fx.json("/d/b/n", []any{map[string]any{"id": "db"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := fx.query(`SELECT id FROM "nl__d" ORDER BY id`); !slices.Equal(d, []string{"da", "db"}) {
		t.Errorf("d = %v, want [da db]", d)
	}
}

// TestParentReadAgainAfterAResumeListsAnew: the first run fails (d's
// request for b is refused), and the run resuming it finds p's chain
// done. Stage 0 did not read p again (nothing there below it), so stage
// 1's reading, not compared with it, listed c, new since, and read dc
// under a p row never written: p lacked c, exit 0. Now a stream a later
// stage reads again is read again in its own stage too, whole, writing c
// (a record its partition did not commit), and the later reading is
// compared with that one: in "less", stage 1 no longer lists c (a
// listing that changed in between), and the run fails naming it.
func TestParentReadAgainAfterAResumeListsAnew(t *testing.T) {
	abc := []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}, map[string]any{"id": "c"}}
	for _, tc := range []struct {
		name     string
		now      []any // p's listing in stage 1 of the resumed run
		d        []string
		wantFail string
	}{
		{name: "more", now: abc, d: []string{"da", "db", "dc"}},
		{name: "less", now: abc[:2], d: []string{"da", "db"},
			wantFail: "is not listed when read again in a later stage to drive its children"},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
			fx.json("/p", abc[:2])
			fx.json("/d/a/n", []any{map[string]any{"id": "da"}})
			fx.mu.Lock()
			fx.routes["/d/b/n"] = func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"error":"no"}`, http.StatusBadRequest)
			}
			fx.mu.Unlock()
			if _, err := fx.run(engine.RunOptions{}); err == nil {
				t.Fatal("the first run passed, want d's refused request failed")
			}
			fx.json("/d/b/n", []any{map[string]any{"id": "db"}})
			fx.json("/d/c/n", []any{map[string]any{"id": "dc"}})
			listings := 0
			fx.mu.Lock()
			fx.routes["/p"] = func(w http.ResponseWriter, r *http.Request) {
				fx.mu.Lock()
				listings++
				recs := abc
				if listings > 1 {
					recs = tc.now
				}
				fx.mu.Unlock()
				json.NewEncoder(w).Encode(recs)
			}
			fx.mu.Unlock()
			_, err := fx.run(engine.RunOptions{})
			p, d := fx.query(`SELECT id FROM "nl__p" ORDER BY id`), fx.query(`SELECT id FROM "nl__d" ORDER BY id`)
			t.Logf("listings %d, p %v, d %v, err %v", listings, p, d, err)
			if want := []string{"a", "b", "c"}; !slices.Equal(p, want) {
				t.Errorf("p = %v, want %v: the resumed run's own reading of p lists c", p, want)
			}
			if !slices.Equal(d, tc.d) {
				t.Errorf("d = %v, want %v", d, tc.d)
			}
			switch {
			case tc.wantFail == "" && err != nil:
				t.Fatalf("resumed run: %v", err)
			case tc.wantFail != "" && (err == nil || !strings.Contains(err.Error(), tc.wantFail)):
				t.Fatalf("resumed run: %v, want a failure naming c: %q", err, tc.wantFail)
			}
		})
	}
}
