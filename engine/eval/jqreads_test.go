package eval

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestInputMembers(t *testing.T) {
	for _, c := range []struct {
		src  string
		keys string // comma-separated; "-" for not known
	}{
		{".id", "id"},
		{".metadata.name // .id | clean_title", "id,metadata"},
		{`$parent.id + "/" + (.id // error("deployment set without id"))`, "id"},
		{`($parent.name // "Unknown App") + " - " + (.name // .id)`, "id,name"},
		{`if .is_secret then "" else .value end`, "is_secret,value"},
		{`if (.secret_store_id // "") != "" then .secret_store_id else null end`, "secret_store_id"},
		{`if .a then "x" elif .b then .c else .d end`, "a,b,c,d"},
		{`.source != "app" and .kind == "v" or .other`, "kind,other,source"},
		{".trigger_types // []", "trigger_types"},
		{`{id, name: .n, "a b": $x.a, "c d"}`, "c d,id,n"},
		{`{a: .x} | .a`, "x"},
		{`.res_id | ltrimstr("modules.") | clean_title`, "res_id"},
		{`"Value Set Version " + .id`, "id"},
		{`$lookups_x`, ""},
		{`"const"`, ""},
		{`null`, ""},
		// The input seen whole, or outside the subset: not known.
		{".", "-"},
		{". // .a", "-"},
		{"(.)", "-"},
		{`if .a then "x" end`, "-"}, // no else: the input
		{"clean_title", "-"},
		{`ltrimstr("x")`, "-"},
		{`.a | . as $x | $x`, "-"},
		{"keys", "-"},
		{".a[]", "-"},
		{".[\"a\"]", "-"},
		{".a?", "-"},
		{"tojson", "-"},
		{"{(.k): 1}", "-"},
		{"{$x}", "-"},
		{"def f: .; f", "-"},
		{"[.a]", "-"},
		{`"\(.a)"`, "-"},
		{".a + 1", "-"},
	} {
		q, err := CompileJQ(c.src, []string{"parent", "x", "lookups_x"})
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		keys, ok := q.InputMembers()
		got := strings.Join(keys, ",")
		if !ok {
			got = "-"
		}
		if got != c.keys {
			t.Errorf("InputMembers(%s) = %q, want %q", c.src, got, c.keys)
		}
	}
}

// TestInputMembersAreAllItReads: a known program gives on its input,
// cut to the members InputMembers names, what it gives on the whole
// input, fast path and gojq alike.
func TestInputMembersAreAllItReads(t *testing.T) {
	var in map[string]any
	if err := json.Unmarshal([]byte(`{"id": "i", "n": "N", "metadata": {"name": "m"}, "is_secret": true, "value": "v",
		"a": false, "b": null, "c": "C", "d": "D", "source": "env", "kind": "v", "other": 1, "res_id": "modules.api",
		"secret_store_id": "s", "trigger_types": ["t"], "x": {"y": 1}, "c d": 3, "big": {"deep": [1, 2]}}`), &in); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{".metadata.name // .id | clean_title", `if .is_secret then "" else .value end`,
		`if .a then "x" elif .b then .c else .d end`, `.source != "app" and .kind == "v"`, `{id, name: .n, "c d"}`,
		`{a: .x} | .a`, `.res_id | ltrimstr("modules.") | clean_title`, `if (.secret_store_id // "") != "" then .secret_store_id else null end`} {
		q, err := CompileJQ(src, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys, ok := q.InputMembers()
		if !ok {
			t.Fatalf("%s: not known", src)
		}
		cut := map[string]any{}
		for _, k := range keys {
			if v, ok := in[k]; ok {
				cut[k] = v
			}
		}
		want, err := q.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.Run(context.Background(), cut)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s on the input cut to %v: %v (%v), on the whole input %v", src, keys, got, err, want)
		}
		slow := &JQ{src: q.src, code: q.code, args: q.args, all: q.all}
		if got, err := slow.Run(context.Background(), cut); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s through gojq on the cut input: %v (%v), want %v", src, got, err, want)
		}
	}
}
