package specs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/ferry-etl/ferry/engine/sim/humanitec"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// These runs specs/humanitec.yaml end to end against the Humanitec and
// Port simulators. They mostly wait on the spec's own rate limit, so they
// run in parallel.

// startOrg serves a generated organisation under orgID.
func startOrg(t *testing.T, seed int64, orgID string) (*humanitec.Running, *humanitec.Org) {
	t.Helper()
	org := humanitec.Generate(seed, humanitec.Small())
	org.ID = orgID
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	hum, err := humanitec.Start(ctx, org, humanitec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hum.Close() })
	return hum, org
}

// runOrg runs the Humanitec spec for orgID into pt.
func runOrg(t *testing.T, hum *humanitec.Running, orgID string, pt *portsim.Server, po engine.PortOptions) (*engine.Result, error) {
	t.Helper()
	f, err := engine.Load("humanitec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Getenv: func(string) (string, bool) { return "", false }, Sets: map[string]string{
		"api_url": hum.URL(), "org_id": orgID, "api_token": humanitec.DefaultToken, "pipelines_per_page": "10",
	}})
	if err != nil {
		t.Fatal(err)
	}
	po.BaseURL, po.ClientID, po.ClientSecret = pt.URL(), pt.ClientID(), pt.ClientSecret()
	return engine.Run(t.Context(), f, cfg, engine.RunOptions{Port: po, Dest: "sqlite:" + t.TempDir() + "/t.db"})
}

// byKey indexes a catalog's entities by "blueprint identifier".
func byKey(c portsim.Catalog) map[string]portsim.CatalogEntity {
	out := map[string]portsim.CatalogEntity{}
	for _, e := range c.Entities {
		out[e.Blueprint+" "+e.Identifier] = e
	}
	return out
}

func sameEntity(a, b portsim.CatalogEntity) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Issue "Safe by construction" 1: the same spec for two Humanitec orgs
// into one Port organization. Each owns its own entities; neither run
// overwrites or deletes the other's — also when Port's search does not
// show yet what the other run has just written (lagging search).
func TestTwoOrgsOneCatalog(t *testing.T) {
	t.Parallel()
	for name, lag := range map[string]time.Duration{"current search": 0, "lagging search": time.Hour} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			twoOrgsOneCatalog(t, lag)
		})
	}
}

func twoOrgsOneCatalog(t *testing.T, lag time.Duration) {
	humA, _ := startOrg(t, 1, "org-a")
	humB, _ := startOrg(t, 2, "org-b")
	pt := portsim.New(portsim.Options{RateLimit: -1, SearchLag: lag})
	defer pt.Close()

	resA, err := runOrg(t, humA, "org-a", pt, engine.PortOptions{})
	if err != nil {
		t.Fatalf("org-a: %v", err)
	}
	if resA.Dest.Port.Owner != "humanitec/org-a" {
		t.Errorf("org-a's owner %q", resA.Dest.Port.Owner)
	}
	afterA := byKey(pt.Catalog())

	// The generator gives every org the same first applications, so some
	// identifiers collide: org-b must report them, not take them.
	resB, err := runOrg(t, humB, "org-b", pt, engine.PortOptions{})
	rep := resB.Dest.Port
	afterB := byKey(pt.Catalog())
	for k, e := range afterA {
		if got, ok := afterB[k]; !ok {
			t.Errorf("org-b's run deleted org-a's %s", k)
		} else if !sameEntity(e, got) {
			t.Errorf("org-b's run changed org-a's %s", k)
		}
	}
	if len(rep.Conflicts) == 0 {
		t.Fatal("no identifier of org-b collides with org-a's; the test needs some")
	}
	if !errors.Is(err, engine.ErrPortEntitiesFailed) || engine.ExitCode(err, false) != engine.ExitFailed {
		t.Errorf("org-b: err %v, want the conflicts to fail the run", err)
	}
	for _, c := range rep.Conflicts {
		if c.Owner != "humanitec/org-a" {
			t.Errorf("conflict %+v: want owner humanitec/org-a", c)
		}
		if _, ok := afterA[c.Blueprint+" "+c.Identifier]; !ok {
			t.Errorf("conflict %+v is not one of org-a's entities", c)
		}
	}
	if rep.Deleted != 0 {
		t.Errorf("org-b's run deleted %d entities", rep.Deleted)
	}
	created := 0
	for k, e := range afterB {
		if _, ok := afterA[k]; ok {
			continue
		}
		created++
		if e.Properties["ferryOwner"] != "humanitec/org-b" {
			t.Errorf("%s: owner %v", k, e.Properties["ferryOwner"])
		}
	}
	if created == 0 || created != rep.Upserted {
		t.Errorf("org-b created %d entities, upserted %d", created, rep.Upserted)
	}

	// org-a again: its own entities only, nothing of org-b's deleted.
	resA, err = runOrg(t, humA, "org-a", pt, engine.PortOptions{})
	if err != nil || resA.Dest.Port.Deleted != 0 {
		t.Fatalf("org-a again: err %v, deleted %d", err, resA.Dest.Port.Deleted)
	}
	if after := byKey(pt.Catalog()); len(after) != len(afterB) {
		t.Errorf("catalog went from %d to %d entities", len(afterB), len(after))
	}
}

// Issue "Safe by construction" 2, and moving ownership: an entity made by
// hand is neither overwritten nor deleted; entities of a former owner are
// conflicts until adopted.
func TestHandMadeEntityAndOwnerMove(t *testing.T) {
	t.Parallel()
	hum, org := startOrg(t, 1, humanitec.DemoOrgID)
	pt := portsim.New(portsim.Options{RateLimit: -1})
	defer pt.Close()
	const owner = "humanitec/" + humanitec.DemoOrgID
	const bpApp = "humanitecApplication"
	appID := org.Apps[0].ID

	// The blueprints exist (made by an earlier run, or by hand), and an
	// application entity someone made by hand has an id ferry produces.
	if _, err := runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{NoDelete: true}); err != nil {
		t.Fatal(err)
	}
	handMade := fmt.Sprintf(`{"identifier":%q,"title":"Made by hand","properties":{}}`, appID)
	if err := pt.SeedEntity(bpApp, []byte(handMade)); err != nil {
		t.Fatal(err)
	}
	res, err := runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{})
	if engine.ExitCode(err, false) != engine.ExitFailed {
		t.Fatalf("err %v: want exit 1 for the conflict", err)
	}
	// Owned by nobody; mapped from stream apps, a root stream (no parents).
	want := fmt.Sprintf("[{%s %s  apps  false}]", bpApp, appID)
	if got := fmt.Sprint(res.Dest.Port.Conflicts); got != want {
		t.Errorf("conflicts %s, want %s", got, want)
	}
	e := pt.Entity(bpApp, appID)
	if e["title"] != "Made by hand" || e["properties"].(map[string]any)["ferryOwner"] != nil {
		t.Errorf("hand-made entity overwritten: %v", e)
	}

	// The application leaves Humanitec: ferry's entities under it go, the
	// hand-made one stays.
	hum.Update(func(o *humanitec.Org) { o.Apps = o.Apps[1:] })
	res, err = runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{})
	if err != nil {
		t.Fatalf("run without the app: %v", err)
	}
	if pt.Entity(bpApp, appID) == nil {
		t.Error("the hand-made entity was deleted")
	}
	if res.Dest.Port.Deleted == 0 || pt.Entity("humanitecEnvironment", appID+"/"+org.Apps[0].Envs[0].ID) != nil {
		t.Errorf("ferry's stale entities of the app were not deleted (deleted %d)", res.Dest.Port.Deleted)
	}

	// The owner key changes (here: a catalog written when the owner was
	// the spec's name alone). Until adopted, every entity is a conflict
	// and nothing is touched.
	for _, e := range pt.Catalog().Entities {
		if e.Properties["ferryOwner"] != owner {
			continue
		}
		e.Properties["ferryOwner"] = "humanitec"
		m := map[string]any{"identifier": e.Identifier, "properties": e.Properties, "relations": e.Relations}
		if e.Title != nil {
			m["title"] = *e.Title
		}
		if e.Icon != nil {
			m["icon"] = *e.Icon
		}
		body, _ := json.Marshal(m)
		if err := pt.SeedEntity(e.Blueprint, body); err != nil {
			t.Fatal(err)
		}
	}
	gone := `{"identifier":"gone-app","properties":{"ferryOwner":"humanitec"}}`
	if err := pt.SeedEntity(bpApp, []byte(gone)); err != nil {
		t.Fatal(err)
	}
	before := string(pt.Catalog().JSON())
	res, err = runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{})
	if engine.ExitCode(err, false) != engine.ExitFailed || len(res.Dest.Port.Conflicts) == 0 || res.Dest.Port.Upserted != 0 {
		t.Fatalf("err %v, %d conflicts, %d upserted: want every entity a conflict", err, len(res.Dest.Port.Conflicts), res.Dest.Port.Upserted)
	}
	if string(pt.Catalog().JSON()) != before {
		t.Error("the catalog changed although every entity belongs to the former owner")
	}
	res, err = runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{AdoptOwners: []string{"humanitec"}})
	if err != nil {
		t.Fatalf("adopting: %v", err)
	}
	if res.Dest.Port.Adopted != res.Dest.Port.Upserted || res.Dest.Port.Deleted != 1 || pt.Entity(bpApp, "gone-app") != nil {
		t.Errorf("adopted %d of %d, deleted %d: want all adopted and the former owner's stale gone-app deleted",
			res.Dest.Port.Adopted, res.Dest.Port.Upserted, res.Dest.Port.Deleted)
	}
	for _, e := range pt.Catalog().Entities {
		if o := e.Properties["ferryOwner"]; o == "humanitec" {
			t.Errorf("%s %s still owned by the former owner", e.Blueprint, e.Identifier)
		}
	}
}

// Issue "Safe by construction" 3: Port answers that make no sense. One
// garbled bulk answer fails its entities and the load goes on; an empty
// answer to the owned-entity search fails that blueprint's reconciliation
// (its stale entities stay), the others are reconciled.
func TestPortNonsenseAnswers(t *testing.T) {
	t.Parallel()
	hum, org := startOrg(t, 1, humanitec.DemoOrgID)
	pt := portsim.New(portsim.Options{RateLimit: -1})
	defer pt.Close()
	if _, err := runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{}); err != nil {
		t.Fatal(err)
	}
	before := byKey(pt.Catalog())
	total := len(before)
	gone := org.Apps[1]
	hum.Update(func(o *humanitec.Org) {
		o.Apps = append(o.Apps[:1:1], o.Apps[2:]...)
		// Renamed, so the rerun has pipelines to write (unchanged
		// entities are not sent).
		for _, a := range o.Apps {
			for i := range a.Pipelines {
				a.Pipelines[i].Name += " (renamed)"
			}
		}
	})
	pt.InjectFault(portsim.Fault{Method: "POST", Path: "/v1/blueprints/humanitecPipeline/entities/bulk", Times: 1, Kind: portsim.FaultBody, Body: `<html>bad gateway</html>`})
	pt.InjectFault(portsim.Fault{Path: "/v1/blueprints/humanitecEnvironment/entities/search", BodyContains: `"property":"ferryOwner"`, Kind: portsim.FaultBody, Body: ``})

	res, err := runOrg(t, hum, humanitec.DemoOrgID, pt, engine.PortOptions{})
	rep := res.Dest.Port
	if !errors.Is(err, engine.ErrPortEntitiesFailed) || !errors.Is(err, engine.ErrPortReconcileFailed) {
		t.Fatalf("err = %v, want failed entities and a failed reconciliation", err)
	}
	// The entities of the garbled answer (one bulk call: 1 to 20) failed,
	// and only they.
	if rep.Failed < 1 || rep.Failed > 20 {
		t.Errorf("%d entities failed, want those of one bulk answer: %v", rep.Failed, rep.Errors)
	}
	for _, e := range rep.Errors {
		if e.Blueprint != "humanitecPipeline" || !strings.Contains(e.Message, "bulk answer could not be read") {
			t.Errorf("unexpected failure %v", e)
		}
	}
	if rep.Upserted+rep.Unchanged+rep.Failed < total/2 {
		t.Errorf("the load stopped: %d upserted, %d unchanged, %d failed of about %d", rep.Upserted, rep.Unchanged, rep.Failed, total)
	}
	if len(rep.ReconcileErrors) != 1 || rep.ReconcileErrors[0].Blueprint != "humanitecEnvironment" {
		t.Errorf("reconcile errors %+v", rep.ReconcileErrors)
	}
	for _, env := range gone.Envs {
		if pt.Entity("humanitecEnvironment", gone.ID+"/"+env.ID) == nil {
			t.Errorf("stale environment %s deleted after an empty owned-entity answer", env.ID)
		}
	}
	// The other blueprints were reconciled: the app's other stale
	// entities are gone (the app itself stays while its environments,
	// which point at it, do).
	after := byKey(pt.Catalog())
	removed := 0
	for k := range before {
		if _, ok := after[k]; ok {
			continue
		}
		removed++
		bp, id, _ := strings.Cut(k, " ")
		if bp == "humanitecEnvironment" || !strings.HasPrefix(id, gone.ID+"/") && bp != "humanitecResourceGraph" {
			t.Errorf("deleted %s", k)
		}
	}
	if removed == 0 || removed != rep.Deleted {
		t.Errorf("removed %d entities, report says %d deleted", removed, rep.Deleted)
	}
}
