package port

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

func testBlueprint(t *testing.T) *Blueprint {
	t.Helper()
	bp, err := ParseBlueprint(json.RawMessage(`{
	  "identifier": "svc", "title": "Svc",
	  "schema": {"properties": {
	    "s": {"type": "string"}, "n": {"type": "number"}, "b": {"type": "boolean"},
	    "o": {"type": "object"}, "a": {"type": "array", "items": {"type": "string", "format": "url"}},
	    "when": {"type": "string", "format": "date-time"}, "home": {"type": "string", "format": "url"},
	    "mail": {"type": "string", "format": "email"}, "tier": {"type": "string", "enum": ["gold", "silver"]},
	    "must": {"type": "string"}
	  }, "required": ["must"]},
	  "relations": {
	    "app": {"target": "app", "many": false, "required": true},
	    "deps": {"target": "svc", "many": true, "required": false}
	  }
	}`))
	if err != nil {
		t.Fatal(err)
	}
	return bp
}

func TestValidateEntity(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"identifier": "svc-1", "title": "Svc 1",
			"properties": map[string]any{"must": "x"},
			"relations":  map[string]any{"app": "app-1"},
		}
	}
	tests := []struct {
		name string
		mut  func(d map[string]any)
		want []string // field of each error, in order
	}{
		{"valid", nil, nil},
		{"unicode slash identifier", func(d map[string]any) { d["identifier"] = "ümlaut/ñ:x@y=z" }, nil},
		{"identifier missing", func(d map[string]any) { delete(d, "identifier") }, []string{"identifier"}},
		{"identifier number", func(d map[string]any) { d["identifier"] = json.Number("1") }, []string{"identifier"}},
		{"identifier dot", func(d map[string]any) { d["identifier"] = "." }, []string{"identifier"}},
		{"identifier dotdot", func(d map[string]any) { d["identifier"] = ".." }, []string{"identifier"}},
		{"identifier space", func(d map[string]any) { d["identifier"] = "a b" }, []string{"identifier"}},
		{"identifier too long", func(d map[string]any) { d["identifier"] = strings.Repeat("é", 1001) }, []string{"identifier"}},
		{"identifier 1000", func(d map[string]any) { d["identifier"] = strings.Repeat("é", 1000) }, nil},
		{"unknown top-level key", func(d map[string]any) { d["blueprint"] = "svc" }, []string{"blueprint"}},
		{"title null", func(d map[string]any) { d["title"] = nil }, []string{"title"}},
		{"team list ok", func(d map[string]any) { d["team"] = []any{"a", "b"} }, nil},
		{"team bad", func(d map[string]any) { d["team"] = 1.0 }, []string{"team"}},
		{"properties not object", func(d map[string]any) { d["properties"] = "x" }, []string{"properties", "properties.must"}},
		{"undeclared property", func(d map[string]any) { props(d)["nope"] = 1 }, []string{"properties.nope"}},
		{"string wrong", func(d map[string]any) { props(d)["s"] = 1.0 }, []string{"properties.s"}},
		{"number json.Number", func(d map[string]any) { props(d)["n"] = json.Number("3.5") }, nil},
		{"number int", func(d map[string]any) { props(d)["n"] = 3 }, nil},
		{"number beyond a double", func(d map[string]any) { props(d)["n"] = json.Number("-1e400") }, []string{"properties.n"}},
		{"number in object beyond a double", func(d map[string]any) {
			props(d)["o"] = map[string]any{"k": []any{1, json.Number("1e309")}}
		}, []string{"properties.o"}},
		{"number in object within a double", func(d map[string]any) {
			props(d)["o"] = map[string]any{"k": []any{1, json.Number("1e308"), json.Number("1e-400")}}
		}, nil},
		{"number wrong", func(d map[string]any) { props(d)["n"] = "3" }, []string{"properties.n"}},
		{"boolean wrong", func(d map[string]any) { props(d)["b"] = "true" }, []string{"properties.b"}},
		{"object wrong", func(d map[string]any) { props(d)["o"] = []any{} }, []string{"properties.o"}},
		{"array ok", func(d map[string]any) { props(d)["a"] = []any{"https://x.example"} }, nil},
		{"array wrong", func(d map[string]any) { props(d)["a"] = map[string]any{} }, []string{"properties.a"}},
		{"array item format", func(d map[string]any) { props(d)["a"] = []any{"nope"} }, []string{"properties.a"}},
		{"date-time ok", func(d map[string]any) { props(d)["when"] = "2025-01-02T03:04:05+02:00" }, nil},
		{"date-time wrong", func(d map[string]any) { props(d)["when"] = "2025-01-02 03:04" }, []string{"properties.when"}},
		{"url wrong", func(d map[string]any) { props(d)["home"] = "/relative" }, []string{"properties.home"}},
		{"email wrong", func(d map[string]any) { props(d)["mail"] = "Bob <bob@x.example>" }, []string{"properties.mail"}},
		{"enum wrong", func(d map[string]any) { props(d)["tier"] = "bronze" }, []string{"properties.tier"}},
		{"null property ok", func(d map[string]any) { props(d)["s"] = nil }, nil},
		{"required property missing", func(d map[string]any) { delete(props(d), "must") }, []string{"properties.must"}},
		{"required property null", func(d map[string]any) { props(d)["must"] = nil }, []string{"properties.must"}},
		{"undeclared relation", func(d map[string]any) { rels(d)["nope"] = "x" }, []string{"relations.nope"}},
		{"single given list", func(d map[string]any) { rels(d)["app"] = []any{"a"} }, []string{"relations.app"}},
		{"many given string", func(d map[string]any) { rels(d)["deps"] = "x" }, []string{"relations.deps"}},
		{"many list ok", func(d map[string]any) { rels(d)["deps"] = []string{"x", "y/z"} }, nil},
		{"many bad id", func(d map[string]any) { rels(d)["deps"] = []any{"ok", ".."} }, []string{"relations.deps"}},
		{"many non-string", func(d map[string]any) { rels(d)["deps"] = []any{1.0} }, []string{"relations.deps"}},
		{"relation query passes", func(d map[string]any) {
			rels(d)["app"] = map[string]any{"combinator": "and", "rules": []any{}}
		}, nil},
		// A search query is sent as it is: a NUL or invalid UTF-8 in it
		// fails its entity as anywhere else in it (sent, it could fail
		// the whole bulk request).
		{"relation query with a NUL", func(d map[string]any) {
			rels(d)["app"] = map[string]any{"combinator": "and", "rules": []any{
				map[string]any{"property": "$identifier", "operator": "=", "value": "a\x00b"}}}
		}, []string{"relations.app"}},
		{"relation query with invalid UTF-8", func(d map[string]any) {
			rels(d)["deps"] = map[string]any{"combinator": "and", "rules": []any{
				map[string]any{"property": "$title", "operator": "=", "value": "\xff"}}}
		}, []string{"relations.deps"}},
		{"required relation missing", func(d map[string]any) { delete(rels(d), "app") }, []string{"relations.app"}},
		{"required relation null", func(d map[string]any) { rels(d)["app"] = nil }, []string{"relations.app"}},
		// Errors come in field order, each map's keys in no order of Go's.
		{"many errors in field order", func(d map[string]any) {
			d["zz"], d["aa"], d["mm"] = 1, 2, 3
			p := props(d)
			p["z"], p["n"], p["b"], p["s"], p["y"] = 1, "x", "x", 1.0, 2
			rels(d)["r2"], rels(d)["deps"], rels(d)["r1"] = "x", []any{"ok", "..", "a b"}, "y"
			delete(rels(d), "app")
		}, []string{"aa", "mm", "zz", "properties.b", "properties.n", "properties.s", "properties.y", "properties.z",
			"relations.deps", "relations.deps", "relations.r1", "relations.r2", "relations.app"}},
	}
	bp := testBlueprint(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := base()
			if tc.mut != nil {
				tc.mut(d)
			}
			errs := ValidateEntity(bp, sink.Entity{Blueprint: "svc", Data: d})
			var got []string
			for _, err := range errs {
				got = append(got, err.(*FieldError).Field)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("errors %v, want fields %v", errs, tc.want)
			}
		})
	}
	if errs := ValidateEntity(nil, sink.Entity{Blueprint: "x"}); len(errs) != 1 {
		t.Errorf("nil blueprint: %v", errs)
	}
	if errs := ValidateEntity(bp, sink.Entity{Blueprint: "other", Data: base()}); len(errs) != 1 {
		t.Errorf("blueprint mismatch: %v", errs)
	}
}

func props(d map[string]any) map[string]any { return d["properties"].(map[string]any) }
func rels(d map[string]any) map[string]any  { return d["relations"].(map[string]any) }

// Offline validation must agree with what the Port simulator (Port's contract)
// accepts: every entity ValidateEntity passes is accepted, and every one it
// rejects is rejected (relation targets aside).
func TestValidateAgreesWithPorttest(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	appBP := `{"identifier":"app","title":"App","schema":{"properties":{}}}`
	raw := json.RawMessage(`{
	  "identifier": "svc", "title": "Svc",
	  "schema": {"properties": {
	    "s": {"type": "string"}, "n": {"type": "number"}, "when": {"type": "string", "format": "date-time"},
	    "home": {"type": "string", "format": "url"}, "tier": {"type": "string", "enum": ["gold"]}, "must": {"type": "string"}
	  }, "required": ["must"]},
	  "relations": {"app": {"target": "app", "many": false, "required": true}, "deps": {"target": "svc", "many": true, "required": false}}
	}`)
	if err := e.srv.SeedBlueprint([]byte(appBP)); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SeedBlueprint(raw); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SeedEntity("app", []byte(`{"identifier":"app-1"}`)); err != nil {
		t.Fatal(err)
	}
	bp, err := ParseBlueprint(raw)
	if err != nil {
		t.Fatal(err)
	}
	cases := []string{
		`{"identifier":"ok","properties":{"must":"x"},"relations":{"app":"app-1"}}`,
		`{"identifier":"ok/ü","properties":{"must":"x","n":1.5,"when":"2025-01-01T00:00:00Z","home":"https://a.example","tier":"gold"},"relations":{"app":"app-1","deps":[]}}`,
		`{"identifier":"..","properties":{"must":"x"},"relations":{"app":"app-1"}}`,
		`{"identifier":"a b","properties":{"must":"x"},"relations":{"app":"app-1"}}`,
		`{"identifier":"x1","properties":{"must":"x","extra":1},"relations":{"app":"app-1"}}`,
		`{"identifier":"x2","properties":{"must":"x","n":"1"},"relations":{"app":"app-1"}}`,
		`{"identifier":"x3","properties":{"must":"x","when":"yesterday"},"relations":{"app":"app-1"}}`,
		`{"identifier":"x4","properties":{"must":"x","home":"nope"},"relations":{"app":"app-1"}}`,
		`{"identifier":"x5","properties":{"must":"x","tier":"silver"},"relations":{"app":"app-1"}}`,
		`{"identifier":"x6","properties":{},"relations":{"app":"app-1"}}`,
		`{"identifier":"x7","properties":{"must":"x"},"relations":{}}`,
		`{"identifier":"x8","properties":{"must":"x"},"relations":{"app":["app-1"]}}`,
		`{"identifier":"x9","properties":{"must":"x"},"relations":{"app":"app-1","deps":"x"}}`,
		`{"identifier":"x10","properties":{"must":"x"},"relations":{"app":"app-1","other":"x"}}`,
	}
	for _, c := range cases {
		var data map[string]any
		dec := json.NewDecoder(strings.NewReader(c))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			t.Fatal(err)
		}
		offline := len(ValidateEntity(bp, sink.Entity{Blueprint: "svc", Data: data})) == 0
		online := e.srv.SeedEntity("svc", []byte(c)) == nil
		if offline != online {
			t.Errorf("%s: ValidateEntity ok=%v, the Port simulator ok=%v", c, offline, online)
		}
	}
}

// Facts from Port's OpenAPI document (testdata/port-schemas.json) that the
// sink's constants must match.
func TestSchemaFacts(t *testing.T) {
	b, err := os.ReadFile("testdata/port-schemas.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	get := func(path ...any) any {
		var v any = doc
		for _, p := range path {
			switch k := p.(type) {
			case string:
				v = v.(map[string]any)[k]
			case int:
				v = v.([]any)[k]
			}
		}
		return v
	}
	noLookahead := func(p any) string { return strings.Replace(p.(string), `(?!\.{1,2}$)`, "", 1) }
	checks := []struct {
		name      string
		got, want any
	}{
		{"entity id pattern", entityIDPattern, noLookahead(get("entity.create.request", "properties", "identifier", "oneOf", 0, "pattern"))},
		{"entity id max", float64(maxEntityID), get("entity.create.request", "properties", "identifier", "oneOf", 0, "maxLength")},
		{"relation target pattern", entityIDPattern, noLookahead(get("entity.create.request", "properties", "relations", "additionalProperties", "anyOf", 0, "pattern"))},
		{"blueprint id pattern", blueprintIDPattern, noLookahead(get("blueprint.create.request", "properties", "identifier", "pattern"))},
		{"blueprint id max", float64(maxBlueprintID), get("blueprint.create.request", "properties", "identifier", "maxLength")},
		{"bulk max", float64(maxBulkEntities), get("entity.bulk.request", "properties", "entities", "maxItems")},
		{"bulk delete max", float64(maxBulkDelete), get("entity.bulkdelete.request", "properties", "entities", "maxItems")},
		{"search page max", float64(searchPageSize), get("entity.search.request", "properties", "limit", "maximum")},
		{"property types", fmt.Sprint(propertyTypes), fmt.Sprint(get("blueprint.create.request", "properties", "schema", "properties", "properties", "additionalProperties", "properties", "type", "enum"))},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: sink has %v, Port's spec says %v", c.name, c.got, c.want)
		}
	}
}

// Neither the client secret nor the token may appear in logs or errors,
// whatever path the run takes (401 refresh, 429 waits, failures).
func TestSecretsNeverLogged(t *testing.T) {
	const secret = "s3cr3t-do-not-log"
	e := newEnv(t, portsim.Options{ClientSecret: secret, RateLimit: 4, Window: 5 * time.Second})
	var logs strings.Builder
	s := e.sink(func(c *Config) {
		c.ClientSecret = secret
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.srv.RejectEntity(bpApp, "app-0003", 422, "bad", "rejected")
	if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp)); err != nil {
		t.Fatal(err)
	}
	e.srv.ExpireTokens()
	for _, ent := range apps(50) {
		if err := s.Write(t.Context(), ent); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Finish(t.Context(), map[string]bool{bpApp: true})
	if err == nil {
		t.Fatal("want the injected failure")
	}
	var tokens []string
	for _, r := range e.srv.Requests() {
		if r.Path == "/v1/auth/access_token" && r.Status == 200 {
			tokens = append(tokens, "portsim-token-")
		}
	}
	out := logs.String() + err.Error()
	if !strings.Contains(logs.String(), "refreshing") {
		t.Errorf("the 401 path was not exercised; logs:\n%s", logs.String())
	}
	for _, bad := range append(tokens, secret, "Bearer", "clientSecret") {
		if strings.Contains(out, bad) {
			t.Errorf("logs or error contain %q", bad)
		}
	}
}

// The ASCII fast path of identifier checks accepts exactly what the
// patterns accept, byte by byte and for whole identifiers.
func TestASCIIIDMatchesPattern(t *testing.T) {
	for _, c := range []struct {
		re      *regexp.Regexp
		symbols string
	}{{entityIDRe, entityIDSymbols}, {blueprintIDRe, blueprintIDSymbols}} {
		for b := range utf8.RuneSelf {
			id := string(rune(b))
			if fast := asciiID(id, c.symbols); fast != c.re.MatchString(id) {
				t.Errorf("%s: %q: fast path says %v, the pattern %v", c.re, id, fast, !fast)
			}
		}
		for _, id := range []string{"app-1", "a/b\\c", "x=y", "team@corp.io", "a b", "é", "ação", "日本", "a\x00", "a\u00a0"} {
			if asciiID(id, c.symbols) && !c.re.MatchString(id) {
				t.Errorf("%s: %q: fast path accepts what the pattern refuses", c.re, id)
			}
			if got, want := checkID(id, c.re, c.symbols, 1000) == nil, c.re.MatchString(id); got != want {
				t.Errorf("%s: %q: checkID accepts %v, the pattern %v", c.re, id, got, want)
			}
		}
	}
}
