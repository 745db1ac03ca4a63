package engine_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// panicOn sends requests on, but panics on those whose path ends in cut,
// quoting its URL and its Authorization header (Port's token).
type panicOn struct{ cut string }

func (p panicOn) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, p.cut) {
		panic("transport broke on " + req.URL.String() + " with " + req.Header.Get("Authorization"))
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestRunPanicIsARedactedError: a panic during a run, on the run's own
// goroutine (Port's blueprints, made before any record) or on one the
// Port sink starts (bulk writes, the ownership listings), ends the run
// with an internal error rather than the process; the message, which
// quotes Port's token, and the stack logged at debug level are redacted.
func TestRunPanicIsARedactedError(t *testing.T) {
	f, api := panicSpec(t)
	for _, cut := range []string{"/v1/blueprints", "/entities/bulk", "/entities/search"} {
		t.Run(cut, func(t *testing.T) {
			pt := portsim.New(portsim.Options{RateLimit: -1})
			defer pt.Close()
			if cut == "/entities/search" {
				// A Port that holds an entity of the run's: its owner is
				// looked up, on one of the sink's goroutines.
				if err := pt.SeedBlueprint([]byte(`{"identifier": "item", "title": "Item", "schema": {"properties": {}}}`)); err != nil {
					t.Fatal(err)
				}
				if err := pt.SeedEntity("item", []byte(`{"identifier": "1"}`)); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": api.URL}, Getenv: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			res, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: "sqlite:" + filepath.Join(t.TempDir(), "p.db"), Transport: panicOn{cut},
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Port:   engine.PortOptions{BaseURL: pt.URL(), ClientID: pt.ClientID(), ClientSecret: pt.ClientSecret()}})
			if res == nil {
				t.Fatal("no result")
			}
			if err == nil || !strings.Contains(err.Error(), "internal error") || !strings.Contains(err.Error(), "transport broke on") {
				t.Fatalf("err = %v, want the panic as an internal error", err)

			}
			if code := engine.ExitCode(err, false); code != engine.ExitFailed {
				t.Errorf("exit code %d, want %d", code, engine.ExitFailed)
			}
			if !strings.Contains(err.Error(), "Bearer REDACTED") {
				t.Errorf("err = %v, want the token redacted", err)
			}
			for _, s := range []string{"portsim-token", pt.ClientSecret()} {
				if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
					t.Errorf("%s shown:\nerror: %v\nlogs:\n%s", s, err, logs.String())
				}
			}
			if !strings.Contains(logs.String(), "goroutine") {
				t.Errorf("no stack logged at debug level:\n%s", logs.String())
			}
		})
	}
}

// panicSpec is a spec of one stream into a table and a Port blueprint,
// loaded, and the API it reads (two items), closed when t ends.
func panicSpec(t *testing.T) (*engine.Spec, *httptest.Server) {
	t.Helper()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id": "1"}, {"id": "2"}]`))
	}))
	t.Cleanup(api.Close)
	dir := t.TempDir()
	for name, body := range map[string]string{
		"s.yaml": `version: 1
name: pan
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  items: {request: {path: /items}}
tables:
  items: {from: items, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id}
`,
		"bp.json": `[{"identifier": "item", "title": "Item", "schema": {"properties": {}, "required": []}}]`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := engine.Load(filepath.Join(dir, "s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return f, api
}
