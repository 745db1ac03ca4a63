package engine_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestChangedMappingFailsWithTheField: the shipped Humanitec case, run
// against a copy of the spec whose environment type mapping changed,
// fails with a difference per environment that names the field, and an
// annotation at the program that maps it.
func TestChangedMappingFailsWithTheField(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "specs", "humanitec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const mapping = "        type: .type\n        createdAt: .created_at\n        lastDeploymentStatus"
	if !strings.Contains(string(src), mapping) {
		t.Fatal("specs/humanitec.yaml no longer maps the environment type as this test expects")
	}
	changed := strings.Replace(string(src), mapping, "        type: .type | ascii_upcase\n        createdAt: .created_at\n        lastDeploymentStatus", 1)
	blueprints, err := os.ReadFile(filepath.Join("..", "specs", "humanitec-blueprints.json"))
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(filepath.Join("..", p))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	cases := `runs:
  - name: small-org
    config: {org_id: ferry-demo, pipelines_per_page: 3}
    cassette: ` + abs("testdata/recordings/humanitec/small-org") + `
    snapshot: ` + abs("testdata/snapshots/humanitec/small-org.jsonl") + `
`
	for name, data := range map[string]string{"humanitec.yaml": changed, "humanitec-blueprints.json": string(blueprints), "humanitec.test.yaml": cases} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := engine.RunTests(t.Context(), filepath.Join(dir, "humanitec.test.yaml"), engine.TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Cases[0]
	if c.Passed() || c.Err != nil {
		t.Fatalf("case passed = %v, err = %v; want differences", c.Passed(), c.Err)
	}
	envs := 0
	for _, d := range c.Diffs {
		text := strings.Join(d.Lines(), "\n")
		if d.Target != "blueprint humanitecEnvironment" || len(d.Fields) != 1 || d.Fields[0].Path != "properties.type" {
			t.Errorf("unexpected difference:\n%s", text)
			continue
		}
		envs++
		if f := d.Fields[0]; strings.ToUpper(f.Want) != f.Got {
			t.Errorf("difference %s: got %s, want %s", d.Name(), f.Got, f.Want)
		}
	}
	if envs != 9 {
		t.Errorf("%d environments differ, want the organisation's 9", envs)
	}
	line := strings.Count(changed[:strings.Index(changed, "type: .type | ascii_upcase")], "\n") + 1
	a := c.Annotations[0]
	if a.File != filepath.Join(dir, "humanitec.yaml") || a.Line != line || a.Col != 15 || !strings.Contains(a.Msg, `properties.type: got "DEVELOPMENT", want "development"`) && !strings.Contains(a.Msg, "properties.type: got ") {
		t.Errorf("annotation = %+v, want the spec at %d:15 naming properties.type", a, line)
	}
}

// TestEmptyCassetteNeverReachesTheNetwork: a run case whose cassette is
// "" (a template left unfilled) is refused with its position, before any
// request: replaying nothing would run the spec against the live API, and
// --update would then write what it answered into the snapshot.
func TestEmptyCassetteNeverReachesTheNetwork(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"id":"a"}]`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	files := map[string]string{
		"s.yaml": `version: 1
name: s
config:
  api_url: {required: true}
http: {base_url: "${ config.api_url }"}
streams:
  apps: {request: {path: /apps}}
tables:
  apps: {from: apps, primary_key: [id]}
`,
		"s.test.yaml": `runs:
  - name: live
    config: {api_url: "` + srv.URL + `"}
    cassette: ""
    snapshot: snap.jsonl
`,
		"snap.jsonl": `{"table":"apps","op":"upsert","row":{"id":"a"}}` + "\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := engine.RunTests(t.Context(), filepath.Join(dir, "s.test.yaml"), engine.TestOptions{Update: true})
	errs := engine.SpecErrors(err)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "s.test.yaml:4:15: runs[0].cassette: ") {
		t.Errorf("err = %v, want the empty cassette refused at 4:15", err)
	}
	if hits > 0 {
		t.Errorf("the case sent %d requests to the API", hits)
	}
}

// TestUpdateKeepsAMatchingSnapshot: --update leaves a snapshot the run
// matches as it is, even written otherwise (spacing, key order, the parts
// of a merged record in another order), and such a snapshot passes: a
// rewrite would be a diff to review with nothing in it.
func TestUpdateKeepsAMatchingSnapshot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"id":"a","name":"A"}]`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	spec := `version: 1
name: s
config:
  api_url: {required: true}
http: {base_url: "${ config.api_url }"}
streams:
  apps: {request: {path: /apps}}
tables:
  apps: {from: apps, primary_key: [id]}
`
	snapshot := `{ "table": "apps", "op": "upsert", "row": {"name": "A", "id": "a"} }` + "\n"
	files := map[string]string{
		"s.yaml":      spec,
		"s.test.yaml": "runs:\n  - name: one\n    config: {api_url: \"http://x.invalid\"}\n    cassette: rec\n    snapshot: snap.jsonl\n",
		"snap.jsonl":  snapshot,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sp, err := engine.Load(filepath.Join(dir, "s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"api_url": srv.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Run(t.Context(), sp, cfg, engine.RunOptions{DryRun: true, Stdout: io.Discard, Record: filepath.Join(dir, "rec")}); err != nil {
		t.Fatal(err)
	}
	for _, update := range []bool{false, true} {
		res, err := engine.RunTests(t.Context(), filepath.Join(dir, "s.test.yaml"), engine.TestOptions{Update: update})
		if err != nil {
			t.Fatal(err)
		}
		if c := res.Cases[0]; !c.Passed() || c.Updated {
			t.Errorf("update %v: passed %v, updated %v, diffs %+v", update, c.Passed(), c.Updated, c.Diffs)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "snap.jsonl")); string(got) != snapshot {
		t.Errorf("--update rewrote a matching snapshot:\n%s", got)
	}
}

// TestCaseClockPinsJQNow: a case's now is the clock jq's now reads in the
// spec's mappings, so a row stamped with it gives the same snapshot run
// after run (the wall clock made the case fail a second after --update).
func TestCaseClockPinsJQNow(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"s.yaml": `version: 1
name: s
config:
  api_url: {required: true}
http: {base_url: "${ config.api_url }"}
streams:
  apps: {request: {path: /apps}}
tables:
  apps: {from: apps, primary_key: [id], row: '{id, seen: (now | todate)}'}
`,
		"s.test.yaml": "runs:\n  - name: one\n    config: {api_url: \"http://x.invalid\"}\n    cassette: rec\n    snapshot: snap.jsonl\n    now: 2026-01-08T00:00:00Z\n",
		"snap.jsonl":  `{"table":"apps","op":"upsert","row":{"id":"a","seen":"2026-01-08T00:00:00Z"}}` + "\n",
		"rec/GET_apps_0000000000.json": `{"request": {"method": "GET", "url": "<config:api_url>/apps", "headers": {"Accept": "application/json"}},
 "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": [{"id": "a"}]}}`,
	}
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := engine.RunTests(t.Context(), filepath.Join(dir, "s.test.yaml"), engine.TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Cases[0]; !c.Passed() {
		var text []string
		for _, d := range c.Diffs {
			text = append(text, d.Lines()...)
		}
		t.Errorf("case failed: %v\n%s", c.Err, strings.Join(text, "\n"))
	}
}

// TestCaseClockPinsExprNow: a case's now is also the clock expr's now()
// reads in templates, so a request built from it (since yesterday) matches
// its recording whenever the case runs (the wall clock made it miss).
func TestCaseClockPinsExprNow(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"s.yaml": `version: 1
name: s
config:
  api_url: {required: true}
http: {base_url: "${ config.api_url }"}
streams:
  apps:
    request:
      path: /apps
      query: {since: '${ (now() - duration("24h")).Format("2006-01-02") }'}
tables:
  apps: {from: apps, primary_key: [id]}
`,
		"s.test.yaml": "runs:\n  - name: one\n    config: {api_url: \"http://x.invalid\"}\n    cassette: rec\n    snapshot: snap.jsonl\n    now: 2026-01-08T00:00:00Z\n",
		"snap.jsonl":  `{"table":"apps","op":"upsert","row":{"id":"a"}}` + "\n",
		"rec/GET_apps_0000000000.json": `{"request": {"method": "GET", "url": "<config:api_url>/apps?since=2026-01-07", "headers": {"Accept": "application/json"}},
 "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": [{"id": "a"}]}}`,
	}
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := engine.RunTests(t.Context(), filepath.Join(dir, "s.test.yaml"), engine.TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Cases[0]; !c.Passed() {
		var text []string
		for _, d := range c.Diffs {
			text = append(text, d.Lines()...)
		}
		t.Errorf("case failed: %v\n%s", c.Err, strings.Join(text, "\n"))
	}
}
