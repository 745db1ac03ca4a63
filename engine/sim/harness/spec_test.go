package harness_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/harness"
	"github.com/ferry-etl/ferry/engine/spec"
)

// The shipped spec this simulator exists for.
const specPath = "../../../specs/harness.yaml"

// runSpec dry-runs the shipped spec and returns its rows per table.
func runSpec(t *testing.T, sets map[string]string, streams ...string) map[string][]map[string]any {
	t.Helper()
	f, err := spec.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: sets, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := engine.Run(t.Context(), f, cfg, engine.RunOptions{DryRun: true, Stdout: &out, Streams: streams}); err != nil {
		t.Fatal(err)
	}
	rows := map[string][]map[string]any{}
	dec := json.NewDecoder(&out)
	dec.UseNumber()
	for dec.More() {
		var line struct {
			Table string
			Row   map[string]any
		}
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		rows[line.Table] = append(rows[line.Table], line.Row)
	}
	return rows
}

func simConfig(srv *harness.Server, acct *harness.Account) map[string]string {
	ou := acct.OUs[0]
	return map[string]string{
		"base_url": srv.URL(), "account_id": acct.ID, "api_token": srv.Options().Token,
		"sei_base_url": srv.SEIBaseURL(), "sei_api_key": srv.Options().SEIKey, "page_size": "5",
		"sei_ou_ids": fmt.Sprint(ou.RefID), "sei_integration_ids": strings.Join(ou.IntegrationIDs, ","),
	}
}

// num is a JSON number as the dry run prints it, for comparison.
func num(v int64) json.Number { return json.Number(fmt.Sprint(v)) }

// TestSpecLoadsOlderShapes runs specs/harness.yaml against both budget
// envelopes and checks that every project and budget, whatever its recorded
// shape, becomes a row carrying exactly the fields it was served with.
func TestSpecLoadsOlderShapes(t *testing.T) {
	for _, seed := range []int64{1, 2} {
		acct := harness.Generate(seed, harness.Small)
		t.Run(fmt.Sprintf("2021 budgets envelope %v", acct.BudgetsEnvelope2021), func(t *testing.T) {
			srv, err := harness.Start(t.Context(), acct, harness.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			rows := runSpec(t, simConfig(srv, acct))

			projects := map[string]map[string]any{}
			for _, r := range rows["user_projects"] {
				projects[fmt.Sprint(r["orgIdentifier"], "/", r["identifier"])] = r
			}
			if len(projects) != len(acct.Projects) {
				t.Errorf("%d project rows, the account has %d", len(projects), len(acct.Projects))
			}
			for _, p := range acct.Projects {
				r := projects[p.Project.OrgIdentifier+"/"+p.Project.Identifier]
				if r == nil {
					t.Errorf("project %s/%s not loaded", p.Project.OrgIdentifier, p.Project.Identifier)
					continue
				}
				// What each recorded shape carries; nil means absent or null.
				want := map[string]any{"createdAt": num(p.CreatedAt), "lastModifiedAt": num(p.LastModifiedAt),
					"isFavorite": p.IsFavorite, "accountIdentifier": nil, "name": p.Project.Name}
				switch p.Shape {
				case harness.ProjectNoFavorite:
					want["isFavorite"] = nil
				case harness.ProjectNullCreatedAt:
					want["createdAt"] = nil
				case harness.ProjectFavoriteOnly:
					want["createdAt"], want["lastModifiedAt"] = nil, nil
				case harness.Project2020:
					want["createdAt"], want["isFavorite"], want["accountIdentifier"] = nil, nil, acct.ID
				}
				for k, v := range want {
					if got := r[k]; fmt.Sprint(got) != fmt.Sprint(v) {
						t.Errorf("project %s (shape %d): %s = %v, want %v", p.Project.Identifier, p.Shape, k, got, v)
					}
				}
			}

			budgets := map[string]map[string]any{}
			for _, r := range rows["budgets"] {
				budgets[r["uuid"].(string)] = r
			}
			if len(budgets) != len(acct.Budgets) {
				t.Errorf("%d budget rows, the account has %d", len(budgets), len(acct.Budgets))
			}
			for _, b := range acct.Budgets {
				r := budgets[b.UUID]
				if r == nil {
					t.Errorf("budget %q not loaded", b.Name)
					continue
				}
				if _, has := r["period"]; has == b.Shape2021 {
					t.Errorf("budget %q (2021 shape %v): period present %v", b.Name, b.Shape2021, has)
				}
				if b.Shape2021 {
					th := r["alertThresholds"].([]any)[0].(map[string]any)
					if th["notifyOnSlack"] != true {
						t.Errorf("2021 threshold lost notifyOnSlack: %v", th)
					}
				}
			}
		})
	}
}
