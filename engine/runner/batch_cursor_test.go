package runner_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/runner"
)

// searchAPI simulates a POST-a-list search: POST /search?since=T with
// {"ids": [...]} answers the changes of the listed repositories updated
// after T, oldest first, in one page. The repositories of org o1 are
// repos, in order. Every search is logged as "<ids>@<since>".
type searchAPI struct {
	mu      sync.Mutex
	repos   []map[string]any    // the batch source's records
	changes map[string][]string // repository id: the updated_at of its changes
	asked   []string
}

func (a *searchAPI) set(repos []map[string]any, changes map[string][]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.repos, a.changes, a.asked = repos, changes, nil
}

func (a *searchAPI) searches() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return sorted(a.asked)
}

func (a *searchAPI) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		switch r.URL.Path {
		case "/orgs":
			fmt.Fprint(w, `[{"id": "o1"}]`)
		case "/orgs/o1/repos":
			_ = json.NewEncoder(w).Encode(a.repos)
		case "/search":
			var body struct{ IDs []string }
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &body); err != nil {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			since := r.URL.Query().Get("since")
			a.asked = append(a.asked, strings.Join(body.IDs, ",")+"@"+since)
			items := []map[string]string{}
			for _, id := range body.IDs {
				for _, at := range a.changes[id] {
					if at > since {
						items = append(items, map[string]string{"id": id + "@" + at, "repo": id, "updated_at": at})
					}
				}
			}
			slices.SortFunc(items, func(x, y map[string]string) int { return strings.Compare(x["updated_at"], y["updated_at"]) })
			_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// searchSpec reads, per org, the changes of its repositories since the
// cursor: one POST carrying the org's repository ids.
const searchSpec = `
version: 1
name: t
config:
  url: {required: true}
http: {base_url: "${ config.url }", retry: {attempts: 1}}
streams:
  orgs:
    request: {path: /orgs}
  repos:
    for_each: orgs
    request: {path: "/orgs/${ parent.id }/repos"}
  changes:
    for_each: orgs
    batch: repos
    incremental: {cursor: .updated_at, initial: "2026-01-01T00:00:00Z"}
    request:
      method: POST
      path: /search
      query: {since: "${ cursor }"}
      body_jq: '{ids: [$batch[] | .id]}'
    records: .items[]
tables:
  changes: {from: changes, row: '{id, repo, updated_at}'}
`

// chunkedSearchSpec sends at most two repositories per search.
var chunkedSearchSpec = strings.Replace(searchSpec, "    batch: repos\n", "    batch: repos\n    batch_size: 2\n", 1)

// syncs runs a spec again and again as successive syncs: each run starts
// with the incremental cursors the runs before it saved (page checkpoints
// end with a sync that ended without failure), or, with resume, with all
// their state (the sync goes on).
type syncs struct {
	t     *testing.T
	spec  string
	url   string
	state map[string]map[string]json.RawMessage
	logs  bytes.Buffer
}

func newSyncs(t *testing.T, spec, url string) *syncs {
	return &syncs{t: t, spec: spec, url: url, state: map[string]map[string]json.RawMessage{}}
}

// run runs once; ok says whether it is to end without a failure. A run
// that ends without one ends its sync: only the cursors are kept.
func (s *syncs) run(ok bool) (*stateful, *runner.Summary) {
	s.t.Helper()
	in := map[string]map[string]json.RawMessage{}
	for stream, parts := range s.state {
		in[stream] = maps.Clone(parts)
	}
	out := newStateful()
	s.logs.Reset()
	log := slog.New(slog.NewTextHandler(&s.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The syncs run after every change the tests make (dated up to
	// March 2026): a time cursor is saved no later than the run's start.
	clock := &fakeTime{now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	sum, err := runWith(s.t, mustSpec(s.t, s.spec), runOpts{cfg: map[string]any{"url": s.url}, state: in, log: log, clock: clock}, out)
	if ok && err != nil {
		s.t.Fatalf("run: %v", err)
	}
	if !ok && err == nil {
		s.t.Fatal("run: no error, want a failure")
	}
	for stream, parts := range out.state {
		if in[stream] == nil {
			in[stream] = map[string]json.RawMessage{}
		}
		maps.Copy(in[stream], parts)
	}
	if ok {
		for stream := range in {
			if !strings.HasSuffix(stream, runner.WatermarkSuffix) {
				delete(in, stream)
			}
		}
	}
	s.state = in
	return out, sum
}

func repoList(ids ...string) []map[string]any {
	var l []map[string]any
	for _, id := range ids {
		l = append(l, map[string]any{"id": id})
	}
	return l
}

// TestIncrementalBatchNewItemReadFromInitial: the cursor an incremental
// batch stream saved answers for the list it was sent. A repository added
// to the list since was never asked: asked only for its changes since that
// cursor, its older ones would never be read, and the run would end
// without a failure. The chain starts from the initial cursor instead.
func TestIncrementalBatchNewItemReadFromInitial(t *testing.T) {
	api := &searchAPI{}
	s := newSyncs(t, searchSpec, api.start(t))
	api.set(repoList("r1"), map[string][]string{"r1": {"2026-02-01T00:00:00Z"}})
	if out, _ := s.run(true); !slices.Equal(out.field("changes", "id"), []string{"r1@2026-02-01T00:00:00Z"}) {
		t.Fatalf("first sync wrote %v", out.field("changes", "id"))
	}
	// r2 joins the list with a change older than the saved cursor.
	api.set(repoList("r1", "r2"), map[string][]string{
		"r1": {"2026-02-01T00:00:00Z", "2026-02-10T00:00:00Z"},
		"r2": {"2026-01-15T00:00:00Z"},
	})
	out, _ := s.run(true)
	for _, id := range []string{"r1@2026-02-10T00:00:00Z", "r2@2026-01-15T00:00:00Z"} {
		if got := out.field("changes", "id"); !slices.Contains(got, id) {
			t.Errorf("second sync wrote %v, not %s (r2's change predates the cursor saved for [r1])", got, id)
		}
	}
	if !strings.Contains(s.logs.String(), "initial cursor") {
		t.Errorf("no Info saying the chain starts from the initial cursor; logs:\n%s", s.logs.String())
	}
	// The cursor saved now answers for [r1 r2]: the next sync goes on from it.
	api.set(repoList("r1", "r2"), map[string][]string{"r1": {"2026-02-10T00:00:00Z", "2026-02-20T00:00:00Z"}})
	out, _ = s.run(true)
	if got, want := api.searches(), []string{"r1,r2@2026-02-10T00:00:00Z"}; !slices.Equal(got, want) {
		t.Errorf("third sync searched %v, want %v", got, want)
	}
	if got := out.field("changes", "id"); !slices.Equal(got, []string{"r1@2026-02-20T00:00:00Z"}) {
		t.Errorf("third sync wrote %v", got)
	}
}

// TestIncrementalBatchSameIDsKeepsCursor: the list is known by its
// records' keys, not their content: repositories whose fields changed
// (as they do on every push) are the same list, asked from the saved
// cursor, not from the start each run.
func TestIncrementalBatchSameIDsKeepsCursor(t *testing.T) {
	api := &searchAPI{}
	s := newSyncs(t, searchSpec, api.start(t))
	api.set([]map[string]any{{"id": "r1", "pushed": 1}, {"id": "r2", "pushed": 1}}, map[string][]string{"r1": {"2026-02-01T00:00:00Z"}})
	s.run(true)
	// Listed in another order, with other fields.
	api.set([]map[string]any{{"id": "r2", "pushed": 2}, {"id": "r1", "pushed": 7}}, map[string][]string{"r1": {"2026-02-01T00:00:00Z"}})
	s.run(true)
	if got, want := api.searches(), []string{"r2,r1@2026-02-01T00:00:00Z"}; !slices.Equal(got, want) {
		t.Errorf("second sync searched %v, want %v (same repositories: the saved cursor)", got, want)
	}
}

// TestIncrementalBatchLegacyCursorReadFromInitial: a cursor saved before
// the list was saved with it answers for a list nobody knows: the chain
// starts from the initial cursor. So does a chain resumed from a
// checkpoint that started from such a cursor (here done, by a ferry that
// saved neither lists nor batch digests): it is read afresh, not skipped.
func TestIncrementalBatchLegacyCursorReadFromInitial(t *testing.T) {
	for name, pages := range map[string]string{
		"new sync":     "",
		"resumed sync": `{"pages": 1, "next": {}, "done": true, "since": "2026-02-01T00:00:00Z"}`,
	} {
		t.Run(name, func(t *testing.T) {
			api := &searchAPI{}
			s := newSyncs(t, searchSpec, api.start(t))
			s.state["changes"+runner.WatermarkSuffix] = map[string]json.RawMessage{"orgs=o1": json.RawMessage(`"2026-02-01T00:00:00Z"`)}
			if pages != "" {
				s.state["changes"] = map[string]json.RawMessage{"orgs=o1": json.RawMessage(pages)}
			}
			api.set(repoList("r1", "r2"), map[string][]string{"r2": {"2026-01-15T00:00:00Z"}})
			out, _ := s.run(true)
			if got := out.field("changes", "id"); !slices.Equal(got, []string{"r2@2026-01-15T00:00:00Z"}) {
				t.Errorf("wrote %v, want r2's change (the old cursor's list is unknown)", got)
			}
		})
	}
}

// TestIncrementalBatchChunksAnswerTheirItems: with batch_size each chunk's
// cursor answers for that chunk's items. When a repository joins at the
// front, every item moves to another chunk: the new one (a) would be asked
// since a cursor saved for others, and c, now in d's chunk, since d's
// later cursor, missing its change between the two. Both are read.
func TestIncrementalBatchChunksAnswerTheirItems(t *testing.T) {
	api := &searchAPI{}
	s := newSyncs(t, chunkedSearchSpec, api.start(t))
	api.set(repoList("b", "c", "d"), map[string][]string{
		"b": {"2026-02-01T00:00:00Z"}, "c": {"2026-02-02T00:00:00Z"}, "d": {"2026-02-05T00:00:00Z"},
	})
	if out, _ := s.run(true); len(out.field("changes", "id")) != 3 {
		t.Fatalf("first sync wrote %v", out.field("changes", "id"))
	}
	api.set(repoList("a", "b", "c", "d"), map[string][]string{
		"a": {"2026-01-10T00:00:00Z"},
		"b": {"2026-02-01T00:00:00Z"},
		"c": {"2026-02-02T00:00:00Z", "2026-02-03T00:00:00Z"}, // arrived late
		"d": {"2026-02-05T00:00:00Z"},
	})
	out, _ := s.run(true)
	written := out.field("changes", "id")
	for _, id := range []string{"a@2026-01-10T00:00:00Z", "c@2026-02-03T00:00:00Z"} {
		if !slices.Contains(written, id) {
			t.Errorf("second sync did not write %s (wrote %v; searches %v)", id, written, api.searches())
		}
	}
}

// TestIncrementalBatchStaleChunkCursor: the list shrank from two chunks to
// one, leaving the second chunk's cursor saved; when it grows back with
// another item in that chunk, the old cursor answers for other items and
// is not taken.
func TestIncrementalBatchStaleChunkCursor(t *testing.T) {
	api := &searchAPI{}
	s := newSyncs(t, chunkedSearchSpec, api.start(t))
	api.set(repoList("a", "b", "c"), map[string][]string{"c": {"2026-03-01T00:00:00Z"}})
	s.run(true)
	api.set(repoList("a", "b"), nil)
	s.run(true)
	api.set(repoList("a", "b", "x"), map[string][]string{"x": {"2026-02-01T00:00:00Z"}})
	out, _ := s.run(true)
	if got := out.field("changes", "id"); !slices.Equal(got, []string{"x@2026-02-01T00:00:00Z"}) {
		t.Errorf("wrote %v, want x's change (searches %v)", got, api.searches())
	}
}

// TestBatchSizeStaleChunkCheckpointNotTaken: a sync whose list shrank from
// three chunks to two keeps the third chunk's checkpoint (done) while it
// goes on; when the list grows back with other items in the third chunk,
// that checkpoint answers for other items: the chunk is read, not skipped
// as done.
func TestBatchSizeStaleChunkCheckpointNotTaken(t *testing.T) {
	ids := sevenIDs()
	var mu sync.Mutex
	failD := true
	g := &cappedGraph{capItems: capItems, ids: func() []string {
		mu.Lock()
		defer mu.Unlock()
		return ids
	}, fail: func(l []string, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if failD && l[0] == "d" {
			return http.StatusInternalServerError
		}
		return 0
	}}
	s := newSyncs(t, chunkedGraphSpec, g.start(t))
	first, _ := s.run(false) // chunk [g] done, [d e f] failed
	if got := sorted(first.field("graph", "id")); !slices.Equal(got, []string{"a", "b", "c", "g"}) {
		t.Fatalf("first run wrote %v", got)
	}
	mu.Lock()
	ids = ids[:6]
	mu.Unlock()
	s.run(false) // two chunks; [d e f] fails again
	mu.Lock()
	ids, failD = append(ids[:6:6], "h"), false
	mu.Unlock()
	third, _ := s.run(true)
	if got, want := sorted(third.field("graph", "id")), []string{"d", "e", "f", "h"}; !slices.Equal(got, want) {
		t.Errorf("third run wrote %v, want %v (chunk 3 now holds h)", got, want)
	}
}
