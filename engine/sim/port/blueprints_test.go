package port

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func bpBody(mut func(m map[string]any)) map[string]any {
	m := map[string]any{
		"identifier": "svc",
		"title":      "Service",
		"schema": map[string]any{"properties": map[string]any{
			"lang": map[string]any{"type": "string", "title": "Language"},
		}, "required": []any{}},
		"relations": map[string]any{},
	}
	if mut != nil {
		mut(m)
	}
	return m
}

func props(m map[string]any) map[string]any {
	return m["schema"].(map[string]any)["properties"].(map[string]any)
}

func TestCreateBlueprintValidation(t *testing.T) {
	tests := []struct {
		name string
		mut  func(m map[string]any)
		want int
	}{
		{"valid", nil, http.StatusCreated},
		{"unicode and slash identifier", func(m map[string]any) { m["identifier"] = "sérvice/a:b@c_d.e+f\\g-h" }, http.StatusCreated},
		{"identifier 100", func(m map[string]any) { m["identifier"] = strings.Repeat("a", 100) }, http.StatusCreated},
		{"identifier 101", func(m map[string]any) { m["identifier"] = strings.Repeat("a", 101) }, http.StatusUnprocessableEntity},
		{"identifier dot", func(m map[string]any) { m["identifier"] = "." }, http.StatusUnprocessableEntity},
		{"identifier dotdot", func(m map[string]any) { m["identifier"] = ".." }, http.StatusUnprocessableEntity},
		{"identifier three dots ok", func(m map[string]any) { m["identifier"] = "..." }, http.StatusCreated},
		{"identifier with =", func(m map[string]any) { m["identifier"] = "a=b" }, http.StatusUnprocessableEntity},
		{"identifier with space", func(m map[string]any) { m["identifier"] = "a b" }, http.StatusUnprocessableEntity},
		{"identifier missing", func(m map[string]any) { delete(m, "identifier") }, http.StatusUnprocessableEntity},
		{"title missing", func(m map[string]any) { delete(m, "title") }, http.StatusUnprocessableEntity},
		{"title empty", func(m map[string]any) { m["title"] = "" }, http.StatusUnprocessableEntity},
		{"title 101", func(m map[string]any) { m["title"] = strings.Repeat("t", 101) }, http.StatusUnprocessableEntity},
		{"description 201", func(m map[string]any) { m["description"] = strings.Repeat("d", 201) }, http.StatusUnprocessableEntity},
		{"schema missing", func(m map[string]any) { delete(m, "schema") }, http.StatusUnprocessableEntity},
		{"schema extra key", func(m map[string]any) { m["schema"].(map[string]any)["x"] = 1 }, http.StatusUnprocessableEntity},
		{"properties missing", func(m map[string]any) { delete(m["schema"].(map[string]any), "properties") }, http.StatusUnprocessableEntity},
		{"property type unknown", func(m map[string]any) { props(m)["n"] = map[string]any{"type": "integer"} }, http.StatusUnprocessableEntity},
		{"property type missing", func(m map[string]any) { props(m)["n"] = map[string]any{"title": "N"} }, http.StatusUnprocessableEntity},
		{"property format unknown", func(m map[string]any) { props(m)["n"] = map[string]any{"type": "string", "format": "uuid"} }, http.StatusUnprocessableEntity},
		{"property format known", func(m map[string]any) { props(m)["n"] = map[string]any{"type": "string", "format": "labeled-url"} }, http.StatusCreated},
		{"property spec unknown", func(m map[string]any) { props(m)["n"] = map[string]any{"type": "string", "spec": "graphql"} }, http.StatusUnprocessableEntity},
		{"property extras allowed", func(m map[string]any) {
			props(m)["n"] = map[string]any{"type": "string", "enum": []any{"a"}, "default": "a", "icon": "X"}
		}, http.StatusCreated},
		{"property key with dot", func(m map[string]any) { props(m)["a.b"] = map[string]any{"type": "string"} }, http.StatusUnprocessableEntity},
		{"property key with slash", func(m map[string]any) { props(m)["a/b"] = map[string]any{"type": "string"} }, http.StatusUnprocessableEntity},
		{"property key 101", func(m map[string]any) { props(m)[strings.Repeat("k", 101)] = map[string]any{"type": "string"} }, http.StatusUnprocessableEntity},
		{"required unknown property", func(m map[string]any) { m["schema"].(map[string]any)["required"] = []any{"nope"} }, http.StatusUnprocessableEntity},
		{"relation to missing blueprint", func(m map[string]any) {
			m["relations"] = map[string]any{"x": map[string]any{"target": "missing", "many": false, "required": false}}
		}, http.StatusNotFound},
		{"relation to self", func(m map[string]any) {
			m["relations"] = map[string]any{"dependsOn": map[string]any{"target": "svc", "many": true, "required": false}}
		}, http.StatusCreated},
		{"relation to existing", func(m map[string]any) {
			m["relations"] = map[string]any{"team": map[string]any{"target": "base", "many": false, "required": false}}
		}, http.StatusCreated},
		{"relation without target", func(m map[string]any) { m["relations"] = map[string]any{"x": map[string]any{"many": true}} }, http.StatusUnprocessableEntity},
		{"relation extra key", func(m map[string]any) {
			m["relations"] = map[string]any{"x": map[string]any{"target": "base", "cardinality": 1}}
		}, http.StatusUnprocessableEntity},
		{"relation many not bool", func(m map[string]any) {
			m["relations"] = map[string]any{"x": map[string]any{"target": "base", "many": "yes"}}
		}, http.StatusUnprocessableEntity},
		{"relation key invalid", func(m map[string]any) { m["relations"] = map[string]any{"a b": map[string]any{"target": "base"}} }, http.StatusUnprocessableEntity},
		{"ownership inherited without path", func(m map[string]any) { m["ownership"] = map[string]any{"type": "Inherited"} }, http.StatusUnprocessableEntity},
		{"ownership direct", func(m map[string]any) { m["ownership"] = map[string]any{"type": "Direct"} }, http.StatusCreated},
		{"mirror path invalid", func(m map[string]any) { m["mirrorProperties"] = map[string]any{"m": map[string]any{"path": "noDot"}} }, http.StatusUnprocessableEntity},
		{"mirror path valid", func(m map[string]any) {
			m["mirrorProperties"] = map[string]any{"m": map[string]any{"path": "team.$title"}}
		}, http.StatusCreated},
		{"calculation without type", func(m map[string]any) {
			m["calculationProperties"] = map[string]any{"c": map[string]any{"calculation": ".title"}}
		}, http.StatusUnprocessableEntity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := New(Options{})
			defer srv.Close()
			c := newClient(t, srv)
			c.must("POST", "/v1/blueprints", map[string]any{"identifier": "base", "title": "Base", "schema": map[string]any{"properties": map[string]any{}}}, http.StatusCreated)
			r := c.do("POST", "/v1/blueprints", bpBody(tc.mut))
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.raw)
			}
			if r.status >= 400 && (r.body["ok"] != false || r.body["message"] == "") {
				t.Errorf("error body %s", r.raw)
			}
		})
	}
}

func TestBlueprintLifecycle(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	c.must("POST", "/v1/blueprints", bpBody(nil), http.StatusCreated)
	c.must("POST", "/v1/blueprints", bpBody(nil), http.StatusConflict)

	got := c.must("GET", "/v1/blueprints/svc", nil, http.StatusOK).body["blueprint"].(map[string]any)
	for _, k := range []string{"createdAt", "updatedAt", "createdBy", "updatedBy"} {
		if _, ok := got[k]; !ok {
			t.Errorf("GET blueprint: missing %s", k)
		}
	}

	// PUT replaces, PATCH merges top-level keys.
	put := bpBody(func(m map[string]any) {
		delete(m, "identifier")
		m["title"] = "Renamed"
		props(m)["n"] = map[string]any{"type": "number"}
	})
	c.must("PUT", "/v1/blueprints/svc", put, http.StatusOK)
	c.must("PATCH", "/v1/blueprints/svc", map[string]any{"description": "d"}, http.StatusOK)
	got = c.must("GET", "/v1/blueprints/svc", nil, http.StatusOK).body["blueprint"].(map[string]any)
	if got["title"] != "Renamed" || got["description"] != "d" {
		t.Errorf("after PUT+PATCH: title %v description %v", got["title"], got["description"])
	}
	if _, ok := props(got)["n"]; !ok {
		t.Errorf("after PATCH: property n lost")
	}

	t.Run("type is immutable", func(t *testing.T) {
		c := c.with(t)
		body := bpBody(func(m map[string]any) { props(m)["n"] = map[string]any{"type": "string"} })
		c.must("PUT", "/v1/blueprints/svc", body, http.StatusUnprocessableEntity)
	})
	t.Run("many is immutable", func(t *testing.T) {
		c := c.with(t)
		c.must("PATCH", "/v1/blueprints/svc", map[string]any{"relations": map[string]any{"dep": map[string]any{"target": "svc", "many": true}}}, http.StatusOK)
		c.must("PATCH", "/v1/blueprints/svc", map[string]any{"relations": map[string]any{"dep": map[string]any{"target": "svc", "many": false}}}, http.StatusUnprocessableEntity)
	})
	t.Run("path and body identifiers must agree", func(t *testing.T) {
		c := c.with(t)
		c.must("PUT", "/v1/blueprints/svc", bpBody(func(m map[string]any) { m["identifier"] = "other" }), http.StatusUnprocessableEntity)
	})
	t.Run("missing", func(t *testing.T) {
		c := c.with(t)
		c.must("PUT", "/v1/blueprints/nope", bpBody(func(m map[string]any) { delete(m, "identifier") }), http.StatusNotFound)
		c.must("GET", "/v1/blueprints/nope", nil, http.StatusNotFound)
		c.must("DELETE", "/v1/blueprints/nope", nil, http.StatusNotFound)
	})
	t.Run("delete guarded", func(t *testing.T) {
		c := c.with(t)
		c.must("POST", "/v1/blueprints", map[string]any{"identifier": "child", "title": "Child", "schema": map[string]any{"properties": map[string]any{}},
			"relations": map[string]any{"svc": map[string]any{"target": "svc"}}}, http.StatusCreated)
		c.must("DELETE", "/v1/blueprints/svc", nil, http.StatusUnprocessableEntity) // target of child.svc
		c.must("POST", "/v1/blueprints/child/entities?upsert=true", map[string]any{"identifier": "c1"}, http.StatusCreated)
		c.must("DELETE", "/v1/blueprints/child", nil, http.StatusUnprocessableEntity) // has entities
		c.must("DELETE", "/v1/blueprints/child/entities/c1", nil, http.StatusOK)
		c.must("DELETE", "/v1/blueprints/child", nil, http.StatusOK)
		c.must("DELETE", "/v1/blueprints/svc", nil, http.StatusOK)
		c.must("GET", "/v1/blueprints/svc", nil, http.StatusNotFound)
	})
	list := c.must("GET", "/v1/blueprints", nil, http.StatusOK).body["blueprints"].([]any)
	if len(list) != 0 {
		t.Errorf("GET /v1/blueprints: %d blueprints left, want 0", len(list))
	}
}

// The published Humanitec blueprints are valid POST bodies once their
// relation targets exist.
func TestHumanitecBlueprintsAccepted(t *testing.T) {
	for _, file := range []string{"humanitec-blueprints.json", "port-docs-humanitec-blueprints.json"} {
		t.Run(file, func(t *testing.T) {
			var bps []map[string]any
			if err := json.Unmarshal(readTestdata(t, file), &bps); err != nil {
				t.Fatal(err)
			}
			srv := New(Options{})
			defer srv.Close()
			c := newClient(t, srv)
			created := map[string]bool{}
			for len(created) < len(bps) {
				progress := false
				for _, bp := range bps {
					id := bp["identifier"].(string)
					if created[id] {
						continue
					}
					ready := true
					for _, r := range bp["relations"].(map[string]any) {
						tgt := r.(map[string]any)["target"].(string)
						ready = ready && (tgt == id || created[tgt])
					}
					if !ready {
						// Creating it now must fail: the target is missing.
						c.must("POST", "/v1/blueprints", bp, http.StatusNotFound)
						continue
					}
					c.must("POST", "/v1/blueprints", bp, http.StatusCreated)
					created[id] = true
					progress = true
				}
				if !progress {
					t.Fatalf("relation cycle; created only %v", created)
				}
			}
		})
	}
}
