package engine_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// restartSpec is tokenSpec with a rule that reads a 410 naming an expired
// token (Microsoft Graph's syncStateNotFound) as "start over".
var restartSpec = strings.Replace(tokenSpec, "  base_url: ${ config.url }\n", `  base_url: ${ config.url }
  rules:
    - status: 410
      body: .error.code == "syncStateNotFound"
      action: restart
      message: .error.message
`, 1)

// TestRestartRule: a saved token the API no longer takes (a 410 the spec's
// rule names restart) makes the chain read everything again from the
// initial cursor, in the same run: every record is written, the run exits
// 0, and the new token is saved, so the next sync asks from it. Refused
// again from the start, the chain fails naming both. (Without the rule's
// action the run fails until someone runs --full-refresh.)
func TestRestartRule(t *testing.T) {
	api := newChangeAPI(t, 5)
	dir := t.TempDir()
	f, cfg := loadIncremental(t, dir, restartSpec, api.srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "tok.db")
	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatal(err)
	}

	api.add(3) // 6..8
	api.mu.Lock()
	api.expired = map[string]bool{"5": true}
	api.items[0]["name"] = "v2" // changed while the token was unused: the full read brings it
	api.mu.Unlock()
	logs, err := tokenRun(t, f, cfg, dest, false)
	if err != nil {
		t.Fatalf("the run whose token expired: %v", err)
	}
	if !strings.Contains(logs, "reading it again from its start") || !strings.Contains(logs, "token 5 expired") {
		t.Errorf("logs do not say the chain was read again, and why:\n%s", logs)
	}
	if got := queryStrings(t, strings.TrimPrefix(dest, "sqlite:"), `SELECT id, name FROM "tok__changes" ORDER BY id`); !slices.Equal(got, []string{"1|v2", "2|v1", "3|v1", "4|v1", "5|v1", "6|v1", "7|v1", "8|v1"}) {
		t.Errorf("changes = %v, want all eight, 1 at v2", got)
	}
	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatal(err)
	}
	if got, want := api.asked(), []string{"", "5", "", "8"}; !slices.Equal(got, want) {
		t.Fatalf("chains started from %q, want %q: the expired 5, the start again, then the new token", got, want)
	}

	api.mu.Lock()
	api.expired = map[string]bool{"8": true, "": true}
	api.mu.Unlock()
	_, err = tokenRun(t, f, cfg, dest, false)
	if err == nil || !strings.Contains(err.Error(), "refused again when read from its start") || !strings.Contains(err.Error(), "token  expired") {
		t.Fatalf("refused from the start too: err = %v, want the chain failed, saying so", err)
	}
}

// TestRestartOnALaterPage: the API refuses a chain's position on a later
// page (a next cursor that expired while the chain was read), after the
// first pages' rows were written. The chain read again from its start
// rewrites those rows: they are not duplicates of themselves (under
// on_duplicate: fail they were failed, exit 1, though every record was
// written), and the run is counted as it is.
func TestRestartOnALaterPage(t *testing.T) {
	for _, onDup := range []string{"", "fail"} {
		t.Run("on_duplicate "+onDup, func(t *testing.T) {
			api := newChangeAPI(t, 5)
			api.expiredPage = map[string]bool{"4": true} // the third page's cursor, once
			dir := t.TempDir()
			spec := restartSpec
			if onDup != "" {
				spec = strings.Replace(spec, "    primary_key: [id]\n", "    primary_key: [id]\n    on_duplicate: "+onDup+"\n", 1)
			}
			f, cfg := loadIncremental(t, dir, spec, api.srv.URL)
			dest := "sqlite:" + filepath.Join(dir, "tok.db")
			res, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest})
			if err != nil {
				t.Fatalf("the run whose cursor expired on its third page: %v", err)
			}
			if d := res.Summary.Duplicates; len(d) != 0 {
				t.Errorf("duplicates = %+v, want none: the restarted chain rewrote its own rows", d)
			}
			rep := engine.NewRunReport(f, "inc.yaml", res, nil, 0, false, time.Now())
			if len(rep.Tables) != 1 || rep.Tables[0].RowsWritten != 5 {
				t.Errorf("report tables = %+v, want changes: 5 rows written (the first reading's four rewritten, once each)", rep.Tables)
			}
			if got := queryStrings(t, strings.TrimPrefix(dest, "sqlite:"), `SELECT id, name FROM "tok__changes" ORDER BY id`); !slices.Equal(got, []string{"1|v1", "2|v1", "3|v1", "4|v1", "5|v1"}) {
				t.Errorf("changes = %v, want all five", got)
			}
			api.add(1)
			if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
				t.Fatal(err)
			}
			if got, want := api.asked(), []string{"", "", "5"}; !slices.Equal(got, want) {
				t.Fatalf("chains started from %q, want %q", got, want)
			}
		})
	}
}

// TestRestartedChainResumed: the chain read again after a refusal fails
// on a later page, and the next run resumes it. The rows the refused
// reading committed are not the resumed reading's duplicates: its first
// checkpoint replaced what that reading saved (under on_duplicate: fail
// the resumed run failed records 3 and 4 as duplicates of themselves).
func TestRestartedChainResumed(t *testing.T) {
	api := newChangeAPI(t, 5)
	api.expiredPage = map[string]bool{"4": true} // the third page's cursor, once
	api.onExpire = func(a *changeAPI) { a.fail[2] = true }
	dir := t.TempDir()
	spec := strings.Replace(restartSpec, "    primary_key: [id]\n", "    primary_key: [id]\n    on_duplicate: fail\n", 1)
	f, cfg := loadIncremental(t, dir, spec, api.srv.URL)
	dest := "sqlite:" + filepath.Join(dir, "tok.db")
	_, err := tokenRun(t, f, cfg, dest, false)
	if err == nil || !strings.Contains(err.Error(), "page 2") {
		t.Fatalf("the restarted chain's second page failed: err = %v, want it named", err)
	}
	api.mu.Lock()
	api.fail = map[int]bool{}
	api.mu.Unlock()
	if _, err := tokenRun(t, f, cfg, dest, false); err != nil {
		t.Fatalf("the resumed run: %v", err)
	}
	if got := queryStrings(t, strings.TrimPrefix(dest, "sqlite:"), `SELECT id, name FROM "tok__changes" ORDER BY id`); !slices.Equal(got, []string{"1|v1", "2|v1", "3|v1", "4|v1", "5|v1"}) {
		t.Errorf("changes = %v, want all five", got)
	}
}

// TestRestartInAChildStream: a child chain (for_each) refused on a later
// page is read again from its start: its rows are its own reading's, not
// duplicates (on_duplicate: fail), its sibling's chain is left as it is,
// and its own children run once for the records read twice.
func TestRestartInAChildStream(t *testing.T) {
	fx := newFixture(t, specHead+`  rules:
    - status: 410
      action: restart
      message: .error
streams:
  owners:
    request: {path: /owners}
    records: .items[]
  kids:
    for_each: owners
    request: {path: '/kids/${ parent.id }'}
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
  toys:
    for_each: kids
    request: {path: '/toys/${ parent.id }'}
    records: .items[]
tables:
  kids: {from: kids, primary_key: [id], on_duplicate: fail}
  toys: {from: toys, primary_key: [id], on_duplicate: fail}
`, "")
	fx.json("/owners", map[string]any{"items": []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}}})
	refused := false
	toys := map[string]int{}
	fx.mu.Lock()
	for _, p := range []string{"a", "b"} {
		fx.routes["/kids/"+p] = func(w http.ResponseWriter, r *http.Request) {
			after, _ := strconv.Atoi(r.URL.Query().Get("after"))
			if p == "a" && after == 4 && !refused {
				refused = true
				w.WriteHeader(http.StatusGone)
				w.Write([]byte(`{"error": "cursor expired"}`))
				return
			}
			body := map[string]any{"items": []any{map[string]any{"id": p + strconv.Itoa(after+1)}, map[string]any{"id": p + strconv.Itoa(after+2)}}}
			if after+2 < 6 {
				body["next"] = strconv.Itoa(after + 2)
			}
			json.NewEncoder(w).Encode(body)
		}
		for i := 1; i <= 6; i++ {
			id := p + strconv.Itoa(i)
			fx.routes["/toys/"+id] = func(w http.ResponseWriter, r *http.Request) {
				fx.mu.Lock()
				toys[id]++
				fx.mu.Unlock()
				json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"id": "t" + id}}})
			}
		}
	}
	fx.mu.Unlock()
	res, err := fx.run(engine.RunOptions{})
	if err != nil {
		t.Fatalf("the run whose child cursor expired: %v", err)
	}
	if !refused {
		t.Fatal("the cursor was never refused")
	}
	if d := res.Summary.Duplicates; len(d) != 0 {
		t.Errorf("duplicates = %+v, want none", d)
	}
	if got := fx.query(`SELECT id FROM "nl__kids" ORDER BY id`); !slices.Equal(got, []string{"a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2", "b3", "b4", "b5", "b6"}) {
		t.Errorf("kids = %v", got)
	}
	if got := fx.query(`SELECT count(*) FROM "nl__toys"`); !slices.Equal(got, []string{"12"}) {
		t.Errorf("toys = %v, want 12", got)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	for id, n := range toys {
		if n != 1 {
			t.Errorf("toys of %s asked %d times, want once", id, n)
		}
	}
}

// TestRestartInWindows: a windowed chain refused in its second window is
// read again from the initial cursor, every window; the summary counts its
// windows once (the refused reading's are not left as windows unread).
func TestRestartInWindows(t *testing.T) {
	api := &auditAPI{fail: map[string]bool{}}
	fx := newFixture(t, strings.Replace(strings.Replace(auditSpec, "mode: append", "on_duplicate: fail", 1), "streams:\n", `  rules:
    - status: 410
      action: restart
      message: .error
streams:
`, 1), "")
	serveAudit(fx, api)
	refused := false
	fx.mu.Lock()
	fx.routes["/audit"] = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("start_time") == auditDay(1, 0) && !refused {
			refused = true
			w.WriteHeader(http.StatusGone)
			w.Write([]byte(`{"error": "window expired"}`))
			return
		}
		api.handle(w, r)
	}
	fx.mu.Unlock()
	res, err := fx.run(engine.RunOptions{Now: auditNow(3, 0)})
	if err != nil {
		t.Fatalf("the run refused in its second window: %v", err)
	}
	if !refused {
		t.Fatal("never refused")
	}
	if s := res.Summary.Streams[0]; s.WindowsDone != 3 || s.WindowsTotal != 3 {
		t.Errorf("windows %d of %d, want 3 of 3", s.WindowsDone, s.WindowsTotal)
	}
	if got := fx.query(`SELECT id FROM "nl__events" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("events = %v", got)
	}
}

// restartEvents is an events API paged by cursor, two a page, whose
// second and seventh events are alike (two identical events: the source
// gives the same row twice in one reading). refuse tells whether to
// answer a request for the page after `after` with 410 (the cursor
// expired); fail, with 500.
func restartEvents(fx *fixture, refuse, fail func(after int) bool) {
	events := []any{}
	for i := 1; i <= 8; i++ {
		e := map[string]any{"id": "e" + strconv.Itoa(i), "v": "click"}
		if i == 2 || i == 7 {
			e = map[string]any{"id": "x", "v": "same"}
		}
		events = append(events, e)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.routes["/events"] = func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		switch {
		case refuse(after):
			w.WriteHeader(http.StatusGone)
			w.Write([]byte(`{"error": "cursor expired"}`))
			return
		case fail(after):
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		body := map[string]any{"items": events[after:min(after+2, len(events))]}
		if after+2 < len(events) {
			body["next"] = strconv.Itoa(after + 2)
		}
		json.NewEncoder(w).Encode(body)
	}
}

const restartAppendSpec = specHead + `  rules:
    - status: 410
      action: restart
      message: .error
streams:
  events:
    request: {path: /events}
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
tables:
  events: {from: events, mode: append}
`

// TestRestartAppendsOnce: a chain refused on a later page is read again
// from its start; an append table gets the rows of the pages the refused
// reading wrote once, not twice, in the run that restarts (same run) and
// in one that resumes a chain an earlier run stopped and is refused there
// (resumed). Rows are matched by their content, counted: the two alike
// events the restarted reading gives (the refused one gave only the
// first) are both in the table.
func TestRestartAppendsOnce(t *testing.T) {
	want := []string{"e1|1", "e3|1", "e4|1", "e5|1", "e6|1", "e8|1", "x|2"}
	count := `SELECT id || '|' || count(*) FROM "nl__events" GROUP BY id ORDER BY id`
	t.Run("same run", func(t *testing.T) {
		fx := newFixture(t, restartAppendSpec, "")
		refused := false
		restartEvents(fx, func(after int) bool {
			if after == 6 && !refused {
				refused = true
				return true
			}
			return false
		}, func(int) bool { return false })
		res, err := fx.run(engine.RunOptions{})
		if err != nil {
			t.Fatalf("the run whose cursor expired on its fourth page: %v", err)
		}
		if !refused {
			t.Fatal("never refused")
		}
		if got := fx.query(count); !slices.Equal(got, want) {
			t.Errorf("events = %v, want %v: each once, the two alike events twice", got, want)
		}
		rep := engine.NewRunReport(fx.spec, "s.yaml", res, nil, 0, false, time.Now())
		if len(rep.Tables) != 1 || rep.Tables[0].RowsWritten != 8 {
			t.Errorf("report tables = %+v, want events: 8 rows written", rep.Tables)
		}
	})
	for _, emptyFirst := range []bool{false, true} {
		name := "resumed"
		if emptyFirst {
			name += ", the new reading's first page empty"
		}
		t.Run(name, func(t *testing.T) { restartAppendsOnceResumed(t, emptyFirst, count, want) })
	}
}

// restartAppendsOnceResumed: a run stops a chain after two pages; the
// next resumes it and is refused there. With emptyFirst the new reading's
// first page lists nothing (its checkpoint, the first of a new reading,
// drops what the partition saved before its rows come): the rows the
// earlier run appended are in the table all the same.
func restartAppendsOnceResumed(t *testing.T, emptyFirst bool, count string, want []string) {
	fx := newFixture(t, restartAppendSpec, "")
	run, refused := 1, false
	restartEvents(fx, func(after int) bool {
		if run == 2 && after == 4 && !refused {
			refused = true
			return true
		}
		return false
	}, func(after int) bool { return run == 1 && after == 4 })
	if emptyFirst {
		fx.mu.Lock()
		serve := fx.routes["/events"]
		fx.routes["/events"] = func(w http.ResponseWriter, r *http.Request) {
			if run == 2 && refused && !r.URL.Query().Has("after") {
				json.NewEncoder(w).Encode(map[string]any{"items": []any{}, "next": "start"}) // after=start reads as 0
				return
			}
			serve(w, r)
		}
		fx.mu.Unlock()
	}
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("the first run's third page failed: want the run failed")
	}
	if got := fx.query(`SELECT count(*) FROM "nl__events"`); !slices.Equal(got, []string{"4"}) {
		t.Fatalf("events after the failed run = %v, want its two pages' 4", got)
	}
	run = 2
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("the resumed run, refused where the chain stood: %v", err)
	}
	if !refused {
		t.Fatal("never refused")
	}
	if got := fx.query(count); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v: each once, the two alike events twice", got, want)
	}
}
