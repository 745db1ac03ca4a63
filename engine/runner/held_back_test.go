package runner_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/spec"
)

// TestCursorHeldBackIsWarned: a time cursor held at when its chain began
// goes back before the cursor the run started from when a clock is behind
// (this machine's, or the API's Date): nothing is lost, but each run
// reads again from there, so the run says so, once for the stream.
func TestCursorHeldBackIsWarned(t *testing.T) {
	items := []any{
		map[string]any{"id": 1, "updated": "2026-03-05T10:05:00Z"},
		map[string]any{"id": 2, "updated": "2026-03-05T10:06:00Z"},
	}
	api := apitest.New(apitest.Fixture{Routes: []apitest.Route{{Path: "/events", Items: items}}})
	defer api.Close()
	f := mustSpec(t, `
version: 1
name: heldback
http: {base_url: `+api.URL()+`}
streams:
  events:
    incremental: {cursor: .updated, initial: "2026-01-01T00:00:00Z"}
    request:
      path: /events
      query: {since: "${ cursor }"}
tables:
  events: {from: events, primary_key: [id]}
`)
	state := map[string]map[string]json.RawMessage{"events" + runner.WatermarkSuffix: {"": json.RawMessage(`"2026-03-05T10:00:00Z"`)}}
	run := func(now time.Time) (saved []string, logged string) {
		t.Helper()
		return runWatched(t, f, "events", now, state)
	}
	// This machine's clock an hour behind the API's (which stamps the
	// records): the cursor goes back before the saved one.
	saved, logged := run(time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC))
	if strings.Join(saved, ",") != `"2026-03-05T08:59:59Z"` {
		t.Errorf("saved cursor %v, want 2026-03-05T08:59:59Z (a second before the run began)", saved)
	}
	if !strings.Contains(logged, "stream=events") || !strings.Contains(logged, "before the cursor the run started from") {
		t.Errorf("no warning of the cursor held back:\n%s", logged)
	}
	// The clocks agreeing, a record changed as the run read: held at the
	// run's start, after the saved cursor, and nothing said.
	saved, logged = run(time.Date(2026, 3, 5, 10, 5, 30, 0, time.UTC))
	if strings.Join(saved, ",") != `"2026-03-05T10:05:29Z"` {
		t.Errorf("saved cursor %v, want 2026-03-05T10:05:29Z", saved)
	}
	if strings.Contains(logged, "before the cursor the run started from") {
		t.Errorf("warned of a cursor not held back:\n%s", logged)
	}
}

// TestWindowHeldBackIsWarned: so for a window's cursor, held at the API's
// Date when its clock is behind the cursor the run started from.
func TestWindowHeldBackIsWarned(t *testing.T) {
	api := apitest.New(apitest.Fixture{Routes: []apitest.Route{{Path: "/audit", Items: []any{map[string]any{"id": 1}},
		Headers: map[string]string{"Date": "Thu, 05 Mar 2026 09:00:00 GMT"}}}})
	defer api.Close()
	f := mustSpec(t, `
version: 1
name: heldwindow
http: {base_url: `+api.URL()+`}
streams:
  audit:
    incremental:
      initial: "2026-01-01T00:00:00Z"
      window: {step: 24h, lookback: 0s}
    request:
      path: /audit
      query: {since: "${ window.start }", until: "${ window.end }"}
tables:
  audit: {from: audit, primary_key: [id]}
`)
	state := map[string]map[string]json.RawMessage{"audit" + runner.WatermarkSuffix: {"": json.RawMessage(`"2026-03-05T10:00:00Z"`)}}
	saved, logged := runWatched(t, f, "audit", time.Date(2026, 3, 5, 11, 0, 0, 0, time.UTC), state)
	if strings.Join(saved, ",") != `"2026-03-05T09:00:00Z"` {
		t.Errorf("saved cursor %v, want 2026-03-05T09:00:00Z (the API's Date)", saved)
	}
	if !strings.Contains(logged, "stream=audit") || !strings.Contains(logged, "before the cursor the run started from") {
		t.Errorf("no warning of the cursor held back:\n%s", logged)
	}
}

// TestEpochCursorInAnotherUnitIsWarned: the initial cursor is in epoch
// seconds and a record's cursor in milliseconds. Read in seconds it is far
// ahead: held at the run's start, in seconds, and said once, since the
// initial cursor may be the one in the wrong unit (each run would then
// read again from its start). A cursor in seconds, held as it changed
// while the run read, is not warned of.
func TestEpochCursorInAnotherUnitIsWarned(t *testing.T) {
	at := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	run := func(items []any) (saved []string, logged string) {
		t.Helper()
		return runCursor(t, at, "events", `{cursor: .updated, initial: 1767225600}`, items)
	}
	held := strconv.FormatInt(at.Unix()-1, 10)
	saved, logged := run([]any{
		map[string]any{"id": 1, "updated": at.Add(-time.Hour).Unix()},
		map[string]any{"id": 2, "updated": at.Add(-time.Hour).UnixMilli()},
	})
	if strings.Join(saved, ",") != held {
		t.Errorf("saved cursor %v, want %s (a second before the run began, in seconds)", saved, held)
	}
	if !strings.Contains(logged, "not in the unit of the initial cursor") || !strings.Contains(logged, "stream=events") {
		t.Errorf("no warning of the cursor in another unit:\n%s", logged)
	}
	saved, logged = run([]any{map[string]any{"id": 1, "updated": at.Add(time.Minute).Unix()}})
	if strings.Join(saved, ",") != held {
		t.Errorf("saved cursor %v, want %s", saved, held)
	}
	if strings.Contains(logged, "not in the unit") {
		t.Errorf("warned of a cursor in the initial cursor's unit:\n%s", logged)
	}
}

// TestNaiveCursorIsWarned: a cursor that is a time without a UTC offset
// cannot be held at the run's start (its zone is unknown): a record changed
// while the run read may be passed by it, so the run says so, once for the
// stream, and how to give the offset. A time with one is not warned of.
func TestNaiveCursorIsWarned(t *testing.T) {
	run := func(updated string) string {
		t.Helper()
		items := []any{map[string]any{"id": 1, "updated": updated}}
		_, logged := runCursor(t, time.Time{}, "events", `{cursor: .updated, initial: "2026-01-01T00:00:00"}`, items)
		return logged
	}
	if logged := run("2026-03-05T10:00:06.123"); !strings.Contains(logged, "without a UTC offset") || !strings.Contains(logged, "stream=events") {
		t.Errorf("no warning of a cursor without an offset:\n%s", logged)
	}
	if logged := run("2026-03-05T10:00:06.123Z"); strings.Contains(logged, "without a UTC offset") {
		t.Errorf("warned of a cursor with an offset:\n%s", logged)
	}
}

// TestEpochLikeIdsAreWarned: since_id-style ids of 19 digits (Twitter's
// and Discord's snowflakes) with an initial id of 19 digits read as epoch
// nanoseconds, years after the run began: each is held at the run's start,
// and every run reads again everything after that id, more each run,
// unsaid. Held, and said once: a cursor more than a day after the run
// began is no skewed clock. A cursor a minute ahead is not warned of.
func TestEpochLikeIdsAreWarned(t *testing.T) {
	at := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	run := func(items []any) (saved []string, logged string) {
		t.Helper()
		return runCursor(t, at, "posts", `{cursor: .id, initial: 1000000000000000000}`, items)
	}
	held := strconv.FormatInt(at.Add(-time.Second).UnixNano(), 10)
	saved, logged := run([]any{map[string]any{"id": int64(1901234567890123456)}, map[string]any{"id": int64(1901234567890123457)}})
	if strings.Join(saved, ",") != held {
		t.Errorf("saved cursor %v, want %s (a second before the run began, in nanoseconds)", saved, held)
	}
	if !strings.Contains(logged, "more than a day after the run began") || !strings.Contains(logged, "stream=posts") {
		t.Errorf("no warning of the cursor far ahead:\n%s", logged)
	}
	_, logged = run([]any{map[string]any{"id": at.Add(time.Minute).UnixNano()}})
	if strings.Contains(logged, "more than a day after the run began") {
		t.Errorf("a cursor a minute ahead warned of:\n%s", logged)
	}
}

// TestEpochCursorWithoutEpochInitialIsWarned: with initial 0 a number
// cursor is saved as read (it may be an id), so one that is a time, in
// epoch seconds, is never held at the run's start: a record changed while
// the run read, onto a page already read, is passed. A number cursor that
// reads as a time within a day of the run's start is warned of, once; an
// id of other digits, or of ten far from now, is not.
func TestEpochCursorWithoutEpochInitialIsWarned(t *testing.T) {
	at := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)
	run := func(items []any) (saved []string, logged string) {
		t.Helper()
		return runCursor(t, at, "events", `{cursor: .updated, initial: 0}`, items)
	}
	const warning = "looks like a time in epoch"
	stamp := at.Add(-time.Minute).Unix()
	saved, logged := run([]any{map[string]any{"id": 1, "updated": stamp}})
	if want := strconv.FormatInt(stamp, 10); strings.Join(saved, ",") != want {
		t.Errorf("saved cursor %v, want %s (as read)", saved, want)
	}
	if !strings.Contains(logged, warning) || !strings.Contains(logged, "stream=events") {
		t.Errorf("no warning of the epoch cursor never held:\n%s", logged)
	}
	for _, id := range []int64{4242, 1234567890} {
		if _, logged = run([]any{map[string]any{"id": 1, "updated": id}}); strings.Contains(logged, warning) {
			t.Errorf("an id, %d, warned of:\n%s", id, logged)
		}
	}
}

// runWatched runs f at now (the real clock when zero) from state, and
// returns the cursors saved for stream's watermark and the warnings logged.
// runCursor runs a spec of one incremental stream (incremental is its
// block), read at /stream with its cursor as ?since=, against an API
// serving items there, as runWatched does.
func runCursor(t *testing.T, now time.Time, stream, incremental string, items []any) (saved []string, logged string) {
	t.Helper()
	api := apitest.New(apitest.Fixture{Routes: []apitest.Route{{Path: "/" + stream, Items: items}}})
	defer api.Close()
	f := mustSpec(t, `
version: 1
name: cursors
http: {base_url: `+api.URL()+`}
streams:
  `+stream+`:
    incremental: `+incremental+`
    request:
      path: /`+stream+`
      query: {since: "${ cursor }"}
tables:
  `+stream+`: {from: `+stream+`, primary_key: [id]}
`)
	return runWatched(t, f, stream, now, nil)
}

func runWatched(t *testing.T, f *spec.File, stream string, now time.Time, state map[string]map[string]json.RawMessage) (saved []string, logged string) {
	t.Helper()
	var logs bytes.Buffer
	opts := runner.Options{Pool: fetch.NewPool(fetch.Options{}), State: state, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if !now.IsZero() {
		opts.Now = func() time.Time { return now }
	}
	r, err := runner.New(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := &checkpoints{collector: *newCollector()}
	if _, err := r.Run(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	for _, cp := range out.cps {
		if cp.Stream == stream+runner.WatermarkSuffix {
			saved = append(saved, string(cp.Value))
		}
	}
	return saved, logs.String()
}
