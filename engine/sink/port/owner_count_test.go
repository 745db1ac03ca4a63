package port

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// lookups counts the ownership searches of identifiers a run made.
func lookups(srv *portsim.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/entities/search") && strings.Contains(string(r.Body), `"$identifier"`) {
			n++
		}
	}
	return n
}

// A first load into a blueprint Port holds no entity of looks no
// identifier up: none can be another's. Every entity is written.
func TestFirstLoadLooksNothingUp(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), apps(450), nil)
	if err != nil || rep.Upserted != 450 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	if n := lookups(e.srv); n != 0 {
		t.Errorf("%d ownership lookups, want none: Port held no app", n)
	}
	if n := e.srv.CountRequests("GET", "/v1/blueprints/"+bpApp+"/entities-count"); n != 1 {
		t.Errorf("%d entity counts asked, want 1", n)
	}
}

// Port holding any entity of the blueprint, or a count that cannot be
// read, leaves every identifier to its lookup: the foreign ones among
// the run's are found and not written over.
func TestLookupsWhenPortHoldsSomeOrCannotCount(t *testing.T) {
	for name, fault := range map[string]*portsim.Fault{
		"holds some":     nil,
		"count fails":    {Path: "*/entities-count", Kind: portsim.FaultStatus, Status: 404},
		"count garbled":  {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":true,"count":"0"}`},
		"count missing":  {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":true}`},
		"count refused":  {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":false,"count":0}`},
		"count not JSON": {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `0`},
		// encoding/json keeps a repeated key's last value and matches keys
		// whatever their case: neither answer is Port's, so neither is 0.
		"count repeated": {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":true,"count":7,"count":0}`},
		"count miscased": {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":true,"COUNT":0}`},
		"ok repeated":    {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":false,"ok":true,"count":0}`},
		"count fraction": {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":true,"count":1e-9}`},
		"count huge":     {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":true,"count":1e400}`},
		"count null":     {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":true,"count":null}`},
		"count negative": {Path: "*/entities-count", Kind: portsim.FaultBody, Body: `{"ok":true,"count":-1}`},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			s := e.sink()
			if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp)); err != nil {
				t.Fatal(err)
			}
			ents := apps(150)
			if fault == nil {
				seedForeign(t, e)
				ents = append(ents, app("manual", nil), app("theirs", nil))
			} else {
				e.srv.InjectFault(*fault)
			}
			rep, err := e.run(s, nil, ents, nil)
			if n := lookups(e.srv); n < 2 {
				t.Errorf("%d ownership lookups, want every identifier looked up (2 searches or more)", n)
			}
			if fault != nil {
				if err != nil || rep.Upserted != 150 {
					t.Errorf("err %v, report %+v", err, rep)
				}
				return
			}
			if !errors.Is(err, ErrEntitiesFailed) {
				t.Fatalf("err = %v, want the conflicts to fail the run", err)
			}
			want := []Conflict{{Blueprint: bpApp, Identifier: "manual", Owner: ""}, {Blueprint: bpApp, Identifier: "theirs", Owner: "humanitec/org-b"}}
			if !slices.Equal(rep.Conflicts, want) {
				t.Errorf("conflicts %+v, want %+v", rep.Conflicts, want)
			}
			if title := e.srv.Entity(bpApp, "manual")["title"]; title != "made by hand" {
				t.Errorf("manual entity overwritten: title %v", title)
			}
		})
	}
}

// The count is read after every blueprint's listing, just before the
// lookups it spares would be made: an entity another tool makes in one
// blueprint while another blueprint is being listed is counted, and found
// a conflict, as the lookups made after the listings found it before.
func TestCountReadAfterEveryListing(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	e.cfg.Concurrency = 1 // one listing after the other, in blueprint order
	s := e.sink()
	if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, allBlueprints...)); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	e.srv.SetFaultFunc(func(method, path string, body []byte) *portsim.Fault {
		// bpApp is listed first; while bpEnv is listed, org-b makes an app
		// this run is about to write.
		if method == "POST" && strings.HasSuffix(path, "/"+bpEnv+"/entities/search") {
			once.Do(func() {
				if err := e.srv.SeedEntity(bpApp, []byte(`{"identifier":"a1","title":"theirs","properties":{"ferryOwner":"humanitec/org-b"}}`)); err != nil {
					t.Error(err)
				}
			})
		}
		return nil
	})
	rep, err := e.run(s, nil, humanitecSet("a1", "a2"), nil)
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("err = %v, want the conflict to fail the run", err)
	}
	if want := []Conflict{{Blueprint: bpApp, Identifier: "a1", Owner: "humanitec/org-b", Stream: "apps"}}; !slices.Equal(rep.Conflicts, want) {
		t.Errorf("conflicts %+v, want %+v", rep.Conflicts, want)
	}
	if title := e.srv.Entity(bpApp, "a1")["title"]; title != "theirs" {
		t.Errorf("org-b's app taken over: title %v", title)
	}
}

// A rerun whose listing holds every identifier it writes has nothing to
// look up, so it does not ask for the count either: a steady catalog costs
// no request for ownership beyond its listings.
func TestSteadyRerunAsksNoCount(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	if _, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), apps(50), nil); err != nil {
		t.Fatal(err)
	}
	e.srv.ResetRequests()
	rep, err := e.run(e.sink(), humanitecBlueprints(t, bpApp), apps(50), nil)
	if err != nil || rep.Unchanged != 50 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	if n := e.srv.CountRequests("GET", "/v1/blueprints/"+bpApp+"/entities-count"); n != 0 {
		t.Errorf("%d entity counts asked, want none: nothing to look up", n)
	}
}

// The count's answer reads as "holds none" in Port's shape, a zero however
// spelled, whatever else it holds; anything else does not.
func TestCountsNone(t *testing.T) {
	for body, want := range map[string]bool{
		`{"ok":true,"count":0}`:                true,
		` {"count":0.0,"ok":true,"extra":[1]}`: true,
		`{"ok":true,"count":-0}`:               true,
		`{"ok":true,"count":0e3}`:              true,
		`{"ok":true,"count":1}`:                false,
		`{"ok":true,"count":0,"Count":1}`:      false, // a key another reader would take for count
		`{"ok":true,"ok":true,"count":0}`:      false,
		`{"ok":true,"count":0,"count":0}`:      false,
		`{"ok":true,"count":0} x`:              false,
		`{"ok":true,"count":0}{}`:              false,
		`{"ok":true,"count":[0]}`:              false,
		`{"ok":1,"count":0}`:                   false,
		`[{"ok":true,"count":0}]`:              false,
		``:                                     false,
	} {
		if got := countsNone([]byte(body)); got != want {
			t.Errorf("countsNone(%s) = %v, want %v", body, got, want)
		}
	}
}

// A stub Port makes during a first load (missing_relations: stub) is made
// after the count, by the run's own writes, for a target the run does not
// produce; the next run that produces it counts the blueprint's entities,
// looks it up, and finds it unowned: a conflict naming the stub, not a
// takeover.
func TestStubOfAFirstLoadIsAConflictNext(t *testing.T) {
	node := func(id string, deps ...any) sink.Entity {
		return sink.Entity{Blueprint: bpGraph, Data: map[string]any{"identifier": id, "properties": map[string]any{}, "relations": map[string]any{bpGraph: append([]any{}, deps...)}}}
	}
	e := newEnv(t, portsim.Options{})
	stub := func(c *Config) { c.RelationPolicy = RelationStub }
	bps := humanitecBlueprints(t, bpApp, bpEnv, bpGraph)
	rep, err := e.run(e.sink(stub), bps, []sink.Entity{node("n1", "ghost", "n2"), node("n2")}, nil)
	if err != nil || rep.Upserted != 2 || len(rep.Conflicts) != 0 || e.srv.Entity(bpGraph, "ghost") == nil {
		t.Fatalf("first load: err %v, report %+v", err, rep)
	}
	rep, err = e.run(e.sink(stub), bps, []sink.Entity{node("n1", "ghost", "n2"), node("n2"), node("ghost")}, nil)
	if !errors.Is(err, ErrEntitiesFailed) || !slices.Equal(rep.Conflicts, []Conflict{{Blueprint: bpGraph, Identifier: "ghost", Owner: ""}}) {
		t.Fatalf("second run: err %v, conflicts %+v", err, rep.Conflicts)
	}
	if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Message, "stub") {
		t.Errorf("errors %+v, want the conflict to say the entity may be a stub", rep.Errors)
	}
	if owner, _ := ownerOf(t, e.srv, bpGraph, "ghost"); owner != "" {
		t.Errorf("stub taken over by %q", owner)
	}
}
