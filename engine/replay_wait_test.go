package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// TestReplayDoesNotWaitForABudgetReset: a replay does not wait (there is
// no server to spare), so a recorded answer that spent the host's budget
// until a reset must not hold it either. The replay's sleep returns at
// once, but the waits read a clock that moved only in real time, so they
// looped until the reset (up to fetch.MaxServerWait) came.
func TestReplayDoesNotWaitForABudgetReset(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/items" {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", "1")
			fmt.Fprint(w, `{"results": [{"id": 1}]}`)
			return
		}
		fmt.Fprint(w, `{"results": [{"id": 2}]}`)
	}))
	defer api.Close()
	f, cfg := itemsSpec(t, api.URL, `  details:
    for_each: items
    request: {path: '/items/${ parent.id }'}
    records: .results[]
`)
	dir := filepath.Join(t.TempDir(), "cassette")
	if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: new(discard), Record: dir}); err != nil {
		t.Fatalf("record: %v", err)
	}
	// The recorded budget now resets in an hour.
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range files {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if i := strings.Index(s, `"X-Ratelimit-Reset": "1"`); i >= 0 {
			found = true
			s = strings.Replace(s, `"X-Ratelimit-Reset": "1"`, `"X-Ratelimit-Reset": "3600"`, 1)
			if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !found {
		t.Fatalf("no recorded exchange holds the budget's reset")
	}
	// Not a timing assert: a replay that waits for the reset would hold the
	// test for minutes, past this bound, with nothing said.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := engine.Run(ctx, f, cfg, engine.RunOptions{DryRun: true, Stdout: new(discard), Replay: dir,
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatalf("replay of a spent budget: %v", err)
	}
	if res.Summary == nil || len(res.Summary.Failures) != 0 {
		t.Fatalf("replay summary = %+v", res.Summary)
	}
}
