package runner_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
)

type discard struct{}

func (discard) Row(context.Context, sink.Row) error       { return nil }
func (discard) Entity(context.Context, sink.Entity) error { return nil }

// BenchmarkFanout: 100 parents × 10 children × 2 pages of grandchildren
// against a 20 ms API at concurrency 16. The figure that matters is
// bound-ratio: wall time over requests × latency / concurrency (1.00 is
// perfect; the target is ≤ 1.15).
func BenchmarkFanout(b *testing.B) {
	const latency = 20 * time.Millisecond
	const conc = 16
	s := apitest.New(apitest.Fixture{Latency: apitest.Duration{Duration: latency}, Routes: []apitest.Route{
		{Path: "/parents", Generate: &apitest.Generate{Count: 100, Item: map[string]any{"id": "p{i}"}}, Paginate: &apitest.Paging{Type: "none"}},
		{Path: "/parents/{p}/children", ItemsFunc: func(p map[string]string) []any {
			out := make([]any, 10)
			for i := range out {
				out[i] = map[string]any{"id": fmt.Sprintf("c%d", i)}
			}
			return out
		}},
		{Path: "/parents/{p}/children/{c}/items", Paginate: &apitest.Paging{Type: "page", Param: "page", Start: 1, PageSize: 5, TotalPagesPath: "total", Envelope: "items"},
			ItemsFunc: func(p map[string]string) []any {
				out := make([]any, 10)
				for i := range out {
					out[i] = map[string]any{"id": i, "parent": p["p"], "child": p["c"]}
				}
				return out
			}},
	}})
	defer s.Close()
	f, err := parseSpec(fmt.Sprintf(`
version: 1
name: bench
http: {base_url: %s, concurrency: %d}
streams:
  roots:
    request: {path: /parents}
  children:
    for_each: roots
    request:
      path: /parents/${ parent.id }/children
  items:
    for_each: children
    request:
      path: /parents/${ parents.roots.id }/children/${ parent.id }/items
    records: .items[]
    paginate: {type: page, param: page, total_pages: .total}
tables:
  items: {from: items, primary_key: [parent, child, id]}
`, s.URL(), conc))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var requests int
	var elapsed time.Duration
	for range b.N {
		before := len(s.Requests())
		pool := fetch.NewPool(fetch.Options{})
		r, err := runner.New(f, runner.Options{Pool: pool})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sum, err := r.Run(context.Background(), discard{})
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		requests += len(s.Requests()) - before
		if got := sum.Streams[2].Records; got != 100*10*10 {
			b.Fatalf("items = %d, want 10000", got)
		}
	}
	bound := time.Duration(requests) * latency / conc
	b.ReportMetric(float64(elapsed)/float64(bound), "bound-ratio")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
}
