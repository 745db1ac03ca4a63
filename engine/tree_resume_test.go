package engine_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/tree"
)

// treeResumeSpec reads the simulator's block tree (blocks fans out from
// pages and from its own blocks), and each block's comments; the _log
// tables append, so a row written twice shows.
// The resumed runs read a new simulator, at another address, of the same
// tree: url is not required, so it does not tell source instances apart
// (a required one would, and the resumed run refuse the sync).
const treeResumeSpec = `
version: 1
name: tree
config:
  url: {required: false}
http:
  base_url: ${ config.url }
  concurrency: 3
  retry: {attempts: 3, initial: 1ms, max: 2ms}
streams:
  pages:
    request: {path: /v1/pages}
    records: .results[]
  blocks:
    for_each: pages
    recurse: {when: .has_children, max_depth: 5}
    request:
      path: /v1/blocks/${ parent.id }/children
      query: {page_size: 2}
    records: .results[]
    paginate: {type: cursor, token: 'if .has_more then .next_cursor else null end', param: start_cursor}
  comments:
    for_each: blocks
    request:
      path: /v1/comments
      query: {block_id: "${ parent.id }"}
    records: .results[]
tables:
  blocks: {from: blocks, primary_key: [id], row: '{id, parent: $parent.id, title}'}
  blocks_log: {from: blocks, mode: append, row: '{id, parent: $parent.id}'}
  comments_log: {from: comments, mode: append, row: '{id, block: $parent.id}'}
`

func treeRun(ctx context.Context, t *testing.T, f *engine.Spec, url, db string) error {
	t.Helper()
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": url}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.Run(ctx, f, cfg, engine.RunOptions{Dest: "sqlite:" + db})
	return err
}

// treeDump is every table's rows (data columns), sorted, as JSON lines.
func treeDump(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]string{}
	for _, table := range []string{"blocks", "blocks_log", "comments_log"} {
		rows, err := db.Query(fmt.Sprintf(`SELECT * FROM "tree__%s"`, table))
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			m := map[string]any{}
			for i, c := range cols {
				if c == "_ferry_synced" || c == "_ferry_id" {
					continue
				}
				m[c] = vals[i]
			}
			b, _ := json.Marshal(m)
			out[table] = append(out[table], string(b))
		}
		rows.Close()
		slices.Sort(out[table])
	}
	return out
}

// loadTreeSpec writes and loads treeResumeSpec; without comments, the
// comments stream and its table are left out (blocks then has no child
// stream, and only its own chains need its records again on resume).
func loadTreeSpec(t *testing.T, dir string, comments bool) *engine.Spec {
	t.Helper()
	src := treeResumeSpec
	if !comments {
		src = strings.Replace(src, "  comments:\n    for_each: blocks\n", "  comments:\n    for_each: pages\n", 1)
	}
	path := filepath.Join(dir, "tree.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// treeReference is the tables of an uninterrupted run, checked against
// the simulator's tree: every block once, with its parent; one comment
// per block.
func treeReference(t *testing.T, dir string, f *engine.Spec) map[string][]string {
	t.Helper()
	sim := tree.New(tree.Options{})
	defer sim.Close()
	ref := filepath.Join(dir, "ref.db")
	if err := treeRun(t.Context(), t, f, sim.URL(), ref); err != nil {
		t.Fatal(err)
	}
	want := treeDump(t, ref)
	if n := sim.Requests(); n < 200 {
		t.Fatalf("reference run: %d requests; the interrupted runs stop up to the 150th, and must stop mid-tree", n)
	}
	var log []string
	for _, n := range sim.Nodes() {
		log = append(log, fmt.Sprintf(`{"_ferry_deleted":0,"id":%q,"parent":%q}`, n.ID, n.Parent))
	}
	slices.Sort(log)
	if diff := cmp.Diff(log, want["blocks_log"]); diff != "" {
		t.Fatalf("reference run: blocks_log (-tree +written):\n%s", diff)
	}
	if len(want["comments_log"]) != len(log) && len(want["comments_log"]) != len(sim.Pages()) || len(want["blocks"]) != len(log) {
		t.Fatalf("reference run: %d blocks, %d comments; want %d each", len(want["blocks"]), len(want["comments_log"]), len(log))
	}
	return want
}

// TestTreeInterruptedRunResumes interrupts a tree's run at many points,
// deep in the tree too, resumes it, and checks the tables equal an
// uninterrupted run's: no block lost, none appended twice.
func TestTreeInterruptedRunResumes(t *testing.T) {
	for _, comments := range []bool{true, false} {
		t.Run(fmt.Sprintf("comments under blocks %v", comments), func(t *testing.T) { treeInterrupted(t, comments) })
	}
}

func treeInterrupted(t *testing.T, comments bool) {
	dir := t.TempDir()
	f := loadTreeSpec(t, dir, comments)
	want := treeReference(t, dir, f)
	for _, stopAt := range []int{3, 10, 40, 90, 150} {
		t.Run(fmt.Sprintf("stop at request %d", stopAt), func(t *testing.T) {
			db := filepath.Join(dir, fmt.Sprintf("run%d.db", stopAt))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			sim := tree.New(tree.Options{OnRequest: func(n int) {
				if n == stopAt {
					cancel()
				}
			}})
			defer sim.Close()
			if err := treeRun(ctx, t, f, sim.URL(), db); err == nil {
				t.Fatal("the interrupted run reported success")
			}
			again := tree.New(tree.Options{})
			defer again.Close()
			if err := treeRun(t.Context(), t, f, again.URL(), db); err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			if diff := cmp.Diff(want, treeDump(t, db)); diff != "" {
				t.Errorf("tables after interrupt+resume differ (-uninterrupted +resumed):\n%s", diff)
			}
		})
	}
}

// TestTreeFailedRunResumes: a run in which one block's children always
// fail (a 500 that retries do not cure) fails naming that block with its
// ancestors; the next run reads what it missed and writes nothing twice.
func TestTreeFailedRunResumes(t *testing.T) {
	dir := t.TempDir()
	f := loadTreeSpec(t, dir, true)
	want := treeReference(t, dir, f)
	db := filepath.Join(dir, "failed.db")
	broken := tree.New(tree.Options{Fail: func(path string, n int) bool {
		return strings.HasPrefix(path, "/v1/blocks/p1.0.1/children")
	}})
	defer broken.Close()
	err := treeRun(t.Context(), t, f, broken.URL(), db)
	if err == nil || !strings.Contains(err.Error(), "pages[id=p1] > blocks[id=p1.0] > blocks[id=p1.0.1]") {
		t.Fatalf("run with a broken block: %v; want a failure naming pages[id=p1] > blocks[id=p1.0] > blocks[id=p1.0.1]", err)
	}
	if got := treeDump(t, db); len(got["blocks_log"]) >= len(want["blocks_log"]) || len(got["blocks_log"]) < len(want["blocks_log"])/2 {
		t.Fatalf("failed run wrote %d blocks of %d: want all but the broken block's subtree", len(got["blocks_log"]), len(want["blocks_log"]))
	}
	fixed := tree.New(tree.Options{})
	defer fixed.Close()
	if err := treeRun(t.Context(), t, f, fixed.URL(), db); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if diff := cmp.Diff(want, treeDump(t, db)); diff != "" {
		t.Errorf("tables after failure+resume differ (-uninterrupted +resumed):\n%s", diff)
	}
}
