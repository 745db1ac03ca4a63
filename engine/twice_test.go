package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// A parent listed twice in one run (a page shifted by a record added at the
// front repeats the previous page's last one) names one partition of its
// children twice. The child chain is one question: asked once, its rows
// are no duplicates of themselves, and its checkpoint is one reading's.

// twiceSpec is dupSpec whose items request carries its parent's v, so the
// two readings of a parent that changed between its listings are told
// apart by the API.
func twiceSpec(mode string) string {
	return strings.Replace(dupSpec("nl", mode, ""), "      path: /parents/${ parent.id }/items\n",
		"      path: /parents/${ parent.id }/items\n      query:\n        v: ${ parent.v }\n", 1)
}

// twiceItems serves recs one a page (offset paging), failing with 500 the
// first time the reading of parent version v asks for offset off (each
// pair in fail: "v@off").
func (fx *fixture) twiceItems(path string, recs []any, fail ...string) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var mu sync.Mutex
	asked := map[string]int{}
	fx.routes[path] = func(w http.ResponseWriter, r *http.Request) {
		var off int
		fmt.Sscan(r.URL.Query().Get("offset"), &off)
		at := fmt.Sprintf("%s@%d", r.URL.Query().Get("v"), off)
		mu.Lock()
		asked[at]++
		n := asked[at]
		mu.Unlock()
		if n == 1 && slices.Contains(fail, at) {
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(recs[min(off, len(recs)):min(off+1, len(recs))])
	}
}

func parentV(id, v string) map[string]any { return map[string]any{"id": id, "v": v} }

const twiceRows = `SELECT id || '|' || coalesce(a, '-') FROM "nl__t" ORDER BY id`

// TestParentListedTwiceReadsItsChildrenOnce: p1 listed twice, the same
// both times: its items are asked once, and under on_duplicate: fail none
// of them is a duplicate of itself.
func TestParentListedTwiceReadsItsChildrenOnce(t *testing.T) {
	fx := newFixture(t, twiceSpec("fail"), "")
	fx.json("/parents", []any{parentV("p1", "1"), parentV("p2", "1"), parentV("p1", "1")})
	fx.twiceItems("/parents/p1/items", []any{rec("a", "1", nil), rec("b", "1", nil), rec("c", "1", nil)})
	fx.twiceItems("/parents/p2/items", []any{rec("d", "1", nil)})
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	reqs := fx.takeRequests()
	if n := strings.Count(strings.Join(reqs, " "), "/parents/p1/items"); n != 4 {
		t.Errorf("p1's items asked %d times (%v), want 4 (three pages and the empty one): one reading", n, reqs)
	}
	if got := fx.query(twiceRows); !slices.Equal(got, []string{"a|1", "b|1", "c|1", "d|1"}) {
		t.Errorf("t = %v", got)
	}
	if len(res.Summary.Duplicates) != 0 {
		t.Errorf("duplicates = %+v, want none: one reading of p1's items", res.Summary.Duplicates)
	}
}

// TestParentListedTwiceFailedResumes: p1 listed twice, the same both times;
// its items' second page fails once. The run names that failure and no
// duplicate; the resumed run (p1 still listed twice) goes on after the
// committed page and ends the sync with exit 0.
func TestParentListedTwiceFailedResumes(t *testing.T) {
	fx := newFixture(t, twiceSpec("fail"), "")
	fx.json("/parents", []any{parentV("p1", "1"), parentV("p1", "1")})
	fx.twiceItems("/parents/p1/items", []any{rec("a", "1", nil), rec("b", "1", nil), rec("c", "1", nil)}, "1@1")
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "page 2") {
		t.Fatalf("failures = %v, want p1's page 2 alone", re.Failures)
	}
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := fx.query(twiceRows); !slices.Equal(got, []string{"a|1", "b|1", "c|1"}) {
		t.Errorf("t = %v", got)
	}
}
