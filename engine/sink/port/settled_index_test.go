package port

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// TestSettledIndexIsSizedToItsRun: a settled run's hash index lives until
// the spool closes, so it holds the run's entries only, not every entry of
// the runs it was merged from (a key put in many batches is one entry).
// The heap is measured: a slice cut with slices.Clip keeps its array.
func TestSettledIndexIsSizedToItsRun(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	const keys = 20000
	// Fewer batches than runFanout: settle merges them all, unmerged.
	for batch := range runFanout - 1 {
		var es []spooled
		for i := range keys {
			es = append(es, spooled{bp: "a", id: fmt.Sprintf("k%03d", i), data: fmt.Appendf(nil, `{"b":%d}`, batch)})
		}
		if err := sp.put(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sp.among(ctx, "a", false, []string{"k000"}); err != nil {
		t.Fatal(err)
	}
	rs := sp.runs["a"]
	if len(rs) != 1 || rs[0].index == nil {
		t.Fatalf("%d runs after settling, or no index", len(rs))
	}
	if n := len(rs[0].index.hashes); n != keys {
		t.Fatalf("the settled index has %d hashes, want %d", n, keys)
	}
	// What the index holds on the heap: about 12.5 bytes an entry, not 12
	// for each of the merged runs' runFanout-1 entries of a key.
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	rs[0].index = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	if held := int64(with.HeapAlloc) - int64(without.HeapAlloc); held > 5*13*keys { // unfixed: 12 bytes × (runFanout-1) an entry
		t.Fatalf("the settled index of %d entries holds %d bytes, want about %d", keys, held, 13*keys)
	}
}
