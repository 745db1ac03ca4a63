package runner_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sim/tree"
)

// TestTreeProbe: ferry check's probe (Options.Probe) of a recursive stream
// with a child stream sends one request per stream, pages, blocks and
// comments, and ends: the chains queued below the probed page's blocks
// (a tree's own, the comments') send nothing and are released, and the
// tree is not walked.
func TestTreeProbe(t *testing.T) {
	sim := tree.New(tree.Options{})
	defer sim.Close()
	pool := fetch.NewPool(fetch.Options{Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	r, err := runner.New(mustSpec(t, treeSpec(5)), runner.Options{Config: map[string]any{"url": sim.URL()}, Pool: pool, Probe: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	sum, err := r.Run(ctx, newCollector())
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if n := sim.Requests(); n != 3 {
		t.Errorf("probe sent %d requests, want 3 (one per stream)", n)
	}
	queued := false
	for _, st := range sum.Streams {
		if st.Requests != 1 || st.Records == 0 || !st.Done || st.ChainsDone != st.Chains {
			t.Errorf("stream %s: %+v; want one request that read records, every chain released", st.Stream, st)
		}
		if st.Stream == "blocks" && st.Chains > 2 {
			queued = true // chains below the probed blocks were queued, and sent nothing
		}
	}
	if !queued {
		t.Error("no chain queued below the probed page's blocks: the test does not reach the tree")
	}
}

// TestTreeFetchesAhead: the chains queued below a tree's records are
// fetched ahead of their release, several at a time (the stream's window),
// not one after the other: with one root and concurrency 4, as many block
// requests as the concurrency allows are in flight (a window of one
// reaches two: the chain being released and the next).
func TestTreeFetchesAhead(t *testing.T) {
	var mu sync.Mutex
	inflight, most := 0, 0
	sim := tree.New(tree.Options{Roots: 1, Depth: 3, Latency: func(path string) time.Duration {
		if !strings.HasPrefix(path, "/v1/blocks/") {
			return 0
		}
		mu.Lock()
		inflight++
		most = max(most, inflight)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		inflight--
		mu.Unlock()
		return 0
	}})
	defer sim.Close()
	out := newCollector()
	if _, err := runSpec(t, mustSpec(t, treeSpec(3)), map[string]any{"url": sim.URL()}, out); err != nil {
		t.Fatal(err)
	}
	if n := len(out.rows["blocks"]); n != len(sim.Nodes()) {
		t.Fatalf("%d blocks written, want %d", n, len(sim.Nodes()))
	}
	mu.Lock()
	defer mu.Unlock()
	if most < 3 {
		t.Errorf("at most %d block request in flight at once; want the tree's chains fetched ahead, up to the concurrency (4)", most)
	}
}
