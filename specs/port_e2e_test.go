package specs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// loadPort runs specs/humanitec.yaml for real against the Humanitec
// simulator, into the Port simulator.
func loadPort(t *testing.T, hum *humanitec.Running, pt *portsim.Server) (*engine.Result, error) {
	t.Helper()
	f, err := engine.Load("humanitec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Getenv: func(string) (string, bool) { return "", false }, Sets: map[string]string{
		"api_url": hum.URL(), "org_id": humanitec.DemoOrgID, "api_token": humanitec.DefaultToken, "pipelines_per_page": "10",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return engine.Run(t.Context(), f, cfg, engine.RunOptions{
		Port: engine.PortOptions{BaseURL: pt.URL(), ClientID: pt.ClientID(), ClientSecret: pt.ClientSecret()},
	})
}

// entityIDs lists the catalog's entities as blueprint/identifier.
func entityIDs(pt *portsim.Server) map[string]bool {
	out := map[string]bool{}
	for _, e := range pt.Catalog().Entities {
		out[e.Blueprint+" "+e.Identifier] = true
	}
	return out
}

func TestHumanitecIntoPort(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	org := humanitec.Generate(1, humanitec.Small())
	var failEnvValues bool
	hum, err := humanitec.Start(ctx, org, humanitec.Options{FailPath: func(method, path string) int {
		if failEnvValues && strings.HasSuffix(path, "/values") && strings.Contains(path, "/envs/") {
			return 500
		}
		return 0
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer hum.Close()
	pt := portsim.New(portsim.Options{RateLimit: -1})
	defer pt.Close()

	// 1. A first load: the catalog equals the reviewed golden catalog.
	res, err := loadPort(t, hum, pt)
	if err != nil {
		t.Fatalf("first load: %v", err)
	}
	if res.Dest.Port.Failed != 0 {
		t.Fatalf("%d entities failed: %v", res.Dest.Port.Failed, res.Dest.Port.Errors)
	}
	path := filepath.Join("..", "testdata", "golden", "humanitec-port-catalog.json")
	got := pt.Catalog().JSON()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("Port catalog differs from %s (run with -update and review the diff)", path)
	}
	before := entityIDs(pt)

	// 2. An application disappears: exactly its entities are deleted.
	gone := org.Apps[1].ID
	hum.Update(func(o *humanitec.Org) { o.Apps = append(o.Apps[:1:1], o.Apps[2:]...) })
	res, err = loadPort(t, hum, pt)
	if err != nil {
		t.Fatalf("second load: %v", err)
	}
	after := entityIDs(pt)
	var deleted []string
	for id := range before {
		if !after[id] {
			deleted = append(deleted, id)
		}
	}
	if len(deleted) == 0 || res.Dest.Port.Deleted != len(deleted) {
		t.Fatalf("deleted %d entities (report says %d)", len(deleted), res.Dest.Port.Deleted)
	}
	for _, id := range deleted {
		_, ident, _ := strings.Cut(id, " ")
		// Resource-graph nodes are keyed by guresid; every other kind
		// starts with the application id.
		if !strings.HasPrefix(ident, gone) && !strings.HasPrefix(id, "humanitecResourceGraph ") {
			t.Errorf("deleted %s, which is not under the removed app %s", id, gone)
		}
	}
	for id := range after {
		if !before[id] {
			t.Errorf("second load created %s", id)
		}
	}

	// 3. A failing endpoint: the env-level shared values cannot be read, so
	// they are not produced; the run fails and must not take them for stale.
	failEnvValues = true
	res, err = loadPort(t, hum, pt)
	var re *runner.RunError
	if !errors.As(err, &re) {
		t.Fatalf("third load: err = %v, want the failed streams reported", err)
	}
	if res.Dest.Port.Deleted != 0 {
		t.Errorf("a run with a failing endpoint deleted %d entities", res.Dest.Port.Deleted)
	}
	if n := len(entityIDs(pt)); n != len(after) {
		t.Errorf("catalog went from %d to %d entities after a failed run", len(after), n)
	}
}
