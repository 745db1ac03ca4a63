package runner_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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
