package runner_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
)

// TestTotalCannotVouchAcrossAResume: a chain resumed mid-list with a total
// whose checkpoint counted items but whose pages' items were not saved (a
// checkpoint written by a ferry from before they were) cannot tell a later page's repeat of one of them
// from a new item: the run says the total check cannot vouch for that
// chain, naming it, rather than pass it in silence. With the items saved,
// it says nothing.
func TestTotalCannotVouchAcrossAResume(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		items := []any{}
		for i := 3*(page-1) + 1; i <= min(3*page, 7); i++ {
			items = append(items, map[string]any{"id": i})
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items, "total_count": 7})
	}))
	defer srv.Close()
	f := mustSpec(t, `
version: 1
name: vouch
http: {base_url: `+srv.URL+`}
streams:
  repos:
    request: {path: /repos}
    records: .items[]
    paginate: {type: page, param: page, size: 3, size_param: per_page, total: .total_count}
tables:
  repos: {from: repos, primary_key: [id]}
`)
	state := map[string]map[string]json.RawMessage{"repos": {"": json.RawMessage(`{"pages": 1, "next": {"n": 2, "listed": 3, "total": 7, "total_page": 1}}`)}}
	withItems := &runner.SavedKeys{}
	withItems.Add(runner.ListedTable, "repos", "", []uint64{11, 12, 13})
	for _, tc := range []struct {
		name  string
		saved *runner.SavedKeys
		warn  bool
	}{{"items not saved", nil, true}, {"items saved", withItems, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			r, err := runner.New(f, runner.Options{Pool: fetch.NewPool(fetch.Options{}), State: state, SavedKeys: tc.saved, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			out := &checkpoints{collector: *newCollector()}
			if _, err := r.Run(t.Context(), out); err != nil {
				t.Fatalf("the resumed chain, 3 + 4 of 7: %v", err)
			}
			if got := len(out.rows["repos"]); got != 4 {
				t.Errorf("%d rows, want the 4 of pages 2 and 3", got)
			}
			warned := strings.Contains(logs.String(), "the total check cannot vouch for this chain") && strings.Contains(logs.String(), "stream=repos")
			if warned != tc.warn {
				t.Errorf("warned %v, want %v:\n%s", warned, tc.warn, logs.String())
			}
		})
	}
}

// TestListedSavedOnce: a resumed run that reads the committed pages again
// (a stream with children replays them, for their records) saves only the
// items no earlier run saved: those of the pages it replays are in the
// sync's state already, with the checkpoints that committed them. Saved
// again by every resumed run, a sync that fails often saved a copy of
// every item's hash per run (8 bytes an item each time) until it ended.
func TestListedSavedOnce(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/tags" {
			json.NewEncoder(w).Encode(map[string]any{"items": []any{}})
			return
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page == 3 && failing.Load() {
			http.Error(w, "busy", http.StatusBadGateway)
			return
		}
		items := []any{}
		for i := 3*(page-1) + 1; i <= min(3*page, 7); i++ {
			items = append(items, map[string]any{"id": i})
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items, "total_count": 7})
	}))
	defer srv.Close()
	f := mustSpec(t, `
version: 1
name: once
http: {base_url: `+srv.URL+`, retry: {attempts: 1}}
streams:
  repos:
    request: {path: /repos}
    records: .items[]
    paginate: {type: page, param: page, size: 3, size_param: per_page, total: .total_count}
  tags:
    for_each: repos
    request: {path: /tags}
    records: .items[]
tables:
  repos: {from: repos, primary_key: [id]}
  tags: {from: tags, primary_key: [id]}
`)
	run := func(state map[string]map[string]json.RawMessage, saved *runner.SavedKeys) *checkpoints {
		t.Helper()
		r, err := runner.New(f, runner.Options{Pool: fetch.NewPool(fetch.Options{}), State: state, SavedKeys: saved,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		out := &checkpoints{collector: *newCollector()}
		r.Run(t.Context(), out)
		return out
	}
	first := run(nil, nil)
	state := map[string]map[string]json.RawMessage{"repos": {}}
	saved := &runner.SavedKeys{}
	before := map[uint64]bool{}
	for _, cp := range first.cps {
		if cp.Stream == "repos" {
			state["repos"][cp.Partition] = cp.Value
			saved.Add(runner.ListedTable, cp.Stream, cp.Partition, cp.Listed)
			for _, h := range cp.Listed {
				before[h] = true
			}
		}
	}
	if len(before) != 6 {
		t.Fatalf("the first run saved %d items, want pages 1 and 2's 6", len(before))
	}
	failing.Store(false)
	var again []uint64
	for _, cp := range run(state, saved).cps {
		for _, h := range cp.Listed {
			if before[h] {
				again = append(again, h)
			}
		}
	}
	if len(again) != 0 {
		t.Errorf("the resumed run saved %d items the first run had saved, want none", len(again))
	}
}
