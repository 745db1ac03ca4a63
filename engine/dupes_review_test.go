package engine_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestRetriedRecordDuplicatesItsOwnPartition: p1's first page (A, key k)
// is committed; on its second page B (key k too) fails its table mapping.
// The resumed run replays the committed pages and tries B again, which now
// maps: B's row was never committed, so the k its partition saved is A's,
// and B is a duplicate of it, as in an uninterrupted run. Taking B for a
// re-read of its own row would overwrite A silently (on_duplicate: fail).
func TestRetriedRecordDuplicatesItsOwnPartition(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			// The items are told apart by rid (their children's checkpoints
			// and retries use it); the table's key is id, which a broken
			// mapping can give two of them.
			src := strings.Replace(dupSpec(name, "fail", ""), `row: '{id, a, b}'`,
				`row: '{id, a: (if .a == "bad" then error("bad a") else .a end), b}'`, 1)
			src = strings.Replace(src, "    paginate:", "    key: .rid\n    paginate:", 1)
			fx := newFixture(t, src, "")
			query := use(fx)
			fx.json("/parents", []any{map[string]any{"id": "p1"}})
			fx.pages("/parents/p1/items", []any{ridRec(1, "k", "a1"), ridRec(2, "k", "bad")})
			_, err := fx.run(engine.RunOptions{})
			if re := runErrorOf(t, err); len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "bad a") {
				t.Fatalf("first run failures = %v, want B's mapping", re.Failures)
			}
			const rows = `SELECT id || '|' || coalesce(a, '-') FROM %t ORDER BY id`
			if got := query(rows); !slices.Equal(got, []string{"k|a1"}) {
				t.Fatalf("after the first run, t = %v, want A's row", got)
			}
			fx.pages("/parents/p1/items", []any{ridRec(1, "k", "a1"), ridRec(2, "k", "b2")})
			res, err := fx.run(engine.RunOptions{})
			re := runErrorOf(t, err)
			if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "on_duplicate: fail") {
				t.Errorf("resumed run failures = %v, want B failed as a duplicate of A", re.Failures)
			}
			if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Count != 1 {
				t.Errorf("duplicates = %+v, want t: 1", res.Summary.Duplicates)
			}
			if got := query(rows); !slices.Equal(got, []string{"k|a1"}) {
				t.Errorf("t = %v, want A's row kept", got)
			}
		})
	}
}

// ridRec is an item told apart by its rid, whatever its id.
func ridRec(rid int, id, a string) map[string]any {
	r := rec(id, a, nil)
	r["rid"] = rid
	return r
}
