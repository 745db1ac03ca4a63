package port

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

func app(id string, props map[string]any) sink.Entity {
	if props == nil {
		props = map[string]any{}
	}
	return sink.Entity{Blueprint: bpApp, Data: map[string]any{"identifier": id, "properties": props}}
}

func ownerOf(t *testing.T, srv *portsim.Server, bp, id string) (string, bool) {
	t.Helper()
	e := srv.Entity(bp, id)
	if e == nil {
		t.Fatalf("%s %s is gone", bp, id)
	}
	o, ok := e["properties"].(map[string]any)[OwnerProperty].(string)
	return o, ok
}

// seedForeign puts an entity made by hand (no owner) and one of another
// ferry owner into bpApp, as they would be before the run.
func seedForeign(t *testing.T, e *env) {
	t.Helper()
	for _, body := range []string{
		`{"identifier":"manual","title":"made by hand","properties":{}}`,
		`{"identifier":"theirs","title":"theirs","properties":{"ferryOwner":"humanitec/org-b"}}`,
		`{"identifier":"theirs-stale","properties":{"ferryOwner":"humanitec/org-b"}}`,
	} {
		if err := e.srv.SeedEntity(bpApp, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNoTakeovers(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp)
	if err := e.srv.SeedBlueprint(bps[0]); err != nil {
		t.Fatal(err)
	}
	s := e.sink()
	if err := s.EnsureBlueprints(t.Context(), bps); err != nil { // adds ferryOwner
		t.Fatal(err)
	}
	seedForeign(t, e)
	mine := []sink.Entity{app("manual", nil), app("theirs", nil), app("new", nil), app("new-2", nil)}
	rep, err := e.run(s, nil, mine, map[string]bool{bpApp: true})
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("err = %v, want the conflicts to fail the run", err)
	}
	want := []Conflict{{Blueprint: bpApp, Identifier: "manual", Owner: ""}, {Blueprint: bpApp, Identifier: "theirs", Owner: "humanitec/org-b"}}
	if !slices.Equal(rep.Conflicts, want) {
		t.Errorf("conflicts %+v, want %+v", rep.Conflicts, want)
	}
	if rep.Failed != 2 || rep.Upserted != 2 || len(rep.Errors) != 2 || !strings.Contains(rep.Errors[1].Message, `owned by "humanitec/org-b"`) {
		t.Errorf("report %+v", rep)
	}
	// Neither was touched.
	if o, ok := ownerOf(t, e.srv, bpApp, "manual"); ok {
		t.Errorf("manual entity now owned by %q", o)
	}
	if title := e.srv.Entity(bpApp, "manual")["title"]; title != "made by hand" {
		t.Errorf("manual entity overwritten: title %v", title)
	}
	if o, _ := ownerOf(t, e.srv, bpApp, "theirs"); o != "humanitec/org-b" {
		t.Errorf("their entity now owned by %q", o)
	}
	if rep.Owner != "humanitec" {
		t.Errorf("report owner %q", rep.Owner)
	}
	// A later run that no longer produces them deletes nothing of theirs.
	rep, err = e.run(e.sink(), nil, []sink.Entity{app("new", nil)}, map[string]bool{bpApp: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"manual", "theirs", "theirs-stale"} {
		if e.srv.Entity(bpApp, id) == nil {
			t.Errorf("%s deleted", id)
		}
	}
	if rep.Deleted != 1 || e.srv.Entity(bpApp, "new-2") != nil {
		t.Errorf("deleted %d, want only our stale new-2", rep.Deleted)
	}
}

func TestAdopt(t *testing.T) {
	tests := []struct {
		name        string
		mut         func(*Config)
		adopted     []string // now owned by us
		conflicts   []string
		deletedToo  []string // stale entities of an adopted owner
		wantAdopted int
	}{
		{"unowned", func(c *Config) { c.AdoptUnowned = true }, []string{"manual"}, []string{"theirs"}, nil, 1},
		{"a former owner", func(c *Config) { c.AdoptOwners = []string{"humanitec/org-b"} }, []string{"theirs"}, []string{"manual"}, []string{"theirs-stale"}, 1},
		{"both", func(c *Config) { c.AdoptUnowned, c.AdoptOwners = true, []string{"humanitec/org-b"} }, []string{"manual", "theirs"}, nil, []string{"theirs-stale"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			bps := humanitecBlueprints(t, bpApp)
			s := e.sink(tc.mut)
			if err := s.EnsureBlueprints(t.Context(), bps); err != nil {
				t.Fatal(err)
			}
			seedForeign(t, e)
			var ents []sink.Entity
			for i := range 20 { // enough that deleting theirs-stale stays under the threshold
				ents = append(ents, app(fmt.Sprintf("ours-%02d", i), nil))
			}
			ents = append(ents, app("manual", nil), app("theirs", nil))
			rep, err := e.run(s, nil, ents, map[string]bool{bpApp: true})
			var gotConflicts []string
			for _, c := range rep.Conflicts {
				gotConflicts = append(gotConflicts, c.Identifier)
			}
			if !slices.Equal(gotConflicts, tc.conflicts) || (len(tc.conflicts) == 0) != (err == nil) {
				t.Errorf("conflicts %v (err %v), want %v", gotConflicts, err, tc.conflicts)
			}
			for _, id := range tc.adopted {
				if o, _ := ownerOf(t, e.srv, bpApp, id); o != "humanitec" {
					t.Errorf("%s owned by %q after adopting", id, o)
				}
			}
			if rep.Adopted != tc.wantAdopted {
				t.Errorf("adopted %d, want %d", rep.Adopted, tc.wantAdopted)
			}
			for _, id := range tc.deletedToo {
				if e.srv.Entity(bpApp, id) != nil {
					t.Errorf("stale %s of the adopted owner kept", id)
				}
			}
			if rep.Deleted != len(tc.deletedToo) {
				t.Errorf("deleted %d, want %d", rep.Deleted, len(tc.deletedToo))
			}
		})
	}
}

// A blueprint ferry did not ensure has no ownership property: ferry cannot
// tell its entities from others', so it writes none unless told to adopt.
func TestBlueprintWithoutOwnerProperty(t *testing.T) {
	for _, adopt := range []bool{false, true} {
		t.Run(fmt.Sprintf("adopt unowned=%v", adopt), func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			if err := e.srv.SeedBlueprint(humanitecBlueprints(t, bpApp)[0]); err != nil {
				t.Fatal(err)
			}
			rep, err := e.run(e.sink(func(c *Config) { c.AdoptUnowned = adopt }), nil, []sink.Entity{app("a", nil)}, nil)
			if adopt {
				if err != nil || e.srv.Entity(bpApp, "a") == nil {
					t.Errorf("err %v, entity written %v", err, e.srv.Entity(bpApp, "a") != nil)
				}
				return
			}
			if !errors.Is(err, ErrEntitiesFailed) || e.srv.Entity(bpApp, "a") != nil || !strings.Contains(rep.Errors[0].Message, "no ferryOwner property") {
				t.Errorf("err %v report %+v", err, rep)
			}
		})
	}
}

func TestAdoptNeedsAnOwner(t *testing.T) {
	for _, mut := range []func(*Config){
		func(c *Config) { c.Owner, c.AdoptUnowned = "", true },
		func(c *Config) { c.AdoptOwners = []string{""} },
	} {
		cfg := Config{ClientID: "i", ClientSecret: "s", Owner: "o"}
		mut(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// A bulk answer that makes no sense fails its entities; the load goes on.
func TestMalformedBulkAnswer(t *testing.T) {
	for _, body := range []string{
		`<html>502 Bad Gateway</html>`,
		`{"ok":true,"entities":"yes"}`,
		`{"ok":true}`,
		``,
		`{"ok":true,"entities":[{"identifier":"someone-else","index":0}],"errors":[]}`,
		// Elements without their index: which entity each is about is not
		// known (an identifier may come back "unknown"); taken as the
		// first, app-0000 was counted written on another's word.
		`{"ok":true,"entities":[{"identifier":"app-0000","created":true}],"errors":[]}`,
		`{"ok":false,"entities":[` + bulkElements(1, 20) + `],"errors":[{"identifier":"unknown","statusCode":422,"error":"invalid","message":"no"}]}`,
		// An index repeated, the last null (JSON.parse keeps the null).
		`{"ok":true,"entities":[{"identifier":"app-0000","index":0,"index":null},` + bulkElements(1, 20) + `],"errors":[]}`,
	} {
		t.Run(body, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			e.srv.InjectFault(portsim.Fault{Method: "POST", Path: "*/entities/bulk", Times: 1, Kind: portsim.FaultBody, Body: body})
			rep, err := e.run(e.sink(func(c *Config) { c.Concurrency = 1 }), humanitecBlueprints(t, bpApp), apps(60), nil)
			if !errors.Is(err, ErrEntitiesFailed) {
				t.Fatalf("err = %v, want entities failed (and no abort)", err)
			}
			// The first batch (app-0000..0019) failed; the other two went on.
			if rep.Failed != 20 || rep.Upserted != 40 {
				t.Errorf("failed %d upserted %d, want 20 and 40", rep.Failed, rep.Upserted)
			}
			if n := e.srv.CountRequests("POST", "*/entities/bulk"); n != 3 {
				t.Errorf("%d bulk requests, want 3", n)
			}
			if rep.Errors[0].Identifier != "app-0000" {
				t.Errorf("first failure %v", rep.Errors[0])
			}
		})
	}
}

// bulkElements lists the bulk answer's elements of apps from to to-1,
// each at its index.
func bulkElements(from, to int) string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`{"identifier":"app-%04d","index":%d,"created":true}`, i, i))
	}
	return strings.Join(out, ",")
}

// The owned-entity listing that reconciliation reads must make sense, or
// nothing of that blueprint is deleted and the run fails.
func TestMalformedOwnedSearch(t *testing.T) {
	owned := `"property":"ferryOwner"` // the reconciliation query, not the ownership check
	for _, tc := range []struct{ name, body string }{
		{"empty", ``},
		{"garbled", `{"ok":tru`},
		{"no entities list", `{"ok":true}`},
		{"entity without identifier", `{"ok":true,"entities":[{"title":"x"}]}`},
		{"another owner's entity", `{"ok":true,"entities":[{"identifier":"theirs","properties":{"ferryOwner":"humanitec/org-b"}}]}`},
		{"next is not a string", `{"ok":true,"entities":[],"next":42}`},
		{"next never ends", `{"ok":true,"entities":[],"next":"YWZ0ZXI6enp6"}`}, // a cursor the simulator accepts
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			bps := humanitecBlueprints(t, bpApp, bpEnv)
			appsAndEnvs := func(apps ...string) []sink.Entity {
				var out []sink.Entity
				for _, ent := range humanitecSet(apps...) {
					if ent.Blueprint == bpApp || ent.Blueprint == bpEnv {
						out = append(out, ent)
					}
				}
				return out
			}
			complete := map[string]bool{bpApp: true, bpEnv: true}
			if _, err := e.run(e.sink(), bps, appsAndEnvs("a", "b", "c"), complete); err != nil {
				t.Fatal(err)
			}
			e.srv.InjectFault(portsim.Fault{Path: "/v1/blueprints/" + bpApp + "/entities/search", BodyContains: owned, Kind: portsim.FaultBody, Body: tc.body})
			rep, err := e.run(e.sink(), nil, appsAndEnvs("a", "b"), complete) // c is gone
			if !errors.Is(err, ErrReconcileFailed) {
				t.Fatalf("err = %v, want reconciliation failed", err)
			}
			if len(rep.ReconcileErrors) != 1 || rep.ReconcileErrors[0].Blueprint != bpApp {
				t.Errorf("reconcile errors %+v", rep.ReconcileErrors)
			}
			if e.srv.Entity(bpApp, "c") == nil {
				t.Error("stale app c deleted from an answer that made no sense")
			}
			// The other blueprint was reconciled.
			if e.srv.Entity(bpEnv, "c/development") != nil || rep.Deleted != 2 {
				t.Errorf("deleted %d; the environments of c should be gone", rep.Deleted)
			}
		})
	}
}

// The ownership check must make sense too: those entities are not written.
func TestMalformedOwnershipSearch(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	e.srv.InjectFault(portsim.Fault{Path: "*/entities/search", BodyContains: `"property":"$identifier"`, Times: 1, Kind: portsim.FaultBody, Body: ``})
	s := e.sink()
	if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp)); err != nil {
		t.Fatal(err)
	}
	seedForeign(t, e) // Port holds apps: each identifier is looked up
	rep, err := e.run(s, nil, apps(150), nil)
	if !errors.Is(err, ErrEntitiesFailed) {
		t.Fatalf("err = %v", err)
	}
	// One chunk of the lookups (100 or 50 identifiers, whichever went
	// first) could not be checked; the others were.
	if rep.Failed+rep.Upserted != 150 || rep.Failed != 100 && rep.Failed != 50 {
		t.Errorf("failed %d upserted %d", rep.Failed, rep.Upserted)
	}
	for _, fe := range rep.Errors {
		if !strings.Contains(fe.Message, "could not be checked") {
			t.Errorf("failure %v", fe)
		}
		if e.srv.Entity(bpApp, fe.Identifier) != nil {
			t.Errorf("%s, whose owner was unknown, was written", fe.Identifier)
		}
	}
}

// A relation-target lookup that makes no sense fails the entities that
// name those targets, not the load.
func TestMalformedRelationLookup(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp, bpEnv)
	env := func(id, appID string) sink.Entity {
		return sink.Entity{Blueprint: bpEnv, Data: map[string]any{"identifier": id, "properties": map[string]any{}, "relations": map[string]any{"humanitecApplication": appID}}}
	}
	// x/dev points at app x, neither written now nor (as far as anyone
	// can tell) in Port; y/dev at app y, written in this run.
	e.srv.InjectFault(portsim.Fault{Path: "/v1/blueprints/" + bpApp + "/entities/search", BodyContains: `"value":["x"]`, Kind: portsim.FaultBody, Body: `{"ok":true,"entities":[{}]}`})
	rep, err := e.run(e.sink(), bps, []sink.Entity{app("y", nil), env("y/dev", "y"), env("x/dev", "x")}, nil)
	if !errors.Is(err, ErrEntitiesFailed) || rep.Failed != 1 || rep.Upserted != 2 || rep.Errors[0].Identifier != "x/dev" {
		t.Fatalf("err %v report %+v", err, rep)
	}
	if !strings.Contains(rep.Errors[0].Message, "could not be checked") {
		t.Errorf("message %q", rep.Errors[0].Message)
	}
}

// A delete answer that makes no sense is reported, not taken as done.
func TestMalformedDeleteAnswer(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp)
	if _, err := e.run(e.sink(), bps, apps(10), map[string]bool{bpApp: true}); err != nil {
		t.Fatal(err)
	}
	e.srv.InjectFault(portsim.Fault{Path: "*/bulk/entities/delete", Kind: portsim.FaultBody, Body: `{"ok":true}`})
	rep, err := e.run(e.sink(), nil, apps(9), map[string]bool{bpApp: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 0 || len(rep.DeleteErrors) != 1 || rep.DeleteErrors[0].Identifier != "app-0009" {
		t.Errorf("deleted %d, delete errors %+v", rep.Deleted, rep.DeleteErrors)
	}
}

// Port's bulk delete may succeed in part and says so only by leaving an
// entity out of deletedEntities. A stale entity Port kept is reported (it
// is still in the catalog though the source no longer has it); one that
// was already gone (deleted by someone else, or a listing that lagged
// behind) is not.
func TestPartialDeleteReported(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp)
	if _, err := e.run(e.sink(), bps, apps(10), map[string]bool{bpApp: true}); err != nil {
		t.Fatal(err)
	}
	e.srv.RefuseDelete(bpApp, "app-0009")
	rep, err := e.run(e.sink(), nil, apps(8), map[string]bool{bpApp: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.srv.Entity(bpApp, "app-0009") == nil || e.srv.Entity(bpApp, "app-0008") != nil {
		t.Fatalf("catalog: app-0009 %v, app-0008 %v", e.srv.Entity(bpApp, "app-0009"), e.srv.Entity(bpApp, "app-0008"))
	}
	if rep.Deleted != 1 || len(rep.DeleteErrors) != 1 || rep.DeleteErrors[0].Identifier != "app-0009" {
		t.Errorf("deleted %d, delete errors %+v; want 1 and app-0009 reported", rep.Deleted, rep.DeleteErrors)
	}
}

// An id a bulk delete answer leaves out but Port no longer holds is not
// reported: it is gone, whoever deleted it.
func TestPartialDeleteGoneNotReported(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp)
	if _, err := e.run(e.sink(), bps, apps(10), map[string]bool{bpApp: true}); err != nil {
		t.Fatal(err)
	}
	// The delete is applied; the answer names nothing.
	e.srv.InjectFault(portsim.Fault{Path: "*/bulk/entities/delete", Kind: portsim.FaultBody, Body: `{"ok":true,"deletedEntities":[]}`})
	rep, err := e.run(e.sink(), nil, apps(9), map[string]bool{bpApp: true})
	if err != nil || len(rep.DeleteErrors) != 0 || e.srv.Entity(bpApp, "app-0009") != nil {
		t.Errorf("err %v delete errors %+v app-0009 %v", err, rep.DeleteErrors, e.srv.Entity(bpApp, "app-0009"))
	}
	if n := e.srv.CountRequests("GET", "*/entities/app-0009"); n != 1 {
		t.Errorf("%d reads of app-0009, want 1", n)
	}
}
