package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// panicOnRequest is a log handler that panics, quoting msg, on the log
// line of a request whose URL holds path.
type panicOnRequest struct {
	slog.Handler
	path, msg string
}

func (h panicOnRequest) Enabled(context.Context, slog.Level) bool { return true }

func (h panicOnRequest) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "url" && strings.Contains(a.Value.String(), h.path) {
			panic(h.msg)
		}
		return true
	})
	return nil
}

// TestSpecTestPanicRedactsFetchedToken: `ferry test`'s run case replays a
// cassette whose token exchange gives an access token (hand-written: a
// recorded one holds a placeholder), and a bug panics quoting it once the
// case's run sent a request with it. The case fails with an internal
// error redacted by the run's redactor, which learnt the token when the
// run fetched it: a run case is a run (engine.Run), whose redaction is
// the pool's.
func TestSpecTestPanicRedactsFetchedToken(t *testing.T) {
	const access = "at-0f1e2d3c4b5a"
	dir := t.TempDir()
	files := map[string]string{
		"s.yaml": `version: 1
name: s
config:
  url: {required: true}
  secret: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: oauth2, token_url: "${ config.url }/token", client_id: id, client_secret: "${ config.secret }"}
streams:
  items: {request: {path: /items}}
tables:
  items: {from: items, primary_key: [id]}
`,
		"s.test.yaml": `runs:
  - name: one
    config: {url: "https://api.example"}
    cassette: cass
    snapshot: one.jsonl
`,
		"one.jsonl": `{"table":"items","op":"upsert","row":{"id":"1"}}` + "\n",
		"cass/POST_token.json": `{
  "request": {"method": "POST", "url": "<config:url>/token",
    "headers": {"Accept": "application/json", "Authorization": "<secret>", "Content-Type": "application/x-www-form-urlencoded"},
    "body_text": "grant_type=client_credentials"},
  "response": {"status": 200, "headers": {"Content-Type": "application/json"},
    "body": {"access_token": "` + access + `", "expires_in": 3600}}
}`,
		"cass/GET_items.json": `{
  "request": {"method": "GET", "url": "<config:url>/items",
    "headers": {"Accept": "application/json", "Authorization": "Bearer <secret>"}},
  "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": [{"id": "1"}]}
}`,
	}
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Without the bug, the case passes: the cassette replays.
	res, err := engine.RunTests(t.Context(), filepath.Join(dir, "s.test.yaml"), engine.TestOptions{})
	if err != nil || len(res.Cases) != 1 || !res.Cases[0].Passed() {
		t.Fatalf("RunTests = %+v, %v: want the case passed", res, err)
	}
	log := slog.New(panicOnRequest{slog.DiscardHandler, "/items", "forced bug; token " + access})
	res, err = engine.RunTests(t.Context(), filepath.Join(dir, "s.test.yaml"), engine.TestOptions{Logger: log})
	if err != nil || len(res.Cases) != 1 {
		t.Fatalf("RunTests = %+v, %v: want one case", res, err)
	}
	c := res.Cases[0]
	var text strings.Builder
	for _, a := range c.Annotations {
		text.WriteString(a.Msg + "\n")
	}
	if c.Passed() || c.Err == nil || !strings.Contains(c.Err.Error(), "internal error") || !strings.Contains(c.Err.Error(), "forced bug; token REDACTED") {
		t.Errorf("case error %v, want the panic, redacted", c.Err)
	}
	if strings.Contains(errors.Join(c.Err).Error()+text.String(), access) {
		t.Errorf("the case shows the token:\n%v\n%s", c.Err, text.String())
	}
}
