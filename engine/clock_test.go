package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// A run whose clock stands still (a `ferry test` case's now:, or a caller
// pinning RunOptions.Now) still waits out a 429's Retry-After in real
// time: the waits read a clock that moves from the run's time. With the
// run's clock itself the host's hold never ended (its end stays a second
// ahead of a clock that does not move) and the run hung.
func TestFrozenRunClockWaitsOutRetryAfter(t *testing.T) {
	var calls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, `{"results": [{"id": 1}, {"id": 2}]}`)
	}))
	defer api.Close()
	f, cfg := itemsSpec(t, api.URL, "")
	frozen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// Not a timing assert: a run that never ends would hold the test until
	// the package's timeout, with nothing said.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := engine.Run(ctx, f, cfg, engine.RunOptions{DryRun: true, Stdout: new(discard), Now: func() time.Time { return frozen }})
	if err != nil {
		t.Fatalf("run with a frozen clock after a 429 with Retry-After: %v (%d requests)", err, calls.Load())
	}
	if calls.Load() != 2 {
		t.Errorf("requests = %d, want the 429 and its retry", calls.Load())
	}
	if !res.Started.Equal(frozen) {
		t.Errorf("the run started at %v, want the run's clock %v", res.Started, frozen)
	}

}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// itemsSpec writes a spec that reads /items (records .results[]) from the
// API at url, then the streams more holds, and resolves its config.
func itemsSpec(t *testing.T, url, more string) (*engine.Spec, *engine.Config) {
	t.Helper()
	f := writeSpec(t, t.TempDir(), "items.yaml", `version: 1
name: items
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  items:
    request: {path: /items}
    records: .results[]
`+more)
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": url}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return f, cfg
}
