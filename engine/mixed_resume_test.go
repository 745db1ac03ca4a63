package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// TestResumedRunDeletesNoPortEntity: a spec with tables and Port entities,
// interrupted then resumed, must not take the entities of chains finished
// before the interruption (not fetched again) for stale.
func TestResumedRunDeletesNoPortEntity(t *testing.T) {
	dir := t.TempDir()
	src := pagedSpec + `port:
  blueprints: blueprints.json
  # Each run here reads another test server: by default its URL, a
  # required input, would be part of the owner.
  owner: one-source
  entities:
    - blueprint: item
      from: items
      identifier: '$roots.id + "-" + (.id | tostring)'
      properties:
        v: .v
`
	for name, body := range map[string]string{
		"paged.yaml":      src,
		"blueprints.json": `[{"identifier": "item", "title": "Item", "schema": {"properties": {"v": {"type": "string", "title": "V"}}, "required": []}, "relations": {}}]`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := engine.Load(filepath.Join(dir, "paged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pt := portsim.New(portsim.Options{RateLimit: -1})
	defer pt.Close()
	db := "sqlite:" + filepath.Join(dir, "m.db")
	runWith := func(ctx context.Context, url string) (*engine.Result, error) {
		cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: map[string]string{"url": url}, Getenv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatal(err)
		}
		return engine.Run(ctx, f, cfg, engine.RunOptions{Dest: db, Port: engine.PortOptions{BaseURL: pt.URL(), ClientID: pt.ClientID(), ClientSecret: pt.ClientSecret()}})
	}
	if _, err := runWith(t.Context(), pagedAPI(t, nil).URL); err != nil {
		t.Fatal(err)
	}
	full := len(pt.Catalog().Entities)
	if full != 60 {
		t.Fatalf("first run: %d entities, want 60", full)
	}
	// Interrupted once several chains are done, then resumed.
	ctx, cancel := context.WithCancel(t.Context())
	api := pagedAPI(t, func(n int64) {
		if n == 18 {
			cancel()
		}
	})
	if _, err := runWith(ctx, api.URL); err == nil {
		t.Fatal("interrupted run succeeded")
	}
	res, err := runWith(t.Context(), api.URL)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if res.Dest.Port.Deleted != 0 {
		t.Errorf("the resumed run deleted %d entities", res.Dest.Port.Deleted)
	}
	if n := len(pt.Catalog().Entities); n != full {
		t.Errorf("catalog has %d entities after the resumed run, want %d", n, full)
	}
}
