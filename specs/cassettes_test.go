package specs_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/demo"
	"github.com/ferry-etl/ferry/engine/sim/harness"
	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	"github.com/ferry-etl/ferry/engine/spectest"
)

// simulated starts the simulator a shipped run case was recorded from and
// returns the config that points the spec at it: base URLs and real
// credentials, which the cassette holds as placeholders.
var simulated = map[string]func(t *testing.T) map[string]string{
	"humanitec.test.yaml/small-org": func(t *testing.T) map[string]string {
		org := humanitec.Generate(1, humanitec.Size{Pipelines: 12})
		srv, err := humanitec.Start(t.Context(), org, humanitec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return map[string]string{"api_url": srv.URL(), "api_token": humanitec.DefaultToken}
	},
	"harness.test.yaml/small-account": func(t *testing.T) map[string]string {
		srv, err := harness.Start(t.Context(), harness.Generate(1, harness.Small), harness.Options{PageTokens: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return map[string]string{"base_url": srv.URL(), "sei_base_url": srv.SEIBaseURL(),
			"api_token": srv.Options().Token, "sei_api_key": srv.Options().SEIKey}
	},
}

// TestShippedCassettes: every run case of the shipped specs' test files
// was recorded from its simulator, and recording it again gives the same
// files, byte for byte (-update records them into testdata/recordings).
// The cassettes hold no credential and no simulator address.
func TestShippedCassettes(t *testing.T) {
	files, err := filepath.Glob("*" + spectest.Suffix)
	if err != nil || len(files) < 2 {
		t.Fatalf("want the shipped specs' test files, got %v (%v)", files, err)
	}
	for _, file := range files {
		tf, err := spectest.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range tf.Runs {
			t.Run(file+"/"+rc.Name, func(t *testing.T) {
				sim := simulatorFor(t, file, tf.Spec, rc)
				dir := rc.Cassette
				if !*update {
					dir = t.TempDir()
				}
				record(t, tf.Spec, rc, sim, dir)
				if *update {
					return
				}
				got, want := readFiles(t, dir), readFiles(t, rc.Cassette)
				if diff := slices.Compare(slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got))); diff != 0 {
					t.Fatalf("re-recording gives other files:\n got %v\nwant %v\n(go test ./specs -update records them again)", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
				}
				for name, data := range want {
					if !bytes.Equal(got[name], data) {
						t.Errorf("re-recording changes %s:\n%s\n---\n%s", name, data, got[name])
					}
				}
				for name, data := range got {
					for k, v := range sim {
						if bytes.Contains(data, []byte(strings.TrimPrefix(v, "http://"))) {
							t.Errorf("%s holds %s's value %q", name, k, v)
						}
					}
				}
			})
		}
	}
}

// simulatorFor starts the simulator a run case is recorded from and
// returns the config that points the spec at it: the case's own in
// simulated, else its spec's --demo simulator, which a case added as
// specs/README.md says was recorded from. The case's config wins over the
// demo's, as --set does over --demo.
func simulatorFor(t *testing.T, file, specPath string, rc spectest.Run) map[string]string {
	t.Helper()
	if start := simulated[file+"/"+rc.Name]; start != nil {
		return start(t)
	}
	sp, err := engine.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := demo.Start(t.Context(), sp.Name())
	if err != nil {
		t.Fatalf("no simulator for %s run %s (add it to simulated): %v", file, rc.Name, err)
	}
	t.Cleanup(d.Close)
	sim := maps.Clone(d.Config)
	for k := range rc.Config {
		delete(sim, k)
	}
	return sim
}

// record runs a shipped spec as a dry run against its simulator, with a
// case's config, streams and clock, recording into dir.
func record(t *testing.T, specPath string, rc spectest.Run, sim map[string]string, dir string) {
	t.Helper()
	sp, err := engine.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string]string{}
	for k, v := range rc.Config {
		sets[k] = fmt.Sprint(v)
	}
	maps.Copy(sets, sim)
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: sets, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	opts := engine.RunOptions{DryRun: true, Stdout: new(bytes.Buffer), Record: dir, Streams: rc.Streams}
	if !rc.Now.IsZero() {
		opts.Now = func() time.Time { return rc.Now }
	}
	if _, err := engine.Run(t.Context(), sp, cfg, opts); err != nil {
		t.Fatal(err)
	}
}

func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestShippedSpecTests runs the shipped specs' test files as `ferry test
// specs/` does (-update rewrites their snapshots).
func TestShippedSpecTests(t *testing.T) {
	files, err := engine.FindTests([]string{"."})
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		res, err := engine.RunTests(t.Context(), file, engine.TestOptions{Update: *update})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Cases {
			if !c.Passed() {
				var b strings.Builder
				for _, d := range c.Diffs {
					b.WriteString(strings.Join(d.Lines(), "\n") + "\n")
				}
				t.Errorf("%s: %s %s: %v\n%s", file, c.Kind, c.Name, c.Err, b.String())
			}
		}
	}
}

// TestReadmeTestFile keeps the README's test file example a valid test
// file of the shipped Humanitec spec, whose mapping case passes.
func TestReadmeTestFile(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "```yaml\nspec: humanitec.yaml")
	if start < 0 {
		t.Fatal("README has no test file example (a yaml block starting with spec: humanitec.yaml)")
	}
	body := text[start+len("```yaml\n"):]
	body = body[:strings.Index(body, "```")]
	path := filepath.Join(t.TempDir(), "humanitec.test.yaml")
	abs, err := filepath.Abs("humanitec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body = strings.Replace(body, "spec: humanitec.yaml", "spec: "+abs, 1)
	body = body[:strings.Index(body, "runs:")] + body[strings.Index(body, "mappings:"):]
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := engine.RunTests(t.Context(), path, engine.TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cases {
		if !c.Passed() {
			t.Errorf("README example case %s: %v %v", c.Name, c.Err, c.Diffs)
		}
	}
}

// TestCaseRecordedFromTheDemo: a run case added as specs/README.md's
// "Adding an entity" says (recorded with --demo, for its streams) has no
// entry in simulated: it is recorded again from its spec's demo
// simulator, with its streams only, so that CI passes without Go.
func TestCaseRecordedFromTheDemo(t *testing.T) {
	rc := spectest.Run{Name: "groups only", Config: map[string]any{"org_id": "ferry-demo"}, Streams: []string{"groups"}}
	dir := t.TempDir()
	record(t, "humanitec.yaml", rc, simulatorFor(t, "humanitec.test.yaml", "humanitec.yaml", rc), dir)
	var names []string
	for name := range readFiles(t, dir) {
		names = append(names, name)
	}
	// groups lists /users?type=group: one request, no group's members.
	if len(names) != 1 || !strings.HasPrefix(names[0], "GET_orgs_ferry-demo_users_") {
		t.Fatalf("want the one request of stream groups recorded, got %v", names)
	}
}
