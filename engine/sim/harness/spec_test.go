package harness_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/harness"
)

// The shipped spec this simulator exists for.
const specPath = "../../../specs/harness.yaml"

// runSpec dry-runs the shipped spec and returns its rows per table.
func runSpec(t *testing.T, sets map[string]string, streams ...string) map[string][]map[string]any {
	t.Helper()
	f, err := engine.Load(specPath)
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

// TestSpecMeanTimeRows: every SEI record becomes one row with every field
// kept, durations in seconds as SEI sent them, and band from the rating.
func TestSpecMeanTimeRows(t *testing.T) {
	acct := harness.Generate(1, harness.Small)
	srv, err := harness.Start(t.Context(), acct, harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := simConfig(srv, acct)
	rows := runSpec(t, cfg, "mean_time")["mean_time_to_resolution"]

	// The same request the spec sends (default window 2024-01-01 to 2025-01-01).
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix() - 1
	to := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	ou := acct.OUs[0]
	body := fmt.Sprintf(`{"ou_ids":[%d],"filter":{"integration_ids":["%s"],"jira_issue_resolved_at":{"$gt":"%d","$lt":"%d"}}}`,
		ou.RefID, strings.Join(ou.IntegrationIDs, `","`), from, to)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.SEIBaseURL()+"/v1/dora/mean-time", strings.NewReader(body))
	req.Header.Set("Authorization", "ApiKey "+srv.Options().SEIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct{ Records []map[string]any }
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&answer); err != nil || len(answer.Records) == 0 {
		t.Fatalf("SEI answer %s: %v", raw, err)
	}
	if len(rows) != len(answer.Records) {
		t.Fatalf("%d rows for %d records", len(rows), len(answer.Records))
	}
	for i, rec := range answer.Records {
		vsr := rec["velocity_stage_result"].(map[string]any)
		want := map[string]any{
			"ou_id": fmt.Sprint(ou.RefID), "window_from": "2024-01-01", "window_to": "2025-01-01",
			"stage": rec["key"], "end_event": rec["additional_key"], "total_incidents": rec["count"],
			"mean_seconds": rec["mean"], "median_seconds": rec["median"], "p90_seconds": rec["p90"], "p95_seconds": rec["p95"],
			"lower_limit_value": vsr["lower_limit_value"], "lower_limit_unit": vsr["lower_limit_unit"],
			"upper_limit_value": vsr["upper_limit_value"], "upper_limit_unit": vsr["upper_limit_unit"],
			"rating": vsr["rating"], "band": vsr["rating"],
		}
		if len(rows[i]) != len(want) {
			t.Errorf("row %d has columns %v, want exactly %d", i, rows[i], len(want))
		}
		for k, v := range want {
			if fmt.Sprint(rows[i][k]) != fmt.Sprint(v) {
				t.Errorf("row %d %s = %v, want %v", i, k, rows[i][k], v)
			}
		}
	}
}

// TestSpecMeanTimeBand: a band sent by a server wins over the rating, and
// the rating keeps its own column; a record without either loads with nulls.
func TestSpecMeanTimeBand(t *testing.T) {
	sei := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"records":[`+
			`{"key":"Open","additional_key":"e","median":1,"count":1,"mean":1.0,"p90":1,"p95":1,"band":"ELITE","velocity_stage_result":{"lower_limit_value":1,"lower_limit_unit":"DAYS","upper_limit_value":2,"upper_limit_unit":"DAYS","rating":"GOOD"}},`+
			`{"key":"Bare","median":1,"count":1,"mean":1.0,"p90":1,"p95":1}`+
			`],"count":2,"_metadata":{"page_size":100,"page":0,"has_next":false,"total_count":2}}`)
	}))
	defer sei.Close()
	rows := runSpec(t, map[string]string{"account_id": "acct", "api_token": "pat.unused.token", "sei_base_url": sei.URL, "sei_api_key": "sei.fake.key",
		"sei_ou_ids": "1", "sei_integration_ids": "2"}, "mean_time")["mean_time_to_resolution"]
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	if rows[0]["band"] != "ELITE" || rows[0]["rating"] != "GOOD" {
		t.Errorf("band/rating = %v/%v, want ELITE/GOOD", rows[0]["band"], rows[0]["rating"])
	}
	for _, k := range []string{"band", "rating", "end_event", "lower_limit_unit"} {
		if rows[1][k] != nil {
			t.Errorf("bare record: %s = %v, want null", k, rows[1][k])
		}
	}
}
