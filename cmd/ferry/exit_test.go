package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestExitCodes: every way a command ends maps to its documented code.
func TestExitCodes(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			http.Error(w, "boom", http.StatusBadRequest)
			return
		}
		w.Write([]byte(`[{"id": 1}]`))
	}))
	defer api.Close()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `version: 1
name: good
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  items:
    request: {path: /items}
  broken:
    request: {path: /broken}
tables:
  items: {from: items, primary_key: [id]}
`)
	invalid := write("invalid.yaml", "version: 1\nname: x\nstreams:\n  a: {}\n")
	db := "sqlite:" + filepath.Join(dir, "x.db")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		args []string
		want int
		err  string // in stderr
	}{
		{"no command", nil, nil, engine.ExitUsage, "Usage:"},
		{"unknown command", nil, []string{"frob"}, engine.ExitUsage, `unknown command "frob"`},
		{"unknown flag", nil, []string{"run", good, "--dets"}, engine.ExitUsage, "unknown flag --dets; did you mean --dest?"},
		{"bad --dest", nil, []string{"run", good, "--set", "url=" + api.URL, "--dest", "ftp://x"}, engine.ExitUsage, `unsupported scheme "ftp"`},
		{"missing config", nil, []string{"run", good, "--dest", db}, engine.ExitUsage, `missing required input "url"`},
		{"unknown stream", nil, []string{"run", good, "--set", "url=" + api.URL, "--dest", db, "--streams", "itemz"}, engine.ExitUsage, `unknown stream "itemz"; did you mean "items"?`},
		{"unreadable spec", nil, []string{"run", filepath.Join(dir, "none.yaml")}, engine.ExitUsage, "none.yaml"},
		{"invalid spec", nil, []string{"run", invalid}, engine.ExitInvalidSpec, "missing required field"},
		{"validate invalid", nil, []string{"validate", good, invalid}, engine.ExitInvalidSpec, ""},
		{"run failed", nil, []string{"run", good, "--set", "url=" + api.URL, "--dest", db, "--progress", "none"}, engine.ExitFailed, "400 Bad Request"},
		{"interrupted", cancelled, []string{"run", good, "--set", "url=" + api.URL, "--dest", db, "--progress", "none"}, engine.ExitInterrupted, "interrupted"},
		{"ok", nil, []string{"run", good, "--set", "url=" + api.URL, "--dest", db, "--streams", "items", "--progress", "none"}, engine.ExitOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			var stdout, stderr bytes.Buffer
			code := run(ctx, tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.want, stderr.String())
			}
			if tc.err != "" && !strings.Contains(stderr.String()+stdout.String(), tc.err) {
				t.Errorf("output lacks %q:\n%s%s", tc.err, stdout.String(), stderr.String())
			}
		})
	}
}
