package engine_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/humanitec"
)

// dryRunWith runs specs/humanitec.yaml as a dry run with config sets and
// run options, and returns its output lines sorted (the order across
// streams feeding one blueprint is not fixed).
func dryRunWith(t *testing.T, sets map[string]string, opts engine.RunOptions) (string, error) {
	t.Helper()
	sp, err := engine.Load(filepath.Join("..", "specs", "humanitec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: sets, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opts.DryRun, opts.Stdout = true, &out
	_, err = engine.Run(t.Context(), sp, cfg, opts)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n", err
}

// TestCassetteRoundTrip: a dry run recorded from the Humanitec simulator
// and replayed without it (against the default base URL, with another
// token) prints the same rows and entities, byte for byte; the cassette
// holds neither the token nor the simulator's address; a replay sends
// nothing to the network; a request the cassette lacks fails the run and
// names the closest recorded one.
func TestCassetteRoundTrip(t *testing.T) {
	const token = "round-trip-token-9f8e"
	org := humanitec.Generate(3, humanitec.Size{Pipelines: 12})
	srv, err := humanitec.Start(t.Context(), org, humanitec.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "cassette")
	sets := map[string]string{"api_url": srv.URL(), "org_id": humanitec.DemoOrgID, "api_token": token, "pipelines_per_page": "5"}
	recorded, err := dryRunWith(t, sets, engine.RunOptions{Record: dir})
	if err != nil {
		t.Fatal(err)
	}
	live := len(srv.Requests())

	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("%d exchanges recorded, want every request of the run", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{token, strings.TrimPrefix(srv.URL(), "http://")} {
			if bytes.Contains(b, []byte(leak)) {
				t.Errorf("%s holds %q", f.Name(), leak)
			}
		}
	}

	// A recording that fails before its first request removes nothing.
	if _, err := dryRunWith(t, sets, engine.RunOptions{Record: dir, Streams: []string{"nope"}}); err == nil {
		t.Fatal("a run of an unknown stream succeeded")
	}
	if again, _ := os.ReadDir(dir); len(again) != len(files) {
		t.Fatalf("a failed recording left %d of %d exchanges", len(again), len(files))
	}

	replaySets := map[string]string{"org_id": humanitec.DemoOrgID, "api_token": "another-token", "pipelines_per_page": "5"}
	replayed, err := dryRunWith(t, replaySets, engine.RunOptions{Replay: dir})
	if err != nil {
		t.Fatal(err)
	}
	if replayed != recorded {
		t.Errorf("replayed output differs from the recorded run:\n%s\n---\n%s", recorded, replayed)
	}
	replaySets["api_url"] = srv.URL()
	if _, err := dryRunWith(t, replaySets, engine.RunOptions{Replay: dir}); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Requests()); n != live {
		t.Errorf("a replay sent %d requests to the simulator", n-live)
	}

	replaySets["pipelines_per_page"] = "6"
	_, err = dryRunWith(t, replaySets, engine.RunOptions{Replay: dir})
	var re *engine.RunError
	if !errors.As(err, &re) {
		t.Fatalf("replay of other requests: err = %v, want the run to fail", err)
	}
	msg := err.Error()
	for _, want := range []string{"/pipelines?per_page=6: not in the cassette " + dir, "the closest recorded request is GET <config:api_url>/orgs/" + humanitec.DemoOrgID + "/apps/", `query per_page: "6" here, "5" recorded`} {
		if !strings.Contains(msg, want) {
			t.Errorf("miss error lacks %q:\n%s", want, msg)
		}
	}
}

// TestRecordAndReplayExclusive: a run either records or replays.
func TestRecordAndReplayExclusive(t *testing.T) {
	_, err := dryRunWith(t, map[string]string{"org_id": "x", "api_token": "y"}, engine.RunOptions{Record: t.TempDir(), Replay: t.TempDir()})
	var ue *engine.UsageError
	if !errors.As(err, &ue) {
		t.Errorf("err = %v, want a usage error", err)
	}
	_, err = dryRunWith(t, map[string]string{"org_id": "x", "api_token": "y"}, engine.RunOptions{Replay: filepath.Join(t.TempDir(), "none")})
	if !errors.As(err, &ue) {
		t.Errorf("replay of a missing cassette: err = %v, want a usage error", err)
	}
}
