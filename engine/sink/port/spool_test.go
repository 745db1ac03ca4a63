package port

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestSpoolReadsBackWhatWasPut puts entities of many sizes, some replaced
// by a later put and some invalid, over many puts in shuffled order, and
// reads every page back: each entity's JSON must be its latest, whole and
// alone, whether it was read with its neighbours in one piece of the data
// file or on its own (gaps wider than spanGap, one entity over spanMax).
func TestSpoolReadsBackWhatWasPut(t *testing.T) {
	ctx := context.Background()
	sp, err := openSpool(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	body := func(id string, version, size int) []byte {
		return fmt.Appendf(nil, `{"identifier":%q,"v":%d,"pad":%q}`, id, version, strings.Repeat("x", size))
	}
	var order []int
	for i := range 3000 {
		order = append(order, i)
	}
	for version := range 2 {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for start := 0; start < len(order); start += 256 {
			var es []spooled
			for _, i := range order[start:min(start+256, len(order))] {
				if version == 1 && i%3 != 0 {
					continue // only every third entity is replaced
				}
				id := fmt.Sprintf("e%05d", i)
				size := rng.IntN(200)
				switch {
				case i == 1234:
					size = spanMax + 10 // alone over the span limit
				case i%97 == 0:
					size = 2 * spanGap // too far from its neighbours
				}
				var data []byte
				if i%50 != 7 || version == 0 {
					data = body(id, version, size)
				}
				es = append(es, spooled{bp: "b", id: id, data: data})
				want[id] = data
			}
			if err := sp.put(ctx, es); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string][]byte{}
	after := ""
	for {
		rows, err := sp.rowsAfter(ctx, "b", selAll, after, pageSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			got[r.id] = r.data
		}
		after = rows[len(rows)-1].id
	}
	if len(got) != len(want) {
		t.Fatalf("read back %d entities, put %d", len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		if (w == nil) != (g == nil) || !bytes.Equal(g, w) {
			t.Fatalf("%s: read back %.80q, want %.80q", id, g, w)
		}
		if cap(g) != len(g) {
			t.Fatalf("%s: JSON read back shares its tail with the next entity's", id)
		}
	}
}

// TestAmongRemembersOnlyWhatHolds asks among the same questions before and
// after the answers change: a remembered yes must answer only its own
// question (produced is not written) and not outlive a put that replaced
// the entity with an invalid one.
func TestAmongRemembersOnlyWhatHolds(t *testing.T) {
	ctx := context.Background()
	sp, err := openSpool(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	ask := func(done bool, want bool) {
		t.Helper()
		got, err := sp.among(ctx, "b", done, []string{"x"})
		if err != nil {
			t.Fatal(err)
		}
		if got["x"] != want {
			t.Fatalf("among(done=%v) = %v, want %v", done, got["x"], want)
		}
	}
	if err := sp.put(ctx, []spooled{{bp: "b", id: "x", data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	ask(false, true)
	ask(false, true) // remembered
	ask(true, false) // produced, not yet written
	if err := sp.setState(ctx, "b", []string{"x"}, stateWritten, nil); err != nil {
		t.Fatal(err)
	}
	ask(true, true)
	if err := sp.put(ctx, []spooled{{bp: "b", id: "x"}}); err != nil {
		t.Fatal(err)
	}
	ask(false, false) // replaced by an invalid entity
}
