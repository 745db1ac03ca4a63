package runner_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// cappedGraph simulates a POST-a-list API that takes at most capItems ids
// per request and, given more, silently answers for the first capItems
// only, one node per id and one id per page. The resources of env dev are
// ids, in order. fail, when set, answers 500 (or status) to the request it
// picks. Every request is logged as "<first id>:<page>".
type cappedGraph struct {
	capItems int
	ids      func() []string
	fail     func(ids []string, page int) int // a status, 0 to answer

	mu       sync.Mutex
	asked    []string
	maxItems int
}

const capItems = 3

func (g *cappedGraph) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/envs":
			fmt.Fprint(w, `[{"id": "dev"}]`)
		case "/envs/dev/resources":
			var recs []map[string]string
			for _, id := range g.ids() {
				recs = append(recs, map[string]string{"id": id})
			}
			_ = json.NewEncoder(w).Encode(recs)
		case "/envs/dev/graph":
			var ids []string
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &ids); err != nil || len(ids) == 0 {
				http.Error(w, "bad list", http.StatusBadRequest)
				return
			}
			page := 1
			if p := r.URL.Query().Get("page"); p != "" {
				page, _ = strconv.Atoi(p)
			}
			g.mu.Lock()
			g.asked = append(g.asked, fmt.Sprintf("%s:%d", ids[0], page))
			g.maxItems = max(g.maxItems, len(ids))
			g.mu.Unlock()
			if g.fail != nil {
				if st := g.fail(ids, page); st != 0 {
					http.Error(w, "no", st)
					return
				}
			}
			// The silent cap: the items past it are dropped, and the answer
			// looks whole.
			ids = ids[:min(len(ids), g.capItems)]
			if page < 1 || page > len(ids) {
				http.Error(w, "no such page", http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, `{"nodes": [{"id": %q}], "pages": %d}`, ids[page-1], len(ids))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (g *cappedGraph) requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := slices.Clone(g.asked)
	slices.Sort(out)
	return out
}

func sevenIDs() []string { return []string{"a", "b", "c", "d", "e", "f", "g"} }

// batchGraphSpec with the batch split into requests of at most capItems.
var chunkedGraphSpec = strings.Replace(batchGraphSpec, "    batch: resources\n", fmt.Sprintf("    batch: resources\n    batch_size: %d\n", capItems), 1)

func sorted(l []string) []string {
	l = slices.Clone(l)
	slices.Sort(l)
	return l
}

// TestBatchSizeSendsEveryItem: an API that answers only for the first
// capItems ids of a request loses the rest of a longer list without a
// word (the first part shows it); with batch_size every chunk is sent, and
// every node written.
func TestBatchSizeSendsEveryItem(t *testing.T) {
	t.Run("without batch_size the cap drops items silently", func(t *testing.T) {
		g := &cappedGraph{capItems: capItems, ids: sevenIDs}
		out := newStateful()
		if _, err := runWith(t, mustSpec(t, batchGraphSpec), runOpts{cfg: map[string]any{"url": g.start(t)}}, out); err != nil {
			t.Fatalf("run: %v", err)
		}
		if got := sorted(out.field("graph", "id")); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("rows %v, want [a b c]: the simulator should answer for the first %d ids only", got, capItems)
		}
	})
	t.Run("with batch_size", func(t *testing.T) {
		g := &cappedGraph{capItems: capItems, ids: sevenIDs}
		out := newStateful()
		if _, err := runWith(t, mustSpec(t, chunkedGraphSpec), runOpts{cfg: map[string]any{"url": g.start(t)}}, out); err != nil {
			t.Fatalf("run: %v", err)
		}
		if got := sorted(out.field("graph", "id")); !slices.Equal(got, sevenIDs()) {
			t.Errorf("rows %v, want %v", got, sevenIDs())
		}
		if g.maxItems > capItems {
			t.Errorf("a request carried %d ids, want at most %d", g.maxItems, capItems)
		}
		want := []string{"a:1", "a:2", "a:3", "d:1", "d:2", "d:3", "g:1"}
		if got := g.requests(); !slices.Equal(got, want) {
			t.Errorf("graph requests %v, want %v (one chain per chunk)", got, want)
		}
	})
}

// TestBatchSizeChunkFailureNamesTheChunk: a chunk whose request fails is a
// failure of the run naming the stream, the parent and the chunk's items;
// the other chunks are written.
func TestBatchSizeChunkFailureNamesTheChunk(t *testing.T) {
	g := &cappedGraph{capItems: capItems, ids: sevenIDs, fail: func(ids []string, _ int) int {
		if slices.Contains(ids, "e") {
			return http.StatusInternalServerError
		}
		return 0
	}}
	out := newStateful()
	sum, err := runWith(t, mustSpec(t, chunkedGraphSpec), runOpts{cfg: map[string]any{"url": g.start(t)}}, out)
	if err == nil {
		t.Fatal("run: no error, want the failure of chunk d-f")
	}
	if got := sorted(out.field("graph", "id")); !slices.Equal(got, []string{"a", "b", "c", "g"}) {
		t.Errorf("rows %v, want [a b c g]", got)
	}
	var named []string
	for _, f := range sum.Failures {
		named = append(named, f.Stream+" ("+f.Parents+")")
	}
	if want := []string{"graph (envs[id=dev] [batch items 4-6 of 7])"}; !slices.Equal(named, want) {
		t.Errorf("failures %q, want %q", named, want)
	}
	if sum.Complete["graph"] {
		t.Error("graph complete though a chunk failed")
	}
}

// TestBatchSizeChunkSkipNamesTheChunk: a request a rule skips is reported
// with its chunk.
func TestBatchSizeChunkSkipNamesTheChunk(t *testing.T) {
	g := &cappedGraph{capItems: capItems, ids: sevenIDs, fail: func(ids []string, _ int) int {
		if ids[0] == "g" {
			return http.StatusConflict
		}
		return 0
	}}
	src := strings.Replace(chunkedGraphSpec, "    records: .nodes[]\n", "    records: .nodes[]\n    http: {rules: [{status: 409, action: skip}]}\n", 1)
	out := newStateful()
	sum, _ := runWith(t, mustSpec(t, src), runOpts{cfg: map[string]any{"url": g.start(t)}}, out)
	var named []string
	for _, s := range sum.Skips {
		named = append(named, s.Stream+" ("+s.Parents+")")
	}
	if want := []string{"graph (envs[id=dev] [batch item 7 of 7])"}; !slices.Equal(named, want) {
		t.Errorf("skips %q, want %q", named, want)
	}
	if got := sorted(out.field("graph", "id")); !slices.Equal(got, []string{"a", "b", "c", "d", "e", "f"}) {
		t.Errorf("rows %v, want a to f", got)
	}
}

// TestBatchSizeResumedGoesOnPerChunk: each chunk is a chain with its own
// checkpoint. A run that failed on page 2 of the second chunk, resumed,
// asks only that chunk's pages 2 and 3: the chunks done are not read
// again, none is skipped, and no chunk takes another's progress for its
// own (with one checkpoint per parent, the last chunk's would stand for
// all three).
func TestBatchSizeResumedGoesOnPerChunk(t *testing.T) {
	var resumed atomic.Bool
	g := &cappedGraph{capItems: capItems, ids: sevenIDs, fail: func(ids []string, page int) int {
		if !resumed.Load() && ids[0] == "d" && page == 2 {
			return http.StatusInternalServerError
		}
		return 0
	}}
	url := g.start(t)
	first, again, _ := failThenResumeAfter(t, mustSpec(t, chunkedGraphSpec), url, "chunk d-f's page 2 to fail", func() {
		g.mu.Lock()
		g.asked = nil
		g.mu.Unlock()
		resumed.Store(true)
	})
	if got, want := g.requests(), []string{"d:2", "d:3"}; !slices.Equal(got, want) {
		t.Errorf("resumed run asked %v, want %v", got, want)
	}
	written := sorted(append(first.field("graph", "id"), again.field("graph", "id")...))
	if !slices.Equal(written, sevenIDs()) {
		t.Errorf("written over both runs %v, want each of %v once", written, sevenIDs())
	}
}

// TestBatchSizeResumedWithAShiftedList: when the batch source gained an
// item before the interrupted run resumed, every chunk holds other items:
// each is read afresh, and none of the new list's items is lost.
func TestBatchSizeResumedWithAShiftedList(t *testing.T) {
	var resumed atomic.Bool
	g := &cappedGraph{capItems: capItems, ids: func() []string {
		if resumed.Load() {
			return append([]string{"0"}, sevenIDs()...)
		}
		return sevenIDs()
	}, fail: func(ids []string, page int) int {
		if !resumed.Load() && ids[0] == "d" && page == 2 {
			return http.StatusInternalServerError
		}
		return 0
	}}
	_, again, _ := failThenResumeAfter(t, mustSpec(t, chunkedGraphSpec), g.start(t), "chunk d-f's page 2 to fail", func() { resumed.Store(true) })
	want := append([]string{"0"}, sevenIDs()...)
	if got := sorted(again.field("graph", "id")); !slices.Equal(got, want) {
		t.Errorf("resumed run wrote %v, want %v (every chunk changed)", got, want)
	}
}

// TestBatchSizeAtAndJustOverTheCap: a list of exactly batch_size items is
// one request, as without batch_size; one item more is two, the second
// carrying that item alone.
func TestBatchSizeAtAndJustOverTheCap(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{capItems, []string{"a:1", "a:2", "a:3"}},
		{capItems + 1, []string{"a:1", "a:2", "a:3", "d:1"}},
	} {
		t.Run(strconv.Itoa(tc.n), func(t *testing.T) {
			ids := sevenIDs()[:tc.n]
			g := &cappedGraph{capItems: capItems, ids: func() []string { return ids }}
			out := newStateful()
			if _, err := runWith(t, mustSpec(t, chunkedGraphSpec), runOpts{cfg: map[string]any{"url": g.start(t)}}, out); err != nil {
				t.Fatalf("run: %v", err)
			}
			if got := g.requests(); !slices.Equal(got, tc.want) {
				t.Errorf("graph requests %v, want %v", got, tc.want)
			}
			if got := sorted(out.field("graph", "id")); !slices.Equal(got, ids) {
				t.Errorf("rows %v, want %v", got, ids)
			}
		})
	}
}
