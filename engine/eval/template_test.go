package eval

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func templateEnv(t *testing.T) map[string]any {
	return map[string]any{
		"config": map[string]any{"org_id": "acme", "api_url": "https://api.example"},
		"parent": decode(t, `{"id": "a/b", "n": 42, "f": 2.5, "whole": 3.0, "huge": 1e21,
			"big": 12345678901234567890123, "ok": true, "none": null, "tags": ["x", "<y>"]}`),
		"page": json.Number("7"),
	}
}

func TestTemplateRender(t *testing.T) {
	tests := []struct {
		name, src string
		raw       any    // Render
		str       string // RenderString
		literal   bool
	}{
		{"plain text", "/orgs/acme", "/orgs/acme", "/orgs/acme", true},
		{"empty", "", "", "", true},
		{"escape", "cost: $${ not expr }", "cost: ${ not expr }", "cost: ${ not expr }", true},
		{"lone dollars", "$5 and $$ and $", "$5 and $$ and $", "$5 and $$ and $", true},
		{"path", "/orgs/${ config.org_id }/apps", "/orgs/acme/apps", "/orgs/acme/apps", false},
		{"adjacent parts", "${config.org_id}${page}", "acme7", "acme7", false},
		{"raw string", "${ config.org_id }", "acme", "acme", false},
		{"raw number", "${ parent.n }", 42, "42", false},
		{"raw json.Number normalized", "${page}", 7, "7", false},
		{"raw bool", "${ parent.ok }", true, "true", false},
		{"raw nil", "${ parent.none }", nil, "", false},
		{"raw map", "${ {\"a\": 1} }", map[string]any{"a": 1}, `{"a":1}`, false},
		{"raw slice", "${ parent.tags }", []any{"x", "<y>"}, `["x","<y>"]`, false},
		{"space outside is not raw", " ${ parent.n }", " 42", " 42", false},
		{"float", "v=${ parent.f }", "v=2.5", "v=2.5", false},
		{"whole float", "v=${ parent.whole }", "v=3", "v=3", false},
		{"no exponent", "v=${ parent.huge }", "v=1000000000000000000000", "v=1000000000000000000000", false},
		{"big number exact", "v=${ parent.big }", "v=12345678901234567890123", "v=12345678901234567890123", false},
		{"nil in string", "v=${ parent.none }.", "v=.", "v=.", false},
		{"braces in expr", `${ {"k": "}"}.k }!`, "}!", "}!", false},
		{"string with braces", "${ config.org_id + \"}{\" }", "acme}{", "acme}{", false},
		{"function", "${ clean_title(\"k8s-x\") }", "K8S X", "K8S X", false},
		{"escape and part", "$${x} ${page}", "${x} 7", "${x} 7", false},
	}
	env := templateEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm, err := CompileTemplate(tc.src, testScope())
			if err != nil {
				t.Fatalf("CompileTemplate(%q): %v", tc.src, err)
			}
			if tm.IsLiteral() != tc.literal {
				t.Errorf("IsLiteral() = %v, want %v", tm.IsLiteral(), tc.literal)
			}
			if tm.Source() != tc.src {
				t.Errorf("Source() = %q", tm.Source())
			}
			got, err := tm.Render(env)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if diff := cmp.Diff(tc.raw, got); diff != "" {
				t.Errorf("Render(%q) (-want +got):\n%s", tc.src, diff)
			}
			s, err := tm.RenderString(env)
			if err != nil || s != tc.str {
				t.Errorf("RenderString(%q) = %q, %v; want %q", tc.src, s, err, tc.str)
			}
		})
	}
}

func TestTemplateRenderEscaped(t *testing.T) {
	tm, err := CompileTemplate("/apps/${ parent.id }/envs?x=${page}", testScope())
	if err != nil {
		t.Fatal(err)
	}
	got, err := tm.RenderEscaped(templateEnv(t), url.PathEscape)
	if want := "/apps/a%2Fb/envs?x=7"; err != nil || got != want {
		t.Errorf("RenderEscaped = %q, %v; want %q", got, err, want)
	}
}

// RenderEach and RenderPathEach give each expression part's text, before
// any escaping, with its index among the parts (not the literal text's),
// and render as Render and RenderPath do.
func TestTemplateRenderEach(t *testing.T) {
	type part struct {
		i    int
		text string
	}
	tm, err := CompileTemplate("/apps/$${x}/${ parent.id }/n/${ parent.n }", testScope())
	if err != nil {
		t.Fatal(err)
	}
	var got []part
	each := func(i int, s string) { got = append(got, part{i, s}) }
	path, err := tm.RenderPathEach(templateEnv(t), each)
	if want := []part{{0, "a/b"}, {1, "42"}}; err != nil || path != "/apps/${x}/a%2Fb/n/42" || !cmp.Equal(got, want, cmp.AllowUnexported(part{})) {
		t.Errorf("RenderPathEach = %q, %v, parts %v; want parts %v", path, err, got, want)
	}
	raw, err := CompileTemplate("${ parent.n }", testScope())
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	v, err := raw.RenderEach(templateEnv(t), each)
	if want := []part{{0, "42"}}; err != nil || isString(v) || FormatScalar(v) != "42" || !cmp.Equal(got, want, cmp.AllowUnexported(part{})) {
		t.Errorf("RenderEach = %#v, %v, parts %v; want the raw value and parts %v", v, err, got, want)
	}
}

// RenderParts gives each part's value with its text, and an error its
// each returns ends the render (raw or not) and is the render's.
func TestTemplateRenderParts(t *testing.T) {
	stop := errors.New("stop")
	for _, src := range []string{"x:${ parent.missing }:${ parent.n }", "${ parent.missing }"} {
		tm, err := CompileTemplate(src, testScope())
		if err != nil {
			t.Fatal(err)
		}
		var seen []int
		v, err := tm.RenderParts(templateEnv(t), func(i int, v any, s string) error {
			seen = append(seen, i)
			if v == nil && s == "" {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || v != nil || len(seen) != 1 {
			t.Errorf("%s: RenderParts = %#v, %v, parts %v; want the each's error at the first part", src, v, err, seen)
		}
		if _, err := tm.RenderPathParts(templateEnv(t), func(int, any, string) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("%s: RenderPathParts = %v, want the each's error", src, err)
		}
	}
}

func isString(v any) bool { _, ok := v.(string); return ok }

// TestTemplateRenderPath: a path part that is null or empty fails instead
// of sending the request to another resource ("/apps//envs").
func TestTemplateRenderPath(t *testing.T) {
	tests := []struct {
		src, want, err string
	}{
		{"/apps/${ parent.id }/envs", "/apps/a%2Fb/envs", ""},
		{"/n/${ parent.n }", "/n/42", ""},
		{"/apps/${ parent.none }/envs", "", "${ parent.none } is null: it would leave an empty path segment"},
		{"/apps/${ parent.id }/x/${ \"\" }/y", "", `${ "" } is empty: it would leave an empty path segment`},
		{"/plain", "/plain", ""},
	}
	for _, tc := range tests {
		tm, err := CompileTemplate(tc.src, testScope())
		if err != nil {
			t.Fatal(err)
		}
		got, err := tm.RenderPath(templateEnv(t))
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("RenderPath(%q) error = %v, want %q", tc.src, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("RenderPath(%q) = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		name, src string
		off       int
		msg       string
	}{
		{"unknown member", "/orgs/${ config.org_idd }/x", 16, "unknown field org_idd of config; did you mean org_id?"},
		{"unknown name", "a ${ parnet.id }", 5, "unknown name parnet; did you mean parent?"},
		{"second part", "${ page }/${ nope }", 13, "unknown name nope"},
		{"after multibyte", "é/${ 1 + \"a\" }", 8, "invalid operation: + (mismatched types int and string)"},
		{"no space", "${1+\"a\"}", 3, "invalid operation: + (mismatched types int and string)"},
		{"unterminated", "/x/${ page", 3, "unterminated ${: missing }"},
		{"unterminated string", "${ \"} }", 0, "unterminated ${: missing }"},
		{"empty", "a${  }b", 1, "empty ${ }"},
		{"syntax", "${ page + }", 10, "unexpected token EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileTemplate(tc.src, testScope())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("CompileTemplate(%q) error = %v, want *Error", tc.src, err)
			}
			if e.Offset != tc.off || e.Msg != tc.msg {
				t.Errorf("CompileTemplate(%q) = offset %d (at %q) %q; want %d %q", tc.src, e.Offset, tc.src[e.Offset:], e.Msg, tc.off, tc.msg)
			}
		})
	}
}

func TestTemplateRenderError(t *testing.T) {
	tm, err := CompileTemplate("/x/${ clean_title(parent.n) }", testScope())
	if err != nil {
		t.Fatal(err)
	}
	_, err = tm.RenderString(templateEnv(t))
	if err == nil || !strings.Contains(err.Error(), "${ clean_title(parent.n) }: expr: clean_title cannot be applied to: number (42)") {
		t.Errorf("RenderString error = %v", err)
	}
}

func TestHasTemplate(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"plain", false},
		{"$5 {x}", false},
		{"a ${x}", true},
		{"$${x}", true}, // the escape must go through CompileTemplate too
	}
	for _, tc := range tests {
		if got := HasTemplate(tc.s); got != tc.want {
			t.Errorf("HasTemplate(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestTemplateStaticFacts(t *testing.T) {
	sc := Scope{"parent": nil, "config": &Scope{"x": nil}}
	tests := []struct {
		src    string
		prefix string
		empty  string // text at the empty part's offset; "" for none
	}{
		{"https://api.example.com/v1", "https://api.example.com/v1", ""},
		{"https://${ config.x }/v1", "https://", ""},
		{"$${x}/a", "${x}/a", ""},
		{"${ config.x }/a", "", ""},
		{`/apps/${ "" }/envs`, "/apps/", `"" }`},
		{`/apps/${ nil }`, "/apps/", "nil }"},
		{`/apps/${ parent.id ?? "" }`, "/apps/", ""},
		{`/apps/${ trim("  ") }/${ "a" }`, "/apps/", `trim`},
		{`/day/${ now().Format("") }`, "/day/", ""}, // the clock: not constant
		{`/apps/${ let p = ""; p }`, "/apps/", "let"},
	}
	for _, tc := range tests {
		tm, err := CompileTemplate(tc.src, sc)
		if err != nil {
			t.Fatalf("CompileTemplate(%q): %v", tc.src, err)
		}
		if got := tm.LiteralPrefix(); got != tc.prefix {
			t.Errorf("LiteralPrefix(%q) = %q, want %q", tc.src, got, tc.prefix)
		}
		off, ok := tm.EmptyPart()
		if want := strings.Index(tc.src, tc.empty); ok != (tc.empty != "") || ok && off != want {
			t.Errorf("EmptyPart(%q) = %d, %v; want at %q", tc.src, off, ok, tc.empty)
		}
	}
}
