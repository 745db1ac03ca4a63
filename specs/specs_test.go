// Tests of the shipped specs: they validate, and against the built-in
// simulators (Small organisations, fixed seed) they produce exactly the
// reviewed golden output in testdata/golden.
package specs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/harness"
	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	"github.com/ferry-etl/ferry/engine/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files (review the diff before committing)")

func TestShippedSpecsValidate(t *testing.T) {
	all, err := filepath.Glob("*.yaml")
	files := slices.DeleteFunc(all, func(f string) bool { return strings.HasSuffix(f, engine.TestSuffix) })
	if err != nil || len(files) < 2 {
		t.Fatalf("want the shipped specs, got %v (%v)", files, err)
	}
	for _, f := range files {
		if _, err := engine.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// dryRun runs a shipped spec with the given config and returns its output.
func dryRun(t *testing.T, path string, sets map[string]string) string {
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
	if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// byTarget groups JSON lines per table or blueprint, each group sorted:
// ferry's order is deterministic per stream, not across the streams that
// feed one target (shared values come from app and env values), and the
// runner's own tests pin the per-stream order.
func byTarget(t *testing.T, text string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var head struct{ Table, Blueprint string }
		if err := json.Unmarshal([]byte(line), &head); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		key := head.Table + head.Blueprint
		out[key] = append(out[key], line)
	}
	for _, lines := range out {
		slices.Sort(lines)
	}
	return out
}

// golden compares got with testdata/golden/NAME, target by target.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", name)
	if *update {
		// Written sorted by target so a reviewer reads one kind at a time.
		groups := byTarget(t, got)
		keys := make([]string, 0, len(groups))
		for k := range groups {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			for _, l := range groups[k] {
				b.WriteString(l + "\n")
			}
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(byTarget(t, string(want)), byTarget(t, got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func TestHumanitecGolden(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	org := humanitec.Generate(1, humanitec.Small())
	srv, err := humanitec.Start(ctx, org, humanitec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out := dryRun(t, "humanitec.yaml", map[string]string{
		"api_url": srv.URL(), "org_id": humanitec.DemoOrgID, "api_token": humanitec.DefaultToken,
		// Small pages, so every app's pipelines take several pages.
		"pipelines_per_page": "10",
	})
	golden(t, "humanitec.jsonl", out)

	// Every blueprint is produced.
	groups := byTarget(t, out)
	for _, bp := range []string{"humanitecApplication", "humanitecEnvironment", "humanitecWorkload", "humanitecResource",
		"humanitecResourceGraph", "humanitecSecretStore", "humanitecSharedValue", "humanitecValueSetVersion",
		"humanitecDeploymentSet", "humanitecPipeline", "humanitecDeploymentDelta", "humanitecGroup", "humanitecUser"} {
		if len(groups[bp]) == 0 {
			t.Errorf("no %s entity", bp)
		}
	}
	// Paging ran to the end: every pipeline of the organisation is there.
	var pipelines int
	for _, a := range org.Apps {
		pipelines += len(a.Pipelines)
	}
	if got := len(groups["humanitecPipeline"]); got != pipelines {
		t.Errorf("%d pipeline entities, the organisation has %d", got, pipelines)
	}
	// Every user is related to all its groups (the member lists gathered by
	// the member_of lookup), users in no group to none.
	var sizes []int
	for _, line := range groups["humanitecUser"] {
		var l struct {
			Entity struct {
				Identifier string
				Relations  map[string][]string
			}
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, g := range org.GroupsOf(l.Entity.Identifier) {
			want = append(want, g.ID)
		}
		slices.Sort(want)
		got := l.Entity.Relations["humanitecGroup"]
		if len(want) != len(got) || !slices.Equal(want, got) {
			t.Errorf("user %s: groups %v, want %v", l.Entity.Identifier, got, want)
		}
		sizes = append(sizes, len(got))
	}
	if !slices.Contains(sizes, 0) || !slices.Contains(sizes, 1) || !slices.Contains(sizes, 3) {
		t.Errorf("users' group counts %v: the golden org should have users in 0, 1 and 3 groups", sizes)
	}
	// No secret value leaves: every secret shared value has an empty value.
	for _, line := range groups["humanitecSharedValue"] {
		if strings.Contains(line, `"isSecret":true`) && !strings.Contains(line, `"value":""`) {
			t.Errorf("secret value sent: %s", line)
		}
	}
}

func TestHarnessGolden(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	acct := harness.Generate(1, harness.Small)
	srv, err := harness.Start(ctx, acct, harness.Options{PageTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ou := acct.OUs[0]
	out := dryRun(t, "harness.yaml", map[string]string{
		"base_url": srv.URL(), "account_id": acct.ID, "api_token": srv.Options().Token,
		"sei_base_url": srv.SEIBaseURL(), "sei_api_key": srv.Options().SEIKey,
		"page_size":  "5", // several pages, with page tokens
		"sei_ou_ids": fmt.Sprint(ou.RefID), "sei_integration_ids": strings.Join(ou.IntegrationIDs, ","),
	})
	golden(t, "harness.jsonl", out)
	groups := byTarget(t, out)
	if got, want := len(groups["user_projects"]), len(acct.Projects); got != want {
		t.Errorf("%d project rows, the account has %d", got, want)
	}
	for _, table := range []string{"user_projects", "connectors", "budgets", "mean_time_to_resolution"} {
		if len(groups[table]) == 0 {
			t.Errorf("no %s row", table)
		}
	}
}

// TestReadmeKeyTables keeps the README's key tables (Top level, Streams,
// Response rules) naming every key the format accepts there, and no key it
// does not: a newcomer writes a spec from them.
func TestReadmeKeyTables(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	raw, err := os.ReadFile("ferry.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for _, c := range []struct{ heading, def string }{
		{"### Top level", "File"},
		{"### Streams", "Stream"},
		{"### Response rules", "Rule"},
	} {
		start := strings.Index(text, "\n"+c.heading+"\n")
		if start < 0 {
			t.Errorf("README has no %q section", c.heading)
			continue
		}
		section := text[start+len(c.heading)+2:]
		if end := strings.Index(section, "\n### "); end >= 0 {
			section = section[:end]
		}
		// The first column of the table's rows: | `key` | meaning |
		var inREADME []string
		for _, line := range strings.Split(section, "\n") {
			if k, ok := strings.CutPrefix(line, "| `"); ok {
				if i := strings.Index(k, "`"); i > 0 {
					inREADME = append(inREADME, k[:i])
				}
			}
		}
		var inSchema []string
		for k := range schema.Defs[c.def].Properties {
			inSchema = append(inSchema, k)
		}
		slices.Sort(inREADME)
		slices.Sort(inSchema)
		if diff := cmp.Diff(inSchema, inREADME); diff != "" {
			t.Errorf("README %q table against the schema's %s keys (-schema +README):\n%s", c.heading, c.def, diff)
		}
	}
}

// TestSpecInputsRead keeps every config input of the shipped and example
// specs read by one of their programs: an input nothing reads is a setting
// a user gives for nothing, silently (the audit-log example's since was one:
// the window's start is initial, which takes no template).
func TestSpecInputsRead(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob(filepath.Join("examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range append(files, examples...) {
		if strings.HasSuffix(file, ".test.yaml") {
			continue
		}
		sp, err := spec.Load(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range sp.Config.Items {
			if !regexp.MustCompile(`config\.` + regexp.QuoteMeta(in.Value.Name) + `\b`).Match(src) {
				t.Errorf("%s: config input %q is read by no program", file, in.Value.Name)
			}
		}
	}
}

// TestExamplesListed keeps specs/README.md's table of examples naming every
// example spec.
func TestExamplesListed(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob(filepath.Join("examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range examples {
		if !strings.Contains(string(readme), "| [`"+filepath.ToSlash(file)+"`]") {
			t.Errorf("specs/README.md's table of examples has no row for %s", file)
		}
	}
}

// TestReadmeExample keeps the README's complete example a valid spec.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "```yaml\nversion: 1\n")
	if start < 0 {
		t.Fatal("README has no complete example (a yaml block starting with version: 1)")
	}
	body := text[start+len("```yaml\n"):]
	body = body[:strings.Index(body, "```")]
	// Without a file system the blueprints file is not read; everything
	// else, embedded programs included, is checked.
	if _, err := spec.Parse("README.md", []byte(body), nil); err != nil {
		t.Errorf("README example: %v", err)
	}
}
