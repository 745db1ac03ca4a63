package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

const secretsSpec = `version: 1
name: leak
config:
  url: {required: true}
  key: {required: true, secret: true}
  org: {required: true, secret: true}
  cs: {required: true, secret: true}
  pw: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: query, param: api_key, value: "${ config.key }"}
  retry: {attempts: 2, initial: 1ms, max: 2ms}
streams:
  items:
    request: {path: "/orgs/${ config.org }/items"}
    paginate: {type: link_header}
  gql:
    request: {method: POST, path: /graphql, body: {query: "{ org(id: \"${ config.org }\") { x } }"}}
  moved:
    request: {path: /moved}
  oauth:
    http:
      auth: {type: oauth2, token_url: "${ config.url }/token", client_id: cid, client_secret: "${ config.cs }"}
    request: {path: /oauth}
  session:
    http:
      auth:
        type: session
        login: {path: /login, body: {user: bob, pw: "${ config.pw }"}, token_header: Set-Cookie}
    request: {path: /session}
tables:
  items: {from: items, primary_key: [id]}
  gql: {from: gql}
  moved: {from: moved}
  oauth: {from: oauth}
  session: {from: session}
`

// TestRunShowsNoSecret: a run against an API that echoes every credential
// it gets (a query key in next links and error bodies, a secret in a path
// and a GraphQL body, a presigned link a redirect leads to, an OAuth2 token
// and client secret with characters JSON escapes, a session of two
// cookies) fails, and no secret is in stdout, stderr (debug logs
// included), the report, the cassette or the database.
func TestRunShowsNoSecret(t *testing.T) {
	const (
		key, org = "KEYs3cret-abcdef", "ORGs3cret-ghijkl"
		cs, pw   = "cs/s3c&ret<x>", `pw"s3cret\z`
		access   = "at-abcdef0123"
		sid, lb  = "sid-998877665544", "lb-route-123456"
		sig      = "abcdefSIG"
	)
	var api *httptest.Server
	api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echo := func(status int, v any) {
			w.WriteHeader(status)
			b, _ := json.Marshal(v)
			w.Write(b)
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/orgs/"):
			if r.URL.Query().Get("page") == "" {
				w.Header().Set("Link", fmt.Sprintf("<%s%s?page=2&api_key=%s>; rel=\"next\"", api.URL, r.URL.Path, r.URL.Query().Get("api_key")))
				w.Write([]byte(`[{"id": "1"}]`))
				return
			}
			http.Error(w, "page 2 broken for "+r.URL.String(), http.StatusInternalServerError)
		case r.URL.Path == "/graphql":
			body := new(bytes.Buffer)
			body.ReadFrom(r.Body)
			echo(http.StatusBadRequest, map[string]any{"bad query": body.String(), "q": r.URL.RawQuery})
		case r.URL.Path == "/moved":
			http.Redirect(w, r, "/bucket/f?sig="+sig+"&"+r.URL.RawQuery, http.StatusFound)
		case r.URL.Path == "/bucket/f":
			http.Error(w, "no such key "+r.URL.String(), http.StatusNotFound)
		case r.URL.Path == "/token":
			body := new(bytes.Buffer)
			body.ReadFrom(r.Body)
			json.NewEncoder(w).Encode(map[string]any{"access_token": access, "expires_in": 3600, "you_sent": body.String()})
		case r.URL.Path == "/oauth":
			echo(http.StatusForbidden, map[string]any{"token": r.Header.Get("Authorization"), "hint": "see https://x/y?access_token=" + access})
		case r.URL.Path == "/login":
			http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: sid})
			http.SetCookie(w, &http.Cookie{Name: "lb", Value: lb})
		case r.URL.Path == "/session":
			c, _ := r.Cookie("JSESSIONID")
			echo(http.StatusInternalServerError, map[string]any{"expired": c.Value})
		}
	}))
	defer api.Close()
	t.Chdir(t.TempDir())
	if err := os.WriteFile("spec.yaml", []byte(secretsSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"run", "spec.yaml", "--set", "url=" + api.URL, "--set", "key=" + key, "--set", "org=" + org, "--set", "cs=" + cs, "--set", "pw=" + pw,
		"--progress", "none", "--report", "report.json", "--record", "cas", "--log-level", "debug", "--dest", "sqlite:out.db"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "5 failed request chain(s)") {
		t.Fatalf("exit %d, want 1 with five failed chains:\n%s", code, stderr.String())
	}
	secrets := []string{key, org, cs, pw, access, sid, lb, sig, "s3cret", "s3c\\u0026ret"}
	files := 0
	err := filepath.Walk(".", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || p == "spec.yaml" {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) || strings.Contains(p, s) {
				t.Errorf("%s holds %s", p, s)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 8 {
		t.Errorf("%d files written, want the report, the database and the cassette's exchanges", files)
	}
	for _, s := range secrets {
		if strings.Contains(stdout.String()+stderr.String(), s) {
			t.Errorf("the output holds %s", s)
		}
	}
}

// TestPortClientIDNotShown: Port's client id is half of its credential
// pair, redacted as its secret is. A run that records a cassette (the token
// request's body holds the id), then a run, a plan and a check whose token
// request Port refuses with a message quoting the id, print it nowhere:
// stdout, stderr (debug logs included), the report, the cassette, the
// database.
func TestPortClientIDNotShown(t *testing.T) {
	const id = "portcid-7Hq2xZ"
	sim := portsim.New(portsim.Options{RateLimit: -1, ClientID: id})
	defer sim.Close()
	var refuse atomic.Bool
	port := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() && r.URL.Path == "/v1/auth/access_token" {
			body := new(bytes.Buffer)
			body.ReadFrom(r.Body)
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "unauthorized", "message": "client " + id + " may not log in; you sent " + body.String()})
			return
		}
		sim.ServeHTTP(w, r)
	}))
	defer port.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id": "1"}, {"id": "2"}]`))
	}))
	defer api.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{
		"spec.yaml": `version: 1
name: pid
config:
  url: {required: true}
http:
  base_url: ${ config.url }
streams:
  items:
    request: {path: /items}
tables:
  items: {from: items, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id}
`,
		"bp.json": `[{"identifier": "item", "title": "Item", "schema": {"properties": {}, "required": []}}]`,
		".env":    "PORT_CLIENT_ID=" + id + "\nPORT_CLIENT_SECRET=" + sim.ClientSecret() + "\nPORT_BASE_URL=" + port.URL + "\n",
	})
	var out bytes.Buffer
	ferry := func(want int, args ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append(args, "--set", "url="+api.URL, "--log-level", "debug"), strings.NewReader(""), &stdout, &stderr)
		if code != want {
			t.Fatalf("ferry %s: exit %d, want %d:\n%s", args[0], code, want, stderr.String())
		}
		out.Write(stdout.Bytes())
		out.Write(stderr.Bytes())
	}
	ferry(engine.ExitOK, "run", "spec.yaml", "--progress", "none", "--record", "cas", "--report", "ok.json", "--dest", "sqlite:out.db")
	if n := catalogCount(sim, "item"); n != 2 {
		t.Fatalf("Port holds %d items, want 2: the recorded run did not write", n)
	}
	refuse.Store(true)
	ferry(engine.ExitFailed, "run", "spec.yaml", "--progress", "none", "--report", "refused.json", "--dest", "sqlite:out.db")
	ferry(engine.ExitFailed, "check", "spec.yaml", "--dest", "sqlite:out.db")
	ferry(engine.ExitFailed, "check", "spec.yaml", "--dest", "sqlite:out.db", "--format", "json")
	ferry(engine.ExitFailed, "plan", "spec.yaml", "--dest", "sqlite:out.db")
	ferry(engine.ExitFailed, "plan", "spec.yaml", "--dest", "sqlite:out.db", "--format", "json")
	if !strings.Contains(out.String(), "may not log in") {
		t.Fatalf("Port's refusal is not shown, so the test shows nothing:\n%s", out.String())
	}
	if strings.Contains(out.String(), id) {
		t.Errorf("the output holds the client id:\n%s", out.String())
	}
	files := 0
	err := filepath.Walk(".", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || p == ".env" {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if bytes.Contains(b, []byte(id)) {
			t.Errorf("%s holds the client id", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 6 {
		t.Errorf("%d files written, want two reports, the database and the cassette's exchanges", files)
	}
}

// panicWriter passes writes on to w, but panics on the first that holds
// on (every one: ""), with msg: a forced bug whose message quotes a secret.
type panicWriter struct {
	w       io.Writer
	on, msg string
	done    bool
}

func (p *panicWriter) Write(b []byte) (int, error) {
	if !p.done && strings.Contains(string(b), p.on) {
		p.done = p.on != ""
		panic(p.msg)
	}
	return p.w.Write(b)
}

// TestPanicIsAReportedInternalError: a panic during a command, in the
// engine (a dry run's stdout) or in the command itself (the summary, the
// check's output), ends it with exit 1 and an internal error on stderr and
// in the report, its message redacted by the run's secrets; the stack is
// shown, redacted, with --log-level debug only.
func TestPanicIsAReportedInternalError(t *testing.T) {
	const key = "KEYs3cret-crash"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id": "1"}, {"id": "2"}]`))
	}))
	defer api.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"spec.yaml": `version: 1
name: crash
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: query, param: api_key, value: "${ config.key }"}
streams:
  items: {request: {path: /items}}
tables:
  items: {from: items, primary_key: [id]}
`})
	msg := "forced bug; key " + key
	for _, tc := range []struct {
		name           string
		args           []string
		stdout, stderr string // panic on the first write holding this ("": every write; "-": none)
		report, stack  bool
	}{
		{name: "engine", args: []string{"run", "spec.yaml", "--dry-run", "--progress", "none", "--report", "r.json"}, stdout: "", stderr: "-", report: true},
		{name: "command", args: []string{"run", "spec.yaml", "--dest", "sqlite:out.db", "--progress", "none", "--report", "r.json"}, stdout: "-", stderr: "records are what the API gave", report: true},
		{name: "debug", args: []string{"check", "spec.yaml", "--format", "json", "--log-level", "debug"}, stdout: "", stderr: "-", stack: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove("r.json")
			var stdout, stderr bytes.Buffer
			out, errw := io.Writer(&stdout), io.Writer(&stderr)
			if tc.stdout != "-" {
				out = &panicWriter{w: &stdout, on: tc.stdout, msg: msg}
			}
			if tc.stderr != "-" {
				errw = &panicWriter{w: &stderr, on: tc.stderr, msg: msg}
			}
			code := run(t.Context(), append(tc.args, "--set", "url="+api.URL, "--set", "key="+key), strings.NewReader(""), out, errw)
			if code != engine.ExitFailed {
				t.Errorf("exit %d, want %d:\n%s", code, engine.ExitFailed, stderr.String())
			}
			if !strings.Contains(stderr.String(), "internal error") || !strings.Contains(stderr.String(), "forced bug; key REDACTED") {
				t.Errorf("stderr does not say the internal error, redacted:\n%s", stderr.String())
			}
			if got := strings.Contains(stderr.String(), "goroutine "); got != tc.stack {
				t.Errorf("stack shown: %v, want %v:\n%s", got, tc.stack, stderr.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), key) {
				t.Errorf("the output holds the key:\n%s\n%s", stdout.String(), stderr.String())
			}
			if !tc.report {
				return
			}
			data, err := os.ReadFile("r.json")
			if err != nil {
				t.Fatal(err)
			}
			var rep engine.RunReport
			if err := json.Unmarshal(data, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Status != "failed" || rep.ExitCode != engine.ExitFailed || !strings.Contains(rep.Error, "internal error") || strings.Contains(string(data), key) {
				t.Errorf("report: status %q, exit %d, error %q (or the key in it)", rep.Status, rep.ExitCode, rep.Error)
			}
		})
	}
}

// TestPortEntityErrorsShowNoSecret: an entity's failure is reported (the
// error, the summary, the report) with its reason: Port's message about
// an entity it refused, which may quote the entity's values, and the
// check of a field against its blueprint, which quotes the value ("got
// …"). A value built from a secret input (the spec is warned of it) is
// redacted in both, as in every other answer of Port's.
func TestPortEntityErrorsShowNoSecret(t *testing.T) {
	const key = "KEYport-0p9o8i7u"
	sim := portsim.New(portsim.Options{RateLimit: -1})
	defer sim.Close()
	sim.RejectEntity("item", "1", http.StatusUnprocessableEntity, "invalid_entity", "entity 1 must not hold "+key)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id": "1", "link": "https://x.example/1"}, {"id": "2", "link": "no url"}, {"id": "3", "link": "https://x.example/3"}]`))
	}))
	defer api.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{
		"spec.yaml": `version: 1
name: pe
config:
  url: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: query, param: api_key, value: "${ config.key }"}
streams:
  items:
    request: {path: /items}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: .id, properties: {link: '.link + "?k=" + $config.key'}}
`,
		"bp.json": `[{"identifier": "item", "title": "Item", "schema": {"properties": {"link": {"type": "string", "format": "url", "title": "Link"}}, "required": []}}]`,
		".env":    "PORT_CLIENT_ID=" + sim.ClientID() + "\nPORT_CLIENT_SECRET=" + sim.ClientSecret() + "\nPORT_BASE_URL=" + sim.URL() + "\n",
	})
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"run", "spec.yaml", "--set", "url=" + api.URL, "--set", "key=" + key, "--progress", "none", "--report", "r.json", "--log-level", "debug"}, strings.NewReader(""), &stdout, &stderr)
	rep, err := os.ReadFile("r.json")
	if err != nil {
		t.Fatal(err)
	}
	all := stdout.String() + stderr.String() + string(rep)
	if code != engine.ExitFailed || !strings.Contains(all, "entity 1 must not hold REDACTED") || !strings.Contains(all, `got \"no url?k=REDACTED\"`) {
		t.Fatalf("exit %d, want 1 naming both entities' failures, redacted:\n%s\n%s", code, stderr.String(), rep)
	}
	if strings.Contains(all, key) {
		t.Errorf("the output or the report holds the key:\n%s\n%s", stderr.String(), rep)
	}
}
