package engine_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestCheckLogShowsNoSecret: a check whose request, reading a lookup,
// cannot be built logs why (a warning, shown by default), and the expr
// error it logs quotes the secret value it failed on: the line shows it
// redacted, as the check's detail does.
func TestCheckLogShowsNoSecret(t *testing.T) {
	const key = "KEYlog-9x8y7z6w"
	fx := newFixture(t, `version: 1
name: nl
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 1}
streams:
  teams:
    request: {path: /teams}
  leads:
    request: {path: /leads}
  projects:
    for_each: teams
    request:
      path: /people/${ lookups.lead_of[parent.id] + string(int(config.key)) }/projects
lookups:
  lead_of: {from: leads, key: .team, value: .person}
tables:
  projects: {from: projects, primary_key: [id]}
`, "")
	fx.json("/teams", []any{map[string]any{"id": "t1"}})
	fx.json("/leads", []any{map[string]any{"team": "t1", "person": "ann"}})
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL, "key": key}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Streams[2]; p.Status != engine.CheckNotReached || !strings.Contains(p.Detail, "int(REDACTED)") {
		t.Errorf("projects %+v: want not reached, the error redacted", p)
	}
	if !strings.Contains(logs.String(), "could not be built") || !strings.Contains(logs.String(), "int(REDACTED)") {
		t.Errorf("no warning of the unbuilt request, redacted:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), key) {
		t.Errorf("the logs hold the key:\n%s", logs.String())
	}
}

const partitionLogSpec = `version: 1
name: s
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  rules:
    - {status: 404, action: skip, message: .error}
streams:
  accts:
    partitions: {values: ["${ 'acct-' + config.key }", "plain-acct-1"]}
  items:
    for_each: accts
    request: {path: "/accounts/${ parent.value }/items"}
tables:
  items: {from: items, primary_key: [id]}
`

// TestRunLogShowsNoSecret: the run's log lines that name a request's
// parents (here the warning of a request a response rule skipped) show a
// partition value built from a secret input redacted, as its request's URL
// and the report's skip do; so do a plan's.
func TestRunLogShowsNoSecret(t *testing.T) {
	const key = "KEYpart-1q2w3e4r"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error": "no such account"}`))
	}))
	defer srv.Close()
	out, logs, cassette, runErr := runDerived(t, partitionLogSpec, srv, map[string]string{"key": key})
	if runErr != nil {
		t.Fatal(runErr)
	}
	if !strings.Contains(logs, `parents="accts[value=REDACTED]"`) || !strings.Contains(logs, `parents="accts[value=plain-acct-1]"`) {
		t.Errorf("no skipped request logged with its parents, the secret one redacted:\n%s", logs)
	}
	noneShown(t, map[string]string{"stdout": out, "logs": logs, "cassette": cassette}, map[string]string{"key": key})

	// A plan reads as the run does, and logs as it does.
	dir := t.TempDir()
	f := writeSpec(t, dir, "p.yaml", partitionLogSpec)
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "key": key}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var planLogs bytes.Buffer
	if _, err := engine.PlanRun(t.Context(), f, cfg, engine.PlanOptions{Dest: "sqlite:" + filepath.Join(dir, "p.db"), StateFile: filepath.Join(dir, "state.json"),
		Logger: slog.New(slog.NewTextHandler(&planLogs, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(planLogs.String(), `parents="accts[value=REDACTED]"`) {
		t.Errorf("the plan logged no skipped request with its parents redacted:\n%s", planLogs.String())
	}
	noneShown(t, map[string]string{"plan logs": planLogs.String()}, map[string]string{"key": key})
}
