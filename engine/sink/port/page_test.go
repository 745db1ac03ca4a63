package port

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// TestUnownedPagesJoinInFewQueries pages the valid unowned identifiers of
// a blueprint whose first page fills but for one and whose every later
// entity Port already owns: each query of the owned listing must cover a
// stretch of candidates, not one (a query an entity cost 3.6 µs an
// entity at 100k, several times reading the run).
func TestUnownedPagesJoinInFewQueries(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	const entities, limit = 20000, 1000
	var es []spooled
	var owned []ownedRow
	var want []string
	for i := range entities {
		id := fmt.Sprintf("k%05d", i)
		es = append(es, spooled{bp: "app", id: id, data: []byte(`{}`)})
		if i < limit-1 || i == entities-1 {
			want = append(want, id)
		} else {
			owned = append(owned, ownedRow{id: id, owner: "us", body: []byte(`{}`)})
		}
	}
	if err := sp.put(ctx, es); err != nil {
		t.Fatal(err)
	}
	if err := sp.putOwned(ctx, "app", owned); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		ids, err := sp.idsAfter(ctx, "app", selValidUnowned, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > limit {
			t.Fatalf("a page of %d, limit %d", len(ids), limit)
		}
		if len(ids) == 0 {
			break
		}
		got = append(got, ids...)
		after = ids[len(ids)-1]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d unowned identifiers, want %d", len(got), len(want))
	}
	if sp.joins > 4*entities/limit {
		t.Errorf("%d queries of the owned listing for %d entities in pages of %d", sp.joins, entities, limit)
	}
}
