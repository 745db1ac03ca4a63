package runner_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sim/export"
	"github.com/ferry-etl/ferry/engine/spec"
)

// asyncRulesSpec is an incremental export job whose results are two
// files; a 404 on a result file is skipped by a response rule.
const asyncRulesSpec = `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  export:
    incremental: {cursor: .at, initial: "2026-01-01T00:00:00Z"}
    http:
      rules:
        - {status: 404, action: skip}
    async:
      create: {path: /exports, body: {since: "${ cursor }"}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "completed"}
      download: {urls: '[.files[].url]'}
    response: {format: ndjson}
tables:
  exported: {from: export, primary_key: [id]}
`

// failThenResume runs f against url twice: the first run must fail (what
// fails it is the test's API), the second resumes its sync and must not.
// It returns both runs' outputs and the second's summary.
func failThenResume(t *testing.T, f *spec.File, url, fails string) (first, again *stateful, sum *runner.Summary) {
	t.Helper()
	return failThenResumeAfter(t, f, url, fails, nil)
}

// failThenResumeAfter is failThenResume with between run between the two
// runs (the API changing, or recovering).
func failThenResumeAfter(t *testing.T, f *spec.File, url, fails string, between func()) (first, again *stateful, sum *runner.Summary) {
	t.Helper()
	first = newStateful()
	if _, err := runWith(t, f, runOpts{cfg: map[string]any{"url": url}}, first); err == nil {
		t.Fatalf("first run: no error, want %s", fails)
	}
	if between != nil {
		between()
	}
	again = newStateful()
	sum, err := runWith(t, f, runOpts{cfg: map[string]any{"url": url}, state: first.state}, again)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	return first, again, sum
}

// A result file a rule skipped was never read: the stream is incomplete,
// and the cursor must not move past it, though the files after it were
// read (their records are later than the skipped file's). Otherwise the
// next run's job starts after the skipped records, and they are lost.
func TestAsyncSkippedDownloadKeepsTheCursor(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
		{Path: "/exports/j1", Body: map[string]any{"status": "completed", "files": []any{
			map[string]any{"url": "/files/1"}, map[string]any{"url": "/files/2"},
		}}},
		{Path: "/files/1", Status: 404, Body: map[string]any{"message": "not found"}},
		{Path: "/files/2", RawBody: `{"id":"b","at":"2026-03-01T00:00:00Z"}` + "\n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := newStateful()
	sum, err := runWith(t, mustSpec(t, asyncRulesSpec), runOpts{cfg: map[string]any{"url": s.URL()}}, out)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := out.field("exported", "id"); len(got) != 1 || got[0] != "b" {
		t.Errorf("rows = %v, want the second file's", got)
	}
	if sum.Complete["export"] {
		t.Error("the stream is complete though a result file was skipped")
	}
	if cur, ok := out.state["export"+runner.WatermarkSuffix][""]; ok {
		t.Errorf("cursor saved past a skipped result file: %s", cur)
	}
}

// A resumed chain remembers the skip of a run before: the downloads it
// reads after resuming do not move the cursor past the skipped one.
func TestAsyncSkippedDownloadKeepsTheCursorWhenResumed(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
		{Path: "/exports/j1", Body: map[string]any{"status": "completed", "files": []any{
			map[string]any{"url": "/files/1"}, map[string]any{"url": "/files/2"}, map[string]any{"url": "/files/3"},
		}}},
		{Path: "/files/1", Status: 404, Body: map[string]any{"message": "not found"}},
		{Path: "/files/2", RawBody: `{"id":"b","at":"2026-03-01T00:00:00Z"}` + "\n"},
		// The first run fails here; the second reads it.
		{Path: "/files/3", RawBody: `{"id":"c","at":"2026-03-02T00:00:00Z"}` + "\n", Faults: []apitest.Fault{{Status: 400}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, again, _ := failThenResume(t, mustSpec(t, asyncRulesSpec), s.URL(), "the third file's 400")
	if got := again.field("exported", "id"); len(got) != 1 || got[0] != "c" {
		t.Errorf("second run rows = %v, want the third file's (resumed after the second)", got)
	}
	if n := s.Count("POST", "/exports"); n != 1 {
		t.Errorf("jobs created = %d, want 1 (the second run resumes the job)", n)
	}
	if cur, ok := again.state["export"+runner.WatermarkSuffix][""]; ok {
		t.Errorf("cursor saved past a result file the first run skipped: %s", cur)
	}
}

// The run that resumes a sync whose first run skipped a result file does
// not call the stream complete: a replace table fed by it would have the
// skipped file's rows, which this sync never saw, marked deleted.
func TestAsyncSkipBeforeResumeKeepsTheStreamIncomplete(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
		{Path: "/exports/j1", Body: map[string]any{"status": "completed", "files": []any{
			map[string]any{"url": "/files/1"}, map[string]any{"url": "/files/2"}, map[string]any{"url": "/files/3"},
		}}},
		{Path: "/files/1", Status: 404, Body: map[string]any{"message": "not found"}},
		{Path: "/files/2", RawBody: `{"id":"b"}` + "\n"},
		// The first run fails here; the second reads it.
		{Path: "/files/3", RawBody: `{"id":"c"}` + "\n", Faults: []apitest.Fault{{Status: 400}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := strings.Replace(asyncRulesSpec, `    incremental: {cursor: .at, initial: "2026-01-01T00:00:00Z"}
`, "", 1)
	src = strings.Replace(src, `body: {since: "${ cursor }"}`, `body: {}`, 1)
	src = strings.Replace(src, "primary_key: [id]}", "primary_key: [id], mode: replace}", 1)
	_, again, sum := failThenResume(t, mustSpec(t, src), s.URL(), "the third file's 400")
	if got := again.field("exported", "id"); len(got) != 1 || got[0] != "c" {
		t.Fatalf("second run rows = %v, want the third file's (resumed after the second)", got)
	}
	if sum.Complete["export"] || sum.Tables["exported"] {
		t.Errorf("the resumed run calls the stream complete (%v) and its table reconcilable (%v), though the sync skipped a file", sum.Complete["export"], sum.Tables["exported"])
	}
}

// A saved job the API no longer knows (404) is replaced by a new one even
// when a response rule turns 404s into "no data" (GitHub's README rule):
// the rule is about data, not about whether the job still exists. Treated
// as an answer about data, the job would fail every run until it expired.
func TestAsyncGoneJobWithA404Rule(t *testing.T) {
	s := export.New(export.Options{Events: 7, Polls: 1, RetryAfter: -1})
	defer s.Close()
	f := mustSpec(t, strings.Replace(exportSpec, "  auth: {type: bearer, token: \"${ config.token }\"}\n",
		"  auth: {type: bearer, token: \"${ config.token }\"}\n  rules:\n    - {status: 404, action: empty}\n", 1))
	gone := map[string]map[string]json.RawMessage{"export": {"": json.RawMessage(`{"pages":0,"next":{},"job":{"id":"exp_0404","created":"2026-02-01T00:00:00Z"}}`)}}
	out := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: simConfig(s), state: gone}, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if s.JobsMade() != 1 || len(out.rows["exported"]) != 7 {
		t.Errorf("jobs created = %d, rows %d; want 1 and 7", s.JobsMade(), len(out.rows["exported"]))
	}
}

// A resumed job whose fresh poll lists fewer result files than the run
// before had reached cannot be resumed: what the files it no longer lists
// held is unknown. Going on would end the chain with nothing more read and
// no error; a new job is made and read from its start instead, as for a
// job the API no longer knows.
func TestAsyncResumedJobWithFewerFiles(t *testing.T) {
	var polls atomic.Int32
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
		{Path: "/exports/j1", BodyFunc: func(map[string]string) any {
			files := []any{map[string]any{"url": "/files/1"}, map[string]any{"url": "/files/2"}, map[string]any{"url": "/files/3"}}
			if polls.Add(1) == 2 {
				files = files[:2] // the resumed job's first poll
			}
			return map[string]any{"status": "completed", "files": files}
		}},
		{Path: "/files/1", RawBody: `{"id":"a","at":"2026-03-01T00:00:00Z"}` + "\n"},
		{Path: "/files/2", RawBody: `{"id":"b","at":"2026-03-02T00:00:00Z"}` + "\n"},
		// The first run fails here; the second reads it.
		{Path: "/files/3", RawBody: `{"id":"c","at":"2026-03-03T00:00:00Z"}` + "\n", Faults: []apitest.Fault{{Status: 400}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, again, _ := failThenResume(t, mustSpec(t, asyncRulesSpec), s.URL(), "the third file's 400")
	if got := strings.Join(again.field("exported", "id"), ","); got != "a,b,c" {
		t.Errorf("second run rows = %s, want a new job's a,b,c", got)
	}
	if n := s.Count("POST", "/exports"); n != 2 {
		t.Errorf("jobs created = %d, want 2", n)
	}
}

// A skip or empty rule that matches the create or a poll answer fails the
// chain: there is no job to read, and "no records" from a job still
// running would end the stream early with the job's records unread.
func TestAsyncRulesOnCreateAndPollFail(t *testing.T) {
	for _, tc := range []struct{ name, action, failing string }{
		{"skip on create", "skip", "/exports"},
		{"empty on create", "empty", "/exports"},
		{"skip on poll", "skip", "/exports/j1"},
		{"empty on poll", "empty", "/exports/j1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			routes := []apitest.Route{
				{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
				{Path: "/exports/j1", Body: map[string]any{"status": "completed", "files": []any{map[string]any{"url": "/files/1"}}}},
				{Path: "/files/1", RawBody: `{"id":"a","at":"2026-03-01T00:00:00Z"}` + "\n"},
			}
			for i := range routes {
				if routes[i].Path == tc.failing {
					routes[i].Status, routes[i].Body = 404, map[string]any{"message": "not found"}
				}
			}
			s, err := apitest.Start(apitest.Fixture{Routes: routes})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			src := strings.Replace(asyncRulesSpec, "action: skip", "action: "+tc.action, 1)
			out := newStateful()
			sum, err := runWith(t, mustSpec(t, src), runOpts{cfg: map[string]any{"url": s.URL()}}, out)
			if err == nil || sum.Complete["export"] {
				t.Fatalf("run error %v, complete %v: want the chain failed", err, sum.Complete["export"])
			}
			if cur, ok := out.state["export"+runner.WatermarkSuffix][""]; ok {
				t.Errorf("cursor saved: %s", cur)
			}
		})
	}
}

// A result file the job listed that answers "no data" by a rule (a 404 read
// as no records, right for a child list, as GitHub's README rule) is no
// file without records: the job said it holds the export's results. Read
// as empty, its records were lost with exit 0, and the cursor moved past
// them on the later files' records. The chain fails instead, the cursor
// stays, and the next run asks the same job for the file again.
func TestAsyncEmptyDownloadFails(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
		{Path: "/exports/j1", Body: map[string]any{"status": "completed", "files": []any{
			map[string]any{"url": "/files/1"}, map[string]any{"url": "/files/2"},
		}}},
		// The first run's answer is a 404; the second's the file.
		{Path: "/files/1", RawBody: `{"id":"a","at":"2026-02-01T00:00:00Z"}` + "\n", Faults: []apitest.Fault{{Status: 404, Body: `{"message": "not found"}`}}},
		{Path: "/files/2", RawBody: `{"id":"b","at":"2026-03-01T00:00:00Z"}` + "\n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := mustSpec(t, strings.Replace(asyncRulesSpec, "action: skip", "action: empty", 1))
	first := newStateful()
	sum, err := runWith(t, f, runOpts{cfg: map[string]any{"url": s.URL()}}, first)
	if err == nil || !strings.Contains(err.Error(), "download 1 of 2: page 1: it is a result of the export job, which is done") {
		t.Fatalf("first run error = %v, want the first result file's chain failed", err)
	}
	if sum.Complete["export"] {
		t.Error("the stream is complete though a result file the job listed was read as empty")
	}
	if cur, ok := first.state["export"+runner.WatermarkSuffix][""]; ok {
		t.Errorf("cursor saved past a result file read as empty: %s", cur)
	}
	again := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: map[string]any{"url": s.URL()}, state: first.state}, again); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := strings.Join(again.field("exported", "id"), ","); got != "a,b" {
		t.Errorf("second run rows = %s, want a,b", got)
	}
	if n := s.Count("POST", "/exports"); n != 1 {
		t.Errorf("jobs created = %d, want 1 (the second run resumes the job)", n)
	}
}

// A resumed job whose fresh poll lists its result files in another order
// (an API listing them from an unordered set) cannot be resumed by
// position: the file now where the chain stopped may be one it read, and
// one it never read may be before it. Going on read the first file twice
// and never the second, with exit 0 and the cursor moved past it. A new
// job is made and read from its start instead, as for one listing fewer.
func TestAsyncResumedJobWithReorderedFiles(t *testing.T) {
	var polls atomic.Int32
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
		{Path: "/exports/j1", BodyFunc: func(map[string]string) any {
			n := polls.Add(1)
			// Presigned links: signed anew at every poll.
			files := []any{map[string]any{"url": fmt.Sprintf("/files/1?sig=%d", n)}, map[string]any{"url": fmt.Sprintf("/files/2?sig=%d", n)}}
			if n == 2 {
				files = []any{files[1], files[0]} // the resumed job's first poll
			}
			return map[string]any{"status": "completed", "files": files}
		}},
		{Path: "/files/1", RawBody: `{"id":"a","at":"2026-03-01T00:00:00Z"}` + "\n"},
		// The first run fails here; the second reads it.
		{Path: "/files/2", RawBody: `{"id":"b","at":"2026-03-02T00:00:00Z"}` + "\n", Faults: []apitest.Fault{{Status: 400}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, again, _ := failThenResume(t, mustSpec(t, asyncRulesSpec), s.URL(), "the second file's 400")
	if got := strings.Join(again.field("exported", "id"), ","); got != "a,b" {
		t.Errorf("second run rows = %s, want a new job's a,b", got)
	}
	if n := s.Count("POST", "/exports"); n != 2 {
		t.Errorf("jobs created = %d, want 2", n)
	}
}

// A resumed job whose links are signed anew at each poll (the same files
// in the same order) is resumed: the query is no part of a file's name.
func TestAsyncResumedJobWithResignedFiles(t *testing.T) {
	var polls atomic.Int32
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
		{Path: "/exports/j1", BodyFunc: func(map[string]string) any {
			n := polls.Add(1)
			return map[string]any{"status": "completed", "files": []any{map[string]any{"url": fmt.Sprintf("/files/1?sig=%d", n)}, map[string]any{"url": fmt.Sprintf("/files/2?sig=%d", n)}}}
		}},
		{Path: "/files/1", RawBody: `{"id":"a","at":"2026-03-01T00:00:00Z"}` + "\n"},
		{Path: "/files/2", RawBody: `{"id":"b","at":"2026-03-02T00:00:00Z"}` + "\n", Faults: []apitest.Fault{{Status: 400}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, again, _ := failThenResume(t, mustSpec(t, asyncRulesSpec), s.URL(), "the second file's 400")
	if got := strings.Join(again.field("exported", "id"), ","); got != "b" {
		t.Errorf("second run rows = %s, want b (resumed after the first file)", got)
	}
	if n := s.Count("POST", "/exports"); n != 1 {
		t.Errorf("jobs created = %d, want 1", n)
	}
}

// A parent listed again with other values (it changed while its list was
// read: a child added moved its updated_at) has its chains read afresh, as
// their children may have changed with it. An export job per parent is
// such a chain: the one made for the parent's first listing answers for
// the children as they were then, so the second reading makes its own job
// rather than reading that one again (it did: the child added was never
// read, and the parent's cursor passes it).
func TestAsyncParentListedAgainMakesANewJob(t *testing.T) {
	var jobs atomic.Int32
	polled := make(chan struct{})
	var once sync.Once
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/parents" && r.URL.Query().Get("page") == "1":
			w.Write([]byte(`[{"id": "p1", "v": 1}]`))
		case r.URL.Path == "/parents" && r.URL.Query().Get("page") == "2":
			// Listed again, changed, once the first listing's job is
			// being polled.
			select {
			case <-polled:
			case <-time.After(5 * time.Second):
			}
			w.Write([]byte(`[{"id": "p1", "v": 2}]`))
		case r.URL.Path == "/parents":
			w.Write([]byte(`[]`))
		case r.Method == http.MethodPost && r.URL.Path == "/parents/p1/exports":
			fmt.Fprintf(w, `{"id": "j%d"}`, jobs.Add(1))
		case strings.HasPrefix(r.URL.Path, "/exports/"):
			once.Do(func() { close(polled) })
			j := strings.TrimPrefix(r.URL.Path, "/exports/")
			fmt.Fprintf(w, `{"status": "done", "files": ["/files/%s"]}`, j)
		case r.URL.Path == "/files/j1":
			w.Write([]byte(`{"id": "c1"}` + "\n"))
		case r.URL.Path == "/files/j2":
			// The child added since.
			w.Write([]byte(`{"id": "c1"}` + "\n" + `{"id": "c2"}` + "\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  folders:
    request: {path: /parents, query: {page: 1}}
    paginate: {type: page, param: page}
  exports:
    for_each: folders
    async:
      create: {path: "/parents/${ parent.id }/exports", id: .id}
      poll: {path: "/exports/${ job.id }", every: 1ms, done: .status == "done"}
      download: {urls: .files}
    response: {format: ndjson}
tables:
  children: {from: exports, primary_key: [id], row: '{id, v: $parent.v}'}
`)
	out := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: map[string]any{"url": s.URL}}, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := jobs.Load(); n != 2 {
		t.Errorf("jobs created = %d, want 2 (one for each listing of the parent)", n)
	}
	var got []string
	for _, r := range out.rows["children"] {
		got = append(got, fmt.Sprint(r["id"], "@", r["v"]))
	}
	if !slices.Contains(got, "c2@2") {
		t.Errorf("children = %v, want c2 (added since the first listing) under the parent's second version", got)
	}
}

// A result file the job listed that answers 204 No Content is no file
// without records either: read as empty (a 204 is no records), its
// records were lost with exit 0, and the stream was complete, so a
// replace table marked their rows deleted. The chain fails instead.
func TestAsyncNoContentDownloadFails(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
		{Path: "/exports/j1", Body: map[string]any{"status": "completed", "files": []any{
			map[string]any{"url": "/files/1"}, map[string]any{"url": "/files/2"},
		}}},
		{Path: "/files/1", RawBody: `{"id":"a","at":"2026-02-01T00:00:00Z"}` + "\n", Faults: []apitest.Fault{{Status: 204}}},
		{Path: "/files/2", RawBody: `{"id":"b","at":"2026-03-01T00:00:00Z"}` + "\n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := mustSpec(t, asyncRulesSpec)
	first := newStateful()
	sum, err := runWith(t, f, runOpts{cfg: map[string]any{"url": s.URL()}}, first)
	if err == nil || !strings.Contains(err.Error(), "download 1 of 2: page 1: it is a result of the export job, which is done, so its 204 No Content") {
		t.Fatalf("first run error = %v, want the first result file's chain failed", err)
	}
	if sum.Complete["export"] {
		t.Error("the stream is complete though a result file the job listed answered 204")
	}
	again := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: map[string]any{"url": s.URL()}, state: first.state}, again); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := strings.Join(again.field("exported", "id"), ","); got != "a,b" {
		t.Errorf("second run rows = %s, want a,b", got)
	}
}
