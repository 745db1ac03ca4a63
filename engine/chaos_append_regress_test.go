package engine_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestPageChainGrownAndCutShortFails is TestChaosAppend's seed 41008 (a
// record missing from an append table after a sync that exited 0) made
// deterministic. Page paging with a total, three items a page: the list
// grows by one item past the pages read (i4b at position 4), and a page
// after it comes short by one (i5, not i4b). The items the chain listed
// (6) reach the total the first page reported (6), but not the total the
// later pages report (7): positional paging lists every item of a list
// that grows past the read position, so a chain that lists fewer than
// the last total lost some. Taken as complete (the smallest total
// compared), the chain ended with i5 never read: not in the append table,
// exit 0. It fails instead (the next run reads it afresh), in one run and
// in a run resumed from a checkpoint taken before the list grew.
func TestPageChainGrownAndCutShortFails(t *testing.T) {
	for _, resumed := range []bool{false, true} {
		t.Run("resumed="+strconv.FormatBool(resumed), func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    records: .items[]
    paginate: {type: page, param: page, size: 3, size_param: per_page, total_pages: .total_pages, total: .total}
tables:
  items: {from: items, primary_key: [id], mode: replace, row: '{id}', columns: {id: STRING}}
  items_log: {from: items, mode: append, row: '{id}', columns: {id: STRING}}
`, "")
			var mu sync.Mutex
			list := []string{"i1", "i2", "i3", "i4", "i5", "i6"}
			fail2, cut := resumed, true
			fx.mu.Lock()
			fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				p, _ := strconv.Atoi(r.URL.Query().Get("page"))
				if p == 2 && fail2 {
					// The run stops after page 1, committed.
					fail2 = false
					http.Error(w, `{"message": "down"}`, http.StatusInternalServerError)
					return
				}
				lo, hi := min((p-1)*3, len(list)), min(p*3, len(list))
				ids := list[lo:hi]
				if p == 2 && cut {
					// A short page: the server gives two of its three.
					cut, ids = false, ids[:2]
				}
				if p == 1 && !resumed && !slices.Contains(list, "i4b") {
					// Added as the chain reads: past the pages read.
					defer func() { list = slices.Insert(list, 4, "i4b") }()
				}
				var items []any
				for _, id := range ids {
					items = append(items, map[string]any{"id": id})
				}
				json.NewEncoder(w).Encode(map[string]any{"items": items, "total": len(list), "total_pages": (len(list) + 2) / 3})
			}
			fx.mu.Unlock()
			opts := engine.RunOptions{ResumeWithin: -1}
			if resumed {
				if _, err := fx.run(opts); err == nil {
					t.Fatal("the run whose page 2 failed exited 0")
				}
				mu.Lock()
				list = slices.Insert(list, 4, "i4b") // between the runs
				mu.Unlock()
			}
			_, err := fx.run(opts)
			logged := fx.query(`SELECT id FROM nl__items_log ORDER BY id`)
			if err == nil {
				if !slices.Contains(logged, "i5") {
					t.Fatalf("the run exited 0 and items_log misses i5: %v", logged)
				}
				t.Fatalf("the run exited 0 (items_log %v); want the chain failed as short", logged)
			}
			if !strings.Contains(err.Error(), "paging ended after 6 items, but page 3 said the list holds 7") {
				t.Errorf("err = %v, want the chain short of the total page 3 reported", err)
			}
			// The next run reads the chain afresh: i5 is appended.
			if _, err := fx.run(opts); err != nil {
				t.Fatal(err)
			}
			logged = fx.query(`SELECT id FROM nl__items_log ORDER BY id`)
			if !slices.Contains(logged, "i5") {
				t.Errorf("items_log misses i5 after the chain was read afresh: %v", logged)
			}
			if got := fx.query(`SELECT id FROM nl__items WHERE NOT _ferry_deleted ORDER BY id`); strings.Join(got, ",") != "i1,i2,i3,i4,i4b,i5,i6" {
				t.Errorf("items %v, want the source's", got)
			}
		})
	}
}
