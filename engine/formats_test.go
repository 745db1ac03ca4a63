package engine_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/export"
)

// A streamed page that breaks on line 1,700 into SQLite: the run fails,
// the destination holds exactly the page's first whole part (1,000 rows,
// committed with its checkpoint) and nothing of the broken part; the next
// run goes on after the part, so an append table ends with every record
// once.
func TestStreamedPageIntoSQLiteResumesAfterItsPart(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  events:
    request: {path: /events}
    response: {format: ndjson}
tables:
  log: {from: events, mode: append}
  events: {from: events, primary_key: [id]}
`, "")
	var good, bad strings.Builder
	for i := range 2500 {
		line := fmt.Sprintf("{\"id\": %d}\n", i)
		good.WriteString(line)
		if i == 1699 {
			line = "{\"id\": 1699,\n"
		}
		bad.WriteString(line)
	}
	fx.raw("/events", 200, bad.String())
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if !strings.Contains(re.Error(), "line 1700: invalid JSON") {
		t.Fatalf("run: %v, want line 1700 named", err)
	}
	count := func(table string) []string {
		return fx.query(`SELECT count(*) || '/' || count(DISTINCT id) || '/' || max(id) FROM "nl__` + table + `"`)
	}
	for _, table := range []string{"log", "events"} {
		if got := count(table); !slices.Equal(got, []string{"1000/1000/999"}) {
			t.Errorf("after the failure %s holds %v, want rows 0..999 (count/distinct/max)", table, got)
		}
	}
	fx.raw("/events", 200, good.String())
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	for _, table := range []string{"log", "events"} {
		if got := count(table); !slices.Equal(got, []string{"2500/2500/" + strconv.Itoa(2499)}) {
			t.Errorf("after the resumed run %s holds %v, want every record once", table, got)
		}
	}
}

// An export job is in the destination's state as soon as it is created,
// before the first poll: a run killed while the job runs resumes with it
// rather than starting another.
func TestExportJobCommittedWhenCreated(t *testing.T) {
	var fx *fixture
	var seen []string
	s := export.New(export.Options{Events: 3, Polls: 1, RetryAfter: -1, OnPoll: func(id string, n int) {
		if n == 1 {
			seen = fx.query(`SELECT value FROM "nl___ferry_state" WHERE stream = 'events'`)
		}
	}})
	defer s.Close()
	fx = newFixture(t, specHead+`  auth: {type: bearer, token: "`+s.Token()+`"}
streams:
  events:
    async:
      create: {path: /exports, body: {format: ndjson}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "completed"}
      download: {urls: '[.files[].url]'}
    response: {format: ndjson}
tables:
  events: {from: events, primary_key: [id]}
`, "")
	fx.mu.Lock()
	fx.routes["/exports"] = proxy(s.URL())
	fx.routes["/exports/exp_0001"] = proxy(s.URL())
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !strings.Contains(seen[0], `"job":{"id":"exp_0001"`) {
		t.Errorf("state at the first poll = %v, want the job", seen)
	}
	if n := fx.query(`SELECT count(*) FROM "nl__events"`); !slices.Equal(n, []string{"3"}) {
		t.Errorf("rows = %v, want 3", n)
	}
}

// proxy forwards a request to the simulator.
func proxy(base string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(r.Method, base+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}
}
