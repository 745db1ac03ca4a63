package engine_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

func rvLoad(t *testing.T, dir, name, src string) *engine.Spec {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func rvCount(t *testing.T, db, q string) int {
	t.Helper()
	c, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func rvCfg(t *testing.T, f *engine.Spec, url string) *engine.Config {
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": url}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Finding: a `--streams child` run that is interrupted leaves checkpoints
// for the (unproduced) parent; the next full run replays those pages and
// never writes the parent's rows.
func TestRegressStreamsSubsetInterruptLosesParentRows(t *testing.T) {
	dir := t.TempDir()
	f := rvLoad(t, dir, "p.yaml", `
version: 1
name: p
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  apps:
    request: {path: /apps}
  envs:
    for_each: apps
    request:
      path: /apps/${ parent.id }/envs
tables:
  apps: {from: apps, primary_key: [id]}
  envs: {from: envs, row: '{app: $parent.id, id}', primary_key: [app, id]}
`)
	var cancel context.CancelFunc
	var armed bool
	var mu sync.Mutex
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/apps" {
			json.NewEncoder(w).Encode([]any{map[string]any{"id": "a"}, map[string]any{"id": "b"}, map[string]any{"id": "c"}})
			return
		}
		mu.Lock()
		if armed && strings.Contains(r.URL.Path, "/c/") {
			time.Sleep(100 * time.Millisecond)
			cancel()
		}
		mu.Unlock()
		json.NewEncoder(w).Encode([]any{map[string]any{"id": "dev"}})
	}))
	defer api.Close()
	db := filepath.Join(dir, "p.db")
	ctx, c := context.WithCancel(t.Context())
	cancel = c
	armed = true
	_, err := engine.Run(ctx, f, rvCfg(t, f, api.URL), engine.RunOptions{Dest: "sqlite:" + db, Streams: []string{"envs"}})
	t.Logf("interrupted --streams envs run: %v", err)
	mu.Lock()
	armed = false
	mu.Unlock()
	if _, err := engine.Run(t.Context(), f, rvCfg(t, f, api.URL), engine.RunOptions{Dest: "sqlite:" + db}); err != nil {
		t.Fatalf("full run: %v", err)
	}
	if n := rvCount(t, db, `SELECT count(*) FROM "p__apps"`); n != 3 {
		t.Errorf("after a complete full run, apps has %d rows, want 3", n)
	}
}

// Finding: incremental cursors (kept across runs) made every later run look
// like a resume, so Port never deleted a stale entity again. With and
// without an incremental stream, a complete second run deletes the one
// entity removed at the source.
func TestRegressIncrementalKeepsPortDeletion(t *testing.T) {
	for name, events := range map[string]string{
		"incremental": `
  events:
    incremental: {cursor: .updated_at, initial: "1970"}
    request:
      path: /events
      query: {since: '${ cursor }'}`,
		"plain (control)": `
  events:
    request:
      path: /events`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "bp.json"), []byte(`[{"identifier": "item", "title": "Item", "schema": {"properties": {}, "required": []}, "relations": {}}]`), 0o644)
			f := rvLoad(t, dir, "k.yaml", `
version: 1
name: k
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  items:
    request: {path: /items}`+events+`
tables:
  events: {from: events, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - blueprint: item
      from: items
      identifier: .id
`)
			var mu sync.Mutex
			items := []any{}
			for i := range 5 {
				items = append(items, map[string]any{"id": fmt.Sprintf("i%d", i)})
			}
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if r.URL.Path == "/items" {
					json.NewEncoder(w).Encode(items)
					return
				}
				json.NewEncoder(w).Encode([]any{map[string]any{"id": 1, "updated_at": "2024"}})
			}))
			defer api.Close()
			pt := portsim.New(portsim.Options{RateLimit: -1})
			defer pt.Close()
			db := "sqlite:" + filepath.Join(dir, "k.db")
			po := engine.PortOptions{BaseURL: pt.URL(), ClientID: pt.ClientID(), ClientSecret: pt.ClientSecret()}
			if _, err := engine.Run(t.Context(), f, rvCfg(t, f, api.URL), engine.RunOptions{Dest: db, Port: po}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			items = items[:4] // i4 removed at the source
			mu.Unlock()
			res, err := engine.Run(t.Context(), f, rvCfg(t, f, api.URL), engine.RunOptions{Dest: db, Port: po})
			if err != nil {
				t.Fatal(err)
			}
			if res.Dest.Port.Deleted != 1 {
				t.Errorf("complete, un-interrupted second run deleted %d stale entities, want 1 (catalog: %d)", res.Dest.Port.Deleted, len(pt.Catalog().Entities))
			}
		})
	}
}

// Finding: Port entities are buffered until Finish, which is skipped on an
// interrupt, while the table checkpoints of the same chains are committed;
// the resumed run skips those chains, so their entities never reach Port.
func TestRegressInterruptedMixedRunLosesPortEntities(t *testing.T) {
	dir := t.TempDir()
	src := pagedSpec + `port:
  blueprints: blueprints.json
  entities:
    - blueprint: item
      from: items
      identifier: '$roots.id + "-" + (.id | tostring)'
      properties:
        v: .v
`
	os.WriteFile(filepath.Join(dir, "blueprints.json"), []byte(`[{"identifier": "item", "title": "Item", "schema": {"properties": {"v": {"type": "string", "title": "V"}}, "required": []}, "relations": {}}]`), 0o644)
	f := rvLoad(t, dir, "paged.yaml", src)
	pt := portsim.New(portsim.Options{RateLimit: -1})
	defer pt.Close()
	db := "sqlite:" + filepath.Join(dir, "m.db")
	po := engine.PortOptions{BaseURL: pt.URL(), ClientID: pt.ClientID(), ClientSecret: pt.ClientSecret()}
	ctx, cancel := context.WithCancel(t.Context())
	api := pagedAPI(t, func(n int64) {
		if n == 18 {
			cancel()
		}
	})
	if _, err := engine.Run(ctx, f, rvCfg(t, f, api.URL), engine.RunOptions{Dest: db, Port: po}); err == nil {
		t.Fatal("interrupted run succeeded")
	}
	t.Logf("after interrupt: %d entities in Port", len(pt.Catalog().Entities))
	if _, err := engine.Run(t.Context(), f, rvCfg(t, f, api.URL), engine.RunOptions{Dest: db, Port: po}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if n := len(pt.Catalog().Entities); n != 60 {
		t.Errorf("after interrupt + successful resume, Port has %d entities, want 60", n)
	}
}

// Finding: a completed --streams run clears the checkpoints of every stream,
// including ones it did not run; append tables then get rows twice.
func TestRegressStreamsRunClearsOtherCheckpoints(t *testing.T) {
	dir := t.TempDir()
	f := rvLoad(t, dir, "paged.yaml", pagedSpec)
	db := filepath.Join(dir, "s.db")
	ctx, cancel := context.WithCancel(t.Context())
	api := pagedAPI(t, func(n int64) {
		if n == 18 {
			cancel()
		}
	})
	if _, err := engine.Run(ctx, f, rvCfg(t, f, api.URL), engine.RunOptions{Dest: "sqlite:" + db}); err == nil {
		t.Fatal("interrupted run succeeded")
	}
	before := rvCount(t, db, `SELECT count(*) FROM "paged__items_log"`)
	if _, err := engine.Run(t.Context(), f, rvCfg(t, f, api.URL), engine.RunOptions{Dest: "sqlite:" + db, Streams: []string{"roots"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Run(t.Context(), f, rvCfg(t, f, api.URL), engine.RunOptions{Dest: "sqlite:" + db}); err != nil {
		t.Fatal(err)
	}
	n := rvCount(t, db, `SELECT count(*) FROM "paged__items_log"`)
	d := rvCount(t, db, `SELECT count(*) FROM (SELECT parent, id FROM "paged__items_log" GROUP BY parent, id HAVING count(*) > 1)`)
	t.Logf("items_log: %d rows before, %d after; %d (parent,id) appended more than once", before, n, d)
	if n != 60 {
		t.Errorf("append table has %d rows after interrupted run + --streams roots + full run, want 60", n)
	}
}
