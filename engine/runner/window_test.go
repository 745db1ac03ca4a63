package runner_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
)

// blockingOutput holds the first row of one table until released, so the
// stream's releaser stops while its runs keep being fetched ahead.
type blockingOutput struct {
	table   string
	release chan struct{}
}

func (o blockingOutput) Row(ctx context.Context, r sink.Row) error {
	if r.Table == o.table {
		select {
		case <-o.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (blockingOutput) Entity(context.Context, sink.Entity) error { return nil }

// TestWindowFollowsConcurrency: a stream whose releaser is stuck has at
// most its window of runs fetched ahead (plus the one being released), and
// the window is twice the stream's HTTP concurrency (at least 8), not a
// fixed number: memory holds a few pages per stream, whatever the data.
func TestWindowFollowsConcurrency(t *testing.T) {
	for _, tc := range []struct {
		concurrency, window int
	}{{2, 8}, {6, 12}} {
		t.Run(fmt.Sprintf("concurrency=%d", tc.concurrency), func(t *testing.T) {
			var children atomic.Int64
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == "/owners" {
					var ids []string
					for i := range 100 {
						ids = append(ids, fmt.Sprintf(`{"id": "p%d"}`, i))
					}
					fmt.Fprint(w, "["+strings.Join(ids, ",")+"]")
					return
				}
				children.Add(1)
				fmt.Fprint(w, `[{"id": 1}]`)
			}))
			defer s.Close()
			f, err := parseSpec(fmt.Sprintf(`
version: 1
name: win
http: {base_url: %s, concurrency: %d}
streams:
  owners:
    request: {path: /owners}
  children:
    for_each: owners
    request:
      path: /owners/${ parent.id }/children
tables:
  children: {from: children, primary_key: [id]}
`, s.URL, tc.concurrency))
			if err != nil {
				t.Fatal(err)
			}
			r, err := runner.New(f, runner.Options{Pool: fetch.NewPool(fetch.Options{})})
			if err != nil {
				t.Fatal(err)
			}
			out := blockingOutput{table: "children", release: make(chan struct{})}
			done := make(chan error, 1)
			go func() {
				_, err := r.Run(context.Background(), out)
				done <- err
			}()
			want := int64(tc.window + 1) // the window, and the run being released
			deadline := time.Now().Add(10 * time.Second)
			for children.Load() < want && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			// Give runs beyond the window every chance to show up.
			time.Sleep(200 * time.Millisecond)
			if got := children.Load(); got != want {
				t.Errorf("child requests while the releaser is stuck = %d, want %d", got, want)
			}
			close(out.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := children.Load(); got != 100 {
				t.Errorf("child requests in all = %d, want 100", got)
			}
		})
	}
}
