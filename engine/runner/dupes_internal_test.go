package runner

import (
	"encoding/json"
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

// TestValueHash: an object's members hash in any order; a change anywhere,
// or a string for a number, changes the hash.
func TestValueHash(t *testing.T) {
	a := map[string]any{"id": "1", "n": json.Number("2"), "tags": []any{"x", "y"}, "in": map[string]any{"k": true, "z": nil}}
	b := map[string]any{"in": map[string]any{"z": nil, "k": true}, "tags": []any{"x", "y"}, "n": json.Number("2"), "id": "1"}
	if valueHash(a) != valueHash(b) {
		t.Error("the same object in another member order hashes differently")
	}
	for name, c := range map[string]map[string]any{
		"a string for a number": {"id": "1", "n": "2", "tags": []any{"x", "y"}, "in": map[string]any{"k": true, "z": nil}},
		"array order":           {"id": "1", "n": json.Number("2"), "tags": []any{"y", "x"}, "in": map[string]any{"k": true, "z": nil}},
		"nested value":          {"id": "1", "n": json.Number("2"), "tags": []any{"x", "y"}, "in": map[string]any{"k": false, "z": nil}},
		"a member renamed":      {"id": "1", "n": json.Number("2"), "tags": []any{"x", "y"}, "in": map[string]any{"k": true, "y": nil}},
		"values swapped":        {"id": "2", "n": json.Number("1"), "tags": []any{"x", "y"}, "in": map[string]any{"k": true, "z": nil}},
	} {
		if valueHash(c) == valueHash(a) {
			t.Errorf("%s: same hash", name)
		}
	}
}

// BenchmarkFingerprint: the collision check's cost a row (a 10-field row
// of the Humanitec shape): about 0.5 µs and no allocation, 2% of a row's
// CPU on the table path (BenchmarkTablePath: about 30 µs).
func BenchmarkFingerprint(b *testing.B) {
	row := map[string]any{"id": "workload-0001-frontend", "app_id": "app-00042", "env_id": "development", "org_id": "acme-corp",
		"created_at": "2026-11-03T10:11:12.123Z", "updated_at": "2026-11-04T10:11:12.123Z", "count": json.Number("42"),
		"profile": "humanitec/default-module", "spec": map[string]any{"containers": []any{"main", "sidecar"}}, "active": true}
	from := origin{stream: "workloads", partition: "apps[id=app-00042] > envs[id=development]"}
	b.ReportAllocs()
	for b.Loop() {
		_ = fingerprintOf(from, row)
	}
}

// TestReadingMarks: an entity mapping with an on_duplicate mode keeps its
// identifier with its reading's mark and no values; a mapping without
// one, into the same blueprint, meeting it from another stream is not
// told a collision by that mark (the values are unknown), as before marks.
// A reading that replaces an earlier one of its partition rewrites its
// keys; a repeat within it, or a key from another partition, is a
// duplicate still.
func TestReadingMarks(t *testing.T) {
	place := func() string { return "here" }
	bp := &target{kind: "blueprint", name: "item"}
	a := origin{stream: "a", partition: "p=1"}
	b := origin{stream: "b", partition: "p=2"}
	if got, _ := bp.seenAs("k", a, bp.reading(a, bp.fingerprintAs(DupWarn, a, map[string]any{"v": 1})), place, DupWarn); got != dupNone {
		t.Fatalf("first = %v", got)
	}
	if got, _ := bp.seenAs("k", b, bp.reading(b, bp.fingerprintAs("", b, map[string]any{"v": 2})), place, ""); got != dupWarn {
		t.Errorf("no on_duplicate meeting a warn mapping's key = %v, want dupWarn (its values unknown)", got)
	}

	tb := &target{kind: "table", name: "t", mode: DupFail}
	first := origin{stream: "s", partition: "p=1"}
	again := origin{stream: "s", partition: "p=1", again: 1}
	seen := func(key string, from origin) dupResult {
		got, _ := tb.seen(key, from, tb.reading(from, tb.fingerprint(from, map[string]any{"v": key})), place)
		return got
	}
	for _, c := range []struct {
		key  string
		from origin
		want dupResult
	}{
		{"x", first, dupNone},
		{"x", first, dupFail}, // a repeat within the first reading
		{"y", b, dupNone},     // another partition's key
		{"x", again, dupNone}, // the second reading rewrites the first's
		{"x", again, dupFail}, // a repeat within the second reading
		{"y", again, dupFail}, // another partition's key
		{"z", again, dupNone}, // new
		{"z", first, dupFail}, // the earlier reading does not replace a later one
	} {
		if got := seen(c.key, c.from); got != c.want {
			t.Errorf("%s from %+v = %v, want %v", c.key, c.from, got, c.want)
		}
	}
}
