package port

import (
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// Port's search is eventually consistent. A relation target that Port
// holds but search does not show yet (written moments ago, here by the
// run before) is there: the relation naming it is kept, not dropped as
// missing — dropping it would remove a relation Port could keep and
// report a target as missing that is not.
func TestSearchLagTargetKept(t *testing.T) {
	for _, policy := range []RelationPolicy{RelationDrop, RelationFail} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t, portsim.Options{SearchLag: time.Hour})
			n := func(id string, deps ...any) sink.Entity {
				if deps == nil {
					deps = []any{}
				}
				return sink.Entity{Blueprint: bpGraph, Data: map[string]any{"identifier": id, "properties": map[string]any{}, "relations": map[string]any{bpGraph: deps}}}
			}
			bps := humanitecBlueprints(t, bpApp, bpEnv, bpGraph)
			complete := map[string]bool{bpGraph: true}
			// n2's identifier has characters a path must escape.
			const n2 = "n/2+x=y"
			if _, err := e.run(e.sink(), bps, []sink.Entity{n("n1", n2), n(n2), n("n3")}, complete); err != nil {
				t.Fatal(err)
			}
			// n2 is no longer produced, but Port holds it (search does not
			// show it yet) and n1 still names it.
			rep, err := e.run(e.sink(func(c *Config) { c.RelationPolicy = policy }), nil, []sink.Entity{n("n1", n2), n("n3")}, complete)
			if err != nil || rep.DroppedRelations != 0 || rep.Failed != 0 {
				t.Errorf("err %v report %+v", err, rep)
			}
			rel, _ := e.srv.Entity(bpGraph, "n1")["relations"].(map[string]any)[bpGraph].([]any)
			if !slices.Equal(rel, []any{n2}) || e.srv.Entity(bpGraph, n2) == nil {
				t.Errorf("n1's relation %v, n2 %v; want n1 -> n2 kept", rel, e.srv.Entity(bpGraph, n2))
			}
			if got := e.srv.CountRequests("GET", "*/entities/"+url.PathEscape(n2)); got != 1 {
				t.Errorf("%d reads of %s, want 1", got, n2)
			}
		})
	}
}

// The by-identifier check of a target search did not show is read as
// strictly as search: an answer that does not hold the entity asked for
// fails the entity naming it; it is never read as "missing" (a drop).
func TestTargetCheckMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"another entity": `{"ok":true,"entity":{"identifier":"other"}}`,
		"no entity":      `{"ok":true}`,
		"garbled":        `{"ok":tr`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, portsim.Options{})
			bps := humanitecBlueprints(t, bpApp, bpEnv, bpGraph)
			if _, err := e.run(e.sink(), bps, nil, nil); err != nil {
				t.Fatal(err)
			}
			// Port holds the target; search does not show it yet.
			if err := e.srv.SeedEntity(bpGraph, []byte(`{"identifier":"t1","properties":{},"relations":{}}`)); err != nil {
				t.Fatal(err)
			}
			e.srv.InjectFault(portsim.Fault{Path: "*/entities/search", BodyContains: `"t1"`, Kind: portsim.FaultBody, Body: `{"ok":true,"entities":[]}`})
			e.srv.InjectFault(portsim.Fault{Method: "GET", Path: "*/entities/t1", Kind: portsim.FaultBody, Body: body})
			ent := sink.Entity{Blueprint: bpApp, Data: map[string]any{"identifier": "a1", "title": "a1", "properties": map[string]any{}, "relations": map[string]any{}}}
			ent2 := sink.Entity{Blueprint: bpGraph, Data: map[string]any{"identifier": "n1", "properties": map[string]any{}, "relations": map[string]any{bpGraph: []any{"t1"}}}}
			rep, err := e.run(e.sink(), nil, []sink.Entity{ent, ent2}, nil)
			if !errors.Is(err, ErrEntitiesFailed) || rep.DroppedRelations != 0 || !slices.Equal(failedIDs(rep), []string{bpGraph + ":n1"}) {
				t.Errorf("err %v report %+v", err, rep)
			}
		})
	}
}

// The owned listing pages through Port's search as Port answers it: in no
// particular order, a full last page that still carries next, and an end
// marked by next: null. Every owned entity is listed: a rerun finds all of
// them unchanged and deletes exactly the one no longer produced.
func TestOwnedListingPages(t *testing.T) {
	e := newEnv(t, portsim.Options{RateLimit: -1})
	bps := humanitecBlueprints(t, bpApp)
	n := 2 * searchPageSize
	if _, err := e.run(e.sink(), bps, apps(n), map[string]bool{bpApp: true}); err != nil {
		t.Fatal(err)
	}
	e.srv.ResetRequests()
	rep, err := e.run(e.sink(), nil, apps(n-1), map[string]bool{bpApp: true})
	if err != nil || rep.Unchanged != n-1 || rep.Upserted != 0 || rep.Deleted != 1 {
		t.Errorf("err %v report upserted %d unchanged %d deleted %d", err, rep.Upserted, rep.Unchanged, rep.Deleted)
	}
	if got := e.srv.CountRequests("POST", "*/entities/search"); got != 3 {
		t.Errorf("%d search requests, want 3 (two full pages, then an empty one)", got)
	}
}
