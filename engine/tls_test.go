package engine_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/apitest/tlstest"
)

// A spec's tls files named relative to the spec are read from the spec's
// directory, not the working directory; a run recorded with --record goes
// through the spec's TLS (the recorder wraps the pool's transports), so a
// server of a private CA that requires a client certificate is recorded,
// and its answers are in the cassette.
func TestTLSRecordRelativeFiles(t *testing.T) {
	pki := tlstest.New(t)
	srv := tlstest.Server(t, pki.ServerConfig(t, true), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`[{"id":"a1"},{"id":"a2"}]`))
	}))
	spec := `version: 1
name: demo
config:
  api_url: {required: true}
  key: {default: client-key.pem}
http:
  base_url: ${ config.api_url }
  tls:
    ca_file: ca.pem
    client_cert_file: client.pem
    client_key_file: ${ config.key }
streams:
  apps:
    request:
      path: /apps
tables:
  apps: {from: apps, primary_key: [id]}
`
	path := filepath.Join(pki.Dir, "spec.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"api_url": srv.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	cassette := filepath.Join(t.TempDir(), "cassette")
	var out bytes.Buffer
	if _, err := engine.Run(t.Context(), sp, cfg, engine.RunOptions{DryRun: true, Stdout: &out, Record: cassette}); err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := strings.Count(out.String(), `"row"`); n != 2 {
		t.Errorf("dry run printed %d records, want 2:\n%s", n, out.String())
	}
	files, err := os.ReadDir(cassette)
	if err != nil || len(files) == 0 {
		t.Fatalf("cassette %s: %v, %d files; want the recorded exchange", cassette, err, len(files))
	}
}

// A TLS file named through config that cannot be read is the config's
// problem: the run stops before any request, with the usage exit code (2),
// not a failed run's (1), naming the option.
func TestTLSBadFileIsAUsageError(t *testing.T) {
	var asked bool
	srv := tlstest.Server(t, tlstest.New(t).ServerConfig(t, false), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked = true }))
	dir := t.TempDir()
	path := filepath.Join(dir, "spec.yaml")
	spec := `version: 1
name: demo
config:
  api_url: {required: true}
  ca: {required: true}
http:
  base_url: ${ config.api_url }
  tls: {ca_file: "${ config.ca }"}
streams:
  apps:
    request: {path: /apps}
tables:
  apps: {from: apps, primary_key: [id]}
`
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"api_url": srv.URL, "ca": filepath.Join(dir, "missing.pem")}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.Run(t.Context(), sp, cfg, engine.RunOptions{DryRun: true, Stdout: &bytes.Buffer{}})
	if code := engine.ExitCode(err, false); code != engine.ExitUsage || !strings.Contains(fmt.Sprint(err), "tls.ca_file") {
		t.Errorf("run: exit %d, %v; want %d naming tls.ca_file", code, err, engine.ExitUsage)
	}
	if asked {
		t.Error("a request was sent")
	}
}

// The PEM itself, from secret config inputs (a CI secret that holds it):
// a server of a private CA that requires a client certificate answers.
// An inline key that is not the certificate's stops the run before any
// request (exit 2), naming tls.client_key_pem and showing no key.
func TestTLSInlinePEMFromConfig(t *testing.T) {
	pki := tlstest.New(t)
	var asked int
	srv := tlstest.Server(t, pki.ServerConfig(t, true), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked++
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`[{"id":"a1"},{"id":"a2"}]`))
	}))
	spec := `version: 1
name: demo
config:
  api_url: {required: true}
  ca: {required: true}
  cert: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.api_url }
  tls:
    ca_pem: ${ config.ca }
    client_cert_pem: ${ config.cert }
    client_key_pem: ${ config.key }
streams:
  apps:
    request: {path: /apps}
tables:
  apps: {from: apps, primary_key: [id]}
`
	path := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	run := func(key string) (string, error) {
		cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{
			Sets:   map[string]string{"api_url": srv.URL, "ca": pemOf(pki.CAFile), "cert": pemOf(pki.ClientCertFile), "key": key},
			Getenv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		_, err = engine.Run(t.Context(), sp, cfg, engine.RunOptions{DryRun: true, Stdout: &out})
		return out.String(), err
	}
	out, err := run(pemOf(pki.ClientKeyFile))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := strings.Count(out, `"row"`); n != 2 {
		t.Errorf("dry run printed %d records, want 2:\n%s", n, out)
	}

	asked = 0
	other := pemOf(pki.OtherKeyFile)
	_, err = run(other)
	if code := engine.ExitCode(err, false); code != engine.ExitUsage || !strings.Contains(fmt.Sprint(err), "tls.client_key_pem") {
		t.Errorf("another key: exit %d, %v; want %d naming tls.client_key_pem", code, err, engine.ExitUsage)
	}
	if strings.Contains(fmt.Sprint(err), other[40:80]) {
		t.Errorf("the error shows the key: %v", err)
	}
	if asked != 0 {
		t.Errorf("%d requests sent with a key that is not the certificate's", asked)
	}
}
