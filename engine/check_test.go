package engine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// checkSpec has a paged root with a child, a root whose token is refused,
// a windowed stream, an export job with a child, a stream whose `when` is
// false, and a stream below a parent that lists nothing.
const checkSpec = `version: 1
name: ck
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: query, param: key, value: '${ config.key }'}
  retry: {attempts: 1}
streams:
  items:
    request: {path: /items}
    paginate: {type: cursor, token: .next, param: cursor}
    records: '.items[]'
  kids:
    for_each: items
    request: {path: '/items/${ parent.id }/kids'}
  secure:
    request: {path: /secure}
  events:
    request: {path: /events, query: {from: '${ window.start }', to: '${ window.end }'}}
    incremental: {cursor: .at, initial: "2026-01-01T00:00:00Z", window: {step: 720h}}
  export:
    async:
      create: {path: /exports, id: .id}
      poll: {path: '/exports/${ job.id }', done: .done}
      download: {urls: '[.files[]]'}
  export_rows:
    for_each: export
    request: {path: '/rows/${ parent.id }'}
  off:
    when: 'false'
    request: {path: /off}
  empty:
    request: {path: /empty}
  below_empty:
    for_each: empty
    request: {path: '/below/${ parent.id }'}
tables:
  items: {from: items, primary_key: [id]}
  kids: {from: kids, primary_key: [id]}
  secure: {from: secure, primary_key: [id]}
  events: {from: events, primary_key: [id]}
  export: {from: export, primary_key: [id]}
  export_rows: {from: export_rows, primary_key: [id]}
  off: {from: off, primary_key: [id]}
  below_empty: {from: below_empty, primary_key: [id]}
`

// TestCheck: each stream is asked once (its first chain's first page, in
// the latest window), a refused token fails its stream naming the request
// and status with the key redacted, the export job is never created (it
// and the stream below it are left out), and streams that sent nothing
// say why.
func TestCheck(t *testing.T) {
	fx := newFixture(t, checkSpec, "")
	fx.json("/items", map[string]any{"items": []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}}, "next": "p2"})
	for _, id := range []string{"a", "b"} {
		fx.json("/items/"+id+"/kids", []any{map[string]any{"id": id + "1"}})
	}
	fx.raw("/secure", http.StatusUnauthorized, `{"message": "bad key"}`)
	var windowFrom string
	fx.mu.Lock()
	fx.routes["/events"] = func(w http.ResponseWriter, r *http.Request) {
		fx.mu.Lock()
		windowFrom = r.URL.Query().Get("from")
		fx.mu.Unlock()
		json.NewEncoder(w).Encode([]any{map[string]any{"id": "e1", "at": "2026-01-02T00:00:00Z"}})
	}
	fx.mu.Unlock()
	fx.json("/exports", map[string]any{"id": "x1"})
	fx.json("/empty", []any{})

	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL, "key": "s3cret-key"}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db, Now: func() time.Time { return now }})
	if !errors.Is(err, engine.ErrCheckFailed) {
		t.Fatalf("Check error = %v, want ErrCheckFailed (stream secure failed)", err)
	}
	got := map[string]engine.StreamCheck{}
	for _, s := range res.Streams {
		got[s.Stream] = s
	}
	want := map[string]string{"items": engine.CheckOK, "kids": engine.CheckOK, "secure": engine.CheckFailed, "events": engine.CheckOK,
		"export": engine.CheckLeftOut, "export_rows": engine.CheckLeftOut, "off": engine.CheckNotReached, "empty": engine.CheckOK, "below_empty": engine.CheckNotReached}
	for name, status := range want {
		if got[name].Status != status {
			t.Errorf("stream %s: %q (%s), want %q", name, got[name].Status, got[name].Detail, status)
		}
	}
	if len(res.Streams) != len(want) {
		t.Errorf("%d streams checked, want %d", len(res.Streams), len(want))
	}
	if d := got["secure"].Detail; !strings.Contains(d, "/secure") || !strings.Contains(d, "401") || !strings.Contains(d, "bad key") || strings.Contains(d, "s3cret-key") {
		t.Errorf("secure's failure %q: want the request, its status and the server's message, the key redacted", d)
	}
	if d := got["export_rows"].Detail; !strings.Contains(d, "needs stream export") || !strings.Contains(d, "creates an export job") {
		t.Errorf("export_rows left out because %q: want its parent's export job named", d)
	}
	if d := got["below_empty"].Detail; !strings.Contains(d, "stream empty") {
		t.Errorf("below_empty not reached because %q: want its parent named", d)
	}
	if got["items"].Records != 2 || got["kids"].Records != 1 {
		t.Errorf("records read: items %d, kids %d; want 2 (its first page) and 1 (one parent's)", got["items"].Records, got["kids"].Records)
	}
	counts := map[string]int{}
	for _, p := range fx.takeRequests() {
		// Chains run at once: whichever parent's sends first is the probe.
		p = strings.NewReplacer("/items/a/", "/items/*/", "/items/b/", "/items/*/").Replace(p)
		counts[p]++
	}
	wantReqs := map[string]int{"/items": 1, "/items/*/kids": 1, "/secure": 1, "/events": 1, "/empty": 1}
	if fmt.Sprint(counts) != fmt.Sprint(wantReqs) {
		t.Errorf("requests %v, want %v: one per stream asked, none to the export job, no second page, no second parent", counts, wantReqs)
	}
	if windowFrom != "2026-05-31T00:00:00Z" {
		t.Errorf("events asked from %q, want the latest 30-day window's start (2026-05-31T00:00:00Z)", windowFrom)
	}
	if n := len(fx.query(`SELECT name FROM sqlite_master WHERE name LIKE 'ck__%'`)); n != 0 {
		t.Errorf("the check created %d tables: it writes nothing", n)
	}
}

// TestCheckPort: with Port's credentials, the check gets a token and lists
// the blueprints (those a run would create named); with a wrong secret,
// Port fails the check, the secret not shown.
func TestCheckPort(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id}
`, itemBlueprint)
	fx.json("/items", []any{map[string]any{"id": "i1"}})
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	creds := engine.PortOptions{BaseURL: fx.port.URL(), ClientID: fx.port.ClientID(), ClientSecret: fx.port.ClientSecret()}
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Port: creds})
	if err != nil || res.Port == nil || res.Port.Status != engine.CheckOK {
		t.Fatalf("Check = %+v, %v: want Port ok", res, err)
	}
	if got := strings.Join(res.Port.Changes, ", "); got != "group: create, item: create" && got != "item: create, group: create" {
		t.Errorf("blueprints a run would change: %q, want both created", got)
	}
	if len(fx.port.Catalog().Entities) != 0 {
		t.Error("the check wrote entities")
	}
	creds.ClientSecret = "wrong-secret-123"
	res, err = engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Port: creds})
	if !errors.Is(err, engine.ErrCheckFailed) || res.Port.Status != engine.CheckFailed {
		t.Fatalf("Check with a wrong secret = %+v, %v: want Port failed", res.Port, err)
	}
	if d := res.Port.Detail; d == "" || strings.Contains(d, "wrong-secret-123") {
		t.Errorf("Port's failure %q: want a reason, the secret redacted", d)
	}
	if res.Streams[0].Status != engine.CheckOK {
		t.Errorf("items: %+v, want ok (only Port failed)", res.Streams[0])
	}
}

// TestCheckLeavesOutLookupSources: a stream that reads a lookup needs the
// stream that fills it (a run reads that one first, --streams or not). A
// lookup filled from an export job, or from a PUT, would have the check
// create the job or send the PUT: the streams reading it, in their own
// programs or in their tables' rows, are left out, naming why, and so is
// a stream below one of them.
func TestCheckLeavesOutLookupSources(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  export:
    async:
      create: {path: /exports, id: .id}
      poll: {path: '/exports/${ job.id }', done: .done}
      download: {urls: '[.files[]]'}
  touch:
    request: {path: /touch, method: PUT}
  by_request:
    request: {path: '/items/${ lookups.kind["k"] }'}
  by_row:
    request: {path: /rows}
  below:
    for_each: by_row
    request: {path: '/below/${ parent.id }'}
  plain:
    request: {path: /plain}
lookups:
  kind: {from: export, key: .id}
  touched: {from: touch, key: .id}
tables:
  by_request: {from: by_request, primary_key: [id]}
  by_row: {from: by_row, row: '{id, t: $lookups.touched[.id]}', primary_key: [id]}
  below: {from: below, primary_key: [id]}
  plain: {from: plain, primary_key: [id]}
`, "")
	fx.json("/exports", map[string]any{"id": "x1"})
	fx.json("/touch", []any{map[string]any{"id": "t1"}})
	fx.json("/plain", []any{map[string]any{"id": "p1"}})
	fx.json("/rows", []any{map[string]any{"id": "r1"}})
	for _, streams := range [][]string{nil, {"by_request", "by_row", "plain"}} {
		cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatal(err)
		}
		res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db, Streams: streams})
		if err != nil {
			t.Fatalf("--streams %v: Check: %v (%+v; requests %v)", streams, err, res, fx.takeRequests())
		}
		for _, p := range fx.takeRequests() {
			if p != "/plain" {
				t.Errorf("--streams %v: the check sent %s: only /plain may be asked", streams, p)
			}
		}
		got := map[string]engine.StreamCheck{}
		for _, s := range res.Streams {
			got[s.Stream] = s
		}
		if d := got["by_request"].Detail; got["by_request"].Status != engine.CheckLeftOut || !strings.Contains(d, "lookup kind") || !strings.Contains(d, "export job") {
			t.Errorf("--streams %v: by_request %+v: want left out, naming lookup kind and the export job", streams, got["by_request"])
		}
		if d := got["by_row"].Detail; got["by_row"].Status != engine.CheckLeftOut || !strings.Contains(d, "lookup touched") || !strings.Contains(d, "PUT") {
			t.Errorf("--streams %v: by_row %+v: want left out, naming lookup touched and the PUT", streams, got["by_row"])
		}
		if streams == nil && got["below"].Status != engine.CheckLeftOut {
			t.Errorf("below %+v: want left out (its parent is)", got["below"])
		}
		if got["plain"].Status != engine.CheckOK {
			t.Errorf("--streams %v: plain %+v: want ok", streams, got["plain"])
		}
	}
}

// TestCheckBatchNotEmptied: a batch stream's list is its source's records
// under one parent; the check reads the source under one parent only, so
// under the others the list is empty for want of reading, not because
// there is none. The batch request the check sends carries the list it
// read, never an empty one a run would not send for that parent.
func TestCheckBatchNotEmptied(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  groups:
    request: {path: /groups}
  members:
    for_each: groups
    request: {path: '/members/${ parent.id }'}
  details:
    for_each: groups
    batch: members
    request: {path: /details, method: POST, body_jq: '{ids: [$batch[].id]}'}
tables:
  groups: {from: groups, primary_key: [id]}
  members: {from: members, primary_key: [id]}
  details: {from: details, primary_key: [id]}
`, "")
	var ids []string
	groups := []any{}
	for i := range 8 {
		g := fmt.Sprintf("g%d", i)
		groups = append(groups, map[string]any{"id": g})
		fx.json("/members/"+g, []any{map[string]any{"id": "m-" + g}})
	}
	fx.json("/groups", groups)
	fx.mu.Lock()
	fx.routes["/details"] = func(w http.ResponseWriter, r *http.Request) {
		var body struct{ IDs []string }
		json.NewDecoder(r.Body).Decode(&body)
		fx.mu.Lock()
		ids = append(ids, fmt.Sprint(body.IDs))
		fx.mu.Unlock()
		if len(body.IDs) == 0 {
			http.Error(w, `{"message": "ids must not be empty"}`, http.StatusBadRequest)
			return
		}
		w.Write([]byte(`[{"id": "d1"}]`))
	}
	fx.mu.Unlock()
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // which parent's chains run first varies
		res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db})
		if err != nil {
			t.Fatalf("Check: %v (%+v)", err, res)
		}
		fx.mu.Lock()
		got := ids
		ids = nil
		fx.mu.Unlock()
		if len(got) != 1 || got[0] == "[]" {
			t.Fatalf("details asked with the lists %v: want one request, carrying the members read", got)
		}
	}
	// No member anywhere: no list to send, and the check says why.
	for i := range 8 {
		fx.json(fmt.Sprintf("/members/g%d", i), []any{})
	}
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db})
	if err != nil {
		t.Fatalf("Check: %v (%+v)", err, res)
	}
	if d := res.Streams[2]; d.Status != engine.CheckNotReached || !strings.Contains(d.Detail, "stream members") || len(ids) != 0 {
		t.Errorf("details %+v, asked with %v: want not reached, naming its batch's stream, nothing sent", d, ids)
	}
}

// TestCheckPartialLookup: a check reads one page of a lookup's stream, so
// the lookup holds the values of that page only. A parent whose value is
// on another page cannot build its request (a run, reading every page,
// can): that is no failure of the endpoint, and the check probes with a
// parent whose request can be built. When none can, the stream is not
// reached, saying why.
func TestCheckPartialLookup(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  teams:
    request: {path: /teams}
  leads:
    request: {path: /leads}
    paginate: {type: cursor, token: .next, param: cursor}
    records: '.items[]'
  projects:
    for_each: teams
    request:
      path: /people/${ lookups.lead_of[parent.id] }/projects
lookups:
  lead_of: {from: leads, key: .team, value: .person}
tables:
  projects: {from: projects, primary_key: [id]}
`, "")
	teams := []any{}
	for i := range 8 {
		teams = append(teams, map[string]any{"id": fmt.Sprintf("t%d", (i+4)%8)})
	}
	fx.json("/teams", teams)
	fx.mu.Lock()
	fx.routes["/leads"] = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" { // page 1: t0's lead; the others' on page 2
			json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"team": "t0", "person": "ann"}}, "next": "p2"})
			return
		}
		items := []any{}
		for i := 1; i < 8; i++ {
			items = append(items, map[string]any{"team": fmt.Sprintf("t%d", i), "person": fmt.Sprintf("p%d", i)})
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items})
	}
	fx.mu.Unlock()
	fx.json("/people/ann/projects", []any{map[string]any{"id": 1}})
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db})
	if err != nil {
		t.Fatalf("Check: %v (%+v)", err, res)
	}
	if p := res.Streams[2]; p.Status != engine.CheckOK || p.Requests != 1 || p.Records != 1 {
		t.Errorf("projects %+v: want ok, asked once, for t0 (the one lead the check read)", p)
	}
	// No lead on the page read: no request can be built.
	fx.mu.Lock()
	fx.routes["/leads"] = func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"items": []any{}, "next": "p2"})
	}
	fx.mu.Unlock()
	res, err = engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db})
	if err != nil {
		t.Fatalf("Check with no lead read: %v (%+v)", err, res)
	}
	if p := res.Streams[2]; p.Status != engine.CheckNotReached || !strings.Contains(p.Detail, "lookup") {
		t.Errorf("projects %+v: want not reached, naming the lookups", p)
	}
}

// TestCheckUnbuiltRequestSaysWhy: a stream reading lookups whose request
// no parent could build is not reached, and the check says the first
// error (its parent and what was null), not only "the log names it": the
// user sees whether the lookup's page was short or the spec is wrong. A
// null parent field is no partial lookup: a run fails that chain too,
// so the check fails the stream, as it does one reading no lookup.
func TestCheckUnbuiltRequestSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		status      string
		detail      []string
	}{
		{"lookup miss", `lead: "${ lookups.lead_of[parent.id] }"`, engine.CheckNotReached,
			[]string{"teams[id=t", "lookups.lead_of[parent.id] is null", "one page of each lookup's stream"}},
		{"parent field", `lead: "${ lookups.lead_of[parent.id] ?? 'x' }", team: "t-${ parent.name }"`, engine.CheckFailed,
			[]string{"teams[id=t", "parent.name is null"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  teams:
    request: {path: /teams}
  leads:
    request: {path: /leads}
  projects:
    for_each: teams
    request:
      path: /projects
      query: {`+tc.query+`}
lookups:
  lead_of: {from: leads, key: .team, value: .person}
tables:
  projects: {from: projects, primary_key: [id]}
`, "")
			fx.json("/teams", []any{map[string]any{"id": "t1"}, map[string]any{"id": "t2"}})
			fx.json("/leads", []any{})
			fx.json("/projects", []any{map[string]any{"id": 1}})
			cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatal(err)
			}
			res, _ := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db})
			if res == nil {
				t.Fatal("no result")
			}
			p := res.Streams[2]
			if p.Stream != "projects" || p.Status != tc.status || p.Requests != 0 {
				t.Fatalf("projects %+v: want %s, no request sent", p, tc.status)
			}
			for _, d := range tc.detail {
				if !strings.Contains(p.Detail, d) {
					t.Errorf("projects' detail %q lacks %q", p.Detail, d)
				}
			}
		})
	}
}

// TestCheckLeavesOutLookupSourceOfEntities: a lookup read by a stream's
// Port entities needs its stream as much as one read by a table's rows.
func TestCheckLeavesOutLookupSourceOfEntities(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
  touch:
    request: {path: /touch, method: PATCH}
lookups:
  touched: {from: touch, key: .id, value: .v}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id, properties: {v: '$lookups.touched[.id]'}}
`, itemBlueprint)
	fx.json("/items", []any{map[string]any{"id": "i1"}})
	fx.json("/touch", []any{map[string]any{"id": "i1", "v": "x"}})
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	creds := engine.PortOptions{BaseURL: fx.port.URL(), ClientID: fx.port.ClientID(), ClientSecret: fx.port.ClientSecret()}
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Port: creds})
	if err != nil {
		t.Fatalf("Check: %v (%+v)", err, res)
	}
	if reqs := fx.takeRequests(); len(reqs) != 0 {
		t.Errorf("the check sent %v: want nothing (items' entities read a lookup of the PATCH stream)", reqs)
	}
	if s := res.Streams[0]; s.Status != engine.CheckLeftOut || !strings.Contains(s.Detail, "lookup touched") {
		t.Errorf("items %+v: want left out, naming lookup touched", s)
	}
}

// TestCheckNothingAnswered: a check whose every stream is left out or not
// reached tried no credential: it fails, saying so, rather than pass.
func TestCheckNothingAnswered(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  export:
    async:
      create: {path: /exports, id: .id}
      poll: {path: '/exports/${ job.id }', done: .done}
      download: {urls: '[.files[]]'}
  off:
    when: 'false'
    request: {path: /off}
tables:
  export: {from: export, primary_key: [id]}
  off: {from: off, primary_key: [id]}
`, "")
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db})
	if !errors.Is(err, engine.ErrCheckedNothing) || res == nil || res.Proved() {
		t.Fatalf("Check = %+v, %v: want ErrCheckedNothing", res, err)
	}
	if reqs := fx.takeRequests(); len(reqs) != 0 {
		t.Errorf("requests %v, want none", reqs)
	}
}
