package engine_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine"
)

const typedSpec = `
version: 1
name: typed
config:
  url: {required: true}
  page_size: {type: int, default: 50, env: T_PAGE_SIZE}
  ratio: {type: number, default: 0.5}
  verbose: {type: bool, default: false, env: T_VERBOSE}
  ids: {type: list, env: T_IDS}
  since: {type: date, default: 2024-01-31}
  wait: {type: duration, default: 90s}
  name: {type: string, env: T_NAME}
  token: {type: int, secret: true, env: T_TOKEN}
http:
  base_url: ${ config.url }
streams:
  items:
    request:
      path: /items
      query:
        per_page: ${ config.page_size * 2 }
        id: ${ config.ids }
        after: ${ config.since.Unix() }
        wait_s: ${ config.wait.Seconds() }
        verbose: '${ config.verbose ? "yes" : "no" }'
        ratio: ${ config.ratio * 2 }
tables:
  items:
    from: items
    row: '{id, since: $config.since, wait: $config.wait, ids: $config.ids, n: $config.page_size, verbose: $config.verbose}'
`

func loadTyped(t *testing.T) *engine.Spec {
	t.Helper()
	path := filepath.Join(t.TempDir(), "typed.yaml")
	if err := os.WriteFile(path, []byte(typedSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func noEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestResolveConfigConvertsTypes(t *testing.T) {
	sp := loadTyped(t)
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{
		Sets:   map[string]string{"url": "http://x", "ratio": "2.5"},
		Getenv: noEnv(map[string]string{"T_PAGE_SIZE": " 20 ", "T_VERBOSE": "yes", "T_IDS": "a, b,,c ", "T_NAME": "n", "T_TOKEN": "1234"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"url": "http://x", "page_size": 20, "ratio": 2.5, "verbose": true, "ids": []any{"a", "b", "c"},
		"since": "2024-01-31", "wait": "90s", "name": "n", "token": 1234,
	}
	if diff := cmp.Diff(want, cfg.Values); diff != "" {
		t.Errorf("Values (-want +got):\n%s", diff)
	}
	if len(cfg.Secrets) != 1 || cfg.Secrets[0] != "1234" {
		t.Errorf("Secrets = %v", cfg.Secrets)
	}
}

func TestResolveConfigRefusesWhatDoesNotFit(t *testing.T) {
	sp := loadTyped(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("ids: 7\nname: [a]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := engine.ResolveConfig(sp, engine.ConfigSources{
		Sets:   map[string]string{"url": "http://x", "page_size": "abc", "since": "next week"},
		File:   file,
		Getenv: noEnv(map[string]string{"T_VERBOSE": "maybe", "T_TOKEN": "hunter2"}),
	})
	var ce *engine.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a *ConfigError", err)
	}
	want := []string{
		`input "ids" (from config file ` + file + `): want a list, or a comma-separated string, got 7`,
		`input "name" (from config file ` + file + `): want a string, got a list`,
		`input "page_size" (from --set): want an integer, got "abc"`,
		`input "since" (from --set): want a date such as 2024-01-31 or 2024-01-31T12:00:00Z, got "next week"`,
		`input "token" (from environment variable T_TOKEN): the value does not fit type int (not shown: the input is secret)`,
		`input "verbose" (from environment variable T_VERBOSE): want true or false, got "maybe"`,
	}
	if diff := cmp.Diff(want, ce.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if engine.ExitCode(err, false) != engine.ExitUsage {
		t.Errorf("exit code %d, want %d", engine.ExitCode(err, false), engine.ExitUsage)
	}
}

// TestTypedConfigReachesPrograms: expr sees the converted types (a list, a
// time, a duration, numbers), jq and the rows the JSON-shaped values.
func TestTypedConfigReachesPrograms(t *testing.T) {
	var got url.Values
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Query()
		w.Write([]byte(`[{"id": 1}]`))
	}))
	defer api.Close()
	sp := loadTyped(t)
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{
		Sets:   map[string]string{"url": api.URL, "ids": "x,y"},
		Getenv: noEnv(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := engine.Run(t.Context(), sp, cfg, engine.RunOptions{DryRun: true, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	want := url.Values{"per_page": {"100"}, "id": {"x", "y"}, "after": {"1706659200"}, "wait_s": {"90"}, "verbose": {"no"}, "ratio": {"1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	row := `{"table":"items","op":"upsert","row":{"id":1,"ids":["x","y"],"n":50,"since":"2024-01-31","verbose":false,"wait":"90s"}}`
	if strings.TrimSpace(out.String()) != row {
		t.Errorf("dry run printed:\n%s\nwant:\n%s", out.String(), row)
	}
}

// A value may come from a file that NAME_FILE names (a secret mounted as a
// file, as Docker and Kubernetes mount them), without its trailing line
// break, from the environment or .env; the secret read so is redacted.
// NAME set beside NAME_FILE, or a file that cannot be read, stops the run
// with both named; the variable itself still comes first in the order.
func TestResolveConfigFromFiles(t *testing.T) {
	sp := loadTyped(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := write("token", "4321\n")
	ids := write("ids", "a,b\r\n")
	dotenv := write(".env", "T_NAME_FILE="+write("name", "from-file")+"\n")
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{
		Sets:   map[string]string{"url": "http://x"},
		Getenv: noEnv(map[string]string{"T_TOKEN_FILE": token, "T_IDS_FILE": ids}),
		DotEnv: dotenv,
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"token": 4321, "ids": []any{"a", "b"}, "name": "from-file"} {
		if diff := cmp.Diff(want, cfg.Values[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if len(cfg.Secrets) != 1 || cfg.Secrets[0] != "4321" {
		t.Errorf("Secrets = %v, want the token read from its file", cfg.Secrets)
	}

	// The environment's T_NAME_FILE wins over .env's, as its T_NAME would.
	cfg, err = engine.ResolveConfig(sp, engine.ConfigSources{
		Sets:   map[string]string{"url": "http://x"},
		Getenv: noEnv(map[string]string{"T_NAME_FILE": write("name2", "env-file\n\n")}),
		DotEnv: dotenv,
	})
	if err != nil || cfg.Values["name"] != "env-file" {
		t.Errorf("name = %v (%v), want env-file", cfg.Values["name"], err)
	}

	_, err = engine.ResolveConfig(sp, engine.ConfigSources{
		Sets:   map[string]string{"url": "http://x"},
		Getenv: noEnv(map[string]string{"T_TOKEN": "1", "T_TOKEN_FILE": token, "T_IDS_FILE": filepath.Join(dir, "nope")}),
	})
	var ce *engine.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a *ConfigError", err)
	}
	want := []string{
		`input "ids": environment variable T_IDS_FILE (` + filepath.Join(dir, "nope") + `): open ` + filepath.Join(dir, "nope") + `: no such file or directory`,
		`input "token": environment variable T_TOKEN and environment variable T_TOKEN_FILE are both set: one or the other`,
	}
	if diff := cmp.Diff(want, ce.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// NAME_FILE that another input lists as its own environment variable is
// that input's value (a path), not a file holding NAME's: ca (K8S_CA) and
// ca_file (K8S_CA_FILE) each take their own variable.
func TestResolveConfigFileSuffixOfAnotherInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(path, []byte(`version: 1
name: k8s
config:
  ca: {env: K8S_CA}
  ca_file: {env: K8S_CA_FILE}
http:
  base_url: https://k8s.example.com
streams:
  a:
    request: {path: /a}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Getenv: noEnv(map[string]string{"K8S_CA_FILE": ca})})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := cfg.Values["ca"]; ok {
		t.Errorf("ca = %q, read from ca_file's path; want unset", got)
	}
	if cfg.Values["ca_file"] != ca {
		t.Errorf("ca_file = %v, want %s", cfg.Values["ca_file"], ca)
	}
}
