package port

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

func TestEnsureBlueprintsCreatesInOrder(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	// allBlueprints lists sources before targets; the Port simulator rejects a
	// relation to a blueprint that does not exist yet.
	if err := e.sink().EnsureBlueprints(t.Context(), humanitecBlueprints(t, allBlueprints...)); err != nil {
		t.Fatal(err)
	}
	var created []string
	for _, r := range e.srv.Requests() {
		if r.Method == "POST" && r.Path == "/v1/blueprints" {
			var b struct{ Identifier string }
			if err := json.Unmarshal(r.Body, &b); err != nil {
				t.Fatal(err)
			}
			created = append(created, b.Identifier)
		}
	}
	pos := func(id string) int { return slices.Index(created, id) }
	if len(created) != 4 || pos(bpApp) > pos(bpEnv) || pos(bpEnv) > pos(bpWork) || pos(bpEnv) > pos(bpGraph) {
		t.Errorf("creation order %v", created)
	}
	for _, bp := range e.srv.Catalog().Blueprints {
		props := bp["schema"].(map[string]any)["properties"].(map[string]any)
		if _, ok := props[OwnerProperty]; !ok {
			t.Errorf("%v: no %s property", bp["identifier"], OwnerProperty)
		}
	}

	// Unchanged: a second ensure only reads.
	e.srv.ResetRequests()
	if err := e.sink().EnsureBlueprints(t.Context(), humanitecBlueprints(t, allBlueprints...)); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.srv.Requests() {
		if r.Method != "GET" && r.Path != "/v1/auth/access_token" {
			t.Errorf("unchanged blueprints caused %s %s", r.Method, r.Path)
		}
	}
}

func TestEnsureBlueprintsUpdatesWithoutDeleting(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	// Port already has the app blueprint with an extra property and
	// relation someone added by hand, and an unrelated blueprint.
	for _, b := range []string{
		`{"identifier":"team","title":"Team","schema":{"properties":{}}}`,
		`{"identifier":"humanitecApplication","title":"Old title","schema":{"properties":{"handAdded":{"type":"string"}}},
		  "relations":{"owner":{"target":"team","many":false,"required":false}}}`,
	} {
		if err := e.srv.SeedBlueprint([]byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.sink().EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp)); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.CountRequests("PUT", "/v1/blueprints/"+bpApp); n != 1 {
		t.Errorf("%d PUTs, want 1", n)
	}
	cat := e.srv.Catalog()
	if len(cat.Blueprints) != 2 {
		t.Fatalf("blueprints %d, want 2 (none deleted)", len(cat.Blueprints))
	}
	app := cat.Blueprints[0]
	props := app["schema"].(map[string]any)["properties"].(map[string]any)
	for _, p := range []string{"handAdded", "createdAt", OwnerProperty} {
		if _, ok := props[p]; !ok {
			t.Errorf("property %s missing after update: %v", p, props)
		}
	}
	if _, ok := app["relations"].(map[string]any)["owner"]; !ok || app["title"] != "Humanitec Application" {
		t.Errorf("after update: title %v relations %v", app["title"], app["relations"])
	}
}

func TestEnsureBlueprintsCycle(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	a := `{"identifier":"a","title":"A","schema":{"properties":{}},"relations":{"b":{"target":"b","many":false,"required":false},"self":{"target":"a","many":true,"required":false}}}`
	b := `{"identifier":"b","title":"B","schema":{"properties":{}},"relations":{"a":{"target":"a","many":true,"required":false}}}`
	if err := e.sink().EnsureBlueprints(t.Context(), []json.RawMessage{json.RawMessage(a), json.RawMessage(b)}); err != nil {
		t.Fatal(err)
	}
	cat := e.srv.Catalog()
	got := fmt.Sprint(cat.Blueprints[0]["relations"].(map[string]any)["b"] != nil, cat.Blueprints[0]["relations"].(map[string]any)["self"] != nil,
		cat.Blueprints[1]["relations"].(map[string]any)["a"] != nil)
	if got != "true true true" {
		t.Errorf("cycle relations present: %s", got)
	}

	// Entities across the cycle: the second pass fills the relations.
	s := e.sink()
	for _, ent := range []string{`{"identifier":"a1","relations":{"b":"b1","self":["a2"]}}`, `{"identifier":"a2","relations":{"b":"b1"}}`} {
		var data map[string]any
		_ = json.Unmarshal([]byte(ent), &data)
		if err := s.Write(t.Context(), entityOf("a", data)); err != nil {
			t.Fatal(err)
		}
	}
	var data map[string]any
	_ = json.Unmarshal([]byte(`{"identifier":"b1","relations":{"a":["a1","a2"]}}`), &data)
	if err := s.Write(t.Context(), entityOf("b", data)); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Finish(t.Context(), nil)
	if err != nil || rep.Upserted != 3 || rep.DroppedRelations != 0 {
		t.Fatalf("err %v report %+v", err, rep)
	}
	if r := e.srv.Entity("a", "a1")["relations"].(map[string]any); r["b"] != "b1" || fmt.Sprint(r["self"]) != "[a2]" {
		t.Errorf("a1 relations %v", r)
	}
	if r := e.srv.Entity("b", "b1")["relations"].(map[string]any); fmt.Sprint(r["a"]) != "[a1 a2]" {
		t.Errorf("b1 relations %v", r)
	}
}

func TestEnsureBlueprintsErrors(t *testing.T) {
	tests := []struct {
		name string
		bps  []string
		want string
	}{
		{"target nowhere", []string{`{"identifier":"x","title":"X","schema":{"properties":{}},"relations":{"r":{"target":"ghost"}}}`}, "neither in the spec nor in Port"},
		{"duplicate", []string{`{"identifier":"x","title":"X","schema":{"properties":{}}}`, `{"identifier":"x","title":"X","schema":{"properties":{}}}`}, "given twice"},
		{"no identifier", []string{`{"title":"X","schema":{"properties":{}}}`}, "identifier is required"},
		{"rejected by Port", []string{`{"identifier":"x","title":"","schema":{"properties":{}}}`}, "422"},
		{"type change rejected by Port", []string{`{"identifier":"fixed","title":"F","schema":{"properties":{"n":{"type":"string"}}}}`}, "type cannot change"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			if err := e.srv.SeedBlueprint([]byte(`{"identifier":"fixed","title":"F","schema":{"properties":{"n":{"type":"number"}}}}`)); err != nil {
				t.Fatal(err)
			}
			var raws []json.RawMessage
			for _, b := range tc.bps {
				raws = append(raws, json.RawMessage(b))
			}
			err := e.sink().EnsureBlueprints(t.Context(), raws)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLayers(t *testing.T) {
	edges := map[string][]string{
		"graph": {"graph", "env"}, "work": {"env"}, "env": {"app"},
		"x": {"y"}, "y": {"x", "app"},
	}
	levels, comp := layers([]string{"work", "graph", "env", "app", "x", "y", "lone"}, edges)
	if got := fmt.Sprint(levels); got != "[[app lone] [env x y] [graph work]]" {
		t.Errorf("levels %s", got)
	}
	if comp["x"] != comp["y"] || comp["x"] == comp["app"] {
		t.Errorf("components %v", comp)
	}
}

func TestParseBlueprint(t *testing.T) {
	for _, raw := range humanitecBlueprints(t, bpApp, bpEnv, bpWork, bpGraph) {
		bp, err := ParseBlueprint(raw)
		if err != nil {
			t.Fatal(err)
		}
		if bp.Identifier == bpGraph && (!bp.Relations[bpGraph].Many || bp.Relations[bpGraph].Target != bpGraph) {
			t.Errorf("graph self relation %+v", bp.Relations[bpGraph])
		}
	}
	for _, bad := range []string{`[]`, `{"identifier":".."}`, `{"identifier":"x","schema":{"properties":{"p":{"type":"int"}}}}`, `{"identifier":"x","relations":{"r":{}}}`} {
		if _, err := ParseBlueprint(json.RawMessage(bad)); err == nil {
			t.Errorf("ParseBlueprint(%s): no error", bad)
		}
	}
}

func entityOf(bp string, data map[string]any) sink.Entity {
	return sink.Entity{Blueprint: bp, Data: data}
}
