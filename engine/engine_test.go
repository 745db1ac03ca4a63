package engine_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"github.com/ferry-etl/ferry/engine"
)

// pagedAPI serves 4 parents, each with 5 cursor pages of 3 items. onRequest
// sees the running request count (1-based).
func pagedAPI(t *testing.T, onRequest func(n int64)) *httptest.Server {
	t.Helper()
	var count atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if onRequest != nil {
			onRequest(count.Add(1))
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/parents" {
			fmt.Fprint(w, `[{"id":"a"},{"id":"b/c"},{"id":"d"},{"id":"e"}]`)
			return
		}
		parent := strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/parents/"), "/items")
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		var items []string
		for i := after; i < after+3; i++ {
			items = append(items, fmt.Sprintf(`{"id":%d,"parent":%q,"v":"x%d"}`, i, parent, i))
		}
		next := "null"
		if after+3 < 15 {
			next = strconv.Quote(strconv.Itoa(after + 3))
		}
		fmt.Fprintf(w, `{"items":[%s],"next":%s}`, strings.Join(items, ","), next)
	}))
	t.Cleanup(s.Close)
	return s
}

const pagedSpec = `
version: 1
name: paged
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  concurrency: 2
streams:
  roots:
    request: {path: /parents}
  items:
    for_each: roots
    request:
      path: /parents/${ parent.id }/items
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
tables:
  roots: {from: roots, primary_key: [id]}
  items: {from: items, primary_key: [parent, id]}
  items_log: {from: items, mode: append, row: '{parent, id, v}'}
  roots_log: {from: roots, mode: append}   # a parent's rows: replayed on resume, never written twice
`

func loadSpec(t *testing.T, dir string) *engine.Spec {
	t.Helper()
	path := filepath.Join(dir, "paged.yaml")
	if err := os.WriteFile(path, []byte(pagedSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func run(ctx context.Context, t *testing.T, f *engine.Spec, url, dest string, dry bool) (string, error) {
	t.Helper()
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": url}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = engine.Run(ctx, f, cfg, engine.RunOptions{DryRun: dry, Dest: dest, Stdout: &out})
	return out.String(), err
}

// dump returns every table's data columns, rows sorted, as JSON lines.
func dump(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]string{}
	for _, table := range []string{"roots", "items", "items_log", "roots_log"} {
		rows, err := db.Query(fmt.Sprintf(`SELECT * FROM "paged__%s"`, table))
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
					continue // the run's time, and a hash of the row
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

func TestDryRunPrintsWhatARunWrites(t *testing.T) {
	dir := t.TempDir()
	f := loadSpec(t, dir)
	api := pagedAPI(t, nil)
	printed, err := run(t.Context(), t, f, api.URL, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("ferry.db"); err == nil {
		t.Fatal("a dry run created ferry.db")
	}
	db := filepath.Join(dir, "out.db")
	if _, err := run(t.Context(), t, f, api.URL, "sqlite:"+db, false); err != nil {
		t.Fatal(err)
	}
	// What was printed, reduced to the same shape as the table dump.
	want := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(printed), "\n") {
		var l struct {
			Table string         `json:"table"`
			Row   map[string]any `json:"row"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		l.Row["_ferry_deleted"] = 0
		b, _ := json.Marshal(l.Row)
		want[l.Table] = append(want[l.Table], string(b))
	}
	for k := range want {
		slices.Sort(want[k])
	}
	if diff := cmp.Diff(want, dump(t, db)); diff != "" {
		t.Errorf("dry run vs tables (-printed +written):\n%s", diff)
	}
}

// TestInterruptedRunResumes interrupts a run at many points, resumes it, and
// checks the tables equal an uninterrupted run's: nothing lost, nothing
// appended twice.
func TestInterruptedRunResumes(t *testing.T) {
	dir := t.TempDir()
	f := loadSpec(t, dir)
	ref := filepath.Join(dir, "ref.db")
	if _, err := run(t.Context(), t, f, pagedAPI(t, nil).URL, "sqlite:"+ref, false); err != nil {
		t.Fatal(err)
	}
	want := dump(t, ref)
	if len(want["items_log"]) != 4*15 {
		t.Fatalf("reference run: %d log rows, want 60", len(want["items_log"]))
	}
	for _, stopAt := range []int64{2, 3, 5, 8, 13, 17, 20} {
		t.Run(fmt.Sprintf("stop at request %d", stopAt), func(t *testing.T) {
			db := filepath.Join(dir, fmt.Sprintf("run%d.db", stopAt))
			ctx, cancel := context.WithCancel(t.Context())
			api := pagedAPI(t, func(n int64) {
				if n == stopAt {
					cancel()
				}
			})
			if _, err := run(ctx, t, f, api.URL, "sqlite:"+db, false); err == nil {
				t.Fatal("the interrupted run reported success")
			}
			if _, err := run(t.Context(), t, f, api.URL, "sqlite:"+db, false); err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			if diff := cmp.Diff(want, dump(t, db)); diff != "" {
				t.Errorf("tables after interrupt+resume differ (-uninterrupted +resumed):\n%s", diff)
			}
		})
	}
}
