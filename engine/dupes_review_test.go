package engine_test

import (
	"encoding/json"
	"net/http"
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

// batchDupSpec sends env dev's resources to /envs/dev/graph in chunks of
// two; each id answers one node, into table t keyed by id.
func batchDupSpec(mode string) string {
	return specHead + `streams:
  envs:
    request: {path: /envs}
  resources:
    for_each: envs
    request: {path: '/envs/${ parent.id }/resources'}
  graph:
    for_each: envs
    batch: resources
    batch_size: 2
    request:
      method: POST
      path: '/envs/${ parent.id }/graph'
      body_jq: '[$batch[] | .id]'
    records: .nodes[]
tables:
  t: {from: graph, primary_key: [id], row: '{id, a}', columns: {id: STRING, a: STRING}, on_duplicate: ` + mode + `}
`
}

// graph serves /envs/dev with resources ids, and its graph: a node per id
// sent, with a = v; a list holding fail answers 500.
func (fx *fixture) graph(ids []string, v, fail string) {
	var res []any
	for _, id := range ids {
		res = append(res, map[string]any{"id": id})
	}
	fx.json("/envs", []any{map[string]any{"id": "dev"}})
	fx.json("/envs/dev/resources", res)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.routes["/envs/dev/graph"] = func(w http.ResponseWriter, r *http.Request) {
		var sent []string
		if err := json.NewDecoder(r.Body).Decode(&sent); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var nodes []any
		for _, id := range sent {
			if id == fail {
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			nodes = append(nodes, map[string]any{"id": id, "a": v})
		}
		json.NewEncoder(w).Encode(map[string]any{"nodes": nodes})
	}
}

// TestBatchChunksShiftedAreNoDuplicates: the first run commits chunk [a b]
// and fails on chunk [c d]. An item added at the front since shifts every
// chunk ([x a] [b c] [d]): each is read afresh, and b now comes from the
// second chunk. The first chunk's reading that saved b is replaced by this
// run's: b is written once in the sync's last reading, no duplicate.
func TestBatchChunksShiftedAreNoDuplicates(t *testing.T) {
	fx := newFixture(t, batchDupSpec("fail"), "")
	fx.graph([]string{"a", "b", "c", "d"}, "1", "c")
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	if got := fx.query(`SELECT id FROM "nl__t" ORDER BY id`); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after the failed run, t = %v, want the first chunk's", got)
	}
	fx.graph([]string{"x", "a", "b", "c", "d"}, "2", "")
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if len(res.Summary.Duplicates) != 0 {
		t.Errorf("duplicates = %+v, want none", res.Summary.Duplicates)
	}
	if got := fx.query(`SELECT id || '|' || a FROM "nl__t" ORDER BY id`); !slices.Equal(got, []string{"a|2", "b|2", "c|2", "d|2", "x|2"}) {
		t.Errorf("t = %v, want every item's new node", got)
	}
}

// TestMovedChildIsNoDuplicate: the first run commits p1's item k and fails
// on p2. Before the resumed run, k moved from p1 (changed, so read afresh,
// now empty) to p2. p1's new reading replaces the one that saved k, so p2's
// k is the sync's only one: no duplicate. (p1's chain is released before
// p2's, as its parent comes first.)
func TestMovedChildIsNoDuplicate(t *testing.T) {
	fx := newFixture(t, dupSpec("nl", "fail", ""), "")
	fx.json("/parents", []any{map[string]any{"id": "p1", "v": 1}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", []any{rec("k", "1", nil)})
	fx.pages("/parents/p2/items", nil, 0)
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	fx.json("/parents", []any{map[string]any{"id": "p1", "v": 2}, map[string]any{"id": "p2"}})
	fx.pages("/parents/p1/items", nil)
	fx.pages("/parents/p2/items", []any{rec("k", "2", nil)})
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if len(res.Summary.Duplicates) != 0 {
		t.Errorf("duplicates = %+v, want none", res.Summary.Duplicates)
	}
	if got := fx.query(`SELECT id || '|' || a FROM "nl__t" ORDER BY id`); !slices.Equal(got, []string{"k|2"}) {
		t.Errorf("t = %v, want p2's k", got)
	}
}

// TestChangedRecordDuplicatesItsOwnPartition: an incremental chain's pages
// are committed with A (key k) written and B (key k too) failed as its
// duplicate; C fails its mapping, so the resumed run replays the committed
// pages. B changed since (a later cursor): it is written whole, and is
// still a duplicate of A, which its partition saved, as in an
// uninterrupted run; taking it for a re-read of its own row would
// overwrite A silently.
func TestChangedRecordDuplicatesItsOwnPartition(t *testing.T) {
	src := strings.Replace(dupSpec("nl", "fail", ""), `row: '{id, a, b}'`,
		`row: '{id, a: (if .a == "bad" then error("bad a") else .a end), b}'`, 1)
	src = strings.Replace(src, "    paginate:", "    key: .rid\n    incremental: {cursor: .u, initial: \"0\"}\n    paginate:", 1)
	fx := newFixture(t, src, "")
	item := func(rid int, id, a, u string) map[string]any {
		r := ridRec(rid, id, a)
		r["u"] = u
		return r
	}
	fx.json("/parents", []any{map[string]any{"id": "p1"}})
	fx.pages("/parents/p1/items", []any{item(1, "k", "a1", "1"), item(2, "k", "b1", "1"), item(3, "z", "bad", "1")})
	_, err := fx.run(engine.RunOptions{})
	if re := runErrorOf(t, err); len(re.Failures) != 2 {
		t.Fatalf("first run failures = %v, want B's duplicate and C's mapping", re.Failures)
	}
	fx.pages("/parents/p1/items", []any{item(1, "k", "a1", "1"), item(2, "k", "b2", "5"), item(3, "z", "c", "1")})
	res, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "on_duplicate: fail") {
		t.Errorf("resumed run failures = %v, want B failed as a duplicate of A", re.Failures)
	}
	if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Count != 1 {
		t.Errorf("duplicates = %+v, want t: 1", res.Summary.Duplicates)
	}
	if got := fx.query(`SELECT id || '|' || coalesce(a, '-') FROM "nl__t" ORDER BY id`); !slices.Equal(got, []string{"k|a1", "z|c"}) {
		t.Errorf("t = %v, want A's row kept and C's written", got)
	}
}

// TestChangedRecordOnANewPageIsNoDuplicate: an incremental stream read in
// cursor order with keyset paging (after=<last cursor>). The first run
// commits A (u 1) and B (u 2), then fails on the next page. A changes
// (u 9) before the resumed run, which goes on after B and meets A's new
// version there. An uninterrupted run would have met A once: its own
// partition's saved key is rewritten, no duplicate, and A's change is
// written (failing it would let the cursor pass it: lost to later syncs).
//
// Known, not fixed: the saved keys do not say which record saved them, so
// A's new version cannot be told from another record of A's key (a real
// duplicate). Today it fails A's change (the report names it) and the
// cursor stays before it (TestFailedDuplicateHoldsTheCursor): the next
// sync writes it.
func TestChangedRecordOnANewPageIsNoDuplicate(t *testing.T) {
	t.Skip("known false positive: a resumed incremental chain's changed record meets its own saved key (see the comment)")
	fx := newFixture(t, specHead+`streams:
  items:
    incremental: {cursor: .u, initial: "0"}
    request:
      path: /items
      query: {since: '${ cursor }'}
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
tables:
  t: {from: items, primary_key: [id], row: '{id, a}', columns: {id: STRING, a: STRING}, on_duplicate: fail}
`, "")
	serve := func(items []map[string]any, failAfter string) {
		fx.mu.Lock()
		defer fx.mu.Unlock()
		fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
			after := r.URL.Query().Get("after")
			if after == failAfter {
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			for _, it := range items {
				if after == "" || it["u"].(string) > after {
					next := any(nil)
					if it["u"] != items[len(items)-1]["u"] {
						next = it["u"]
					}
					json.NewEncoder(w).Encode(map[string]any{"items": []any{it}, "next": next})
					return
				}
			}
			json.NewEncoder(w).Encode(map[string]any{"items": []any{}})
		}
	}
	item := func(id, a, u string) map[string]any { return map[string]any{"id": id, "a": a, "u": u} }
	serve([]map[string]any{item("a", "1", "1"), item("b", "1", "2"), item("c", "1", "3")}, "2")
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	if got := fx.query(`SELECT id || '|' || a FROM "nl__t" ORDER BY id`); !slices.Equal(got, []string{"a|1", "b|1"}) {
		t.Fatalf("after the failed run, t = %v", got)
	}
	serve([]map[string]any{item("b", "1", "2"), item("c", "1", "3"), item("a", "2", "9")}, "")
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if len(res.Summary.Duplicates) != 0 {
		t.Errorf("duplicates = %+v, want none", res.Summary.Duplicates)
	}
	if got := fx.query(`SELECT id || '|' || a FROM "nl__t" ORDER BY id`); !slices.Equal(got, []string{"a|2", "b|1", "c|1"}) {
		t.Errorf("t = %v, want A's change written", got)
	}
}

// TestFailedDuplicateHoldsTheCursor: a record failed as a duplicate
// (on_duplicate: fail) is not written, like a record whose mapping
// failed, so its chain's cursor stays before it: the next sync asks for
// it again. Moved past it, a change failed so (a record's new version
// met after its old one, say) was never written by any later sync.
func TestFailedDuplicateHoldsTheCursor(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    incremental: {cursor: .u, initial: "0"}
    request:
      path: /items
      query: {since: '${ cursor }'}
    records: .items[]
tables:
  t: {from: items, primary_key: [id], row: '{id, a}', columns: {id: STRING, a: STRING}, on_duplicate: fail}
`, "")
	item := func(id, a, u string) map[string]any { return map[string]any{"id": id, "a": a, "u": u} }
	fx.json("/items", map[string]any{"items": []any{item("a", "1", "1"), item("b", "1", "2"), item("a", "2", "3")}})
	_, err := fx.run(engine.RunOptions{})
	if re := runErrorOf(t, err); len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "on_duplicate: fail") {
		t.Fatalf("failures = %v, want a's second record failed as a duplicate", re.Failures)
	}
	if got := fx.query(`SELECT partition || '=' || value FROM "nl___ferry_state" WHERE stream = 'items@cursor'`); len(got) != 0 {
		t.Errorf("saved cursor %v after a failed duplicate, want none (the cursor stays before it)", got)
	}
}

// TestFailedDuplicateHoldsTheCursorResumed: a chain stopped after a
// record of it failed as a duplicate (a later page failed) keeps its
// cursor held when a run resumes it: the resumed chain saves the largest
// cursor of its committed pages too, which passed the failed record, so
// its new version was never written by any later sync. The next sync
// asks for it again, and once the source no longer holds both, writes it
// and moves the cursor.
func TestFailedDuplicateHoldsTheCursorResumed(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    incremental: {cursor: .u, initial: "0"}
    request:
      path: /items
      query: {since: '${ cursor }'}
    records: .items[]
    paginate: {type: page, param: page, start: 1, total_pages: .total}
tables:
  t: {from: items, primary_key: [id], row: '{id, a}', columns: {id: STRING, a: STRING}, on_duplicate: fail}
`, "")
	item := func(id, a, u string) map[string]any { return map[string]any{"id": id, "a": a, "u": u} }
	page1 := []any{item("a", "1", "1"), item("a", "2", "3")}
	page2 := http.StatusInternalServerError
	fx.mu.Lock()
	fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
		fx.mu.Lock()
		p1, p2 := page1, page2
		fx.mu.Unlock()
		switch r.URL.Query().Get("page") {
		case "1":
			json.NewEncoder(w).Encode(map[string]any{"total": 2, "items": p1})
		case "2":
			if p2 != http.StatusOK {
				http.Error(w, "down", p2)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"total": 2, "items": []any{item("b", "1", "2")}})
		}
	}
	fx.mu.Unlock()
	_, err := fx.run(engine.RunOptions{})
	if re := runErrorOf(t, err); len(re.Failures) != 2 {
		t.Fatalf("failures = %v, want a's second record (a duplicate) and page 2", re.Failures)
	}
	fx.mu.Lock()
	page2 = http.StatusOK
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := fx.query(`SELECT value FROM "nl___ferry_state" WHERE stream = 'items@cursor'`); len(got) != 0 {
		t.Errorf("saved cursor %v after the resumed chain, want none (the cursor stays before the failed duplicate)", got)
	}
	// The source keeps a's new version only: the next sync writes it.
	fx.mu.Lock()
	page1 = []any{item("a", "2", "3")}
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("next sync: %v", err)
	}
	if got := fx.query(`SELECT id || '=' || a FROM nl__t ORDER BY id`); !slices.Equal(got, []string{"a=2", "b=1"}) {
		t.Errorf("rows %v, want a=2 b=1 (a's new version written by the next sync)", got)
	}
	if got := fx.query(`SELECT value FROM "nl___ferry_state" WHERE stream = 'items@cursor'`); !slices.Equal(got, []string{`"3"`}) {
		t.Errorf("saved cursor %v, want \"3\" (moved once the duplicate is gone)", got)
	}
}

// TestFailedChildDuplicateHoldsTheParentCursorResumed: a child record
// failed as a duplicate holds its parent's cursor (cursorGate), and still
// does when a run resumes the parent's chain (stopped on a later page):
// the child's chain, done, is not read again, and its parent's cursor
// moved past the record whose child failed.
func TestFailedChildDuplicateHoldsTheParentCursorResumed(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  owners:
    incremental: {cursor: .u, initial: "0"}
    request:
      path: /owners
      query: {since: '${ cursor }'}
    records: .items[]
    paginate: {type: page, param: page, start: 1, total_pages: .total}
  items:
    for_each: owners
    request:
      path: /owners/${ parent.id }/items
    records: .items[]
tables:
  t: {from: items, primary_key: [id], row: '{id}', columns: {id: STRING}, on_duplicate: fail}
`, "")
	page2 := http.StatusInternalServerError
	fx.mu.Lock()
	fx.routes["/owners"] = func(w http.ResponseWriter, r *http.Request) {
		fx.mu.Lock()
		p2 := page2
		fx.mu.Unlock()
		switch r.URL.Query().Get("page") {
		case "1":
			json.NewEncoder(w).Encode(map[string]any{"total": 2, "items": []any{map[string]any{"id": "p1", "u": "1"}}})
		case "2":
			if p2 != http.StatusOK {
				http.Error(w, "down", p2)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"total": 2, "items": []any{map[string]any{"id": "p2", "u": "2"}}})
		}
	}
	fx.mu.Unlock()
	fx.json("/owners/p1/items", map[string]any{"items": []any{map[string]any{"id": "x"}, map[string]any{"id": "x"}}})
	fx.json("/owners/p2/items", map[string]any{"items": []any{map[string]any{"id": "y"}}})
	_, err := fx.run(engine.RunOptions{})
	if re := runErrorOf(t, err); len(re.Failures) != 2 {
		t.Fatalf("failures = %v, want p1's second item (a duplicate) and page 2", re.Failures)
	}
	fx.mu.Lock()
	page2 = http.StatusOK
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := fx.query(`SELECT value FROM "nl___ferry_state" WHERE stream = 'owners@cursor'`); len(got) != 0 {
		t.Errorf("saved owners cursor %v after the resumed chain, want none (it stays before p1, whose child failed)", got)
	}
}
