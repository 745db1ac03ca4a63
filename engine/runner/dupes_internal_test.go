package runner

import (
	"math/rand/v2"
	"testing"
)

// TestKeySet: across compactions the set answers exactly as a map would,
// and holds every key once in its sorted part.
func TestKeySet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s keySet
	want := map[uint64]bool{}
	// Few distinct values, so repeats fall on both sides of a compaction.
	for i := range 5*compactAt + 17 {
		h := rng.Uint64N(4 * compactAt)
		if i%3 == 0 {
			h = rng.Uint64() // mostly new keys, spread over the whole range
		}
		if got := s.add(h); got != !want[h] {
			t.Fatalf("add #%d (%d) = %v, want %v", i, h, got, !want[h])
		}
		want[h] = true
	}
	if s.len() != len(want) {
		t.Errorf("len = %d, want %d", s.len(), len(want))
	}
	if len(s.sorted) == 0 {
		t.Fatal("no compaction happened")
	}
	for i := 1; i < len(s.sorted); i++ {
		if s.sorted[i-1] >= s.sorted[i] {
			t.Fatalf("sorted part out of order at %d: %d, %d", i, s.sorted[i-1], s.sorted[i])
		}
	}
	for h := range want {
		if s.add(h) {
			t.Fatalf("%d: seen before, reported new", h)
		}
	}
}
