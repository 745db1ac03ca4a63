package spec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/eval"

	"github.com/ferry-etl/ferry/engine/internal/suggest"
)

// mustParse parses src as spec.yaml and fails the test on any error.
func mustParse(t *testing.T, src string) *File {
	t.Helper()
	f, err := Parse(specName, []byte(src), nil)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return f
}

const minimal = `version: 1
name: demo
streams:
  apps:
    request:
      url: https://api.example.com/apps
`

// scalar is the comparable part of the scalar field types.
type scalar struct {
	V   any
	P   Pos
	Set bool
}

func TestDecodeScalars(t *testing.T) {
	tests := []struct {
		name string
		src  string // appended to minimal
		get  func(f *File) scalar
		want scalar
	}{
		{"Str", "description: hello world\n",
			func(f *File) scalar { return scalar{f.Description.V, f.Description.P, f.Description.Set} },
			scalar{"hello world", Pos{7, 14}, true}},
		{"Str from number", "description: 42\n",
			func(f *File) scalar { return scalar{f.Description.V, f.Description.P, f.Description.Set} },
			scalar{"42", Pos{7, 14}, true}},
		{"Str null is unset", "description:\n",
			func(f *File) scalar { return scalar{f.Description.V, f.Description.P, f.Description.Set} },
			scalar{"", Pos{}, false}},
		{"Int", "http: {concurrency: 8}\n",
			func(f *File) scalar {
				return scalar{f.HTTP.Concurrency.V, f.HTTP.Concurrency.P, f.HTTP.Concurrency.Set}
			},
			scalar{8, Pos{7, 21}, true}},
		{"Int hex", "http: {concurrency: 0x10}\n",
			func(f *File) scalar {
				return scalar{f.HTTP.Concurrency.V, f.HTTP.Concurrency.P, f.HTTP.Concurrency.Set}
			},
			scalar{16, Pos{7, 21}, true}},
		{"Int unset", "http: {}\n",
			func(f *File) scalar {
				return scalar{f.HTTP.Concurrency.V, f.HTTP.Concurrency.P, f.HTTP.Concurrency.Set}
			},
			scalar{0, Pos{}, false}},
		{"Float", "http:\n  rate_limit:\n    per_second: 2.5\n",
			func(f *File) scalar {
				return scalar{f.HTTP.RateLimit.PerSecond.V, f.HTTP.RateLimit.PerSecond.P, f.HTTP.RateLimit.PerSecond.Set}
			},
			scalar{2.5, Pos{9, 17}, true}},
		{"Float from int", "http:\n  rate_limit: {per_second: 3}\n",
			func(f *File) scalar {
				return scalar{f.HTTP.RateLimit.PerSecond.V, f.HTTP.RateLimit.PerSecond.P, f.HTTP.RateLimit.PerSecond.Set}
			},
			scalar{3.0, Pos{8, 28}, true}},
		{"Bool", "config:\n  token: {secret: true}\n",
			func(f *File) scalar { c := f.ConfigVar("token"); return scalar{c.Secret.V, c.Secret.P, c.Secret.Set} },
			scalar{true, Pos{8, 19}, true}},
		{"Bool capitalised", "config:\n  token: {secret: False}\n",
			func(f *File) scalar { c := f.ConfigVar("token"); return scalar{c.Secret.V, c.Secret.P, c.Secret.Set} },
			scalar{false, Pos{8, 19}, true}},
		{"Duration", "http: {timeout: 1m30s}\n",
			func(f *File) scalar { return scalar{f.HTTP.Timeout.V, f.HTTP.Timeout.P, f.HTTP.Timeout.Set} },
			scalar{90 * time.Second, Pos{7, 17}, true}},
		{"Duration zero", "http: {timeout: 0}\n",
			func(f *File) scalar { return scalar{f.HTTP.Timeout.V, f.HTTP.Timeout.P, f.HTTP.Timeout.Set} },
			scalar{time.Duration(0), Pos{7, 17}, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := mustParse(t, minimal+tc.src)
			if diff := cmp.Diff(tc.want, tc.get(f)); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeCompound(t *testing.T) {
	f := mustParse(t, minimal+`config:
  one: {env: ONE}
  many:
    env: [A, B]
  bare:
http:
  headers:
    b-first: "1"
    a-second: ${ config.one }
`)
	t.Run("Strs", func(t *testing.T) {
		one, many := f.ConfigVar("one"), f.ConfigVar("many")
		var got []string
		for _, s := range append(one.Env.V, many.Env.V...) {
			got = append(got, s.V+"@"+s.P.String())
		}
		if diff := cmp.Diff([]string{"ONE@8:14", "A@10:11", "B@10:14"}, got); diff != "" {
			t.Errorf("env (-want +got):\n%s", diff)
		}
		if many.Env.P != (Pos{10, 10}) {
			t.Errorf("Strs.P = %v, want 10:10", many.Env.P)
		}
	})
	t.Run("empty config var", func(t *testing.T) {
		bare := f.ConfigVar("bare")
		if bare == nil || bare.Pos != (Pos{11, 3}) || bare.Name != "bare" {
			t.Errorf("bare = %+v, want a var named bare at 11:3", bare)
		}
	})
	t.Run("Map order and positions", func(t *testing.T) {
		h := f.HTTP.Headers
		if diff := cmp.Diff([]string{"b-first", "a-second"}, h.Keys()); diff != "" {
			t.Errorf("Keys (-want +got):\n%s", diff)
		}
		if h.P != (Pos{14, 5}) || h.Items[1].P != (Pos{15, 5}) {
			t.Errorf("map at %v, second key at %v; want 14:5 and 15:5", h.P, h.Items[1].P)
		}
		if v := h.Get("a-second"); v == nil || v.Template() == nil || v.P != (Pos{15, 15}) {
			t.Errorf("Get(a-second) = %+v, want a compiled template at 15:15", v)
		}
		if h.Get("nope") != nil {
			t.Errorf("Get(nope) != nil")
		}
	})
}

func TestDecodeValue(t *testing.T) {
	f := mustParse(t, minimal+`      method: POST
      query:
        ids: [1, 2]
        q: ${ config.q }
        lit: costs $${ nothing }
        since: 2024-01-01
      body:
        a: [1, x, true, null, 2.5]
        b: {c: "${ config.q }-suffix"}
config:
  q: {default: hello}
`)
	r := f.Stream("apps").Request
	if !r.Body.Set || r.Body.P != (Pos{14, 9}) {
		t.Errorf("body Set=%v at %v, want set at 14:9", r.Body.Set, r.Body.P)
	}
	env := map[string]any{"config": map[string]any{"q": "hi"}}
	render := func(v Value) any {
		t.Helper()
		got, err := RenderValue(v.Tree(), env)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := map[string]any{"a": []any{1, "x", true, nil, 2.5}, "b": map[string]any{"c": "hi-suffix"}}
	if diff := cmp.Diff(want, render(r.Body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"default": "hello"}, map[string]any{"default": f.ConfigVar("q").Default.Tree()}); diff != "" {
		t.Errorf("config default tree (-want +got):\n%s", diff)
	}
	for key, want := range map[string]any{
		"ids":   []any{1, 2},
		"q":     "hi",
		"lit":   "costs ${ nothing }",
		"since": "2024-01-01", // a YAML timestamp stays the text written
	} {
		if diff := cmp.Diff(want, render(*r.Query.Get(key))); diff != "" {
			t.Errorf("query %s (-want +got):\n%s", key, diff)
		}
	}
}

func TestRenderValue(t *testing.T) {
	tmpl := func(s string) *eval.Template {
		t.Helper()
		x, err := eval.CompileTemplate(s, eval.Scope{"parent": nil})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	env := map[string]any{"parent": map[string]any{"id": "a/b", "n": 3, "tags": []any{"x"}}}
	tests := []struct {
		name    string
		tree    any
		want    any
		wantErr string
	}{
		{"nil", nil, nil, ""},
		{"scalar", 2.5, 2.5, ""},
		{"raw template keeps type", tmpl("${ parent.n }"), 3, ""},
		{"raw template list", tmpl("${ parent.tags }"), []any{"x"}, ""},
		{"string template", tmpl("id=${ parent.id }"), "id=a/b", ""},
		{"nested", map[string]any{"l": []any{tmpl("${ parent.id }"), "lit"}}, map[string]any{"l": []any{"a/b", "lit"}}, ""},
		{"error names the path", map[string]any{"a": []any{1, tmpl("${ parent.n.x.y }")}}, nil, "a: [1]: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderValue(tc.tree, env)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("RenderValue error = %v, want prefix %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("RenderValue (-want +got):\n%s", diff)
			}
		})
	}
	// The input tree is not changed by rendering.
	in := map[string]any{"k": tmpl("${ parent.id }")}
	if _, err := RenderValue(in, env); err != nil {
		t.Fatal(err)
	}
	if _, ok := in["k"].(*eval.Template); !ok {
		t.Errorf("RenderValue modified its input: %#v", in)
	}
}

func TestNestedPositions(t *testing.T) {
	f := mustParse(t, `version: 1
name: demo
http:
  auth:
    type: bearer
    token: x
streams:
  apps:
    request:
      path: /apps
      query:
        limit: 10
    paginate:
      type: page
      param: page
    http: {base_url: "https://api.example.com"}
tables:
  apps:
    from: apps
    primary_key: [org, id]
port:
  entities:
    - blueprint: app
      from: apps
      identifier: .id
      properties:
        name: .name
`)
	s := f.Stream("apps")
	tests := []struct {
		name string
		got  Pos
		want Pos
	}{
		{"auth block at its key", f.HTTP.Auth.Pos, Pos{4, 3}},
		{"auth type value", f.HTTP.Auth.Type.P, Pos{5, 11}},
		{"stream at its key", s.Pos, Pos{8, 3}},
		{"request at its key", s.Request.Pos, Pos{9, 5}},
		{"path value", s.Request.Path.P, Pos{10, 13}},
		{"query key", s.Request.Query.Items[0].P, Pos{12, 9}},
		{"query value", s.Request.Query.Items[0].Value.P, Pos{12, 16}},
		{"paginate at its key", s.Paginate.Pos, Pos{13, 5}},
		{"paginate param", s.Paginate.Param.P, Pos{15, 14}},
		{"table at its key", f.Tables.Items[0].Value.Pos, Pos{18, 3}},
		{"primary key item", f.Tables.Items[0].Value.PrimaryKey[1].P, Pos{20, 24}},
		{"entity item", f.Port.Entities[0].Pos, Pos{23, 7}},
		{"entity identifier", f.Port.Entities[0].Identifier.P, Pos{25, 19}},
		{"entity property key", f.Port.Entities[0].Properties.Items[0].P, Pos{27, 9}},
		{"entity property value", f.Port.Entities[0].Properties.Items[0].Value.P, Pos{27, 15}},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: at %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestDefaultPrograms(t *testing.T) {
	f := mustParse(t, minimal+`tables:
  apps: {from: apps}
port:
  entities:
    - {blueprint: app, from: apps, identifier: .id}
`)
	ctx := context.Background()
	s := f.Stream("apps")
	if s.Records.Set || s.Records.Code() == nil {
		t.Fatalf("records: Set=%v code=%v, want an unset field with the default program", s.Records.Set, s.Records.Code())
	}
	tests := []struct {
		name  string
		q     *JQ
		input any
		want  []any
		err   string
	}{
		{"records of an array", &s.Records, []any{1.0, 2.0}, []any{1.0, 2.0}, ""},
		// An object where a list was expected is an error answer, not a record.
		{"records of an object", &s.Records, map[string]any{"a": 1.0}, nil, "the response body is an object, not a list: set records to select the records"},
		{"records of a string", &s.Records, "oops", nil, "the response body is a string, not a list"},
		{"records of null", &s.Records, nil, nil, ""},
		{"row", &f.Tables.Items[0].Value.Row, map[string]any{"a": 1.0}, []any{map[string]any{"a": 1.0}}, ""},
		{"selector", &f.Port.Entities[0].Selector, map[string]any{}, []any{true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.q.Code().Run(ctx, tc.input, map[string]any{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("default program (-want +got):\n%s", diff)
			}
		})
	}
	if f.Port.Entities[0].Title.Code() != nil {
		t.Errorf("unset title has a program")
	}
}

func TestFanOut(t *testing.T) {
	f := mustParse(t, `version: 1
name: demo
http: {base_url: "https://api.example.com"}
streams:
  orgs:
    request: {path: /orgs}
  apps:
    for_each: orgs
    request:
      path: /orgs/${ parent.id }/apps
  envs:
    for_each: apps
    request:
      path: /orgs/${ parents.orgs.id }/apps/${ parents.apps.id }/envs
  deploys:
    for_each: apps
    request:
      path: /deploys/${ parent.id }
  graphs:
    for_each: envs
    batch: deploys_of_env
    when: parents.orgs.enabled && len(batch) > 0
    request:
      method: POST
      path: /graphs/${ parents.orgs.id }/${ parents.apps.id }/${ parent.id }
    records: '.[] | .ids = [$orgs.id, $apps.id, $envs.id, $parent.id, ($parents | keys), ($batch | length)]'
  deploys_of_env:
    for_each: envs
    request:
      path: /d/${ parent.id }
`)
	names := func(ss []*Stream) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	tests := []struct {
		stream    string
		parent    string
		batch     string
		ancestors []string
		vars      []string
	}{
		{"orgs", "", "", nil, []string{"config"}},
		{"apps", "orgs", "", []string{"orgs"}, []string{"config", "parent", "parents", "orgs"}},
		{"envs", "apps", "", []string{"apps", "orgs"}, []string{"config", "parent", "parents", "apps", "orgs"}},
		{"graphs", "envs", "deploys_of_env", []string{"envs", "apps", "orgs"}, []string{"config", "parent", "parents", "envs", "apps", "orgs", "batch"}},
	}
	for _, tc := range tests {
		t.Run(tc.stream, func(t *testing.T) {
			s := f.Stream(tc.stream)
			if got := s.Parent(); (got == nil) != (tc.parent == "") || got != nil && got.Name != tc.parent {
				t.Errorf("Parent() = %v, want %q", got, tc.parent)
			}
			if got := s.BatchOf(); (got == nil) != (tc.batch == "") || got != nil && got.Name != tc.batch {
				t.Errorf("BatchOf() = %v, want %q", got, tc.batch)
			}
			if diff := cmp.Diff(tc.ancestors, names(s.Ancestors())); diff != "" {
				t.Errorf("Ancestors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.vars, s.JQVars()); diff != "" {
				t.Errorf("JQVars (-want +got):\n%s", diff)
			}
		})
	}

	// The runner passes variable values in JQVars order.
	g := f.Stream("graphs")
	org, app, env := map[string]any{"id": "o"}, map[string]any{"id": "a"}, map[string]any{"id": "e"}
	values := map[string]any{
		"config": map[string]any{}, "parent": env, "parents": map[string]any{"orgs": org, "apps": app, "envs": env},
		"orgs": org, "apps": app, "envs": env, "batch": []any{1, 2},
	}
	var vars []any
	for _, v := range g.JQVars() {
		vars = append(vars, values[v])
	}
	got, err := g.Records.Code().Run(context.Background(), []any{map[string]any{}}, vars...)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{map[string]any{"ids": []any{"o", "a", "e", "e", []any{"apps", "envs", "orgs"}, 2}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records with fan-out variables (-want +got):\n%s", diff)
	}
	ok, err := g.When.Program().EvalBool(map[string]any{"parents": map[string]any{"orgs": map[string]any{"enabled": true}}, "batch": []any{1}})
	if err != nil || !ok {
		t.Errorf("when = %v, %v; want true", ok, err)
	}
}

// TestCycleAncestors: a spec with a cycle still returns a File whose
// fan-out helpers terminate.
func TestCycleAncestors(t *testing.T) {
	f, err := Parse(specName, []byte(`version: 1
name: demo
streams:
  a:
    for_each: b
    request: {path: /a}
  b:
    for_each: a
    request: {path: /b}
  c:
    for_each: a
    request: {path: /c}
`), nil)
	if err == nil {
		t.Fatal("Parse accepted a cycle")
	}
	var got []string
	for _, s := range f.Stream("c").Ancestors() {
		got = append(got, s.Name)
	}
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("Ancestors of c (-want +got):\n%s", diff)
	}
	if n := len(f.Stream("a").Ancestors()); n != 1 {
		t.Errorf("a has %d ancestors in a cycle, want 1 (b)", n)
	}
}

func TestMergeKeys(t *testing.T) {
	f := mustParse(t, `version: 1
name: demo
streams:
  apps:
    request: &base
      method: POST
      path: /apps
      headers: {accept: application/json}
  envs:
    request:
      <<: *base
      path: /envs
  jobs:
    request:
      <<: [*base, {url: https://x.example.com/jobs}]
      path:
http: {base_url: "https://api.example.com"}
`)
	envs := f.Stream("envs").Request
	if envs.Method.V != "POST" || envs.Path.V != "/envs" || envs.Headers.Get("accept") == nil {
		t.Errorf("envs request = method %q path %q headers %v; want POST, /envs and the merged header", envs.Method.V, envs.Path.V, envs.Headers.Keys())
	}
	if envs.Method.P != (Pos{6, 15}) {
		t.Errorf("merged method at %v, want the anchored text at 6:15", envs.Method.P)
	}
	// An explicit null overrides the merged path: jobs has only the url.
	jobs := f.Stream("jobs").Request
	if jobs.Path.Set || jobs.URL.V != "https://x.example.com/jobs" {
		t.Errorf("jobs request path=%q url=%q, want no path and the merged url", jobs.Path.V, jobs.URL.V)
	}
}

func TestAliasExpansionIsBounded(t *testing.T) {
	// Ten levels of ten aliases: 10^10 nodes if expanded naively.
	src := "version: 1\nname: demo\nstreams:\n  apps:\n    request:\n      method: POST\n      url: https://api.example.com/a\n      body:\n        l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i <= 9; i++ {
		p := "*l" + string(rune('0'+i-1))
		src += "        l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [" + strings.Repeat(p+", ", 9) + p + "]\n"
	}
	start := time.Now()
	_, err := Parse(specName, []byte(src), nil)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Parse took %v", elapsed)
	}
	list := AsList(err)
	if len(list) != 1 || !strings.Contains(list[0].Msg, "too large once YAML aliases are expanded") {
		t.Fatalf("Parse error = %v, want one value-too-large error", err)
	}
}

func TestMultiByteAndCRLFPositions(t *testing.T) {
	src := "version: 1\r\nname: démo\r\nstreams:\r\n  apps:\r\n    description: ünïcode\r\n    request: {url: \"https://api.example.com\"}\r\n    records: '\"é\" | .x ==  )'\r\n"
	_, err := Parse(specName, []byte(src), nil)
	list := AsList(err)
	if len(list) != 1 {
		t.Fatalf("Parse errors = %v, want one", err)
	}
	// Columns count characters, not bytes: the ')' is the 28th character.
	if list[0].Pos != (Pos{7, 28}) {
		t.Errorf("error at %v, want 7:28: %v", list[0].Pos, list[0])
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	spec := minimal + "port:\n  blueprints: bp/blueprints.json\n  entities:\n    - {blueprint: app, from: apps, identifier: .id, properties: {nope: .x}}\n"
	if err := os.MkdirAll(filepath.Join(dir, "bp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bp", "blueprints.json"), []byte(`[{"identifier": "app", "title": "App", "schema": {"properties": {"name": {"type": "string"}}}}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	list := AsList(err)
	if len(list) != 1 || list[0].File != path || !strings.Contains(list[0].Msg, `has no property "nope"`) {
		t.Errorf("Load error = %v, want the blueprint read relative to the spec", err)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || AsList(err) != nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a plain not-exist error", err)
	}
}

// A blueprint defined twice in the blueprints file is an error at the
// second one's identifier: Port would keep only the later.
func TestBlueprintDefinedTwice(t *testing.T) {
	dir := t.TempDir()
	spec := minimal + "port:\n  blueprints: blueprints.json\n  entities:\n    - {blueprint: app, from: apps, identifier: .id}\n"
	bps := "[\n  {\"identifier\": \"app\", \"title\": \"App\", \"schema\": {\"properties\": {}}},\n  {\"identifier\": \"env\", \"title\": \"Env\", \"schema\": {\"properties\": {}}},\n  {\"identifier\": \"app\", \"title\": \"App again\", \"schema\": {\"properties\": {}}}\n]\n"
	for name, body := range map[string]string{"s.yaml": spec, "blueprints.json": bps} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Load(filepath.Join(dir, "s.yaml"))
	list := AsList(err)
	if len(list) != 1 {
		t.Fatalf("Load = %v, want one error", err)
	}
	e := list[0]
	if e.File != filepath.Join(dir, "blueprints.json") || e.Pos != (Pos{4, 18}) || e.Path != "[2].identifier" || !strings.Contains(e.Msg, `"app" is already defined at [0]`) {
		t.Errorf("error = %v (file %s, pos %v, path %s)", e, e.File, e.Pos, e.Path)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "s.yaml", Pos: Pos{3, 7}, Path: "streams.a", Msg: "bad"}, "s.yaml:3:7: streams.a: bad"},
		{&Error{File: "s.yaml", Pos: Pos{1, 1}, Msg: "top"}, "s.yaml:1:1: top"},
		{&Error{File: "s.yaml", Msg: "no position"}, "s.yaml: no position"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	list := ErrorList{tests[0].err, tests[1].err}
	if got := AsList(errors.Join(errors.New("other"), list)); len(got) != 2 {
		t.Errorf("AsList through a joined error = %v", got)
	}
	if got := AsList(tests[0].err); len(got) != 1 {
		t.Errorf("AsList(*Error) = %v", got)
	}
	if AsList(errors.New("x")) != nil || AsList(nil) != nil {
		t.Errorf("AsList of a non-spec error is not nil")
	}
	var e *Error
	if !errors.As(list, &e) || e != tests[0].err {
		t.Errorf("errors.As(ErrorList, *Error) = %v", e)
	}
}

func TestDidYouMean(t *testing.T) {
	cands := []string{"streams", "records", "request", "language", "name", "GET", "link_header", "on"}
	tests := []struct{ name, want string }{
		{"stream", "streams"},   // one insertion
		{"recrods", "records"},  // one transposition
		{"get", "GET"},          // case only
		{"lang", "language"},    // a prefix
		{"link", "link_header"}, // a prefix
		{"on_status", "on"},     // starts with a candidate
		{"destination", ""},     // four edits from description: too far
		{"x", ""},               // too short to guess
		{strings.Repeat("a", 100), ""},
	}
	for _, tc := range tests {
		if got := suggest.Closest(tc.name, cands); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := didYouMean("stream", cands); got != `; did you mean "streams"?` {
		t.Errorf("didYouMean = %q", got)
	}
}

func TestParseReturnsFileWithErrors(t *testing.T) {
	f, err := Parse(specName, []byte(minimal+"bogus: 1\n"), nil)
	if err == nil || f == nil || f.Stream("apps") == nil || f.Name.V != "demo" {
		t.Errorf("Parse = %v, %v; want the partly decoded file and an error", f, err)
	}
	if f.Path != specName {
		t.Errorf("Path = %q", f.Path)
	}
}

func TestNilFSSkipsBlueprints(t *testing.T) {
	mustParse(t, minimal+"port:\n  blueprints: nowhere.json\n  entities:\n    - {blueprint: x, from: apps, identifier: .id}\n")
}

// TestYAMLErrorInLargeFile: the offending line is found far from the line
// yaml.v3 reports (the start of the enclosing block), without a parse per
// line (that took half a minute on this file).
func TestYAMLErrorInLargeFile(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "      headers:\n")
	for i := range 5000 {
		b.WriteString("        h" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "_" + strings.Repeat("y", i/26%5) + ": v\n")
	}
	b.WriteString("       bad: x\n")
	_, err := Parse(specName, []byte(b.String()), nil)
	list := AsList(err)
	if len(list) != 1 || list[0].Pos != (Pos{5008, 8}) || !strings.Contains(list[0].Msg, "did not find expected key") {
		t.Errorf("Parse error = %v, want a YAML error at 5008:8", err)
	}
}

// TestLineBreaks: positions follow YAML's line breaks, which include a lone
// CR and the Unicode NEL, LS and PS.
func TestLineBreaks(t *testing.T) {
	for name, br := range map[string]string{"LF": "\n", "CRLF": "\r\n", "CR": "\r", "NEL": "\u0085", "LS": "\u2028"} {
		t.Run(name, func(t *testing.T) {
			src := strings.Join([]string{"version: 1", "name: d", "streams:", "  a:", "    request: {url: \"https://x.example.com\"}", "    records: (.x", ""}, br)
			_, err := Parse(specName, []byte(src), nil)
			list := AsList(err)
			if len(list) != 1 || list[0].Pos != (Pos{6, 17}) {
				t.Errorf("Parse error = %v, want one at 6:17", err)
			}
		})
	}
}

func TestConfigDefaultTree(t *testing.T) {
	f := mustParse(t, minimal+`config:
  since: {default: 2024-01-01}
  ids: {default: [1, "${ not a template }", {a: true}]}
`)
	tests := []struct {
		name string
		want any
	}{
		{"since", "2024-01-01"},
		{"ids", []any{1, "${ not a template }", map[string]any{"a": true}}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, f.ConfigVar(tc.name).Default.Tree()); diff != "" {
			t.Errorf("%s default (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestAncestorsLongChains: deep chains, and cycles entered after a long
// tail or closing on the stream itself, list each stream once.
func TestAncestorsLongChains(t *testing.T) {
	// link makes each stream fan out from the one before it.
	link := func(n int, name string) []*Stream {
		ss := make([]*Stream, n)
		for i := range ss {
			ss[i] = &Stream{Name: fmt.Sprint(name, i)}
			if i > 0 {
				ss[i].parent = ss[i-1]
			}
		}
		return ss
	}
	plain := link(40, "s")
	if got := plain[39].Ancestors(); len(got) != 39 || got[0] != plain[38] || got[38] != plain[0] {
		t.Errorf("Ancestors of a 40-deep chain: %d streams", len(got))
	}
	for _, tc := range []struct{ tail, cycle int }{{0, 1}, {0, 7}, {1, 1}, {2, 1}, {30, 5}, {3, 33}} {
		cyc := link(tc.cycle, "c")
		cyc[0].parent = cyc[tc.cycle-1]
		leaf, want := cyc[tc.cycle-1], tc.cycle-1 // on the cycle: every other cycle stream
		if tc.tail > 0 {
			tail := link(tc.tail, "t")
			tail[0].parent = cyc[tc.cycle-1]
			leaf, want = tail[tc.tail-1], tc.tail-1+tc.cycle
		}
		got := leaf.Ancestors()
		seen := map[*Stream]bool{leaf: true}
		for _, a := range got {
			if seen[a] {
				t.Errorf("tail %d, cycle %d: %s listed twice (or is the stream itself)", tc.tail, tc.cycle, a.Name)
			}
			seen[a] = true
		}
		if len(got) != want {
			t.Errorf("tail %d, cycle %d: %d ancestors, want %d", tc.tail, tc.cycle, len(got), want)
		}
	}
}

// TestStreamVarsMatchJQVars: the constant-time answers the compiler uses
// agree with JQVars, the list the runner passes values in.
func TestStreamVarsMatchJQVars(t *testing.T) {
	f := mustParse(t, `version: 1
name: demo
http: {base_url: "https://api.example.com"}
streams:
  apps: {request: {path: /apps}}
  envs: {for_each: apps, request: {path: /envs}}
  other: {for_each: apps, request: {path: /other}}
  deploys: {for_each: envs, batch: leaves, request: {method: POST, path: /d, body_jq: "$batch"}}
  leaves: {for_each: envs, request: {path: /l}}
  deep: {for_each: deploys, request: {path: /deep}}
  single: {request: {path: /single}}
  folders: {recurse: {when: .folder, max_depth: 9}, request: {path: /f}}
  blocks: {for_each: envs, recurse: {when: .has_children, max_depth: 9}, request: {path: /b}}
  under: {for_each: blocks, request: {path: /u}}
lookups:
  names: {from: single, key: .id}
`)
	all := append(f.Streams.Keys(), VarConfig, VarParent, VarParents, VarBatch, VarCursor, VarLookups)
	for _, name := range f.Streams.Keys() {
		s := f.Stream(name)
		list := s.JQVars()
		v := f.jqVars(s)
		for _, n := range all {
			i, ok := v.Index(n)
			want := slices.Index(list, n)
			if ok != (want >= 0) || ok && i != want {
				t.Errorf("stream %s: Index(%q) = %d, %v; JQVars %v has it at %d", name, n, i, ok, list, want)
			}
		}
	}
	for name, want := range map[string][]string{
		"deep": {"config", "parent", "parents", "deploys", "envs", "apps", "lookups"},
		// A recursive stream's own records are its nearest ancestors.
		"folders": {"config", "parent", "parents", "folders", "lookups"},
		"blocks":  {"config", "parent", "parents", "blocks", "envs", "apps", "lookups"},
		"under":   {"config", "parent", "parents", "blocks", "envs", "apps", "lookups"},
	} {
		if got := f.jqVars(f.Stream(name)).Names(); !slices.Equal(got, want) {
			t.Errorf("Names() of %s = %v, want %v", name, got, want)
		}
	}
}

// TestTooManyErrors: a spec with one systematic mistake stops at
// MaxErrors problems, with a last line saying so, positioned.
func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nname: demo\nstreams:\n")
	for i := range 3 * MaxErrors {
		fmt.Fprintf(&b, "  s%d:\n    for_each: nope%d\n    request: {path: /x}\n", i, i)
	}
	_, err := Parse(specName, []byte(b.String()), nil)
	list := AsList(err)
	if len(list) != MaxErrors+1 {
		t.Fatalf("%d errors, want %d", len(list), MaxErrors+1)
	}
	last := list[MaxErrors]
	if !strings.Contains(last.Msg, "too many problems") || last.Pos.Line != 5+3*MaxErrors {
		t.Errorf("last error = %v, want too many problems at line %d", last, 5+3*MaxErrors)
	}
	for i, e := range list[:MaxErrors] {
		if !strings.Contains(e.Msg, "unknown stream") || e.Pos.Line != 5+3*i {
			t.Errorf("error %d = %v", i, e)
		}
	}
}

// TestFileTooLarge: a spec over MaxSpecSize is refused at the first byte
// past the limit, before anything is decoded.
func TestFileTooLarge(t *testing.T) {
	line := "# " + strings.Repeat("x", 97) + "\n" // 100 bytes
	src := []byte("version: 1\n" + strings.Repeat(line, MaxSpecSize/100+1))
	_, err := Parse(specName, src, nil)
	list := AsList(err)
	// Byte MaxSpecSize is on line 1 + (MaxSpecSize-11)/100 + 1.
	wantLine := 2 + (MaxSpecSize-11)/100
	wantCol := 1 + (MaxSpecSize-11)%100
	if len(list) != 1 || list[0].Pos != (Pos{Line: wantLine, Col: wantCol}) || !strings.Contains(list[0].Msg, "larger than 8 MiB") {
		t.Errorf("errors = %v, want one at %d:%d", list, wantLine, wantCol)
	}
	if _, err := Parse(specName, src[:MaxSpecSize], nil); err != nil && strings.Contains(err.Error(), "larger than") {
		t.Errorf("a spec of exactly MaxSpecSize bytes is refused: %v", err)
	}
}
