package engine_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

func shippedSpec(t *testing.T, name string) *engine.Spec {
	t.Helper()
	sp, err := engine.Load(filepath.Join("..", "specs", name))
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMapRecord: one record through one mapping, with its ancestors and
// config, gives what a run gives, and says what is missing or wrong.
func TestMapRecord(t *testing.T) {
	hum := shippedSpec(t, "humanitec.yaml")
	har := shippedSpec(t, "harness.yaml")
	notion := shippedSpec(t, "examples/notion.yaml")
	page := map[string]any{"id": "p2", "url": "u", "parent": map[string]any{"type": "page_id"}, "archived": false,
		"properties": map[string]any{"title": map[string]any{"type": "title", "title": []any{map[string]any{"plain_text": "Sub"}}}}}
	for _, tc := range []struct {
		name string
		sp   *engine.Spec
		in   engine.MapInput
		want string // JSON of the result, or the error's text
	}{
		{"entity with its parent", hum, engine.MapInput{
			Blueprint: "humanitecEnvironment",
			Record:    map[string]any{"id": "dev", "name": "Development", "type": "development"},
			Parents:   map[string]any{"apps": map[string]any{"id": "web"}},
		}, `[{"identifier":"web/dev","properties":{"createdAt":null,"lastDeploymentComment":null,"lastDeploymentDate":null,"lastDeploymentStatus":null,"type":"development"},"relations":{"humanitecApplication":"web"},"title":"Development"}]`},
		{"ancestors two levels up", hum, engine.MapInput{
			Blueprint: "humanitecWorkload",
			Record:    map[string]any{"res_id": "modules.api-v2", "type": "workload", "status": "Active"},
			Parents:   map[string]any{"apps": map[string]any{"id": "web"}, "envs": map[string]any{"id": "prod"}},
		}, `[{"identifier":"web/prod/api-v2","properties":{"class":null,"definitionId":null,"definitionVersionId":null,"driverType":null,"graphResourceID":null,"status":"Active","updatedAt":null},"relations":{"humanitecEnvironment":"web/prod"},"title":"Api V2"}]`},
		{"selector rejects", hum, engine.MapInput{
			Blueprint: "humanitecWorkload",
			Record:    map[string]any{"res_id": "shared.db", "type": "postgres"},
			Parents:   map[string]any{"apps": map[string]any{"id": "web"}, "envs": map[string]any{"id": "prod"}},
		}, `null`},
		{"row with config and defaults", har, engine.MapInput{
			Table:  "mean_time_to_resolution",
			Record: map[string]any{"key": "Lead time", "count": 4, "mean": 1.5},
			Config: map[string]any{"sei_ou_ids": " 7 , 9"},
		}, `"ou_id":"7,9","p90_seconds":null,"p95_seconds":null,"rating":null,"stage":"Lead time","total_incidents":4,"upper_limit_unit":null,"upper_limit_value":null,"window_from":"2024-01-01","window_to":"2025-01-01"}]`},
		{"row without its primary key", har, engine.MapInput{
			Table:  "user_projects",
			Record: map[string]any{"project": map[string]any{"identifier": "p1"}},
		}, `table user_projects: row has no value for primary key column "orgIdentifier"`},
		{"identifier null", hum, engine.MapInput{
			Blueprint: "humanitecApplication",
			Record:    map[string]any{"name": "x"},
		}, `identifier: want a non-empty string, got null`},
		{"missing parent", hum, engine.MapInput{
			Blueprint: "humanitecWorkload",
			Record:    map[string]any{},
			Parents:   map[string]any{"envs": map[string]any{"id": "prod"}},
		}, `parents: stream resources fans out from envs < apps: give the record of apps`},
		{"not an ancestor", hum, engine.MapInput{
			Blueprint: "humanitecApplication",
			Record:    map[string]any{},
			Parents:   map[string]any{"envs": map[string]any{}},
		}, `parents: stream apps has no parent stream, so no parents.envs`},
		{"unknown table", har, engine.MapInput{Table: "budget"}, `no table "budget"; did you mean "budgets"? (the spec has: user_projects, connectors, budgets, mean_time_to_resolution)`},
		{"unknown config", har, engine.MapInput{Table: "budgets", Config: map[string]any{"pagesize": 1}}, `config: unknown input "pagesize"; did you mean "page_size"?`},
		{"a table fed by several streams, from one of them", notion, engine.MapInput{
			Table: "pages", From: "subpages", Record: page,
			Parents: map[string]any{"listed_pages": map[string]any{"value": "p1"}, "blocks": map[string]any{"id": "p2", "type": "child_page"}},
		}, `[{"created_time":null,"id":"p2","in_trash":false,"last_edited_time":null,"parent_type":"page_id","title":"Sub","url":"u"}]`},
		{"a table fed by several streams, without from", notion, engine.MapInput{Table: "pages", Record: page},
			`table pages is fed by several streams (pages, subpages): give from, the stream the record is of`},
		{"a table not fed by from", notion, engine.MapInput{Table: "pages", From: "blocks", Record: page},
			`table pages is not fed by stream "blocks" (its from: pages, subpages)`},
		{"several mappings", hum, engine.MapInput{Blueprint: "humanitecSharedValue"}, `blueprint humanitecSharedValue is mapped from several streams (app_values, env_values): say which with from`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.MapRecord(t.Context(), tc.sp, tc.in)
			text := asJSON(t, got)
			if err != nil {
				text = err.Error()
			}
			if !strings.HasSuffix(text, tc.want) {
				t.Errorf("MapRecord =\n%s\nwant it to end with\n%s", text, tc.want)
			}
		})
	}
}
