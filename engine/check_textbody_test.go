package engine_test

import (
	"fmt"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestCheckTextBodyLookupMissTriesOtherParents: a check reads one page
// of each lookup's stream, so a lookup that misses for the first parent
// may hold the next one's value; the check goes on to a parent whose
// request builds, for a text body (rendered as it is sent, page by page)
// as for a query. Failing there called a spec that a run reads in full
// broken.
func TestCheckTextBodyLookupMissTriesOtherParents(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  teams:
    request: {path: /teams}
  leads:
    request: {path: /leads}
  projects:
    for_each: teams
    request:
      method: POST
      path: /projects
      body_format: text
      body: 'lead = "${ lookups.lead_of[parent.id] }"'
lookups:
  lead_of: {from: leads, key: .team, value: .person}
tables:
  projects: {from: projects, primary_key: [id]}
`, "")
	// Only the last team's lead is on the page the check reads: the
	// chains before it do not build, whichever runs first.
	var teams []any
	for i := range 40 {
		teams = append(teams, map[string]any{"id": fmt.Sprint("t", i)})
	}
	fx.json("/teams", teams)
	fx.json("/leads", []any{map[string]any{"team": "t39", "person": "ann"}})
	fx.json("/projects", []any{map[string]any{"id": 1}})
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	for _, s := range res.Streams {
		if s.Stream == "projects" && (s.Status != engine.CheckOK || s.Requests != 1) {
			t.Fatalf("projects %+v: want ok, asked for t39 (the lookup misses the others on the page read)", s)
		}
	}
	if err != nil {
		t.Fatalf("check: %v", err)
	}
}
