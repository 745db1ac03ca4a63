package engine_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// fixture is a spec (and optional blueprints) in a temp dir, an API whose
// routes a test can change between runs, and a Port simulator.
type fixture struct {
	t    *testing.T
	dir  string
	spec *engine.Spec
	db   string
	port *portsim.Server

	mu       sync.Mutex
	routes   map[string]func(w http.ResponseWriter, r *http.Request)
	requests []string
	api      *httptest.Server
}

func newFixture(t *testing.T, specSrc, blueprints string) *fixture {
	t.Helper()
	fx := &fixture{t: t, dir: t.TempDir(), routes: map[string]func(http.ResponseWriter, *http.Request){}}
	if blueprints != "" {
		if err := os.WriteFile(filepath.Join(fx.dir, "bp.json"), []byte(blueprints), 0o644); err != nil {
			t.Fatal(err)
		}
		fx.port = portsim.New(portsim.Options{RateLimit: -1})
		t.Cleanup(fx.port.Close)
	}
	path := filepath.Join(fx.dir, "s.yaml")
	if err := os.WriteFile(path, []byte(specSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fx.spec = sp
	fx.db = "sqlite:" + filepath.Join(fx.dir, "t.db")
	fx.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fx.mu.Lock()
		fx.requests = append(fx.requests, r.URL.EscapedPath())
		h := fx.routes[r.URL.EscapedPath()]
		fx.mu.Unlock()
		if h == nil {
			http.Error(w, "no route "+r.URL.EscapedPath(), http.StatusNotFound)
			return
		}
		h(w, r)
	}))
	t.Cleanup(fx.api.Close)
	return fx
}

// json serves v as JSON at path.
func (fx *fixture) json(path string, v any) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.routes[path] = func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(v) }
}

// raw serves a fixed status and body at path.
func (fx *fixture) raw(path string, status int, body string) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.routes[path] = func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

func (fx *fixture) takeRequests() []string {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	out := fx.requests
	fx.requests = nil
	slices.Sort(out)
	return out
}

func (fx *fixture) run(opts engine.RunOptions) (*engine.Result, error) {
	fx.t.Helper()
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		fx.t.Fatal(err)
	}
	if opts.Dest == "" && len(fx.spec.Tables()) > 0 {
		opts.Dest = fx.db
	}
	if fx.port != nil {
		opts.Port = engine.PortOptions{BaseURL: fx.port.URL(), ClientID: fx.port.ClientID(), ClientSecret: fx.port.ClientSecret()}
	}
	return engine.Run(fx.t.Context(), fx.spec, cfg, opts)
}

// entities lists the catalog's identifiers of a blueprint, sorted.
func (fx *fixture) entities(bp string) []string {
	var out []string
	for _, e := range fx.port.Catalog().Entities {
		if e.Blueprint == bp {
			out = append(out, e.Identifier)
		}
	}
	slices.Sort(out)
	return out
}

func (fx *fixture) query(q string) []string {
	fx.t.Helper()
	return sqlStrings(fx.t, strings.TrimPrefix(fx.db, "sqlite:"), q)
}

func runErrorOf(t *testing.T, err error) *engine.RunError {
	t.Helper()
	var re *engine.RunError
	if !errors.As(err, &re) {
		t.Fatalf("want a RunError (failures listed, exit 1), got %v", err)
	}
	return re
}

const specHead = `version: 1
name: nl
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
`

const itemBlueprint = `[{"identifier": "item", "title": "Item", "schema": {"properties": {"v": {"type": "string", "title": "V"}}, "required": []},
  "relations": {"parent": {"target": "item", "many": false, "required": false}}},
 {"identifier": "group", "title": "Group", "schema": {"properties": {}, "required": []},
  "relations": {"members": {"target": "item", "many": true, "required": false}}}]`

// TestBadRecordFailsItselfNotItsBatch: a row without its primary key in one
// stream, in the same batch as another stream's rows, is one failed record;
// every other row of both streams is written and the run exits 1 naming it.
func TestBadRecordFailsItselfNotItsBatch(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  a:
    request: {path: /a}
  b:
    request: {path: /b}
tables:
  a: {from: a, primary_key: [id]}
  b: {from: b, primary_key: [id]}
`, "")
	fx.json("/a", []any{map[string]any{"id": 1}, map[string]any{"name": "no-id"}, map[string]any{"id": 3}})
	fx.json("/b", []any{map[string]any{"id": "x"}, map[string]any{"id": "y"}})
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), `stream a (a[name=no-id]): table a: row has no value for primary key column "id"`) {
		t.Errorf("failures = %v, want the one record of a without its key", re.Failures)
	}
	if got := fx.query(`SELECT id FROM "nl__a" ORDER BY id`); !slices.Equal(got, []string{"1", "3"}) {
		t.Errorf("table a = %v, want 1 and 3", got)
	}
	if got := fx.query(`SELECT id FROM "nl__b" ORDER BY id`); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("table b = %v, want x and y", got)
	}
}

// TestFailedRecordBlocksOnlyItsBlueprintsDeletion: an entity whose
// identifier maps to null is one failed record; its blueprint keeps its
// stale entities (the failed one may be among them), while a blueprint fed
// only by complete streams still reconciles.
func TestFailedRecordBlocksOnlyItsBlueprintsDeletion(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
  groups:
    request: {path: /groups}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id}
    - {blueprint: group, from: groups, identifier: .id}
`, itemBlueprint)
	fx.json("/items", []any{map[string]any{"id": "i1"}, map[string]any{"id": "i2"}})
	fx.json("/groups", []any{map[string]any{"id": "g1"}, map[string]any{"id": "g2"}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// i2's id turns null; g2 is gone from the source.
	fx.json("/items", []any{map[string]any{"id": "i1"}, map[string]any{"id": nil, "name": "broken"}})
	fx.json("/groups", []any{map[string]any{"id": "g1"}})
	res, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || re.Failures[0].Blueprint != "item" {
		t.Errorf("failures = %v, want one failed item record", re.Failures)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1", "i2"}) {
		t.Errorf("items = %v: a blueprint with a failed record must delete nothing", got)
	}
	if got := fx.entities("group"); !slices.Equal(got, []string{"g1"}) || res.Dest.Port.Deleted != 1 {
		t.Errorf("groups = %v (deleted %d), want g2 deleted", got, res.Dest.Port.Deleted)
	}
}

// TestDuplicateEntities: two mappings emitting one identifier are counted
// and reported whatever on_duplicate says; warn keeps the last, fail sends
// the first and fails the second, merge unites them.
func TestDuplicateEntities(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		members []any
		v       any
		failed  int
	}{
		{"warn", []any{"i2"}, "second", 0},
		{"fail", []any{"i1"}, "first", 1},
		{"merge", []any{"i1", "i2"}, "second", 0},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  one:
    request: {path: /one}
  two:
    for_each: one
    request: {path: /two}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: one, identifier: .id}
    - blueprint: group
      from: one
      identifier: '"g"'
      relations: {members: '[.id]'}
    - blueprint: group
      from: two
      identifier: '"g"'
      on_duplicate: `+tc.mode+`
      relations: {members: '[.id]'}
    - blueprint: item
      from: two
      identifier: .id
      properties: {v: .v}
`, itemBlueprint)
			fx.json("/one", []any{map[string]any{"id": "i1"}})
			fx.json("/two", []any{map[string]any{"id": "i2", "v": "second"}})
			res, err := fx.run(engine.RunOptions{})
			if tc.failed > 0 {
				re := runErrorOf(t, err)
				if len(re.Failures) != tc.failed || !strings.Contains(re.Failures[0].Error(), `identifier "g" already produced by this run (on_duplicate: fail)`) {
					t.Errorf("failures = %v", re.Failures)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			var dup *engine.Duplicate
			for i := range res.Summary.Duplicates {
				if d := &res.Summary.Duplicates[i]; d.Name == "group" {
					dup = d
				}
			}
			if dup == nil || dup.Count != 1 || dup.Modes[tc.mode] != 1 || len(dup.Examples) != 1 || !strings.Contains(dup.Examples[0], "one[id=i1] > two[id=i2]") {
				t.Errorf("duplicates = %+v, want group: 1 (%s) with its place", res.Summary.Duplicates, tc.mode)
			}
			g := fx.port.Entity("group", "g")
			if g == nil {
				t.Fatal("group g missing")
			}
			if got := g["relations"].(map[string]any)["members"]; fmt.Sprint(got) != fmt.Sprint(tc.members) {
				t.Errorf("members = %v, want %v", got, tc.members)
			}
		})
	}
}

// TestDuplicateRows: rows of one table sharing a primary key are counted;
// fail keeps the first, merge keeps every non-null column.
func TestDuplicateRows(t *testing.T) {
	for _, tc := range []struct {
		mode, want string
		failed     int
	}{
		{"warn", "|b1", 0},
		{"fail", "a1|", 1},
		{"merge", "a1|b1", 0},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  s:
    request: {path: /s}
tables:
  t: {from: s, primary_key: [id], columns: {a: STRING, b: STRING}, on_duplicate: `+tc.mode+`}
`, "")
			fx.json("/s", []any{map[string]any{"id": 1, "a": "a1", "b": nil}, map[string]any{"id": 1, "a": nil, "b": "b1"}})
			res, err := fx.run(engine.RunOptions{})
			if tc.failed > 0 {
				runErrorOf(t, err)
			} else if err != nil {
				t.Fatal(err)
			}
			if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Count != 1 {
				t.Errorf("duplicates = %+v", res.Summary.Duplicates)
			}
			if got := fx.query(`SELECT coalesce(a, '') || '|' || coalesce(b, '') FROM "nl__t"`); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("row = %v, want %q", got, tc.want)
			}
		})
	}
}

// TestDuplicateRowsAcrossKeyTypes: keys 1 and "1" (or true and "true")
// land on one row in every column type but JSON (the table stores "1" as 1
// in a number column, and 1 as "1" in a text one), so they are one key to
// the duplicate check: the second row was written over the first with no
// word, whatever on_duplicate said.
func TestDuplicateRowsAcrossKeyTypes(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  s:
    request: {path: /s}
tables:
  t: {from: s, primary_key: [id, ok], on_duplicate: fail}
`, "")
	fx.json("/s", []any{map[string]any{"id": 1, "ok": true, "a": "a1"}, map[string]any{"id": "1", "ok": "true", "a": "b1"}})
	res, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "already written by this sync") {
		t.Errorf("failures = %v, want the second row failed as a duplicate", re.Failures)
	}
	if len(res.Summary.Duplicates) != 1 || res.Summary.Duplicates[0].Count != 1 {
		t.Errorf("duplicates = %+v, want 1", res.Summary.Duplicates)
	}
	if got := fx.query(`SELECT a FROM "nl__t"`); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("rows = %v, want the first row kept", got)
	}
}

// TestBrokenAnswersAreFailures: a 200 with an empty body, or with an object
// where the list was, fails its chain; nothing fed by it is deleted, the
// run exits 1, no request goes to a URL built from a garbage record, and a
// rerun after the source heals is exact.
func TestBrokenAnswersAreFailures(t *testing.T) {
	for name, broken := range map[string]string{
		"empty body":               "",
		"object instead of list":   `{"error": "internal", "items": []}`,
		"whitespace only":          "  \n",
		"truncated JSON":           `[{"id": "e1"}, {"id"`,
		"trailing data after JSON": `[{"id": "e1"}] [{"id": "e2"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, specHead+`streams:
  apps:
    request: {path: /apps}
  envs:
    for_each: apps
    request:
      path: /apps/${ parent.id }/envs
  res:
    for_each: envs
    request:
      path: /apps/${ parents.apps.id }/envs/${ parent.id }/res
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: apps, identifier: .id}
    - {blueprint: item, from: envs, identifier: '$apps.id + "/" + .id'}
    - {blueprint: item, from: res, identifier: '$apps.id + "/" + $envs.id + "/" + .id'}
`, itemBlueprint)
			healthy := func() {
				fx.json("/apps", []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}})
				for _, app := range []string{"a", "b"} {
					fx.json("/apps/"+app+"/envs", []any{map[string]any{"id": "e1"}, map[string]any{"id": "e2"}})
					for _, env := range []string{"e1", "e2"} {
						fx.json("/apps/"+app+"/envs/"+env+"/res", []any{map[string]any{"id": "r1"}})
					}
				}
			}
			healthy()
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			before := fx.entities("item")
			if len(before) != 2+4+4 {
				t.Fatalf("first run: %d entities", len(before))
			}
			fx.takeRequests()
			fx.raw("/apps/a/envs", http.StatusOK, broken)
			res, err := fx.run(engine.RunOptions{})
			re := runErrorOf(t, err)
			if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "stream envs (apps[id=a]): page 1: GET "+fx.api.URL+"/apps/a/envs: 200") {
				t.Errorf("failures = %v, want the envs chain of app a", re.Failures)
			}
			if res.Dest.Port.Deleted != 0 {
				t.Errorf("a broken answer deleted %d entities", res.Dest.Port.Deleted)
			}
			if got := fx.entities("item"); !slices.Equal(got, before) {
				t.Errorf("catalog changed after a broken answer: %v", got)
			}
			for _, p := range fx.takeRequests() {
				if strings.Contains(p, "//") {
					t.Errorf("request to a wrong URL: %s", p)
				}
			}
			healthy()
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatalf("rerun after the source healed: %v", err)
			}
			if got := fx.entities("item"); !slices.Equal(got, before) {
				t.Errorf("after healing: %v, want %v", got, before)
			}
		})
	}
}

// TestNoRequestToAWrongURL: a path template that puts null or "" into a
// segment fails that chain, naming the stream, the parent and the template,
// and sends nothing.
func TestNoRequestToAWrongURL(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  envs:
    request: {path: /envs}
  graphs:
    for_each: envs
    request:
      path: /envs/${ parent.id }/graphs/${ parent.graph }
tables:
  graphs: {from: graphs, row: '{env: $parent.id, id}', primary_key: [env, id]}
`, "")
	fx.json("/envs", []any{map[string]any{"id": "dev", "graph": "g1"}, map[string]any{"id": "new", "graph": nil}, map[string]any{"id": "odd", "graph": ""}})
	fx.json("/envs/dev/graphs/g1", []any{map[string]any{"id": "n1"}})
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 2 {
		t.Fatalf("failures = %v, want the two envs without a graph", re.Failures)
	}
	for i, want := range []string{
		"stream graphs (envs[id=new]): request path /envs/${ parent.id }/graphs/${ parent.graph }: ${ parent.graph } is null",
		"stream graphs (envs[id=odd]): request path /envs/${ parent.id }/graphs/${ parent.graph }: ${ parent.graph } is empty",
	} {
		if !strings.Contains(re.Failures[i].Error(), want) {
			t.Errorf("failure %d = %v, want %q", i, re.Failures[i], want)
		}
	}
	if got := fx.takeRequests(); !slices.Equal(got, []string{"/envs", "/envs/dev/graphs/g1"}) {
		t.Errorf("requests = %v", got)
	}
}

// TestFailedRunResumes: a run with a failed chain keeps the checkpoints of
// the chains that finished; the next run asks only for what failed, and the
// tables end as after a clean run (an append table without a duplicate).
func TestFailedRunResumes(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  owners:
    request: {path: /parents}
  items:
    for_each: owners
    request:
      path: /parents/${ parent.id }/items
tables:
  items: {from: items, row: '{parent: $parent.id, id}', primary_key: [parent, id]}
  log: {from: items, mode: append, row: '{parent: $parent.id, id}'}
`, "")
	fx.json("/parents", []any{map[string]any{"id": "p1"}, map[string]any{"id": "p2"}, map[string]any{"id": "p3"}})
	for _, p := range []string{"p1", "p3"} {
		fx.json("/parents/"+p+"/items", []any{map[string]any{"id": 1}, map[string]any{"id": 2}})
	}
	var calls atomic.Int32
	fx.mu.Lock()
	fx.routes["/parents/p2/items"] = func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "session expired", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode([]any{map[string]any{"id": 1}})
	}
	fx.mu.Unlock()
	_, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	fx.takeRequests()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	// The parent list is read again to drive its children; of those, only
	// the failed one is asked for.
	if got := fx.takeRequests(); !slices.Equal(got, []string{"/parents", "/parents/p2/items"}) {
		t.Errorf("resumed run asked %v, want the parents and p2's items only", got)
	}
	want := []string{"p1/1", "p1/2", "p2/1", "p3/1", "p3/2"}
	for _, table := range []string{"items", "log"} {
		if got := fx.query(`SELECT parent || '/' || id FROM "nl__` + table + `" ORDER BY 1`); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", table, got, want)
		}
	}
	// The sync is over: the next run reads everything again.
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.takeRequests(); len(got) != 4 {
		t.Errorf("a run after a finished sync asked %v, want all 4 requests", got)
	}
}

// TestIncrementalReadNeverReconciles: a replace table fed by a stream read
// from a saved cursor saw only what changed; rows it did not see are not
// marked deleted.
func TestIncrementalReadNeverReconciles(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  events:
    incremental: {cursor: .at, initial: "0"}
    request:
      path: /events
      query: {since: '${ cursor }'}
tables:
  events: {from: events, primary_key: [id], mode: replace}
`, "")
	fx.mu.Lock()
	fx.routes["/events"] = func(w http.ResponseWriter, r *http.Request) {
		all := []map[string]any{{"id": 1, "at": "1"}, {"id": 2, "at": "2"}}
		var out []any
		for _, e := range all {
			if e["at"].(string) > r.URL.Query().Get("since") {
				out = append(out, e)
			}
		}
		json.NewEncoder(w).Encode(out)
	}
	fx.mu.Unlock()
	for range 2 {
		if _, err := fx.run(engine.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__events" WHERE _ferry_deleted ORDER BY id`); len(got) != 0 {
		t.Errorf("rows marked deleted after an incremental run: %v", got)
	}
}

// TestSkippedChildOfFailedParentIsIncomplete: a parent record that failed
// its mapping still drives its children; a child skipped by `when` because
// of the broken parent makes the child's blueprint incomplete: nothing is
// deleted from it.
func TestSkippedChildOfFailedParentIsIncomplete(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  envs:
    request: {path: /envs}
  nodes:
    for_each: envs
    when: parent.graph != nil
    request:
      path: /envs/${ parent.id }/graphs/${ parent.graph }
port:
  blueprints: bp.json
  entities:
    - {blueprint: group, from: envs, identifier: .name}
    - {blueprint: item, from: nodes, identifier: '$envs.id + "/" + .id'}
`, itemBlueprint)
	prod := map[string]any{"id": "prod", "name": "prod", "graph": "g"}
	fx.json("/envs", []any{map[string]any{"id": "dev", "name": "dev", "graph": "g"}, prod})
	for _, env := range []string{"dev", "prod"} {
		fx.json("/envs/"+env+"/graphs/g", []any{map[string]any{"id": "n1"}, map[string]any{"id": "n2"}})
	}
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	before := fx.entities("item")
	// dev comes back broken: no name (its mapping fails) and no graph. Its
	// two nodes are half the blueprint: below the deletion threshold.
	fx.json("/envs", []any{map[string]any{"id": "dev"}, prod})
	res, err := fx.run(engine.RunOptions{})
	runErrorOf(t, err)
	if res.Dest.Port.Deleted != 0 || !slices.Equal(fx.entities("item"), before) {
		t.Errorf("deleted %d; items %v: a child skipped because of a broken parent deleted its entities", res.Dest.Port.Deleted, fx.entities("item"))
	}
}

// sqlStrings runs q on an SQLite file and returns the first column of every
// row as text.
func sqlStrings(t *testing.T, path, q string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// TestFailedRecordIsTriedAgain: a record that failed its mapping is not
// skipped by the resumed run because its chain finished: the resumed run
// re-reads its page and writes that record only (an append table gets no
// row twice).
func TestFailedRecordIsTriedAgain(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset, size: 2, size_param: limit}
tables:
  items: {from: items, primary_key: [id], row: '{id, n: (.n | tonumber)}'}
  log: {from: items, mode: append, row: '{id}'}
`, "")
	page := func(n3 string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			all := []any{map[string]any{"id": 1, "n": "1"}, map[string]any{"id": 2, "n": "2"}, map[string]any{"id": 3, "n": n3}, map[string]any{"id": 4, "n": "4"}}
			var off int
			fmt.Sscan(r.URL.Query().Get("offset"), &off)
			json.NewEncoder(w).Encode(all[min(off, len(all)):min(off+2, len(all))])
		}
	}
	fx.mu.Lock()
	fx.routes["/items"] = page("three") // not a number: the row mapping fails
	fx.mu.Unlock()
	_, err := fx.run(engine.RunOptions{})
	if re := runErrorOf(t, err); len(re.Failures) != 1 || re.Failures[0].Table != "items" {
		t.Fatalf("failures = %v, want record 3 in table items", re.Failures)
	}
	fx.mu.Lock()
	fx.routes["/items"] = page("3")
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := fx.query(`SELECT id || ':' || n FROM "nl__items" ORDER BY id`); !slices.Equal(got, []string{"1:1", "2:2", "3:3", "4:4"}) {
		t.Errorf("items = %v", got)
	}
	if got := fx.query(`SELECT id FROM "nl__log" ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Errorf("log = %v, want each id once", got)
	}
}

// TestStaleSyncIsNotResumed: a failed run's checkpoints are resumed by a
// run within --resume-within; a later run starts a new sync and reads
// everything, so one request that keeps failing cannot keep the other
// streams' data old for ever.
func TestStaleSyncIsNotResumed(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  ok:
    request: {path: /ok}
  flaky:
    request: {path: /flaky}
tables:
  ok: {from: ok, primary_key: [id]}
  flaky: {from: flaky, primary_key: [id]}
`, "")
	fx.json("/ok", []any{map[string]any{"id": 1}})
	fx.raw("/flaky", http.StatusBadRequest, "down")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) func() time.Time { return func() time.Time { return start.Add(d) } }
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{Now: at(0)}); return err }())
	fx.takeRequests()
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{Now: at(time.Hour)}); return err }())
	if got := fx.takeRequests(); !slices.Equal(got, []string{"/flaky"}) {
		t.Errorf("a run an hour later asked %v, want only the failed /flaky (resumed)", got)
	}
	runErrorOf(t, func() error { _, err := fx.run(engine.RunOptions{Now: at(25 * time.Hour)}); return err }())
	if got := fx.takeRequests(); !slices.Equal(got, []string{"/flaky", "/ok"}) {
		t.Errorf("a run 25 hours after the sync began asked %v, want everything again", got)
	}
}

// TestHardDeleteFromTheSpec: hard_delete on a replace table deletes the
// rows a complete sync did not see instead of marking them.
func TestHardDeleteFromTheSpec(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  s:
    request: {path: /s}
tables:
  soft: {from: s, primary_key: [id], mode: replace}
  hard: {from: s, primary_key: [id], mode: replace, hard_delete: true}
`, "")
	fx.json("/s", []any{map[string]any{"id": 1}, map[string]any{"id": 2}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	fx.json("/s", []any{map[string]any{"id": 1}})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT id || ':' || _ferry_deleted FROM "nl__soft" ORDER BY id`); !slices.Equal(got, []string{"1:0", "2:1"}) {
		t.Errorf("soft = %v, want 2 marked", got)
	}
	if got := fx.query(`SELECT id FROM "nl__hard" ORDER BY id`); !slices.Equal(got, []string{"1"}) {
		t.Errorf("hard = %v, want 2 deleted", got)
	}
}

// TestIncrementalParentNeverReconcilesChildren: a child stream driven by an
// incremental parent read from a saved cursor sees only the children of
// parents that changed; the child's replace table must not mark the
// others' rows deleted.
func TestIncrementalParentNeverReconcilesChildren(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  repos:
    incremental: {cursor: .at, initial: "0"}
    request:
      path: /repos
      query: {since: '${ cursor }'}
  issues:
    for_each: repos
    request: {path: '/repos/${ parent.id }/issues'}
tables:
  issues: {from: issues, primary_key: [id], mode: replace}
`, "")
	fx.mu.Lock()
	fx.routes["/repos"] = func(w http.ResponseWriter, r *http.Request) {
		all := []map[string]any{{"id": "a", "at": "1"}, {"id": "b", "at": "2"}}
		out := []any{}
		for _, e := range all {
			if e["at"].(string) > r.URL.Query().Get("since") {
				out = append(out, e)
			}
		}
		json.NewEncoder(w).Encode(out)
	}
	for _, repo := range []string{"a", "b"} {
		fx.routes["/repos/"+repo+"/issues"] = func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode([]map[string]any{{"id": repo + "1"}})
		}
	}
	fx.mu.Unlock()
	for range 2 {
		if _, err := fx.run(engine.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.query(`SELECT id FROM "nl__issues" WHERE _ferry_deleted ORDER BY id`); len(got) != 0 {
		t.Errorf("child rows marked deleted after a run whose parent read only what changed: %v", got)
	}
}
