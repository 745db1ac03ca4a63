package runner_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
)

// TestResumedChainKeepsABigNumberCursorExact: a chain resumed from its
// checkpoint keeps the largest cursor of its committed pages exactly. A
// nanosecond epoch is past float64's 2^53: read back as a float64, the
// checkpoint's 1761353400000000200 became ...256, later than the
// ...220 the resumed pages read, so the run saved ...300 (as encoding/json
// writes that float) and the next run asked past the records stamped in
// between.
func TestResumedChainKeepsABigNumberCursorExact(t *testing.T) {
	items := []any{
		map[string]any{"id": 1, "ts": json.Number("1761353400000000100")},
		map[string]any{"id": 2, "ts": json.Number("1761353400000000200")},
		map[string]any{"id": 3, "ts": json.Number("1761353400000000210")},
		map[string]any{"id": 4, "ts": json.Number("1761353400000000220")},
	}
	api := apitest.New(apitest.Fixture{Routes: []apitest.Route{{Path: "/events", Items: items,
		Paginate: &apitest.Paging{Type: "link", Param: "page", SizeParam: "per_page", PageSize: 2}}}})
	defer api.Close()
	f := mustSpec(t, `
version: 1
name: bigcur
http:
  base_url: `+api.URL()+`
streams:
  events:
    incremental:
      cursor: .ts
      initial: 0
    request:
      path: /events
      query: {per_page: 2, since: "${ cursor }"}
    paginate: {type: link_header}
tables:
  events: {from: events, primary_key: [id]}
`)
	run := func(state map[string]map[string]json.RawMessage) *checkpoints {
		t.Helper()
		r, err := runner.New(f, runner.Options{Pool: fetch.NewPool(fetch.Options{}), State: state})
		if err != nil {
			t.Fatal(err)
		}
		out := &checkpoints{collector: *newCollector()}
		if _, err := r.Run(t.Context(), out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	full := run(nil)
	if len(full.cps) == 0 || full.cps[0].Stream != "events" {
		t.Fatalf("no page checkpoint first: %v", full.cps)
	}
	resumed := run(map[string]map[string]json.RawMessage{"events": {"": full.cps[0].Value}})
	if got := resumed.field("events", "id"); strings.Join(got, ",") != "3,4" {
		t.Fatalf("resumed run read %v, want ids 3,4", got)
	}
	var saved []string
	for _, cp := range resumed.cps {
		if cp.Stream == "events"+runner.WatermarkSuffix {
			saved = append(saved, string(cp.Value))
		}
	}
	if strings.Join(saved, ",") != "1761353400000000220" {
		t.Errorf("saved cursor %v, want 1761353400000000220 (the largest read, exactly)", saved)
	}
}

// resumeAfterPage1 runs spec src (its API serving items two to a page,
// /events/{id}/details one each) in full, then again from the first
// checkpoint of stream events, and returns the resumed run.
func resumeAfterPage1(t *testing.T, items []any, src string) *checkpoints {
	t.Helper()
	api := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/events", Items: items, Paginate: &apitest.Paging{Type: "link", Param: "page", SizeParam: "per_page", PageSize: 2}},
		{Path: "/events/{id}/details", ItemsFunc: func(p map[string]string) []any { return []any{map[string]any{"id": p["id"]}} }},
	}})
	t.Cleanup(api.Close)
	f := mustSpec(t, strings.ReplaceAll(src, "BASE", api.URL()))
	run := func(state map[string]map[string]json.RawMessage) *checkpoints {
		t.Helper()
		r, err := runner.New(f, runner.Options{Pool: fetch.NewPool(fetch.Options{}), State: state})
		if err != nil {
			t.Fatal(err)
		}
		out := &checkpoints{collector: *newCollector()}
		if _, err := r.Run(t.Context(), out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	full := run(nil)
	for _, cp := range full.cps {
		if cp.Stream == "events" {
			return run(map[string]map[string]json.RawMessage{"events": {"": cp.Value}})
		}
	}
	t.Fatalf("no checkpoint of events: %v", full.cps)
	return nil
}

// TestResumedChainKeepsItsCommittedMax: the cursor a resumed chain saves is
// the largest of all its pages, those committed before it resumed too,
// though the pages it reads now hold older ones.
func TestResumedChainKeepsItsCommittedMax(t *testing.T) {
	items := []any{
		map[string]any{"id": 1, "ts": json.Number("300")},
		map[string]any{"id": 2, "ts": json.Number("200")},
		map[string]any{"id": 3, "ts": json.Number("100")},
		map[string]any{"id": 4, "ts": json.Number("150")},
	}
	resumed := resumeAfterPage1(t, items, `
version: 1
name: maxcur
http: {base_url: BASE}
streams:
  events:
    incremental: {cursor: .ts, initial: 0}
    request:
      path: /events
      query: {per_page: 2}
    paginate: {type: link_header}
tables:
  events: {from: events, primary_key: [id]}
`)
	if got := resumed.field("events", "id"); strings.Join(got, ",") != "3,4" {
		t.Fatalf("resumed run read %v, want ids 3,4", got)
	}
	var saved []string
	for _, cp := range resumed.cps {
		if cp.Stream == "events"+runner.WatermarkSuffix {
			saved = append(saved, string(cp.Value))
		}
	}
	if strings.Join(saved, ",") != "300" {
		t.Errorf("saved cursor %v, want 300 (of the page committed before)", saved)
	}
}

// TestReplayedPageWritesOnlyWhatChanged: a resumed chain with children
// reads its committed pages again for them; their records, no later than
// the largest cursor those pages held, are not written again.
func TestReplayedPageWritesOnlyWhatChanged(t *testing.T) {
	items := []any{
		map[string]any{"id": 1, "ts": json.Number("300")},
		map[string]any{"id": 2, "ts": json.Number("200")},
		map[string]any{"id": 3, "ts": json.Number("100")},
		map[string]any{"id": 4, "ts": json.Number("150")},
	}
	resumed := resumeAfterPage1(t, items, `
version: 1
name: replaycur
http: {base_url: BASE}
streams:
  events:
    incremental: {cursor: .ts, initial: 0}
    request:
      path: /events
      query: {per_page: 2}
    paginate: {type: link_header}
  details:
    for_each: events
    request: {path: "/events/${ parent.id }/details"}
tables:
  events: {from: events, primary_key: [id]}
  details: {from: details, primary_key: [id]}
`)
	if got := resumed.field("events", "id"); strings.Join(got, ",") != "3,4" {
		t.Errorf("resumed run wrote events %v, want 3,4 (1 and 2 unchanged on the replayed page)", got)
	}
}
