package runner_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// batchGraphSpec reads, per env, a graph whose request carries the env's
// resources as a batch, paged.
const batchGraphSpec = `
version: 1
name: t
config:
  url: {required: true}
http: {base_url: "${ config.url }", retry: {attempts: 1}}
streams:
  envs:
    request: {path: /envs}
  resources:
    for_each: envs
    request:
      path: /envs/${ parent.id }/resources
  graph:
    for_each: envs
    batch: resources
    request:
      method: POST
      path: /envs/${ parent.id }/graph
      body_jq: '[$batch[] | .id]'
    records: .nodes[]
    paginate: {type: page, param: page, total_pages: .pages}
tables:
  graph: {from: graph, row: '{env: $parent.id, id}'}
`

// TestBatchResumedWithAChangedListReadsAfresh: a batch stream's answer
// belongs to the list it was sent. A run that failed after the first page
// of a parent's batch answer, resumed once the batch source has gained a
// record, must not go on at page 2 of the new list's answer: page 1 of
// that answer (here node a) would never be written, and the run would end
// without a failure.
func TestBatchResumedWithAChangedListReadsAfresh(t *testing.T) {
	var resumed atomic.Bool
	var pageOnes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/envs":
			fmt.Fprint(w, `[{"id": "dev"}]`)
		case "/envs/dev/resources":
			if resumed.Load() {
				fmt.Fprint(w, `[{"id": "a"}, {"id": "b"}, {"id": "c"}]`)
			} else {
				fmt.Fprint(w, `[{"id": "b"}, {"id": "c"}]`)
			}
		case "/envs/dev/graph":
			// One node per id posted, one per page, in the list's order.
			var ids []string
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &ids); err != nil || len(ids) == 0 {
				http.Error(w, "bad list", http.StatusBadRequest)
				return
			}
			page := 1
			if p := r.URL.Query().Get("page"); p != "" {
				page, _ = strconv.Atoi(p)
			}
			if page < 1 || page > len(ids) {
				http.Error(w, "no such page", http.StatusBadRequest)
				return
			}
			if page == 1 {
				pageOnes.Add(1)
			}
			if page == 2 && !resumed.Load() {
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, `{"nodes": [{"id": %q}], "pages": %d}`, ids[page-1], len(ids))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	first, again, _ := failThenResumeAfter(t, mustSpec(t, batchGraphSpec), srv.URL, "graph's page 2 to fail", func() { resumed.Store(true) })
	if n := pageOnes.Load(); n != 2 {
		t.Errorf("graph's page 1 asked %d times, want 2 (the resumed chain asks it again for the new list)", n)
	}
	written := append(first.field("graph", "id"), again.field("graph", "id")...)
	for _, id := range []string{"a", "b", "c"} {
		if !slices.Contains(written, id) {
			t.Errorf("node %s of the resumed sync's list never written (rows: first run %v, resumed run %v)", id, first.field("graph", "id"), again.field("graph", "id"))
		}
	}
}

// TestBatchResumedWithTheSameListGoesOn: a batch chain resumed with the
// list it was sent goes on after its committed pages.
func TestBatchResumedWithTheSameListGoesOn(t *testing.T) {
	var resumed atomic.Bool
	var pages []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/envs":
			fmt.Fprint(w, `[{"id": "dev"}]`)
		case "/envs/dev/resources":
			fmt.Fprint(w, `[{"id": "b", "tags": {"z": 1, "a": [2, 3]}}, {"id": "c"}]`)
		case "/envs/dev/graph":
			var ids []string
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &ids); err != nil || len(ids) == 0 {
				http.Error(w, "bad list", http.StatusBadRequest)
				return
			}
			p := r.URL.Query().Get("page")
			mu.Lock()
			pages = append(pages, p)
			mu.Unlock()
			if p == "2" && !resumed.Load() {
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			page, _ := strconv.Atoi(p)
			fmt.Fprintf(w, `{"nodes": [{"id": %q}], "pages": %d}`, ids[max(page, 1)-1], len(ids))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, again, _ := failThenResumeAfter(t, mustSpec(t, batchGraphSpec), srv.URL, "graph's page 2 to fail", func() { resumed.Store(true) })
	if got := again.field("graph", "id"); !slices.Equal(got, []string{"c"}) {
		t.Errorf("resumed run wrote %v, want [c] (b was committed by the first)", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"1", "2", "2"}; !slices.Equal(pages, want) {
		t.Errorf("graph pages asked %q, want %q", pages, want)
	}
}
