package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// schemaFile is the committed schema editors point at.
const schemaFile = "../../specs/ferry.schema.json"

func TestSchemaFile(t *testing.T) {
	got := Schema()
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSchemaFile -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("Schema() differs from %s; run with -update (-want +got):\n%s", schemaFile, diff)
	}
}

func TestSchemaStructure(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatalf("Schema() is not JSON: %v", err)
	}
	defs := root["$defs"].(map[string]any)
	prop := func(def, key string) map[string]any {
		t.Helper()
		d, ok := defs[def].(map[string]any)
		if !ok {
			t.Fatalf("no $defs/%s", def)
		}
		p, ok := d["properties"].(map[string]any)[key].(map[string]any)
		if !ok {
			t.Fatalf("$defs/%s has no property %s", def, key)
		}
		return p
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"draft", root["$schema"], "https://json-schema.org/draft/2020-12/schema"},
		{"root ref", root["$ref"], "#/$defs/File"},
		{"file required", defs["File"].(map[string]any)["required"], []any{"version", "name", "streams"}},
		{"file closed", defs["File"].(map[string]any)["additionalProperties"], false},
		{"version const", prop("File", "version")["const"], 1.0},
		{"streams map of Stream", prop("File", "streams")["additionalProperties"], map[string]any{"$ref": "#/$defs/Stream"}},
		{"stream names", prop("File", "streams")["propertyNames"].(map[string]any)["pattern"], identRE.String()},
		{"port pointer", prop("File", "port")["$ref"], "#/$defs/Port"},
		{"entities list", prop("Port", "entities")["items"], map[string]any{"$ref": "#/$defs/Entity"}},
		{"stream needs request, partitions or async", defs["Stream"].(map[string]any)["anyOf"], []any{map[string]any{"required": []any{"request"}}, map[string]any{"required": []any{"partitions"}}, map[string]any{"required": []any{"async"}}}},
		{"method enum", prop("Request", "method")["enum"], []any{"GET", "POST", "PUT", "PATCH"}},
		{"column enum", prop("Table", "columns")["additionalProperties"].(map[string]any)["enum"],
			[]any{"STRING", "BOOLEAN", "INT", "LONG", "DOUBLE", "DECIMAL", "JSON", "UTC_DATETIME", "NAIVE_DATE"}},
		{"int", prop("HTTP", "concurrency")["type"], "integer"},
		{"float", prop("RateLimit", "per_second")["type"], "number"},
		{"bool", prop("ConfigVar", "secret")["type"], "boolean"},
		{"jq scalar", prop("Stream", "records")["type"], []any{"string", "number", "boolean"}},
		{"value any", prop("Request", "body")["type"], nil},
		{"strs", len(prop("ConfigVar", "env")["oneOf"].([]any)), 2},
		{"retry statuses", prop("Retry", "on")["items"], map[string]any{"type": "integer"}},
		{"doc", prop("Stream", "for_each")["description"] != "", true},
		{"tmpl doc suffix", strings.HasSuffix(prop("Request", "path")["description"].(string), "(string with ${ expr } templates)"), true},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	// Every struct reachable from File has a definition.
	for _, name := range []string{"File", "ConfigVar", "HTTP", "Auth", "Retry", "RateLimit", "Stream", "Request", "Paginate", "Table", "Port", "Entity"} {
		if _, ok := defs[name]; !ok {
			t.Errorf("no $defs/%s", name)
		}
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("ferry.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("ferry.schema.json")
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

// yamlToJSON converts a spec to the JSON value an editor validates: YAML
// decoding with merge keys applied, then a JSON round trip.
func yamlToJSON(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	j, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestSchemaAcceptsValidSpecs(t *testing.T) {
	sch := compileSchema(t)
	for _, c := range readCorpus(t, "testdata/valid/*.txtar") {
		t.Run(c.path, func(t *testing.T) {
			if err := sch.Validate(yamlToJSON(t, c.src)); err != nil {
				t.Errorf("schema rejects a valid spec: %v", err)
			}
		})
	}
}

// TestSchemaAcceptsShippedSpecs checks the specs in specs/ that the parser
// accepts: the schema must not flag what ferry runs.
func TestSchemaAcceptsShippedSpecs(t *testing.T) {
	sch := compileSchema(t)
	paths, _ := filepath.Glob("../../specs/*.yaml")
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if _, err := Load(path); err != nil {
				t.Skipf("not a valid spec (yet): %v", err)
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(yamlToJSON(t, src)); err != nil {
				t.Errorf("schema rejects a spec ferry accepts: %v", err)
			}
		})
	}
}

func TestSchemaRejects(t *testing.T) {
	sch := compileSchema(t)
	const base = "version: 1\nname: demo\nstreams:\n  apps:\n    request:\n      path: /apps\n"
	tests := []struct {
		name string
		src  string
	}{
		{"unknown top key", base + "stream: {}\n"},
		{"unknown stream key", base + "    recrods: .[]\n"},
		{"unknown nested key", base + "http:\n  retry: {on_status: [429]}\n"},
		{"missing name", "version: 1\nstreams:\n  apps:\n    request: {path: /a}\n"},
		{"missing request", "version: 1\nname: d\nstreams:\n  apps:\n    records: .[]\n"},
		{"version 2", strings.Replace(base, "version: 1", "version: 2", 1)},
		{"version string", strings.Replace(base, "version: 1", `version: "1"`, 1)},
		{"string for int", base + "http: {concurrency: eight}\n"},
		{"list for mapping", base + "http: [a]\n"},
		{"mapping for string", base + "description: {a: b}\n"},
		{"bad enum", base + "      method: FETCH\n"},
		{"bad column type", base + "tables:\n  apps:\n    from: apps\n    columns: {tags: JSONB}\n"},
		{"bad stream name", base + "  my-apps:\n    request: {path: /x}\n"},
		{"reserved stream name", base + "  parent:\n    request: {path: /x}\n"},
		{"bad duration", base + "http: {timeout: 2 minutes}\n"},
		{"entity without identifier", base + "port:\n  entities:\n    - {blueprint: b, from: apps}\n"},
		{"auth without type", base + "http:\n  auth: {token: x}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := sch.Validate(yamlToJSON(t, []byte(tc.src))); err == nil {
				t.Errorf("schema accepts:\n%s", tc.src)
			}
			// The parser rejects it too: the schema is no stricter than ferry.
			if _, err := Parse(specName, []byte(tc.src), nil); err == nil {
				t.Errorf("Parse accepts what the schema rejects:\n%s", tc.src)
			}
		})
	}
}
