package port

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// intercept puts a handler in front of the Port simulator: answer sees
// every request (its body read) and answers it itself by returning true;
// otherwise the simulator does. It returns the config change that points
// a sink at it.
func intercept(e *env, answer func(w http.ResponseWriter, r *http.Request, body []byte) bool) func(*Config) {
	e.t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if answer(w, r, body) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		e.srv.ServeHTTP(w, r)
	}))
	e.t.Cleanup(ts.Close)
	return func(c *Config) { c.BaseURL = ts.URL }
}

// secondPass reports whether r is a second-pass (merge) bulk write.
func secondPass(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, "/entities/bulk") && r.URL.Query().Get("merge") == "true"
}

func rawBlueprints(bodies ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(bodies))
	for i, b := range bodies {
		out[i] = json.RawMessage(b)
	}
	return out
}

func failedIDs(rep Report) []string {
	var out []string
	for _, e := range rep.Errors {
		out = append(out, e.Blueprint+":"+e.Identifier)
	}
	return out
}

// A second pass Port refuses per entity (a 207 naming it) fails that
// entity: it is in the report, not counted as upserted, and the run fails.
func TestAuditSecondPassRejectedPerEntity(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bad := "a/production/modules.api"
	mut := intercept(e, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if secondPass(r) {
			// From now on Port refuses this entity's writes: the first
			// pass went through, the second does not.
			e.srv.RejectEntity(bpGraph, bad, http.StatusUnprocessableEntity, "invalid_request", "second pass refused")
		}
		return false
	})
	ents := humanitecSet("a")
	rep, err := e.run(e.sink(mut), humanitecBlueprints(t, allBlueprints...), ents, completeAll())
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("Finish error %v, want ErrEntitiesFailed", err)
	}
	if got := failedIDs(rep); !slices.Equal(got, []string{bpGraph + ":" + bad}) {
		t.Errorf("failed %v, want only %s", got, bad)
	}
	if rep.Failed != 1 || rep.Upserted != len(ents)-1 || rep.Blueprints[bpGraph].Failed != 1 {
		t.Errorf("report %+v", rep)
	}
}

// A second-pass request Port refuses whole (400) fails every entity in it.
func TestAuditSecondPassRefusedWhole(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	mut := intercept(e, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if !secondPass(r) {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_request","message":"no"}`))
		return true
	})
	ents := humanitecSet("a")
	rep, err := e.run(e.sink(mut), humanitecBlueprints(t, allBlueprints...), ents, completeAll())
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("Finish error %v, want ErrEntitiesFailed", err)
	}
	// 2 envs × 2 nodes have dependencies.
	if rep.Failed != 4 || rep.Blueprints[bpGraph].Failed != 4 || rep.Upserted != len(ents)-4 {
		t.Errorf("report failed %d upserted %d %+v", rep.Failed, rep.Upserted, rep.Blueprints)
	}
}

// A second pass that keeps failing with 5xx (or 429) ends the run with an
// error.
func TestAuditSecondPassServerErrors(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusTooManyRequests} {
		e := newEnv(t, portsim.Options{})
		mut := intercept(e, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
			if !secondPass(r) {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"ok":false,"error":"x","message":"down"}`))
			return true
		})
		_, err := e.run(e.sink(mut, func(c *Config) { c.MaxAttempts = 2 }), humanitecBlueprints(t, allBlueprints...), humanitecSet("a"), completeAll())
		if err == nil {
			t.Errorf("%d: Finish succeeded", status)
		}
	}
}

// A second-pass answer that is 200 but does not mention every entity fails
// those it leaves out.
func TestAuditSecondPassAnswerLeavesOut(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	mut := intercept(e, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if !secondPass(r) {
			return false
		}
		rec := httptest.NewRecorder()
		r.Body = io.NopCloser(bytes.NewReader(body))
		e.srv.ServeHTTP(rec, r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"ok":true,"entities":[],"errors":[]}`))
		return true
	})
	rep, err := e.run(e.sink(mut), humanitecBlueprints(t, allBlueprints...), humanitecSet("a"), completeAll())
	if !errors.Is(err, ErrEntitiesFailed) || rep.Failed != 4 {
		t.Errorf("err %v failed %d, want ErrEntitiesFailed and 4", err, rep.Failed)
	}
}

// A cycle target that Port refuses in the first pass: an entity naming it
// in a cycle relation is reported under policy fail, and the relation is
// counted as dropped under drop.
func TestAuditCycleTargetRejected(t *testing.T) {
	for _, policy := range []RelationPolicy{RelationDrop, RelationFail} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			e.srv.RejectEntity(bpGraph, "a/production/dns", http.StatusUnprocessableEntity, "invalid_request", "rejected for the test")
			rep, err := e.run(e.sink(func(c *Config) { c.RelationPolicy = policy }), humanitecBlueprints(t, allBlueprints...), humanitecSet("a"), completeAll())
			if !errors.Is(err, ErrEntitiesFailed) {
				t.Fatalf("err %v", err)
			}
			got := failedIDs(rep)
			want := []string{bpGraph + ":a/production/dns"}
			if policy == RelationFail {
				want = []string{bpGraph + ":a/production/dns", bpGraph + ":a/production/externals.db", bpGraph + ":a/production/modules.api"}
			}
			if !slices.Equal(got, want) {
				t.Errorf("failed %v, want %v", got, want)
			}
			if policy == RelationDrop && rep.DroppedRelations != 2 {
				t.Errorf("dropped %d, want 2", rep.DroppedRelations)
			}
			rel := e.srv.Entity(bpGraph, "a/production/modules.api")["relations"].(map[string]any)[bpGraph]
			if policy == RelationDrop && !slices.Equal(rel.([]any), []any{"a/production/externals.db"}) {
				t.Errorf("modules.api relation %v", rel)
			}
		})
	}
}

// A many-relation to another blueprint with one target missing: the rest
// is kept, the missing one dropped (and counted) or the entity failed.
func TestAuditManyRelationPartlyMissing(t *testing.T) {
	bps := []string{
		`{"identifier":"lib","title":"Lib","schema":{"properties":{}},"relations":{}}`,
		`{"identifier":"svc","title":"Svc","schema":{"properties":{}},"relations":{"uses":{"title":"Uses","target":"lib","many":true,"required":false}}}`,
	}
	ents := []sink.Entity{
		{Blueprint: "lib", Data: map[string]any{"identifier": "l1", "properties": map[string]any{}, "relations": map[string]any{}}},
		{Blueprint: "lib", Data: map[string]any{"identifier": "l2", "properties": map[string]any{}, "relations": map[string]any{}}},
		{Blueprint: "svc", Data: map[string]any{"identifier": "s", "properties": map[string]any{}, "relations": map[string]any{"uses": []any{"l1", "ghost", "l2"}}}},
	}
	for _, policy := range []RelationPolicy{RelationDrop, RelationFail, RelationStub} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			rep, err := e.run(e.sink(func(c *Config) { c.RelationPolicy = policy }), rawBlueprints(bps...), ents, map[string]bool{"lib": true, "svc": true})
			got := e.srv.Entity("svc", "s")
			switch policy {
			case RelationDrop:
				if err != nil || rep.DroppedRelations != 1 {
					t.Fatalf("err %v dropped %d", err, rep.DroppedRelations)
				}
				if rel := got["relations"].(map[string]any)["uses"]; !slices.Equal(rel.([]any), []any{"l1", "l2"}) {
					t.Errorf("uses = %v", rel)
				}
			case RelationFail:
				if !errors.Is(err, ErrEntitiesFailed) || got != nil || !slices.Equal(failedIDs(rep), []string{"svc:s"}) {
					t.Errorf("err %v entity %v failed %v", err, got, failedIDs(rep))
				}
			case RelationStub:
				if err != nil || e.srv.Entity("lib", "ghost") == nil {
					t.Errorf("err %v, stub %v", err, e.srv.Entity("lib", "ghost"))
				}
				if rel := got["relations"].(map[string]any)["uses"]; !slices.Equal(rel.([]any), []any{"l1", "ghost", "l2"}) {
					t.Errorf("uses = %v", rel)
				}
			}
		})
	}
}

// pairBlueprints relate to each other (single relations), and svc to
// itself (many): every relation lies in a cycle.
var pairBlueprints = []string{
	`{"identifier":"db","title":"Db","schema":{"properties":{"v":{"type":"string"}}},"relations":{"svc":{"title":"Svc","target":"svc","many":false,"required":false}}}`,
	`{"identifier":"svc","title":"Svc","schema":{"properties":{"v":{"type":"string"}}},"relations":{"db":{"title":"Db","target":"db","many":false,"required":false},"calls":{"title":"Calls","target":"svc","many":true,"required":false}}}`,
}

func pairSet(v string) []sink.Entity {
	return []sink.Entity{
		{Blueprint: "svc", Data: map[string]any{"identifier": `ä\x`, "properties": map[string]any{"v": v}, "relations": map[string]any{"db": "d:1", "calls": []any{`ä\x`, "s/2"}}}},
		{Blueprint: "svc", Data: map[string]any{"identifier": "s/2", "properties": map[string]any{"v": v}, "relations": map[string]any{"db": "d:1", "calls": []any{`ä\x`}}}},
		{Blueprint: "db", Data: map[string]any{"identifier": "d:1", "properties": map[string]any{"v": v}, "relations": map[string]any{"svc": "s/2"}}},
	}
}

func pairComplete() map[string]bool { return map[string]bool{"svc": true, "db": true} }

// Entities relating to each other across two blueprints and to
// themselves, with identifiers that need escaping in JSON: every relation
// arrives, a rerun sends nothing, and a rerun with one second pass refused
// reports it and deletes nothing.
func TestAuditTwoBlueprintCycle(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	rep, err := e.run(e.sink(), rawBlueprints(pairBlueprints...), pairSet("1"), pairComplete())
	if err != nil || rep.Upserted != 3 {
		t.Fatalf("err %v report %+v", err, rep)
	}
	check := func(bp, id, rel string, want any) {
		t.Helper()
		ent := e.srv.Entity(bp, id)
		if ent == nil {
			t.Fatalf("%s %s missing", bp, id)
		}
		got := ent["relations"].(map[string]any)[rel]
		if l, ok := got.([]any); ok {
			if !slices.Equal(l, want.([]any)) {
				t.Errorf("%s %s %s = %v, want %v", bp, id, rel, got, want)
			}
		} else if got != want {
			t.Errorf("%s %s %s = %v, want %v", bp, id, rel, got, want)
		}
	}
	all := func() {
		t.Helper()
		check("svc", `ä\x`, "db", "d:1")
		check("svc", `ä\x`, "calls", []any{`ä\x`, "s/2"})
		check("svc", "s/2", "db", "d:1")
		check("svc", "s/2", "calls", []any{`ä\x`})
		check("db", "d:1", "svc", "s/2")
	}
	all()
	e.srv.ResetRequests()
	rep, err = e.run(e.sink(), nil, pairSet("1"), pairComplete())
	if err != nil || rep.Unchanged != 3 || len(bulkSent(e)) != 0 {
		t.Fatalf("rerun: err %v report %+v sent %v", err, rep, bulkSent(e))
	}
	mut := intercept(e, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if secondPass(r) {
			e.srv.RejectEntity("svc", "s/2", http.StatusUnprocessableEntity, "invalid_request", "second pass refused")
		}
		return false
	})
	rep, err = e.run(e.sink(mut), nil, pairSet("2"), pairComplete())
	if !errors.Is(err, ErrEntitiesFailed) || !slices.Equal(failedIDs(rep), []string{"svc:s/2"}) || rep.Deleted != 0 {
		t.Fatalf("changed rerun: err %v failed %v deleted %d", err, failedIDs(rep), rep.Deleted)
	}
	if e.srv.Entity("svc", "s/2") == nil || e.srv.Entity("db", "d:1") == nil {
		t.Fatal("an entity is gone")
	}
}

// A self-relation (second pass) naming a node that is neither in the run
// nor in Port follows the policy like any relation: dropped and counted,
// a stub, or the entity failed (it was written in the first pass, without
// its cycle relations; it is reported, not counted as upserted). A node
// naming itself keeps the relation.
func TestAuditSelfRelationMissingTarget(t *testing.T) {
	ents := []sink.Entity{
		{Blueprint: bpGraph, Data: map[string]any{"identifier": "n1", "properties": map[string]any{}, "relations": map[string]any{bpGraph: []any{"n1", "ghost", "n2"}}}},
		{Blueprint: bpGraph, Data: map[string]any{"identifier": "n2", "properties": map[string]any{}, "relations": map[string]any{bpGraph: []any{}}}},
	}
	for _, policy := range []RelationPolicy{RelationDrop, RelationFail, RelationStub} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			rep, err := e.run(e.sink(func(c *Config) { c.RelationPolicy = policy }), humanitecBlueprints(t, bpApp, bpEnv, bpGraph), ents, map[string]bool{bpGraph: true})
			rel := e.srv.Entity(bpGraph, "n1")["relations"].(map[string]any)[bpGraph]
			switch policy {
			case RelationDrop:
				if err != nil || rep.DroppedRelations != 1 || rep.Upserted != 2 || !slices.Equal(rel.([]any), []any{"n1", "n2"}) {
					t.Errorf("err %v report %+v relation %v", err, rep, rel)
				}
			case RelationFail:
				if !errors.Is(err, ErrEntitiesFailed) || !slices.Equal(failedIDs(rep), []string{bpGraph + ":n1"}) || rep.Upserted != 1 || rep.Blueprints[bpGraph].Failed != 1 {
					t.Errorf("err %v report %+v", err, rep)
				}
			case RelationStub:
				if err != nil || rep.Upserted != 2 || e.srv.Entity(bpGraph, "ghost") == nil || !slices.Equal(rel.([]any), []any{"n1", "ghost", "n2"}) {
					t.Errorf("err %v report %+v relation %v", err, rep, rel)
				}
			}
		})
	}
}

// A node the run no longer produces but an unchanged node still names in
// its self-relation (kept: Port holds it) is not stale: deleting it would
// take the relation with it.
func TestAuditCycleTargetOfUnchangedKept(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	n := func(id string, deps ...any) sink.Entity {
		if deps == nil {
			deps = []any{}
		}
		return sink.Entity{Blueprint: bpGraph, Data: map[string]any{"identifier": id, "properties": map[string]any{}, "relations": map[string]any{bpGraph: deps}}}
	}
	bps := humanitecBlueprints(t, bpApp, bpEnv, bpGraph)
	complete := map[string]bool{bpGraph: true}
	if _, err := e.run(e.sink(), bps, []sink.Entity{n("n1", "n2"), n("n2"), n("n3")}, complete); err != nil {
		t.Fatal(err)
	}
	rep, err := e.run(e.sink(), nil, []sink.Entity{n("n1", "n2"), n("n3")}, complete)
	if err != nil || rep.Unchanged != 2 || rep.Deleted != 0 || e.srv.Entity(bpGraph, "n2") == nil {
		t.Fatalf("err %v report %+v", err, rep)
	}
	// Once nothing names it, it goes.
	rep, err = e.run(e.sink(), nil, []sink.Entity{n("n1"), n("n3")}, complete)
	if err != nil || rep.Deleted != 1 || e.srv.Entity(bpGraph, "n2") != nil {
		t.Fatalf("err %v report %+v", err, rep)
	}
}

// A stub Port made for a relation (missing_relations: stub) has no owner:
// the run that first produces that entity finds it unowned and does not
// overwrite it. The failure names the stub as a likely maker, and only
// where the spec lets Port make stubs of that blueprint.
func TestStubLaterProducedIsNamedInConflict(t *testing.T) {
	bps := rawBlueprints(
		`{"identifier":"lib","title":"Lib","schema":{"properties":{}},"relations":{}}`,
		`{"identifier":"svc","title":"Svc","schema":{"properties":{}},"relations":{"uses":{"title":"Uses","target":"lib","many":true,"required":false}}}`,
	)
	svc := sink.Entity{Blueprint: "svc", Data: map[string]any{"identifier": "s", "properties": map[string]any{}, "relations": map[string]any{"uses": []any{"l1"}}}}
	lib := sink.Entity{Blueprint: "lib", Data: map[string]any{"identifier": "l1", "title": "Lib one", "properties": map[string]any{}, "relations": map[string]any{}}}
	for _, policy := range []RelationPolicy{RelationStub, RelationDrop} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			withPolicy := e.sink(func(c *Config) { c.RelationPolicy = policy })
			if _, err := e.run(withPolicy, bps, []sink.Entity{svc}, map[string]bool{"svc": true}); err != nil {
				t.Fatalf("first run: %v", err)
			}
			if policy == RelationDrop { // made by hand, unowned as a stub is
				if err := e.srv.SeedEntity("lib", []byte(`{"identifier":"l1","title":"by hand"}`)); err != nil {
					t.Fatal(err)
				}
			}
			if e.srv.Entity("lib", "l1") == nil {
				t.Fatal("no l1 in Port after the first run")
			}
			rep, err := e.run(e.sink(func(c *Config) { c.RelationPolicy = policy }), bps, []sink.Entity{svc, lib}, map[string]bool{"svc": true, "lib": true})
			if !errors.Is(err, ErrEntitiesFailed) || !slices.Equal(failedIDs(rep), []string{"lib:l1"}) {
				t.Fatalf("err %v, failed %v", err, failedIDs(rep))
			}
			if named := strings.Contains(rep.Errors[0].Message, "stub"); named != (policy == RelationStub) {
				t.Errorf("policy %s: message %q names a stub: %v", policy, rep.Errors[0].Message, named)
			}
		})
	}
}

// Merging a relation's identifiers with what is not an identifier (a
// search query, a number) cannot be a union: the entity fails, naming the
// relation, rather than the merge dropping the part it cannot hold.
func TestMergeKeepsWhatItCannotUnion(t *testing.T) {
	bps := rawBlueprints(
		`{"identifier":"lib","title":"Lib","schema":{"properties":{}},"relations":{}}`,
		`{"identifier":"svc","title":"Svc","schema":{"properties":{}},"relations":{"uses":{"title":"Uses","target":"lib","many":true,"required":false}}}`,
	)
	part := func(uses any, merge bool) sink.Entity {
		return sink.Entity{Blueprint: "svc", Merge: merge, Data: map[string]any{"identifier": "s", "properties": map[string]any{}, "relations": map[string]any{"uses": uses}}}
	}
	lib := sink.Entity{Blueprint: "lib", Data: map[string]any{"identifier": "l1", "properties": map[string]any{}, "relations": map[string]any{}}}
	query := map[string]any{"combinator": "and", "rules": []any{}}
	for name, second := range map[string]any{"query": query, "number in list": []any{json.Number("7")}, "number": json.Number("7")} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			rep, err := e.run(e.sink(), bps, []sink.Entity{lib, part([]any{"l1"}, false), part(second, true)}, map[string]bool{"svc": true, "lib": true})
			if !errors.Is(err, ErrEntitiesFailed) || !slices.Equal(failedIDs(rep), []string{"svc:s"}) || !strings.Contains(rep.Errors[0].Message, "relations.uses") {
				t.Fatalf("err %v, failed %v (%+v), entity in Port %v", err, failedIDs(rep), rep.Errors, e.srv.Entity("svc", "s"))
			}
		})
	}
}
