package runner

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	"github.com/ferry-etl/ferry/engine/spec"
)

// BenchmarkLookupMemory reports the live heap a lookup holds per 1,000
// keys once frozen: user ids (36-byte UUIDs) to the sorted list of their 3
// group ids, the shape of a membership lookup.
func BenchmarkLookupMemory(b *testing.B) {
	for _, keys := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			for range b.N {
				before := liveHeap()
				l := &lookup{spec: &spec.Lookup{Name: "member_of", From: spec.Str{V: "members"}, Many: spec.Bool{V: true}}, single: map[string]any{}, multi: map[string][]any{}}
				for i := range keys {
					user := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
					for g := range 3 {
						if err := l.add(user, fmt.Sprintf("group-%d", (i+g)%500)); err != nil {
							b.Fatal(err)
						}
					}
				}
				ls := &lookups{byName: map[string]*lookup{"member_of": l}, order: []*lookup{l}, jq: map[string]any{}, expr: map[string]any{}}
				r := &Runner{streams: map[string]*stream{"members": {s: &spec.Stream{Name: "members"}, stat: &StreamStats{}}}, log: discard}
				ls.freeze(0, r, &failures{})
				after := liveHeap()
				runtime.KeepAlive(ls)
				b.ReportMetric(float64(after-before)/float64(keys)*1000/1024, "KiB/1000keys")
			}
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

var discard = slog.New(slog.DiscardHandler)
