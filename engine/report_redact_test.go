package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// TestReportRedactsDuplicateKeys: the run report's examples of repeated
// keys name each key, and a key may be a value that holds a secret (here
// records echoing the OAuth2 access token the run fetched, and the
// client secret): the report shows them redacted, as the run's logs and
// stdout do, by the run's redactor (which knows the fetched token).
func TestReportRedactsDuplicateKeys(t *testing.T) {
	const access, secret = "at-7d6c5b4a3f2e", "cs-1a2b3c4d5e"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			fmt.Fprintf(w, `{"access_token": %q, "expires_in": 3600}`, access)
			return
		}
		// Two records echo the token (one key), two the client secret.
		fmt.Fprintf(w, `[{"id": %[1]q}, {"id": %[1]q}, {"id": %[2]q}, {"id": %[2]q}]`, r.Header.Get("Authorization"), "s "+secret)
	}))
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(path, []byte(`version: 1
name: s
config:
  url: {required: true}
  secret: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: oauth2, token_url: "${ config.url }/token", client_id: id, client_secret: "${ config.secret }"}
streams:
  items:
    request: {path: /items}
tables:
  items: {from: items, primary_key: [id], on_duplicate: warn}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "secret": secret}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		t.Run(fmt.Sprintf("dry_run=%v", dry), func(t *testing.T) {
			var out strings.Builder
			res, err := engine.Run(t.Context(), sp, cfg, engine.RunOptions{DryRun: dry, Stdout: &out,
				Dest: "sqlite:" + filepath.Join(t.TempDir(), "r.db"), StateFile: filepath.Join(t.TempDir(), "state.json")})
			if err != nil {
				t.Fatal(err)
			}
			rep := engine.NewRunReport(sp, path, res, err, engine.ExitCode(err, false), dry, time.Now())
			data, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Duplicates) != 1 || len(rep.Duplicates[0].Examples) != 2 {
				t.Fatalf("duplicates %+v, want the two repeated keys", rep.Duplicates)
			}
			for _, s := range []string{access, secret} {
				if strings.Contains(string(data), s) {
					t.Errorf("the report holds %s:\n%s", s, data)
				}
			}
			if ex := strings.Join(rep.Duplicates[0].Examples, "\n"); !strings.Contains(ex, "Bearer REDACTED") || !strings.Contains(ex, "s REDACTED") {
				t.Errorf("examples %q, want the keys, redacted", ex)
			}
		})
	}
}

// TestReportRedactsPortIdentifiers: an entity Port does not get is named
// in the report by its identifier and its record's parent chain, values
// of records that may echo a secret (here the access token the run
// fetched from the source): redacted there too, in Port's errors, its
// entity errors and its conflicts.
func TestReportRedactsPortIdentifiers(t *testing.T) {
	const access = "at-6a5b4c3d2e1f"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			fmt.Fprintf(w, `{"access_token": %q, "expires_in": 3600}`, access)
		case "/groups":
			fmt.Fprintf(w, `[{"id": %q}]`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		default:
			// The first is another owner's entity, the second does not fit
			// the blueprint (its name is a number).
			fmt.Fprintf(w, `[{"id": %q, "name": "x"}, {"id": "bad", "name": 5}]`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"s.yaml": `version: 1
name: s
config:
  url: {required: true}
  secret: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth: {type: oauth2, token_url: "${ config.url }/token", client_id: id, client_secret: "${ config.secret }"}
streams:
  groups: {request: {path: /groups}}
  items:
    for_each: groups
    request: {path: /items}
port:
  blueprints: bp.json
  entities:
    - {blueprint: item, from: items, identifier: '"i-" + .id', properties: {name: .name}}
`,
		"bp.json": `[{"identifier": "item", "title": "Item", "schema": {"properties": {"name": {"type": "string"}}}}]`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sp, err := engine.Load(filepath.Join(dir, "s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": srv.URL, "secret": "cs-0a9b8c7d6e"}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	pt := portsim.New(portsim.Options{RateLimit: -1})
	defer pt.Close()
	// An entity of another owner: a conflict, named by its identifier.
	if err := pt.SeedBlueprint([]byte(`{"identifier": "item", "title": "Item", "schema": {"properties": {"name": {"type": "string"}, "ferryOwner": {"type": "string"}}}}`)); err != nil {
		t.Fatal(err)
	}
	if err := pt.SeedEntity("item", []byte(`{"identifier": "i-`+access+`", "properties": {"ferryOwner": "someone-else"}}`)); err != nil {
		t.Fatal(err)
	}
	res, err := engine.Run(t.Context(), sp, cfg, engine.RunOptions{Dest: "sqlite:" + filepath.Join(t.TempDir(), "r.db"), StateFile: filepath.Join(t.TempDir(), "state.json"),
		Port: engine.PortOptions{BaseURL: pt.URL(), ClientID: pt.ClientID(), ClientSecret: pt.ClientSecret()}})
	if err == nil {
		t.Fatal("the run passed with an entity Port did not get")
	}
	rep := engine.NewRunReport(sp, "s.yaml", res, err, engine.ExitCode(err, false), false, time.Now())
	data, jerr := json.MarshalIndent(rep, "", " ")
	if jerr != nil {
		t.Fatal(jerr)
	}
	if rep.Port == nil || len(rep.Port.EntityErrors) == 0 {
		t.Fatalf("no entity error reported:\n%s", data)
	}
	if strings.Contains(string(data), access) {
		t.Errorf("the report holds the token:\n%s", data)
	}
	if len(rep.Port.Conflicts) != 1 || !strings.Contains(rep.Port.Conflicts[0], `"i-REDACTED"`) {
		t.Errorf("conflicts %q, want the other owner's entity, its identifier redacted", rep.Port.Conflicts)
	}
	for _, e := range rep.Port.EntityErrors {
		if !strings.Contains(e.Identifier+e.Parents, "REDACTED") {
			t.Errorf("entity error %+v, want its identifier or parents redacted", e)
		}
	}
}
