package runner_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sim/tree"
)

// treeSpec reads the simulator's block tree: blocks fans out from pages,
// and from its own blocks while they have children; comments fans out
// from blocks at every level.
func treeSpec(maxDepth int) string {
	return fmt.Sprintf(`
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  concurrency: 4
  retry: {attempts: 4, initial: 1ms, max: 2ms}
streams:
  pages:
    request: {path: /v1/pages}
    records: .results[]
  blocks:
    for_each: pages
    recurse: {when: .has_children, max_depth: %d}
    request:
      path: /v1/blocks/${ parent.id }/children
      query: {page_size: 100}
    records: .results[]
    paginate: {type: cursor, token: 'if .has_more then .next_cursor else null end', param: start_cursor}
  comments:
    for_each: blocks
    request:
      path: /v1/comments
      query: {block_id: "${ parent.id }"}
    records: .results[]
tables:
  blocks:
    from: blocks
    primary_key: [id]
    row: '{id, parent: $parent.id, page: $pages.id, nearest: $blocks.id, title}'
  comments:
    from: comments
    row: '{id, block: $parent.id, page: $pages.id}'
`, maxDepth)
}

// TestTreeEveryNodeOnceInOrder: every block of a deep tree read through
// paged children (3 a page), 429s and 500s is written once, with its
// parent, its comments too; the order is the same whatever the timing
// (each page's tree level by level, in listing order).
func TestTreeEveryNodeOnceInOrder(t *testing.T) {
	var want []string
	var wantComments []string
	var first []string
	for round := range 3 {
		var throttled, failed atomic.Int32
		sim := tree.New(tree.Options{
			Throttle: func(path string, n int) bool {
				ok := n == 1 && (len(path)+round)%5 == 0
				if ok {
					throttled.Add(1)
				}
				return ok
			},
			Fail: func(path string, n int) bool {
				ok := n == 1 && (len(path)+round)%3 == 1 && !strings.Contains(path, "comments")
				if ok {
					failed.Add(1)
				}
				return ok
			},
			// Answers come back in another order each round.
			Latency: func(path string) time.Duration {
				return time.Duration((len(path)*7+round*3)%4) * time.Millisecond
			},
		})
		defer sim.Close()
		if want == nil {
			nodes := sim.Nodes()
			deepest := 0
			for _, n := range nodes {
				want = append(want, n.ID+" < "+n.Parent)
				wantComments = append(wantComments, "c-"+n.ID+" < "+n.ID)
				deepest = max(deepest, n.Level)
			}
			if deepest != 5 || len(nodes) < 40 {
				t.Fatalf("simulator: %d nodes, %d levels; want a tree 5 deep", len(nodes), deepest)
			}
		}
		out := newCollector()
		sum, err := runSpec(t, mustSpec(t, treeSpec(5)), map[string]any{"url": sim.URL()}, out)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var got, comments []string
		for _, r := range out.rows["blocks"] {
			got = append(got, fmt.Sprint(r["id"], " < ", r["parent"]))
			if !strings.HasPrefix(fmt.Sprint(r["id"]), fmt.Sprint(r["page"])+".") {
				t.Errorf("block %v: $pages.id = %v", r["id"], r["page"])
			}
			// $blocks is the nearest block above: the parent, or null
			// for a page's child.
			if nearest := r["nearest"]; r["parent"] == r["page"] && nearest != nil || r["parent"] != r["page"] && nearest != r["parent"] {
				t.Errorf("block %v under %v: $blocks.id = %v", r["id"], r["parent"], nearest)
			}
		}
		for _, r := range out.rows["comments"] {
			comments = append(comments, fmt.Sprint(r["id"], " < ", r["block"]))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round %d: blocks, in order (-want +got):\n%s", round, diff)
		}
		if diff := cmp.Diff(wantComments, comments); diff != "" {
			t.Errorf("round %d: comments, in order (-want +got):\n%s", round, diff)
		}
		if round == 0 {
			first = got
		} else if !slicesEqual(first, got) {
			t.Errorf("round %d: another order than round 0", round)
		}
		if throttled.Load() == 0 || failed.Load() == 0 {
			t.Errorf("round %d: the simulator sent %d 429s and %d 500s; the test wants some of each", round, throttled.Load(), failed.Load())
		}
		pages := int64(len(sim.Pages()))
		for _, st := range sum.Streams {
			if st.Stream == "blocks" && (st.Chains != pages+int64(countWith(sim.Nodes(), true)) || st.ChainsDone != st.Chains || st.Records != int64(len(want))) {
				t.Errorf("round %d: blocks stats %+v; want a chain per page and per block with children, each released, and every block", round, st)
			}
		}
	}
}

func slicesEqual(a, b []string) bool { return cmp.Equal(a, b) }

func countWith(nodes []tree.Node, children bool) int {
	n := 0
	for _, x := range nodes {
		if x.HasChildren == children {
			n++
		}
	}
	return n
}

// TestTreeDepthLimitFails: a record at max_depth whose children are still
// to read fails the run, each one named with its ancestors; every record
// down to that level is written all the same.
func TestTreeDepthLimitFails(t *testing.T) {
	sim := tree.New(tree.Options{Roots: 1})
	defer sim.Close()
	out := newCollector()
	_, err := runSpec(t, mustSpec(t, treeSpec(3)), map[string]any{"url": sim.URL()}, out)
	var re *runner.RunError
	if !errors.As(err, &re) {
		t.Fatalf("run: %v; want a RunError", err)
	}
	var want, wantWritten []string
	for _, n := range sim.Nodes() {
		if n.Level <= 3 {
			wantWritten = append(wantWritten, n.ID)
		}
		if n.Level == 3 && n.HasChildren {
			want = append(want, n.ID)
		}
	}
	if len(want) == 0 {
		t.Fatal("simulator: no block with children at level 3")
	}
	var got []string
	for _, f := range re.Failures {
		id := strings.TrimSuffix(f.Parents[strings.LastIndex(f.Parents, "[id=")+4:], "]")
		got = append(got, id)
		parts := strings.Split(id, ".")
		wantChain := "pages[id=" + parts[0] + "]"
		for i := 2; i <= len(parts); i++ {
			wantChain += " > blocks[id=" + strings.Join(parts[:i], ".") + "]"
		}
		if f.Stream != "blocks" || f.Parents != wantChain || !strings.Contains(f.Err.Error(), "level 3, max_depth") {
			t.Errorf("failure %s %q: %v; want blocks, %q, level 3, max_depth", f.Stream, f.Parents, f.Err, wantChain)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failed records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantWritten, out.field("blocks", "id")); diff != "" {
		t.Errorf("blocks written (-want +got):\n%s", diff)
	}
}

// TestTreeCycleFails: a block listing its own grandparent as a child is a
// cycle: the run fails naming the chain from the repeated record down,
// and does not read on forever (max_depth is far away).
func TestTreeCycleFails(t *testing.T) {
	sim := tree.New(tree.Options{Roots: 1, Cycle: "p1.0.0.1"})
	defer sim.Close()
	out := newCollector()
	_, err := runSpec(t, mustSpec(t, treeSpec(50)), map[string]any{"url": sim.URL()}, out)
	var re *runner.RunError
	if !errors.As(err, &re) {
		t.Fatalf("run: %v; want a RunError", err)
	}
	// The cycle, and (p1.0 is written again, under another parent) a
	// primary-key collision.
	var cycles []runner.Failure
	for _, f := range re.Failures {
		if strings.Contains(f.Err.Error(), "cycle") {
			cycles = append(cycles, f)
		}
	}
	if len(cycles) != 1 {
		t.Fatalf("run: %v; want one cycle", err)
	}
	f := cycles[0]
	if want := "pages[id=p1] > blocks[id=p1.0] > blocks[id=p1.0.0] > blocks[id=p1.0.0.1] > blocks[id=p1.0]"; f.Parents != want {
		t.Errorf("failure names %q, want %q", f.Parents, want)
	}
	if want := "blocks[id=p1.0] > blocks[id=p1.0.0] > blocks[id=p1.0.0.1] > blocks[id=p1.0]"; !strings.Contains(f.Err.Error(), "cycle") || !strings.Contains(f.Err.Error(), want) {
		t.Errorf("failure %v; want a cycle naming %s", f.Err, want)
	}
	// Every block is written; p1.0 twice (once as the cycle's record).
	got := out.field("blocks", "id")
	if n := len(sim.Nodes()) + 1; len(got) != n || !slices.Contains(got, "p1.0.0.1.0") {
		t.Errorf("%d blocks written, want %d", len(got), n)
	}
}

// TestTreeWithoutForEach: a recursive stream without for_each starts from
// one root chain, where parent is null (its when sees so, before the run and in the chain);
// parents.<itself> is its nearest own record, as $<itself> is in jq.
func TestTreeWithoutForEach(t *testing.T) {
	sim := tree.New(tree.Options{Roots: 1, Depth: 4})
	defer sim.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
  root: {required: true}
http:
  base_url: ${ config.url }
streams:
  blocks:
    # Evaluated before the run (a stream without for_each) and per chain:
    # parent is null in the root chain.
    when: parents.blocks == nil || parent.has_children
    recurse: {when: .has_children, max_depth: 4}
    request:
      path: /v1/blocks/${ parents.blocks?.id ?? config.root }/children
    records: .results[]
    paginate: {type: cursor, token: 'if .has_more then .next_cursor else null end', param: start_cursor}
tables:
  blocks:
    from: blocks
    row: '{id, parent: ($parent.id // "root")}'
`)
	out := newCollector()
	if _, err := runSpec(t, f, map[string]any{"url": sim.URL(), "root": "p1"}, out); err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, n := range sim.Nodes() {
		p := n.Parent
		if n.Level == 1 {
			p = "root"
		}
		want = append(want, n.ID+" < "+p)
	}
	for _, r := range out.rows["blocks"] {
		got = append(got, fmt.Sprint(r["id"], " < ", r["parent"]))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
}

// TestTreeSharedRecord: a record under two parents (a DAG) is read under
// each, its subtree too: a table keyed by the record alone gets it once,
// the second reading reported as a duplicate (the same row: no failure);
// a table keyed by record and parent gets both links.
func TestTreeSharedRecord(t *testing.T) {
	sim := tree.New(tree.Options{Roots: 1, Depth: 4, Share: map[string]string{"p1.0.1": "p1.1"}})
	defer sim.Close()
	src := strings.Replace(treeSpec(4), `tables:
  blocks:
    from: blocks
    primary_key: [id]
    row: '{id, parent: $parent.id, page: $pages.id, nearest: $blocks.id, title}'`, `tables:
  blocks:
    from: blocks
    primary_key: [id]
    row: '{id, title}'
  links:
    from: blocks
    primary_key: [id, parent]
    row: '{id, parent: $parent.id}'`, 1)
	out := newCollector()
	sum, err := runSpec(t, mustSpec(t, src), map[string]any{"url": sim.URL()}, out)
	if err != nil {
		t.Fatal(err)
	}
	below := 0 // p1.0.1 and the blocks under it
	for _, n := range sim.Nodes() {
		if n.ID == "p1.0.1" || strings.HasPrefix(n.ID, "p1.0.1.") {
			below++
		}
	}
	if below < 2 {
		t.Fatal("simulator: the shared block has no children")
	}
	links := map[string]int{}
	for _, r := range out.rows["links"] {
		links[fmt.Sprint(r["id"], " < ", r["parent"])]++
	}
	if links["p1.0.1 < p1.0"] != 1 || links["p1.0.1 < p1.1"] != 1 || len(out.rows["links"]) != len(sim.Nodes())+below {
		t.Errorf("links: %d rows, p1.0.1 under p1.0 %d, under p1.1 %d; want %d rows, one each", len(out.rows["links"]), links["p1.0.1 < p1.0"], links["p1.0.1 < p1.1"], len(sim.Nodes())+below)
	}
	var dups int
	for _, d := range sum.Duplicates {
		if d.Name == "blocks" {
			dups = d.Count
		}
	}
	if dups != below {
		t.Errorf("blocks: %d duplicates reported, want %d (the shared block and its subtree, read twice): %+v", dups, below, sum.Duplicates)
	}
}

// TestTreeWhenErrorFails: recurse.when failing on a record fails the run,
// naming the record with its ancestors; the rest of the tree is read.
func TestTreeWhenErrorFails(t *testing.T) {
	sim := tree.New(tree.Options{Roots: 1, Depth: 3})
	defer sim.Close()
	src := strings.Replace(treeSpec(3), `when: .has_children,`, `when: 'if .id == "p1.1" then error("no children here") else .has_children end',`, 1)
	out := newCollector()
	_, err := runSpec(t, mustSpec(t, src), map[string]any{"url": sim.URL()}, out)
	var re *runner.RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 {
		t.Fatalf("run: %v; want one failure", err)
	}
	if f := re.Failures[0]; f.Parents != "pages[id=p1] > blocks[id=p1.1]" || !strings.Contains(f.Err.Error(), "recurse.when") || !strings.Contains(f.Err.Error(), "no children here") {
		t.Errorf("failure %q: %v", f.Parents, f.Err)
	}
	var want []string
	for _, n := range sim.Nodes() {
		if !strings.HasPrefix(n.ID, "p1.1.") {
			want = append(want, n.ID)
		}
	}
	if diff := cmp.Diff(want, out.field("blocks", "id")); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
}
