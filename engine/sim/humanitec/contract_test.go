package humanitec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// contract is testdata/openapi-schemas.json (extracted from the vendor's
// OpenAPI document by internal/extract) compiled for validation.
type contract struct {
	defs map[string]any
	ops  []contractOp
	// cache of compiled schemas by "path status".
	compiled map[string]*jsonschema.Schema
}

type contractOp struct {
	Method     string                      `json:"method"`
	Path       string                      `json:"path"`
	Parameters []map[string]any            `json:"parameters"`
	Responses  map[string]contractResponse `json:"responses"`
}

type contractResponse struct {
	Schema  map[string]any            `json:"schema"`
	Headers map[string]map[string]any `json:"headers"`
}

func loadContract(t testing.TB) *contract {
	t.Helper()
	b, err := os.ReadFile("testdata/openapi-schemas.json")
	if err != nil {
		t.Fatal(err)
	}
	return parseContract(t, b)
}

func parseContract(t testing.TB, b []byte) *contract {
	t.Helper()
	var doc struct {
		Defs map[string]any `json:"$defs"`
		Ops  []contractOp   `json:"x-operations"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse contract: %v", err)
	}
	for _, d := range doc.Defs {
		closeObjects(d)
	}
	widenRecordedTimestamps(t, doc.Defs)
	for _, op := range doc.Ops {
		for _, r := range op.Responses {
			closeObjects(r.Schema)
		}
	}
	return &contract{defs: doc.Defs, ops: doc.Ops, compiled: map[string]*jsonschema.Schema{}}
}

// specTimestamp is the created_at pattern of the user schemas in the spec:
// whole seconds or milliseconds.
const specTimestamp = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z$`

// recordedTimestamp also allows the microseconds real answers carry
// (2023-05-06T11:24:19.132413Z), which the simulator serves for users and
// groups: where recordings and the spec differ, the recordings win.
const recordedTimestamp = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3}|\.[0-9]{6})?Z$`

// widenRecordedTimestamps swaps specTimestamp for recordedTimestamp in the
// created_at of the user schemas only. It fails when the spec's pattern is
// not the expected one, so a newer spec is looked at rather than overridden.
func widenRecordedTimestamps(t testing.TB, defs map[string]any) {
	t.Helper()
	for _, name := range []string{"UserRoleResponse", "UserProfileResponse"} {
		def, _ := defs[name].(map[string]any)
		props, _ := def["properties"].(map[string]any)
		ca, _ := props["created_at"].(map[string]any)
		if ca == nil || ca["pattern"] != specTimestamp {
			t.Fatalf("contract %s.created_at is %v, want the pattern %s", name, ca, specTimestamp)
		}
		ca["pattern"] = recordedTimestamp
	}
}

// closeObjects makes every object schema that lists properties reject
// properties it does not list. The vendor schemas are open; closing them
// here is a test choice so the simulator cannot invent or misspell a field.
// Required names the schema forgot to declare stay allowed.
func closeObjects(v any) {
	s, ok := v.(map[string]any)
	if !ok {
		return
	}
	if props, ok := s["properties"].(map[string]any); ok {
		if _, set := s["additionalProperties"]; !set {
			s["additionalProperties"] = false
		}
		req, _ := s["required"].([]any)
		for _, r := range req {
			if name, ok := r.(string); ok {
				if _, ok := props[name]; !ok {
					props[name] = map[string]any{}
				}
			}
		}
		for _, p := range props {
			closeObjects(p)
		}
	}
	for _, k := range []string{"items", "additionalProperties", "not"} {
		closeObjects(s[k])
	}
	for _, k := range []string{"allOf", "oneOf", "anyOf"} {
		list, _ := s[k].([]any)
		for _, sub := range list {
			closeObjects(sub)
		}
	}
}

func (c *contract) op(t testing.TB, path string) contractOp {
	t.Helper()
	for _, o := range c.ops {
		if o.Path == path {
			return o
		}
	}
	t.Fatalf("contract has no operation %s", path)
	return contractOp{}
}

// schemaFor returns the response schema the spec declares for path and
// status. Statuses the spec does not list for that path fall back to
// HumanitecErrorResponse, the body the spec's introduction gives every error.
func (c *contract) schemaFor(t testing.TB, path string, status int) *jsonschema.Schema {
	t.Helper()
	key := fmt.Sprintf("%s %d", path, status)
	if s, ok := c.compiled[key]; ok {
		return s
	}
	var root map[string]any
	if r, ok := c.op(t, path).Responses[fmt.Sprint(status)]; ok && r.Schema != nil {
		root = map[string]any{}
		for k, v := range r.Schema {
			root[k] = v
		}
	} else {
		root = map[string]any{"$ref": "#/$defs/HumanitecErrorResponse"}
	}
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$defs"] = c.defs
	b, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	comp.AssertFormat()
	url := "mem://contract/" + fmt.Sprint(len(c.compiled)) + ".json"
	if err := comp.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := comp.Compile(url)
	if err != nil {
		t.Fatalf("compile schema for %s: %v", key, err)
	}
	c.compiled[key] = s
	return s
}

// validate checks body against the schema for path and status.
func (c *contract) validate(t testing.TB, path string, status int, body []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	return c.schemaFor(t, path, status).Validate(inst)
}

// do sends one GET through the handler with the given token ("" for none).
func do(h http.Handler, token, target string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// concrete lists request targets for one operation template over org's data,
// including filtered variants.
func concrete(org *Org, template string) []string {
	o := "/orgs/" + org.ID
	var out []string
	each := func(fn func(a *App)) {
		for _, a := range org.Apps {
			fn(a)
		}
	}
	eachEnv := func(fn func(a *App, e *Env)) {
		each(func(a *App) {
			for _, e := range a.Envs {
				fn(a, e)
			}
		})
	}
	switch strings.TrimPrefix(template, "/orgs/{orgId}") {
	case "/apps":
		out = append(out, o+"/apps")
	case "/apps/{appId}":
		each(func(a *App) { out = append(out, o+"/apps/"+a.ID) })
	case "/apps/{appId}/envs":
		each(func(a *App) { out = append(out, o+"/apps/"+a.ID+"/envs") })
	case "/apps/{appId}/envs/{envId}":
		eachEnv(func(a *App, e *Env) { out = append(out, o+"/apps/"+a.ID+"/envs/"+e.ID) })
	case "/apps/{appId}/envs/{envId}/resources":
		eachEnv(func(a *App, e *Env) {
			base := o + "/apps/" + a.ID + "/envs/" + e.ID + "/resources"
			out = append(out, base, base+"?scheduled_deletion=true", base+"?scheduled_deletion=false")
		})
	case "/apps/{appId}/envs/{envId}/resources/graphs/{graphId}":
		eachEnv(func(a *App, e *Env) {
			for _, g := range e.Graphs {
				out = append(out, o+"/apps/"+a.ID+"/envs/"+e.ID+"/resources/graphs/"+g.ID)
			}
		})
	case "/secretstores":
		out = append(out, o+"/secretstores")
	case "/apps/{appId}/values":
		each(func(a *App) { out = append(out, o+"/apps/"+a.ID+"/values") })
	case "/apps/{appId}/envs/{envId}/values":
		eachEnv(func(a *App, e *Env) { out = append(out, o+"/apps/"+a.ID+"/envs/"+e.ID+"/values") })
	case "/apps/{appId}/value-set-versions":
		each(func(a *App) {
			base := o + "/apps/" + a.ID + "/value-set-versions"
			out = append(out, base, base+"?key_changed=LOG_LEVEL")
		})
	case "/apps/{appId}/sets":
		each(func(a *App) { out = append(out, o+"/apps/"+a.ID+"/sets") })
	case "/apps/{appId}/sets/{setId}":
		each(func(a *App) {
			for _, s := range a.Sets {
				out = append(out, o+"/apps/"+a.ID+"/sets/"+s.ID)
				out = append(out, o+"/apps/"+a.ID+"/sets/"+s.ID+"?diff="+a.Sets[0].ID)
				out = append(out, o+"/apps/"+a.ID+"/sets/"+a.Sets[0].ID+"?diff="+s.ID)
			}
		})
	case "/pipelines":
		out = append(out, o+"/pipelines", o+"/pipelines?per_page=100", o+"/pipelines?trigger=pipeline_call",
			o+"/pipelines?metadata%5Bteam%5D=platform")
		each(func(a *App) { out = append(out, o+"/pipelines?app="+a.ID) })
	case "/apps/{appId}/pipelines":
		each(func(a *App) { out = append(out, o+"/apps/"+a.ID+"/pipelines?per_page=3") })
	case "/apps/{appId}/deltas":
		each(func(a *App) {
			base := o + "/apps/" + a.ID + "/deltas"
			out = append(out, base, base+"?archived=true", base+"?env="+a.Envs[0].ID)
		})
	case "/users":
		out = append(out, o+"/users", o+"/users?type=user", o+"/users?type=group")
	case "/groups/{groupId}/users":
		for _, g := range org.Groups {
			out = append(out, o+"/groups/"+g.ID+"/users")
		}
	case "/users/{userId}/groups":
		for _, u := range org.Users {
			out = append(out, o+"/users/"+u.ID+"/groups")
		}
	case "/apps/{appId}/deltas/{deltaId}":
		each(func(a *App) {
			for _, d := range a.Deltas {
				out = append(out, o+"/apps/"+a.ID+"/deltas/"+d.ID)
			}
		})
	}
	return out
}
