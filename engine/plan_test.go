package engine_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

const planSpec = `version: 1
name: pl
config:
  url: {required: true}
  token: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth:
    type: bearer
    token: ${ config.token }
  retry: {attempts: 1}
streams:
  apps:
    request: {path: /apps}
  envs:
    for_each: apps
    request:
      path: /apps/${ parent.id }/envs
tables:
  apps: {from: apps, primary_key: [id]}
  envs: {from: envs, primary_key: [app, id], mode: replace, row: '{app: $parent.id, id, name}'}
port:
  blueprints: bp.json
  entities:
    - blueprint: app
      from: apps
      identifier: .id
      title: .name
      properties: {tier: .tier, note: .note}
    - blueprint: env
      from: envs
      identifier: $parent.id + "/" + .id
      title: .name
      relations: {app: $parent.id}
`

const planBlueprints = `[{"identifier": "app", "title": "App", "schema": {"properties": {"tier": {"type": "string", "title": "Tier"}, "note": {"type": "string", "title": "Note"}}, "required": []}, "relations": {}},
 {"identifier": "env", "title": "Env", "schema": {"properties": {}, "required": []}, "relations": {"app": {"target": "app", "many": false, "required": false}}}]`

const planToken = "tok-sekrit-42"

// planFixture serves apps a, b, c with two envs each.
func planFixture(t *testing.T) *fixture {
	t.Helper()
	fx := newFixture(t, planSpec, planBlueprints)
	fx.json("/apps", []any{
		map[string]any{"id": "a", "name": "A", "tier": "gold"},
		map[string]any{"id": "b", "name": "B", "tier": "silver"},
		map[string]any{"id": "c", "name": "C", "tier": "bronze"},
	})
	for _, app := range []string{"a", "b", "c"} {
		fx.json("/apps/"+app+"/envs", []any{map[string]any{"id": "dev", "name": "Dev"}, map[string]any{"id": "prod", "name": "Prod"}})
	}
	return fx
}

func (fx *fixture) config() *engine.Config {
	fx.t.Helper()
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL, "token": planToken},
		Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		fx.t.Fatal(err)
	}
	return cfg
}

func (fx *fixture) portOptions() engine.PortOptions {
	return engine.PortOptions{BaseURL: fx.port.URL(), ClientID: fx.port.ClientID(), ClientSecret: fx.port.ClientSecret()}
}

func (fx *fixture) realRun() *engine.Result {
	fx.t.Helper()
	res, err := engine.Run(fx.t.Context(), fx.spec, fx.config(), engine.RunOptions{Dest: fx.db, Port: fx.portOptions()})
	if err != nil {
		fx.t.Fatalf("run: %v", err)
	}
	return res
}

// plan plans, and checks it wrote nothing: Port only read, the table
// database unchanged.
func (fx *fixture) plan(opts engine.PlanOptions) (*engine.Plan, error) {
	fx.t.Helper()
	path := strings.TrimPrefix(fx.db, "sqlite:")
	dbBefore, _ := os.ReadFile(path)
	catBefore := fx.port.Catalog().JSON()
	fx.port.ResetRequests()
	opts.Dest, opts.Port = fx.db, fx.portOptions()
	p, err := engine.PlanRun(fx.t.Context(), fx.spec, fx.config(), opts)
	for _, r := range fx.port.Requests() {
		if r.Method != http.MethodGet && !strings.HasSuffix(r.Path, "/entities/search") && r.Path != "/v1/auth/access_token" {
			fx.t.Errorf("the plan sent %s %s to Port", r.Method, r.Path)
		}
	}
	if string(fx.port.Catalog().JSON()) != string(catBefore) {
		fx.t.Error("the plan changed the Port catalog")
	}
	dbAfter, _ := os.ReadFile(path)
	if string(dbAfter) != string(dbBefore) {
		fx.t.Error("the plan changed the table database")
	}
	return p, err
}

// counts is a plan in one line per target: +create ~update -delete =unchanged.
func planCounts(p *engine.Plan) string {
	var parts []string
	for _, t := range p.Tables {
		parts = append(parts, fmt.Sprintf("%s +%d ~%d -%d =%d", t.Name, t.Create, t.Update, t.Delete, t.Unchanged))
	}
	if p.Port != nil {
		for _, b := range p.Port.Blueprints {
			parts = append(parts, fmt.Sprintf("%s +%d ~%d -%d =%d", b.Name, b.Create, b.Update, b.Delete, b.Unchanged))
		}
	}
	return strings.Join(parts, ", ")
}

// An empty catalog and an empty database: everything is a create, and
// the plan says so without writing anything.
func TestPlanRunEmpty(t *testing.T) {
	fx := planFixture(t)
	p, err := fx.plan(engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := planCounts(p), "apps +3 ~0 -0 =0, envs +6 ~0 -0 =0, app +3 ~0 -0 =0, env +6 ~0 -0 =0"; got != want {
		t.Errorf("plan %s\nwant %s", got, want)
	}
	if !p.Changes || !p.Complete {
		t.Errorf("changes %v complete %v", p.Changes, p.Complete)
	}
	for _, s := range p.Port.Schemas {
		if s.Action != "create" {
			t.Errorf("blueprint %s: %s, want create", s.Blueprint, s.Action)
		}
	}
	if code := engine.ExitCode(&engine.PlanError{Err: engine.ErrPlanChanges}, false); code != engine.ExitPlanChanges {
		t.Errorf("exit code of a plan with changes %d", code)
	}
	if _, err := os.Stat(strings.TrimPrefix(fx.db, "sqlite:")); !os.IsNotExist(err) {
		t.Errorf("the plan made the database file: %v", err)
	}
}

// After a run, a plan finds nothing to do; after the source changed, it
// finds exactly the updates (old → new) and deletes the next run does.
func TestPlanRunAfterRunAndChange(t *testing.T) {
	fx := planFixture(t)
	fx.realRun()
	p, err := fx.plan(engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := planCounts(p), "apps +0 ~0 -0 =3, envs +0 ~0 -0 =6, app +0 ~0 -0 =3, env +0 ~0 -0 =6"; got != want || p.Changes {
		t.Errorf("plan after a run %s (changes %v)\nwant %s", got, p.Changes, want)
	}

	// b is renamed and re-tiered, c is gone, a gets an env.
	fx.json("/apps", []any{
		map[string]any{"id": "a", "name": "A", "tier": "gold"},
		map[string]any{"id": "b", "name": "B2", "tier": "gold", "note": "moved"},
	})
	fx.json("/apps/a/envs", []any{map[string]any{"id": "dev", "name": "Dev"}, map[string]any{"id": "prod", "name": "Prod"}, map[string]any{"id": "qa", "name": "QA"}})
	p, err = fx.plan(engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := planCounts(p), "apps +0 ~1 -0 =1, envs +1 ~0 -2 =4, app +0 ~1 -1 =1, env +1 ~0 -2 =4"; got != want || !p.Changes {
		t.Errorf("plan after a change %s\nwant %s", got, want)
	}
	var changes []string
	for _, u := range p.Tables[0].Updates {
		for _, c := range u.Changes {
			changes = append(changes, fmt.Sprintf("apps %v %s: %v → %v", u.Key["id"], c.Field, c.Old, c.New))
		}
	}
	for _, u := range p.Port.Blueprints[0].Updates {
		for _, c := range u.Changes {
			changes = append(changes, fmt.Sprintf("app %s %s: %v → %v", u.Identifier, c.Field, c.Old, c.New))
		}
	}
	want := []string{
		"apps b name: B → B2", "apps b tier: silver → gold", "apps b note: <nil> → moved", // the table's column order
		"app b title: B → B2", "app b properties.note: <nil> → moved", "app b properties.tier: silver → gold",
	}
	if !slices.Equal(changes, want) {
		t.Errorf("changes\n%s\nwant\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}
	if d := p.Port.Blueprints[0].Deletes; !slices.Equal(d, []string{"c"}) {
		t.Errorf("app deletes %v", d)
	}
	if d := fmt.Sprint(p.Tables[1].Deletes); d != "[map[app:c id:dev] map[app:c id:prod]]" {
		t.Errorf("env row deletes %s", d)
	}

	// The run does what the plan said.
	res := fx.realRun()
	rep := engine.NewRunReport(fx.spec, "s.yaml", res, nil, 0, false, res.Ended)
	if rep.Port.Upserted != 2 || rep.Port.Unchanged != 5 || rep.Port.Deleted != 3 {
		t.Errorf("run: Port upserted %d unchanged %d deleted %d, want the plan's 2, 5, 3", rep.Port.Upserted, rep.Port.Unchanged, rep.Port.Deleted)
	}
	if rep.Tables[0].RowsUnchanged != 1 || rep.Tables[1].RowsDeleted != 2 {
		t.Errorf("run: apps unchanged %d, envs marked deleted %d; want 1 and 2", rep.Tables[0].RowsUnchanged, rep.Tables[1].RowsDeleted)
	}
	if p, err = fx.plan(engine.PlanOptions{}); err != nil || p.Changes {
		t.Errorf("plan after the run: %s, %v", planCounts(p), err)
	}
}

// Entities of another owner, or of none, never appear in a plan: neither
// as deletes nor as updates.
func TestPlanRunForeignEntities(t *testing.T) {
	fx := planFixture(t)
	fx.realRun()
	for _, seed := range []string{
		`{"identifier":"theirs","title":"T","properties":{"ferryOwner":"pl/someone-else"}}`,
		`{"identifier":"by-hand","title":"H","properties":{"tier":"gold"}}`,
	} {
		if err := fx.port.SeedEntity("app", []byte(seed)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := fx.plan(engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Changes || planCounts(p) != "apps +0 ~0 -0 =3, envs +0 ~0 -0 =6, app +0 ~0 -0 =3, env +0 ~0 -0 =6" {
		t.Errorf("plan with foreign entities %s (changes %v)", planCounts(p), p.Changes)
	}
	// One the source now produces is a conflict, not an update.
	fx.json("/apps", []any{
		map[string]any{"id": "a", "name": "A", "tier": "gold"}, map[string]any{"id": "b", "name": "B", "tier": "silver"},
		map[string]any{"id": "c", "name": "C", "tier": "bronze"}, map[string]any{"id": "theirs", "name": "T"},
	})
	fx.json("/apps/theirs/envs", []any{})
	p, err = fx.plan(engine.PlanOptions{})
	if err == nil || p == nil {
		t.Fatalf("a plan with a conflict: err = %v, want it to fail as the run would", err)
	}
	app := p.Port.Blueprints[0]
	if app.Update != 0 || app.Create != 0 || len(app.Conflicts) != 1 || app.Conflicts[0] != (engine.ConflictPlan{Identifier: "theirs", Owner: "pl/someone-else"}) {
		t.Errorf("app plan %+v", app)
	}
}

// A failed stream: the plan still shows what would happen, refuses the
// deletions of what the stream feeds, says so, and fails (exit 1).
func TestPlanRunIncomplete(t *testing.T) {
	fx := planFixture(t)
	fx.realRun()
	fx.json("/apps", []any{map[string]any{"id": "a", "name": "A", "tier": "gold"}, map[string]any{"id": "b", "name": "B", "tier": "silver"}})
	fx.raw("/apps/b/envs", http.StatusInternalServerError, "down")
	p, err := fx.plan(engine.PlanOptions{})
	var re *engine.RunError
	if !errors.As(err, &re) || p == nil || p.Complete || len(p.Failures) != 1 {
		t.Fatalf("err %v, plan %+v", err, p)
	}
	if code := engine.ExitCode(&engine.PlanError{Err: err}, false); code != engine.ExitFailed {
		t.Errorf("exit code %d, want 1", code)
	}
	app, env := p.Port.Blueprints[0], p.Port.Blueprints[1]
	if app.Delete != 1 || app.Refused != nil {
		t.Errorf("apps (complete): delete %d refused %+v", app.Delete, app.Refused)
	}
	if env.Delete != 0 || env.Refused == nil || env.Refused.Count != 4 || !strings.Contains(env.Refused.Reason, "not every stream") {
		t.Errorf("envs (incomplete): delete %d refused %+v", env.Delete, env.Refused)
	}
	if envs := p.Tables[1]; envs.Delete != 0 || envs.Refused == nil || envs.Refused.Count != 4 {
		t.Errorf("envs table: delete %d refused %+v", envs.Delete, envs.Refused)
	}
}

// Secrets never reach a plan's values.
func TestPlanRunRedacts(t *testing.T) {
	fx := planFixture(t)
	fx.realRun()
	fx.json("/apps", []any{map[string]any{"id": "a", "name": "A", "tier": "gold", "note": "token=" + planToken}})
	p, err := fx.plan(engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(p.Tables[0].Updates, p.Port.Blueprints[0].Updates)
	if strings.Contains(got, planToken) || !strings.Contains(got, "token=REDACTED") {
		t.Errorf("updates %s", got)
	}
}

// Usage errors of a plan exit 64, not 2 (which means changes).
func TestPlanExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, engine.ExitOK},
		{&engine.PlanError{Err: engine.ErrPlanChanges}, engine.ExitPlanChanges},
		{&engine.PlanError{Err: &engine.UsageError{Err: errors.New("bad flag")}}, engine.ExitPlanUsage},
		{&engine.PlanError{Err: &engine.ConfigError{Problems: []string{"x"}}}, engine.ExitPlanUsage},
		{&engine.PlanError{Err: errors.New("port down")}, engine.ExitFailed},
		{&engine.UsageError{Err: errors.New("run's usage error")}, engine.ExitUsage},
	} {
		if got := engine.ExitCode(tc.err, false); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// A run that would resume an unfinished sync deletes no Port entity: the
// plan refuses those deletions and says why; with --full-refresh the run
// starts afresh and they are allowed.
func TestPlanRunResumeRefuses(t *testing.T) {
	fx := planFixture(t)
	fx.realRun()
	fx.raw("/apps/b/envs", http.StatusInternalServerError, "down")
	if _, err := engine.Run(t.Context(), fx.spec, fx.config(), engine.RunOptions{Dest: fx.db, Port: fx.portOptions()}); err == nil {
		t.Fatal("the failing run succeeded")
	}
	fx.json("/apps/b/envs", []any{map[string]any{"id": "dev", "name": "Dev"}})
	fx.json("/apps", []any{map[string]any{"id": "a", "name": "A", "tier": "gold"}, map[string]any{"id": "b", "name": "B", "tier": "silver"}})
	p, err := fx.plan(engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app := p.Port.Blueprints[0]
	if app.Delete != 0 || app.Refused == nil || !strings.Contains(app.Refused.Reason, "resumes the unfinished sync") {
		t.Errorf("resuming: delete %d refused %+v", app.Delete, app.Refused)
	}
	p, err = fx.plan(engine.PlanOptions{FullRefresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if app := p.Port.Blueprints[0]; app.Delete != 1 || app.Refused != nil {
		t.Errorf("full refresh: delete %d refused %+v", app.Delete, app.Refused)
	}
}

// A plan redacts as a run does: a presigned link's signature in a value is
// hidden, not only the secret inputs.
func TestPlanRedactsPresignedSignature(t *testing.T) {
	fx := planFixture(t)
	fx.realRun()
	fx.json("/apps", []any{map[string]any{"id": "a", "name": "A", "tier": "gold", "note": "https://b.example/f?sv=1&sig=s1gn4ture"}})
	p, err := fx.plan(engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(p.Tables[0].Updates, p.Port.Blueprints[0].Updates)
	if strings.Contains(got, "s1gn4ture") || !strings.Contains(got, "sig=REDACTED") {
		t.Errorf("updates %s", got)
	}
}

// Entities a run would not write — one another owner holds, one that does
// not fit its blueprint — fail the plan (a run would exit 1), even when
// nothing else would change: "no changes" would say the destinations
// match the source while records of it never reach Port.
func TestPlanRunFailsOnEntitiesNotWritten(t *testing.T) {
	fx := planFixture(t)
	fx.realRun()
	if err := fx.port.SeedEntity("app", []byte(`{"identifier":"theirs","title":"T","properties":{"ferryOwner":"pl/someone-else"}}`)); err != nil {
		t.Fatal(err)
	}
	apps := []any{
		map[string]any{"id": "a", "name": "A", "tier": "gold"}, map[string]any{"id": "b", "name": "B", "tier": "silver"},
		map[string]any{"id": "c", "name": "C", "tier": "bronze"},
	}
	for _, tc := range []struct {
		name  string
		extra map[string]any
		want  string
	}{
		{"conflict", map[string]any{"id": "theirs", "name": "T"}, "1 conflict"},
		{"invalid", map[string]any{"id": "d", "name": 7}, "1 invalid"},
	} {
		fx.json("/apps", append(slices.Clone(apps), tc.extra))
		fx.json("/apps/"+tc.extra["id"].(string)+"/envs", []any{})
		p, err := fx.plan(engine.PlanOptions{})
		if p == nil {
			t.Fatalf("%s: no plan: %v", tc.name, err)
		}
		code := engine.ExitCode(&engine.PlanError{Err: err}, false)
		if err == nil || code != engine.ExitFailed || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: plan err = %v (exit %d), want it to fail with %q (exit %d)", tc.name, err, code, tc.want, engine.ExitFailed)
		}
	}
}
