// Command extract turns the Humanitec OpenAPI 3.0 document into the trimmed
// JSON Schema facts the simulator's tests validate against
// (testdata/openapi-schemas.json). It keeps only validation facts (types,
// required, patterns, enums, formats, bounds), drops prose and examples,
// rewrites component references to "#/$defs/Name" and turns OpenAPI's
// `nullable: true` into JSON Schema type unions.
//
// Regenerate from the package directory with:
//
//	go run ./internal/extract -o testdata/openapi-schemas.json PATH/TO/openapi.json
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("extract", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output file (default stdout)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: extract [-o out.json] openapi.json")
		return 2
	}
	src, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var doc map[string]any
	if err := json.Unmarshal(src, &doc); err != nil {
		fmt.Fprintf(stderr, "parse %s: %v\n", fs.Arg(0), err)
		return 1
	}
	res, err := Extract(doc, Operations(), RootSchemas())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	b = append(b, '\n')
	if *out == "" {
		_, _ = stdout.Write(b)
		return 0
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// Operation names one method and path template of the OpenAPI document.
type Operation struct {
	Method string
	Path   string
}

// Operations lists the endpoints the simulator serves.
func Operations() []Operation {
	paths := []string{
		"/orgs/{orgId}/apps",
		"/orgs/{orgId}/apps/{appId}",
		"/orgs/{orgId}/apps/{appId}/envs",
		"/orgs/{orgId}/apps/{appId}/envs/{envId}",
		"/orgs/{orgId}/apps/{appId}/envs/{envId}/resources",
		"/orgs/{orgId}/apps/{appId}/envs/{envId}/resources/graphs/{graphId}",
		"/orgs/{orgId}/secretstores",
		"/orgs/{orgId}/apps/{appId}/values",
		"/orgs/{orgId}/apps/{appId}/envs/{envId}/values",
		"/orgs/{orgId}/apps/{appId}/value-set-versions",
		"/orgs/{orgId}/apps/{appId}/sets",
		"/orgs/{orgId}/apps/{appId}/sets/{setId}",
		"/orgs/{orgId}/pipelines",
		"/orgs/{orgId}/apps/{appId}/pipelines",
		"/orgs/{orgId}/apps/{appId}/deltas",
		"/orgs/{orgId}/apps/{appId}/deltas/{deltaId}",
		"/orgs/{orgId}/users",
		"/orgs/{orgId}/groups/{groupId}/users",
		"/orgs/{orgId}/users/{userId}/groups",
	}
	ops := make([]Operation, len(paths))
	for i, p := range paths {
		ops[i] = Operation{Method: "get", Path: p}
	}
	return ops
}

// RootSchemas lists the component schemas always extracted, whether or not an
// operation references them.
func RootSchemas() []string {
	return []string{
		"ApplicationResponse", "EnvironmentResponse", "EnvironmentBaseResponse",
		"DeploymentResponse", "ActiveResourceResponse", "DependencyGraphResponse",
		"NodeBodyResponse", "SecretStoreResponse", "ValueResponse",
		"ValueSetVersionResponse", "SetResponse", "ModuleResponse", "Pipeline",
		"DeltaResponse", "UserRoleResponse", "UserProfileResponse", "Group",
		"HumanitecErrorResponse",
	}
}

const schemaRefPrefix = "#/components/schemas/"

// extractor holds the OpenAPI components and the schema names still to copy.
type extractor struct {
	components map[string]any
	schemas    map[string]any
	pending    []string
	seen       map[string]bool
}

// Extract builds the facts document: "$defs" with every root schema and
// everything it references, and "x-operations" with each operation's
// parameters and response schemas.
func Extract(doc map[string]any, ops []Operation, roots []string) (map[string]any, error) {
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	if schemas == nil {
		return nil, errors.New("document has no components.schemas")
	}
	paths, _ := doc["paths"].(map[string]any)
	if paths == nil {
		return nil, errors.New("document has no paths")
	}
	x := &extractor{components: comps, schemas: schemas, seen: map[string]bool{}}
	for _, r := range roots {
		x.want(r)
	}

	var xops []any
	for _, op := range ops {
		o, err := x.operation(paths, op)
		if err != nil {
			return nil, err
		}
		xops = append(xops, o)
	}

	defs := map[string]any{}
	for len(x.pending) > 0 {
		name := x.pending[0]
		x.pending = x.pending[1:]
		raw, ok := x.schemas[name]
		if !ok {
			return nil, fmt.Errorf("schema %q is referenced but not defined", name)
		}
		c, err := x.convert(raw)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		defs[name] = c
	}

	info, _ := doc["info"].(map[string]any)
	return map[string]any{
		"$schema":  "https://json-schema.org/draft/2020-12/schema",
		"$comment": "Generated by internal/extract from the Humanitec OpenAPI document: validation facts only (no descriptions or examples); nullable converted to type unions. Do not edit by hand.",
		"x-source": map[string]any{
			"title":   info["title"],
			"version": info["version"],
			"paths":   len(paths),
		},
		"$defs":        defs,
		"x-operations": xops,
	}, nil
}

func (x *extractor) want(name string) {
	if x.seen[name] {
		return
	}
	x.seen[name] = true
	x.pending = append(x.pending, name)
}

func (x *extractor) operation(paths map[string]any, op Operation) (map[string]any, error) {
	item, _ := paths[op.Path].(map[string]any)
	if item == nil {
		return nil, fmt.Errorf("path %s not in document", op.Path)
	}
	o, _ := item[op.Method].(map[string]any)
	if o == nil {
		return nil, fmt.Errorf("%s %s not in document", strings.ToUpper(op.Method), op.Path)
	}
	out := map[string]any{
		"method": strings.ToUpper(op.Method),
		"path":   op.Path,
	}
	if id, ok := o["operationId"].(string); ok {
		out["operationId"] = id
	}

	var params []any
	for _, list := range []any{item["parameters"], o["parameters"]} {
		ps, _ := list.([]any)
		for _, p := range ps {
			rp, err := x.resolve(p, "parameters")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", op.Path, err)
			}
			cp := map[string]any{}
			for _, k := range []string{"name", "in", "required", "style", "explode"} {
				if v, ok := rp[k]; ok {
					cp[k] = v
				}
			}
			if s, ok := rp["schema"]; ok {
				c, err := x.convert(s)
				if err != nil {
					return nil, fmt.Errorf("%s parameter %v: %w", op.Path, rp["name"], err)
				}
				cp["schema"] = c
			}
			params = append(params, cp)
		}
	}
	out["parameters"] = params

	resps := map[string]any{}
	rs, _ := o["responses"].(map[string]any)
	for code, r := range rs {
		rr, err := x.resolve(r, "responses")
		if err != nil {
			return nil, fmt.Errorf("%s response %s: %w", op.Path, code, err)
		}
		cr := map[string]any{}
		if content, ok := rr["content"].(map[string]any); ok {
			if mt, ok := content["application/json"].(map[string]any); ok {
				c, err := x.convert(mt["schema"])
				if err != nil {
					return nil, fmt.Errorf("%s response %s: %w", op.Path, code, err)
				}
				cr["schema"] = c
			}
		}
		if hs, ok := rr["headers"].(map[string]any); ok {
			ch := map[string]any{}
			for name, h := range hs {
				rh, err := x.resolve(h, "headers")
				if err != nil {
					return nil, fmt.Errorf("%s header %s: %w", op.Path, name, err)
				}
				c, err := x.convert(rh["schema"])
				if err != nil {
					return nil, fmt.Errorf("%s header %s: %w", op.Path, name, err)
				}
				ch[name] = map[string]any{"schema": c}
			}
			cr["headers"] = ch
		}
		resps[code] = cr
	}
	out["responses"] = resps
	return out, nil
}

// resolve follows a "#/components/<kind>/<name>" reference (parameters,
// responses, headers); other values are returned as they are.
func (x *extractor) resolve(v any, kind string) (map[string]any, error) {
	m, _ := v.(map[string]any)
	if m == nil {
		return nil, fmt.Errorf("expected an object, got %T", v)
	}
	ref, ok := m["$ref"].(string)
	if !ok {
		return m, nil
	}
	prefix := "#/components/" + kind + "/"
	if !strings.HasPrefix(ref, prefix) {
		return nil, fmt.Errorf("unsupported reference %q", ref)
	}
	group, _ := x.components[kind].(map[string]any)
	target, _ := group[strings.TrimPrefix(ref, prefix)].(map[string]any)
	if target == nil {
		return nil, fmt.Errorf("dangling reference %q", ref)
	}
	return target, nil
}

// copied keywords carry validation facts and are kept verbatim.
var copied = []string{
	"type", "format", "pattern", "enum", "required", "default",
	"minimum", "maximum", "multipleOf", "minLength", "maxLength",
	"minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
}

// convert rewrites one OpenAPI 3.0 schema object into JSON Schema 2020-12.
// Annotation keywords (description, example, title, x-*, readOnly, ...) are
// dropped; unknown keywords are dropped too, so the output holds facts only.
func (x *extractor) convert(v any) (any, error) {
	switch s := v.(type) {
	case nil:
		return map[string]any{}, nil
	case bool:
		return s, nil
	case map[string]any:
		if ref, ok := s["$ref"].(string); ok {
			// OpenAPI 3.0 ignores the siblings of $ref, so they are not copied.
			if !strings.HasPrefix(ref, schemaRefPrefix) {
				return nil, fmt.Errorf("unsupported schema reference %q", ref)
			}
			name := strings.TrimPrefix(ref, schemaRefPrefix)
			x.want(name)
			return map[string]any{"$ref": "#/$defs/" + name}, nil
		}
		out := map[string]any{}
		for _, k := range copied {
			if val, ok := s[k]; ok {
				out[k] = val
			}
		}
		// OpenAPI 3.0 exclusive bounds are booleans next to minimum/maximum.
		for _, b := range [][2]string{{"exclusiveMinimum", "minimum"}, {"exclusiveMaximum", "maximum"}} {
			if ex, _ := s[b[0]].(bool); ex {
				if bound, ok := s[b[1]]; ok {
					out[b[0]] = bound
					delete(out, b[1])
				}
			}
		}
		if props, ok := s["properties"].(map[string]any); ok {
			cp := map[string]any{}
			for name, p := range props {
				c, err := x.convert(p)
				if err != nil {
					return nil, fmt.Errorf("property %s: %w", name, err)
				}
				cp[name] = c
			}
			out["properties"] = cp
		}
		for _, k := range []string{"items", "additionalProperties", "not"} {
			if sub, ok := s[k]; ok {
				c, err := x.convert(sub)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", k, err)
				}
				out[k] = c
			}
		}
		for _, k := range []string{"allOf", "oneOf", "anyOf"} {
			list, ok := s[k].([]any)
			if !ok {
				continue
			}
			cl := make([]any, len(list))
			for i, sub := range list {
				c, err := x.convert(sub)
				if err != nil {
					return nil, fmt.Errorf("%s[%d]: %w", k, i, err)
				}
				cl[i] = c
			}
			out[k] = cl
		}
		if nullable, _ := s["nullable"].(bool); nullable {
			return makeNullable(out), nil
		}
		return out, nil
	default:
		return nil, fmt.Errorf("schema is a %T, not an object", v)
	}
}

// makeNullable widens a converted schema so that JSON null is also valid.
func makeNullable(s map[string]any) map[string]any {
	t, hasType := s["type"]
	if !hasType {
		return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
	}
	switch tt := t.(type) {
	case string:
		if tt != "null" {
			s["type"] = []any{tt, "null"}
		}
	case []any:
		if !slices.Contains(tt, any("null")) {
			s["type"] = append(tt, "null")
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, nil) {
		s["enum"] = append(enum, nil)
	}
	return s
}
