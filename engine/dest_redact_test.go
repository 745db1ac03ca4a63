package engine_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// A destination URL's credentials never reach a message, in any form
// PostgreSQL accepts them, whether the URL parses or not. Port 1 on the
// loopback refuses the connection, so every run fails to connect (or to
// parse) and reports the destination.
func TestDestinationCredentialsRedacted(t *testing.T) {
	f := loadSpec(t, t.TempDir())
	const canary = "canaryZq8w"
	dests := []string{
		"postgres://ferry:" + canary + "@127.0.0.1:1/db",
		"postgres://ferry@127.0.0.1:1/db?password=" + canary,
		"postgres://ferry@127.0.0.1:1/db?sslmode=disable&sslpassword=" + canary,
		"postgresql://ferry@127.0.0.1:1/db?connect_timeout=1&PASSWORD=" + canary,
		"postgres://ferry:" + canary + "%21x@127.0.0.1:1/db",        // percent-encoded
		"postgres://ferry:" + canary + "@x@127.0.0.1:1/db",          // an "@" in the password
		"postgres://ferry:" + canary + "?x@127.0.0.1:1/db",          // a "?" in the password: does not parse
		"postgres://ferry:" + canary + "/x@127.0.0.1:1/db",          // a "/" in the password: does not parse
		"postgres://ferry@127.0.0.1:1/db?password=" + canary + "@x", // an "@" in the query
		"postgres://ferry@127.0.0.1:1/db?pass%77ord=" + canary,      // an encoded key
	}
	for _, dest := range dests {
		t.Run(dest, func(t *testing.T) {
			var logs bytes.Buffer
			cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": "http://127.0.0.1:1"}, Getenv: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: dest, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err == nil {
				t.Fatal("the run succeeded against a closed port")
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(logs.String(), canary) {
				t.Errorf("credential printed:\nerror: %v\nlogs: %s", err, logs.String())
			}
			if !strings.Contains(err.Error(), "127.0.0.1") && !strings.Contains(err.Error(), "ferry") {
				t.Errorf("the message no longer says which destination: %v", err)
			}
		})
	}
}

// A dry run prints records to stdout: a record that echoes a credential
// ferry fetched (an OAuth2 access token) or a presigned link shows neither,
// as it shows no secret input.
func TestDryRunRedactsFetchedTokens(t *testing.T) {
	const access = "at-5f4e3d2c1b0a"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			fmt.Fprintf(w, `{"access_token": %q, "expires_in": 3600}`, access)
			return
		}
		fmt.Fprintf(w, `[{"id": "me", "auth": %q, "file": "https://b.example/f?X-Amz-Signature=s1gn4ture"}]`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.yaml")
	spec := `version: 1
name: s
config:
  url: {required: true}
  secret: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: oauth2, token_url: "${ config.url }/token", client_id: id, client_secret: "${ config.secret }"}
streams:
  me:
    request: {path: /me}
tables:
  me: {from: me}
`
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "secret": "cs-9a8b7c"}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out, StateFile: filepath.Join(dir, "state.json")}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), access) || strings.Contains(out.String(), "s1gn4ture") {
		t.Errorf("stdout shows a secret:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `"id":"me"`) {
		t.Errorf("stdout lacks the record:\n%s", out.String())
	}
}

// A spec may build a credential header itself from a secret input
// (Azure DevOps' Basic of ":PAT" with expr's toBase64): the header's value
// is a credential though it does not hold the secret as it is. A record,
// an error body or a cassette that echoes it shows neither.
func TestDerivedCredentialHeaderRedacted(t *testing.T) {
	const pat = "pat-7k6j5h4g3f2d"
	basic := base64.StdEncoding.EncodeToString([]byte(":" + pat))
	key := base64.StdEncoding.EncodeToString([]byte(pat))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/denied" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":"bad credentials %s %s"}`, r.Header.Get("Authorization"), r.Header.Get("X-Key"))
			return
		}
		fmt.Fprintf(w, `[{"id": "me", "auth": %q}]`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	load := func(path string) *engine.Spec {
		return writeSpec(t, dir, "s.yaml", `version: 1
name: s
config:
  url: {required: true}
  pat: {required: true, secret: true}
http:
  base_url: ${ config.url }
  headers:
    Authorization: "Basic ${ toBase64(':' + config.pat) }"
    X-Key: ${ toBase64(config.pat) }
streams:
  me:
    request: {path: `+path+`}
tables:
  me: {from: me}
`)
	}
	getenv := func(string) (string, bool) { return "", false }
	f := load("/me")
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "pat": pat}, Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	rec := filepath.Join(dir, "cassette")
	if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out, StateFile: filepath.Join(dir, "state.json"),
		Record: rec, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"id":"me"`) {
		t.Errorf("stdout lacks the record:\n%s", out.String())
	}
	files, _ := os.ReadDir(rec)
	if len(files) == 0 {
		t.Errorf("nothing recorded")
	}
	var cassette strings.Builder
	for _, e := range files {
		b, _ := os.ReadFile(filepath.Join(rec, e.Name()))
		cassette.Write(b)
	}
	f = load("/denied")
	_, runErr := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out, StateFile: filepath.Join(dir, "state2.json"),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if runErr == nil || !strings.Contains(runErr.Error(), "bad credentials") {
		t.Fatalf("run error = %v, want the 401", runErr)
	}
	for where, text := range map[string]string{"stdout": out.String(), "logs": logs.String(), "cassette": cassette.String(), "error": runErr.Error()} {
		if strings.Contains(text, basic) || strings.Contains(text, key) || strings.Contains(text, pat) {
			t.Errorf("%s shows the credential:\n%s", where, text)
		}
	}
}

// A request's own header built from a secret input (not the http block's)
// is a credential too: an error body that echoes it shows it not.
func TestDerivedRequestHeaderRedacted(t *testing.T) {
	const key = "rk-4d3c2b1a0z9y"
	derived := base64.StdEncoding.EncodeToString([]byte("me:" + key))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":"bad credentials %s"}`, r.Header.Get("X-Sig"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	f := writeSpec(t, dir, "s.yaml", `version: 1
name: s
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
streams:
  me:
    request:
      path: /me
      headers:
        X-Sig: ${ toBase64('me:' + config.key) }
tables:
  me: {from: me}
`)
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "key": key}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	_, runErr := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out, StateFile: filepath.Join(dir, "state.json"),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if runErr == nil || !strings.Contains(runErr.Error(), "bad credentials") {
		t.Fatalf("run error = %v, want the 401", runErr)
	}
	for where, text := range map[string]string{"stdout": out.String(), "logs": logs.String(), "error": runErr.Error()} {
		if strings.Contains(text, derived) || strings.Contains(text, key) {
			t.Errorf("%s shows the credential:\n%s", where, text)
		}
	}
}
