package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestResumedChainPastCommittedPagesAppendsOnce: a chain its first run
// read whole (pages [a b] [c]) is read again by the resumed run to reach
// the records below (a's chain failed), and the server pages it otherwise
// now (a short page: [a] [b] [c]). Its third page lies past the two it
// committed, but c is on it: its partition committed c's row, so its
// append table does not get c again. (It did: exit 0, c twice in the log,
// which an uninterrupted run writes once. Found by TestChaosTree, seed 58.)
// The same for a parent stream read again for its children, and for a
// recursive stream.
func TestResumedChainPastCommittedPagesAppendsOnce(t *testing.T) {
	for name, kids := range map[string]string{
		"recursive": `
  items:
    for_each: roots
    recurse: {when: .has_children, max_depth: 5}
    request: {path: '/items/${ parent.id }'}
    records: .results[]
    paginate: {type: cursor, token: .next, param: after}`,
		"for_each": `
  items:
    for_each: roots
    request: {path: '/items/${ parent.id }'}
    records: .results[]
    paginate: {type: cursor, token: .next, param: after}
  subs:
    for_each: items
    request: {path: '/items/${ parent.id }'}
    records: .results[]
    paginate: {type: cursor, token: .next, param: after}`,
	} {
		t.Run(name, func(t *testing.T) { pastCommittedPages(t, kids) })
	}
}

func pastCommittedPages(t *testing.T, streams string) {
	fx := newFixture(t, specHead+`streams:
  roots:
    request: {path: /roots}`+streams+`
tables:
  items: {from: items, primary_key: [id]}
  items_log: {from: items, mode: append, row: '{id}'}
`, "")
	var run atomic.Int32
	run.Store(1)
	fx.json("/roots", []any{map[string]any{"id": "r"}})
	fx.mu.Lock()
	fx.routes["/items/r"] = func(w http.ResponseWriter, r *http.Request) {
		all := []string{"a", "b", "c"}
		lo, _ := strconv.Atoi(r.URL.Query().Get("after"))
		n := 2 // the first run's pages: [a b] [c]
		if run.Load() > 1 {
			n = 1 // the resumed run's: [a] [b] [c]
		}
		hi := min(lo+n, len(all))
		var items []any
		for _, id := range all[lo:hi] {
			items = append(items, map[string]any{"id": id, "has_children": id == "a"})
		}
		body := map[string]any{"results": items}
		if hi < len(all) {
			body["next"] = strconv.Itoa(hi)
		}
		json.NewEncoder(w).Encode(body)
	}
	fx.routes["/items/a"] = func(w http.ResponseWriter, r *http.Request) {
		if run.Load() == 1 {
			http.Error(w, "<html>down</html>", http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"results": []any{map[string]any{"id": "a1"}}})
	}
	for _, id := range []string{"b", "c", "a1"} {
		fx.routes["/items/"+id] = func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]any{"results": []any{}})
		}
	}
	fx.mu.Unlock()
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	run.Store(2)
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	want := []string{"a", "b", "c"}
	if got := fx.query(`SELECT id FROM "nl__items" WHERE id IN ('a', 'b', 'c') ORDER BY id`); !slices.Equal(got, want) {
		t.Errorf("items = %v, want %v", got, want)
	}
	if got := fx.query(`SELECT id FROM "nl__items_log" WHERE id IN ('a', 'b', 'c') ORDER BY id`); !slices.Equal(got, want) {
		t.Errorf("items_log = %v, want each of %v once", got, want)
	}
}

// TestReplacedExportJobAppendsOnce: an export job's first result file is
// committed, its second fails to download; by the resumed run the API no
// longer knows the job (404), so a new one is made and its results read
// from the start. Its first file holds the events the first job's did,
// unchanged: the append table does not get them again; an event changed
// since is appended, as a new version. (They were appended twice: exit 0,
// which an uninterrupted run never does. Found by TestChaosExport, seed
// 13.)
func TestReplacedExportJobAppendsOnce(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  events:
    async:
      create: {path: /exports, id: .id}
      poll:
        path: /exports/${ job.id }
        every: 1ms
        done: .status == "completed"
      download:
        urls: '[.files[].url]'
    response: {format: ndjson}
tables:
  events: {from: events, primary_key: [id]}
  events_log: {from: events, mode: append, row: '{id, v}'}
`, "")
	var jobs, run atomic.Int32
	run.Store(1)
	fx.mu.Lock()
	fx.routes["/exports"] = func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"id": "j%d"}`, jobs.Add(1))
	}
	for _, j := range []string{"j1", "j2"} {
		fx.routes["/exports/"+j] = func(w http.ResponseWriter, r *http.Request) {
			if j == "j1" && run.Load() > 1 {
				http.Error(w, `{"error": "no such export"}`, http.StatusNotFound)
				return
			}
			fmt.Fprintf(w, `{"status": "completed", "files": [{"url": "%s/files/%s/1"}, {"url": "%s/files/%s/2"}]}`, fx.api.URL, j, fx.api.URL, j)
		}
		fx.routes["/files/"+j+"/1"] = func(w http.ResponseWriter, r *http.Request) {
			c := "1"
			if j == "j2" {
				c = "2" // changed since the first job
			}
			fmt.Fprintf(w, "{\"id\": \"a\", \"v\": \"1\"}\n{\"id\": \"b\", \"v\": \"1\"}\n{\"id\": \"c\", \"v\": %q}\n", c)
		}
		fx.routes["/files/"+j+"/2"] = func(w http.ResponseWriter, r *http.Request) {
			if run.Load() == 1 {
				http.Error(w, "<html>down</html>", http.StatusBadGateway)
				return
			}
			w.Write([]byte(`{"id": "d", "v": "1"}` + "\n"))
		}
	}
	fx.mu.Unlock()
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	run.Store(2)
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := jobs.Load(); got != 2 {
		t.Fatalf("jobs made = %d, want 2 (the first gone)", got)
	}
	if got, want := fx.query(`SELECT id || '=' || v FROM "nl__events" ORDER BY id`), []string{"a=1", "b=1", "c=2", "d=1"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if got, want := fx.query(`SELECT id || '=' || v FROM "nl__events_log" ORDER BY id, v`), []string{"a=1", "b=1", "c=1", "c=2", "d=1"}; !slices.Equal(got, want) {
		t.Errorf("events_log = %v, want %v (each version once)", got, want)
	}
}

// TestFailedExportJobIsReplaced: as above, but by the resumed run the API
// says the job failed (async.poll.failed): that run fails, and the next
// one makes a new job and reads its results from the start. That job
// replaces the failed one's committed results as a job the API no longer
// knows is replaced: its changed c is written, not refused as a
// duplicate of the failed job's (on_duplicate: fail), and the append
// table gets each version once. (The failed job's checkpoint went back to
// the start, so the new job was taken for the first reading: "primary key
// c already written by this sync", and the stale c kept.)
func TestFailedExportJobIsReplaced(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  events:
    async:
      create: {path: /exports, id: .id}
      poll:
        path: /exports/${ job.id }
        every: 1ms
        done: .status == "completed"
        failed: .status == "failed"
      download:
        urls: '[.files[].url]'
    response: {format: ndjson}
tables:
  events: {from: events, primary_key: [id], on_duplicate: fail}
  events_log: {from: events, mode: append, row: '{id, v}'}
`, "")
	var jobs, run atomic.Int32
	run.Store(1)
	fx.mu.Lock()
	fx.routes["/exports"] = func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"id": "j%d"}`, jobs.Add(1))
	}
	for _, j := range []string{"j1", "j2"} {
		fx.routes["/exports/"+j] = func(w http.ResponseWriter, r *http.Request) {
			if j == "j1" && run.Load() > 1 {
				fmt.Fprint(w, `{"status": "failed"}`)
				return
			}
			fmt.Fprintf(w, `{"status": "completed", "files": [{"url": "%s/files/%s/1"}, {"url": "%s/files/%s/2"}]}`, fx.api.URL, j, fx.api.URL, j)
		}
		fx.routes["/files/"+j+"/1"] = func(w http.ResponseWriter, r *http.Request) {
			c := "1"
			if j == "j2" {
				c = "2" // changed since the first job
			}
			fmt.Fprintf(w, "{\"id\": \"a\", \"v\": \"1\"}\n{\"id\": \"b\", \"v\": \"1\"}\n{\"id\": \"c\", \"v\": %q}\n", c)
		}
		fx.routes["/files/"+j+"/2"] = func(w http.ResponseWriter, r *http.Request) {
			if run.Load() == 1 {
				http.Error(w, "<html>down</html>", http.StatusBadGateway)
				return
			}
			w.Write([]byte(`{"id": "d", "v": "1"}` + "\n"))
		}
	}
	fx.mu.Unlock()
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	run.Store(2)
	if _, err := fx.run(engine.RunOptions{}); err == nil || !strings.Contains(err.Error(), "export job j1 failed") {
		t.Fatalf("second run: %v, want the job failed", err)
	}
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("third run: %v", err)
	}
	if got := jobs.Load(); got != 2 {
		t.Fatalf("jobs made = %d, want 2 (the first failed)", got)
	}
	if got, want := fx.query(`SELECT id || '=' || v FROM "nl__events" ORDER BY id`), []string{"a=1", "b=1", "c=2", "d=1"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if got, want := fx.query(`SELECT id || '=' || v FROM "nl__events_log" ORDER BY id, v`), []string{"a=1", "b=1", "c=1", "c=2", "d=1"}; !slices.Equal(got, want) {
		t.Errorf("events_log = %v, want %v (each version once)", got, want)
	}
}

// TestPastCommittedPagesSharedKeyIsAppended: the rule above asks a keyed
// table whether a record past the committed pages was committed before;
// groups is keyed by a value every item shares (on_duplicate: warn, which
// saves no values), so d, new in the resumed run, was taken for the
// committed a, b and c and never appended (exit 0). Only a table whose key
// is one record's tells.
func TestPastCommittedPagesSharedKeyIsAppended(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  roots:
    request: {path: /roots}
  items:
    for_each: roots
    request: {path: '/items/${ parent.id }'}
    records: .results[]
    paginate: {type: cursor, token: .next, param: after}
  subs:
    for_each: items
    request: {path: '/subs/${ parent.id }'}
tables:
  groups: {from: items, primary_key: [g], on_duplicate: warn, row: '{g: "G"}'}
  items_log: {from: items, mode: append, row: '{id}'}
`, "")
	var run atomic.Int32
	run.Store(1)
	fx.json("/roots", []any{map[string]any{"id": "r"}})
	fx.mu.Lock()
	fx.routes["/items/r"] = func(w http.ResponseWriter, r *http.Request) {
		all, n := []string{"a", "b", "c"}, 2 // the first run's pages: [a b] [c]
		if run.Load() > 1 {
			all, n = []string{"a", "b", "c", "d"}, 1 // the resumed run's: [a] [b] [c] [d]
		}
		lo, _ := strconv.Atoi(r.URL.Query().Get("after"))
		hi := min(lo+n, len(all))
		var items []any
		for _, id := range all[lo:hi] {
			items = append(items, map[string]any{"id": id})
		}
		body := map[string]any{"results": items}
		if hi < len(all) {
			body["next"] = strconv.Itoa(hi)
		}
		json.NewEncoder(w).Encode(body)
	}
	fx.routes["/subs/a"] = func(w http.ResponseWriter, r *http.Request) {
		if run.Load() == 1 {
			http.Error(w, "<html>down</html>", http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode([]any{})
	}
	for _, id := range []string{"b", "c", "d"} {
		fx.routes["/subs/"+id] = func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode([]any{}) }
	}
	fx.mu.Unlock()
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	run.Store(2)
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := fx.query(`SELECT id FROM "nl__items_log" WHERE id = 'd'`); len(got) != 1 {
		t.Errorf("items_log holds d %d times, want once: d is new in the resumed run", len(got))
	}
}
