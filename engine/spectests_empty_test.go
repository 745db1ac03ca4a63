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

// TestRunCaseWithoutRecordsWarned: a run case whose cassette holds no
// record passes whatever the mappings do (its snapshot is empty), so it
// is said, at --update and at every run; a case with records is not.
func TestRunCaseWithoutRecordsWarned(t *testing.T) {
	for _, tc := range []struct {
		body string
		warn bool
	}{{`[]`, true}, {`[{"id":"a"}]`, false}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, tc.body)
		}))
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
  apps: {from: apps, primary_key: [id], row: '{id, n: error("a mapping that always fails")}'}
`,
			"s.test.yaml": "runs:\n  - name: one\n    config: {api_url: \"http://x.invalid\"}\n    cassette: rec\n    snapshot: snap.jsonl\n",
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
		// A run with records fails here (the mapping always fails); the
		// cassette is recorded either way.
		_, _ = engine.Run(t.Context(), sp, cfg, engine.RunOptions{DryRun: true, Stdout: io.Discard, Record: filepath.Join(dir, "rec")})
		srv.Close()
		for _, update := range []bool{true, false} {
			res, err := engine.RunTests(t.Context(), filepath.Join(dir, "s.test.yaml"), engine.TestOptions{Update: update})
			if err != nil {
				t.Fatal(err)
			}
			c := res.Cases[0]
			if tc.warn {
				if !c.Passed() || !strings.Contains(c.Warning, "no row and no entity") {
					t.Errorf("%s, update %v: passed %v, warning %q; want a pass warned of", tc.body, update, c.Passed(), c.Warning)
				}
			} else if c.Warning != "" || c.Passed() {
				t.Errorf("%s, update %v: passed %v, warning %q; want the failing mapping to fail the case, unwarned", tc.body, update, c.Passed(), c.Warning)
			}
		}
	}
}
