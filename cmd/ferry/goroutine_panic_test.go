package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// The CLI's own goroutines (the signal handler, the progress lines, the
// live view) recover a panic as a command does: an internal error, its
// message redacted by the command's secrets, kept for the command's end
// and shown there with exit 1; not the runtime's stack on stderr, which
// may quote a secret, and exit 2.

const goKey = "KEYs3cret-goroutine"

func secretApp(stderr io.Writer) *app {
	a := newApp(nil, strings.NewReader(""), io.Discard, stderr)
	a.setRedact(func(s string) string { return strings.ReplaceAll(s, goKey, "REDACTED") })
	return a
}

// waitPanics waits for a goroutine of a to keep a panic.
func waitPanics(t *testing.T, a *app) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		a.panicsMu.Lock()
		n := len(a.panics)
		a.panicsMu.Unlock()
		if n > 0 {
			return
		}
	}
	t.Fatal("no panic kept")
}

func wantInternal(t *testing.T, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "internal error") || !strings.Contains(err.Error(), "forced bug; key REDACTED") || strings.Contains(err.Error(), goKey) {
		t.Errorf("err = %v, want the internal error, redacted", err)
	}
	if code := engine.ExitCode(err, false); code != engine.ExitFailed {
		t.Errorf("exit code %d, want %d", code, engine.ExitFailed)
	}
}

// TestSignalHandlerPanicIsAnInternalError: the handler panics saying the
// first Ctrl-C was taken (stderr's write panics): the run was cancelled,
// and the command ends with the internal error, exit 1 (not 130: a bug).
func TestSignalHandlerPanicIsAnInternalError(t *testing.T) {
	var stderr bytes.Buffer
	a := secretApp(&panicWriter{w: &stderr, on: "interrupted", msg: "forced bug; key " + goKey})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	a.watchSignals(sigs, cancel, func(int) { t.Error("exit called") })
	sigs <- os.Interrupt
	<-ctx.Done()
	waitPanics(t, a)
	code := a.main(ctx, []string{"version"})
	if code != engine.ExitFailed {
		t.Errorf("exit %d, want %d", code, engine.ExitFailed)
	}
	if s := stderr.String(); !strings.Contains(s, "ferry: internal error") || !strings.Contains(s, "forced bug; key REDACTED") || strings.Contains(s, goKey) {
		t.Errorf("stderr does not say the internal error, redacted:\n%s", s)
	}
	if a.takePanics() != nil {
		t.Error("the panic is kept after the command's end showed it")
	}
}

// finishedRun is the spec and the live counters of a dry run that ended.
func finishedRun(t *testing.T) (*engine.Spec, *engine.Live) {
	t.Helper()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id": "1"}]`))
	}))
	defer api.Close()
	path := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nname: s\nhttp: {base_url: "+api.URL+"}\nstreams:\n  items: {request: {path: /items}}\ntables:\n  items: {from: items, primary_key: [id]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var live *engine.Live
	if _, err := engine.Run(t.Context(), sp, cfg, engine.RunOptions{DryRun: true, Stdout: io.Discard, StateFile: filepath.Join(t.TempDir(), "state.json"),
		OnStart: func(l *engine.Live) { live = l }}); err != nil {
		t.Fatal(err)
	}
	return sp, live
}

// panicHandler is a slog handler whose Handle panics with msg.
type panicHandler struct {
	slog.Handler
	msg string
}

func (h panicHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h panicHandler) Handle(context.Context, slog.Record) error { panic(h.msg) }

// TestProgressLogPanicIsAnInternalError: the goroutine logging progress
// lines panics (its logger here): it ends, closing its done channel, and
// the panic is kept, redacted.
func TestProgressLogPanicIsAnInternalError(t *testing.T) {
	a := secretApp(io.Discard)
	sp, live := finishedRun(t)
	v := newLiveView(sp, live, false)
	stop := make(chan struct{})
	done := a.startLogProgress(slog.New(panicHandler{slog.DiscardHandler, "forced bug; key " + goKey}), v, time.Millisecond, stop)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the progress goroutine did not end")
	}
	close(stop)
	wantInternal(t, a.takePanics())
}

// TestLiveViewPanicIsAnInternalError: the live view's drawing goroutine
// panics (its render, after the first frame): it ends, the console
// draws no block any more (its lock free: log lines still print), and
// stopLive returns; the panic is kept, redacted.
func TestLiveViewPanicIsAnInternalError(t *testing.T) {
	a := secretApp(io.Discard)
	var w bytes.Buffer
	c := newConsole(&w, -1)
	var calls atomic.Int64
	c.startLive(func(int, int) []string {
		if calls.Add(1) > 1 {
			panic("forced bug; key " + goKey)
		}
		return []string{"block"}
	}, time.Millisecond, a.guard)
	waitPanics(t, a)
	done := make(chan struct{})
	go func() {
		// The block's drawing ended with the panic: no render now.
		c.Write([]byte("a log line\n"))
		c.stopLive()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the console is stuck")
	}
	if !strings.Contains(w.String(), "a log line\n") {
		t.Errorf("the log line was not printed: %q", w.String())
	}
	wantInternal(t, a.takePanics())
}

// TestInternalErrorOutranksInterrupt: a run interrupted (its error
// context.Canceled, its context done) that also met a panic (the signal
// handler's, say) ends with exit 1, a bug, not 130, in its report too.
func TestInternalErrorOutranksInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	a := secretApp(io.Discard)
	bug := a.recovered("forced bug; key " + goKey)
	if code := exitCode(ctx, errors.Join(context.Canceled, bug)); code != engine.ExitFailed {
		t.Errorf("exit %d, want %d", code, engine.ExitFailed)
	}
	if code := exitCode(ctx, context.Canceled); code != engine.ExitInterrupted {
		t.Errorf("interrupted alone: exit %d, want %d", code, engine.ExitInterrupted)
	}
}

// TestCommandPanicRedactsFetchedToken: once a run started, a panic of the
// command's (here printing the summary, after the run) is redacted as the
// run's logs are: the OAuth2 access token the run fetched too, not only
// the secret inputs.
func TestCommandPanicRedactsFetchedToken(t *testing.T) {
	const access = "at-9e8d7c6b5a4f"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			fmt.Fprintf(w, `{"access_token": %q, "expires_in": 3600}`, access)
			return
		}
		w.Write([]byte(`[{"id": "1"}]`))
	}))
	defer api.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"spec.yaml": `version: 1
name: tok
config:
  url: {required: true}
  secret: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: oauth2, token_url: "${ config.url }/token", client_id: id, client_secret: "${ config.secret }"}
streams:
  items: {request: {path: /items}}
tables:
  items: {from: items, primary_key: [id]}
`})
	var stderr bytes.Buffer
	errw := &panicWriter{w: &stderr, on: "records are what the API gave", msg: "forced bug; token " + access + " key " + goKey}
	code := run(t.Context(), []string{"run", "spec.yaml", "--dest", "sqlite:out.db", "--progress", "none", "--report", "r.json",
		"--set", "url=" + api.URL, "--set", "secret=" + goKey}, strings.NewReader(""), io.Discard, errw)
	if code != engine.ExitFailed {
		t.Errorf("exit %d, want %d:\n%s", code, engine.ExitFailed, stderr.String())
	}
	data, err := os.ReadFile("r.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{stderr.String(), string(data)} {
		if !strings.Contains(s, "forced bug; token REDACTED key REDACTED") || strings.Contains(s, access) || strings.Contains(s, goKey) {
			t.Errorf("the panic is not shown redacted:\n%s", s)
		}
	}
}
