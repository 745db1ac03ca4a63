package eval

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testScope() Scope {
	return Scope{
		"config":  &Scope{"org_id": nil, "api_url": nil},
		"parent":  nil,
		"parents": &Scope{"apps": nil, "envs": nil},
		"page":    nil,
	}
}

func TestCompileExprErrors(t *testing.T) {
	tests := []struct {
		name, src string
		kind      Kind
		at        string // source text at the offset: its first occurrence in src; "" is the end
		msg       string // the whole message
	}{
		{"unknown name", "nope + 1", AnyKind, "nope", "unknown name nope"},
		{"unknown name suggestion", "parnet.id", AnyKind, "parnet", "unknown name parnet; did you mean parent?"},
		{"unknown name after multibyte", `"é" + confg.org_id`, AnyKind, "confg", "unknown name confg; did you mean config?"},
		{"unknown function suggestion", "clean_titel(parent.name)", AnyKind, "clean_titel", "unknown name clean_titel; did you mean clean_title?"},
		{"unknown member", "config.org_idd", AnyKind, "org_idd", "unknown field org_idd of config; did you mean org_id?"},
		{"unknown member no suggestion", "config.token", AnyKind, "token", "unknown field token of config"},
		{"unknown member by index", `config["org_idd"]`, AnyKind, `"org_idd"`, "unknown field org_idd of config; did you mean org_id?"},
		{"unknown member optional", `parents?.app?.id`, AnyKind, "app", "unknown field app of parents; did you mean apps?"},
		{"unknown member via $env", `$env.config.orgid`, AnyKind, "orgid", "unknown field orgid of config; did you mean org_id?"},
		{"unknown name via $env", `$env.confg`, AnyKind, "confg", "unknown name confg; did you mean config?"},
		{"first error in source order", `config.a == 1 && config.b == 2`, AnyKind, "a ==", "unknown field a of config"},
		{"member through let", "let c = config; c.org_idd", AnyKind, "org_idd", "unknown field org_idd of config; did you mean org_id?"},
		{"member through let of let", "let c = config; let d = c; d.org_idd", AnyKind, "org_idd", "unknown field org_idd of config; did you mean org_id?"},
		{"type error", `1 + "a"`, AnyKind, `+ "a"`, "invalid operation: + (mismatched types int and string)"},
		{"map in arithmetic", `config + 1`, AnyKind, `+ 1`, "invalid operation: + (mismatched types map and int)"},
		{"function argument type", `clean_title(1)`, AnyKind, `1)`, "cannot use int as argument (type string) to call clean_title"},
		{"bool kind rejects string", `"x"`, BoolKind, `"x"`, "expected bool, but got string"},
		{"bool kind rejects function result", `clean_title(parent.name)`, BoolKind, "clean_title", "expected bool, but got string"},
		{"int kind rejects float", `1.5`, IntKind, `1.5`, "expected int, but got float64"},
		{"int kind rejects division", `len(parent) / 2`, IntKind, `len`, "expected int, but got float64"},
		{"string kind rejects int", `1 + 2`, StringKind, `1 + 2`, "expected string, but got int"},
		{"syntax error", "parent.id == )", AnyKind, ")", `unexpected token Bracket(")")`},
		{"unexpected end", "parent.id ==", AnyKind, "", "unexpected token EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileExpr(tc.src, testScope(), tc.kind)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("CompileExpr(%q) error = %v, want *Error", tc.src, err)
			}
			want := strings.Index(tc.src, tc.at)
			if tc.at == "" {
				want = len(tc.src)
			}
			if e.Offset != want {
				t.Errorf("CompileExpr(%q) offset = %d (at %q), want %d", tc.src, e.Offset, tc.src[e.Offset:], want)
			}
			if e.Msg != tc.msg {
				t.Errorf("CompileExpr(%q) msg = %q, want %q", tc.src, e.Msg, tc.msg)
			}
			if e.Lang != "expr" || err.Error() != "expr: "+tc.msg {
				t.Errorf("Error() = %q, Lang %q", err.Error(), e.Lang)
			}
		})
	}
}

func TestCompileExprAccepts(t *testing.T) {
	tests := []struct {
		src  string
		kind Kind
	}{
		{"parent.last_deploy?.dependency_graph_id != nil", BoolKind},
		{"parent.anything.at.all", AnyKind},            // nil scope: members unchecked
		{"parents.apps.id + parents.envs.id", AnyKind}, // nil member scope
		{`config.org_id + "/" + config["api_url"]`, AnyKind},
		{"len(parents.apps) > 0", BoolKind},
		{"filter(parent.items, .ok) | len() == 0", BoolKind},
		{"page * 100", IntKind},
		{"let c = config; c.org_id", AnyKind},
		{`path_escape(parent.id) + "/" + query_escape("a b")`, StringKind},
		{"path_escape(page)", StringKind},
		{"now().Year() > 2000", BoolKind},
		{"parent.name", StringKind}, // unknown type: checked at run time
	}
	for _, tc := range tests {
		if _, err := CompileExpr(tc.src, testScope(), tc.kind); err != nil {
			t.Errorf("CompileExpr(%q, %v): %v", tc.src, tc.kind, err)
		}
	}
}

func TestExprEval(t *testing.T) {
	env := map[string]any{
		"config":  map[string]any{"org_id": "acme", "api_url": "https://x"},
		"parent":  decode(t, `{"id": "a/b", "count": 3, "ratio": 0.5, "big": 12345678901234567890123, "items": [{"ok": true}], "last_deploy": null, "name": "k8s-x"}`),
		"parents": map[string]any{"apps": map[string]any{"id": "app1"}},
		"page":    json.Number("4"),
	}
	tests := []struct {
		src  string
		kind Kind
		want any
	}{
		{"parent.count + 1", AnyKind, 4},
		{"parent.count > 2", BoolKind, true},
		{"parent.ratio * 2", AnyKind, 1.0},
		{"page * 25", IntKind, 100},
		{"int(parent.count / 3)", IntKind, 1},
		{"parent.ratio * 4", IntKind, 2}, // unknown type at compile time; 2.0 is integral
		{"parent.last_deploy?.dependency_graph_id != nil", BoolKind, false},
		{"parent.missing == nil", BoolKind, true},
		{`config.org_id + "/" + parents.apps.id`, StringKind, "acme/app1"},
		{"clean_title(parent.name)", StringKind, "K8S X"},
		{"title_case(parent.name)", StringKind, "K8S-X"},
		{"path_escape(parent.id)", StringKind, "a%2Fb"},
		{"path_escape(parent.count)", StringKind, "3"},
		{`query_escape("a b&c")`, StringKind, "a+b%26c"},
		{"string(parent.big)", AnyKind, "12345678901234567890123"},
		{"len(parent.items)", IntKind, 1},
	}
	for _, tc := range tests {
		e, err := CompileExpr(tc.src, testScope(), tc.kind)
		if err != nil {
			t.Errorf("CompileExpr(%q): %v", tc.src, err)
			continue
		}
		got, err := e.Eval(env)
		if err != nil {
			t.Errorf("Eval(%q): %v", tc.src, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Eval(%q) (-want +got):\n%s", tc.src, diff)
		}
	}
	if _, ok := env["page"].(json.Number); !ok {
		t.Errorf("Eval modified its env: page = %T", env["page"])
	}
}

func TestExprEvalErrors(t *testing.T) {
	env := map[string]any{"parent": decode(t, `{"name": "x", "n": 1.5, "big": 12345678901234567890123}`)}
	tests := []struct {
		src  string
		kind Kind
		msg  string
	}{
		{"parent.name", BoolKind, `expected bool, got string ("x")`},
		{"parent.n", IntKind, "expected int, got number (1.5)"},
		{"parent.n", StringKind, "expected string, got number (1.5)"},
		{"parent.big + 1", AnyKind, "invalid operation"},
		{"clean_title(parent.n)", AnyKind, "clean_title cannot be applied to: number (1.5)"},
	}
	for _, tc := range tests {
		e, err := CompileExpr(tc.src, Scope{"parent": nil}, tc.kind)
		if err != nil {
			t.Fatalf("CompileExpr(%q): %v", tc.src, err)
		}
		_, err = e.Eval(env)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "expr: ") {
			t.Errorf("Eval(%q) error = %v, want expr: …%s…", tc.src, err, tc.msg)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("Eval(%q) error %q has a snippet", tc.src, err)
		}
	}
}

func TestExprTypedEval(t *testing.T) {
	env := map[string]any{"parent": map[string]any{"ok": true, "n": 7, "s": "x"}}
	b, err := mustExpr(t, "parent.ok", BoolKind).EvalBool(env)
	if err != nil || !b {
		t.Errorf("EvalBool = %v, %v; want true", b, err)
	}
	n, err := mustExpr(t, "parent.n * 2", IntKind).EvalInt(env)
	if err != nil || n != 14 {
		t.Errorf("EvalInt = %v, %v; want 14", n, err)
	}
	s, err := mustExpr(t, "parent.s", StringKind).EvalString(env)
	if err != nil || s != "x" {
		t.Errorf("EvalString = %q, %v; want x", s, err)
	}
	if _, err := mustExpr(t, "parent.n", AnyKind).EvalBool(env); err == nil {
		t.Error("EvalBool on a number: no error")
	}
}

func mustExpr(t *testing.T, src string, kind Kind) *Expr {
	t.Helper()
	e, err := CompileExpr(src, Scope{"parent": nil}, kind)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestExprClock(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	e, err := CompileExpr(`(now() - duration("24h")).Format("2006-01-02")`, nil, StringKind, WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.EvalString(nil)
	if err != nil || got != "2026-03-03" {
		t.Errorf("EvalString = %q, %v; want 2026-03-03", got, err)
	}
	// now(tz) converts the injected time (05:06 at UTC+9 is 20:06 UTC).
	east := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("east", 9*3600))
	e, err = CompileExpr(`now(timezone("UTC")).Hour()`, nil, IntKind, WithClock(func() time.Time { return east }))
	if err != nil {
		t.Fatal(err)
	}
	if h, err := e.EvalInt(nil); err != nil || h != 20 {
		t.Errorf("EvalInt = %d, %v; want 20", h, err)
	}
}

func TestNormalize(t *testing.T) {
	in := decode(t, `{"a": 1, "b": [2.5, {"c": 12345678901234567890123}], "d": "x", "e": 1e3, "f": -7}`)
	want := map[string]any{
		"a": 1, "b": []any{2.5, map[string]any{"c": json.Number("12345678901234567890123")}},
		"d": "x", "e": 1000.0, "f": -7,
	}
	if diff := cmp.Diff(want, Normalize(in)); diff != "" {
		t.Errorf("Normalize (-want +got):\n%s", diff)
	}
	if _, ok := in.(map[string]any)["a"].(json.Number); !ok {
		t.Error("Normalize modified its input")
	}
	unchanged := map[string]any{"a": "x", "b": []any{true}}
	if got := Normalize(unchanged); got.(map[string]any)["b"] == nil {
		t.Errorf("Normalize(%v) = %v", unchanged, got)
	}
}
