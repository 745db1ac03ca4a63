package engine_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
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

// A secret input transformed by a template into a path segment, a query
// parameter, a URL's query or a JSON body field is a credential too: the
// rendered value (only the field's, not the whole body's) is redacted
// from stdout, the logs, the cassette and the run's error.
func TestDerivedRequestPartsRedacted(t *testing.T) {
	const key = "dk-8u7y6t5r4e3w"
	inPath := strings.ToUpper(key)
	inQuery := base64.StdEncoding.EncodeToString([]byte(key))
	inBody := base64.StdEncoding.EncodeToString([]byte("mee:" + key))
	inURL := base64.StdEncoding.EncodeToString([]byte("u@" + key))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/other" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":"bad token %s"}`, r.URL.Query().Get("token"))
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `[{"id": "a", "p": %q, "q": %q, "b": %q, "u": %q, "has": %v}]`, r.URL.Path, r.URL.Query().Get("h"), body["auth"], body["user"], body["has"])
	}))
	defer srv.Close()
	derived := map[string]string{"key": key, "path": inPath, "query": inQuery, "body": inBody, "url": inURL}
	for a, x := range derived {
		for b, y := range derived {
			if a != b && strings.Contains(x, y) {
				// Redacting one would hide the other: each check proves nothing.
				t.Fatalf("the %s's value holds the %s's", a, b)
			}
		}
	}
	dir := t.TempDir()
	f := writeSpec(t, dir, "s.yaml", `version: 1
name: s
config:
  url: {required: true}
  user: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
streams:
  items:
    request:
      method: POST
      path: /items/${ upper(config.key) }
      query: {h: "${ toBase64(config.key) }"}
      body: {auth: "${ toBase64(config.user + ':' + config.key) }", user: "${ config.user }-user", has: "${ config.key != '' }"}
  other:
    request:
      url: "${ config.url }/other?token=${ toBase64('u@' + config.key) }"
tables:
  items: {from: items}
  other: {from: other}
`)
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "user": "mee", "key": key}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	rec := filepath.Join(dir, "cassette")
	_, runErr := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out, StateFile: filepath.Join(dir, "state.json"),
		Record: rec, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if runErr == nil || !strings.Contains(runErr.Error(), "bad token") {
		t.Fatalf("run error = %v, want the 401", runErr)
	}
	if !strings.Contains(out.String(), `"u":"mee-user"`) {
		t.Errorf("stdout lacks the body's other field (the whole body was redacted?):\n%s", out.String())
	}
	if !strings.Contains(out.String(), `"has":true`) {
		// A boolean is one bit of a secret: redacting "true" would garble
		// every message.
		t.Errorf("stdout lacks a boolean read from the secret:\n%s", out.String())
	}
	var cassette strings.Builder
	files, _ := os.ReadDir(rec)
	for _, e := range files {
		b, _ := os.ReadFile(filepath.Join(rec, e.Name()))
		cassette.Write(b)
	}
	for where, x := range map[string]struct{ text, mark string }{
		"stdout": {out.String(), fetch.Redacted}, "logs": {logs.String(), fetch.Redacted},
		"cassette": {cassette.String(), "<secret>"}, "error": {runErr.Error(), fetch.Redacted},
	} {
		for what, v := range derived {
			if strings.Contains(x.text, v) || strings.Contains(x.text, url.QueryEscape(v)) {
				t.Errorf("%s shows the %s's derived credential:\n%s", where, what, x.text)
			}
		}
		if !strings.Contains(x.text, x.mark) {
			t.Errorf("%s lacks the mark %s:\n%s", where, x.mark, x.text)
		}
	}
	// The placeholders still match the requests of a replay, which sends
	// the same derived values (the answers' <secret>, no config value, is
	// not put back).
	var replayed bytes.Buffer
	_, replayErr := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &replayed, StateFile: filepath.Join(dir, "state2.json"), Replay: rec})
	if replayErr == nil || !strings.Contains(replayErr.Error(), "bad token") || !strings.Contains(replayed.String(), `"u":"mee-user"`) {
		t.Errorf("replay: %v\n%s\nwant the recorded 401 and record", replayErr, replayed.String())
	}
}

// A text body's and an export's download path's parts built from a secret
// input are credentials: only those parts, not the text around them.
func TestDerivedTextBodyAndDownloadRedacted(t *testing.T) {
	const key = "tk-1q2w3e4r5t6y7"
	inBody := base64.StdEncoding.EncodeToString([]byte(key))
	inDownload := strings.ToUpper(key)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path == "/search":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":"bad query %s"}`, b)
		case r.URL.Path == "/exports":
			fmt.Fprint(w, `{"id":"j1"}`)
		case r.URL.Path == "/exports/j1":
			fmt.Fprint(w, `{"status":"done"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":"no file %s"}`, r.URL.Path)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	f := writeSpec(t, dir, "s.yaml", `version: 1
name: s
config:
  url: {required: true}
  user: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
streams:
  search:
    request:
      method: POST
      path: /search
      body_format: text
      body: "user=${ config.user }&h=${ toBase64(config.key) }&on=${ config.key != '' }"
  export:
    async:
      create: {path: /exports, body: {x: 1}, id: .id}
      poll: {path: "/exports/${ job.id }", done: .status == "done", every: 1s, timeout: 5s}
      download: {path: "/files/${ job.id }/${ upper(config.key) }"}
tables:
  search: {from: search}
  export: {from: export}
`)
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "user": "someone", "key": key}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	rec := filepath.Join(dir, "cassette")
	_, runErr := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out, StateFile: filepath.Join(dir, "state.json"),
		Record: rec, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if runErr == nil || !strings.Contains(runErr.Error(), "bad query") || !strings.Contains(runErr.Error(), "no file") {
		t.Fatalf("run error = %v, want the 400 and the 404", runErr)
	}
	if msg := runErr.Error(); !strings.Contains(msg, "user=someone&h="+fetch.Redacted+"&on=true") || !strings.Contains(msg, "/files/j1/"+fetch.Redacted) {
		t.Errorf("the error no longer shows the text around the secret parts: %v", runErr)
	}
	var cassette strings.Builder
	files, _ := os.ReadDir(rec)
	for _, e := range files {
		b, _ := os.ReadFile(filepath.Join(rec, e.Name()))
		cassette.Write(b)
	}
	for where, x := range map[string]struct{ text, mark string }{
		"logs": {logs.String(), fetch.Redacted}, "cassette": {cassette.String(), "<secret>"}, "error": {runErr.Error(), fetch.Redacted},
	} {
		for what, v := range map[string]string{"key": key, "body": inBody, "download": inDownload} {
			if strings.Contains(x.text, v) || strings.Contains(x.text, url.QueryEscape(v)) {
				t.Errorf("%s shows the %s's derived credential:\n%s", where, what, x.text)
			}
		}
		if !strings.Contains(x.text, x.mark) {
			t.Errorf("%s lacks the mark %s:\n%s", where, x.mark, x.text)
		}
	}
}

// A session login's parts built from a secret input (a body field, a
// query value, a header) are credentials too: the cassette, the logs and
// the error show none of them, but the login's other fields as they are.
func TestDerivedLoginPartsRedacted(t *testing.T) {
	const key = "lk-9o8i7u6y5t4r"
	derived := map[string]string{
		"body":   base64.StdEncoding.EncodeToString([]byte("b:" + key)),
		"query":  base64.StdEncoding.EncodeToString([]byte("q:" + key)),
		"header": base64.StdEncoding.EncodeToString([]byte("h:" + key)),
		"path":   strings.ToUpper(key),
	}
	var loggedIn bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/login/") {
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			loggedIn = r.URL.Path == "/login/"+derived["path"] && r.URL.Query().Get("q") == derived["query"] &&
				r.Header.Get("X-Sig") == derived["header"] && body["k"] == derived["body"]
			fmt.Fprint(w, `{"token":"sess-1234567890"}`)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"nope"}`)
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
  auth:
    type: session
    param: session
    login:
      method: POST
      path: /login/${ upper(config.key) }
      query: {q: "${ toBase64('q:' + config.key) }"}
      headers: {X-Sig: "${ toBase64('h:' + config.key) }"}
      body: {k: "${ toBase64('b:' + config.key) }", who: "${ config.url != '' ? 'visible-login-field' : '' }"}
      token: .token
streams:
  items:
    request: {path: /items}
tables:
  items: {from: items}
`)
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "key": key}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	rec := filepath.Join(dir, "cassette")
	_, runErr := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: io.Discard, StateFile: filepath.Join(dir, "state.json"),
		Record: rec, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if runErr == nil || !loggedIn {
		t.Fatalf("run error = %v, logged in with the derived parts: %v; want the login as sent and the items' 400", runErr, loggedIn)
	}
	var cassette strings.Builder
	files, _ := os.ReadDir(rec)
	for _, e := range files {
		b, _ := os.ReadFile(filepath.Join(rec, e.Name()))
		cassette.Write(b)
	}
	if !strings.Contains(cassette.String(), "visible-login-field") {
		t.Errorf("the cassette lacks the login's other field (the whole body redacted, or no login recorded?):\n%s", cassette.String())
	}
	for where, text := range map[string]string{"cassette": cassette.String(), "logs": logs.String(), "error": runErr.Error()} {
		for what, v := range derived {
			if strings.Contains(text, v) || strings.Contains(text, url.QueryEscape(v)) {
				t.Errorf("%s shows the login %s's derived credential:\n%s", where, what, text)
			}
		}
	}
	// The recorded login, placeholders and all, still matches the one a
	// replay sends: the items' 400 comes back, not a missing exchange.
	_, replayErr := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: io.Discard, StateFile: filepath.Join(dir, "state2.json"), Replay: rec})
	if replayErr == nil || !strings.Contains(replayErr.Error(), "nope") {
		t.Errorf("replay: %v, want the recorded 400", replayErr)
	}
}

// TestPortOwnerHoldsNoURLPassword: the owner key is written to Port on
// every entity (ferryOwner), logged and reported. A required input that is
// not marked secret but is a URL with a password (a base URL's, which
// fetch redacts from every URL it shows) would put the password there: the
// run is refused before anything is written, naming the input and not the
// password; so is a port.owner that renders it, even a short one. Without
// a password, or with the input marked secret, the owner is as before.
func TestPortOwnerHoldsNoURLPassword(t *testing.T) {
	const pw = "PWowner-5t6y7u"
	head := `version: 1
name: own
config:
  url: {required: true%s}
  org: {required: true}
http:
  base_url: ${ config.url }
streams:
  items: {request: {path: /items}}
port:
  blueprints: bp.json
%s  entities:
    - {blueprint: item, from: items, identifier: .id}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bp.json"), []byte(`[{"identifier": "item", "title": "Item", "schema": {"properties": {}, "required": []}}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, secret, owner, url, want string // want: the owner, or "" for refused
	}{
		{"default key", "", "", "http://bob:" + pw + "@h.example/api", ""},
		{"escaped password", "", "", "http://bob:" + pw + "%2F1@h.example/api", ""},
		{"owner template", "", "  owner: '${ config.url }'\n", "http://bob:" + pw + "@h.example/api", ""},
		{"short password", "", "  owner: 'x-${ config.url }'\n", "http://bob:pw@h.example/api", ""},
		{"no password", "", "", "http://bob@h.example/api", "own/http:%2F%2Fbob@h.example%2Fapi/acme"},
		{"secret input", ", secret: true", "", "http://bob:" + pw + "@h.example/api", "own/acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := writeSpec(t, dir, "s.yaml", fmt.Sprintf(head, tc.secret, tc.owner))
			cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": tc.url, "org": "acme"}, Getenv: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatal(err)
			}
			owner, err := engine.PortOwner(sp, cfg)
			switch {
			case tc.want != "" && (err != nil || owner != tc.want):
				t.Errorf("owner %q, %v; want %q", owner, err, tc.want)
			case tc.want == "" && (err == nil || !strings.Contains(err.Error(), "password in input url's URL")):
				t.Errorf("owner %q, %v; want refused, naming url", owner, err)
			case err != nil && strings.Contains(err.Error(), "pw"):
				t.Errorf("the refusal shows the password: %v", err)
			}
			if engine.ExitCode(err, false) != map[bool]int{true: engine.ExitOK, false: engine.ExitUsage}[tc.want != ""] {
				t.Errorf("exit code %d for %v", engine.ExitCode(err, false), err)
			}
		})
	}
}
