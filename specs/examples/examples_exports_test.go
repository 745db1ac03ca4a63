package examples_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/export"
)

// Exports: an export job (polled through Retry-After, here 0 so the test
// does not wait, gzip NDJSON parts on
// presigned storage links), a CSV report with quoted line breaks and an S3
// listing, read to exactly the simulator's data; the next run exports only
// what is new since the cursor.
func TestExports(t *testing.T) {
	t.Parallel()
	s := export.New(export.Options{Events: 95, Seed: 3, Objects: 23, Polls: 2, RetryAfter: -1})
	defer s.Close()
	sets := map[string]string{"api_url": s.URL(), "token": s.Token(), "storage_url": s.StorageURL()}
	rows, res, err := dryRun(t, "exports.yaml", sets)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	var ids []string
	for _, e := range s.Events() {
		ids = append(ids, e.ID)
	}
	if d := cmp.Diff(ids, column(rows["events"], "id")); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if d := cmp.Diff(ids, column(rows["report"], "id")); d != "" {
		t.Errorf("report (-want +got):\n%s", d)
	}
	notes := map[string]string{}
	for _, r := range rows["report"] {
		notes[r["id"].(string)] = r["note"].(string)
	}
	for _, e := range s.Events() {
		if notes[e.ID] != e.Note {
			t.Fatalf("report note of %s = %q, want %q", e.ID, notes[e.ID], e.Note)
		}
	}
	if got := len(rows["objects"]); got != 23 {
		t.Errorf("objects = %d, want 23", got)
	}
	if got := stream(res, "events"); got.Records != 95 || got.Errors != 0 {
		t.Errorf("events counters %+v", got)
	}
	for _, r := range s.Requests() {
		if r.Host == "storage" && r.Authorization {
			t.Errorf("the API token went to storage: %+v", r)
		}
	}

	// Real runs into SQLite: the second exports only what is new.
	f, err := engine.Load("exports.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: sets, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "x.db")
	for run := 1; run <= 2; run++ {
		res, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: "sqlite:" + db})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		want := map[int]int64{1: 95, 2: 1}[run] // the cursor's own event is exported again
		if got := stream(res, "events").Records; got != want {
			t.Errorf("run %d read %d events, want %d", run, got, want)
		}
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	var size string
	if err := conn.QueryRow(`SELECT count(*) FROM "exports__events"`).Scan(&n); err != nil || n != 95 {
		t.Errorf("events rows = %d (%v), want 95", n, err)
	}
	if err := conn.QueryRow(`SELECT typeof(size) || ':' || size FROM "exports__objects" ORDER BY key LIMIT 1`).Scan(&size); err != nil || !strings.HasPrefix(size, "integer:") {
		t.Errorf("objects size = %q (%v), want an integer", size, err)
	}
}
