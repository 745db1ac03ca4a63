package engine_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestReplayedPageWritesRecordsNewToIt: a parent stream's committed page
// is read again by the resumed run (its children need the records), but
// it holds a record it did not hold when committed: the first run's page 1
// was short (a server cutting a page), the chain failed on page 2, and the
// resumed run's page 1 is whole, its next cursor past that record. The
// record is written. (It was read for its children only: exit 0, its row
// missing. Found by TestChaos, seed 77.) In an incremental chain, where
// the committed records a replay meets are noted for the duplicate check,
// the record is no duplicate of itself: under on_duplicate fail it is
// written, not failed.
func TestReplayedPageWritesRecordsNewToIt(t *testing.T) {
	for name, inc := range map[string]string{
		"full":                            "",
		"incremental, on_duplicate: fail": "\n    incremental: {cursor: .ts}",
	} {
		t.Run(name, func(t *testing.T) { replayedPageNewRecord(t, inc) })
	}
}

func replayedPageNewRecord(t *testing.T, inc string) {
	onDup := ""
	if inc != "" {
		onDup = ", on_duplicate: fail"
	}
	fx := newFixture(t, specHead+`streams:
  orgs:
    request: {path: /orgs}
    records: .items[]
    paginate: {type: cursor, token: .next, param: cursor}`+inc+`
  repos:
    for_each: orgs
    request: {path: '/orgs/${ parent.id }/repos'}
tables:
  orgs: {from: orgs, primary_key: [id]`+onDup+`}
  repos: {from: repos, primary_key: [id]}
`, "")
	all := []string{"o1", "o2", "o3"}
	var firstRun atomic.Bool
	firstRun.Store(true)
	fx.mu.Lock()
	fx.routes["/orgs"] = func(w http.ResponseWriter, r *http.Request) {
		lo, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		n := 2
		switch {
		case firstRun.Load() && lo == 0:
			n = 1 // a short page: o2 goes to the next one
		case firstRun.Load():
			http.Error(w, "<html>down</html>", http.StatusBadGateway)
			return
		}
		hi := min(lo+n, len(all))
		var items []any
		for i, id := range all[lo:hi] {
			// Cursors fall along the list: o2 is no later than o1, the
			// committed page's, so it did not change since.
			items = append(items, map[string]any{"id": id, "ts": 10 - lo - i})
		}
		body := map[string]any{"items": items}
		if hi < len(all) {
			body["next"] = strconv.Itoa(hi)
		}
		json.NewEncoder(w).Encode(body)
	}
	fx.mu.Unlock()
	for _, o := range all {
		fx.json("/orgs/"+o+"/repos", []any{map[string]any{"id": o + "-r"}})
	}
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	firstRun.Store(false)
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := fx.query(`SELECT id FROM "nl__orgs" ORDER BY id`); !slices.Equal(got, all) {
		t.Errorf("orgs = %v, want %v", got, all)
	}
	if got := fx.query(`SELECT id FROM "nl__repos" ORDER BY id`); !slices.Equal(got, []string{"o1-r", "o2-r", "o3-r"}) {
		t.Errorf("repos = %v", got)
	}
}
