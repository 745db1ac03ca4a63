package port

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	portsim "github.com/ferry-etl/ferry/engine/sim/port"
	"github.com/ferry-etl/ferry/engine/sink"
)

// plan runs a plan of ents against e's Port and checks that nothing was
// written: only reads (the blueprint list, searches) and the token.
func (e *env) plan(s *Sink, bps []json.RawMessage, ents []sink.Entity, complete map[string]bool, refuse string) ([]SchemaChange, Plan) {
	e.t.Helper()
	before := e.srv.Catalog().JSON()
	e.srv.ResetRequests()
	schema, err := s.PlanBlueprints(e.t.Context(), bps)
	if err != nil {
		e.t.Fatalf("PlanBlueprints: %v", err)
	}
	for _, ent := range ents {
		if err := s.Write(e.t.Context(), ent); err != nil {
			e.t.Fatalf("Write: %v", err)
		}
	}
	p, err := s.Plan(e.t.Context(), complete, refuse)
	if err != nil {
		e.t.Fatalf("Plan: %v", err)
	}
	for _, r := range e.srv.Requests() {
		read := r.Method == http.MethodGet || strings.HasSuffix(r.Path, "/entities/search") || r.Path == "/v1/auth/access_token"
		if !read {
			e.t.Errorf("a plan sent %s %s", r.Method, r.Path)
		}
	}
	if after := e.srv.Catalog().JSON(); string(after) != string(before) {
		e.t.Error("the catalog changed during a plan")
	}
	return schema, p
}

// summary is a plan in one line per blueprint with something to say.
func summary(p Plan) string {
	var b strings.Builder
	for _, bp := range p.Blueprints {
		fmt.Fprintf(&b, "%s: +%d ~%d =%d -%d", bp.Blueprint, len(bp.Create), len(bp.Update), bp.Unchanged, len(bp.Delete))
		if bp.Refused != nil {
			fmt.Fprintf(&b, " refused %d", len(bp.Refused.Identifiers))
		}
		if len(bp.Conflicts) > 0 {
			fmt.Fprintf(&b, " conflicts %d", len(bp.Conflicts))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestPlanEmptyCatalog(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	ents := humanitecSet("a")
	schema, p := e.plan(e.sink(), humanitecBlueprints(t, allBlueprints...), ents, completeAll(), "")
	for _, c := range schema {
		if c.Action != ActionCreate {
			t.Errorf("blueprint %s: %s, want create", c.Blueprint, c.Action)
		}
	}
	want := bpApp + ": +1 ~0 =0 -0\n" + bpEnv + ": +2 ~0 =0 -0\n" + bpGraph + ": +6 ~0 =0 -0\n" + bpWork + ": +2 ~0 =0 -0\n"
	if got := summary(p); got != want {
		t.Errorf("plan\n%s\nwant\n%s", got, want)
	}
	if !p.Changes() {
		t.Error("a plan of creates reports no changes")
	}
	if got := p.Blueprints[2].Create; !slices.Equal(got, []string{"a/development/dns", "a/development/externals.db", "a/development/modules.api", "a/production/dns", "a/production/externals.db", "a/production/modules.api"}) {
		t.Errorf("graph creates %v", got)
	}
}

func TestPlanAfterRun(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, allBlueprints...)
	if _, err := e.run(e.sink(), bps, humanitecSet("a", "b"), completeAll()); err != nil {
		t.Fatal(err)
	}
	schema, p := e.plan(e.sink(), bps, humanitecSet("a", "b"), completeAll(), "")
	for _, c := range schema {
		if c.Action != ActionUnchanged {
			t.Errorf("blueprint %s: %s %v, want unchanged", c.Blueprint, c.Action, c.Changes)
		}
	}
	want := bpApp + ": +0 ~0 =2 -0\n" + bpEnv + ": +0 ~0 =4 -0\n" + bpGraph + ": +0 ~0 =12 -0\n" + bpWork + ": +0 ~0 =4 -0\n"
	if got := summary(p); got != want || p.Changes() {
		t.Errorf("plan (changes %v)\n%s\nwant\n%s", p.Changes(), got, want)
	}
}

// After the source changed: the exact updates, with old and new values,
// and the deletes.
func TestPlanChangedSource(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, allBlueprints...)
	if _, err := e.run(e.sink(), bps, humanitecSet("a", "b", "c"), completeAll()); err != nil {
		t.Fatal(err)
	}
	ents := humanitecSet("a", "b") // c is gone
	for _, en := range ents {
		switch en.Data["identifier"] {
		case "a/production":
			en.Data["properties"].(map[string]any)["lastDeploymentStatus"] = "failed"
			en.Data["title"] = "Production"
		case "b/development/dns":
			en.Data["relations"].(map[string]any)[bpGraph] = []any{"b/development/externals.db"}
		}
	}
	_, p := e.plan(e.sink(), bps, ents, completeAll(), "")
	want := bpApp + ": +0 ~0 =2 -1\n" + bpEnv + ": +0 ~1 =3 -2\n" + bpGraph + ": +0 ~1 =11 -6\n" + bpWork + ": +0 ~0 =4 -2\n"
	if got := summary(p); got != want {
		t.Errorf("plan\n%s\nwant\n%s", got, want)
	}
	var changes []string
	for _, bp := range p.Blueprints {
		for _, u := range bp.Update {
			for _, c := range u.Changes {
				changes = append(changes, u.Identifier+" "+c.String())
			}
		}
	}
	wantChanges := []string{
		`a/production title: "production" → "Production"`,
		`a/production properties.lastDeploymentStatus: "succeeded" → "failed"`,
		`b/development/dns relations.humanitecResourceGraph: (none) → ["b/development/externals.db"]`,
	}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("changes\n%s\nwant\n%s", strings.Join(changes, "\n"), strings.Join(wantChanges, "\n"))
	}
	if got := p.Blueprints[0].Delete; !slices.Equal(got, []string{"c"}) {
		t.Errorf("app deletes %v", got)
	}
	// The plan is what a run then does.
	rep, err := e.run(e.sink(), bps, ents, completeAll())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Upserted != 2 || rep.Deleted != 11 || rep.Unchanged != 20 {
		t.Errorf("run: upserted %d deleted %d unchanged %d, want the plan's 2, 11, 20", rep.Upserted, rep.Deleted, rep.Unchanged)
	}
}

// Entities of other owners, or of none, never appear as updates or
// deletes; one the run produces is a conflict.
func TestPlanForeignEntities(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp)
	if _, err := e.run(e.sink(), bps, apps(3), map[string]bool{bpApp: true}); err != nil {
		t.Fatal(err)
	}
	for _, seed := range []string{
		`{"identifier":"theirs","properties":{"ferryOwner":"humanitec/other-org"}}`,
		`{"identifier":"by-hand","properties":{}}`,
		`{"identifier":"app-0009","properties":{"ferryOwner":"humanitec/other-org"}}`,
	} {
		if err := e.srv.SeedEntity(bpApp, []byte(seed)); err != nil {
			t.Fatal(err)
		}
	}
	ents := apps(2)
	ents = append(ents, app("app-0009", nil))
	_, p := e.plan(e.sink(), bps, ents, map[string]bool{bpApp: true}, "")
	bp := p.Blueprints[0]
	if len(bp.Create)+len(bp.Update) != 0 || bp.Unchanged != 0 && bp.Unchanged != 2 {
		t.Errorf("plan %+v", bp)
	}
	if !slices.Equal(bp.Delete, []string{"app-0002"}) {
		t.Errorf("deletes %v, want only the run's own stale app-0002", bp.Delete)
	}
	if len(bp.Conflicts) != 1 || bp.Conflicts[0].Identifier != "app-0009" || bp.Conflicts[0].Owner != "humanitec/other-org" {
		t.Errorf("conflicts %+v", bp.Conflicts)
	}
}

// A blueprint whose streams did not complete deletes nothing, and the plan
// says so; so does one above the threshold, and a refusal for the whole run.
func TestPlanRefusedDeletes(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	bps := humanitecBlueprints(t, bpApp, bpEnv)
	set := func(apps ...string) []sink.Entity {
		var out []sink.Entity
		for _, en := range humanitecSet(apps...) {
			if en.Blueprint == bpApp || en.Blueprint == bpEnv {
				out = append(out, en)
			}
		}
		return out
	}
	if _, err := e.run(e.sink(), bps, set("a", "b", "c", "d", "e"), map[string]bool{bpApp: true, bpEnv: true}); err != nil {
		t.Fatal(err)
	}
	threshold := func(c *Config) { c.DeleteThreshold = 0.7 }
	_, p := e.plan(e.sink(threshold), bps, set("a"), map[string]bool{bpApp: false, bpEnv: true}, "")
	app, envs := p.Blueprints[0], p.Blueprints[1]
	if len(app.Delete) != 0 || app.Refused == nil || len(app.Refused.Identifiers) != 4 || !strings.Contains(app.Refused.Reason, "not every stream") {
		t.Errorf("apps: delete %v refused %+v", app.Delete, app.Refused)
	}
	if len(envs.Delete) != 0 || envs.Refused == nil || envs.Refused.Owned != 10 || envs.Refused.Reason != "would delete 8 of 10 owned entities, above the 70% threshold (port.delete_threshold)" {
		t.Errorf("envs: delete %v refused %+v", envs.Delete, envs.Refused)
	}
	if p.Changes() {
		t.Error("a plan whose only deletes are refused reports changes")
	}
	_, p = e.plan(e.sink(), bps, set("a", "b", "c", "d"), map[string]bool{bpApp: true, bpEnv: true}, "the next run resumes an unfinished sync")
	if app := p.Blueprints[0]; len(app.Delete) != 0 || app.Refused == nil || app.Refused.Reason != "the next run resumes an unfinished sync" {
		t.Errorf("apps: delete %v refused %+v", app.Delete, app.Refused)
	}
}

// A plan against blueprints Port does not have yet, or has in another
// form, says what EnsureBlueprints would do.
func TestPlanBlueprints(t *testing.T) {
	e := newEnv(t, portsim.Options{})
	s := e.sink()
	if err := s.EnsureBlueprints(t.Context(), humanitecBlueprints(t, bpApp)); err != nil {
		t.Fatal(err)
	}
	var app map[string]any
	if err := json.Unmarshal(humanitecBlueprints(t, bpApp)[0], &app); err != nil {
		t.Fatal(err)
	}
	app["schema"].(map[string]any)["properties"].(map[string]any)["tier"] = map[string]any{"type": "string", "title": "Tier"}
	app["title"] = "Applications"
	changed, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	schema, _ := e.plan(e.sink(), []json.RawMessage{changed, humanitecBlueprints(t, bpEnv)[0]}, nil, nil, "")
	got := fmt.Sprint(schema)
	want := "[{" + bpApp + " update [schema.properties.tier (added) title (changed)]} {" + bpEnv + " create []}]"
	if got != want {
		t.Errorf("schema changes %s\nwant %s", got, want)
	}
}
