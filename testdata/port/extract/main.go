package main

import (
	"encoding/json"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// strip removes prose keys recursively.
func strip(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if (k == "description" || k == "example") && isString(e) {
				continue
			}
			out[k] = strip(e)
		}
		return out
	case []any:
		for i := range x {
			x[i] = strip(x[i])
		}
		return x
	}
	return v
}

func isString(v any) bool { _, ok := v.(string); return ok }

func main() {
	raw, _ := os.ReadFile(os.Args[1])
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		panic(err)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	out := map[string]any{}
	need := []string{"def-1", "def-5", "def-6", "def-7"}
	seen := map[string]bool{}
	for len(need) > 0 {
		n := need[0]
		need = need[1:]
		if seen[n] {
			continue
		}
		seen[n] = true
		s := strip(schemas[n])
		out[n] = s
		b, _ := json.Marshal(s)
		var refs []string
		findRefs(s, &refs)
		need = append(need, refs...)
		_ = b
	}
	b, _ := json.MarshalIndent(map[string]any{"source": "port-labs/port-docs@4893974a static/apispec.yaml (Port API OpenAPI 3.1): components.schemas referenced by the blueprint request schema; prose removed", "components": map[string]any{"schemas": out}}, "", " ")
	fmt.Println(string(b))
}

func findRefs(v any, refs *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if r, ok := x["$ref"].(string); ok {
			var n string
			fmt.Sscanf(r, "#/components/schemas/%s", &n)
			*refs = append(*refs, n)
		}
		for _, e := range x {
			findRefs(e, refs)
		}
	case []any:
		for _, e := range x {
			findRefs(e, refs)
		}
	}
}
