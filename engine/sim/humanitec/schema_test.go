package humanitec

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSchemaAllEndpoints fetches every endpoint, for every entity of a Small
// and a Demo org, and validates each body against the vendor schema.
func TestSchemaAllEndpoints(t *testing.T) {
	c := loadContract(t)
	for _, tc := range []struct {
		name string
		size Size
	}{{"small", Small()}, {"demo", Demo()}} {
		t.Run(tc.name, func(t *testing.T) {
			org := Generate(7, tc.size)
			h := NewServer(org, Options{})
			for _, op := range c.ops {
				targets := concrete(org, op.Path)
				if len(targets) == 0 {
					t.Errorf("%s: no request target; every operation must be exercised", op.Path)
				}
				for _, target := range targets {
					rec := do(h, DefaultToken, target)
					if rec.Code != http.StatusOK {
						t.Errorf("GET %s: status %d, want 200; body %s", target, rec.Code, rec.Body)
						continue
					}
					if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
						t.Errorf("GET %s: Content-Type %q", target, ct)
					}
					if err := c.validate(t, op.Path, rec.Code, rec.Body.Bytes()); err != nil {
						t.Errorf("GET %s: body does not match the spec:\n%v", target, err)
					}
				}
			}
		})
	}
}

// TestSchemaErrorBodies triggers the error statuses of every endpoint and
// validates their bodies: the spec's declared schema for that status (a bare
// string for some 404s), otherwise HumanitecErrorResponse.
func TestSchemaErrorBodies(t *testing.T) {
	c := loadContract(t)
	org := Generate(3, Small())
	h := NewServer(org, Options{})
	a := org.Apps[0]
	e := a.Envs[0]
	o := "/orgs/" + org.ID

	type errCase struct {
		path   string // operation template
		target string
		token  string
		status int
		bare   bool // body is a bare JSON string
	}
	var cases []errCase
	// 401 on every operation, with and without a token.
	for _, op := range c.ops {
		target := concrete(org, op.Path)[0]
		cases = append(cases,
			errCase{op.Path, target, "", http.StatusUnauthorized, false},
			errCase{op.Path, target, "wrong-token", http.StatusUnauthorized, false})
	}
	// 404 for an unknown org on every operation.
	for _, op := range c.ops {
		target := strings.Replace(concrete(org, op.Path)[0], o, "/orgs/no-such-org", 1)
		bare := strings.Contains(op.Path, "/sets") || strings.Contains(op.Path, "/deltas/")
		cases = append(cases, errCase{op.Path, target, DefaultToken, http.StatusNotFound, bare})
	}
	cases = append(cases,
		errCase{"/orgs/{orgId}/apps/{appId}", o + "/apps/no-such-app", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/envs", o + "/apps/no-such-app/envs", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/envs/{envId}", o + "/apps/" + a.ID + "/envs/nope", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/envs/{envId}/resources", o + "/apps/" + a.ID + "/envs/nope/resources", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/envs/{envId}/resources", o + "/apps/" + a.ID + "/envs/" + e.ID + "/resources?scheduled_deletion=maybe", DefaultToken, 400, false},
		errCase{"/orgs/{orgId}/apps/{appId}/envs/{envId}/resources/graphs/{graphId}", o + "/apps/" + a.ID + "/envs/" + e.ID + "/resources/graphs/00000000-0000-4000-8000-000000000000", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/values", o + "/apps/no-such-app/values", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/envs/{envId}/values", o + "/apps/" + a.ID + "/envs/nope/values", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/value-set-versions", o + "/apps/no-such-app/value-set-versions", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/sets", o + "/apps/no-such-app/sets", DefaultToken, 404, true},
		errCase{"/orgs/{orgId}/apps/{appId}/sets/{setId}", o + "/apps/" + a.ID + "/sets/deadbeef", DefaultToken, 404, true},
		errCase{"/orgs/{orgId}/apps/{appId}/sets/{setId}", o + "/apps/" + a.ID + "/sets/" + a.Sets[0].ID + "?diff=deadbeef", DefaultToken, 404, true},
		errCase{"/orgs/{orgId}/pipelines", o + "/pipelines?per_page=101", DefaultToken, 400, false},
		errCase{"/orgs/{orgId}/pipelines", o + "/pipelines?page=%21%21", DefaultToken, 400, false},
		errCase{"/orgs/{orgId}/apps/{appId}/pipelines", o + "/apps/no-such-app/pipelines", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/pipelines", o + "/apps/" + a.ID + "/pipelines?per_page=0", DefaultToken, 400, false},
		errCase{"/orgs/{orgId}/apps/{appId}/deltas", o + "/apps/no-such-app/deltas", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/apps/{appId}/deltas", o + "/apps/" + a.ID + "/deltas?archived=sometimes", DefaultToken, 400, false},
		errCase{"/orgs/{orgId}/apps/{appId}/deltas/{deltaId}", o + "/apps/" + a.ID + "/deltas/deadbeef", DefaultToken, 404, true},
		errCase{"/orgs/{orgId}/apps/{appId}/deltas/{deltaId}", o + "/apps/no-such-app/deltas/deadbeef", DefaultToken, 404, true},
		errCase{"/orgs/{orgId}/users", o + "/users?type=service", DefaultToken, 400, false},
		errCase{"/orgs/{orgId}/groups/{groupId}/users", o + "/groups/g-00000000-0000-4000-8000-000000000000/users", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/groups/{groupId}/users", o + "/groups/not-a-group/users", DefaultToken, 400, false},
		errCase{"/orgs/{orgId}/users/{userId}/groups", o + "/users/00000000-0000-4000-8000-000000000000/groups", DefaultToken, 404, false},
		errCase{"/orgs/{orgId}/users/{userId}/groups", o + "/users/Bad_Id/groups", DefaultToken, 400, false},
	)

	for _, tc := range cases {
		rec := do(h, tc.token, tc.target)
		if rec.Code != tc.status {
			t.Errorf("GET %s (token %q): status %d, want %d; body %s", tc.target, tc.token, rec.Code, tc.status, rec.Body)
			continue
		}
		var body any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("GET %s: body is not JSON: %v", tc.target, err)
			continue
		}
		if _, isString := body.(string); isString != tc.bare {
			t.Errorf("GET %s: bare string body = %v, want %v (body %s)", tc.target, isString, tc.bare, rec.Body)
		}
		if err := c.validate(t, tc.path, rec.Code, rec.Body.Bytes()); err != nil {
			t.Errorf("GET %s: %d body does not match the spec:\n%v", tc.target, rec.Code, err)
		}
		if strings.Contains(rec.Body.String(), "wrong-token") {
			t.Errorf("GET %s: error body echoes the token", tc.target)
		}
	}
}

// TestSchemaCatchesDrift proves the schema test fails when the simulator and
// the contract disagree: a mutated copy of the contract rejects a real body,
// and mutated bodies are rejected by the real contract.
func TestSchemaCatchesDrift(t *testing.T) {
	org := Generate(1, Small())
	h := NewServer(org, Options{})
	o := "/orgs/" + org.ID
	apps := do(h, DefaultToken, o+"/apps").Body.Bytes()

	t.Run("spec timestamp pattern rejects microseconds", func(t *testing.T) {
		// The widening in parseContract is needed: the spec's own pattern
		// rejects the microseconds served for users and groups.
		users := do(h, DefaultToken, o+"/users").Body.Bytes()
		var list []userRoleResponse
		if err := json.Unmarshal(users, &list); err != nil {
			t.Fatal(err)
		}
		spec := regexp.MustCompile(specTimestamp)
		micro := 0
		for _, u := range list {
			if !spec.MatchString(u.CreatedAt) {
				micro++
			}
		}
		if micro == 0 {
			t.Error("every user timestamp matches the spec's pattern; the widening is not exercised")
		}
	})

	t.Run("mutated contract", func(t *testing.T) {
		b, err := os.ReadFile("testdata/openapi-schemas.json")
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		props := doc["$defs"].(map[string]any)["ApplicationResponse"].(map[string]any)["properties"].(map[string]any)
		props["created_at"].(map[string]any)["type"] = "integer"
		mutated, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := parseContract(t, mutated).validate(t, "/orgs/{orgId}/apps", 200, apps); err == nil {
			t.Fatal("validate: got nil error, want created_at type mismatch")
		} else if !strings.Contains(err.Error(), "created_at") {
			t.Errorf("validate error does not name created_at: %v", err)
		}
	})

	c := loadContract(t)
	if err := c.validate(t, "/orgs/{orgId}/apps", 200, apps); err != nil {
		t.Fatalf("unmutated body must validate: %v", err)
	}
	tests := []struct {
		name   string
		path   string
		target string
		mutate func(v any)
	}{
		{"set version as string", "/orgs/{orgId}/apps/{appId}/sets", o + "/apps/" + org.Apps[0].ID + "/sets",
			func(v any) { v.([]any)[0].(map[string]any)["version"] = "0" }},
		{"missing required app field", "/orgs/{orgId}/apps", o + "/apps",
			func(v any) { delete(v.([]any)[0].(map[string]any), "created_by") }},
		{"invented field", "/orgs/{orgId}/apps", o + "/apps",
			func(v any) { v.([]any)[0].(map[string]any)["title"] = "x" }},
		{"timestamp without zone", "/orgs/{orgId}/apps", o + "/apps",
			func(v any) { v.([]any)[0].(map[string]any)["created_at"] = "2024-01-08T09:00:00" }},
		{"bad app id", "/orgs/{orgId}/apps", o + "/apps",
			func(v any) { v.([]any)[0].(map[string]any)["id"] = "x--y" }},
		{"null last_deploy", "/orgs/{orgId}/apps/{appId}/envs", o + "/apps/" + org.Apps[0].ID + "/envs",
			func(v any) { v.([]any)[0].(map[string]any)["last_deploy"] = nil }},
		{"unknown value source", "/orgs/{orgId}/apps/{appId}/values", o + "/apps/" + org.Apps[0].ID + "/values",
			func(v any) { v.([]any)[0].(map[string]any)["source"] = "org" }},
		{"null pipeline trigger_types", "/orgs/{orgId}/pipelines", o + "/pipelines",
			func(v any) { v.([]any)[0].(map[string]any)["trigger_types"] = nil }},
		{"app timestamp with microseconds", "/orgs/{orgId}/apps", o + "/apps",
			func(v any) { v.([]any)[0].(map[string]any)["created_at"] = "2023-05-06T11:24:19.132413Z" }},
		{"user without role", "/orgs/{orgId}/users", o + "/users",
			func(v any) { delete(v.([]any)[0].(map[string]any), "role") }},
		{"user timestamp with 4 fraction digits", "/orgs/{orgId}/users", o + "/users",
			func(v any) { v.([]any)[0].(map[string]any)["created_at"] = "2023-05-06T11:24:19.1324Z" }},
		{"user timestamp with 9 fraction digits", "/orgs/{orgId}/users", o + "/users",
			func(v any) { v.([]any)[0].(map[string]any)["created_at"] = "2023-05-06T11:24:19.132413000Z" }},
		{"member without type", "/orgs/{orgId}/groups/{groupId}/users", o + "/groups/" + org.Groups[0].ID + "/users",
			func(v any) { delete(v.([]any)[0].(map[string]any), "type") }},
		{"member with a role", "/orgs/{orgId}/groups/{groupId}/users", o + "/groups/" + org.Groups[0].ID + "/users",
			func(v any) { v.([]any)[0].(map[string]any)["role"] = "member" }},
		{"group with a name", "/orgs/{orgId}/users/{userId}/groups", o + "/users/" + org.Users[0].ID + "/groups",
			func(v any) { v.([]any)[0].(map[string]any)["name"] = "platform-team" }},
		{"group without group_id", "/orgs/{orgId}/users/{userId}/groups", o + "/users/" + org.Users[0].ID + "/groups",
			func(v any) { delete(v.([]any)[0].(map[string]any), "group_id") }},
		{"group idp_id with upper case", "/orgs/{orgId}/users/{userId}/groups", o + "/users/" + org.Users[0].ID + "/groups",
			func(v any) { v.([]any)[0].(map[string]any)["idp_id"] = "Okta" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(h, DefaultToken, tc.target)
			var v any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
			tc.mutate(v)
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.validate(t, tc.path, 200, b); err == nil {
				t.Errorf("validate(mutated %s): got nil error, want a violation", tc.target)
			}
		})
	}
}
