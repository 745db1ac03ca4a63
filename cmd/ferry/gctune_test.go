package main

import "testing"

// TestGCPercent: the next collection starts gcHeadroom above the live heap,
// within Go's default and 16 live heaps; before any collection the
// runtime's 4 MiB minimum counts as live.
func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 800},              // 4 MiB + 32 MiB
		{2 << 20, 800},        // below the minimum heap
		{8 << 20, 400},        // 8 + 32
		{16 << 20, 200},       // 16 + 32
		{64 << 20, 100},       // a big live heap: Go's default
		{1 << 30, 100},        // never below it
		{(32 << 20) / 5, 500}, // 6.4 MiB + 32 MiB
		{(4 << 20) + 1, 799},  // just above the minimum
	} {
		if got := gcPercent(tc.live); got != tc.want {
			t.Errorf("gcPercent(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
		}
	}
}
