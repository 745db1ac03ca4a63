package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// TestSecondInterruptQuits: the first Ctrl-C stops fetching and lets ferry
// write what it fetched, which may take long (here a Port upload that
// never answers); a second Ctrl-C quits at once, with exit code 130.
func TestSecondInterruptQuits(t *testing.T) {
	bin := ferryBin(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id": "a"}, {"id": "b"}]`))
	}))
	defer api.Close()
	sim := portsim.New(portsim.Options{RateLimit: -1})
	defer sim.Close()
	target, err := url.Parse(sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	reached := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	port := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/entities/bulk") {
			once.Do(func() { close(reached) })
			<-release // the upload hangs until the test ends
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer port.Close()
	defer close(release)

	dir := t.TempDir()
	files := map[string]string{
		"spec.yaml": `version: 1
name: sig
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  items:
    request: {path: /items}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id}
`,
		"bp.json": `[{"identifier": "item", "title": "Item", "schema": {"properties": {}, "required": []}}]`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "spec.yaml", "--set", "url="+api.URL, "--progress", "none")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT_CLIENT_ID="+sim.ClientID(), "PORT_CLIENT_SECRET="+sim.ClientSecret(), "PORT_BASE_URL="+port.URL)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	waitFor := func(what string) {
		t.Helper()
		for line := range lines {
			seen = append(seen, line)
			if strings.Contains(line, what) {
				return
			}
		}
		t.Fatalf("ferry ended without saying %q:\n%s", what, strings.Join(seen, "\n"))
	}
	select {
	case <-reached:
	case <-ctx.Done():
		t.Fatal("the Port upload never started")
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// Signals do not queue: the second is sent once the first was handled.
	waitFor("Ctrl-C again to quit at once")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waitFor("quitting at once")
	for line := range lines {
		seen = append(seen, line)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("ferry was killed by %v (%v), not ended by its handler", ws.Signal(), err)
	}
	if code := cmd.ProcessState.ExitCode(); code != engine.ExitInterrupted {
		t.Errorf("exit %d, want %d:\n%s", code, engine.ExitInterrupted, strings.Join(seen, "\n"))
	}
}

// TestDryRunIntoClosedPipe: `ferry run --dry-run | head -1` whose reader
// is gone before the rows are printed is a dry run cut short: ferry says so
// (exit 1, not a silent death by SIGPIPE) and the --report it was given
// is written, with the failure, as it is however a run ends.
func TestDryRunIntoClosedPipe(t *testing.T) {
	bin := ferryBin(t)
	var rows strings.Builder
	rows.WriteString("[")
	for i := range 5000 { // far more than a pipe's buffer
		if i > 0 {
			rows.WriteString(",")
		}
		fmt.Fprintf(&rows, `{"id": %d, "name": "item number %d"}`, i, i)
	}
	rows.WriteString("]")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(rows.String()))
	}))
	defer api.Close()
	dir := t.TempDir()
	spec := "version: 1\nname: pipe\nconfig:\n  url: {required: true}\nhttp:\n  base_url: ${ config.url }\nstreams:\n  items:\n    request: {path: /items}\ntables:\n  items: {from: items, primary_key: [id]}\n"
	if err := os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader has gone: every write to the pipe fails
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "spec.yaml", "--dry-run", "--set", "url="+api.URL, "--progress", "none", "--report", "report.json")
	cmd.Dir = dir
	cmd.Stdout = w
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	w.Close()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("ferry was killed by %v (%v): no report, no message", ws.Signal(), err)
	}
	if code := cmd.ProcessState.ExitCode(); code != engine.ExitFailed {
		t.Errorf("exit %d, want %d:\n%s", code, engine.ExitFailed, stderr.String())
	}
	if !strings.Contains(stderr.String(), "broken pipe") {
		t.Errorf("stderr does not say the output was cut:\n%s", stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	var rep engine.RunReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Status != "failed" || !strings.Contains(rep.Error, "broken pipe") {
		t.Errorf("report: status %q, error %q; want failed, naming the broken pipe", rep.Status, rep.Error)
	}
}
