package specs_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/harness"
)

// TestHarnessProjectEditedWhileRead: Harness lists projects by
// lastModifiedAt, newest first, in offset pages (builds without
// pageToken). A project edited while the list is read moves to the front:
// the pages after it shift, one project is listed twice and another never.
// The run must fail naming the shortfall against totalItems, not load the
// list one short.
func TestHarnessProjectEditedWhileRead(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	acct := harness.Generate(1, harness.Small)
	var (
		srv   *harness.Server
		mu    sync.Mutex
		pages int
		moved string
	)
	srv, err := harness.Start(ctx, acct, harness.Options{FailPath: func(_, path string) int {
		if path != "/ng/api/projects" {
			return 0
		}
		mu.Lock()
		defer mu.Unlock()
		if pages++; pages != 2 {
			return 0
		}
		// Before the second page: the least recently modified project is edited.
		srv.Update(func(a *harness.Account) {
			var newest int64
			oldest := 0
			for i, p := range a.Projects {
				newest = max(newest, p.LastModifiedAt)
				if p.LastModifiedAt < a.Projects[oldest].LastModifiedAt {
					oldest = i
				}
			}
			a.Projects[oldest].LastModifiedAt = newest + 1000
			moved = a.Projects[oldest].Project.Identifier
		})
		return 0
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sp, err := engine.Load("harness.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{
		Sets:   map[string]string{"base_url": srv.URL(), "account_id": acct.ID, "api_token": srv.Options().Token, "page_size": "5"},
		Getenv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Run(ctx, sp, cfg, engine.RunOptions{Dest: "sqlite:" + filepath.Join(t.TempDir(), "h.db")})
	if moved == "" || pages < 3 {
		t.Fatalf("the list was read in %d pages, nothing moved", pages)
	}
	if err == nil || !strings.Contains(err.Error(), "stream projects") || !strings.Contains(err.Error(), "paginate.total") {
		t.Fatalf("run error %v, want the projects list's shortfall against its total (%s moved ahead)", err, moved)
	}
	for _, s := range res.Summary.Streams {
		if s.Stream == "projects" && s.Errors == 0 {
			t.Errorf("projects: %+v, want an error", s)
		}
	}
}
