package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// ferry's garbage collector keeps a fixed allowance of garbage above the
// live heap, gcHeadroom, instead of Go's default of one live heap (GOGC=100).
// The live heap of a run is small (a window of pages per stream, the
// duplicate check), and at the default the collector costs more than the
// mapping; a fixed allowance makes it cheap while the live heap is small,
// and, unlike a larger GOGC, does not multiply the growth of the live heap:
// memory grows by what is live, not by five times that. GOGC in the
// environment turns the tuner off.
const gcHeadroom = 32 << 20

// GOGC stays within these bounds: at least Go's default (a large live heap,
// say Port entities held until the end, is collected as Go would), and at
// most 16 live heaps (a tiny live heap is not given a huge goal).
const (
	minGCPercent = 100
	maxGCPercent = 1600
)

// tuneGC starts the tuner: after every collection it sets GOGC from the
// live heap, so the next collection starts at about live + gcHeadroom.
func tuneGC() {
	t := &gcTuner{sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.tune()
	t.arm()
}

type gcTuner struct {
	sample []metrics.Sample
}

// sentinel is freed by the next collection; its finalizer re-tunes.
type sentinel struct{ _ *int }

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		t.tune()
		t.arm()
	})
}

func (t *gcTuner) tune() {
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	debug.SetGCPercent(gcPercent(live))
}

// gcPercent is the GOGC that puts the next collection gcHeadroom above a
// live heap of live bytes, within the bounds.
func gcPercent(live uint64) int {
	// Before the first collection the runtime counts a live heap of 4 MiB
	// (its minimum heap goal is 4 MiB × GOGC/100).
	live = max(live, 4<<20)
	return int(min(max(gcHeadroom*100/live, minGCPercent), maxGCPercent))
}
