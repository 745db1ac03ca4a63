package port

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeClock is shared by the Port simulator and the sink: sleeping advances it, so
// rate-limit waits and token expiry take no wall time.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		c.mu.Lock()
		c.t = c.t.Add(d)
		c.slept += d
		c.mu.Unlock()
	}
	return ctx.Err()
}

func (c *fakeClock) Slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}

type env struct {
	t     *testing.T
	srv   *portsim.Server
	clock *fakeClock
	logs  *bytes.Buffer
	cfg   Config
}

// newEnv starts the Port simulator and prepares a sink config against it, both on a
// fake clock unless opts.Now is set.
func newEnv(t *testing.T, opts portsim.Options) *env {
	t.Helper()
	clk := newClock()
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	srv := portsim.New(opts)
	t.Cleanup(srv.Close)
	logs := &bytes.Buffer{}
	e := &env{t: t, srv: srv, clock: clk, logs: logs}
	e.cfg = Config{
		BaseURL:      srv.URL(),
		ClientID:     srv.ClientID(),
		ClientSecret: srv.ClientSecret(),
		Owner:        "humanitec",
		Concurrency:  4,
		Logger:       slog.New(slog.NewTextHandler(&syncWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          clk.Now,
		Sleep:        clk.Sleep,
	}
	return e
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (e *env) sink(mut ...func(*Config)) *Sink {
	e.t.Helper()
	cfg := e.cfg
	for _, m := range mut {
		if m != nil {
			m(&cfg)
		}
	}
	s, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// run ensures the blueprints, writes entities and finishes.
func (e *env) run(s *Sink, bps []json.RawMessage, ents []sink.Entity, complete map[string]bool) (Report, error) {
	e.t.Helper()
	ctx := e.t.Context()
	if bps != nil {
		if err := s.EnsureBlueprints(ctx, bps); err != nil {
			e.t.Fatalf("EnsureBlueprints: %v", err)
		}
	}
	for _, ent := range ents {
		if err := s.Write(ctx, ent); err != nil {
			e.t.Fatalf("Write: %v", err)
		}
	}
	return s.Finish(ctx, complete)
}

// humanitecBlueprints returns the named blueprints from the Humanitec seed
// set, in the given order.
func humanitecBlueprints(t testing.TB, names ...string) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/humanitec-blueprints.json")
	if err != nil {
		t.Fatal(err)
	}
	var all []json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	byID := map[string]json.RawMessage{}
	for _, raw := range all {
		var h struct{ Identifier string }
		if err := json.Unmarshal(raw, &h); err != nil {
			t.Fatal(err)
		}
		byID[h.Identifier] = raw
	}
	var out []json.RawMessage
	for _, n := range names {
		raw, ok := byID[n]
		if !ok {
			t.Fatalf("no seed blueprint %q", n)
		}
		out = append(out, raw)
	}
	return out
}

const (
	bpApp   = "humanitecApplication"
	bpEnv   = "humanitecEnvironment"
	bpWork  = "humanitecWorkload"
	bpGraph = "humanitecResourceGraph"
)

var allBlueprints = []string{bpGraph, bpWork, bpEnv, bpApp} // deliberately targets last

func completeAll() map[string]bool {
	return map[string]bool{bpApp: true, bpEnv: true, bpWork: true, bpGraph: true}
}

// humanitecSet builds a small Humanitec-like catalog: per app two
// environments, one workload each and a three-node resource graph whose
// nodes depend on each other (self-relation, many).
func humanitecSet(apps ...string) []sink.Entity {
	var out []sink.Entity
	add := func(bp, stream string, data map[string]any) {
		out = append(out, sink.Entity{Blueprint: bp, Stream: stream, Data: data})
	}
	for i, app := range apps {
		add(bpApp, "apps", map[string]any{
			"identifier": app, "title": "App " + app,
			"properties": map[string]any{"createdAt": fmt.Sprintf("2025-0%d-01T10:00:00Z", i+1)},
			"relations":  map[string]any{},
		})
		for _, envName := range []string{"development", "production"} {
			envID := app + "/" + envName
			add(bpEnv, "envs", map[string]any{
				"identifier": envID, "title": envName,
				"properties": map[string]any{"type": envName, "lastDeploymentStatus": "succeeded", "lastDeploymentDate": "2025-06-01T08:30:00Z"},
				"relations":  map[string]any{"humanitecApplication": app},
			})
			add(bpWork, "workloads", map[string]any{
				"identifier": envID + "/api", "title": "api",
				"properties": map[string]any{"class": "default", "status": "Running", "updatedAt": "2025-06-01T08:31:00Z"},
				"relations":  map[string]any{"humanitecEnvironment": envID},
			})
			node := func(name string, deps ...string) map[string]any {
				var rel []any
				for _, d := range deps {
					rel = append(rel, envID+"/"+d)
				}
				if rel == nil {
					rel = []any{}
				}
				return map[string]any{
					"identifier": envID + "/" + name, "title": name,
					"properties": map[string]any{},
					"relations":  map[string]any{"humanitecEnvironment": envID, "humanitecResourceGraph": rel},
				}
			}
			// Written dependents first, so a one-pass writer would fail.
			add(bpGraph, "graph", node("modules.api", "externals.db", "dns"))
			add(bpGraph, "graph", node("externals.db", "dns"))
			add(bpGraph, "graph", node("dns"))
		}
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from golden (run with -update after checking):\n%s", name, lineDiff(string(want), string(got)))
	}
}

func lineDiff(want, got string) string {
	wl, gl := bytes.Split([]byte(want), []byte("\n")), bytes.Split([]byte(got), []byte("\n"))
	var out bytes.Buffer
	for i := 0; i < max(len(wl), len(gl)) && out.Len() < 4000; i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			fmt.Fprintf(&out, "line %d:\n- %s\n+ %s\n", i+1, w, g)
		}
	}
	return out.String()
}

// keys lists the catalog's entities as "blueprint:identifier".
func keys(c portsim.Catalog) map[string]bool {
	out := map[string]bool{}
	for _, e := range c.Entities {
		out[e.Blueprint+":"+e.Identifier] = true
	}
	return out
}
