package engine_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine"
)

const incrementalSpec = `
version: 1
name: inc
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  events:
    incremental:
      cursor: .updated_at
      initial: "1970-01-01T00:00:00Z"
    request:
      path: /events
      query:
        since: ${ cursor }
tables:
  events: {from: events, primary_key: [id]}
`

// eventAPI serves the events updated after ?since= (exclusive, as many
// APIs filter) and keeps the since values it was asked.
type eventAPI struct {
	mu     sync.Mutex
	events []map[string]any
	sinces []string
	srv    *httptest.Server
}

func newEventAPI(t *testing.T, events ...map[string]any) *eventAPI {
	a := &eventAPI{events: events}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		since := r.URL.Query().Get("since")
		a.sinces = append(a.sinces, since)
		out := []map[string]any{}
		for _, e := range a.events {
			if e["updated_at"].(string) > since {
				out = append(out, e)
			}
		}
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// loadIncremental writes spec to dir, loads it and resolves its config with url.
func loadIncremental(t *testing.T, dir, spec, url string) (*engine.Spec, *engine.Config) {
	t.Helper()
	path := filepath.Join(dir, "inc.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": url}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return f, cfg
}

// TestIncrementalReadsOnlyWhatChanged: the second run asks only for what
// changed since the largest cursor the first run saw; --full-refresh asks
// for everything again.
func TestIncrementalReadsOnlyWhatChanged(t *testing.T) {
	api := newEventAPI(t,
		map[string]any{"id": 1, "updated_at": "2024-01-01T00:00:00Z"},
		map[string]any{"id": 2, "updated_at": "2024-03-01T00:00:00Z"})
	dir := t.TempDir()
	f, cfg := loadIncremental(t, dir, incrementalSpec, api.srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "inc.db")
	runOnce := func(full bool) int64 {
		t.Helper()
		res, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest, FullRefresh: full})
		if err != nil {
			t.Fatal(err)
		}
		return res.Summary.Streams[0].Records
	}
	if n := runOnce(false); n != 2 {
		t.Fatalf("first run read %d records, want 2", n)
	}
	api.mu.Lock()
	api.events = append(api.events, map[string]any{"id": 3, "updated_at": "2024-05-01T00:00:00Z"})
	api.events[0]["updated_at"] = "2024-04-01T00:00:00Z" // record 1 changed too
	api.mu.Unlock()
	if n := runOnce(false); n != 2 {
		t.Fatalf("second run read %d records, want the 2 that changed", n)
	}
	if n := runOnce(false); n != 0 {
		t.Fatalf("third run read %d records, want none", n)
	}
	if n := runOnce(true); n != 3 {
		t.Fatalf("full refresh read %d records, want 3", n)
	}
	want := []string{"1970-01-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-05-01T00:00:00Z", "1970-01-01T00:00:00Z"}
	if diff := cmp.Diff(want, api.sinces); diff != "" {
		t.Errorf("since parameters (-want +got):\n%s", diff)
	}
}

// TestIncrementalLookbackOffsetWithoutColon: a cursor whose times write
// the offset without its colon (Salesforce's 2024-03-01T00:00:00.000+0000,
// Jira's +0200), which cursors compare as instants, takes a lookback too:
// the next run asks from that long before it (in RFC 3339, UTC), where it
// failed every chain as "not an RFC 3339 time".
func TestIncrementalLookbackOffsetWithoutColon(t *testing.T) {
	api := newEventAPI(t,
		map[string]any{"id": 1, "updated_at": "2024-01-01T00:00:00.000+0000"},
		map[string]any{"id": 2, "updated_at": "2024-03-01T01:00:00.000+0100"})
	dir := t.TempDir()
	spec := strings.Replace(incrementalSpec, "      initial: \"1970-01-01T00:00:00Z\"\n", "      initial: \"1970-01-01T00:00:00Z\"\n      lookback: 1h\n", 1)
	f, cfg := loadIncremental(t, dir, spec, api.srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "inc.db")
	for range 2 {
		if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"1970-01-01T00:00:00Z", "2024-02-29T23:00:00Z"}
	if d := cmp.Diff(want, api.sinces); d != "" {
		t.Errorf("since parameters (-want +got):\n%s", d)
	}
}

// TestIncrementalLookback: with lookback, a run asks from that long before
// the saved cursor, so records that came late (at the cursor's own time,
// which an API filtering since exclusively leaves out, or just before it)
// are read; and the saved cursor never moves back when every record read
// is older than it.
func TestIncrementalLookback(t *testing.T) {
	api := newEventAPI(t,
		map[string]any{"id": 1, "updated_at": "2024-01-01T00:00:00Z"},
		map[string]any{"id": 2, "updated_at": "2024-03-01T00:00:00Z"})
	dir := t.TempDir()
	spec := strings.Replace(incrementalSpec, "      initial: \"1970-01-01T00:00:00Z\"\n", "      initial: \"1970-01-01T00:00:00Z\"\n      lookback: 1h\n", 1)
	f, cfg := loadIncremental(t, dir, spec, api.srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "inc.db")
	run := func() {
		t.Helper()
		if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	api.mu.Lock()
	api.events = append(api.events,
		map[string]any{"id": 4, "updated_at": "2024-03-01T00:00:00Z"}, // late, at the cursor's time
		map[string]any{"id": 5, "updated_at": "2024-02-29T23:30:00Z"}) // late, just before it
	api.mu.Unlock()
	run()
	api.mu.Lock()
	api.events = api.events[3:] // only the late one before the cursor is still listed
	api.mu.Unlock()
	run()
	run()
	want := []string{"1970-01-01T00:00:00Z", "2024-02-29T23:00:00Z", "2024-02-29T23:00:00Z", "2024-02-29T23:00:00Z"}
	if d := cmp.Diff(want, api.sinces); d != "" {
		t.Errorf("since parameters (-want +got):\n%s", d)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "inc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ids []int
	rows, err := db.Query(`SELECT id FROM inc__events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if d := cmp.Diff([]int{1, 2, 4, 5}, ids); d != "" {
		t.Errorf("ids written (-want +got):\n%s", d)
	}
}
