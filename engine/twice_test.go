package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
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
func twiceSpec(name, mode string) string {
	return strings.Replace(dupSpec(name, mode, ""), "      path: /parents/${ parent.id }/items\n",
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

const twiceRows = `SELECT id || '|' || coalesce(a, '-') FROM %t ORDER BY id`

// TestParentListedTwiceReadsItsChildrenOnce: p1 listed twice, the same
// both times: its items are asked once, and under on_duplicate: fail none
// of them is a duplicate of itself.
func TestParentListedTwiceReadsItsChildrenOnce(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, twiceSpec(name, "fail"), "")
			query := use(fx)
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
			if got := query(twiceRows); !slices.Equal(got, []string{"a|1", "b|1", "c|1", "d|1"}) {
				t.Errorf("t = %v", got)
			}
			if len(res.Summary.Duplicates) != 0 {
				t.Errorf("duplicates = %+v, want none: one reading of p1's items", res.Summary.Duplicates)
			}
		})
	}
}

// TestParentListedTwiceFailedResumes: p1 listed twice, the same both times;
// its items' second page fails once. The run names that failure and no
// duplicate; the resumed run (p1 still listed twice) goes on after the
// committed page and ends the sync with exit 0.
func TestParentListedTwiceFailedResumes(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, twiceSpec(name, "fail"), "")
			query := use(fx)
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
			if got := query(twiceRows); !slices.Equal(got, []string{"a|1", "b|1", "c|1"}) {
				t.Errorf("t = %v", got)
			}
		})
	}
}

// TestParentListedTwiceChangedReadsAgain: p1 changed between its two
// listings (its second is its latest version). The children may have
// changed with it (the comment that moved a ticket's updated_at), so the
// second version's chain reads them again, afresh: its rows rewrite the
// first reading's, no duplicates of them, even under on_duplicate: fail.
func TestParentListedTwiceChangedReadsAgain(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, twiceSpec(name, "fail"), "")
			query := use(fx)
			fx.json("/parents", []any{parentV("p1", "1"), parentV("p2", "1"), parentV("p1", "2")})
			fx.twiceItems("/parents/p1/items", []any{rec("a", "1", nil), rec("b", "1", nil), rec("c", "1", nil)})
			fx.twiceItems("/parents/p2/items", []any{rec("d", "1", nil)})
			var logs bytes.Buffer
			res, err := fx.run(engine.RunOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			// Not silent: two records of one key would look the same.
			if n := strings.Count(logs.String(), "a parent record listed again with other values"); n != 1 || !strings.Contains(logs.String(), `parents="owners[id=p1]"`) {
				t.Errorf("the run warned %d times of p1 listed again changed, want once naming it:\n%s", n, logs.String())
			}
			reqs := fx.takeRequests()
			if n := strings.Count(strings.Join(reqs, " "), "/parents/p1/items"); n != 8 {
				t.Errorf("p1's items asked %d times (%v), want 8: read for each version", n, reqs)
			}
			if got := query(twiceRows); !slices.Equal(got, []string{"a|1", "b|1", "c|1", "d|1"}) {
				t.Errorf("t = %v", got)
			}
			if len(res.Summary.Duplicates) != 0 {
				t.Errorf("duplicates = %+v, want none: the second reading rewrites the first", res.Summary.Duplicates)
			}
		})
	}
}

// TestParentListedTwiceChangedResumes: p1 changed between its two
// listings, and one of its two readings fails. The partition's checkpoint
// and saved keys are the second reading's, which replaced the first: the
// resumed run (p1 now listed once, as changed) goes on after it, and meets
// no key of the first reading as a duplicate.
func TestParentListedTwiceChangedResumes(t *testing.T) {
	for _, tc := range []struct {
		name, fail string
		again      int // requests of p1's items in the resumed run
	}{
		{"first reading fails", "1@1", 0},
		{"second reading fails", "2@2", 2},
	} {
		for _, be := range dupBackends() {
			t.Run(be.name+"/"+tc.name, func(t *testing.T) {
				name, use := be.setup(t)
				fx := newFixture(t, twiceSpec(name, "fail"), "")
				query := use(fx)
				fx.json("/parents", []any{parentV("p1", "1"), parentV("p1", "2")})
				fx.twiceItems("/parents/p1/items", []any{rec("a", "1", nil), rec("b", "1", nil), rec("c", "1", nil)}, tc.fail)
				_, err := fx.run(engine.RunOptions{})
				re := runErrorOf(t, err)
				if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "500") {
					t.Fatalf("failures = %v, want the one request", re.Failures)
				}
				fx.json("/parents", []any{parentV("p1", "2")})
				fx.takeRequests()
				if _, err := fx.run(engine.RunOptions{}); err != nil {
					t.Fatalf("resumed run: %v", err)
				}
				reqs := fx.takeRequests()
				if n := strings.Count(strings.Join(reqs, " "), "/parents/p1/items"); n != tc.again {
					t.Errorf("resumed run asked p1's items %d times (%v), want %d", n, reqs, tc.again)
				}
				if got := query(twiceRows); !slices.Equal(got, []string{"a|1", "b|1", "c|1"}) {
					t.Errorf("t = %v", got)
				}
			})
		}
	}
}

// TestParentListedTwiceChangedRepeatIsDuplicate: the second reading
// rewrites the first's rows, but a record repeated within the second
// reading (a shifted page of its own) is a duplicate still: failed under
// on_duplicate: fail.
func TestParentListedTwiceChangedRepeatIsDuplicate(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, twiceSpec(name, "fail"), "")
			query := use(fx)
			fx.json("/parents", []any{parentV("p1", "1"), parentV("p1", "2")})
			byV := map[string][]any{
				"1": {rec("a", "1", nil), rec("b", "1", nil)},
				"2": {rec("a", "2", nil), rec("b", "2", nil), rec("a", "2", nil)},
			}
			fx.routes["/parents/p1/items"] = func(w http.ResponseWriter, r *http.Request) {
				var off int
				fmt.Sscan(r.URL.Query().Get("offset"), &off)
				recs := byV[r.URL.Query().Get("v")]
				json.NewEncoder(w).Encode(recs[min(off, len(recs)):min(off+1, len(recs))])
			}
			_, err := fx.run(engine.RunOptions{})
			re := runErrorOf(t, err)
			if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), `primary key "a" already written`) {
				t.Errorf("failures = %v, want the second reading's repeat of a", re.Failures)
			}
			if got := query(twiceRows); !slices.Equal(got, []string{"a|2", "b|2"}) {
				t.Errorf("t = %v, want the second reading's rows", got)
			}
		})
	}
}

// TestParentListedTwiceChangedKeepsItsKeys: the second reading of p1
// (changed) commits two pages, then fails. Its saved keys are those of
// both pages: the resumed run, whose next page repeats a (a shifted page),
// meets it as a duplicate, as one run would have.
func TestParentListedTwiceChangedKeepsItsKeys(t *testing.T) {
	for _, be := range dupBackends() {
		t.Run(be.name, func(t *testing.T) {
			name, use := be.setup(t)
			fx := newFixture(t, twiceSpec(name, "fail"), "")
			query := use(fx)
			fx.json("/parents", []any{parentV("p1", "1"), parentV("p1", "2")})
			fx.twiceItems("/parents/p1/items", []any{rec("a", "1", nil), rec("b", "1", nil), rec("c", "1", nil)}, "2@2")
			_, err := fx.run(engine.RunOptions{})
			runErrorOf(t, err)
			fx.json("/parents", []any{parentV("p1", "2")})
			fx.twiceItems("/parents/p1/items", []any{rec("a", "1", nil), rec("b", "1", nil), rec("a", "1", nil)})
			_, err = fx.run(engine.RunOptions{})
			re := runErrorOf(t, err)
			if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), `primary key "a" already written`) {
				t.Errorf("failures = %v, want a's repeat after the resumed checkpoint", re.Failures)
			}
			if got := query(twiceRows); !slices.Equal(got, []string{"a|1", "b|1", "c|1"}) {
				t.Errorf("t = %v", got)
			}
		})
	}
}

// TestParentListedTwiceChangedEntities: the second, changed reading of p1
// replaces the first's entities as it does its rows: under on_duplicate:
// fail none is a duplicate of the first reading's, and Port gets the
// latest; a repeat within the second reading still is one.
func TestParentListedTwiceChangedEntities(t *testing.T) {
	fx := newFixture(t, strings.Replace(twiceSpec("nl", "warn"), "\ntables:\n", `
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id, properties: {v: .a}, on_duplicate: fail}
tables:
`, 1), itemBlueprint)
	fx.json("/parents", []any{parentV("p1", "1"), parentV("p1", "2")})
	byV := map[string][]any{
		"1": {rec("a", "1", nil), rec("b", "1", nil)},
		"2": {rec("a", "2", nil), rec("b", "2", nil), rec("b", "2", nil)},
	}
	fx.routes["/parents/p1/items"] = func(w http.ResponseWriter, r *http.Request) {
		var off int
		fmt.Sscan(r.URL.Query().Get("offset"), &off)
		recs := byV[r.URL.Query().Get("v")]
		json.NewEncoder(w).Encode(recs[min(off, len(recs)):min(off+1, len(recs))])
	}
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), `identifier "b" already produced`) {
		t.Errorf("failures = %v, want the second reading's repeat of b alone", re.Failures)
	}
	for _, id := range []string{"a", "b"} {
		if e := fx.port.Entity("item", id); e == nil || fmt.Sprint(e["properties"].(map[string]any)["v"]) != "2" {
			t.Errorf("entity %s = %v, want the second reading's", id, e)
		}
	}
}
