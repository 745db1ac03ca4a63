package eval

import (
	"strings"
	"testing"
	"time"
)

func TestWithMembers(t *testing.T) {
	ancestors := map[string]bool{"apps": true, "envs": true}
	opt := WithMembers("parents", Members{
		Has:   func(n string) bool { return ancestors[n] },
		Names: func() []string { return []string{"apps", "envs"} },
	})
	sc := Scope{"parents": nil, "parent": nil}
	if _, err := CompileExpr("parents.apps.id + parents?.envs?.x.y", sc, AnyKind, opt); err != nil {
		t.Errorf("known ancestors: %v", err)
	}
	_, err := CompileExpr("parents.app.id", sc, AnyKind, opt)
	if err == nil || err.Error() != "expr: unknown field app of parents; did you mean apps?" {
		t.Errorf("unknown ancestor: error %v", err)
	}
	// Without the option a nil scope is unchecked.
	if _, err := CompileExpr("parents.app.id", sc, AnyKind); err != nil {
		t.Errorf("unchecked parents: %v", err)
	}
}

func TestWithTypes(t *testing.T) {
	sc := Scope{"config": &Scope{"page_size": nil, "since": nil, "ids": nil, "name": nil}}
	types := WithTypes(map[string]any{"config.page_size": 0, "config.since": time.Time{}, "config.ids": []any{}})
	for _, src := range []string{`config.page_size + "x"`, `config.since + 1`, `config.ids && true`} {
		if _, err := CompileExpr(src, sc, AnyKind, types); err == nil || !strings.Contains(err.Error(), "mismatched types") {
			t.Errorf("CompileExpr(%q) with types: error %v, want mismatched types", src, err)
		}
		if _, err := CompileExpr(src, sc, AnyKind); err != nil {
			t.Errorf("CompileExpr(%q) without types: %v", src, err)
		}
	}
	e, err := CompileExpr(`config.page_size * 2 + len(config.ids) + config.since.Year() + len(config.name)`, sc, IntKind, types)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]any{"config": map[string]any{"page_size": 50, "since": time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), "ids": []any{"a", "b"}, "name": "xy"}}
	if n, err := e.EvalInt(env); err != nil || n != 100+2+2024+2 {
		t.Errorf("EvalInt = %d, %v; want 2128", n, err)
	}
}

func TestCacheSharesOnlyWhatMeansTheSame(t *testing.T) {
	c := NewCache()
	withApps := Scope{"config": &Scope{"org": nil}, "parent": nil, "parents": &Scope{"apps": nil}}
	withEnvs := Scope{"config": &Scope{"org": nil}, "parent": nil, "parents": &Scope{"envs": nil}}
	noParent := Scope{"config": &Scope{"org": nil}}
	parentMap := Scope{"config": &Scope{"org": nil}, "parent": &Scope{"id": nil}}
	compile := func(src string, sc Scope) (*Expr, error) {
		return CompileExpr(src, sc, AnyKind, WithCache(c))
	}
	a, err := compile("config.org + parent.id", withApps)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := compile("config.org + parent.id", withEnvs); err != nil || b != a {
		t.Errorf("same meaning: got %p, %v; want the cached %p", b, err, a)
	}
	if _, err := compile("config.org + parent.id", noParent); err == nil {
		t.Error("a scope without parent took the cached program")
	}
	if _, err := compile("parent + 1", withApps); err != nil {
		t.Fatal(err)
	}
	if _, err := compile("parent + 1", parentMap); err == nil || !strings.Contains(err.Error(), "mismatched types map and int") {
		t.Errorf("parent as a map: error %v, want a type error", err)
	}
	if _, err := compile("parents.apps.id", withApps); err != nil {
		t.Fatal(err)
	}
	if _, err := compile("parents.apps.id", withEnvs); err == nil || !strings.Contains(err.Error(), "unknown field apps of parents") {
		t.Errorf("another ancestor: error %v", err)
	}
	// $env reads anything: never shared.
	x, _ := compile("$env.parent", withApps)
	if y, _ := compile("$env.parent", withEnvs); x == y {
		t.Error("a program reading $env was shared")
	}
	// Templates share their parts.
	t1, _ := CompileTemplate("/a/${ config.org }", withApps, WithCache(c))
	t2, _ := CompileTemplate("/b/${ config.org }", withEnvs, WithCache(c))
	if t1.parts[1].expr != t2.parts[1].expr {
		t.Error("identical template parts were not shared")
	}
}

func TestCacheJQ(t *testing.T) {
	c := NewCache()
	a, err := CompileJQVars(".[] | .up = $parent.id", varList{"config", "parent"}, WithCache(c))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := CompileJQVars(".[] | .up = $parent.id", varList{"config", "parent", "parents", "apps"}, WithCache(c))
	if a.code != b.code {
		t.Error("the same program with the same variable was compiled twice")
	}
	d, _ := CompileJQVars(".[] | .up = $parent.id", varList{"parent"}, WithCache(c))
	if d.code != a.code || d.args[0] != 0 || a.args[0] != 1 {
		t.Errorf("shared code, own variable positions: args %v and %v", a.args, d.args)
	}
	got, _, err := d.First(t.Context(), []any{map[string]any{}}, map[string]any{"id": "p"})
	if err != nil || got.(map[string]any)["up"] != "p" {
		t.Errorf("First = %v, %v", got, err)
	}
}
