package spec

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// schemaTyper is implemented by leaf types to describe themselves.
type schemaTyper interface {
	jsonSchema() map[string]any
}

// scalarSchema is what a Str-based field accepts: any non-null scalar,
// read as its text (`selector: true` is the jq program "true").
func scalarSchema() map[string]any {
	return map[string]any{"type": []any{"string", "number", "boolean"}}
}

func (*Str) jsonSchema() map[string]any   { return scalarSchema() }
func (*Int) jsonSchema() map[string]any   { return map[string]any{"type": "integer"} }
func (*Float) jsonSchema() map[string]any { return map[string]any{"type": "number"} }
func (*Bool) jsonSchema() map[string]any  { return map[string]any{"type": "boolean"} }
func (*Duration) jsonSchema() map[string]any {
	// What time.ParseDuration takes, without a sign: negatives are rejected.
	return map[string]any{"type": "string", "pattern": `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`}
}
func (*Strs) jsonSchema() map[string]any {
	return map[string]any{"oneOf": []any{
		scalarSchema(),
		map[string]any{"type": "array", "items": scalarSchema()},
	}}
}
func (*Value) jsonSchema() map[string]any { return map[string]any{} }

// Budgets' schema is built in schemaOf: it refers to RateLimitHeaders.
func (*JQ) jsonSchema() map[string]any {
	return withDoc(scalarSchema(), "jq program")
}
func (*Tmpl) jsonSchema() map[string]any {
	return withDoc(scalarSchema(), "string with ${ expr } templates")
}
func (*Expr) jsonSchema() map[string]any {
	return withDoc(scalarSchema(), "expr expression")
}
func (*Map[T]) elemType() reflect.Type { return reflect.TypeFor[T]() }

type mapTyper interface{ elemType() reflect.Type }

// Schema returns the JSON Schema (draft 2020-12) of the spec format,
// generated from the same types the decoder uses.
func Schema() []byte {
	defs := map[string]any{}
	root := schemaOf(reflect.TypeFor[File](), defs)
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = "https://ferry.dev/schema/spec-v1.json"
	root["title"] = "ferry spec, version 1"
	// The validator reads version 1 only; say so to editors too.
	fileDef := defs["File"].(map[string]any)
	fileDef["properties"].(map[string]any)["version"] = withDoc(map[string]any{"const": 1}, fieldDoc(reflect.TypeFor[File](), "version"))
	root["$defs"] = defs
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		// Only maps, slices and strings go in: marshalling cannot fail.
		panic(err)
	}
	return append(out, '\n')
}

func schemaOf(t reflect.Type, defs map[string]any) map[string]any {
	pt := reflect.PointerTo(t)
	if pt.Implements(reflect.TypeFor[mapTyper]()) {
		elem := reflect.New(t).Interface().(mapTyper).elemType()
		return map[string]any{"type": "object", "additionalProperties": schemaOf(elem, defs)}
	}
	if t == reflect.TypeFor[Budgets]() {
		one := schemaOf(reflect.TypeFor[RateLimitHeaders](), defs)
		return map[string]any{"oneOf": []any{one, map[string]any{"type": "array", "items": one, "minItems": 1}}}
	}
	if pt.Implements(reflect.TypeFor[schemaTyper]()) {
		return reflect.New(t).Interface().(schemaTyper).jsonSchema()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), defs)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), defs)}
	case reflect.Struct:
		name := t.Name()
		if _, ok := defs[name]; !ok {
			defs[name] = map[string]any{} // placeholder against recursion
			props := map[string]any{}
			var required []string
			var either []any // one of them is required (a field required unless another is given)
			for _, f := range fieldsOf(t) {
				s := schemaOf(t.Field(f.index).Type, defs)
				if f.doc != "" {
					s = withDoc(s, f.doc)
				}
				if f.enum != nil {
					s = withEnum(s, f.enum)
				}
				if f.names != "" {
					s = withNames(s, f.names)
				}
				props[f.key] = s
				if f.required && f.unless == "" {
					required = append(required, f.key)
				}
				if f.required && f.unless != "" {
					either = append(either, map[string]any{"required": []any{f.key}})
					for _, alt := range strings.Split(f.unless, ",") {
						either = append(either, map[string]any{"required": []any{alt}})
					}
				}
			}
			def := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
			if len(required) > 0 {
				def["required"] = required
			}
			if len(either) > 0 {
				def["anyOf"] = either
			}
			defs[name] = def
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	}
	return map[string]any{}
}

func fieldDoc(t reflect.Type, key string) string {
	for _, f := range fieldsOf(t) {
		if f.key == key {
			return f.doc
		}
	}
	return ""
}

func withDoc(s map[string]any, doc string) map[string]any {
	c := clone(s)
	if d, ok := c["description"].(string); ok && !strings.Contains(doc, d) {
		doc = doc + " (" + d + ")"
	}
	c["description"] = doc
	return c
}

// withNames constrains the keys of a mapping field the way the validator
// does: identifiers, and for streams not the names of variables.
func withNames(s map[string]any, kind string) map[string]any {
	c := clone(s)
	names := map[string]any{"pattern": identRE.String()}
	if kind == "stream" {
		vals := make([]any, len(reserved))
		for i, r := range reserved {
			vals[i] = r
		}
		names["not"] = map[string]any{"enum": vals}
	}
	c["propertyNames"] = names
	return c
}

func withEnum(s map[string]any, enum []string) map[string]any {
	c := clone(s)
	vals := make([]any, 0, len(enum))
	for _, e := range enum {
		vals = append(vals, e)
		if f, err := strconv.ParseFloat(e, 64); err == nil && strconv.FormatFloat(f, 'f', -1, 64) == e {
			// A value YAML reads as a number (min_version: 1.3) is one
			// to the schema too; the decoder takes its text.
			vals = append(vals, f)
		}
	}
	if ap, ok := c["additionalProperties"].(map[string]any); ok {
		ap = clone(ap)
		ap["enum"] = vals
		c["additionalProperties"] = ap
		return c
	}
	c["enum"] = vals
	return c
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
