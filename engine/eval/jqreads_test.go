package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

// TestInputMembersOfGeneratedPrograms: programs drawn from the fast
// subset's grammar (paths, literals, variables with suffixes, objects,
// + // == != and or, if/elif/else, pipes, parentheses, the subset's
// functions and error), run on records cut to the members InputMembers
// names, give what they give on the whole record: the same outputs, or
// the same error, through the fast path and through gojq alone.
func TestInputMembersOfGeneratedPrograms(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d", "e"}
	var gen func(depth int) string
	gen = func(depth int) string {
		path := func() string {
			p := "." + names[rng.IntN(len(names))]
			for rng.IntN(3) == 0 {
				p += "." + names[rng.IntN(len(names))]
			}
			return p
		}
		if depth <= 0 {
			switch rng.IntN(8) {
			case 0:
				return `"s"`
			case 1:
				return "null"
			case 2:
				return "$x" + strings.TrimPrefix(path(), ".a")
			case 3:
				return "."
			}
			return path()
		}
		sub := func() string { return gen(depth - 1 - rng.IntN(2)) }
		switch rng.IntN(13) {
		case 0:
			return sub() + " | " + sub()
		case 1:
			return sub() + " // " + sub()
		case 2:
			return "(" + sub() + " + " + sub() + ")"
		case 3:
			return "(" + sub() + " == " + sub() + ")"
		case 4:
			return "(" + sub() + " != " + sub() + ")"
		case 5:
			return "(" + sub() + " and " + sub() + ")"
		case 6:
			return "(" + sub() + " or " + sub() + ")"
		case 7:
			return "if " + sub() + " then " + sub() + " elif " + sub() + " then " + sub() + " else " + sub() + " end"
		case 8:
			k := names[rng.IntN(len(names))]
			return "{" + k + ", z: " + sub() + `, "y w": ` + sub() + "}"
		case 9:
			return "(" + sub() + ")" + path()
		case 10:
			return sub() + ` | ltrimstr("v") | clean_title`
		case 11:
			return "(" + sub() + ` // error("none"))`
		}
		return path()
	}
	var records []map[string]any
	for _, doc := range []string{
		`{"a": "va", "b": null, "c": {"a": "x", "b": {"c": "y"}}, "d": false, "e": "e", "f": {"big": [1, 2]}}`,
		`{"a": {"a": {"a": null}}, "b": "vb", "c": "vc", "d": true, "g": "g"}`,
		`{"a": 1, "b": [1], "c": "", "e": {"d": "z"}}`,
		`{"d": "vd", "e": null, "h": {"a": "no"}}`,
	} {
		var rec map[string]any
		d := json.NewDecoder(strings.NewReader(doc))
		d.UseNumber()
		if err := d.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		records = append(records, rec)
	}
	x := map[string]any{"b": map[string]any{"c": "xc"}, "c": "xc2"}
	known := 0
	for range 4000 {
		src := gen(3)
		q, err := CompileJQ(src, []string{"x"})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		keys, ok := q.InputMembers()
		if !ok {
			continue
		}
		known++
		slow := &JQ{src: q.src, code: q.code, args: q.args, all: q.all}
		for _, rec := range records {
			cut := map[string]any{}
			for _, k := range keys {
				if v, ok := rec[k]; ok {
					cut[k] = v
				}
			}
			want, werr := q.Run(context.Background(), rec, x)
			for how, p := range map[string]*JQ{"fast": q, "gojq": slow} {
				got, gerr := p.Run(context.Background(), cut, x)
				if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
					t.Errorf("%s (%s) on %v cut to %v: %v (%v), on the whole record %v (%v)", src, how, rec, keys, got, gerr, want, werr)
				}
			}
		}
	}
	if known < 500 {
		t.Errorf("only %d of the programs were known: the generator misses the subset", known)
	}
}
