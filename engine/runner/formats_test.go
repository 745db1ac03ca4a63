package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sim/export"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/spec"
)

// fakeTime is a clock that moves only when the runner sleeps between polls.
type fakeTime struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeTime() *fakeTime { return &fakeTime{now: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)} }

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

// stateful is an Output keeping checkpoints as a destination does: rows
// wait for their page's checkpoint, and the last checkpoint per chain is
// the state a next run resumes from.
type stateful struct {
	mu      sync.Mutex
	pending map[string][]sink.Row
	rows    map[string][]map[string]any // committed
	state   map[string]map[string]json.RawMessage
	cps     []sink.Checkpoint
}

func newStateful() *stateful {
	return &stateful{pending: map[string][]sink.Row{}, rows: map[string][]map[string]any{}, state: map[string]map[string]json.RawMessage{}}
}

func (s *stateful) Row(_ context.Context, r sink.Row) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := r.Stream + "|" + r.Partition
	s.pending[k] = append(s.pending[k], r)
	return nil
}

func (s *stateful) Entity(context.Context, sink.Entity) error { return nil }

func (s *stateful) Checkpoint(_ context.Context, cp sink.Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := cp.Stream + "|" + cp.Partition
	for _, r := range s.pending[k] {
		s.rows[r.Table] = append(s.rows[r.Table], r.Data)
	}
	delete(s.pending, k)
	if s.state[cp.Stream] == nil {
		s.state[cp.Stream] = map[string]json.RawMessage{}
	}
	s.state[cp.Stream][cp.Partition] = cp.Value
	s.cps = append(s.cps, cp)
	return nil
}

// ids lists a field of a table's committed rows.
func (s *stateful) field(table, name string) []string {
	var out []string
	for _, r := range s.rows[table] {
		out = append(out, fmt.Sprint(r[name]))
	}
	return out
}

func eventIDs(evs []export.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

type runOpts struct {
	state map[string]map[string]json.RawMessage
	clock *fakeTime
	cfg   map[string]any
	log   *slog.Logger
}

func runWith(t *testing.T, f *spec.File, o runOpts, out runner.Output) (*runner.Summary, error) {
	t.Helper()
	if o.clock == nil {
		o.clock = newFakeTime()
	}
	pool := fetch.NewPool(fetch.Options{Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	r, err := runner.New(f, runner.Options{Config: o.cfg, Pool: pool, State: o.state, Now: o.clock.Now, Sleep: o.clock.Sleep, Logger: o.log})
	if err != nil {
		t.Fatalf("runner: %v", err)
	}
	return r.Run(t.Context(), out)
}

const exportSpec = `
version: 1
name: exports
config:
  api: {required: true}
  storage: {required: true}
  token: {required: true, secret: true}
http:
  base_url: ${ config.api }
  auth: {type: bearer, token: "${ config.token }"}
streams:
  export:
    async:
      create:
        path: /exports
        body: {format: ndjson}
        id: .id
      poll:
        path: /exports/${ job.id }
        every: 30s
        timeout: 10m
        done: .status == "completed"
        failed: .status == "failed"
        message: .error.message
      download:
        urls: '[.files[].url]'
    response: {format: ndjson}
  report:
    request: {path: /reports/events.csv}
    response: {format: csv}
  lines:
    request: {path: /events.ndjson}
    response: {format: ndjson}
    paginate: {type: cursor, token_header: X-Next-Cursor, param: cursor}
  objects:
    http: {base_url: "${ config.storage }", auth: {type: none}}
    request:
      path: /bucket
      query: {list-type: 2, max-keys: 7}
    response: {format: xml}
    records: '[.ListBucketResult.Contents // empty] | flatten(1) | .[]'
    paginate: {type: cursor, token: .ListBucketResult.NextContinuationToken, param: continuation-token}
tables:
  exported: {from: export, primary_key: [id]}
  report: {from: report, primary_key: [id]}
  lines: {from: lines, primary_key: [id]}
  objects: {from: objects, primary_key: [Key], row: '{Key, Size}'}
`

func simConfig(s *export.Server) map[string]any {
	return map[string]any{"api": s.URL(), "storage": s.StorageURL(), "token": s.Token()}
}

// Every format of the simulator reads to exactly its data: the export job
// (created once, polled until done, its gzip NDJSON parts downloaded from
// the storage host without the API token), the CSV report (quoted commas,
// quotes and line breaks), the NDJSON log paged by a header, and the S3
// listing paged by continuation tokens.
func TestFormatsAgainstTheExportSimulator(t *testing.T) {
	s := export.New(export.Options{Events: 95, Seed: 3, Polls: 3, PageSize: 40, Objects: 23})
	defer s.Close()
	out := newStateful()
	clock := newFakeTime()
	sum, err := runWith(t, mustSpec(t, exportSpec), runOpts{cfg: simConfig(s), clock: clock}, out)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	want := eventIDs(s.Events())
	for _, table := range []string{"exported", "report", "lines"} {
		if d := cmp.Diff(want, out.field(table, "id")); d != "" {
			t.Errorf("%s ids (-want +got):\n%s", table, d)
		}
	}
	// The CSV report's values are the events' exactly.
	for i, e := range s.Events() {
		row := out.rows["report"][i]
		if row["note"] != e.Note || row["amount"] != e.Amount || row["at"] != e.At {
			t.Fatalf("report row %d = %v, want %+v", i, row, e)
		}
		if got := out.rows["exported"][i]["note"]; got != e.Note {
			t.Fatalf("exported note %d = %q, want %q", i, got, e.Note)
		}
	}
	if d := cmp.Diff(s.Objects(), out.field("objects", "Key")); d != "" {
		t.Errorf("objects (-want +got):\n%s", d)
	}
	var creates, polls, parts, lists int
	for _, r := range s.Requests() {
		switch {
		case r.Method == "POST" && r.Path == "/exports":
			creates++
		case r.Host == "api" && strings.HasPrefix(r.Path, "/exports/"):
			polls++
		case r.Host == "storage" && strings.HasPrefix(r.Path, "/bucket/exports/"):
			parts++
			if r.Authorization {
				t.Errorf("the API token went to the storage host: %+v", r)
			}
		case r.Host == "storage" && r.Path == "/bucket":
			lists++
		}
		if r.Status != 200 && r.Status != 202 {
			t.Errorf("request answered %d: %+v", r.Status, r)
		}
	}
	if creates != 1 || polls != 4 || parts != 2 || lists != 4 {
		t.Errorf("creates %d, polls %d, parts %d, list pages %d; want 1, 4 (3 running), 2, 4", creates, polls, parts, lists)
	}
	// Retry-After (2s) wins over every (30s).
	if d := cmp.Diff([]time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}, clock.sleeps); d != "" {
		t.Errorf("waits between polls (-want +got):\n%s", d)
	}
	for _, sn := range sum.Streams {
		if sn.Stream == "export" && (sn.Records != 95 || sn.Pages != 2) {
			t.Errorf("export counters %+v, want 95 records in 2 pages (one per part)", sn)
		}
	}
	// Every checkpoint of the export chain names its job; the first, made
	// when the job was created, asks to be committed at once.
	first := true
	for _, cp := range out.cps {
		if cp.Stream == "export" {
			if cp.Flush != first {
				t.Errorf("checkpoint %s: flush %v, want %v", cp.Value, cp.Flush, first)
			}
			first = false
		}
	}
	for _, cp := range out.cps {
		if cp.Stream == "export" && !strings.Contains(string(cp.Value), `"job":{"id":"exp_0001"`) {
			t.Errorf("export checkpoint without its job: %s", cp.Value)
		}
	}
}

// A job that fails fails its chain with the job's message and is dropped
// from the checkpoint: the next run creates a new job and reads it.
func TestAsyncJobFails(t *testing.T) {
	s := export.New(export.Options{Events: 20, Polls: 2, Fail: func(n int) bool { return n == 1 }})
	defer s.Close()
	f := mustSpec(t, exportSpec)
	out := newStateful()
	_, err := runWith(t, f, runOpts{cfg: simConfig(s)}, out)
	if err == nil || !strings.Contains(err.Error(), "stream export") || !strings.Contains(err.Error(), "export job exp_0001 failed: the export query timed out") {
		t.Fatalf("run: %v, want the job's failure", err)
	}
	if n := len(out.rows["exported"]); n != 0 {
		t.Errorf("%d rows from a failed job", n)
	}
	if st := string(out.state["export"][""]); strings.Contains(st, "job") {
		t.Errorf("the failed job is still in the checkpoint: %s", st)
	}
	again := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: simConfig(s), state: out.state}, again); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if d := cmp.Diff(eventIDs(s.Events()), again.field("exported", "id")); d != "" {
		t.Errorf("second run (-want +got):\n%s", d)
	}
	creates := 0
	for _, r := range s.Requests() {
		if r.Method == "POST" {
			creates++
		}
	}
	if creates != 2 {
		t.Errorf("jobs created = %d, want 2", creates)
	}
}

// A run that stops while reading a job's results resumes with the same
// job: it polls it again (for fresh URLs) instead of creating another, and
// reads only what was not committed. A job older than async.expires, or
// one the API no longer knows, is replaced by a new one.
func TestAsyncResumesTheSameJob(t *testing.T) {
	var cutting atomic.Bool
	cutting.Store(true)
	s := export.New(export.Options{Events: 60, Parts: 3, Polls: 1, Cut: func(path string, n int) int {
		if cutting.Load() && strings.HasSuffix(path, "part-1.ndjson.gz") {
			return 10 // every attempt cut short: the chain fails
		}
		return 0
	}})
	defer s.Close()
	f := mustSpec(t, exportSpec)
	first := newStateful()
	_, err := runWith(t, f, runOpts{cfg: simConfig(s)}, first)
	if err == nil || !strings.Contains(err.Error(), "download 2 of 3") {
		t.Fatalf("first run: %v, want download 2 failing", err)
	}
	if got := len(first.rows["exported"]); got != 20 {
		t.Fatalf("first run committed %d rows, want part 0's 20", got)
	}
	cutting.Store(false)
	posts := func() int {
		n := 0
		for _, r := range s.Requests() {
			if r.Method == "POST" {
				n++
			}
		}
		return n
	}
	before := len(s.Requests())
	second := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: simConfig(s), state: first.state}, second); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if posts() != 1 {
		t.Errorf("jobs created = %d, want 1: the resumed run polls the saved job", posts())
	}
	for _, r := range s.Requests()[before:] {
		if strings.HasSuffix(r.Path, "part-0.ndjson.gz") {
			t.Errorf("the resumed run downloaded part 0 again")
		}
	}
	all := append(first.field("exported", "id"), second.field("exported", "id")...)
	if d := cmp.Diff(eventIDs(s.Events()), all); d != "" {
		t.Errorf("both runs (-want +got):\n%s", d)
	}

	// The same state a day later: the job is too old to resume.
	late := newFakeTime()
	late.now = late.now.Add(25 * time.Hour)
	third := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: simConfig(s), state: first.state, clock: late}, third); err != nil {
		t.Fatalf("third run: %v", err)
	}
	if posts() != 2 {
		t.Errorf("jobs created = %d, want 2: an expired job is replaced", posts())
	}
	if d := cmp.Diff(eventIDs(s.Events()), third.field("exported", "id")); d != "" {
		t.Errorf("a new job is read from its start (-want +got):\n%s", d)
	}

	// A saved job the API does not know (404) is replaced too.
	gone := map[string]map[string]json.RawMessage{"export": {"": json.RawMessage(`{"pages":0,"next":{},"job":{"id":"exp_0404","created":"2026-02-01T00:00:00Z"}}`)}}
	fourth := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: simConfig(s), state: gone}, fourth); err != nil {
		t.Fatalf("fourth run: %v", err)
	}
	if posts() != 3 || len(fourth.rows["exported"]) != 60 {
		t.Errorf("jobs created = %d, rows %d; want 3 and 60", posts(), len(fourth.rows["exported"]))
	}
}

// A job still running at the timeout fails the chain and stays in the
// checkpoint: the next run polls it again rather than creating another.
func TestAsyncPollTimeoutKeepsTheJob(t *testing.T) {
	s := export.New(export.Options{Events: 5, Polls: 15, RetryAfter: 60})
	defer s.Close()
	f := mustSpec(t, exportSpec)
	out := newStateful()
	clock := newFakeTime()
	_, err := runWith(t, f, runOpts{cfg: simConfig(s), clock: clock}, out)
	if err == nil || !strings.Contains(err.Error(), "export job exp_0001: not done after 10m0s (11 polls") {
		t.Fatalf("run: %v, want a poll timeout after 11 polls (one a minute, the last at the deadline)", err)
	}
	if st := string(out.state["export"][""]); !strings.Contains(st, `"id":"exp_0001"`) {
		t.Errorf("the running job is not in the checkpoint: %s", st)
	}
	again := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: simConfig(s), state: out.state}, again); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n := len(again.rows["exported"]); n != 5 {
		t.Errorf("second run: %d rows, want 5", n)
	}
	creates := 0
	for _, r := range s.Requests() {
		if r.Method == "POST" {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("jobs created = %d, want 1", creates)
	}
}

// A download.urls program that gives null (a wrong path) fails the chain:
// it is not "no results".
func TestAsyncURLsNotFound(t *testing.T) {
	s := export.New(export.Options{Events: 5, Polls: 1})
	defer s.Close()
	f := mustSpec(t, strings.Replace(exportSpec, "urls: '[.files[].url]'", "urls: .file", 1))
	out := newStateful()
	_, err := runWith(t, f, runOpts{cfg: simConfig(s)}, out)
	if err == nil || !strings.Contains(err.Error(), "async.download.urls: want a URL or a list of URLs, got null") {
		t.Fatalf("run: %v", err)
	}
}

// jobSpecHead and jobStream make the specs of the export job tests: the
// head up to streams, and the body of an async stream.
const (
	jobSpecHead = `
version: 1
name: exports
config:
  api: {required: true}
  token: {required: true, secret: true}
http:
  base_url: ${ config.api }
  auth: {type: bearer, token: "${ config.token }"}
`
	jobStream = `    async:
      create: {path: /exports, body: {format: ndjson}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "completed"}
      download: {urls: '[.files[].url]'}
    response: {format: ndjson}
`
)

// slowCommit is a destination whose commits take a while, as a busy
// database's do.
type slowCommit struct{ *stateful }

func (s slowCommit) Checkpoint(ctx context.Context, cp sink.Checkpoint) error {
	time.Sleep(100 * time.Millisecond)
	return s.stateful.Checkpoint(ctx, cp)
}

// An export job is polled only once its checkpoint is committed: a run
// killed between the two would otherwise forget the job and create
// another. The destination commits slowly, so polling at once would find
// the state still empty.
func TestExportJobPolledAfterItsCheckpoint(t *testing.T) {
	out := slowCommit{newStateful()}
	var atFirstPoll string
	s := export.New(export.Options{Events: 3, Polls: 1, RetryAfter: -1, OnPoll: func(id string, n int) {
		if n == 1 {
			out.mu.Lock()
			defer out.mu.Unlock()
			atFirstPoll = string(out.state["export"][""])
		}
	}})
	defer s.Close()
	f := mustSpec(t, jobSpecHead+`streams:
  export:
`+jobStream+`tables:
  exported: {from: export, primary_key: [id]}
`)
	if _, err := runWith(t, f, runOpts{cfg: map[string]any{"api": s.URL(), "token": s.Token()}}, out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(atFirstPoll, `"exp_0001"`) {
		t.Errorf("state at the first poll = %q, want the job", atFirstPoll)
	}
	if got := out.field("exported", "id"); len(got) != 3 {
		t.Errorf("rows = %v, want 3", got)
	}
}

// The export jobs of many parents are polled side by side: a job's
// checkpoint is committed ahead of the runs before it, so no job waits for
// another parent's whole export before its first poll. The first poll of
// all is held until another job is polled; were the jobs taken one after
// the other, that would never come.
func TestExportJobsOfManyParentsPolledTogether(t *testing.T) {
	other := make(chan struct{})
	var mu sync.Mutex
	first := ""
	var waited atomic.Bool
	s := export.New(export.Options{Events: 3, Polls: 1, RetryAfter: -1, OnPoll: func(id string, n int) {
		mu.Lock()
		if first == "" {
			first = id
		} else if id != first && n == 1 && other != nil {
			close(other)
			other = nil
		}
		hold, wait := id == first && n == 1, other
		mu.Unlock()
		if hold && wait != nil {
			select {
			case <-wait:
			case <-time.After(10 * time.Second):
				waited.Store(true)
			}
		}
	}})
	defer s.Close()
	f := mustSpec(t, jobSpecHead+`  concurrency: 4
streams:
  lines:
    request: {path: /events.ndjson}
    response: {format: ndjson}
    paginate: {type: cursor, token_header: X-Next-Cursor, param: cursor}
  export:
    for_each: lines
`+strings.Replace(jobStream, "id: .id}", "id: .id, idempotency_key: Idempotency-Key}", 1)+`tables:
  exported: {from: export}
`)
	out := slowCommit{newStateful()}
	if _, err := runWith(t, f, runOpts{cfg: map[string]any{"api": s.URL(), "token": s.Token()}}, out); err != nil {
		t.Fatal(err)
	}
	if waited.Load() {
		t.Error("the first job's poll waited 10 s and no other job was polled: the parents' jobs ran one after the other")
	}
	var creates int
	for _, r := range s.Requests() {
		if r.Method == "POST" && r.Path == "/exports" {
			creates++
		}
	}
	if creates != 3 || s.JobsMade() != 3 {
		t.Errorf("create requests = %d, jobs made = %d, want one per parent (3): each job has an idempotency key of its own", creates, s.JobsMade())
	}
}

// A create whose answer is lost (the job made, 503 returned) is retried:
// with async.create.idempotency_key the retry carries the same key, and
// the source makes one job; without it, it makes two, and the run still
// reads its events exactly once from the job it knows.
func TestExportCreateRetriedWithIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		jobs      int
		warned    bool
	}{
		{"with a key", ", idempotency_key: Idempotency-Key", 1, false},
		{"without", "", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := export.New(export.Options{Events: 5, Polls: 1, RetryAfter: -1, LoseCreate: func(n int) bool { return n == 1 }})
			defer s.Close()
			stream := strings.Replace(jobStream, "id: .id}", "id: .id"+tc.key+"}", 1)
			f := mustSpec(t, jobSpecHead+"streams:\n  export:\n"+stream+"tables:\n  exported: {from: export, primary_key: [id]}\n")
			out := newStateful()
			var logged strings.Builder
			log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
			if _, err := runWith(t, f, runOpts{cfg: map[string]any{"api": s.URL(), "token": s.Token()}, log: log}, out); err != nil {
				t.Fatal(err)
			}
			if warned := strings.Contains(logged.String(), "export job create was sent more than once"); warned != tc.warned {
				t.Errorf("warned of a second job: %v, want %v; log:\n%s", warned, tc.warned, logged.String())
			}
			if got := s.JobsMade(); got != tc.jobs {
				t.Errorf("jobs made = %d, want %d", got, tc.jobs)
			}
			if d := cmp.Diff(eventIDs(s.Events()), out.field("exported", "id")); d != "" {
				t.Errorf("exported ids (-want +got):\n%s", d)
			}
		})
	}
}
