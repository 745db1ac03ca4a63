// Tests of the example specs: each validates, and runs against a simulator
// that answers as the real API does (GitHub's 404s and 403 rate limit,
// Slack's errors in 200 answers, Port's JSON token call and search paging).
package examples_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/apitest"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/spec"
)

func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("want the example specs, got %v (%v)", files, err)
	}
	for _, f := range files {
		if _, err := engine.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// dryRun runs an example with config sets and returns its rows by table
// and the run's result.
func dryRun(t *testing.T, path string, sets map[string]string) (map[string][]map[string]any, *engine.Result, error) {
	t.Helper()
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: sets, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out})
	return tableRows(t, out.String()), res, err
}

// tableRows reads a dry run's output into its rows by table.
func tableRows(t *testing.T, out string) map[string][]map[string]any {
	t.Helper()
	rows := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var l struct {
			Table string         `json:"table"`
			Row   map[string]any `json:"row"`
		}
		if jerr := json.Unmarshal([]byte(line), &l); jerr != nil {
			t.Fatalf("not JSON: %q", line)
		}
		rows[l.Table] = append(rows[l.Table], l.Row)
	}
	return rows
}

// column lists one column of a table's rows, sorted.
func column(rows []map[string]any, name string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprint(r[name]))
	}
	slices.Sort(out)
	return out
}

func stream(res *engine.Result, name string) engine.Snapshot {
	for _, s := range res.Summary.Streams {
		if s.Stream == name {
			return s
		}
	}
	return engine.Snapshot{}
}

func startFixture(t *testing.T, name string) *apitest.Server {
	t.Helper()
	s, err := apitest.StartFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// GitHub: every repository and pull request, pages followed by Link; the
// repository without a README has no readme row and fails nothing; the
// primary rate limit (x-ratelimit-remaining 0) is waited out.
func TestGitHub(t *testing.T) {
	t.Parallel()
	s := startFixture(t, "github-api.yaml")
	rows, res, err := dryRun(t, "github.yaml", map[string]string{"api_url": s.URL(), "org": "acme", "token": "ghp_exampletoken", "per_page": "2"})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if d := cmp.Diff([]string{"acme/api", "acme/infra", "acme/web"}, column(rows["repositories"], "full_name")); d != "" {
		t.Errorf("repositories (-want +got):\n%s", d)
	}
	if got := len(rows["pull_requests"]); got != 9 {
		t.Errorf("pull requests = %d, want 9 (3 repositories × 3, over two pages each)", got)
	}
	if d := cmp.Diff([]string{"acme/api", "acme/web"}, column(rows["readmes"], "repository")); d != "" {
		t.Errorf("readmes (-want +got):\n%s", d)
	}
	if got := stream(res, "readme"); got.Empty != 1 || got.Errors != 0 {
		t.Errorf("readme counters = %+v, want one empty answer (infra has no README)", got)
	}
	// GitHub announces its budget on every answer (x-ratelimit-remaining,
	// x-ratelimit-reset): ferry's rate control holds the next request while
	// it is spent, until the reset, so the limit is waited out before
	// GitHub refuses anything (the 403 retry rule is the fallback). The one
	// 403 is the fixture's secondary limit, which says so only in its
	// message: retried, its pull requests are all there (above).
	limited := 0
	for _, r := range s.Requests() {
		if r.Status == 403 {
			limited++
		}
	}
	if limited != 1 {
		t.Errorf("%d requests refused with 403, want the secondary limit only: the announced budget should have held the others until the reset", limited)
	}
	if n := len(s.Requests()); n <= 8 {
		t.Errorf("%d requests: the test does not reach the simulator's limit of 8 a second", n)
	}
	if !res.Summary.Tables["readmes"] || !res.Summary.Tables["pull_requests"] {
		t.Errorf("tables that may be reconciled = %v: a 404 README and a waited-out rate limit keep them complete", res.Summary.Tables)
	}

	// A bad token fails the run with the 401.
	_, _, err = dryRun(t, "github.yaml", map[string]string{"api_url": s.URL(), "org": "acme", "token": "wrong", "per_page": "2"})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a bad token: err = %v, want the 401", err)
	}
}

// Slack: errors come in 200 answers. A transient one is retried, and so
// is a 429 (whose body is an error too); a channel the app is not in is
// skipped (counted, not failed, and the messages
// table not reconciled); a bad token fails with Slack's code.
func TestSlack(t *testing.T) {
	t.Parallel()
	s := startFixture(t, "slack-api.yaml")
	rows, res, err := dryRun(t, "slack.yaml", map[string]string{"api_url": s.URL(), "token": "xoxb-example-token"})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if d := cmp.Diff([]string{"C0", "C1", "C2"}, column(rows["channels"], "id")); d != "" {
		t.Errorf("channels (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"C0", "C0", "C0", "C1", "C1", "C1"}, column(rows["messages"], "channel")); d != "" {
		t.Errorf("messages by channel (-want +got):\n%s", d)
	}
	for _, r := range rows["messages"] {
		if r["text"] == nil || r["ts"] == nil {
			t.Errorf("message row without text or ts (an error body stored as data?): %v", r)
		}
	}
	if got := len(rows["users"]); got != 2 {
		t.Errorf("users = %d, want 2", got)
	}
	if got := stream(res, "users"); got.Retries != 1 || got.Errors != 0 {
		t.Errorf("users counters = %+v, want 1 retry (the 429, whose body says ok: false), no error", got)
	}
	if got := stream(res, "messages"); got.Skipped != 1 || got.Errors != 0 || got.Retries != 1 {
		t.Errorf("messages counters = %+v, want 1 skipped (not_in_channel), 1 retry (internal_error), no error", got)
	}
	if res.Summary.Tables["messages"] || !res.Summary.Tables["channels"] {
		t.Errorf("tables that may be reconciled = %v: messages must not be (C2's are unknown), channels must", res.Summary.Tables)
	}

	_, _, err = dryRun(t, "slack.yaml", map[string]string{"api_url": s.URL(), "token": "xoxb-revoked"})
	if err == nil || !strings.Contains(err.Error(), "200 OK: rule http.rules[3] (fail): invalid_auth") {
		t.Errorf("a bad token: err = %v, want Slack's invalid_auth from a 200", err)
	}
}

// Port as a source: a JSON token call, then the search API paged by
// sending `next` back as `from` in the body; a 429 is retried.
func TestPortSource(t *testing.T) {
	t.Parallel()
	srv := portsim.New(portsim.Options{})
	defer srv.Close()
	for _, bp := range []string{"service", "team"} {
		if err := srv.SeedBlueprint([]byte(fmt.Sprintf(`{"identifier":%q,"title":%q,"schema":{"properties":{"tier":{"type":"string"}}}}`, bp, bp))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		if err := srv.SeedEntity("service", []byte(fmt.Sprintf(`{"identifier":"svc-%d","title":"Service %d","properties":{"tier":"t%d"}}`, i, i, i%2))); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.SeedEntity("team", []byte(`{"identifier":"platform","title":"Platform"}`)); err != nil {
		t.Fatal(err)
	}
	// A rate limit mid-search (Port's 429 carries its error body, which a
	// rule for Port's errors must not fail): waited out, nothing lost.
	srv.InjectFault(portsim.Fault{Method: "POST", Path: "*/entities/search", Times: 1, Kind: portsim.FaultThrottle, RetryAfter: "1"})
	rows, res, err := dryRun(t, "port-source.yaml", map[string]string{"base_url": srv.URL(), "client_id": srv.ClientID(),
		"client_secret": srv.ClientSecret(), "blueprints": "service, team", "page_size": "3"})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	want := []string{"platform", "svc-0", "svc-1", "svc-2", "svc-3", "svc-4", "svc-5", "svc-6"}
	if d := cmp.Diff(want, column(rows["entities"], "identifier")); d != "" {
		t.Errorf("entities (-want +got):\n%s", d)
	}
	for _, r := range rows["entities"] {
		if r["identifier"] == "svc-3" && fmt.Sprint(r["properties"]) != "map[tier:t1]" {
			t.Errorf("svc-3 properties = %v", r["properties"])
		}
	}
	if got := srv.CountRequests("POST", "/v1/auth/access_token"); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
	searches := srv.CountRequests("POST", "/v1/blueprints/service/entities/search") + srv.CountRequests("POST", "/v1/blueprints/team/entities/search")
	if searches != 5 {
		t.Errorf("searches = %d, want 5 (7 services, 3 a page, and one team), one of them answered 429 and sent again", searches)
	}
	if got := stream(res, "entities"); got.Retries != 1 {
		t.Errorf("entities retries = %d, want 1 (the 429)", got.Retries)
	}
	if !res.Summary.Tables["entities"] {
		t.Errorf("entities not complete: %v", res.Summary.Tables)
	}
}

// TestReadmeSnippets keeps the spec reference's examples of auth, rules,
// form bodies and pagination valid: each YAML block there that starts with
// http: or streams: is completed into a spec (its config names declared, a
// stream added when it has none) and validated.
func TestReadmeSnippets(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start, end := strings.Index(text, "\n### Auth\n"), strings.Index(text, "\n### Built-in functions\n")
	if start < 0 || end < start {
		t.Fatal("README: no spec reference sections")
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(text[start:end], -1)
	configRE := regexp.MustCompile(`config\.([A-Za-z_][A-Za-z0-9_]*)`)
	checked := 0
	for _, b := range blocks {
		body := b[1]
		if !strings.HasPrefix(body, "http:") && !strings.HasPrefix(body, "streams:") {
			continue
		}
		checked++
		var src strings.Builder
		src.WriteString("version: 1\nname: snippet\nconfig:\n  _unused: {}\n")
		seen := map[string]bool{}
		for _, m := range configRE.FindAllStringSubmatch(body, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				fmt.Fprintf(&src, "  %s: {}\n", m[1])
			}
		}
		// A path needs a base URL; the snippets leave it out for brevity.
		switch {
		case strings.Contains(body, "base_url:"):
		case strings.HasPrefix(body, "http:\n"):
			body = "http:\n  base_url: https://api.example.com\n" + strings.TrimPrefix(body, "http:\n")
		case strings.HasPrefix(body, "streams:"):
			src.WriteString("http:\n  base_url: https://api.example.com\n")
		}
		src.WriteString(body)
		if !strings.Contains(body, "streams:") {
			src.WriteString("streams:\n  s:\n    request: {path: /x}\n")
		}
		if _, err := spec.Parse("README.md", []byte(src.String()), nil); err != nil {
			t.Errorf("README snippet:\n%s\n%v", body, err)
		}
	}
	if checked < 8 {
		t.Errorf("checked %d snippets, want the 8 or more of the auth, rules, streams and pagination sections", checked)
	}
}

// A blueprint the spec is asked for that Port does not list (a typo, or
// one the credentials cannot see) fails the run naming it, rather than
// read nothing of it and exit 0 as though it held no entities.
func TestPortSourceUnknownBlueprintFails(t *testing.T) {
	t.Parallel()
	srv := portsim.New(portsim.Options{})
	defer srv.Close()
	if err := srv.SeedBlueprint([]byte(`{"identifier":"service","title":"service","schema":{"properties":{}}}`)); err != nil {
		t.Fatal(err)
	}
	if err := srv.SeedEntity("service", []byte(`{"identifier":"svc-0","title":"Service 0"}`)); err != nil {
		t.Fatal(err)
	}
	r := runVendor(t, "port-source.yaml", map[string]string{"base_url": srv.URL(), "client_id": srv.ClientID(),
		"client_secret": srv.ClientSecret(), "blueprints": "service, sevrice"}, time.Time{})
	failedRun(t, r, []string{"blueprints", "sevrice"})
}
