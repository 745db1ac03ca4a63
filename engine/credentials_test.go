package engine_test

import (
	"bytes"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/apitest"
)

// rotatingAPI is HubSpot-like: an OAuth2 token endpoint that rotates the
// refresh token on every use (the old one is refused from then on), and
// contacts that need a live access token.
func rotatingAPI(t *testing.T) *apitest.Server {
	t.Helper()
	s, err := apitest.Start(apitest.Fixture{
		Issuer: &apitest.Issuer{Kind: apitest.IssueOAuth2, Path: "/oauth/v1/token", ClientID: "app", ClientSecret: "app-secret",
			RefreshToken: "rt-configured-0001", Rotate: true, TTL: apitest.Duration{Duration: 30 * time.Minute}},
		Auth:   &apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "},
		Routes: []apitest.Route{{Path: "/crm/v3/objects/contacts", Body: map[string]any{"results": []any{map[string]any{"id": "1"}, map[string]any{"id": "2"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

const rotatingSpec = `
version: 1
name: crm
config:
  url: {required: true}
  refresh_token: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth:
    type: oauth2
    grant: refresh_token
    token_url: ${ config.url }/oauth/v1/token
    client_id: app
    client_secret: app-secret
    client_auth: body
    refresh_token: ${ config.refresh_token }
streams:
  contacts:
    request: {path: /crm/v3/objects/contacts}
    records: .results[]
`

// textLog logs everything to w, so a test can look for secrets in it.
func textLog(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func writeSpec(t *testing.T, dir, name, src string) *engine.Spec {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func runWith(t *testing.T, f *engine.Spec, sets map[string]string, opts engine.RunOptions) (string, error) {
	t.Helper()
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: sets, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out, log bytes.Buffer
	opts.Stdout = &out
	opts.Logger = textLog(&log)
	_, err = engine.Run(t.Context(), f, cfg, opts)
	if strings.Contains(log.String(), "rt-") {
		t.Errorf("a refresh token reached the log:\n%s", log.String())
	}
	return out.String(), err
}

// With a table destination the rotated refresh token is kept in its
// _ferry_state: every later run (dry runs and --full-refresh included)
// starts from the latest one; it is no checkpoint, so a finished run does
// not look unfinished.
func TestRotatedRefreshTokenInDestinationState(t *testing.T) {
	dir := t.TempDir()
	api := rotatingAPI(t)
	f := writeSpec(t, dir, "crm.yaml", rotatingSpec+`tables:
  contacts: {from: contacts, primary_key: [id]}
`)
	db := filepath.Join(dir, "crm.db")
	sets := map[string]string{"url": api.URL(), "refresh_token": "rt-configured-0001"}
	for i, opts := range []engine.RunOptions{
		{Dest: "sqlite:" + db},
		{Dest: "sqlite:" + db, DryRun: true},
		{Dest: "sqlite:" + db, FullRefresh: true},
		{Dest: "sqlite:" + db},
	} {
		if _, err := runWith(t, f, sets, opts); err != nil {
			t.Fatalf("run %d (%+v): %v", i, opts, err)
		}
	}
	if got := api.IssuerStats().Requests; got != 4 {
		t.Errorf("token requests = %d, want 4", got)
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var streams []string
	rows, err := conn.Query(`SELECT stream, value FROM "crm___ferry_state"`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var stream, value string
		if err := rows.Scan(&stream, &value); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, stream)
		if stream == "@auth" && (!strings.Contains(value, "rt-") || strings.Contains(value, "rt-configured-0001")) {
			t.Errorf("saved credential %q: want the latest rotated token", value)
		}
	}
	rows.Close()
	slices.Sort(streams)
	if !slices.Equal(streams, []string{"@auth", "@instance"}) {
		t.Errorf("state after finished runs = %v, want only the credential and the instance", streams)
	}
	// The configured token was used up by the first run.
	other := filepath.Join(dir, "other.db")
	if _, err := runWith(t, f, sets, engine.RunOptions{Dest: "sqlite:" + other}); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("a run with another destination (no saved token) = %v, want invalid_grant", err)
	}
}

// A spec without tables (Port only, or a dry run of one) keeps it in a
// state file beside the spec, readable by its owner only.
func TestRotatedRefreshTokenInStateFile(t *testing.T) {
	dir := t.TempDir()
	api := rotatingAPI(t)
	f := writeSpec(t, dir, "crm.yaml", rotatingSpec)
	sets := map[string]string{"url": api.URL(), "refresh_token": "rt-configured-0001"}
	for i := range 3 {
		if _, err := runWith(t, f, sets, engine.RunOptions{DryRun: true}); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	path := filepath.Join(dir, "crm.state.json")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"credentials"`) || strings.Contains(string(b), "rt-configured-0001") {
		t.Errorf("state file = %s, want the rotated token only", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "ferry.db")); err == nil {
		t.Error("a dry run of a spec without tables created ferry.db")
	}
}
