package engine_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

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

// TestChangedAppendOnlyFieldPastCommittedPagesIsAppended: run 1 commits
// the pages of a and b and fails on the third. In the resumed run a has
// a new amount, which only log (an append table) maps, and records added
// before it pushed it past the committed pages. Its row in items (id
// only) is as committed, and appendedBefore, which judged by that row's
// key and fingerprint, took the new version for committed: never
// appended, exit 0. b, unchanged and pushed past them too, is appended
// once.
func TestChangedAppendOnlyFieldPastCommittedPagesIsAppended(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset}
tables:
  items: {from: items, primary_key: [id], row: '{id}'}
  log: {from: items, mode: append, row: '{id, amount}'}
`, "")
	item := func(id, amount string) map[string]any { return map[string]any{"id": id, "amount": amount} }
	fx.pages("/items", []any{item("a", "1"), item("b", "2"), item("c", "3")}, 2)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	fx.pages("/items", []any{item("z", "9"), item("y", "8"), item("a", "5"), item("b", "2"), item("c", "3")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	want := []string{"a:1", "a:5", "b:2", "c:3"}
	if got := fx.query(`SELECT id || ':' || amount FROM "nl__log" ORDER BY id, amount`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v: a's new amount is a new row", got, want)
	}
}

// TestStateWithoutRecordSumsTellsByKeys: a sync whose earlier run saved
// no record sums (an older ferry: its keys only) is resumed. b and c,
// committed and unchanged, pushed past the committed pages, are told by
// their keyed rows' keys and fingerprints, as before: appended once.
func TestStateWithoutRecordSumsTellsByKeys(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset}
tables:
  items: {from: items, primary_key: [id], row: '{id, amount}'}
  log: {from: items, mode: append, row: '{id, amount}'}
`, "")
	item := func(id, amount string) map[string]any { return map[string]any{"id": id, "amount": amount} }
	fx.pages("/items", []any{item("a", "1"), item("b", "2"), item("c", "3")}, 2)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	stripRecordSums(t, fx, "items")
	fx.pages("/items", []any{item("z", "9"), item("y", "8"), item("a", "1"), item("b", "2"), item("c", "3")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	want := []string{"a:1", "b:2", "c:3"}
	if got := fx.query(`SELECT id || ':' || amount FROM "nl__log" ORDER BY id, amount`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v: a and b were committed as they are (z and y, on the committed pages, are the next sync's)", got, want)
	}
}

// stripRecordSums takes the record sums (@appended) out of stream's saved
// keys, as a ferry from before them left its state; it fails the test
// when there were none.
func stripRecordSums(t *testing.T, fx *fixture, stream string) {
	t.Helper()
	where := `stream = '` + stream + `@keys' AND json_extract(value, '$."@appended"') IS NOT NULL`
	if got := fx.query(`SELECT count(*) FROM "nl___ferry_state" WHERE ` + where); slices.Equal(got, []string{"0"}) {
		t.Fatal("no record sums saved")
	}
	fx.query(`UPDATE "nl___ferry_state" SET value = json_remove(value, '$."@appended"') WHERE ` + where)
}

// TestReplacedExportJobKeepsItsRetryList: in run 1, evt_000002's mapping
// to log fails in exp_0001's first file, committed (its row in events
// is), and the run is cut in the second. Run 2 replaces the job and is
// cut before any of the new job's results are committed; run 3, the
// mapping mended, reads the new job. Its first checkpoint kept the old
// job's retry list, so evt_000002, committed in events with the same
// values, is still appended to log (state without record sums, where
// the keys alone would take it for committed there too).
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
	stripRecordSums(t, fx, "events")
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

// TestReplacedJobAppendsAChangedRecord: run 1 commits job j1's first
// result file (a and b) and fails on its second. Run 2 finds j1 gone and
// reads a new job, j2, whose results hold a with a new amount, which only
// log maps, b as it was, and c: a's new version is appended, b is not
// again. The partition's record sums, dropped with j1's checkpoint, still
// tell in the run that replaced the job.
func TestReplacedJobAppendsAChangedRecord(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  events:
    async:
      create: {path: /exports, body: {format: ndjson}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "completed"}
      download: {urls: '[.files[].url]'}
    response: {format: ndjson}
tables:
  events: {from: events, primary_key: [id], row: '{id}'}
  log: {from: events, mode: append, row: '{id, amount}'}
`, "")
	job := func(id string, files ...string) {
		fx.json("/exports", map[string]any{"id": id})
		var urls []any
		for _, f := range files {
			urls = append(urls, map[string]any{"url": fx.api.URL + f})
		}
		fx.json("/exports/"+id, map[string]any{"status": "completed", "files": urls})
	}
	job("j1", "/files/j1-1", "/files/j1-2")
	fx.raw("/files/j1-1", http.StatusOK, `{"id":"a","amount":"1"}`+"\n"+`{"id":"b","amount":"2"}`+"\n")
	fx.raw("/files/j1-2", http.StatusInternalServerError, "busy")
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	fx.raw("/exports/j1", http.StatusNotFound, `{"error": "no such export"}`)
	job("j2", "/files/j2-1")
	fx.raw("/files/j2-1", http.StatusOK, `{"id":"a","amount":"5"}`+"\n"+`{"id":"b","amount":"2"}`+"\n"+`{"id":"c","amount":"3"}`+"\n")
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("run 2: %v", err)
	}
	want := []string{"a:1", "a:5", "b:2", "c:3"}
	if got := fx.query(`SELECT id || ':' || amount FROM "nl__log" ORDER BY id, amount`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
}

// TestReplacedJobRetryListMetAppendedOnce: in run 1, b's mapping to log
// fails in job j1's first result file (its amount is bad then), which is
// committed, and the run fails on the second file. Run 2 finds j1 gone
// and reads j2, whose first file holds b mended: b is appended, and the
// run fails on j2's second file. Run 3 finds j2 gone too and reads j3.
// j1's retry list, kept in j2's checkpoints for the rest of the sync,
// named b, and it overrode b's saved record sum: b, appended by run 2 as
// it is now, was appended again, exit 0.
func TestReplacedJobRetryListMetAppendedOnce(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  events:
    async:
      create: {path: /exports, body: {format: ndjson}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "completed"}
      download: {urls: '[.files[].url]'}
    response: {format: ndjson}
tables:
  events: {from: events, primary_key: [id], row: '{id}'}
  log: {from: events, mode: append, row: '{id, amount: (if .amount == "bad" then error("bad amount") else .amount end)}'}
`, "")
	job := func(id string, files ...string) {
		fx.json("/exports", map[string]any{"id": id})
		var urls []any
		for _, f := range files {
			urls = append(urls, map[string]any{"url": fx.api.URL + f})
		}
		fx.json("/exports/"+id, map[string]any{"status": "completed", "files": urls})
	}
	job("j1", "/files/j1-1", "/files/j1-2")
	fx.raw("/files/j1-1", http.StatusOK, `{"id":"a","amount":"1"}`+"\n"+`{"id":"b","amount":"bad"}`+"\n")
	fx.raw("/files/j1-2", http.StatusInternalServerError, "busy")
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	fx.raw("/exports/j1", http.StatusNotFound, `{"error": "no such export"}`)
	job("j2", "/files/j2-1", "/files/j2-2")
	fx.raw("/files/j2-1", http.StatusOK, `{"id":"a","amount":"1"}`+"\n"+`{"id":"b","amount":"2"}`+"\n")
	fx.raw("/files/j2-2", http.StatusInternalServerError, "busy")
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	if got := fx.query(`SELECT id || ':' || amount FROM "nl__log" ORDER BY id, amount`); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Fatalf("log after run 2 = %v, want a and b once", got)
	}
	fx.raw("/exports/j2", http.StatusNotFound, `{"error": "no such export"}`)
	job("j3", "/files/j3-1")
	fx.raw("/files/j3-1", http.StatusOK, `{"id":"a","amount":"1"}`+"\n"+`{"id":"b","amount":"2"}`+"\n"+`{"id":"c","amount":"3"}`+"\n")
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("run 3: %v", err)
	}
	want := []string{"a:1", "b:2", "c:3"}
	if got := fx.query(`SELECT id || ':' || amount FROM "nl__log" ORDER BY id, amount`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
}

// TestRetriedAppendPastCommittedPagesIsAppendedOnce: in run 1, x's
// mapping to log fails (its amount is bad then) on a committed page. Run
// 2 reads that page again and appends x, mended, to log (its row in
// items was committed), then fails. In run 3, records added before x
// pushed it past the committed pages: its record sum was saved only when
// its mapping to log had failed (run 2's retry, which wrote log alone,
// saved none), so x was taken for a new version and appended again,
// exit 0.
func TestRetriedAppendPastCommittedPagesIsAppendedOnce(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset}
tables:
  items: {from: items, primary_key: [id], row: '{id}'}
  log: {from: items, mode: append, row: '{id, amount: (if .amount == "bad" then error("bad amount") else .amount end)}'}
`, "")
	item := func(id, amount string) map[string]any { return map[string]any{"id": id, "amount": amount} }
	fx.pages("/items", []any{item("a", "1"), item("x", "bad"), item("b", "3")}, 2)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	fx.pages("/items", []any{item("a", "1"), item("x", "2"), item("b", "3")}, 2)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{}); return err }())
	if got := fx.query(`SELECT id || ':' || amount FROM "nl__log" ORDER BY id, amount`); !slices.Equal(got, []string{"a:1", "x:2"}) {
		t.Fatalf("log after run 2 = %v, want a and x once", got)
	}
	fx.pages("/items", []any{item("z", "9"), item("y", "8"), item("a", "1"), item("x", "2"), item("b", "3")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("run 3: %v", err)
	}
	want := []string{"a:1", "b:3", "x:2"}
	if got := fx.query(`SELECT id || ':' || amount FROM "nl__log" ORDER BY id, amount`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v (z and y, on the committed pages, are the next sync's)", got, want)
	}
}

// TestClockInAppendRowPastCommittedPages: log's row holds the run's
// clock (jq's now), a load time. In the resumed run, whose clock is an
// hour later, records added before a and b pushed them past the committed
// pages: b, unchanged, was taken for a new version by its record sum,
// which hashed its load time, and appended again, exit 0 (so was every
// record of a replaced export job's results). Its sum is taken under one
// fixed clock: b is appended once, and a, whose amount changed, again.
func TestClockInAppendRowPastCommittedPages(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset}
tables:
  items: {from: items, primary_key: [id], row: '{id}'}
  log: {from: items, mode: append, row: '{id, amount, at: (now | todate)}'}
`, "")
	item := func(id, amount string) map[string]any { return map[string]any{"id": id, "amount": amount} }
	day1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fx.pages("/items", []any{item("a", "1"), item("b", "2"), item("c", "3")}, 2)
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{Now: func() time.Time { return day1 }}); return err }())
	fx.pages("/items", []any{item("z", "9"), item("y", "8"), item("a", "5"), item("b", "2"), item("c", "3")})
	if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return day1.Add(time.Hour) }}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	want := []string{"a:1:2026-01-01T00:00:00Z", "a:5:2026-01-01T01:00:00Z", "b:2:2026-01-01T00:00:00Z", "c:3:2026-01-01T01:00:00Z"}
	if got := fx.query(`SELECT id || ':' || amount || ':' || at FROM "nl__log" ORDER BY id, amount`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
}

// TestClockFailedAppendRowIsNotTakenForAppended: b's mapping to log
// fails under run 1's clock (a rule of the hour), not under the fixed
// clock record sums are taken with, nor under the resumed run's. b's
// sum must not be saved: pushed past the committed pages in the resumed
// run, b would be taken for appended (the sum tells it, whatever the
// retry list says) and never be.
func TestClockFailedAppendRowIsNotTakenForAppended(t *testing.T) {
	day1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset}
tables:
  items: {from: items, primary_key: [id], row: '{id}'}
  log: {from: items, mode: append, row: '{id, amount: (if .id == "b" and now > `+fmt.Sprint(day1.Unix())+` and now < `+fmt.Sprint(day1.Unix()+1800)+` then error("not now") else .amount end)}'}
`, "")
	item := func(id, amount string) map[string]any { return map[string]any{"id": id, "amount": amount} }
	fx.pages("/items", []any{item("a", "1"), item("b", "2"), item("c", "3")}, 2)
	runErrorOf(t, func() error {
		_, err := fx.run(engine.RunOptions{Now: func() time.Time { return day1.Add(time.Minute) }})
		return err
	}())
	if got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("log after run 1 = %v, want a alone", got)
	}
	fx.pages("/items", []any{item("z", "9"), item("y", "8"), item("a", "1"), item("b", "2"), item("c", "3")})
	if _, err := fx.run(engine.RunOptions{Now: func() time.Time { return day1.Add(time.Hour) }}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	// z and y, on the committed pages read again for b, are new there.
	want := []string{"a", "b", "c", "y", "z"}
	if got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
}
