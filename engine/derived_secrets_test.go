package engine_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/fetch"
)

// runDerived runs spec in dry-run against srv with the secret key,
// recording a cassette and logging at debug level: it returns stdout,
// the logs, the cassette's text and the run's error.
func runDerived(t *testing.T, spec string, srv *httptest.Server, sets map[string]string) (stdout, logs, cassette string, runErr error) {
	t.Helper()
	dir := t.TempDir()
	f := writeSpec(t, dir, "s.yaml", spec)
	sets["url"] = srv.URL
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: sets, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out, lg bytes.Buffer
	rec := filepath.Join(dir, "cassette")
	_, runErr = engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out, StateFile: filepath.Join(dir, "state.json"),
		Record: rec, Logger: slog.New(slog.NewTextHandler(&lg, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	var c strings.Builder
	files, _ := os.ReadDir(rec)
	for _, e := range files {
		b, _ := os.ReadFile(filepath.Join(rec, e.Name()))
		c.Write(b)
	}
	return out.String(), lg.String(), c.String(), runErr
}

// noneShown fails the test when a text shows a derived value, as it is
// or query-escaped.
func noneShown(t *testing.T, texts map[string]string, derived map[string]string) {
	t.Helper()
	for where, text := range texts {
		for what, v := range derived {
			if strings.Contains(text, v) || strings.Contains(text, url.QueryEscape(v)) {
				t.Errorf("%s shows the %s's derived credential %q:\n%s", where, what, v, text)
			}
		}
	}
}

// A body_jq program's values derived from a secret input, and a
// partitions value built from one (sent in a child's path), are
// credentials as a body field's or a path part's template is: redacted
// from stdout, the logs, the cassette and the error; the body's other
// values and the other partition are shown as they are.
func TestDerivedBodyJQAndPartitionsRedacted(t *testing.T) {
	const key = "bk-5r4e3w2q1a0z"
	derived := map[string]string{
		"key":       key,
		"body_jq":   base64.StdEncoding.EncodeToString([]byte("q:" + key)),
		"partition": base64.RawURLEncoding.EncodeToString([]byte("acct:" + key)),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/search" {
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":"bad auth %v", "who": %q, "n": %v}`, body["auth"], body["user"], body["n"])
			return
		}
		acct, _ := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/accounts/"), "/items")
		fmt.Fprintf(w, `[{"id": "i1", "acct": %q}]`, acct)
	}))
	defer srv.Close()
	out, logs, cassette, runErr := runDerived(t, `version: 1
name: s
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
streams:
  accts:
    partitions: {values: ["${ toBase64('acct:' + config.key) }", "plain-acct-1"]}
  items:
    for_each: accts
    request: {path: "/accounts/${ parent.value }/items"}
  search:
    request:
      method: POST
      path: /search
      body_jq: '{auth: (("q:" + $config.key) | @base64), user: "visible-user", n: 98765}'
tables:
  items: {from: items, primary_key: [id, acct]}
  search: {from: search}
`, srv, map[string]string{"key": key})
	if runErr == nil || !strings.Contains(runErr.Error(), "bad auth") {
		t.Fatalf("run error = %v, want the 400", runErr)
	}
	noneShown(t, map[string]string{"stdout": out, "logs": logs, "cassette": cassette, "error": runErr.Error()}, derived)
	if !strings.Contains(out, `"acct":"plain-acct-1"`) || !strings.Contains(out, fetch.Redacted) {
		t.Errorf("stdout lacks the plain partition's record, or the redacted one's:\n%s", out)
	}
	for where, text := range map[string]string{"cassette": cassette, "error": runErr.Error()} {
		if !strings.Contains(text, "visible-user") || !strings.Contains(text, "98765") {
			t.Errorf("%s lacks the body's other values (the whole body redacted?):\n%s", where, text)
		}
	}
}

// A JWT claim built from a secret input is a credential: a token
// endpoint that echoes it in its error shows it to nobody.
func TestDerivedJWTClaimRedacted(t *testing.T) {
	const client = "jc-0p9o8i7u6y5t"
	sub := base64.StdEncoding.EncodeToString([]byte("sub:" + client))
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(pk)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jwt := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		parts := strings.Split(jwt, ".")
		var claims map[string]any
		if len(parts) == 3 {
			b, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(b, &claims)
		}
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"unknown subject %v of issuer %v"}`, claims["sub"], claims["iss"])
	}))
	defer srv.Close()
	out, logs, cassette, runErr := runDerived(t, `version: 1
name: s
config:
  url: {required: true}
  client: {required: true, secret: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth:
    type: jwt
    private_key: ${ config.key }
    claims:
      iss: visible-issuer
      sub: ${ toBase64('sub:' + config.client) }
    exchange: {path: /token, token: .token}
streams:
  items:
    request: {path: /items}
tables:
  items: {from: items}
`, srv, map[string]string{"client": client, "key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	if runErr == nil || !strings.Contains(runErr.Error(), "unknown subject") || !strings.Contains(runErr.Error(), "visible-issuer") {
		t.Fatalf("run error = %v, want the token endpoint's 400 naming the issuer", runErr)
	}
	noneShown(t, map[string]string{"stdout": out, "logs": logs, "cassette": cassette, "error": runErr.Error()}, map[string]string{"client": client, "claim": sub})
}

// A header built from a secret input that renders to a boolean ("has a
// key": true) is one bit of a secret, not one: registered, "true" would
// be redacted from every message and record. So is a number a secret
// input decides (a page size when a key is set), in a query value or a
// path: "1000" redacted would garble every count. They stay as they are.
func TestDerivedFlagsNotRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"has key %s, flag true, size %s, 1000 items at %s"}`, r.Header.Get("X-Has-Key"), r.URL.Query().Get("size"), r.URL.Path)
	}))
	defer srv.Close()
	_, logs, cassette, runErr := runDerived(t, `version: 1
name: s
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  headers: {X-Key-Set: "${ config.key != '' }"}
streams:
  items:
    request:
      path: "/items/${ config.key != '' ? 2048 : 1 }"
      query: {size: "${ config.key != '' ? 1000 : 10 }"}
      headers: {X-Has-Key: "${ config.key != '' }"}
tables:
  items: {from: items}
`, srv, map[string]string{"key": "hk-1z2x3c4v5b6n"})
	if runErr == nil || !strings.Contains(runErr.Error(), "has key true, flag true, size 1000, 1000 items at /items/2048") {
		t.Errorf("run error = %v, want the 400 with its booleans as they are", runErr)
	}
	for where, text := range map[string]string{"logs": logs, "cassette": cassette} {
		if strings.Contains(text, fetch.Redacted) || strings.Contains(text, "<secret>") {
			t.Errorf("%s redacted a boolean:\n%s", where, text)
		}
	}
}

// A partition whose value a secret input built (or is) names its
// children's checkpoints by a hash of it, not by the value: the state
// never holds a secret. The name is stable, so a later run goes on from
// the cursor saved.
func TestDerivedPartitionNotInState(t *testing.T) {
	const key = "pk-7h6g5f4d3s2a"
	derived := base64.RawStdEncoding.EncodeToString([]byte("acct:" + key))
	b, since := partitionSecretRuns(t, key, `partitions: {values: ["${ toBase64('acct:' + config.key) }", "${ config.key }"]}`)
	for what, v := range map[string]string{"key": key, "derived": derived} {
		if bytes.Contains(b, []byte(v)) || bytes.Contains(b, []byte(url.PathEscape(v))) {
			t.Errorf("the destination's state holds the %s partition's value", what)
		}
	}
	if want := []string{"0", "0", "i1", "i1"}; strings.Join(since, ",") != strings.Join(want, ",") {
		t.Errorf("since sent %v, want %v (the second run goes on from the saved cursors)", since, want)
	}
}

// TestDerivedPartitionKeyProgramNotInState: a partitions stream's key
// program that gives the secret value whole names its children's
// checkpoints by a hash of it too, as the value itself does (see
// TestDerivedPartitionNotInState): the key went into state as it was.
func TestDerivedPartitionKeyProgramNotInState(t *testing.T) {
	const key = "pk-7h6g5f4d3s2a"
	b, since := partitionSecretRuns(t, key, `partitions: {values: ["${ config.key }"]}
    key: .value`)
	if bytes.Contains(b, []byte(key)) || bytes.Contains(b, []byte(url.PathEscape(key))) {
		t.Error("the destination's state holds the partition's key, the secret value")
	}
	if want := "0,i1"; strings.Join(since, ",") != want {
		t.Errorf("since sent %v, want %s (the second run goes on from the saved cursor)", since, want)
	}
}

// partitionSecretRuns runs, twice into one SQLite file, a spec whose
// accts stream (accts: its body) partitions items with secret input key,
// each item's request sending its cursor as since; it returns the file's
// bytes (a secret must not be in them) and every since sent.
func partitionSecretRuns(t *testing.T, key, accts string) (db []byte, since []string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		since = append(since, r.URL.Query().Get("since"))
		fmt.Fprint(w, `[{"id": "i1"}]`)
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
  concurrency: 1
streams:
  accts:
    `+accts+`
  items:
    for_each: accts
    request: {path: "/accounts/${ parent.value }/items", query: {since: "${ cursor }"}}
    incremental: {cursor: .id, initial: "0"}
tables:
  items: {from: items, primary_key: [id]}
`)
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "key": key}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "t.db")
	for range 2 {
		if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{Dest: "sqlite:" + path}); err != nil {
			t.Fatal(err)
		}
	}
	db, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return db, since
}

// TestDerivedBodyJQClockNotRedacted: a body_jq program that reads now
// gave the second run (the secret input changed) another time, so the
// time was taught as a secret: redacted from messages and cassettes, and
// one more secret for every request. Both runs read one now; the value
// built from the key is still redacted.
func TestDerivedBodyJQClockNotRedacted(t *testing.T) {
	const key = "bk-5r4e3w2q1a0z"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"auth <%v> since <%v>"}`, body["auth"], body["since"])
	}))
	defer srv.Close()
	for range 3 {
		_, _, _, runErr := runDerived(t, `version: 1
name: s
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
streams:
  search:
    request:
      method: POST
      path: /search
      body_jq: '{auth: (("q:" + $config.key) | @base64), since: (now | tostring)}'
tables:
  search: {from: search}
`, srv, map[string]string{"key": key})
		if runErr == nil || !strings.Contains(runErr.Error(), "auth <"+fetch.Redacted+">") || strings.Contains(runErr.Error(), "since <"+fetch.Redacted+">") {
			t.Fatalf("run error = %v, want the auth redacted and the time shown", runErr)
		}
	}
}
