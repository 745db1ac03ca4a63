package specs_test

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/harness"
)

// TestHarnessWithoutSEI: most Harness accounts have no SEI module. With the
// platform token and account id alone, or SEI lists given empty
// (HARNESS_SEI_OU_IDS=""), the three platform tables load, the run
// succeeds, the summary says why mean_time was skipped, and its table
// exists, empty.
func TestHarnessWithoutSEI(t *testing.T) {
	for name, sei := range map[string]map[string]string{
		"no SEI config":   {},
		"empty SEI lists": {"sei_api_key": "k", "sei_ou_ids": "", "sei_integration_ids": ""},
	} {
		t.Run(name, func(t *testing.T) { harnessWithoutSEI(t, sei) })
	}
}

func harnessWithoutSEI(t *testing.T, sei map[string]string) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	acct := harness.Generate(1, harness.Small)
	srv, err := harness.Start(ctx, acct, harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sp, err := engine.Load("harness.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string]string{"base_url": srv.URL(), "account_id": acct.ID, "api_token": srv.Options().Token}
	maps.Copy(sets, sei)
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{
		Sets:   sets,
		Getenv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "h.db")
	res, err := engine.Run(ctx, sp, cfg, engine.RunOptions{Dest: "sqlite:" + db})
	if err != nil {
		t.Fatalf("run without SEI config: %v", err)
	}
	for _, s := range res.Summary.Streams {
		switch {
		case s.Stream == "mean_time" && !strings.Contains(s.SkipReason, "when is false"):
			t.Errorf("mean_time: skip reason %q, want the when", s.SkipReason)
		case s.Stream == "mean_time" && s.Requests != 0:
			t.Errorf("mean_time sent %d requests", s.Requests)
		case s.Stream != "mean_time" && (s.SkipReason != "" || s.Records == 0):
			t.Errorf("%s: %+v", s.Stream, s)
		}
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for table, atLeast := range map[string]int{"user_projects": 1, "connectors": 1, "budgets": 1, "mean_time_to_resolution": 0} {
		var n int
		if err := conn.QueryRow(`SELECT count(*) FROM "harness__` + table + `"`).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
			continue
		}
		if n < atLeast || (atLeast == 0 && n != 0) {
			t.Errorf("table %s has %d rows", table, n)
		}
	}
}
