package port

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// Port's search is eventually consistent: entities another owner wrote
// moments ago (or is writing now, in a run beside this one) are not in
// the ownership lookup's answer. Writing them anyway would take them over
// without a word; every one must instead be a Conflict naming its owner,
// and stay as that owner wrote it.
// Port's refusal may come per entity (207) or, undocumented, for the
// whole request: both are checked.
func TestSearchLagNoTakeover(t *testing.T) {
	for _, whole := range []bool{false, true} {
		t.Run(map[bool]string{false: "per entity", true: "whole request"}[whole], func(t *testing.T) {
			searchLagNoTakeover(t, whole)
		})
	}
}

func searchLagNoTakeover(t *testing.T, whole bool) {
	e := newEnv(t, portsim.Options{SearchLag: time.Hour})
	bps := humanitecBlueprints(t, bpApp, bpEnv, bpWork, bpGraph)
	set := humanitecSet("a1")
	if _, err := e.run(e.sink(func(c *Config) { c.Owner = "org-a" }), bps, set, completeAll()); err != nil {
		t.Fatal(err)
	}
	if whole {
		e.srv.InjectFault(portsim.Fault{Method: "POST", Path: "*/entities/bulk", Kind: portsim.FaultStatus, Status: 409})
	}
	rep, err := e.run(e.sink(func(c *Config) { c.Owner = "org-b" }), nil, set, completeAll())
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Errorf("org-b: err %v, want its entities failed", err)
	}
	if len(rep.Conflicts) != len(set) {
		t.Errorf("org-b: %d conflicts, want %d: %+v", len(rep.Conflicts), len(set), rep)
	}
	for _, c := range rep.Conflicts {
		if c.Owner != "org-a" {
			t.Errorf("conflict %+v, want owner org-a", c)
		}
	}
	for _, ent := range set {
		id := ent.Data["identifier"].(string)
		got := e.srv.Entity(ent.Blueprint, id)
		if owner := got["properties"].(map[string]any)[OwnerProperty]; owner != "org-a" {
			t.Errorf("%s %s: owner %v, want org-a's entity left alone", ent.Blueprint, id, owner)
		}
	}
}

// The run's own entities that search does not show yet — written by the
// run before, moments ago, or by this run's own request whose answer was
// lost and which was sent again — are refused by a create, read back as
// the run's own and written: no failure, no conflict.
func TestSearchLagOwnEntitiesWritten(t *testing.T) {
	e := newEnv(t, portsim.Options{SearchLag: time.Hour})
	bps := humanitecBlueprints(t, bpApp, bpEnv, bpWork, bpGraph)
	set := humanitecSet("a1")
	if _, err := e.run(e.sink(), bps, set, completeAll()); err != nil {
		t.Fatal(err)
	}
	// This time the first environment request is applied and its answer lost.
	e.srv.InjectFault(portsim.Fault{Method: "POST", Path: "/v1/blueprints/" + bpEnv + "/entities/bulk", Times: 1, Kind: portsim.FaultDrop})
	set[0].Data["title"] = "App a1, renamed"
	more := append(set, humanitecSet("a2")...)
	rep, err := e.run(e.sink(), nil, more, completeAll())
	if err != nil || rep.Failed != 0 || len(rep.Conflicts) != 0 {
		t.Fatalf("rerun: err %v, report %+v", err, rep)
	}
	if got := e.srv.Entity(bpApp, "a1")["title"]; got != "App a1, renamed" {
		t.Errorf("a1's title %v, want the rerun's", got)
	}
	if e.srv.Entity(bpEnv, "a2/production") == nil {
		t.Error("a2/production not written")
	}
}

// A create Port answers with success but "created": false (undocumented:
// the entity existed and was not written) is read back as a refusal is:
// another owner's is a Conflict, not counted written, and left as it is.
func TestCreatedFalseRechecked(t *testing.T) {
	e := newEnv(t, portsim.Options{SearchLag: time.Hour, CreateExistingUnwritten: true})
	bps := humanitecBlueprints(t, bpApp, bpEnv, bpWork, bpGraph)
	set := humanitecSet("a1")
	if _, err := e.run(e.sink(func(c *Config) { c.Owner = "org-a" }), bps, set, completeAll()); err != nil {
		t.Fatal(err)
	}
	rep, err := e.run(e.sink(func(c *Config) { c.Owner = "org-b" }), nil, set, completeAll())
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Errorf("org-b: err %v, want its entities failed", err)
	}
	if len(rep.Conflicts) != len(set) || rep.Upserted != 0 {
		t.Errorf("org-b: %d conflicts, %d upserted, want %d conflicts and none upserted: %+v", len(rep.Conflicts), rep.Upserted, len(set), rep)
	}
	for _, c := range rep.Conflicts {
		if c.Owner != "org-a" {
			t.Errorf("conflict %+v, want owner org-a", c)
		}
	}
	// The run's own entities answered so are written by an upsert.
	set[0].Data["title"] = "App a1, renamed"
	rep, err = e.run(e.sink(func(c *Config) { c.Owner = "org-a" }), nil, set, completeAll())
	if err != nil || rep.Failed != 0 || len(rep.Conflicts) != 0 {
		t.Fatalf("org-a again: err %v, report %+v", err, rep)
	}
	if got := e.srv.Entity(bpApp, "a1")["title"]; got != "App a1, renamed" {
		t.Errorf("a1's title %v, want the rerun's", got)
	}
}

// A create request Port refuses whole for what is about the request, not
// an entity (401, 403, 404, a 429 left after retries), fails its entities
// with Port's answer as an upsert's refusal does: reading back each entity
// by GET would change nothing but cost a request per entity of the run.
func TestCreateRefusedForTheRequestNotRechecked(t *testing.T) {
	for _, status := range []int{401, 403, 404, 429} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t, portsim.Options{SearchLag: time.Hour})
			bps := humanitecBlueprints(t, bpApp, bpEnv, bpWork, bpGraph)
			set := humanitecSet("a1")
			if _, err := e.run(e.sink(), bps, set[:1], completeAll()); err != nil {
				t.Fatal(err)
			}
			e.srv.InjectFault(portsim.Fault{Method: "POST", Path: "*/entities/bulk", Kind: portsim.FaultStatus, Status: status})
			e.srv.ResetRequests()
			rep, err := e.run(e.sink(), nil, set, completeAll())
			if !errors.Is(err, ErrEntitiesFailed) && err == nil {
				t.Errorf("err %v, want the entities failed", err)
			}
			if rep.Failed != len(set) || rep.Upserted != 0 {
				t.Errorf("%d failed, %d upserted, want %d failed: %+v", rep.Failed, rep.Upserted, len(set), rep)
			}
			// Relation targets search does not show are read by GET as
			// ever (applications, environments); workloads and resource
			// graphs are no one's target here.
			gets := 0
			for _, r := range e.srv.Requests() {
				if r.Method == "GET" && (strings.HasPrefix(r.Path, "/v1/blueprints/"+bpWork+"/entities/") || strings.HasPrefix(r.Path, "/v1/blueprints/"+bpGraph+"/entities/")) {
					gets++
				}
			}
			if gets != 0 {
				t.Errorf("%d entities read by GET after a %d, want none", gets, status)
			}
		})
	}
}

// A create Port refuses whole because one of its entities exists (the
// undocumented form) writes none of the others: those Port does not hold
// are sent again without the existing ones, not failed for another's
// refusal.
func TestCreateRefusedWholeOthersWritten(t *testing.T) {
	e := newEnv(t, portsim.Options{SearchLag: time.Hour, CreateExistingRefusesRequest: true})
	bps := humanitecBlueprints(t, bpApp, bpEnv, bpWork, bpGraph)
	a1 := humanitecSet("a1")
	if _, err := e.run(e.sink(func(c *Config) { c.Owner = "org-a" }), bps, a1, completeAll()); err != nil {
		t.Fatal(err)
	}
	a2 := humanitecSet("a2")
	rep, err := e.run(e.sink(func(c *Config) { c.Owner = "org-b" }), nil, append(a1, a2...), completeAll())
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Errorf("org-b: err %v, want a1's entities failed", err)
	}
	if len(rep.Conflicts) != len(a1) || rep.Failed != len(a1) || rep.Upserted != len(a2) {
		t.Errorf("org-b: %d conflicts, %d failed, %d upserted; want %d, %d, %d: %+v", len(rep.Conflicts), rep.Failed, rep.Upserted, len(a1), len(a1), len(a2), rep)
	}
	for _, ent := range a2 {
		id := ent.Data["identifier"].(string)
		got := e.srv.Entity(ent.Blueprint, id)
		if got == nil || got["properties"].(map[string]any)[OwnerProperty] != "org-b" {
			t.Errorf("%s %s: %v, want written by org-b", ent.Blueprint, id, got)
		}
	}
}

// A create refused whole (409) though Port holds none of its entities is
// not sent again: its entities fail with Port's answer, once each.
func TestCreateRefusedWholeForNoneFails(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp, bpEnv, bpWork, bpGraph)
	set := humanitecSet("a1")
	if _, err := e.run(e.sink(), bps, set[:0], completeAll()); err != nil {
		t.Fatal(err)
	}
	e.srv.InjectFault(portsim.Fault{Method: "POST", Path: "*/entities/bulk", Kind: portsim.FaultStatus, Status: 409})
	e.srv.ResetRequests()
	rep, err := e.run(e.sink(), nil, set, completeAll())
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Errorf("err %v, want the entities failed", err)
	}
	if rep.Failed != len(set) || rep.Upserted != 0 || len(rep.Conflicts) != 0 {
		t.Errorf("%d failed, %d upserted, %d conflicts; want %d failed: %+v", rep.Failed, rep.Upserted, len(rep.Conflicts), len(set), rep)
	}
	if n := e.srv.CountRequests("POST", "*/entities/bulk"); n > len(set) {
		t.Errorf("%d bulk requests for %d entities, want each sent once", n, len(set))
	}
}

// A stub Port made moments ago (search not showing it yet) is found by the
// recheck, not the lookup: its conflict still says it may be a stub.
func TestStubFoundByRecheckSaysStub(t *testing.T) {
	node := func(id string, deps ...any) sink.Entity {
		return sink.Entity{Blueprint: bpGraph, Data: map[string]any{"identifier": id, "properties": map[string]any{}, "relations": map[string]any{bpGraph: append([]any{}, deps...)}}}
	}
	e := newEnv(t, portsim.Options{SearchLag: time.Hour})
	stub := func(c *Config) { c.RelationPolicy = RelationStub }
	bps := humanitecBlueprints(t, bpApp, bpEnv, bpGraph)
	if _, err := e.run(e.sink(stub), bps, []sink.Entity{node("n1", "ghost")}, nil); err != nil || e.srv.Entity(bpGraph, "ghost") == nil {
		t.Fatalf("first load: err %v", err)
	}
	rep, err := e.run(e.sink(stub), bps, []sink.Entity{node("n1", "ghost"), node("ghost")}, nil)
	if !errors.Is(err, ErrEntitiesFailed) || !slices.Equal(rep.Conflicts, []Conflict{{Blueprint: bpGraph, Identifier: "ghost", Owner: ""}}) {
		t.Fatalf("second run: err %v, conflicts %+v", err, rep.Conflicts)
	}
	if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Message, "stub") {
		t.Errorf("errors %+v, want the conflict to say the entity may be a stub", rep.Errors)
	}
}
