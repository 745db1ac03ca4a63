package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// miniDoc is a hand-written OpenAPI 3.0 fragment exercising each conversion.
const miniDoc = `{
  "info": {"title": "Mini", "version": "1.2.3"},
  "paths": {
    "/orgs/{orgId}/things": {
      "parameters": [{"$ref": "#/components/parameters/orgId"}],
      "get": {
        "operationId": "listThings",
        "parameters": [{"name": "per_page", "in": "query", "description": "prose",
          "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}}],
        "responses": {
          "200": {"description": "ok",
            "headers": {"Link": {"$ref": "#/components/headers/Link"}},
            "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}}}},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    }
  },
  "components": {
    "parameters": {"orgId": {"name": "orgId", "in": "path", "required": true, "example": "x",
      "schema": {"type": "string", "pattern": "^[a-z]+$"}}},
    "headers": {"Link": {"description": "links", "schema": {"type": "string"}}},
    "responses": {"NotFound": {"description": "nf", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Err"}}}}},
    "schemas": {
      "Thing": {"type": "object", "description": "a thing", "example": {"id": "a"},
        "required": ["id", "description"],
        "properties": {
          "id": {"type": "string", "title": "ID", "pattern": "^[a-z]+$"},
          "description": {"type": "string", "description": "a property named description"},
          "when": {"type": "string", "format": "date-time", "nullable": true},
          "kind": {"$ref": "#/components/schemas/Kind", "description": "ignored sibling"},
          "score": {"type": "number", "minimum": 0, "exclusiveMinimum": true}
        }},
      "Kind": {"type": "string", "nullable": true, "enum": ["a", "b"]},
      "Err": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
      "Unused": {"type": "string"}
    }
  }
}`

func TestExtract(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(miniDoc), &doc); err != nil {
		t.Fatal(err)
	}
	got, err := Extract(doc, []Operation{{Method: "get", Path: "/orgs/{orgId}/things"}}, []string{"Err"})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var norm map[string]any
	if err := json.Unmarshal(b, &norm); err != nil {
		t.Fatal(err)
	}

	defs := norm["$defs"].(map[string]any)
	if diff := cmp.Diff([]string{"Err", "Kind", "Thing"}, sortedKeys(defs)); diff != "" {
		t.Errorf("$defs keys (-want +got):\n%s", diff)
	}
	wantThing := map[string]any{
		"type":     "object",
		"required": []any{"id", "description"},
		"properties": map[string]any{
			"id":          map[string]any{"type": "string", "pattern": "^[a-z]+$"},
			"description": map[string]any{"type": "string"},
			"when":        map[string]any{"type": []any{"string", "null"}, "format": "date-time"},
			"kind":        map[string]any{"$ref": "#/$defs/Kind"},
			"score":       map[string]any{"type": "number", "exclusiveMinimum": float64(0)},
		},
	}
	if diff := cmp.Diff(wantThing, defs["Thing"]); diff != "" {
		t.Errorf("Thing (-want +got):\n%s", diff)
	}
	wantKind := map[string]any{"type": []any{"string", "null"}, "enum": []any{"a", "b", nil}}
	if diff := cmp.Diff(wantKind, defs["Kind"]); diff != "" {
		t.Errorf("Kind (-want +got):\n%s", diff)
	}

	ops := norm["x-operations"].([]any)
	if len(ops) != 1 {
		t.Fatalf("x-operations: got %d, want 1", len(ops))
	}
	wantOp := map[string]any{
		"method":      "GET",
		"path":        "/orgs/{orgId}/things",
		"operationId": "listThings",
		"parameters": []any{
			map[string]any{"name": "orgId", "in": "path", "required": true,
				"schema": map[string]any{"type": "string", "pattern": "^[a-z]+$"}},
			map[string]any{"name": "per_page", "in": "query",
				"schema": map[string]any{"type": "integer", "minimum": float64(1), "maximum": float64(100), "default": float64(50)}},
		},
		"responses": map[string]any{
			"200": map[string]any{
				"schema":  map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/Thing"}},
				"headers": map[string]any{"Link": map[string]any{"schema": map[string]any{"type": "string"}}},
			},
			"404": map[string]any{"schema": map[string]any{"$ref": "#/$defs/Err"}},
		},
	}
	if diff := cmp.Diff(wantOp, ops[0]); diff != "" {
		t.Errorf("operation (-want +got):\n%s", diff)
	}
	if strings.Contains(string(b), "prose") || strings.Contains(string(b), "a thing") {
		t.Errorf("output still carries descriptions: %s", b)
	}
}

func TestExtractErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		ops  []Operation
		want string
	}{
		{"no schemas", `{"paths": {}}`, nil, "no components.schemas"},
		{"missing path", miniDoc, []Operation{{Method: "get", Path: "/nope"}}, "path /nope not in document"},
		{"missing method", miniDoc, []Operation{{Method: "post", Path: "/orgs/{orgId}/things"}}, "POST /orgs/{orgId}/things not in document"},
		{"dangling root", miniDoc, nil, `schema "Ghost" is referenced but not defined`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal([]byte(tc.doc), &doc); err != nil {
				t.Fatal(err)
			}
			_, err := Extract(doc, tc.ops, []string{"Ghost"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Extract error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "openapi.json")
	// The real operation list is not in miniDoc, so run must fail cleanly.
	if err := os.WriteFile(in, []byte(miniDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{in}, &stdout, &stderr); code != 1 {
		t.Errorf("run exit = %d, want 1 (stderr %q)", code, stderr.String())
	}
	if code := run(nil, &stdout, &stderr); code != 2 {
		t.Errorf("run without args exit = %d, want 2", code)
	}
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
