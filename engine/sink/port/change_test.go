package port

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// bulkSent counts the entities sent with the bulk route, by blueprint and
// pass ("first" or "second").
func bulkSent(e *env) map[string]int {
	out := map[string]int{}
	for _, r := range e.srv.Requests() {
		bp, ok := strings.CutSuffix(strings.TrimPrefix(r.Path, "/v1/blueprints/"), "/entities/bulk")
		if !ok {
			continue
		}
		var body struct{ Entities []json.RawMessage }
		if err := json.Unmarshal(r.Body, &body); err != nil {
			e.t.Fatal(err)
		}
		pass := "first"
		if r.Query.Get("merge") == "true" {
			pass = "second"
		}
		out[bp+" "+pass] += len(body.Entities)
	}
	return out
}

// A rerun over an unchanged source sends no entity: each one equals what
// Port stores (ferryOwner, relations, cycle relations included).
func TestRerunSendsNothing(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, allBlueprints...)
	ents := humanitecSet("a", "b")
	if _, err := e.run(e.sink(), bps, ents, completeAll()); err != nil {
		t.Fatal(err)
	}
	before := e.srv.Catalog().JSON()
	e.srv.ResetRequests()
	rep, err := e.run(e.sink(), bps, humanitecSet("a", "b"), completeAll())
	if err != nil {
		t.Fatal(err)
	}
	if sent := bulkSent(e); len(sent) != 0 {
		t.Errorf("rerun sent %v, want nothing", sent)
	}
	if rep.Upserted != 0 || rep.Unchanged != len(ents) || rep.Deleted != 0 {
		t.Errorf("report upserted %d unchanged %d deleted %d, want 0, %d, 0", rep.Upserted, rep.Unchanged, rep.Deleted, len(ents))
	}
	if c := rep.Blueprints[bpGraph]; c.Unchanged != 12 || c.Upserted != 0 {
		t.Errorf("graph counts %+v, want 12 unchanged", c)
	}
	// Blueprints unchanged too: no PUT.
	if n := e.srv.CountRequests("PUT", ""); n != 0 {
		t.Errorf("%d blueprint PUTs on a rerun", n)
	}
	if got := e.srv.Catalog().JSON(); string(got) != string(before) {
		t.Error("the catalog changed on a rerun that sent nothing")
	}
}

// Only what changed is sent, and it ends exactly as a full write would.
func TestRerunSendsOnlyChanges(t *testing.T) {
	bps := humanitecBlueprints(t, allBlueprints...)
	changed := func() []sink.Entity {
		ents := humanitecSet("a", "b")
		for _, en := range ents {
			switch en.Data["identifier"] {
			case "a": // a title
				en.Data["title"] = "App A, renamed"
			case "a/production": // a property
				en.Data["properties"].(map[string]any)["lastDeploymentStatus"] = "failed"
			case "b/development/dns": // a cycle relation: dns now depends on externals.db
				en.Data["relations"].(map[string]any)[bpGraph] = []any{"b/development/externals.db"}
			case "b/production/modules.api": // a cycle relation's order only: the same set
				en.Data["relations"].(map[string]any)[bpGraph] = []any{"b/production/dns", "b/production/externals.db"}
			}
		}
		return ents
	}
	// The wanted end: everything written afresh.
	ref := newEnv(t, portsim.Options{})
	if _, err := ref.run(ref.sink(), bps, changed(), completeAll()); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t, portsim.Options{})
	if _, err := e.run(e.sink(), bps, humanitecSet("a", "b"), completeAll()); err != nil {
		t.Fatal(err)
	}
	e.srv.ResetRequests()
	rep, err := e.run(e.sink(), bps, changed(), completeAll())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{bpApp + " first": 1, bpEnv + " first": 1, bpGraph + " first": 1, bpGraph + " second": 1}
	if got := bulkSent(e); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if rep.Upserted != 3 || rep.Unchanged != len(changed())-3 {
		t.Errorf("upserted %d unchanged %d", rep.Upserted, rep.Unchanged)
	}
	if got, wantCat := e.srv.Catalog().JSON(), ref.srv.Catalog().JSON(); !sameCatalog(got, wantCat) {
		t.Errorf("catalog after the change-only rerun differs from a full write:\n%s", lineDiff(string(wantCat), string(got)))
	}
}

// sameCatalog compares two catalog snapshots as Port's contract does:
// without timestamps, many-relations as sets.
func sameCatalog(a, b []byte) bool {
	var norm func(v any) any
	norm = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, e := range x {
				if k == "createdAt" || k == "updatedAt" {
					continue
				}
				if k == "relations" {
					rels := map[string]any{}
					for rk, rv := range e.(map[string]any) {
						if ids := canonIDs(rv); ids != nil {
							rels[rk] = ids
						} else {
							rels[rk] = rv
						}
					}
					out[k] = rels
					continue
				}
				out[k] = norm(e)
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = norm(e)
			}
			return out
		}
		return v
	}
	enc := func(raw []byte) string {
		var c any
		if err := json.Unmarshal(raw, &c); err != nil {
			return err.Error()
		}
		out, _ := json.Marshal(norm(c))
		return string(out)
	}
	return enc(a) == enc(b)
}

// What Port stores may differ in form from what ferry maps without being
// different: explicit nulls, many-relations in another order, an empty
// team list, 1.0 for 1, a default Port filled in. Those entities are not
// sent; a real difference is.
func TestUnchangedComparesStoredShape(t *testing.T) {
	bp := `{"identifier":"svc","title":"Service","schema":{"properties":{
		"tier":{"type":"string","default":"gold"},
		"replicas":{"type":"number"},
		"url":{"type":"string"},
		"labels":{"type":"object"}}},
	  "relations":{"deps":{"target":"svc","many":true,"required":false},
	               "parent":{"target":"svc","many":false,"required":false}}}`
	mapped := func(id string, props, rels map[string]any) sink.Entity {
		return sink.Entity{Blueprint: "svc", Data: map[string]any{"identifier": id, "title": id, "properties": props, "relations": rels}}
	}
	tests := []struct {
		name   string
		stored string // as seeded into the Port simulator (owned by the run)
		mapped sink.Entity
		same   bool
	}{
		{"explicit nulls",
			`{"identifier":"x","title":"x","properties":{"replicas":null,"url":null,"ferryOwner":"humanitec"},"relations":{"deps":null,"parent":null}}`,
			mapped("x", map[string]any{}, map[string]any{}), true},
		{"many-relation order and an empty team",
			`{"identifier":"x","title":"x","team":[],"properties":{"ferryOwner":"humanitec"},"relations":{"deps":["c","a","b"]}}`,
			mapped("x", map[string]any{}, map[string]any{"deps": []any{"a", "b", "c"}}), true},
		{"number forms and key order",
			`{"identifier":"x","title":"x","properties":{"replicas":3.0,"labels":{"b":1,"a":[1,2]},"ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{"replicas": json.Number("3"), "labels": map[string]any{"a": []any{json.Number("1"), json.Number("2")}, "b": json.Number("1.0")}}, nil), true},
		{"a default Port filled in",
			`{"identifier":"x","title":"x","properties":{"tier":"gold","ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{"tier": nil}, map[string]any{}), true},
		{"an empty many-relation",
			`{"identifier":"x","title":"x","properties":{"ferryOwner":"humanitec"},"relations":{"deps":[]}}`,
			mapped("x", map[string]any{}, map[string]any{"deps": []any{}, "parent": nil}), true},
		{"a property changed",
			`{"identifier":"x","title":"x","properties":{"replicas":3,"ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{"replicas": json.Number("4")}, nil), false},
		{"a property Port has that the mapping no longer sets",
			`{"identifier":"x","title":"x","properties":{"url":"https://x","ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{}, nil), false},
		{"the default's value where Port holds null (made before the default)",
			`{"identifier":"x","title":"x","properties":{"tier":null,"ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{"tier": "gold"}, nil), false},
		{"the default's value where Port holds it",
			`{"identifier":"x","title":"x","properties":{"tier":"gold","ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{"tier": "gold"}, nil), true},
		{"a default overridden",
			`{"identifier":"x","title":"x","properties":{"tier":"gold","ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{"tier": "silver"}, nil), false},
		{"an array property's order",
			`{"identifier":"x","title":"x","properties":{"labels":{"a":[1,2]},"ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{"labels": map[string]any{"a": []any{json.Number("2"), json.Number("1")}}}, nil), false},
		{"a relation added",
			`{"identifier":"x","title":"x","properties":{"ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{}, map[string]any{"parent": "x"}), false},
		{"the title",
			`{"identifier":"x","title":"old","properties":{"ferryOwner":"humanitec"},"relations":{}}`,
			mapped("x", map[string]any{}, nil), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			s := e.sink()
			if err := s.EnsureBlueprints(t.Context(), []json.RawMessage{json.RawMessage(bp)}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"a", "b", "c"} {
				if err := e.srv.SeedEntity("svc", []byte(`{"identifier":"`+id+`","title":"`+id+`","properties":{"ferryOwner":"humanitec"}}`)); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.srv.SeedEntity("svc", []byte(tc.stored)); err != nil {
				t.Fatal(err)
			}
			e.srv.ResetRequests()
			for _, id := range []string{"a", "b", "c"} {
				if err := s.Write(t.Context(), mapped(id, map[string]any{}, nil)); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := e.run(s, nil, []sink.Entity{tc.mapped}, map[string]bool{"svc": true})
			if err != nil {
				t.Fatal(err)
			}
			sent := bulkSent(e)["svc first"]
			if tc.same && (sent != 0 || rep.Unchanged != 4) {
				t.Errorf("sent %d, unchanged %d; want 0 and 4", sent, rep.Unchanged)
			}
			if !tc.same && (sent != 1 || rep.Upserted != 1) {
				t.Errorf("sent %d, upserted %d; want 1 and 1", sent, rep.Upserted)
			}
		})
	}
}

// An entity of an adopted owner is written even when it is otherwise the
// same: it must be re-marked.
func TestAdoptedIsRewritten(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp)
	old := e.sink(func(c *Config) { c.Owner = "humanitec/old" })
	if _, err := e.run(old, bps, apps(3), nil); err != nil {
		t.Fatal(err)
	}
	e.srv.ResetRequests()
	rep, err := e.run(e.sink(func(c *Config) { c.AdoptOwners = []string{"humanitec/old"} }), bps, apps(3), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Upserted != 3 || rep.Adopted != 3 || rep.Unchanged != 0 {
		t.Errorf("upserted %d adopted %d unchanged %d, want 3, 3, 0", rep.Upserted, rep.Adopted, rep.Unchanged)
	}
	if owner := e.srv.Entity(bpApp, "app-0000")["properties"].(map[string]any)[OwnerProperty]; owner != "humanitec" {
		t.Errorf("owner %v", owner)
	}
}

// on_duplicate merge still merges when the earlier entity has moved from
// memory into the spool.
func TestMergeAcrossSpool(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	s := e.sink()
	if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp, bpEnv)); err != nil {
		t.Fatal(err)
	}
	env := func(rel any, status any, merge bool) sink.Entity {
		return sink.Entity{Blueprint: bpEnv, Merge: merge, Data: map[string]any{"identifier": "a/dev", "title": "dev",
			"properties": map[string]any{"lastDeploymentStatus": status}, "relations": map[string]any{"humanitecApplication": rel}}}
	}
	ents := []sink.Entity{app("a", nil), env("a", "succeeded", false)}
	ents = append(ents, apps(2*spoolBatch)...)
	ents = append(ents, env(nil, nil, true))
	rep, err := e.run(s, nil, ents, nil)
	if err != nil || rep.Upserted != len(ents)-1 {
		t.Fatalf("err %v report %+v", err, rep)
	}
	if got := e.srv.Entity(bpEnv, "a/dev")["properties"].(map[string]any)["lastDeploymentStatus"]; got != "succeeded" {
		t.Errorf("merged status %v, want the earlier non-null value", got)
	}
}

// The spool is a temporary file named for what it is, gone as soon as it
// is open (Unix) and in any case once the run finishes.
func TestSpoolRemoved(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, portsim.Options{})
	s := e.sink(func(c *Config) { c.SpoolDir = dir })
	if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp)); err != nil {
		t.Fatal(err)
	}
	for _, a := range apps(3 * spoolBatch) {
		if err := s.Write(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	left := func() []string {
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range des {
			out = append(out, d.Name())
		}
		return out
	}
	if s.spool == nil {
		t.Fatal("no spool after writing 768 entities")
	}
	switch names := left(); {
	case runtime.GOOS != "windows" && len(names) > 0:
		t.Errorf("spool dir holds %v while the spool is open; it should be unlinked at once", names)
	case len(names) > 2 || slices.ContainsFunc(names, func(n string) bool { return !strings.HasPrefix(n, SpoolPrefix) }):
		t.Errorf("spool dir holds %v; want at most the spool's two files", names)
	}
	rep, err := s.Finish(t.Context(), nil)
	if err != nil || rep.Upserted != 3*spoolBatch {
		t.Fatalf("err %v upserted %d", err, rep.Upserted)
	}
	if names := left(); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
	// A run that stops before Finish releases it with Close.
	for _, a := range apps(spoolBatch) {
		if err := s.Write(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if names := left(); len(names) != 0 {
		t.Errorf("left behind after Close: %v", names)
	}
}

func TestCanonEntity(t *testing.T) {
	def := &Blueprint{Identifier: "svc", Properties: map[string]Property{
		"n": {Type: "number"}, "s": {Type: "string", Default: "d"}, OwnerProperty: {Type: "string"},
	}, Relations: map[string]Relation{"many": {Target: "svc", Many: true}, "one": {Target: "svc"}}}
	enc := func(m map[string]any) string { return string(encodeCanon(canonEntity(def, m))) }
	// As Port answers a search: meta-properties, a calculated property,
	// nulls for what was not set.
	stored := map[string]any{"identifier": "x", "title": "X", "icon": nil, "team": []any{}, "blueprint": "svc",
		"createdAt": "2026-01-01T00:00:00Z", "updatedBy": "someone",
		"properties": map[string]any{"n": 2.0, "s": "d", "calc": "computed", OwnerProperty: "me"},
		"relations":  map[string]any{"many": []any{"b", "a", "a"}, "one": nil}}
	mapped := map[string]any{"identifier": "x", "title": "X",
		"properties": map[string]any{"n": json.Number("2"), OwnerProperty: "me"},
		"relations":  map[string]any{"many": []any{"a", "b"}}}
	// s: Port gave the default where the mapping has null, the same.
	if !sameAsStored(def, canonEntity(def, mapped), encodeCanon(canonEntity(def, stored))) {
		t.Errorf("stored %s\nmapped %s", enc(stored), enc(mapped))
	}
	// The default's value against Port's null is not the same.
	withS := map[string]any{"identifier": "x", "title": "X", "properties": map[string]any{"n": 2, "s": "d", OwnerProperty: "me"},
		"relations": map[string]any{"many": []any{"a", "b"}}}
	if sameAsStored(def, canonEntity(def, withS), encodeCanon(canonEntity(def, mapped))) {
		t.Error("s: the default's value taken for the null Port holds")
	}
	want := `{"identifier":"x","properties":{"ferryOwner":"me","n":2},"relations":{"many":["a","b"]},"title":"X"}`
	if got := enc(mapped); got != want {
		t.Errorf("canonical %s, want %s", got, want)
	}
	old, next := canonEntity(def, stored), canonEntity(def, map[string]any{"identifier": "x",
		"properties": map[string]any{"n": 3, OwnerProperty: "me"}, "relations": map[string]any{"one": "y", "many": []any{"a", "b"}}})
	changes := diffCanon(old, withStoredDefaults(def, next, old))
	var fields []string
	for _, c := range changes {
		fields = append(fields, fmt.Sprintf("%s:%v>%v", c.Field, c.Old, c.New))
	}
	if got := strings.Join(fields, " "); got != "title:X><nil> properties.n:2>3 relations.one:<nil>>y" {
		t.Errorf("diff %s", got)
	}
	if !slices.Equal(canonIDs("a"), []any{"a"}) || canonIDs([]any{}) != nil {
		t.Error("canonIDs")
	}
}

// A property with a default: Port gives the default to an entity created
// without the property, and (its docs say "created") keeps null on an
// update that sends null. The change check must neither take a value
// equal to the default for the null Port holds (it was never sent: lost)
// nor send a null every run that Port answers with the default.
func TestDefaultAgainstNull(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := []json.RawMessage{json.RawMessage(`{"identifier":"svc","title":"Service","schema":{"properties":{
		"tier":{"type":"string","default":"gold"}}}}`)}
	ent := func(tier any) []sink.Entity {
		return []sink.Entity{{Blueprint: "svc", Data: map[string]any{"identifier": "x", "title": "x",
			"properties": map[string]any{"tier": tier}, "relations": map[string]any{}}}}
	}
	steps := []struct {
		name string
		tier any
		sent int
		want any // tier in Port after the step
	}{
		{"created without it: Port gives the default", nil, 1, "gold"},
		{"rerun: the default Port gave is what null means", nil, 0, "gold"},
		{"another value", "silver", 1, "silver"},
		{"null on an update: Port holds null", nil, 1, nil},
		{"rerun: null against null", nil, 0, nil},
		{"the default's value against Port's null", "gold", 1, "gold"},
		{"rerun: the default's value against itself", "gold", 0, "gold"},
	}
	for i, st := range steps {
		if i > 0 {
			// The plan (dry-run) says the same.
			_, p := e.plan(e.sink(), bps, ent(st.tier), map[string]bool{"svc": true}, "")
			if n := len(p.Blueprints[0].Update); n != st.sent {
				t.Errorf("%s: plan updates %d (%+v), want %d", st.name, n, p.Blueprints[0].Update, st.sent)
			}
		}
		e.srv.ResetRequests()
		rep, err := e.run(e.sink(), bps, ent(st.tier), map[string]bool{"svc": true})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := e.srv.Entity("svc", "x")["properties"].(map[string]any)["tier"]
		if sent := bulkSent(e)["svc first"]; sent != st.sent || got != st.want {
			t.Errorf("%s: sent %d, Port holds %v; want %d and %v (report %+v)", st.name, sent, got, st.sent, st.want, rep)
		}
	}
}

// A default that is a number, an object or an array compares as Port
// keeps it (numbers as doubles: 1 and 1.0 alike): a null against the
// default Port gave is no change, and the default's value against Port's
// null is one.
func TestDefaultShapes(t *testing.T) {
	def, err := ParseBlueprint(json.RawMessage(`{"identifier":"svc","title":"Svc","schema":{"properties":{
	  "n":{"type":"number","default":1},
	  "o":{"type":"object","default":{"b":[1,{"c":2.0}],"a":"x"}},
	  "a":{"type":"array","default":[3,"y"]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ent := func(props string) map[string]any {
		p, err := decodeObject([]byte(props))
		if err != nil {
			t.Fatal(err)
		}
		return canonEntity(def, map[string]any{"identifier": "x", "title": "x", "properties": p, "relations": map[string]any{}})
	}
	defaults := `{"n":1.0,"o":{"a":"x","b":[1.0,{"c":2}]},"a":[3.0,"y"]}`
	nulls := `{"n":null,"o":null,"a":null}`
	for _, tc := range []struct {
		name         string
		next, stored string
		same         bool
	}{
		{"null against the defaults Port gave", nulls, defaults, true},
		{"absent against the defaults Port gave", `{}`, defaults, true},
		{"the defaults against themselves", defaults, defaults, true},
		{"the defaults against Port's null", defaults, nulls, false},
		{"one default against Port's null", `{"n":1}`, `{}`, false},
		{"null against another value", nulls, `{"n":2,"o":{"a":"x"},"a":[3]}`, false},
	} {
		if got := sameAsStored(def, ent(tc.next), encodeCanon(ent(tc.stored))); got != tc.same {
			t.Errorf("%s: same %v, want %v", tc.name, got, tc.same)
		}
	}
}
