package engine_test

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

const movedChunkSpec = `
version: 1
name: moved
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  orgs:
    request: {path: /orgs}
  repos:
    for_each: orgs
    request: {path: "/orgs/${ parent.id }/repos"}
  details:
    for_each: orgs
    batch: repos
    batch_size: 1
    request:
      method: POST
      path: /details
      body_jq: '{ids: [$batch[] | .id]}'
    records: .items[]
tables:
  details: {from: details, primary_key: [id], row: '{id, lang}'}
`

// TestBatchItemMovedToAnotherChunkChanged: a resumed sync meets a record
// that an earlier run of the sync wrote from another chunk of the same
// parent's batch list (the list's order changed: an API listing repos by
// last push), with the values it has now. It is the same record read
// again on its parent's batch, changed since (README: new values from the
// same chain: the latest is kept), not a collision of two records: the
// run exits 0 with the new values. (It failed the run, saying "that
// record is lost". Found by TestChaosBatch, seed 57.)
func TestBatchItemMovedToAnotherChunkChanged(t *testing.T) {
	var mu sync.Mutex
	repos := []string{"a", "x"}
	lang := map[string]string{"a": "go1", "x": "go1"}
	o2down := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/orgs":
			io.WriteString(w, `[{"id": "o1"}, {"id": "o2"}]`)
		case "/orgs/o1/repos":
			var l []map[string]string
			for _, id := range repos {
				l = append(l, map[string]string{"id": id})
			}
			json.NewEncoder(w).Encode(l)
		case "/orgs/o2/repos":
			if o2down { // keeps the first run's sync open
				http.Error(w, "down", http.StatusInternalServerError)
				return
			}
			io.WriteString(w, `[]`)
		case "/details":
			var body struct{ IDs []string }
			b, _ := io.ReadAll(r.Body)
			json.Unmarshal(b, &body)
			items := []map[string]string{}
			for _, id := range body.IDs {
				items = append(items, map[string]string{"id": id, "lang": lang[id]})
			}
			json.NewEncoder(w).Encode(map[string]any{"items": items})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	f, cfg := loadIncremental(t, dir, movedChunkSpec, srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "moved.db")
	if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest}); err == nil {
		t.Fatal("first run: exit 0, want o2's repos to fail it")
	}
	mu.Lock()
	repos = []string{"x", "a"} // x moves from chunk 2 to chunk 1
	lang["x"] = "go2"
	o2down = false
	mu.Unlock()
	if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "moved.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got string
	if err := db.QueryRow(`SELECT lang FROM moved__details WHERE id = 'x'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "go2" {
		t.Errorf("details x: lang %q, want go2", got)
	}
}
