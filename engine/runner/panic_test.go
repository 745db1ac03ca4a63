package runner_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
)

// panicTransport sends requests on, but panics on those whose path
// holds cut, with a message quoting the URL (and so the query key).
type panicTransport struct{ cut string }

func (p panicTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, p.cut) {
		panic("transport broke on " + req.URL.String())
	}
	return http.DefaultTransport.RoundTrip(req)
}

// panicOutput panics on a row of table cut, quoting the secret.
type panicOutput struct {
	*collector
	cut, secret string
}

func (p panicOutput) Row(ctx context.Context, r sink.Row) error {
	if r.Table == p.cut {
		panic("cannot write a row of key " + p.secret)
	}
	return p.collector.Row(ctx, r)
}

// TestPanicIsARedactedError: a panic on one of the runner's goroutines
// does not end the process with its message, which quotes a secret: on a
// chain's (a request) it is that chain's failure, the others going on; on
// a release's (an Output's write) the run's error. Either is an internal
// error, redacted, and the stack is logged at debug level, redacted too.
func TestPanicIsARedactedError(t *testing.T) {
	const key = "KEYs3cret-panic"
	api := apitest.New(apitest.Fixture{Routes: []apitest.Route{
		{Path: "/items", Items: []any{map[string]any{"id": 1}, map[string]any{"id": 2}}},
		{Path: "/users", Items: []any{map[string]any{"id": 7}}},
	}})
	defer api.Close()
	f := mustSpec(t, `
version: 1
name: panics
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: query, param: api_key, value: "${ config.key }"}
streams:
  items: {request: {path: /items}}
  users: {request: {path: /users}}
tables:
  items: {from: items, primary_key: [id]}
  users: {from: users, primary_key: [id]}
`)
	run := func(transport http.RoundTripper, out runner.Output) (sum *runner.Summary, logged string, err error) {
		t.Helper()
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		pool := fetch.NewPool(fetch.Options{Logger: log, Secrets: []string{key}, Transport: transport,
			Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
		r, err := runner.New(f, runner.Options{Config: map[string]any{"url": api.URL(), "key": key}, Pool: pool, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		sum, err = r.Run(t.Context(), out)
		return sum, logs.String(), err
	}
	check := func(err error, logs, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "internal error") || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want an internal error saying %q", err, want)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("the error holds the key: %v", err)
		}
		if strings.Contains(logs, key) {
			t.Errorf("the logs hold the key:\n%s", logs)
		}
		if !strings.Contains(logs, "runtime/debug.Stack") && !strings.Contains(logs, "goroutine") {
			t.Errorf("no stack logged at debug level:\n%s", logs)
		}
	}

	t.Run("chain", func(t *testing.T) {
		out := newCollector()
		sum, logs, err := run(panicTransport{cut: "/items"}, out)
		check(err, logs, "transport broke on")
		var re *runner.RunError
		if !errors.As(err, &re) || len(re.Failures) != 1 || re.Failures[0].Stream != "items" {
			t.Fatalf("err = %v, want the items chain's failure alone", err)
		}
		if len(out.rows["users"]) != 1 || sum == nil {
			t.Errorf("users rows %v: the other chain did not go on", out.rows["users"])
		}
	})
	t.Run("release", func(t *testing.T) {
		_, logs, err := run(nil, panicOutput{collector: newCollector(), cut: "items", secret: key})
		check(err, logs, "cannot write a row of key REDACTED")
	})
}
