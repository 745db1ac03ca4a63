package engine_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/export"
)

// TestReplacedExportJobCutTwiceAppendsOnce: run 1 commits the first
// result file of export job exp_0001 (events 1-3, in events and in the
// append table log) and is cut in the second. Run 2 finds exp_0001 gone,
// creates exp_0002 and is cut before any of its results is committed
// (its poll fails). Run 3 reads a job whose results hold events 1-3
// again: exp_0002 itself, or (gone too) a third. The new job's first
// checkpoint dropped what exp_0001's had saved, so run 3 no longer knew
// events 1-3 were appended, and log got them twice (exit 0). The keys
// exp_0001's results saved are kept apart from the new job's: under
// on_duplicate: fail, run 3 meeting events 1-3 in a resumed chain fails
// none of them as a duplicate of exp_0001's rows.
func TestReplacedExportJobCutTwiceAppendsOnce(t *testing.T) {
	for _, tc := range []struct {
		secondGone bool
		onDup      string
	}{{false, ""}, {true, ""}, {false, ", on_duplicate: fail"}, {true, ", on_duplicate: fail"}} {
		secondGone := tc.secondGone
		name := "second-polled"
		if secondGone {
			name = "second-gone"
		}
		t.Run(name+tc.onDup, func(t *testing.T) {
			s := export.New(export.Options{Events: 6, Parts: 2, Polls: 0, RetryAfter: -1,
				Cut: func(path string, n int) int {
					if path == "/bucket/exports/exp_0001/part-1.ndjson.gz" && n == 1 {
						return 20
					}
					return 0
				}})
			defer s.Close()
			fx := newFixture(t, specHead+`  auth: {type: bearer, token: "`+s.Token()+`"}
streams:
  events:
    async:
      create: {path: /exports, body: {format: ndjson}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "completed"}
      download: {urls: '[.files[].url]'}
    response: {format: ndjson}
tables:
  events: {from: events, primary_key: [id], row: '{id}'`+tc.onDup+`}
  log: {from: events, mode: append, row: '{id, amount}'}
`, "")
			route := func(path string, h func(http.ResponseWriter, *http.Request)) {
				fx.mu.Lock()
				fx.routes[path] = h
				fx.mu.Unlock()
			}
			gone := func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no such export", http.StatusNotFound) }
			busy := func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusBadRequest) }
			for _, p := range []string{"/exports", "/exports/exp_0001", "/exports/exp_0002", "/exports/exp_0003"} {
				route(p, proxy(s.URL()))
			}
			runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
			if got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`); len(got) != 3 {
				t.Fatalf("log after run 1 = %v, want the first file's three events", got)
			}
			route("/exports/exp_0001", gone)
			route("/exports/exp_0002", busy)
			if _, err := fx.run(engine.RunOptions{}); err == nil {
				t.Fatal("run 2: want the poll of exp_0002 to fail it")
			}
			if got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`); len(got) != 3 {
				t.Fatalf("log after run 2 = %v, want run 1's three events (run 2 committed none)", got)
			}
			if secondGone {
				route("/exports/exp_0002", gone)
			} else {
				route("/exports/exp_0002", proxy(s.URL()))
			}
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatalf("run 3: %v", err)
			}
			want := []string{"evt_000001", "evt_000002", "evt_000003", "evt_000004", "evt_000005", "evt_000006"}
			if got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`); !slices.Equal(got, want) {
				t.Errorf("log = %v, want each event once", got)
			}
			if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, want) {
				t.Errorf("events = %v, want %v", got, want)
			}
		})
	}
}

// TestReplacedExportJobKeepsItsRetryList: in run 1, evt_000002's mapping
// to log fails in exp_0001's first file, committed (its row in events
// is), and the run is cut in the second. Run 2 replaces the job and is
// cut before any of the new job's results are committed; run 3, the
// mapping mended, reads the new job. Its first checkpoint kept the old
// job's retry list, so evt_000002, committed in events with the same
// values, is still appended to log.
func TestReplacedExportJobKeepsItsRetryList(t *testing.T) {
	s := export.New(export.Options{Events: 6, Parts: 2, Polls: 0, RetryAfter: -1,
		Cut: func(path string, n int) int {
			if path == "/bucket/exports/exp_0001/part-1.ndjson.gz" && n == 1 {
				return 20
			}
			return 0
		}})
	defer s.Close()
	spec := func(log string) string {
		return specHead + `  auth: {type: bearer, token: "` + s.Token() + `"}
streams:
  events:
    async:
      create: {path: /exports, body: {format: ndjson}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "completed"}
      download: {urls: '[.files[].url]'}
    response: {format: ndjson}
tables:
  events: {from: events, primary_key: [id], row: '{id, amount}'}
  log: {from: events, mode: append, row: '` + log + `'}
`
	}
	fx := newFixture(t, spec(`{id, amount: (if .id == "evt_000002" then error("not yet") else .amount end)}`), "")
	route := func(path string, h func(http.ResponseWriter, *http.Request)) {
		fx.mu.Lock()
		fx.routes[path] = h
		fx.mu.Unlock()
	}
	for _, p := range []string{"/exports", "/exports/exp_0001", "/exports/exp_0002"} {
		route(p, proxy(s.URL()))
	}
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	if got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`); !slices.Equal(got, []string{"evt_000001", "evt_000003"}) {
		t.Fatalf("log after run 1 = %v, want the first file's events but evt_000002", got)
	}
	route("/exports/exp_0001", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no such export", http.StatusNotFound) })
	route("/exports/exp_0002", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusBadRequest) })
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("run 2: want the poll of exp_0002 to fail it")
	}
	route("/exports/exp_0002", proxy(s.URL()))
	path := filepath.Join(fx.dir, "mended.yaml")
	if err := os.WriteFile(path, []byte(spec(`{id, amount}`)), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fx.spec = sp
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("run 3: %v", err)
	}
	want := []string{"evt_000001", "evt_000002", "evt_000003", "evt_000004", "evt_000005", "evt_000006"}
	if got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want each event once", got)
	}
}
