package runner_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
)

// redactKey is long enough that a jq error previews only its start.
const redactKey = "k3y-s3cret-value-that-is-much-longer-0123456789"

// checkRedacted fails the test when the key, or its first bytes, are in
// the run's error, its failures, its skips or its logs; it returns the
// failures' text, to check what they still say.
func checkRedacted(t *testing.T, sum *runner.Summary, err error, logs string) string {
	t.Helper()
	var all strings.Builder
	if err != nil {
		all.WriteString(err.Error() + "\n")
	}
	for _, f := range sum.Failures {
		all.WriteString(f.Error() + "\n")
	}
	for _, s := range sum.Skips {
		all.WriteString(s.Parents + " " + s.Reason + "\n")
	}
	all.WriteString(logs)
	if strings.Contains(all.String(), redactKey[:12]) {
		t.Errorf("the secret reached a message:\n%s", all.String())
	}
	return all.String()
}

// An export job that never finishes fails with its last answer, which
// here echoes the query API key in a link.
func TestPollTimeoutAnswerRedacted(t *testing.T) {
	const spec = `
version: 1
name: t
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: query, param: api_key, value: "${ config.key }"}
streams:
  export:
    async:
      create: {path: /exports, body: {x: 1}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "completed", every: 1s, timeout: 5s}
      download: {urls: '[.files[].url]'}
    response: {format: ndjson}
tables:
  exported: {from: export, primary_key: [id]}
`
	sum, logs, err := runWithSecret(t, spec, []apitest.Route{
		{Method: "POST", Path: "/exports", Status: 202, Body: map[string]any{"id": "j1"}},
		{Path: "/exports/j1", Body: map[string]any{"status": "running", "self": "/exports/j1?api_key=" + redactKey}},
	})
	var re *runner.RunError
	if !errors.As(err, &re) || len(sum.Failures) != 1 {
		t.Fatalf("run: %v, want one failed chain", err)
	}
	if msg := checkRedacted(t, sum, err, logs); !strings.Contains(msg, "api_key=REDACTED") {
		t.Errorf("the failure no longer shows the last answer:\n%s", msg)
	}
}

// A mapping whose jq fails on a secret value: gojq's message quotes the
// value, or its first bytes.
func TestJQErrorOnSecretRedacted(t *testing.T) {
	const spec = secretSpecHead + `streams:
  items:
    request: {path: /items}
tables:
  items: {from: items, row: '{id, x: (.n + $config.key)}'}
`
	sum, logs, err := runWithSecret(t, spec, []apitest.Route{
		{Path: "/items", Body: []any{map[string]any{"id": "a", "n": 1}}},
	})
	if err == nil || len(sum.Failures) != 1 || !sum.Failures[0].Record() {
		t.Fatalf("run: %v, want one failed record", err)
	}
	if msg := checkRedacted(t, sum, err, logs); !strings.Contains(msg, "cannot add") {
		t.Errorf("the failure no longer says why:\n%s", msg)
	}
}

// A credential's template fails on the secret it renders: the run stops
// before its first request, and gojq's message previews the value.
func TestTemplateErrorOnSecretRedacted(t *testing.T) {
	const spec = secretSpecHead + `  headers:
    x-sig: "${ int(config.key) }"
streams:
  items:
    request: {path: /items}
tables:
  items: {from: items}
`
	pool := fetch.NewPool(fetch.Options{Secrets: []string{redactKey}})
	_, err := runner.New(mustSpec(t, spec), runner.Options{Config: map[string]any{"url": "http://127.0.0.1:1", "key": redactKey}, Pool: pool})
	if err == nil {
		t.Fatal("New succeeded with a header that cannot be rendered")
	}
	if strings.Contains(err.Error(), redactKey[:12]) || !strings.Contains(err.Error(), "x-sig") {
		t.Errorf("error = %v, want it to name the header and not the secret", err)
	}
}

// A login whose token program does not fit the answer: the answer is a
// credential (here the session token sits one level up), and gojq's
// message would preview it. The error says where it failed, not what the
// answer holds.
func TestLoginTokenProgramErrorHidesTheAnswer(t *testing.T) {
	const session = "sess-0f9e8d7c6b5a"
	const spec = `
version: 1
name: t
config:
  url: {required: true}
  password: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth:
    type: session
    header: X-Auth
    login:
      path: /login
      body: {password: "${ config.password }"}
      token: .credentials.token
streams:
  items:
    request: {path: /items}
tables:
  items: {from: items}
`
	s, err := apitest.Start(apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/login", Body: map[string]any{"credentials": session}},
		{Path: "/items", Body: []any{map[string]any{"id": "a"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sum, err := runWith(t, mustSpec(t, spec), runOpts{cfg: map[string]any{"url": s.URL(), "password": "pa55-w0rd"}, log: log}, newStateful())
	if err == nil || len(sum.Failures) != 1 {
		t.Fatalf("run: %v, want one failed chain", err)
	}
	msg := checkRedacted(t, sum, err, logs.String())
	if strings.Contains(msg, session[:8]) {
		t.Errorf("the login answer reached a message:\n%s", msg)
	}
	if !strings.Contains(msg, "token") || !strings.Contains(msg, "/login") {
		t.Errorf("the failure no longer says which program failed on which answer:\n%s", msg)
	}
}

// runWithSecret runs spec, whose config takes url and the secret key
// (redactKey), against an API of routes, logging at debug level; it returns
// the summary, the log and the run's error.
func runWithSecret(t *testing.T, spec string, routes []apitest.Route) (*runner.Summary, string, error) {
	t.Helper()
	s, err := apitest.Start(apitest.Fixture{Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sum, err := runWith(t, mustSpec(t, spec), runOpts{cfg: map[string]any{"url": s.URL(), "key": redactKey}, log: log}, newStateful())
	return sum, logs.String(), err
}

// secretSpecHead starts the specs of runWithSecret: a url, and the secret
// key as a bearer token.
const secretSpecHead = `
version: 1
name: t
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: bearer, token: "${ config.key }"}
`
