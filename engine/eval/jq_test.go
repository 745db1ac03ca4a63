package eval

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decode decodes JSON the way ferry reads API responses.
func decode(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCompileJQErrors(t *testing.T) {
	tests := []struct {
		name, src string
		at        string // source text at the offset: its last occurrence in src
		msg       string // substring of the message
	}{
		{"unexpected token", ".foo | ]", "]", `unexpected token "]"`},
		{"unexpected token in object", "{a: }", "}", `unexpected token "}"`},
		{"unexpected EOF", ".foo |", "", "unexpected EOF"},
		{"after multibyte", `.["é" ]]`, "]", `unexpected token "]"`},
		{"unterminated string", `.a | "abc`, `"abc`, "unterminated string"},
		{"invalid escape", `.a + "x\q"`, `\q"`, "invalid escape"},
		{"undefined variable", "  $nope", "$nope", "variable not defined: $nope"},
		{"undefined variable suggestion", ". as $nope | $nope, $nopf", "$nopf", "did you mean $nope?"},
		{"undefined variable in interpolation", `"x \($paren)" | $paren`, "$paren)", "did you mean $parent?"},
		{"variable in comment ignored", "# $nope\n$nope", "$nope", "variable not defined"},
		{"unknown function", ".x | nofn(1)", "nofn(1)", "function not defined: nofn/1"},
		{"unknown function suggestion", ".a | clean_titl", "clean_titl", "did you mean clean_title?"},
		{"function name as key skipped", "{clean_titl: 1} | clean_titl", "clean_titl", "clean_titl/0"},
		{"wrong arity", ".a | clean_title(1)", "clean_title(1)", "function not defined: clean_title/1"},
		{"field is not a call", ".nofn | nofn", "nofn", "nofn/0"},
		{"input disabled", ". | input", "input", "not allowed"},
		{"undefined label", "label $f | break $g", "$g", "label not defined"},
		{"no modules", `import "a" as a; .`, `import "a" as a; .`, "cannot load module"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileJQ(tc.src, []string{"parent", "config"})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("CompileJQ(%q) error = %v, want *Error", tc.src, err)
			}
			if e.Lang != "jq" {
				t.Errorf("Lang = %q, want jq", e.Lang)
			}
			// The token is the last occurrence of at; "" means the end.
			want := len(tc.src)
			if tc.at != "" {
				want = strings.LastIndex(tc.src, tc.at)
			}
			if e.Offset != want {
				t.Errorf("CompileJQ(%q) offset = %d (at %q), want %d", tc.src, e.Offset, tc.src[e.Offset:], want)
			}
			if !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("CompileJQ(%q) msg %q, want it to contain %q", tc.src, e.Msg, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "jq: ") {
				t.Errorf("Error() = %q, want jq: prefix", err.Error())
			}
		})
	}
}

func TestCompileJQBadVariableName(t *testing.T) {
	for _, v := range []string{"", "$parent", "a-b", "1x"} {
		if _, err := CompileJQ(".", []string{v}); err == nil {
			t.Errorf("CompileJQ with variable %q: no error", v)
		}
	}
}

func TestJQRun(t *testing.T) {
	rec := decode(t, `{"id": "api", "n": 41, "big": 12345678901234567890123, "f": 1.5,
		"name": "k8s-cluster", "path": "a/b c", "tags": ["x", "y"]}`)
	parent := decode(t, `{"id": "app1", "count": 3}`)
	tests := []struct {
		name, src string
		want      []any
	}{
		{"json.Number arithmetic", ".n + 1", []any{42}},
		{"json.Number comparison", ".n > 40 and .n < 42", []any{true}},
		{"json.Number equality with int", ".n == 41", []any{true}},
		{"big number kept exact", ".big", []any{json.Number("12345678901234567890123")}},
		{"big number arithmetic", ".big + 1", []any{mustBig("12345678901234567890124")}},
		{"float", ".f * 2", []any{3.0}},
		{"variables", `$parent.id + "/" + .id`, []any{"app1/api"}},
		{"variable number", "$parent.count * 2", []any{6}},
		{"config variable", "$config.org", []any{"acme"}},
		{"clean_title", ".name | clean_title", []any{"K8S Cluster"}},
		{"title_case", ".name | title_case", []any{"K8S-Cluster"}},
		{"path_escape", ".path | path_escape", []any{"a%2Fb%20c"}},
		{"query_escape", ".path | query_escape", []any{"a%2Fb+c"}},
		{"path_escape number", ".n | path_escape", []any{"41"}},
		{"several outputs", ".tags[]", []any{"x", "y"}},
		{"no output", "empty", nil},
		{"ENV is empty", "$ENV | length", []any{0}},
		{"env is empty", "env | length", []any{0}},
		{"halt stops quietly", "1, halt, 2", []any{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := CompileJQ(tc.src, []string{"parent", "config"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := q.Run(t.Context(), rec, parent, map[string]any{"org": "acme"})
			if err != nil {
				t.Fatalf("Run(%q): %v", tc.src, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("Run(%q) (-want +got):\n%s", tc.src, diff)
			}
			if q.Source() != tc.src {
				t.Errorf("Source() = %q, want %q", q.Source(), tc.src)
			}
		})
	}
}

func mustBig(s string) *big.Int {
	n, _ := new(big.Int).SetString(s, 10)
	return n
}

func TestJQRunErrors(t *testing.T) {
	tests := []struct{ name, src, input, msg string }{
		{"type error", ".a + 1", `{"a": "x"}`, "cannot add"},
		{"first error stops", `1, error("boom"), 2`, `null`, "boom"},
		{"clean_title on number", ".a | clean_title", `{"a": 1}`, "clean_title cannot be applied to: number (1)"},
		{"title_case on null", ".a | title_case", `{}`, "title_case cannot be applied to: null"},
		{"path_escape on object", ".a | path_escape", `{"a": {}}`, "path_escape cannot be applied to: object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := CompileJQ(tc.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := q.Run(t.Context(), decode(t, tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Run(%q) = %v, %v; want error containing %q", tc.src, out, err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "jq: ") {
				t.Errorf("error %q lacks jq: prefix", err)
			}
		})
	}
}

func TestJQFirst(t *testing.T) {
	tests := []struct {
		name, src string
		want      any
		ok        bool
		err       bool
	}{
		{"first of many", ".[]", "a", true, false},
		{"later error not reached", `.[0], error("x")`, "a", true, false},
		{"none", "empty", nil, false, false},
		{"error", `error("x")`, nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := CompileJQ(tc.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			v, ok, err := q.First(t.Context(), []any{"a", "b"})
			if (err != nil) != tc.err || ok != tc.ok || v != tc.want {
				t.Errorf("First(%q) = %v, %v, %v; want %v, %v, err %v", tc.src, v, ok, err, tc.want, tc.ok, tc.err)
			}
		})
	}
}

func TestJQRunCancelled(t *testing.T) {
	q, err := CompileJQ("range(1e9) | select(. < 0)", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := q.Run(ctx, nil); err == nil {
		t.Fatal("Run with a cancelled context: no error")
	}
}

// TestJQUsedVariables: only the variables a program uses are compiled in,
// and Run still takes the values of all of them, in the order named.
func TestJQUsedVariables(t *testing.T) {
	vars := []string{"config", "parent", "parents", "apps", "envs"}
	vals := []any{map[string]any{"org": "o"}, "P", "PS", "A", "E"}
	tests := []struct {
		src  string
		want any
	}{
		{`"\($envs)-\($apps)"`, "E-A"},
		{`[$parent, $config.org]`, []any{"P", "o"}},
		{`. as $x | $x`, "in"},
		{`"$apps # not a use"`, "$apps # not a use"},
		{`$envs # $apps`, "E"},
		{`[$config, $parent, $parents, $apps, $envs] | length`, 5},
	}
	for _, tc := range tests {
		q, err := CompileJQ(tc.src, vars)
		if err != nil {
			t.Fatalf("CompileJQ(%q): %v", tc.src, err)
		}
		got, ok, err := q.First(t.Context(), "in", vals...)
		if err != nil || !ok {
			t.Fatalf("First(%q) = %v, %v, %v", tc.src, got, ok, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("First(%q) (-want +got):\n%s", tc.src, diff)
		}
	}
	// A variable that is not among vars is still an error.
	if _, err := CompileJQ(`$nope`, vars); err == nil || !strings.Contains(err.Error(), "variable not defined: $nope") {
		t.Errorf("CompileJQ($nope) error = %v", err)
	}
}
