package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
)

// BenchmarkStreamingMemory runs the same spec over 20,000 and 200,000
// records (100-record pages, fanned out under 20 parents) and reports the
// peak live heap sampled during the run. Streaming means the peak does not
// grow with the record count: compare peak-heap-MB of the two sizes.
func BenchmarkStreamingMemory(b *testing.B) {
	for _, total := range []int{20_000, 200_000} {
		b.Run(fmt.Sprintf("records=%d", total), func(b *testing.B) {
			perParent := total / 20
			// A lazy server: each page is generated on demand, so the
			// process's heap measures the engine, not a simulator holding
			// every record.
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == "/parents" {
					var ps []map[string]any
					for i := range 20 {
						ps = append(ps, map[string]any{"id": fmt.Sprintf("p%d", i)})
					}
					json.NewEncoder(w).Encode(ps)
					return
				}
				after, _ := strconv.Atoi(r.URL.Query().Get("after"))
				page := map[string]any{}
				var items []map[string]any
				for i := after; i < min(after+100, perParent); i++ {
					items = append(items, map[string]any{"id": i, "parent": r.URL.Path, "payload": strings.Repeat("x", 300)})
				}
				page["items"] = items
				if after+100 < perParent {
					page["next"] = strconv.Itoa(after + 100)
				}
				json.NewEncoder(w).Encode(page)
			}))
			defer s.Close()
			f, err := parseSpec(fmt.Sprintf(`
version: 1
name: mem
http: {base_url: %s, concurrency: 4}
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
  items: {from: items, primary_key: [parent, id], row: '{parent, id, size: (.payload | length)}'}
`, s.URL))
			if err != nil {
				b.Fatal(err)
			}
			var peak atomic.Uint64
			for range b.N {
				runtime.GC()
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					var ms runtime.MemStats
					t := time.NewTicker(20 * time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							runtime.ReadMemStats(&ms)
							if ms.HeapAlloc > peak.Load() {
								peak.Store(ms.HeapAlloc)
							}
						}
					}
				}()
				r, err := runner.New(f, runner.Options{Pool: fetch.NewPool(fetch.Options{})})
				if err != nil {
					b.Fatal(err)
				}
				sum, err := r.Run(context.Background(), discard{})
				close(stop)
				<-done
				if err != nil {
					b.Fatal(err)
				}
				if got := sum.Streams[1].Records; got != int64(total) {
					b.Fatalf("records = %d, want %d", got, total)
				}
			}
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
		})
	}
}
