package engine_test

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

const incrementalBatchSpec = `
version: 1
name: incb
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  orgs:
    request: {path: /orgs}
  repos:
    for_each: orgs
    request: {path: "/orgs/${ parent.id }/repos"}
  changes:
    for_each: orgs
    batch: repos
    incremental: {cursor: .updated_at, initial: "1970-01-01T00:00:00Z"}
    request:
      method: POST
      path: /search
      query: {since: "${ cursor }"}
      body_jq: '{ids: [$batch[] | .id]}'
    records: .items[]
tables:
  changes: {from: changes, primary_key: [id], row: '{id, repo, updated_at}'}
`

// TestIncrementalBatchNewRepoThroughDestination: through a real
// destination, a repository added to an incremental batch stream's list
// has its changes older than the saved cursor written; a later sync of the
// same list asks from the cursor its run saved (the cursor and its list
// survive the destination's state).
func TestIncrementalBatchNewRepoThroughDestination(t *testing.T) {
	var mu sync.Mutex
	repos := []string{"r1"}
	changes := map[string][]string{"r1": {"2024-02-01T00:00:00Z"}}
	var searches []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/orgs":
			_, _ = io.WriteString(w, `[{"id": "o1"}]`)
		case "/orgs/o1/repos":
			var l []map[string]string
			for _, id := range repos {
				l = append(l, map[string]string{"id": id})
			}
			_ = json.NewEncoder(w).Encode(l)
		case "/search":
			var body struct{ IDs []string }
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &body)
			since := r.URL.Query().Get("since")
			searches = append(searches, since)
			items := []map[string]string{}
			for _, id := range body.IDs {
				for _, at := range changes[id] {
					if at > since {
						items = append(items, map[string]string{"id": id + "@" + at, "repo": id, "updated_at": at})
					}
				}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	f, cfg := loadIncremental(t, dir, incrementalBatchSpec, srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "incb.db")
	run := func() {
		t.Helper()
		if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	mu.Lock()
	repos = []string{"r1", "r2"}
	changes["r2"] = []string{"2024-01-15T00:00:00Z"} // before the saved cursor
	mu.Unlock()
	run()
	mu.Lock()
	changes["r1"] = append(changes["r1"], "2024-03-01T00:00:00Z")
	mu.Unlock()
	run()
	mu.Lock()
	got := slices.Clone(searches)
	mu.Unlock()
	if want := []string{"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2024-02-01T00:00:00Z"}; !slices.Equal(got, want) {
		t.Errorf("searches since %v, want %v (the list changed before the second)", got, want)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "incb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id FROM incb__changes ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"r1@2024-02-01T00:00:00Z", "r1@2024-03-01T00:00:00Z", "r2@2024-01-15T00:00:00Z"}; !slices.Equal(ids, want) {
		t.Errorf("rows %s, want %s", strings.Join(ids, " "), strings.Join(want, " "))
	}
}
